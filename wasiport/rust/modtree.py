"""A crate's module declarations: which file declares which, and which a cfg drops.

Two questions, one reading of `mod` items:

- `module_tree(root)`: the files a target's root reaches by following `mod name;`
  (for `apply`, to know which root a file belongs to);
- `module_cfgd_out(path)`: whether the `mod` item that declares a file (or one of
  its ancestors) is cfg'd out for the wasm target (`#[cfg(unix)] mod unix;`), for
  every command's answer to which files make a crate (see wasiport.check.files).

Both see modules declared inside macros (`cfg_net! { pub mod net; }`, whose body is
re-parsed as items; a cfg on the macro counts) and `#[path = "..."]`.

Plain classes and no dataclasses: `check` imports this (see wasiport/model.py).
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from wasiport.rust import cfg as cfgmod
from wasiport.rust import syntax
from wasiport.rust.source import parse_bytes, read_rust

# Compiled (by `re`'s cache) at first use: `check` imports this module, and a run served
# from its cache never asks.
_PATH_ATTRIBUTE = r'#\s*\[\s*path\s*=\s*"([^"]+)"\s*\]'
_ANY_MOD_DECLARATION = rb"\bmod\s+\w+\s*;"
MAX_MACRO_DEPTH = 4  # macros inside macros that declare modules: a few levels in real crates
MAX_MODULE_DEPTH = 16


class ModuleTree:
    """The files a target root reaches (the root first) and the `mod x;` whose file is missing."""

    __slots__ = ("root", "files", "missing")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []
        self.missing: list[str] = []


class ModItem:
    """One `mod name ...` item as written: in the file itself or in a macro body."""

    __slots__ = ("name", "path_attribute", "body", "data", "cfgd_out", "inline_path")

    def __init__(self, name: str, path_attribute: str | None, body, data: bytes, cfgd_out: bool, inline_path: tuple[str, ...]) -> None:
        self.name = name
        self.path_attribute = path_attribute
        self.body = body  # the declaration_list of an inline module, None for `mod name;`
        self.data = data  # the bytes `body` indexes (a macro body's, for macro-declared items)
        self.cfgd_out = cfgd_out  # its cfg (or an enclosing macro's or inline module's) is false
        self.inline_path = inline_path  # the inline modules it is nested in, outermost first


def mod_items(root, data: bytes, target: cfgmod.Target = cfgmod.WASI, *, macro_depth: int = 0) -> Iterator[ModItem]:
    """Every `mod` item of a file at module level (inside inline modules and macro bodies too)."""
    stack: list[tuple[object, bytes, bool, tuple[str, ...]]] = [(root, data, False, ())]
    while stack:
        node, node_data, out, inline = stack.pop()
        for child in node.named_children:
            if child.type == "mod_item":
                item = _mod_item(child, node_data, target, out, inline)
                if item is None:
                    continue
                yield item
                if item.body is not None:
                    stack.append((item.body, node_data, item.cfgd_out, (*inline, item.name)))
            elif child.type in ("macro_invocation", "expression_statement") and macro_depth < MAX_MACRO_DEPTH:
                yield from _macro_mod_items(child, node_data, target, out, inline, macro_depth)


def _mod_item(node, data: bytes, target: cfgmod.Target, out: bool, inline: tuple[str, ...]) -> ModItem | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return ModItem(
        data[name.start_byte : name.end_byte].decode("utf-8", "replace"),
        path_attribute(node, data),
        node.child_by_field_name("body"),
        data,
        out or syntax.node_cfg(node, data, target) is False,
        inline,
    )


def _macro_mod_items(node, data: bytes, target: cfgmod.Target, out: bool, inline: tuple[str, ...], depth: int) -> Iterator[ModItem]:
    """The `mod` items of a macro body that declares modules (`cfg_net! { pub mod net; }`)."""
    macro = node if node.type == "macro_invocation" else next((c for c in node.named_children if c.type == "macro_invocation"), None)
    if macro is None:
        return
    trees = [c for c in macro.children if c.type == "token_tree"]
    if not trees or not re.search(_ANY_MOD_DECLARATION, data[trees[-1].start_byte : trees[-1].end_byte]):
        return
    out = out or syntax.node_cfg(macro, data, target) is False or (node is not macro and syntax.node_cfg(node, data, target) is False)
    body = data[trees[-1].start_byte + 1 : trees[-1].end_byte - 1]
    for item in mod_items(_parsed_body(body).root_node, body, target, macro_depth=depth + 1):
        item.cfgd_out = item.cfgd_out or out
        item.inline_path = (*inline, *item.inline_path)
        yield item


@lru_cache(maxsize=16)
def _parsed(data: bytes):
    """A whole file's tree (read as every file is, see rust/source.read_rust), by content:
    each module file asks for its parent's."""
    return read_rust(data).tree


@lru_cache(maxsize=16)
def _parsed_body(data: bytes):
    """A macro body's tree, re-parsed as items."""
    return parse_bytes(data)


def path_attribute(item, data: bytes) -> str | None:
    for attribute in syntax.outer_attributes(item):
        match = re.search(_PATH_ATTRIBUTE, data[attribute.start_byte : attribute.end_byte].decode("utf-8", "replace"))
        if match:
            return match.group(1)
    return None


# -- following `mod x;` from a root ---------------------------------------------------------------


def module_tree(root: Path, target: cfgmod.Target = cfgmod.WASI) -> ModuleTree:
    tree = ModuleTree(root)
    seen: set[Path] = set()
    queue: list[tuple[Path, Path]] = [(root.resolve(), root.resolve().parent)]
    while queue:
        path, directory = queue.pop(0)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        tree.files.append(path)
        data = path.read_bytes()
        if b"mod" not in data:
            continue
        for child, child_dir in declared_module_files(_parsed(data).root_node, data, path, directory, target):
            if child is None:
                tree.missing.append(f"{path}: {child_dir}")
            else:
                queue.append((child, child_dir))
    return tree


def declared_module_files(root, data: bytes, path: Path, directory: Path, target: cfgmod.Target = cfgmod.WASI):
    """(file, directory for its own submodules) for each `mod x;` of the file that is not cfg'd
    out; (None, description) for one whose file does not exist."""
    for item in mod_items(root, data, target):
        if item.cfgd_out or item.body is not None:
            continue
        current_dir = directory.joinpath(*item.inline_path)  # inline module `a`: `mod y;` lives in <dir>/a/y.rs
        if item.path_attribute is not None:
            # relative to the declaring file's folder (outside inline modules), or the inline module's
            base = path.parent if not item.inline_path else current_dir
            explicit = (base / item.path_attribute).resolve()
            if explicit.is_file():
                yield explicit, submodule_dir(explicit, is_root=False)
            else:
                yield None, f'mod {item.name} (#[path = "{item.path_attribute}"])'
            continue
        flat = current_dir / f"{item.name}.rs"
        nested = current_dir / item.name / "mod.rs"
        if flat.is_file():
            yield flat, current_dir / item.name
        elif nested.is_file():
            yield nested, current_dir / item.name
        else:
            yield None, f"mod {item.name}"


def submodule_dir(path: Path, is_root: bool) -> Path:
    """Where `mod x;` in `path` looks for x.rs: beside a root or mod.rs, else in a folder named after the file."""
    if is_root or path.name == "mod.rs":
        return path.parent
    return path.with_suffix("")


# -- modules cfg'd out as a whole ------------------------------------------------------------------


def module_cfgd_out(path: Path, memo: dict[Path, bool], depth: int = 0, target: cfgmod.Target = cfgmod.WASI, declaring=None) -> bool:
    """Whether the `mod` item that declares this file (or an ancestor module) is cfg'd out.
    `declaring`: a stand-in for `declaring_item` that answers from a cache."""
    if path in memo:
        return memo[path]
    memo[path] = False
    if depth > MAX_MODULE_DEPTH or looks_like_crate_root(path):
        return False
    declared = (declaring or declaring_item)(path, target)
    if declared is None:
        return False
    parent_file, cfg_false = declared
    result = cfg_false or module_cfgd_out(parent_file, memo, depth + 1, target, declaring)
    memo[path] = result
    return result


ROOT_NAMES = ("lib.rs", "main.rs")


def looks_like_crate_root(path: Path) -> bool:
    """src/lib.rs, src/main.rs, src/bin/*.rs: a target root by its place (the walk of
    wasiport.check.files works it out per directory)."""
    if path.parent.name == "src" and path.name in ROOT_NAMES:
        return True
    return path.parent.name == "bin" and path.parent.parent.name == "src"


def declaring_candidates(path: Path) -> list[str]:
    """The files that may declare `mod <path's module>;` (see declaring_item), as strings:
    a warm run asks for those of every file with findings."""
    directory, name = os.path.split(str(path))
    if name == "mod.rs":
        directory = os.path.dirname(directory)
    parent, base = os.path.split(directory)
    return [os.path.join(directory, "mod.rs"), os.path.join(directory, "lib.rs"), os.path.join(directory, "main.rs"), os.path.join(parent, base + ".rs")]


def declaring_item(path: Path, target: cfgmod.Target = cfgmod.WASI) -> tuple[Path, bool] | None:
    """(the file declaring `path`'s module, whether every declaration is cfg'd out), or None."""
    module = path.parent.name if path.name == "mod.rs" else path.stem
    pattern = re.compile(rb"\bmod\s+" + re.escape(module.encode()) + rb"\s*;")
    for candidate in map(Path, declaring_candidates(path)):
        if candidate == path or not candidate.is_file():
            continue
        data = candidate.read_bytes()
        if not pattern.search(data):
            continue
        found = module_declared_out(_parsed(data).root_node, data, module, target)
        if found is not None:
            return candidate, found
        return None
    return None


def module_declared_out(root, data: bytes, module: str, target: cfgmod.Target) -> bool | None:
    """Whether `mod <module>;` in this file is cfg'd out (None: not declared here). A module
    declared in several places (under different cfgs) is out only if every declaration is."""
    outcomes = [item.cfgd_out for item in mod_items(root, data, target) if item.body is None and item.name == module and not item.inline_path]
    return all(outcomes) if outcomes else None
