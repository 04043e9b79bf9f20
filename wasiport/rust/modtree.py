"""Which files belong to a crate target: follow `mod name;` from the target's root file.

Files behind a `mod` that is cfg'd out for the wasm target are not part of
the port (`#[cfg(unix)] mod unix;`), and neither are files no root reaches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from wasiport.rust import cfg as cfgmod
from wasiport.rust import syntax
from wasiport.rust.source import read_rust

_PATH_ATTRIBUTE = re.compile(r'#\s*\[\s*path\s*=\s*"([^"]+)"\s*\]')


@dataclass
class ModuleTree:
    root: Path
    files: list[Path] = field(default_factory=list)  # the root first
    missing: list[str] = field(default_factory=list)  # `mod x;` whose file was not found


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
        ast = read_rust(data).tree.root_node
        for child, child_dir in _declared_modules(ast, data, path, directory, target):
            if child is None:
                tree.missing.append(f"{path}: {child_dir}")
            else:
                queue.append((child, child_dir))
    return tree


def _declared_modules(root, data: bytes, path: Path, directory: Path, target: cfgmod.Target = cfgmod.WASI):
    """(file, directory for its own submodules) for each `mod x;` in the file."""
    stack = [(root, directory)]
    while stack:
        node, current_dir = stack.pop()
        for child in node.named_children:
            if child.type != "mod_item":
                continue
            if syntax.node_cfg(child, data, target) is False:
                continue
            name_node = child.child_by_field_name("name")
            if name_node is None:
                continue
            name = data[name_node.start_byte : name_node.end_byte].decode()
            body = child.child_by_field_name("body")
            explicit = _path_attribute(child, data)
            if body is not None:
                # inline module: its `mod y;` items live in <dir>/<name>/y.rs
                stack.append((body, current_dir / name))
                continue
            if explicit is not None:
                target = (path.parent / explicit).resolve()
                if target.is_file():
                    yield target, submodule_dir(target, is_root=False)
                else:
                    yield None, f'mod {name} (#[path = "{explicit}"])'
                continue
            flat = current_dir / f"{name}.rs"
            nested = current_dir / name / "mod.rs"
            if flat.is_file():
                yield flat, current_dir / name
            elif nested.is_file():
                yield nested, current_dir / name
            else:
                yield None, f"mod {name}"


def _path_attribute(item, data: bytes) -> str | None:
    for attribute in syntax.outer_attributes(item):
        match = _PATH_ATTRIBUTE.search(data[attribute.start_byte : attribute.end_byte].decode("utf-8", "replace"))
        if match:
            return match.group(1)
    return None


def submodule_dir(path: Path, is_root: bool) -> Path:
    """Where `mod x;` in `path` looks for x.rs: beside a root or mod.rs, else in a folder named after the file."""
    if is_root or path.name == "mod.rs":
        return path.parent
    return path.with_suffix("")
