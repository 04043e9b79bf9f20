"""Format-preserving edits to `Cargo.toml` and `.cargo/config.toml` (the editor).

`edit_manifest` turns a list of changes (`wasiport.cargo.changes`) into primitive
operations against the parsed document, refuses any change that would overwrite a
user's own differing setting (a `Conflict`), applies the rest with tomlkit so that
comments, key order, quoting and table style survive, and checks with the TOML reader
that the meaning of the new text is exactly the old meaning plus the planned
operations. A second application finds everything already in place and returns the
text unchanged.
"""
from __future__ import annotations

import copy
import fnmatch
import json
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import InlineTable, KeyType, SingleKey, String, Table, Whitespace

from wasiport.cargo.changes import (
    DEPENDENCY_KINDS,
    AddPatch,
    AddPortsSource,
    AddRustCfgs,
    Change,
    Conflict,
    DependencySpec,
    DepTable,
    EnableFeatures,
    ExcludeFromWorkspace,
    ManifestConflictError,
    ManifestEdit,
    ManifestVerificationError,
    MoveDependency,
    SetDependency,
    BARE_KEY,
    dotted_key,
    key_text,
    render_value,
)
from wasiport.cargo.versions import requirement_within, target_applies_to_wasm
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.tomlread import parse_toml

# Cargo reads one spelling per kind but still accepts the old underscore spellings.
_KIND_ALIASES = {"dev_dependencies": "dev-dependencies", "build_dependencies": "build-dependencies"}
UNPARSABLE_HINT = "fix the file by hand; wasiport does not edit a manifest it cannot parse"

# ---------------------------------------------------------------------------
# Parsing with tomlkit (tomlread's parse_toml names a syntax error's file, line and column)
# ---------------------------------------------------------------------------

def _parse_document(text: str, *, path_for_errors: str) -> Any:
    """Parse with tomlkit, which keeps formatting. Call `parse_toml` first: tomllib gives
    the precise position of a syntax error."""
    try:
        return tomlkit.parse(text)
    except ParseError as err:  # tomllib accepted it, so this is a tomlkit limitation
        raise UserError(
            f"{path_for_errors}:{err.line}:{err.col + 1}: cannot edit this TOML while keeping its formatting: {err}",
        ) from None


def _normalise_cfg(key: str) -> str:
    return re.sub(r"\s+", "", key)


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
# tomlkit items rendered the way `wasiport.cargo.changes` renders values
# ---------------------------------------------------------------------------


def _toml_item(value: Any) -> Any:
    """A tomlkit item that renders exactly as `render_value` does (cargo's style)."""
    return tomlkit.parse(f"v = {render_value(value)}\n")["v"]


def _toml_key(key: str) -> Any:
    if BARE_KEY.match(key):
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
                f"{path_for_errors}: `{dotted_key(path[:depth])}` is a {type(node).__name__}, expected a table"
            )
        if key not in node:
            return
        node = node[key]
    if not isinstance(node, Mapping):
        raise UserError(f"{path_for_errors}: `{dotted_key(path)}` is a {type(node).__name__}, expected a table")


def _spec_satisfies(existing: Any, wanted: DependencySpec) -> bool:
    try:
        have = DependencySpec.from_plain(existing)
    except ValueError:
        return False
    if have.workspace:
        return False  # the real value lives in the workspace root: cannot judge it here
    if (have.package or None) != (wanted.package or None):
        return False
    if (have.registry or None) != (wanted.registry or None):
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
    if isinstance(change, AddPortsSource):
        return _resolve_ports_source(change, doc, path_for_errors)
    raise TypeError(f"unknown manifest change {change!r}")


def _conflict(path: str, change: Change, key: Sequence[str], existing: Any, reason: str) -> _Resolution:
    return _Resolution(conflict=Conflict(path, change, dotted_key(key), render_value(existing), reason))


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
                where, change, dotted_key(source), "(missing)", f"{change.name} is not declared in {change.source.header}"
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
    if any(_spec_satisfies(existing, earlier) for earlier in change.supersedes):
        note = f"{where}: [patch.{key_text(change.registry)}] {change.name} now takes the port as a registry crate"
        return _Resolution(ops=(_Put(key, change.spec.to_plain()),), notes=(note,))
    return _conflict(
        where,
        change,
        key,
        existing,
        f"the crate is already patched differently; wasiport wanted {change.spec.render()}",
    )


def _resolve_ports_source(change: AddPortsSource, doc: Mapping[str, Any], where: str) -> _Resolution:
    ops = []
    for key, value in change.settings():
        _expect_table(doc, key[:-1], where)
        existing = _lookup(doc, key)
        if existing is None:
            ops.append(_Put(key, value))
        elif existing != value:
            return _conflict(where, change, key, existing, f"wasiport's ports registry needs {json.dumps(value)} there")
    return _Resolution(ops=tuple(ops), done=not ops)


def _resolve_features(change: EnableFeatures, doc: Mapping[str, Any], where: str) -> _Resolution:
    key = _table_path(doc, change.table) + (change.name,)
    existing = _lookup(doc, key)
    if existing is None:
        return _Resolution(
            conflict=Conflict(
                where, change, dotted_key(key), "(missing)", f"{change.name} is not declared in {change.table.header}"
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
                f"{where}: copied [build] rustflags {base} into [target.{key_text(target_key)}] rustflags, "
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
    return isinstance(node, InlineTable)


def _tomlkit_container(doc: Any, path: Sequence[str], created: list[Any] | None = None) -> Any:
    """Walk to the table at `path`, creating header tables on the way (super tables above
    the one that holds keys, so that cargo's `[target.'cfg(..)'.dependencies]` style results).
    Tables it creates are appended to `created`."""
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
            _insert_after_key(node, node, anchor, key, table)
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
    while isinstance(item, Table) and item.value.body and isinstance(item.value.body[-1][1], Table):
        item = item.value.body[-1][1]  # the sub-table printed last ([dependencies.serde], ...)
    if isinstance(item, Table) and (not item.value.body or not isinstance(item.value.body[-1][1], Whitespace)):
        item.add(tomlkit.nl())  # also for an empty `[dependencies]`


def _dependency_anchor(document: Any) -> str | None:
    """The top-level dependency section that comes last in the file, if any."""
    body = getattr(document, "body", None)
    if body is None or not hasattr(document, "_insert_at"):
        return None
    last = None
    for key, _item in body:
        if key is not None and key.key in _DEPENDENCY_SECTIONS:
            last = key.key
    return last


def _sorted_position(table: Any, key: str) -> str | None | bool:
    """For a header table whose keys are sorted, the key to insert after (None = first).
    False when the table is not sorted or not a plain header table (append, like `cargo add`)."""
    if not isinstance(table, Table) or table.is_super_table() or not hasattr(table.value, "_insert_at"):
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
        _insert_after_key(table, table.value, position, key, item)


def _insert_after_key(holder: Any, container: Any, after: str, key: str, item: Any) -> None:
    """Add `key = item` to HOLDER (a document or table) right after the key AFTER of its
    CONTAINER. tomlkit 0.15.3 dropped its insert-after; its insert-at (in every release we
    support) takes the index after AFTER's last entry, and a key that goes last is appended."""
    body = container.body
    index = max(i for i, (k, _) in enumerate(body) if k is not None and k.key == after) + 1
    if index >= len(body):
        holder[_toml_key(key)] = item
    else:
        container._insert_at(index, _toml_key(key), item)


def _last_key_before_trailing_blank(table: Any) -> str | bool:
    """The last key of a header table that ends with blank lines, or False (plain append)."""
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
