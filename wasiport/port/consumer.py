"""The consumer's side of a port: its Cargo.toml takes a ported copy through `[patch]`, from the
ports registry its `.cargo/config.toml` names (a directory source: cargo caps the port's lints).

`plan_consumer` is pure (the new text, or a conflict); `ConsumerChange.write` writes it
at once and returns the backup that undoes it; `ConsumerChange.verify` asks cargo
whether the patch was taken.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo import Change, ExcludeFromWorkspace, plan_consumer_patch, verify_patch_used
from wasiport.cargo.changes import PORTS_DIRECTORY, PORTS_SOURCE_ID, plan_ports_source
from wasiport.cargo.manifest import edit_manifest
from wasiport.errors import UserError
from wasiport.fsutil import FileBackup, atomic_write
from wasiport.model import Profile
from wasiport.port.sources import Crate
from wasiport.tomlread import parse_toml


@dataclass(frozen=True)
class ConsumerBackup:
    """The consumer's files before the change; `restore` undoes it."""

    files: tuple[FileBackup, ...]

    def restore(self) -> None:
        for backup in reversed(self.files):
            backup.restore()


@dataclass
class ConsumerChange:
    """The consumer's `[patch]` entry for the port (its Cargo.toml) and the ports registry it
    names (its workspace's `.cargo/config.toml`); see `wasiport.cargo.changes.PORTS_REGISTRY`."""

    manifest: Path
    crate_name: str
    original: str
    text: str
    config: Path
    config_original: str | None  # None: the file does not exist yet
    config_text: str
    port: Path

    def _files(self) -> tuple[tuple[Path, str | None, str], ...]:
        return ((self.manifest, self.original, self.text), (self.config, self.config_original, self.config_text))

    def diff(self) -> str:
        parts = []
        for path, before, after in self._files():
            if (before or "") != after:
                name = f"{path.parent.name}/{path.name}" if path.parent.name == ".cargo" else path.name
                parts.extend(difflib.unified_diff((before or "").splitlines(True), after.splitlines(True), f"a/{name} (consumer)", f"b/{name} (consumer)"))
        return "".join(parts)

    def write(self) -> ConsumerBackup | None:
        """Expose the port to the ports registry, write what changed; the backup undoes the files."""
        expose_port(self.port)
        backups = []
        for path, before, after in self._files():
            if before is not None and before == after:
                continue
            backups.append(FileBackup(path, None if before is None else before.encode("utf-8")))
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, after.encode("utf-8"))
        return ConsumerBackup(tuple(backups)) if backups else None

    def verify(self, env: dict[str, str]) -> list[str]:
        check = verify_patch_used(self.manifest, [self.crate_name], env)
        check.raise_if_unused()
        return [f"[patch.crates-io] {self.crate_name} is used by cargo's resolution of {self.manifest}"]

    def summary(self) -> str:
        if not self.diff():
            return f"{self.manifest} already takes the port through [patch.crates-io]"
        return (
            f"{self.manifest}: [patch.crates-io] {self.crate_name} takes the port from the ports registry "
            f"({self.config.parent.name}/{self.config.name}; built like a registry crate, not committed)"
        )


def expose_port(ported_crate_dir: Path) -> Path:
    """Make the port a crate of the ports directory source; returns its entry there.

    The entry is a link to the port (`.cargo-ports/<dir name>`), and the port gets the
    `.cargo-checksum.json` a directory source needs (no file checksums: the port is edited in
    place), kept out of the port's git history by the copy's `.git/info/exclude`."""
    port = ported_crate_dir.resolve()
    checksum = port / ".cargo-checksum.json"
    if not checksum.exists():
        checksum.write_text('{"files":{},"package":null}\n', encoding="utf-8")
    exclude = port / ".git" / "info" / "exclude"
    if exclude.parent.is_dir():
        patterns = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        if "/.cargo-checksum.json" not in patterns:
            with open(exclude, "a", encoding="utf-8") as handle:
                handle.write("/.cargo-checksum.json\n")
    entry = port.parent / PORTS_DIRECTORY / port.name
    entry.parent.mkdir(exist_ok=True)
    if not entry.is_symlink() or os.readlink(entry) != f"../{port.name}":
        if entry.is_symlink():
            entry.unlink()
        entry.symlink_to(f"../{port.name}", target_is_directory=True)
    return entry


def takes_port_by_patch(crate: Crate) -> bool:
    """A copied dependency reaches the consumer through [patch]; a path dependency is already the port."""
    return crate.consumer_manifest is not None and crate.is_copy


def plan_consumer(crate: Crate, profile: Profile) -> ConsumerChange:
    """The consumer's Cargo.toml with `[patch.<registry>] <crate> = { version = "=<v>", registry =
    "wasiport-ports" }`, and its `.cargo/config.toml` with the ports registry."""
    consumer = crate.consumer_manifest
    assert consumer is not None
    text = consumer.read_text(encoding="utf-8")
    changes = plan_consumer_patch(consumer, crate.name, crate.version, crate.root, patch_registry(crate.package_source))
    changes += workspace_exclusion(consumer, crate.root, text)
    edit = edit_manifest(text, changes, path_for_errors=str(consumer))
    config = consumer.parent / ".cargo" / "config.toml"
    config_original = config.read_text(encoding="utf-8") if config.exists() else None
    config_edit = edit_manifest(config_original or "", plan_ports_source(consumer, crate.root), path_for_errors=str(config))
    conflicts = [*edit.conflicts, *config_edit.conflicts]
    if conflicts:
        raise UserError("; ".join(str(c) for c in conflicts), hint="wasiport never overwrites your settings: adjust them by hand")
    return ConsumerChange(consumer, crate.name, text, edit.text, config, config_original, config_edit.text, crate.root)


def patch_registry(source: str | None) -> str:
    """The `[patch.<key>]` that replaces a package from cargo's source id."""
    if not source or "crates.io-index" in source or source.startswith("sparse+https://index.crates.io"):
        return "crates-io"
    if source == PORTS_SOURCE_ID:  # ported before: the patch that brought it is crates.io's
        return "crates-io"
    kind, _, url = source.partition("+")
    url = url.split("?", 1)[0].split("#", 1)[0]
    return url if kind in ("git", "registry", "sparse") else "crates-io"


def workspace_exclusion(consumer: Path, copy_root: Path, text: str) -> list[Change]:
    """A copy under a workspace root's folder would become a member: exclude its folder."""
    if "workspace" not in parse_toml(text, path_for_errors=str(consumer)):
        return []
    try:
        relative = copy_root.resolve().relative_to(consumer.parent.resolve())
    except ValueError:
        return []
    return [ExcludeFromWorkspace(relative.parts[0])]
