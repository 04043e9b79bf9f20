"""The consumer's side of a port: its Cargo.toml takes a ported copy through `[patch]`.

`plan_consumer` is pure (the new text, or a conflict); `ConsumerChange.write` writes it
at once and returns the backup that undoes it; `ConsumerChange.verify` asks cargo
whether the patch was taken.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo import Change, ExcludeFromWorkspace, plan_consumer_patch, verify_patch_used
from wasiport.cargo.manifest import edit_manifest
from wasiport.errors import UserError
from wasiport.fsutil import FileBackup, atomic_write
from wasiport.model import Profile
from wasiport.port.sources import Crate
from wasiport.tomlread import parse_toml


@dataclass
class ConsumerChange:
    manifest: Path
    crate_name: str
    original: str
    text: str

    def diff(self) -> str:
        if self.original == self.text:
            return ""
        name = self.manifest.name
        return "".join(difflib.unified_diff(self.original.splitlines(True), self.text.splitlines(True), f"a/{name} (consumer)", f"b/{name} (consumer)"))

    def write(self) -> FileBackup | None:
        if self.original == self.text:
            return None
        backup = FileBackup(self.manifest, self.original.encode("utf-8"))
        atomic_write(self.manifest, self.text.encode("utf-8"))
        return backup

    def verify(self, env: dict[str, str]) -> list[str]:
        check = verify_patch_used(self.manifest, [self.crate_name], env)
        check.raise_if_unused()
        return [f"[patch.crates-io] {self.crate_name} is used by cargo's resolution of {self.manifest}"]

    def summary(self) -> str:
        if self.original == self.text:
            return f"{self.manifest} already takes the port through [patch.crates-io]"
        return f"{self.manifest}: [patch.crates-io] {self.crate_name} points at the port (not committed)"


def takes_port_by_patch(crate: Crate) -> bool:
    """A copied dependency reaches the consumer through [patch]; a path dependency is already the port."""
    return crate.consumer_manifest is not None and crate.is_copy


def plan_consumer(crate: Crate, profile: Profile) -> ConsumerChange:
    """The consumer's Cargo.toml with `[patch.<registry>] <crate> = { path = <copy> }`."""
    consumer = crate.consumer_manifest
    assert consumer is not None
    text = consumer.read_text(encoding="utf-8")
    changes = plan_consumer_patch(consumer, crate.name, crate.root, patch_registry(crate.package_source))
    changes += workspace_exclusion(consumer, crate.root, text)
    edit = edit_manifest(text, changes, path_for_errors=str(consumer))
    if edit.conflicts:
        raise UserError("; ".join(str(c) for c in edit.conflicts), hint="wasiport never overwrites your settings: adjust them by hand")
    return ConsumerChange(consumer, crate.name, text, edit.text)


def patch_registry(source: str | None) -> str:
    """The `[patch.<key>]` that replaces a package from cargo's source id."""
    if not source or "crates.io-index" in source or source.startswith("sparse+https://index.crates.io"):
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
