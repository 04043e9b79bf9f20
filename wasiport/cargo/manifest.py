"""Declarative, format-preserving edits to `Cargo.toml` and `.cargo/config.toml`.

A port changes manifests in a few well-defined ways: add the socket crate under a
target table, swap a dependency for a renamed `*_wasi` crate, add a
`[patch.crates-io]` entry, add rustflags for the wasm target only. Each way is a
frozen dataclass (a *change*). `edit_manifest` turns a list of changes into
primitive operations against the parsed document, refuses any change that would
overwrite a user's own differing setting (a `Conflict`), applies the rest with
tomlkit so that comments, key order, quoting and table style survive, and checks
with `tomllib` that the meaning of the new text is exactly the old meaning plus
the planned operations. A second application finds everything already in place
and returns the text unchanged.

Cargo only *warns* when a `[patch]` entry is not used; `verify_patch_used` turns
that into an error with the reason.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

# Cargo version requirements and `[target.<key>]` tables live in cargoversions (check reads
# them without this module and its imports); re-exported for the code that edits manifests.
from wasiport.cargo.versions import (  # noqa: F401
    Version,
    VersionReq,
    requirement_within,
    target_applies_to_wasm,
)
from wasiport.cargo.workspace import cargo_metadata
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.tomlread import parse_toml

DEPENDENCY_KINDS = ("dependencies", "dev-dependencies", "build-dependencies")
# Cargo reads one spelling per kind but still accepts the old underscore spellings.
_KIND_ALIASES = {"dev_dependencies": "dev-dependencies", "build_dependencies": "build-dependencies"}
UNPARSABLE_HINT = "fix the file by hand; wasiport does not edit a manifest it cannot parse"

# ---------------------------------------------------------------------------
# Parsing with tomlkit (tomlread's parse_toml names a syntax error's file, line and column)
# ---------------------------------------------------------------------------

def _parse_document(text: str, *, path_for_errors: str) -> Any:
    """Parse with tomlkit, which keeps formatting. Call `parse_toml` first: tomllib gives
    the precise position of a syntax error."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as err:  # tomllib accepted it, so this is a tomlkit limitation
        raise UserError(
            f"{path_for_errors}:{err.line}:{err.col + 1}: cannot edit this TOML while keeping its formatting: {err}",
        ) from None


def _normalise_cfg(key: str) -> str:
    return re.sub(r"\s+", "", key)


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
        return f"[{_dotted(self.key_path)}]"


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

    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("package", "package"),
        ("version", "version"),
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
        return _render_value(self.to_plain())


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
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"add {self.name} = {self.spec.render()} to [patch.{_key_text(self.registry)}]"


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
        return f"add rustflags {' '.join(self.flags)} to [target.{_key_text(self.target)}] in .cargo/config.toml"


@dataclass(frozen=True)
class ExcludeFromWorkspace:
    """`[workspace] exclude` gains `path` (relative to the workspace root), so that a ported
    copy stored under the root's folder does not become a member. A manifest without a
    `[workspace]` table has no members to keep it out of: nothing to do."""

    path: str
    file_kind: ClassVar[str] = "manifest"

    def describe(self) -> str:
        return f"add {json.dumps(self.path)} to [workspace] exclude"


Change = Union[SetDependency, MoveDependency, AddPatch, EnableFeatures, AddRustCfgs, ExcludeFromWorkspace]


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
# Primitive operations (what a change resolves to against the current document)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Put:
    path: tuple[str, ...]
    value: Any  # plain Python value; replaces an existing value at `path`


@dataclass(frozen=True)
class _Move:
    source: tuple[str, ...]
    destination: tuple[str, ...]


@dataclass(frozen=True)
class _Append:
    path: tuple[str, ...]
    items: tuple[Any, ...]


_Op = Union[_Put, _Move, _Append]


@dataclass(frozen=True)
class _Resolution:
    ops: tuple[_Op, ...] = ()
    done: bool = False
    conflict: Conflict | None = None
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Rendering keys and values the way cargo and `cargo add` write them
# ---------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key_text(key: str) -> str:
    if _BARE_KEY.match(key):
        return key
    if "'" not in key and "\n" not in key:
        return f"'{key}'"
    return json.dumps(key)


def _dotted(path: Iterable[str]) -> str:
    return ".".join(_key_text(k) for k in path)


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key_text(k)} = {_render_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r} as TOML")


def _toml_item(value: Any) -> Any:
    """A tomlkit item that renders exactly as `_render_value` does (cargo's style)."""
    import tomlkit

    return tomlkit.parse(f"v = {_render_value(value)}\n")["v"]


def _toml_key(key: str) -> Any:
    from tomlkit.items import KeyType, SingleKey

    if _BARE_KEY.match(key):
        return SingleKey(key, t=KeyType.Bare)
    if "'" not in key and "\n" not in key:
        return SingleKey(key, t=KeyType.Literal)
    return SingleKey(key, t=KeyType.Basic)


# ---------------------------------------------------------------------------
# Reading the plain document
# ---------------------------------------------------------------------------


def _lookup(doc: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _find_target_key(doc: Mapping[str, Any], target: str | None) -> str | None:
    """The spelling the file already uses for `target` (cfg keys compared without spaces)."""
    if target is None:
        return None
    targets = doc.get("target")
    if not isinstance(targets, Mapping):
        return target
    if target in targets:
        return target
    wanted = _normalise_cfg(target)
    for key in targets:
        if _normalise_cfg(key) == wanted:
            return key
    return target


def _table_path(doc: Mapping[str, Any], table: DepTable) -> tuple[str, ...]:
    return DepTable(table.kind, _find_target_key(doc, table.target)).key_path


def _declarations(doc: Mapping[str, Any], kind: str, name: str) -> Iterator[tuple[DepTable, Any]]:
    """Every table of this kind that declares `name` (old underscore spellings included)."""
    spellings = [kind] + [alias for alias, canonical in _KIND_ALIASES.items() if canonical == kind]
    for spelling in spellings:
        table = doc.get(spelling)
        if isinstance(table, Mapping) and name in table:
            yield DepTable(kind), table[name]
    targets = doc.get("target")
    if isinstance(targets, Mapping):
        for target_key, per_target in targets.items():
            if not isinstance(per_target, Mapping):
                continue
            for spelling in spellings:
                table = per_target.get(spelling)
                if isinstance(table, Mapping) and name in table:
                    yield DepTable(kind, target_key), table[name]


def _expect_table(doc: Mapping[str, Any], path: Sequence[str], path_for_errors: str) -> None:
    """The containers on `path` must be tables if present (e.g. not `dependencies = "x"`)."""
    node: Any = doc
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping):
            raise UserError(
                f"{path_for_errors}: `{_dotted(path[:depth])}` is a {type(node).__name__}, expected a table"
            )
        if key not in node:
            return
        node = node[key]
    if not isinstance(node, Mapping):
        raise UserError(f"{path_for_errors}: `{_dotted(path)}` is a {type(node).__name__}, expected a table")


def _spec_satisfies(existing: Any, wanted: DependencySpec) -> bool:
    try:
        have = DependencySpec.from_plain(existing)
    except ValueError:
        return False
    if have.workspace:
        return False  # the real value lives in the workspace root: cannot judge it here
    if (have.package or None) != (wanted.package or None):
        return False
    if wanted.version is not None and (have.version is None or not requirement_within(have.version, wanted.version)):
        return False
    for attr in ("git", "branch", "tag", "rev"):
        if getattr(wanted, attr) is not None and getattr(have, attr) != getattr(wanted, attr):
            return False
    if wanted.path is not None and (
        have.path is None or posixpath.normpath(have.path) != posixpath.normpath(wanted.path)
    ):
        return False
    if not set(wanted.features) <= set(have.features):
        return False
    if wanted.default_features is False and have.default_features is not False:
        return False
    return wanted.optional is None or bool(have.optional) == wanted.optional


# ---------------------------------------------------------------------------
# Resolving changes
# ---------------------------------------------------------------------------


def _resolve(change: Change, doc: Mapping[str, Any], path_for_errors: str) -> _Resolution:
    if isinstance(change, SetDependency):
        return _resolve_set_dependency(change, doc, path_for_errors)
    if isinstance(change, MoveDependency):
        return _resolve_move(change, doc, path_for_errors)
    if isinstance(change, AddPatch):
        return _resolve_patch(change, doc, path_for_errors)
    if isinstance(change, EnableFeatures):
        return _resolve_features(change, doc, path_for_errors)
    if isinstance(change, AddRustCfgs):
        return _resolve_rustflags(change, doc, path_for_errors)
    if isinstance(change, ExcludeFromWorkspace):
        return _resolve_exclude(change, doc, path_for_errors)
    raise TypeError(f"unknown manifest change {change!r}")


def _conflict(path: str, change: Change, key: Sequence[str], existing: Any, reason: str) -> _Resolution:
    return _Resolution(conflict=Conflict(path, change, _dotted(key), _render_value(existing), reason))


def _resolve_set_dependency(change: SetDependency, doc: Mapping[str, Any], where: str) -> _Resolution:
    table_path = _table_path(doc, change.table)
    _expect_table(doc, table_path, where)
    key = table_path + (change.name,)
    existing = _lookup(doc, key)
    if existing is not None:
        if _spec_satisfies(existing, change.spec):
            return _Resolution(done=True)
        return _conflict(
            where, change, key, existing, f"already set differently; wasiport wanted {change.spec.render()}"
        )
    here = target_applies_to_wasm(change.table.target)
    for other, value in _declarations(doc, change.table.kind, change.name):
        if _normalise_cfg(other.target or "") == _normalise_cfg(change.table.target or ""):
            continue
        if here is False or target_applies_to_wasm(other.target) is False:
            continue  # the two tables never apply to the same (WASI) build
        other_key = _table_path(doc, other) + (change.name,)
        if other.target is not None and _spec_satisfies(value, change.spec):
            return _Resolution(done=True, notes=(f"{change.name} is already declared in {other.header}",))
        if other.target is None:
            reason = f"declared in {other.header} for every target; wasiport wanted it only in {change.table.header}"
            if change.name == Profile().socket_crate:
                reason += " (the crate builds only for WASI, so the native build breaks)"
        else:
            reason = f"also declared in {other.header}, which applies to the WASI build too"
        return _conflict(where, change, other_key, value, reason)
    return _Resolution(ops=(_Put(key, change.spec.to_plain()),))


def _resolve_move(change: MoveDependency, doc: Mapping[str, Any], where: str) -> _Resolution:
    source = _table_path(doc, change.source) + (change.name,)
    destination_table = _table_path(doc, change.destination)
    _expect_table(doc, destination_table, where)
    destination = destination_table + (change.name,)
    have_source, have_destination = _lookup(doc, source), _lookup(doc, destination)
    if have_source is None and have_destination is not None:
        return _Resolution(done=True)
    if have_source is None:
        return _Resolution(
            conflict=Conflict(
                where, change, _dotted(source), "(missing)", f"{change.name} is not declared in {change.source.header}"
            )
        )
    if have_destination is not None:
        return _conflict(
            where,
            change,
            destination,
            have_destination,
            f"{change.name} is already declared in {change.destination.header}",
        )
    return _Resolution(ops=(_Move(source, destination),))


def _resolve_patch(change: AddPatch, doc: Mapping[str, Any], where: str) -> _Resolution:
    table = ("patch", change.registry)
    _expect_table(doc, table, where)
    key = table + (change.name,)
    existing = _lookup(doc, key)
    if existing is None:
        return _Resolution(ops=(_Put(key, change.spec.to_plain()),))
    if _spec_satisfies(existing, change.spec):
        return _Resolution(done=True)
    return _conflict(
        where,
        change,
        key,
        existing,
        f"the crate is already patched differently; wasiport wanted {change.spec.render()}",
    )


def _resolve_features(change: EnableFeatures, doc: Mapping[str, Any], where: str) -> _Resolution:
    key = _table_path(doc, change.table) + (change.name,)
    existing = _lookup(doc, key)
    if existing is None:
        return _Resolution(
            conflict=Conflict(
                where, change, _dotted(key), "(missing)", f"{change.name} is not declared in {change.table.header}"
            )
        )
    if isinstance(existing, str):
        return _Resolution(ops=(_Put(key, {"version": existing, "features": list(change.features)}),))
    if not isinstance(existing, Mapping):
        return _conflict(where, change, key, existing, "not a dependency entry")
    have = existing.get("features")
    if have is not None and not isinstance(have, list):
        return _conflict(where, change, key + ("features",), have, "`features` is not an array")
    missing = [f for f in change.features if f not in (have or [])]
    if not missing:
        return _Resolution(done=True)
    if have is None:
        return _Resolution(ops=(_Put(key + ("features",), missing),))
    return _Resolution(ops=(_Append(key + ("features",), tuple(missing)),))


def _resolve_exclude(change: ExcludeFromWorkspace, doc: Mapping[str, Any], where: str) -> _Resolution:
    workspace = doc.get("workspace")
    if workspace is None:
        return _Resolution(done=True)
    _expect_table(doc, ("workspace",), where)
    wanted = posixpath.normpath(change.path)
    members = workspace.get("members", [])
    if isinstance(members, list) and any(fnmatch.fnmatchcase(wanted, posixpath.normpath(str(m))) for m in members):
        return _conflict(where, change, ("workspace", "members"), members, f"{wanted} is a workspace member")
    key = ("workspace", "exclude")
    exclude = workspace.get("exclude")
    if exclude is None:
        return _Resolution(ops=(_Put(key, [change.path]),))
    if not isinstance(exclude, list):
        return _conflict(where, change, key, exclude, "`exclude` is not an array")
    if any(posixpath.normpath(str(e)) == wanted for e in exclude):
        return _Resolution(done=True)
    return _Resolution(ops=(_Append(key, (change.path,)),))


def _flag_groups_present(flags: Sequence[str], name: str) -> bool:
    pairs = zip(flags, flags[1:], strict=False)
    return f"--cfg={name}" in flags or any(a == "--cfg" and b == name for a, b in pairs)


def _resolve_rustflags(change: AddRustCfgs, doc: Mapping[str, Any], where: str) -> _Resolution:
    target_key = _find_target_key(doc, change.target) or change.target
    table = ("target", target_key)
    _expect_table(doc, table, where)
    key = table + ("rustflags",)
    existing = _lookup(doc, key)
    if existing is not None and not isinstance(existing, (list, str)):
        return _conflict(where, change, key, existing, "rustflags must be an array or a string")
    if isinstance(existing, list) and not all(isinstance(f, str) for f in existing):
        return _conflict(where, change, key, existing, "rustflags must be strings")
    if existing is not None:
        have = existing.split() if isinstance(existing, str) else list(existing)
        missing = [f for name in change.cfgs if not _flag_groups_present(have, name) for f in ("--cfg", name)]
        if not missing:
            return _Resolution(done=True)
        if isinstance(existing, str):
            return _Resolution(ops=(_Put(key, " ".join([existing.strip(), *missing])),))
        return _Resolution(ops=(_Append(key, tuple(missing)),))
    # A matching [target] rustflags replaces [build] rustflags for that target, so keep the
    # user's build flags by copying them (said in a note, never done silently).
    notes: tuple[str, ...] = ()
    base: list[str] = []
    build_flags = _lookup(doc, ("build", "rustflags"))
    if isinstance(build_flags, (list, str)):
        base = build_flags.split() if isinstance(build_flags, str) else [str(f) for f in build_flags]
        if base:
            notes = (
                f"{where}: copied [build] rustflags {base} into [target.{_key_text(target_key)}] rustflags, "
                "because cargo ignores [build] rustflags for a target that has its own",
            )
    flags = base + [f for name in change.cfgs if not _flag_groups_present(base, name) for f in ("--cfg", name)]
    return _Resolution(ops=(_Put(key, flags),), notes=notes)


# ---------------------------------------------------------------------------
# Executing operations: on plain data (the expectation) and on tomlkit (the text)
# ---------------------------------------------------------------------------


def _plain_apply(doc: dict[str, Any], op: _Op) -> None:
    def container(path: Sequence[str]) -> dict[str, Any]:
        node = doc
        for key in path:
            node = node.setdefault(key, {})
        return node

    if isinstance(op, _Put):
        container(op.path[:-1])[op.path[-1]] = copy.deepcopy(op.value)
    elif isinstance(op, _Move):
        value = container(op.source[:-1]).pop(op.source[-1])
        container(op.destination[:-1])[op.destination[-1]] = value
    elif isinstance(op, _Append):
        container(op.path[:-1])[op.path[-1]].extend(copy.deepcopy(list(op.items)))


def _is_inline(node: Any) -> bool:
    from tomlkit.items import InlineTable

    return isinstance(node, InlineTable)


def _tomlkit_container(doc: Any, path: Sequence[str], created: list[Any] | None = None) -> Any:
    """Walk to the table at `path`, creating header tables on the way (super tables above
    the one that holds keys, so that cargo's `[target.'cfg(..)'.dependencies]` style results).
    Tables it creates are appended to `created`."""
    import tomlkit

    node = doc
    for depth, key in enumerate(path):
        if key in node:
            node = node[key]
            continue
        is_holder = depth == len(path) - 1
        if _is_inline(node):
            table: Any = tomlkit.inline_table()
        elif is_holder:
            table = tomlkit.table()
        else:
            table = tomlkit.table(is_super_table=True)
        anchor = _dependency_anchor(node) if depth == 0 and key in _DEPENDENCY_SECTIONS else None
        if anchor is not None:
            # Dependency tables go after the last one (cargo's order), not after [[example]].
            _end_with_blank_line(_last_item(node, anchor))
            node._insert_after(anchor, _toml_key(key), table)
        else:
            node[_toml_key(key)] = table
        node = node[key]
        if created is not None:
            created.append(node)
    return node


_DEPENDENCY_SECTIONS = (*DEPENDENCY_KINDS, "target")


def _last_item(document: Any, key: str) -> Any:
    """The item of `key` that comes last in the file (a key may own several tables)."""
    return [item for k, item in document.body if k is not None and k.key == key][-1]


def _end_with_blank_line(item: Any) -> None:
    """Make the last header table under `item` end with a blank line, so that a table
    inserted after it stays visually separate."""
    import tomlkit
    from tomlkit.items import Table, Whitespace

    while isinstance(item, Table) and item.value.body and isinstance(item.value.body[-1][1], Table):
        item = item.value.body[-1][1]  # the sub-table printed last ([dependencies.serde], ...)
    if isinstance(item, Table) and (not item.value.body or not isinstance(item.value.body[-1][1], Whitespace)):
        item.add(tomlkit.nl())  # also for an empty `[dependencies]`


def _dependency_anchor(document: Any) -> str | None:
    """The top-level dependency section that comes last in the file, if any."""
    body = getattr(document, "body", None)
    if body is None or not hasattr(document, "_insert_after"):
        return None
    last = None
    for key, _item in body:
        if key is not None and key.key in _DEPENDENCY_SECTIONS:
            last = key.key
    return last


def _sorted_position(table: Any, key: str) -> str | None | bool:
    """For a header table whose keys are sorted, the key to insert after (None = first).
    False when the table is not sorted or not a plain header table (append, like `cargo add`)."""
    from tomlkit.items import Table

    if not isinstance(table, Table) or table.is_super_table() or not hasattr(table.value, "_insert_after"):
        return False
    keys = list(table.keys())
    if len(keys) < 2 or keys != sorted(keys):
        return False
    before = [k for k in keys if k < key]
    return before[-1] if before else None


def _insert(table: Any, key: str, item: Any) -> None:
    """Add `key = item`: at its sorted place in a sorted table, else after the last key
    (before the blank line that separates the table from the next one)."""
    position = _sorted_position(table, key)
    if position is False:
        position = _last_key_before_trailing_blank(table)
    if position is False:
        table[_toml_key(key)] = item
    elif position is None:
        first = next(iter(table.keys()))
        index = next(i for i, (k, _) in enumerate(table.value.body) if k is not None and k.key == first)
        table.value._insert_at(index, _toml_key(key), item)
    else:
        table.value._insert_after(position, _toml_key(key), item)


def _last_key_before_trailing_blank(table: Any) -> str | bool:
    """The last key of a header table that ends with blank lines, or False (plain append)."""
    from tomlkit.items import Table, Whitespace

    if not isinstance(table, Table) or table.is_super_table():
        return False
    body = table.value.body
    if not body or not isinstance(body[-1][1], Whitespace):
        return False
    keys = [k.key for k, v in body if k is not None and not isinstance(v, Table)]
    return keys[-1] if keys else False


def _outermost_inline(doc: Any, path: Sequence[str]) -> int | None:
    """Length of the shortest prefix of `path` that names an inline table, if any."""
    node = doc
    for depth, key in enumerate(path):
        if key not in node:
            return None
        node = node[key]
        if _is_inline(node):
            return depth + 1
    return None


def _replace_value(holder: Any, key: str, value: Any) -> None:
    """Put a freshly rendered value where another was, keeping the line's comment and spacing."""
    old = holder[key]
    item = _toml_item(value)
    old_trivia = getattr(old, "trivia", None)
    holder[key] = item
    new_trivia = getattr(holder[key], "trivia", None)
    if old_trivia is not None and new_trivia is not None and old_trivia.comment:
        new_trivia.comment_ws = old_trivia.comment_ws
        new_trivia.comment = old_trivia.comment
        new_trivia.trail = old_trivia.trail


def _tomlkit_apply(doc: Any, op: _Op) -> list[Any]:
    """Apply one operation to the tomlkit document; returns the header tables it created."""
    created: list[Any] = []
    if isinstance(op, _Put):
        inline_depth = _outermost_inline(doc, op.path[:-1])
        if inline_depth is not None:
            # Adding a key inside an inline table: render the whole inline table again in
            # cargo's style, rather than let tomlkit glue the key on (`{ a = 1, b = 2}`).
            outer = op.path[:inline_depth]
            plain = {outer[-1]: _tomlkit_container(doc, outer[:-1])[outer[-1]].unwrap()}
            _plain_apply(plain, _Put(op.path[inline_depth - 1 :], op.value))
            _replace_value(_tomlkit_container(doc, outer[:-1]), outer[-1], plain[outer[-1]])
            return created
        holder = _tomlkit_container(doc, op.path[:-1], created)
        key = op.path[-1]
        if key in holder:
            _replace_value(holder, key, op.value)
        else:
            _insert(holder, key, _toml_item(op.value))
    elif isinstance(op, _Move):
        from tomlkit.items import InlineTable, String

        source = _tomlkit_container(doc, op.source[:-1])
        item = source[op.source[-1]]
        keep_item = isinstance(item, (String, InlineTable))  # keeps quoting and trailing comment
        plain = item.unwrap() if hasattr(item, "unwrap") else item
        del source[op.source[-1]]
        destination = _tomlkit_container(doc, op.destination[:-1], created)
        _insert(destination, op.destination[-1], item if keep_item else _toml_item(plain))
    elif isinstance(op, _Append):
        array = _tomlkit_container(doc, op.path[:-1])[op.path[-1]]
        for value in op.items:
            array.append(value)
    return created


def _apply_op(doc: Any, op: _Op) -> None:
    """Apply one operation; new header tables end with a blank line, as cargo writes them."""
    import tomlkit
    from tomlkit.items import Table, Whitespace

    for table in _tomlkit_apply(doc, op):
        if not isinstance(table, Table) or table.is_super_table():
            continue
        if table.value.body and not isinstance(table.value.body[-1][1], Whitespace):
            table.add(tomlkit.nl())


def _finish(new_text: str, original: str) -> str:
    """Keep the file's own number of trailing newlines (a new table at the end of the file
    brings a blank line that the file did not have)."""
    trailing = len(original) - len(original.rstrip("\n"))
    return new_text.rstrip("\n") + "\n" * max(1, trailing)


def _without_empty_tables(value: Any) -> Any:
    """Cargo reads an empty table and a missing one alike (moving the last
    `[dependencies.x]` out leaves no `dependencies` key in the text)."""
    if isinstance(value, dict):
        pruned = {k: _without_empty_tables(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty_tables(v) for v in value]
    return value


def edit_manifest(text: str, changes: Sequence[Change], *, path_for_errors: str) -> ManifestEdit:
    """Apply every change that does not conflict; report the ones that do.

    Pure: reads nothing but `text`. The result's text means exactly the old document plus
    the planned operations (checked with tomllib; a mismatch is a bug and raises
    ManifestVerificationError)."""
    original = text
    plain = parse_toml(text, path_for_errors=path_for_errors, hint=UNPARSABLE_HINT)
    expected = copy.deepcopy(plain)
    doc = None
    applied: list[Change] = []
    done: list[Change] = []
    conflicts: list[Conflict] = []
    notes: list[str] = []
    for change in changes:
        resolution = _resolve(change, expected, path_for_errors)
        notes.extend(resolution.notes)
        if resolution.conflict is not None:
            conflicts.append(resolution.conflict)
            continue
        if resolution.done or not resolution.ops:
            done.append(change)
            continue
        if doc is None:
            doc = _parse_document(text, path_for_errors=path_for_errors)
        for op in resolution.ops:
            _apply_op(doc, op)
            _plain_apply(expected, op)
        applied.append(change)
    if doc is not None:
        import tomlkit

        text = _finish(tomlkit.dumps(doc), original)
    if applied:
        actual = parse_toml(text, path_for_errors=path_for_errors)
        if _without_empty_tables(actual) != _without_empty_tables(expected):
            raise ManifestVerificationError(
                f"{path_for_errors}: the edited TOML does not mean what was planned:\n"
                f"  planned: {json.dumps(expected, sort_keys=True)}\n  written: {json.dumps(actual, sort_keys=True)}"
            )
    return ManifestEdit(
        path=path_for_errors,
        original=original,
        text=text,
        applied=tuple(applied),
        already_done=tuple(done),
        conflicts=tuple(conflicts),
        notes=tuple(notes),
    )


def apply_changes(text: str, changes: Sequence[Change], *, path_for_errors: str) -> str:
    """All or nothing: the edited text, or ManifestConflictError listing every conflict."""
    edit = edit_manifest(text, changes, path_for_errors=path_for_errors)
    if edit.conflicts:
        raise ManifestConflictError(edit.conflicts)
    return edit.text


@dataclass(frozen=True)
class FileChanges:
    """The changes planned for one file (a Cargo.toml or a .cargo/config.toml)."""

    path: Path
    changes: tuple[Change, ...]

    def edit(self) -> ManifestEdit:
        """Read the file (a missing config file counts as empty) and edit it in memory."""
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        return edit_manifest(text, self.changes, path_for_errors=str(self.path))


# ---------------------------------------------------------------------------
# Plans for a ported crate and its consumer
# ---------------------------------------------------------------------------


def plan_socket_dependency(profile: Profile) -> list[Change]:
    """The ported crate depends on the socket crate for the gated (WasmEdge) target only."""
    return [add_target_dependency(profile.gate, profile.socket_crate, DependencySpec(version=profile.socket_version))]


def plan_consumer_patch(
    consumer_manifest: Path, crate_name: str, ported_crate_dir: Path, registry: str = "crates-io"
) -> list[Change]:
    """The consumer (workspace root) takes the ported copy instead of the registry's crate."""
    relative = os.path.relpath(ported_crate_dir.resolve(), consumer_manifest.resolve().parent)
    return [AddPatch(crate_name, DependencySpec(path=Path(relative).as_posix()), registry)]


def plan_wasm_rustflags(profile: Profile, cfgs: Sequence[str]) -> list[Change]:
    """`--cfg` flags for the gated target only (in `.cargo/config.toml`)."""
    return [AddRustCfgs(f"cfg({profile.gate})", tuple(cfgs))] if cfgs else []


# ---------------------------------------------------------------------------
# The "patch was used" check
# ---------------------------------------------------------------------------


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
        if p.get("source") is None or not str(p.get("source")).startswith("registry+")
    }
    for name in names:
        if name in unused:
            results.append(PatchUse(name, unused[name], False, _why_unused(name, unused[name], metadata)))
        elif name in by_name:
            results.append(PatchUse(name, by_name[name]["version"], True))
        else:
            results.append(PatchUse(name, "", False, f"no [patch] entry for `{name}` reached the crate graph"))
    return PatchCheck(consumer_manifest, tuple(results))
