"""Small helpers over tree-sitter-rust nodes: attributes, cfg, enclosing scopes."""
from __future__ import annotations

from typing import Iterator

from wasiport.rust import cfg as cfgmod

# Nodes whose outer attributes are children (the rest get them as preceding siblings).
_ATTRIBUTES_AS_CHILDREN = {"match_arm", "field_initializer"}
MODULE_SCOPES = {"source_file"}  # plus declaration_list under mod_item, see is_module_scope
SCOPE_NODES = {"source_file", "declaration_list", "block"}


def is_module_scope(node) -> bool:
    if node.type == "source_file":
        return True
    return node.type == "declaration_list" and node.parent is not None and node.parent.type == "mod_item"


def outer_attributes(node) -> Iterator:
    """`#[...]` attribute_item nodes that apply to `node`."""
    if node.type in _ATTRIBUTES_AS_CHILDREN:
        for child in node.children:
            if child.type == "attribute_item":
                yield child
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in ("attribute_item", "line_comment", "block_comment"):
        if sibling.type == "attribute_item":
            yield sibling
        sibling = sibling.prev_named_sibling


def inner_attributes(scope) -> Iterator:
    """`#![...]` items at the top of a file, module body or block."""
    for child in scope.named_children:
        if child.type == "inner_attribute_item":
            yield child
        elif child.type not in ("line_comment", "block_comment"):
            # inner attributes must come first; stop at the first real item
            if child.type != "attribute_item":
                break


def cfg_predicates(node, data: bytes) -> Iterator[str]:
    """The cfg predicates written directly on `node` (outer attributes, and inner ones for scopes)."""
    attrs = list(outer_attributes(node))
    if node.type in SCOPE_NODES:
        attrs.extend(inner_attributes(node))
    for attr in attrs:
        text = data[attr.start_byte : attr.end_byte].decode("utf-8", "replace")
        predicate = cfgmod.cfg_of_attribute(text)
        if predicate is not None:
            yield predicate


def node_cfg(node, data: bytes, target: cfgmod.Target = cfgmod.WASI) -> cfgmod.Tri:
    """Whether `node` is compiled for the target, considering it and all its ancestors.

    A predicate that does not parse counts as unknown: we would rather report
    a site than hide it behind an attribute we misread."""
    result: cfgmod.Tri = True
    current = node
    while current is not None:
        for predicate in cfg_predicates(current, data):
            try:
                value = cfgmod.evaluate(predicate, target)
            except cfgmod.CfgSyntaxError:
                value = None
            if value is False:
                return False
            if value is None:
                result = None
        current = current.parent
    return result


def ancestors(node) -> Iterator:
    current = node.parent
    while current is not None:
        yield current
        current = current.parent


def inside(node, types: set[str]) -> bool:
    return any(a.type in types for a in ancestors(node))


def path_segments(node, data: bytes) -> list[str] | None:
    """`std::net::TcpStream` -> ['std', 'net', 'TcpStream']; a leading `::` gives ['', ...].

    Works for identifier, type_identifier, scoped_identifier, scoped_type_identifier,
    and generic paths (`Foo::<T>::bar` keeps only the names). None if not a path."""
    kind = node.type
    if kind in ("identifier", "type_identifier", "field_identifier", "self", "crate", "super", "metavariable"):
        return [data[node.start_byte : node.end_byte].decode("utf-8", "replace")]
    if kind in ("scoped_identifier", "scoped_type_identifier"):
        path = node.child_by_field_name("path")
        name = node.child_by_field_name("name")
        if name is None:
            return None
        if path is None:
            # `::std` (leading colons) or `<T as Trait>::x` (bracketed type)
            first = node.children[0] if node.children else None
            if first is not None and first.type == "::":
                return ["", data[name.start_byte : name.end_byte].decode()]
            return None
        head = path_segments(path, data)
        if head is None:
            return None
        return head + [data[name.start_byte : name.end_byte].decode("utf-8", "replace")]
    if kind == "generic_type":
        inner = node.child_by_field_name("type")
        return path_segments(inner, data) if inner is not None else None
    if kind == "generic_function":
        inner = node.child_by_field_name("function")
        return path_segments(inner, data) if inner is not None else None
    return None
