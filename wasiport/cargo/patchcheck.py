"""Did cargo take the patch? Cargo only *warns* when a `[patch]` entry is not used;
`verify_patch_used` resolves the consumer's graph and turns that into an answer with
the reason (a wrong name, an unmet version requirement, a Cargo.lock that pins another
version).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasiport.cargo.changes import PORTS_SOURCE_ID
from wasiport.cargo.process import run_cargo
from wasiport.cargo.versions import Version, VersionReq
from wasiport.cargo.workspace import cargo_metadata
from wasiport.errors import UserError
from wasiport.tomlread import parse_toml


@dataclass(frozen=True)
class PatchUse:
    name: str
    version: str
    used: bool
    reason: str = ""  # why it was not used


@dataclass(frozen=True)
class PatchCheck:
    manifest: Path
    patches: tuple[PatchUse, ...]

    @property
    def unused(self) -> tuple[PatchUse, ...]:
        return tuple(p for p in self.patches if not p.used)

    @property
    def ok(self) -> bool:
        return not self.unused

    def raise_if_unused(self) -> None:
        if self.unused:
            lines = [f"[patch] {p.name} {p.version}: {p.reason}" for p in self.unused]
            raise UserError(
                f"{self.manifest}: cargo did not use {len(lines)} patch(es):\n  " + "\n  ".join(lines),
                hint="a patch must have the crate's package name and a version that meets every requirement on it",
            )


_UNUSED_WARNING = re.compile(
    r"Patch `(?P<name>[^ `]+) v(?P<version>[^ `]+)(?: \([^)]*\))?` was not used in the crate graph"
)


def _unused_patches(lock_text: str, stderr: str) -> dict[str, str]:
    """name -> version of every unused patch, from Cargo.lock's [[patch.unused]] and cargo's warnings."""
    unused: dict[str, str] = {}
    try:
        lock = parse_toml(lock_text, path_for_errors="Cargo.lock") if lock_text else {}
    except UserError:
        lock = {}  # cargo's warnings still name the unused patches
    for entry in lock.get("patch", {}).get("unused", []):
        unused[entry.get("name", "")] = entry.get("version", "")
    for match in _UNUSED_WARNING.finditer(stderr):
        unused.setdefault(match.group("name"), match.group("version"))
    return unused


def _why_unused(name: str, version: str, metadata: Mapping[str, Any]) -> str:
    """Explain an unused patch from the graph cargo resolved without it."""
    packages = {p["id"]: p for p in metadata.get("packages", [])}
    members = set(metadata.get("workspace_members", []))
    dependents = [
        node["id"]
        for node in (metadata.get("resolve") or {}).get("nodes", [])
        if any(packages[dep["pkg"]]["name"] == name for dep in node.get("deps", []))
    ]
    requirements: list[tuple[str, str]] = []
    for dependent in dependents:
        for dep in packages[dependent].get("dependencies", []):
            counts = dep.get("kind") != "dev" or dependent in members  # others' dev-deps are not built
            entry = (packages[dependent]["name"], dep.get("req", "*"))
            if (
                dep.get("name") == name
                and counts
                and str(dep.get("source")).startswith("registry+")
                and entry not in requirements
            ):
                requirements.append(entry)
    if not requirements:
        return (
            f"no crate in the dependency graph depends on `{name}` "
            "(wrong name, or an optional dependency that is not enabled)"
        )
    try:
        patched = Version.parse(version)
        unmet = [(who, req) for who, req in requirements if not VersionReq.parse(req).matches(patched)]
    except ValueError:
        unmet = []
    if unmet:
        listed = ", ".join(f"{who} requires {req}" for who, req in unmet)
        return f"the patch's version {version} does not meet the requirement ({listed})"
    resolved = sorted({p["version"] for p in packages.values() if p["name"] == name})
    locked = ", ".join(resolved) if resolved else "another version"
    return f"Cargo.lock pins {name} {locked}; run `cargo update -p {name}` to take the patch"


def verify_patch_used(consumer_manifest: Path, names: Iterable[str], env: Mapping[str, str] | None) -> PatchCheck:
    """Resolve the consumer's graph with cargo and report, for each patched crate in `names`,
    whether cargo used the patch (and why not). Call `.raise_if_unused()` to make it fatal.

    Runs `cargo metadata` (which writes Cargo.lock, like any build would)."""
    consumer_manifest = consumer_manifest.resolve()
    metadata, stderr = cargo_metadata(consumer_manifest, env)
    lock_path = Path(metadata.get("workspace_root", consumer_manifest.parent)) / "Cargo.lock"
    lock_text = lock_path.read_text(encoding="utf-8") if lock_path.exists() else ""
    unused = _unused_patches(lock_text, stderr)
    results = []
    by_name = {
        p["name"]: p
        for p in metadata.get("packages", [])
        if p.get("source") in (None, PORTS_SOURCE_ID) or not str(p.get("source")).startswith("registry+")
    }
    for name in names:
        if name in unused:
            results.append(PatchUse(name, unused[name], False, _why_unused(name, unused[name], metadata)))
        elif name in by_name:
            results.append(PatchUse(name, by_name[name]["version"], True))
        else:
            results.append(PatchUse(name, "", False, f"no [patch] entry for `{name}` reached the crate graph"))
    return PatchCheck(consumer_manifest, tuple(results))


def rebuild_ports(manifest_path: Path, targets: Iterable[str | None], env: Mapping[str, str] | None) -> list[str]:
    """Make cargo compile the project's ports again; returns them as `name@version`.

    Cargo never re-checks a registry crate's files (it assumes they cannot change), so a port
    that was edited (by wasiport, or by hand) keeps its old build until cleaned."""
    metadata, _ = cargo_metadata(manifest_path, env)
    ports = sorted(f"{p['name']}@{p['version']}" for p in metadata.get("packages", []) if p.get("source") == PORTS_SOURCE_ID)
    for target in targets:
        for port in ports:
            run_cargo(["clean", "-p", port, *(["--target", target] if target else [])], manifest_path=manifest_path, env=env)
    return ports
