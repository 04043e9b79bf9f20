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
    # Child by child: `named_children` would build the list of every item of a
    # large file just to look at the first few.
    for index in range(scope.named_child_count):
        child = scope.named_child(index)
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


def _predicate_value(predicate: str, target: cfgmod.Target) -> cfgmod.Tri:
    try:
        return cfgmod.evaluate(predicate, target)
    except cfgmod.CfgSyntaxError:
        return None


class CfgCache:
    """`node_cfg` for many nodes of one tree, each ancestor's own cfg computed once.

    `node_cfg` walks every ancestor of a node and, for scope nodes, scans
    their first children for inner attributes; the matcher asks it for every
    candidate, so for a large file the same ancestors were evaluated over and
    over. Same answers as `node_cfg`, in the same evaluation order (a node's
    own predicates before its ancestors', stopping at the first False)."""

    def __init__(self, data: bytes, target: cfgmod.Target = cfgmod.WASI) -> None:
        self.data = data
        self.target = target
        # Without the word `cfg` there is no cfg attribute: everything is compiled.
        self.trivial = b"cfg" not in data
        self._chain: dict[int, cfgmod.Tri] = {}  # node id -> cfg of the node and all its ancestors
        self._predicates: dict[str, cfgmod.Tri] = {}

    def _own(self, node) -> cfgmod.Tri:
        result: cfgmod.Tri = True
        for predicate in cfg_predicates(node, self.data):
            value = self._predicates.get(predicate, _MISSING)
            if value is _MISSING:
                value = self._predicates[predicate] = _predicate_value(predicate, self.target)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    def __call__(self, node) -> cfgmod.Tri:
        if self.trivial:
            return True
        chain = self._chain
        pending: list[tuple[int, cfgmod.Tri]] = []
        current = node
        value: cfgmod.Tri = True  # above the root
        while current is not None:
            key = current.id
            if key in chain:
                value = chain[key]
                break
            own = self._own(current)
            if own is False:
                chain[key] = value = False
                break
            pending.append((key, own))
            current = current.parent
        for key, own in reversed(pending):
            if value is not False and (own is None or value is None):
                value = None
            chain[key] = value
        return value


_MISSING = object()


# The engine's own look-ups, one capture each (also parts of matcher's combined query).
COLLECT_KINDS = (
    "use_declaration", "struct_item", "enum_item", "union_item", "type_item", "trait_item", "function_item",
    "mod_item", "const_item", "static_item", "macro_definition",
)
COLLECT_PATTERN = "[" + " ".join(f"({kind})" for kind in COLLECT_KINDS) + "] @__collect"
INDEX_PATTERN = "[(struct_item) (enum_item) (function_item)] @__index"
MACRO_PATTERN = "(macro_invocation) @__macro"


class LazyQuery:
    """A tree-sitter query compiled at first use (importing this module stays cheap)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._query = None

    def get(self):
        if self._query is None:
            # Imported here (a cost rule, wasiport/model.py): only a file that is parsed pays for tree-sitter.
            import tree_sitter

            from wasiport.rust.source import language

            self._query = tree_sitter.Query(language(), self.text)
        return self._query


def captured(query: LazyQuery, root) -> list:
    """Every node any capture of `query` matches under `root`, in document order."""
    import tree_sitter

    nodes = [node for _pattern, captures in tree_sitter.QueryCursor(query.get()).matches(root) for found in captures.values() for node in found]
    nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
    return nodes


_SCOPES_AND_DECLARATIONS = LazyQuery(COLLECT_PATTERN + "\n" + INDEX_PATTERN)


def scopes_and_declarations(root) -> tuple[list, list]:
    """`captured` of COLLECT_PATTERN and of INDEX_PATTERN, from one walk of the tree."""
    import tree_sitter

    collect: list = []
    index: list = []
    for pattern, captures in tree_sitter.QueryCursor(_SCOPES_AND_DECLARATIONS.get()).matches(root):
        target = collect if pattern == 0 else index  # pattern 0: COLLECT_PATTERN's alternation
        for found in captures.values():
            target.extend(found)
    collect.sort(key=lambda n: (n.start_byte, -n.end_byte))
    index.sort(key=lambda n: (n.start_byte, -n.end_byte))
    return collect, index


def walk_order(nodes: list) -> list:
    """`nodes` (of one tree) in the order of `stack = [root]; node = stack.pop();
    stack.extend(node.named_children)`: depth first, children last to first.

    That order is reverse post-order: ancestors before descendants, and of two
    disjoint nodes the later one first. Sorting on (-end, start) gives it; a
    node and a descendant with the same range keep their document order
    (ancestor first) because the sort is stable."""
    return sorted(nodes, key=lambda n: (-n.end_byte, n.start_byte))


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
