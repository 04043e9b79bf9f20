"""The named transforms a rule can ask for, as pure functions returning byte edits.

The port is *gated*, never replaced: a `use` of std's socket types becomes a
pair of `use` declarations, the std one under `#[cfg(not(<gate>))]` and one
of the compat module's types under `#[cfg(<gate>)]`. Types that std and
WasmEdge share (`SocketAddr`, `Shutdown`, ...) keep coming from `std::net`.
Call sites are not edited: the compat module offers std's signatures.

- gate-use:   split a use declaration and add the gated pair.
- route-path: `std::net::TcpStream` in code becomes `wasiport_net::TcpStream`,
              where a gated alias makes `wasiport_net` mean `std::net` natively.

Each is registered once in TRANSFORMS with what it needs from the rule's constraints
(`gate-use` needs an `imports` constraint: it switches the items that one found); the
loader (engine/rules.py) checks a rule against it, the matcher calls it.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from wasiport.model import Edit, Profile
from wasiport.rust import syntax
from wasiport.rust.names import UseItem, normalize, use_items

STD_NET = ("std", "net")
# The std::net items the port switches to the compat module; everything else is shared.
SWITCHED = frozenset({"TcpStream", "TcpListener", "UdpSocket", "ToSocketAddrs", "Incoming"})


class FileContext(NamedTuple):  # not a dataclass: the check path imports this (see wasiport/model.py)
    """What the transforms need to know about the file being edited."""

    path: str
    data: bytes
    newline: str
    profile: Profile
    is_crate_root: bool = False


class Transform(NamedTuple):
    name: str
    needs: tuple[str, ...]  # constraints the rule's `where` must hold (their bindings feed the edits)
    edits: Callable  # (site node, Bindings, FileContext) -> list[Edit]
    doc: str


TRANSFORMS: dict[str, Transform] = {}


def transform(name: str, *, needs: tuple[str, ...] = (), doc: str):
    """Register the decorated function as transform `name` (once)."""

    def register(edits: Callable) -> Callable:
        assert name not in TRANSFORMS, f"transform {name} registered twice"
        TRANSFORMS[name] = Transform(name, needs, edits, doc)
        return edits

    return register


def is_switched_path(path: tuple[str, ...]) -> bool:
    path = normalize(path)
    return len(path) == 3 and path[:2] == STD_NET and path[2] in SWITCHED


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def _indent_at(data: bytes, offset: int) -> str:
    start = _line_start(data, offset)
    end = start
    while end < len(data) and data[end : end + 1] in (b" ", b"\t"):
        end += 1
    return data[start:end].decode()


def _text(data: bytes, node) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _render_item(item: UseItem) -> str:
    last = normalize(item.path)[-1]
    return last if item.name == last else f"{last} as {item.name}"


def gated_pair(native: str, wasm: str, ctx: FileContext, indent: str, attributes: list[str], visibility: str) -> list[str]:
    """Lines of `#[cfg(not(G))] <vis>use <native>;` and `#[cfg(G)] <vis>use <wasm>;`."""
    gate = ctx.profile.gate
    vis = f"{visibility} " if visibility else ""
    lines: list[str] = []
    for cfg, target in ((f"#[cfg(not({gate}))]", native), (f"#[cfg({gate})]", wasm)):
        lines.extend(indent + a for a in attributes)
        lines.append(indent + cfg)
        lines.append(f"{indent}{vis}use {target};")
    return lines


def compat_path(ctx: FileContext) -> str:
    return f"crate::{ctx.profile.compat_module}"


def gate_use(declaration, switch: list[UseItem], ctx: FileContext) -> list[Edit]:
    """Move the `switch` items of a use declaration into a gated pair."""
    data = ctx.data
    items = use_items(declaration, data)
    switch_nodes = {item.node.id for item in switch}
    indent = _indent_at(data, declaration.start_byte)
    attributes = [_text(data, a) for a in reversed(list(syntax.outer_attributes(declaration)))]
    visibility_node = next((c for c in declaration.children if c.type == "visibility_modifier"), None)
    visibility = _text(data, visibility_node) if visibility_node is not None else ""

    lines: list[str] = []
    plain = [i for i in switch if not i.is_glob and normalize(i.path) != STD_NET]
    if plain:
        names = [_render_item(i) for i in plain]
        listed = names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"
        lines += gated_pair(f"std::net::{listed}", f"{compat_path(ctx)}::{listed}", ctx, indent, attributes, visibility)
    for item in switch:
        if item.is_glob:
            lines += gated_pair("std::net::*", f"{compat_path(ctx)}::*", ctx, indent, attributes, visibility)
        elif normalize(item.path) == STD_NET:
            native = "std::net" if item.name == "net" else f"std::net as {item.name}"
            lines += gated_pair(native, f"{compat_path(ctx)} as {item.name}", ctx, indent, attributes, visibility)

    nl = ctx.newline
    if all(item.node.id in switch_nodes for item in items):
        # The whole declaration moves: replace it (and its attributes) by the pair.
        first = declaration
        attrs = list(syntax.outer_attributes(declaration))
        if attrs:
            first = attrs[-1]  # outer_attributes yields nearest first; the last is the topmost
        start = first.start_byte
        replacement = nl.join(lines)[len(indent) :]
        return [Edit(ctx.path, start, declaration.end_byte, replacement)]
    edits = _remove_items(declaration, switch_nodes, ctx)
    insertion = nl + nl.join(lines)
    edits.append(Edit(ctx.path, declaration.end_byte, declaration.end_byte, insertion))
    return edits


@transform("gate-use", needs=("imports",), doc="split the use declaration: std's items natively, the compat module's under the gate")
def gate_use_edits(site, bindings, ctx: FileContext) -> list[Edit]:
    return gate_use(site, bindings.switch, ctx) if bindings.switch else []


def _list_items(list_node) -> list:
    return [c for c in list_node.named_children if c.type not in ("line_comment", "block_comment", "attribute_item")]


def _removed_closure(node, switch_nodes: set[int]) -> bool:
    """Whether a use-tree node disappears: it is switched, or all of its list's items are."""
    if node.id in switch_nodes:
        return True
    if node.type == "scoped_use_list":
        inner = node.child_by_field_name("list")
        return inner is not None and all(_removed_closure(c, switch_nodes) for c in _list_items(inner))
    if node.type == "use_list":
        return all(_removed_closure(c, switch_nodes) for c in _list_items(node))
    return False


def _remove_items(declaration, switch_nodes: set[int], ctx: FileContext) -> list[Edit]:
    ranges: list[tuple[int, int]] = []
    stack = [declaration.child_by_field_name("argument")]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        list_node = node if node.type == "use_list" else node.child_by_field_name("list") if node.type == "scoped_use_list" else None
        if list_node is None:
            continue
        children = _list_items(list_node)
        removed = [_removed_closure(c, switch_nodes) for c in children]
        index = 0
        while index < len(children):
            if not removed[index]:
                stack.append(children[index])
                index += 1
                continue
            run_end = index
            while run_end + 1 < len(children) and removed[run_end + 1]:
                run_end += 1
            if run_end + 1 < len(children):
                # a kept item follows: delete the run up to it (commas and line breaks included)
                ranges.append((children[index].start_byte, children[run_end + 1].start_byte))
            elif index > 0:
                # the run ends the list: delete from the end of the last kept item
                ranges.append((children[index - 1].end_byte, children[run_end].end_byte))
            else:
                ranges.append((children[index].start_byte, children[run_end].end_byte))
            index = run_end + 1
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Edit(ctx.path, start, end, "") for start, end in merged]


def route_path(path_node, ctx: FileContext) -> list[Edit]:
    """`std::net::TcpStream` -> `wasiport_net::TcpStream`, plus the gated alias in the module."""
    prefix = path_node.child_by_field_name("path")
    if prefix is None:
        return []
    segments = syntax.path_segments(prefix, ctx.data)
    if segments not in (["std", "net"], ["", "std", "net"]):
        return []  # written through an alias (`net::TcpStream`): the alias's import is gated instead
    module = ctx.profile.compat_module
    edits = [Edit(ctx.path, prefix.start_byte, prefix.end_byte, module)]
    scope = next((a for a in syntax.ancestors(path_node) if syntax.is_module_scope(a)), None)
    if scope is not None:
        edits.append(_alias_insertion(scope, ctx))
    return edits


@transform("route-path", doc="a `std::net::X` path in code goes through the compat module's gated alias")
def route_path_edits(site, bindings, ctx: FileContext) -> list[Edit]:
    return route_path(site, ctx)


def _alias_insertion(scope, ctx: FileContext) -> Edit:
    gate = ctx.profile.gate
    module = ctx.profile.compat_module
    is_root = ctx.is_crate_root and scope.type == "source_file"
    uses = [c for c in scope.named_children if c.type == "use_declaration"]
    nl = ctx.newline
    if uses:
        anchor = uses[-1].end_byte
        indent = _indent_at(ctx.data, uses[-1].start_byte)
        lines = [f"#[cfg(not({gate}))]", f"use std::net as {module};"]
        if not is_root:
            lines += [f"#[cfg({gate})]", f"use crate::{module};"]
        return Edit(ctx.path, anchor, anchor, nl + nl.join(indent + line for line in lines))
    anchor, indent = body_start(scope, ctx.data)
    lines = [f"#[cfg(not({gate}))]", f"use std::net as {module};"]
    if not is_root:
        lines += [f"#[cfg({gate})]", f"use crate::{module};"]
    return Edit(ctx.path, anchor, anchor, "".join(indent + line + nl for line in lines))


def body_start(scope, data: bytes) -> tuple[int, str]:
    """Where new items go at the top of a module body: after `{`, inner attributes and
    inner doc comments; returns the offset (at a line start) and the indentation."""
    children = scope.named_children
    offset = scope.start_byte
    if scope.type == "declaration_list":
        offset = scope.start_byte + 1  # after `{`
    # Inner attributes and inner doc comments must precede every item; ordinary
    # comments may sit between them, so insert after the last inner one.
    for child in children:
        text = data[child.start_byte : child.end_byte]
        if child.type == "inner_attribute_item" or (child.type in ("line_comment", "block_comment") and (text.startswith(b"//!") or text.startswith(b"/*!"))):
            offset = child.end_byte
            continue
        if child.type in ("line_comment", "block_comment"):
            continue
        break
    # move to the start of the next line (a `//!` comment's node may end with its newline:
    # then the next line starts right there)
    newline = offset - 1 if offset > 0 and data[offset - 1 : offset] == b"\n" else data.find(b"\n", offset)
    line_start = newline + 1 if newline >= 0 else len(data)
    if scope.type == "source_file" and offset == scope.start_byte:
        line_start = 0 if not data.startswith(b"\xef\xbb\xbf") else 3
    first_item = next((c for c in children if c.start_byte >= line_start), None)
    indent = _indent_at(data, first_item.start_byte) if first_item is not None else ("    " if scope.type == "declaration_list" else "")
    return line_start, indent


def module_declaration(
    root_source_data: bytes,
    path: str,
    profile: Profile,
    newline: str,
    root_node,
    *,
    extern_crate: bool,
    path_attribute: str | None = None,
) -> Edit:
    """`#[cfg(G)] mod wasiport_net;` at the top of a crate root (after inner attributes).

    A bin root in src/bin/ shares src/wasiport_net.rs through `#[path]` (a file in
    src/bin/ would itself become a binary target)."""
    offset, indent = body_start(root_node, root_source_data)
    gate = profile.gate
    module = profile.compat_module
    lines = [f"// wasiport: std::net types backed by WasmEdge sockets (see {module}.rs)"]
    if extern_crate:  # edition 2015 needs it for `use` paths into the socket crate
        lines += [f"#[cfg({gate})]", f"extern crate {profile.socket_crate};"]
    lines += [f"#[cfg({gate})]"]
    if path_attribute:
        lines += [f'#[path = "{path_attribute}"]']
    lines += [f"mod {module};"]
    return Edit(path, offset, offset, "".join(indent + line + newline for line in lines) + newline)
