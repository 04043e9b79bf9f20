"""Where a crate sits: the Cargo.toml files above it, its workspace root, and cargo's own
view of the graph (`cargo metadata`).

`manifests_above` is the one upward walk (the one cargo makes to find a workspace);
`cargo_metadata` is the one `cargo metadata`, run through the process gateway.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from wasiport.cargo.process import run_cargo
from wasiport.tomlread import read_toml


def manifests_above(start: Path) -> Iterator[Path]:
    """Each Cargo.toml at `start` and in the directories above it, nearest first."""
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        manifest = directory / "Cargo.toml"
        if manifest.is_file():
            yield manifest


def nearest_manifest(start: Path) -> Path | None:
    """The Cargo.toml cargo itself would use from `start` (this directory or the nearest above)."""
    return next(manifests_above(start), None)


def workspace_manifest(crate_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest manifest at or above the crate with a `[workspace]` table, and its data."""
    for manifest in manifests_above(crate_dir):
        data = read_toml(manifest)
        if "workspace" in data:
            return manifest, data
    return None


def workspace_root(crate_dir: Path) -> Path:
    """The directory of the crate's workspace root; the crate's own when it has none."""
    found = workspace_manifest(crate_dir)
    return found[0].parent if found is not None else Path(crate_dir).resolve()


def cargo_metadata(
    manifest_path: Path,
    env: Mapping[str, str] | None,
    *,
    filter_platform: str | None = None,
    no_deps: bool = False,
) -> tuple[dict[str, Any], str]:
    """`cargo metadata --format-version 1` as data, plus cargo's stderr (its warnings)."""
    args = ["metadata", "--format-version", "1"]
    if filter_platform:
        args += ["--filter-platform", filter_platform]
    if no_deps:
        args.append("--no-deps")
    done = run_cargo(args, manifest_path=Path(manifest_path), env=env)
    return json.loads(done.stdout), done.stderr
