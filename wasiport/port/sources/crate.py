"""The crate that locating finds, and what its Cargo.toml says (name, version, edition,
workspace members), following `key.workspace = true` to the workspace root."""
from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasiport.cargo.workspace import workspace_manifest
from wasiport.errors import UserError
from wasiport.port.recipes import NAME_RE, Recipe
from wasiport.tomlread import read_toml

COPIES_DIR = "wasiport"  # default parent of copied crates


class Origin(str, enum.Enum):
    """How the crate's source was obtained; everything but PATH is wasiport's own copy."""

    PATH = "path"  # the user's source, ported in place
    DEPENDENCY = "dependency"  # copied from a consumer's registry or git dependency
    REGISTRY = "registry"  # copied from a registry directory entry
    GIT = "git"  # cloned with --git
    ARCHIVE = "archive"  # unpacked from a .crate file

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Target:
    """One cargo target of the crate."""

    name: str
    kind: str  # lib | bin | example | test | bench | build
    src_path: Path
    required_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Crate:
    name: str
    version: str
    root: Path
    manifest_path: Path
    lib_name: str | None
    edition: str
    origin: Origin
    source: str  # where it came from, for messages: a path, a URL and revision, an archive
    consumer_manifest: Path | None = None
    targets: tuple[Target, ...] = ()
    recipe: Recipe | None = None
    repo_root: Path | None = None  # None: an in-place crate outside version control
    upstream_commit: str | None = None  # the `upstream:` commit of a copy
    reused: bool = False  # an existing copy was reused
    package_source: str | None = None  # cargo's source id of a dependency (registry+..., git+...)

    @property
    def is_copy(self) -> bool:
        return self.origin is not Origin.PATH

    @property
    def lib_path(self) -> Path | None:
        return next((t.src_path for t in self.targets if t.kind == "lib"), None)

    @property
    def bin_paths(self) -> tuple[Path, ...]:
        return tuple(t.src_path for t in self.targets if t.kind == "bin")


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps for unpacking a .crate (crates.io itself caps uploads at 10 MiB compressed)."""

    max_members: int = 20_000
    max_member_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024


def _package_field(manifest: Path, package: Mapping[str, Any], key: str, default: str) -> str:
    """A `[package]` value, following `key.workspace = true` to `[workspace.package]`."""
    value = package.get(key, default)
    if isinstance(value, dict) and value.get("workspace") is True:
        workspace = workspace_manifest(manifest.parent)
        inherited = (workspace[1] if workspace else {}).get("workspace", {}).get("package", {}).get(key)
        if inherited is None:
            raise UserError(f"{manifest}: `{key}.workspace = true` but no workspace above it defines it")
        value = inherited
    if not isinstance(value, str):
        raise UserError(f"{manifest}: `package.{key}` must be a string")
    return value


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    edition: str
    data: Mapping[str, Any]


def read_package(manifest: Path) -> PackageInfo:
    """Name, version and edition of the package a Cargo.toml describes."""
    data = read_toml(manifest)
    package = data.get("package")
    if not isinstance(package, dict):
        raise UserError(f"{manifest} has no [package] table")
    name = package.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError(f"{manifest}: `package.name` is missing or not a crate name")
    return PackageInfo(
        name=name,
        version=_package_field(manifest, package, "version", "0.0.0"),
        edition=_package_field(manifest, package, "edition", "2015"),
        data=data,
    )


def workspace_members(manifest: Path, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, relative dir) of a workspace's members, from its `members` globs."""
    root = manifest.parent
    excluded = {str(e) for e in data.get("workspace", {}).get("exclude", [])}
    members = []
    for pattern in data.get("workspace", {}).get("members", []):
        for directory in sorted(root.glob(str(pattern))):
            relative = directory.relative_to(root).as_posix()
            if relative in excluded or not (directory / "Cargo.toml").is_file():
                continue
            with contextlib.suppress(UserError):
                members.append((read_package(directory / "Cargo.toml").name, relative))
    return members
