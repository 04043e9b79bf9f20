"""The change algebra of Cargo.toml and `.cargo/config.toml`: what a port asks for, as data.

A port changes manifests in a few well-defined ways: add the socket crate under a
target table, swap a dependency for a renamed `*_wasi` crate, add a
`[patch.crates-io]` entry, add rustflags for the wasm target only. Each way is a
frozen dataclass (a *change*); `wasiport.cargo.manifest` applies them with tomlkit.
Apart from the editor so that reading a dependency graph (`check --deps`) can plan
changes without loading it. Keys and values render the way cargo and `cargo add`
write them.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

from wasiport.errors import UserError
from wasiport.model import Profile

DEPENDENCY_KINDS = ("dependencies", "dev-dependencies", "build-dependencies")

# ---------------------------------------------------------------------------
# The data that changes are made of
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DepTable:
    """One dependency table: `[dependencies]`, `[target.'cfg(..)'.dev-dependencies]`, ..."""

    kind: str = "dependencies"
    target: str | None = None  # 'cfg(...)' or a target triple

    def __post_init__(self) -> None:
        if self.kind not in DEPENDENCY_KINDS:
            raise ValueError(f"unknown dependency table kind {self.kind!r}")

    @classmethod
    def gated(cls, gate: str, kind: str = "dependencies") -> DepTable:
        return cls(kind, f"cfg({gate})")

    @classmethod
    def not_gated(cls, gate: str, kind: str = "dependencies") -> DepTable:
        return cls(kind, f"cfg(not({gate}))")

    @property
    def key_path(self) -> tuple[str, ...]:
        return (self.kind,) if self.target is None else ("target", self.target, self.kind)

    @property
    def header(self) -> str:
        return f"[{dotted_key(self.key_path)}]"


@dataclass(frozen=True)
class DependencySpec:
    """The fields of a dependency entry that wasiport writes (None/() = not set)."""

    version: str | None = None
    package: str | None = None
    path: str | None = None
    git: str | None = None
    branch: str | None = None
    tag: str | None = None
    rev: str | None = None
    default_features: bool | None = None
    features: tuple[str, ...] = ()
    optional: bool | None = None
    workspace: bool | None = None  # `{ workspace = true }`: inherited, only read never written
    registry: str | None = None  # a registry named in `.cargo/config.toml` [registries]

    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("package", "package"),
        ("version", "version"),
        ("registry", "registry"),
        ("path", "path"),
        ("git", "git"),
        ("branch", "branch"),
        ("tag", "tag"),
        ("rev", "rev"),
        ("default_features", "default-features"),
        ("features", "features"),
        ("optional", "optional"),
        ("workspace", "workspace"),
    )

    def to_plain(self) -> str | dict[str, Any]:
        """What tomllib would read back: a bare version string when that says it all."""
        table: dict[str, Any] = {}
        for attr, key in self._FIELDS:
            value = getattr(self, attr)
            if value is None or value == ():
                continue
            table[key] = list(value) if isinstance(value, tuple) else value
        if list(table) == ["version"]:
            return table["version"]
        return table

    @classmethod
    def from_plain(cls, value: Any) -> DependencySpec:
        if isinstance(value, str):
            return cls(version=value)
        if not isinstance(value, Mapping):
            raise ValueError(f"a dependency is a version string or a table, not {value!r}")
        fields: dict[str, Any] = {}
        for attr, key in cls._FIELDS:
            raw = value.get(key, value.get(key.replace("-", "_")))
            if raw is not None:
                fields[attr] = tuple(raw) if attr == "features" else raw
        return cls(**fields)

    def render(self) -> str:
        return render_value(self.to_plain())


@dataclass(frozen=True)
class SetDependency:
    """`name = spec` in `table`. Present and equivalent: nothing to do; present and
    different (or declared in another table that also applies on WASI): a conflict."""

    table: DepTable
    name: str
    spec: DependencySpec
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"add {self.name} = {self.spec.render()} to {self.table.header}"


@dataclass(frozen=True)
class MoveDependency:
    """Move `name` from one dependency table to another, keeping its value as written."""

    name: str
    source: DepTable
    destination: DepTable
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"move {self.name} from {self.source.header} to {self.destination.header}"


@dataclass(frozen=True)
class AddPatch:
    """`[patch.<registry>] name = spec` (only honoured in a workspace's root manifest)."""

    name: str
    spec: DependencySpec
    registry: str = "crates-io"
    # Earlier forms of the same patch (wasiport's own), replaced rather than called a conflict.
    supersedes: tuple[DependencySpec, ...] = ()
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"add {self.name} = {self.spec.render()} to [patch.{key_text(self.registry)}]"


# Ports are built as registry crates: a `[patch]` path dependency is a local package, and cargo
# shows a local package every lint without its `--cap-lints` (a deny-by-default lint of a newer
# compiler fails the port of an old crate whose registry copy builds). So the patch names the
# registry below, which `.cargo/config.toml` replaces with a directory source holding the ports:
# nothing is fetched (offline works), and cargo treats the port as it treats the registry copy.
PORTS_REGISTRY = "wasiport-ports"
PORTS_INDEX = "https://wasiport.invalid/ports"  # never contacted: replaced by the directory source
PORTS_SOURCE_ID = f"registry+{PORTS_INDEX}"  # cargo's source id of a port (metadata, Cargo.lock)
PORTS_DIRECTORY = ".cargo-ports"  # beside the copies: one link per port, named <name>-<version>
_PORTS_INDEX_SOURCE = "wasiport-ports-index"
_PORTS_DIRECTORY_SOURCE = "wasiport-ports"


@dataclass(frozen=True)
class AddPortsSource:
    """`.cargo/config.toml`: the registry that ports are patched from, and the directory source
    (`directory`, relative to the workspace root) that replaces it."""

    directory: str
    file_kind: ClassVar[str] = "cargo-config"

    def settings(self) -> tuple[tuple[tuple[str, ...], str], ...]:
        return (
            (("registries", PORTS_REGISTRY, "index"), PORTS_INDEX),
            (("source", _PORTS_INDEX_SOURCE, "registry"), PORTS_INDEX),
            (("source", _PORTS_INDEX_SOURCE, "replace-with"), _PORTS_DIRECTORY_SOURCE),
            (("source", _PORTS_DIRECTORY_SOURCE, "directory"), self.directory),
        )

    def describe(self) -> str:
        return f"add the ports registry ({PORTS_REGISTRY}, from {self.directory}) to .cargo/config.toml"


@dataclass(frozen=True)
class EnableFeatures:
    """Make sure dependency `name` in `table` enables `features` (never removes any)."""

    table: DepTable
    name: str
    features: tuple[str, ...]
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"enable features {', '.join(self.features)} of {self.name} in {self.table.header}"


@dataclass(frozen=True)
class AddRustCfgs:
    """`.cargo/config.toml`: `[target.<target>] rustflags` gains `--cfg <name>` for each name.

    `target` is a triple or a `cfg(...)` expression; used with the port's gate, the
    flags reach the wasm build only and the native build stays as it was."""

    target: str
    cfgs: tuple[str, ...]
    file_kind: ClassVar[str] = "cargo-config"

    @property
    def flags(self) -> list[str]:
        return [flag for name in self.cfgs for flag in ("--cfg", name)]

    def describe(self) -> str:
        return f"add rustflags {' '.join(self.flags)} to [target.{key_text(self.target)}] in .cargo/config.toml"


@dataclass(frozen=True)
class ExcludeFromWorkspace:
    """`[workspace] exclude` gains `path` (relative to the workspace root), so that a ported
    copy stored under the root's folder does not become a member. A manifest without a
    `[workspace]` table has no members to keep it out of: nothing to do."""

    path: str
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"add {json.dumps(self.path)} to [workspace] exclude"


Change = Union[SetDependency, MoveDependency, AddPatch, EnableFeatures, AddRustCfgs, ExcludeFromWorkspace, AddPortsSource]


def add_target_dependency(cfg: str, name: str, spec: DependencySpec, kind: str = "dependencies") -> SetDependency:
    """`[target.'cfg(<cfg>)'.<kind>] name = spec`."""
    return SetDependency(DepTable.gated(cfg, kind), name, spec)


@dataclass(frozen=True)
class Conflict:
    """A change wasiport refused because the user's file says something else."""

    path: str
    change: Change
    key: str  # dotted TOML key of the user's setting
    existing: str  # the user's value, rendered as TOML
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key} = {self.existing}: {self.reason}"


@dataclass(frozen=True)
class ManifestEdit:
    """The outcome of `edit_manifest`: new text plus what happened to each change."""

    path: str
    original: str
    text: str
    applied: tuple[Change, ...] = ()
    already_done: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.text != self.original


class ManifestConflictError(UserError):
    """Raised by `apply_changes` when a change would overwrite a user's setting."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = tuple(conflicts)
        first = self.conflicts[0]
        more = f" (and {len(self.conflicts) - 1} more)" if len(self.conflicts) > 1 else ""
        super().__init__(
            f"{first}{more}",
            hint="wasiport never overwrites your own settings: change them by hand or drop the conflicting step",
        )


class ManifestVerificationError(RuntimeError):
    """The written text does not mean what the plan said: a bug in wasiport (or tomlkit)."""


# ---------------------------------------------------------------------------
# Rendering keys and values the way cargo and `cargo add` write them
# ---------------------------------------------------------------------------

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_text(key: str) -> str:
    if BARE_KEY.match(key):
        return key
    if "'" not in key and "\n" not in key:
        return f"'{key}'"
    return json.dumps(key)


def dotted_key(path: Iterable[str]) -> str:
    return ".".join(key_text(k) for k in path)


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{key_text(k)} = {render_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r} as TOML")


# ---------------------------------------------------------------------------
# Plans for a ported crate and its consumer
# ---------------------------------------------------------------------------


def plan_socket_dependency(profile: Profile) -> list[Change]:
    """The ported crate depends on the socket crate for the gated (WasmEdge) target only."""
    return [add_target_dependency(profile.gate, profile.socket_crate, DependencySpec(version=profile.socket_version))]


def plan_consumer_patch(
    consumer_manifest: Path, crate_name: str, version: str, ported_crate_dir: Path, registry: str = "crates-io"
) -> list[Change]:
    """The consumer (workspace root) takes the ported copy instead of the registry's crate, as a
    crate of the ports registry (see PORTS_REGISTRY; `plan_ports_source` configures it)."""
    relative = os.path.relpath(ported_crate_dir.resolve(), consumer_manifest.resolve().parent)
    as_path = DependencySpec(path=Path(relative).as_posix())
    port = DependencySpec(version=f"={version}", registry=PORTS_REGISTRY)
    return [AddPatch(crate_name, port, registry, supersedes=(as_path,))]


def plan_ports_source(consumer_manifest: Path, ported_crate_dir: Path) -> list[Change]:
    """`.cargo/config.toml` of the workspace root: where the ports registry's crates are."""
    ports = ported_crate_dir.resolve().parent / PORTS_DIRECTORY
    relative = os.path.relpath(ports, consumer_manifest.resolve().parent)
    return [AddPortsSource(Path(relative).as_posix())]


def plan_wasm_rustflags(profile: Profile, cfgs: Sequence[str]) -> list[Change]:
    """`--cfg` flags for the gated target only (in `.cargo/config.toml`)."""
    return [AddRustCfgs(f"cfg({profile.gate})", tuple(cfgs))] if cfgs else []
