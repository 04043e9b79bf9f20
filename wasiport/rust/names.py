"""Name resolution, as far as one file can tell: which paths its names stand for.

Each module body (the file, an inline `mod { }`) and each block is a scope
with the names its `use` declarations bring in, its glob imports and the
items it defines. Resolving `net::TcpStream` at some node walks the scopes
outward (blocks, then the enclosing module; a module never sees its parent's
imports, as in Rust) and expands the first segment.
"""
from __future__ import annotations

from typing import NamedTuple

from wasiport.model import Record
from wasiport.rust import cfg as cfgmod
from wasiport.rust import syntax

Path = tuple[str, ...]

ITEM_KINDS = {
    "struct_item": "name",
    "enum_item": "name",
    "union_item": "name",
    "type_item": "name",
    "trait_item": "name",
    "function_item": "name",
    "mod_item": "name",
    "const_item": "name",
    "static_item": "name",
    "macro_definition": "name",
}

# std::net's items that exist in std 1.63; used to resolve names brought in by `use std::net::*`.
STD_NET_ITEMS = frozenset(
    {
        "TcpStream", "TcpListener", "UdpSocket", "ToSocketAddrs", "Incoming", "SocketAddr", "SocketAddrV4",
        "SocketAddrV6", "IpAddr", "Ipv4Addr", "Ipv6Addr", "Shutdown", "AddrParseError", "Ipv6MulticastScope",
    }
)


class UseItem(NamedTuple):
    """One name a `use` declaration brings into scope.

    `path` is the full path as written (`('std', 'net', 'TcpStream')`), `name` the
    local name (the alias, or the last segment; '*' for a glob). `node` is the
    tree node of this item inside the use-tree (for spans)."""

    path: Path
    name: str
    node: object
    declaration: object

    @property
    def is_glob(self) -> bool:
        return self.name == "*"


class Scope(Record):
    __slots__ = ("node", "names", "globs", "items", "uses")

    def __init__(self, node: object) -> None:
        self.node = node
        self.names: dict[str, Path] = {}
        self.globs: list[Path] = []
        self.items: set[str] = set()
        self.uses: list[UseItem] = []


def normalize(path: Path) -> Path:
    """`::std::net` -> `std::net`: in 2018+ a leading `::` names an extern crate."""
    if path and path[0] == "":
        return path[1:]
    return path


def flatten_use_tree(node, data: bytes, prefix: Path, declaration) -> list[UseItem]:
    """Every name a use-tree brings in, with its full path."""
    kind = node.type
    if kind in ("identifier", "scoped_identifier", "crate", "self", "super", "metavariable"):
        segments = syntax.path_segments(node, data) or []
        if kind == "self" or (segments and segments[-1] == "self"):
            # `{self}` or `net::{self}`: the module itself, named by the prefix's last segment
            full = prefix + tuple(s for s in segments[:-1])
            return [UseItem(full, full[-1] if full else "self", node, declaration)] if full else []
        full = prefix + tuple(segments)
        return [UseItem(full, full[-1], node, declaration)]
    if kind == "use_as_clause":
        path_node = node.child_by_field_name("path")
        alias = node.child_by_field_name("alias")
        segments = syntax.path_segments(path_node, data) or []
        if segments and segments[-1] == "self":
            segments = segments[:-1]
        full = prefix + tuple(segments)
        name = data[alias.start_byte : alias.end_byte].decode() if alias is not None else full[-1]
        return [UseItem(full, name, node, declaration)]
    if kind == "use_wildcard":
        inner = node.named_children[0] if node.named_children else None
        segments = syntax.path_segments(inner, data) if inner is not None else []
        return [UseItem(prefix + tuple(segments or []), "*", node, declaration)]
    if kind == "scoped_use_list":
        path_node = node.child_by_field_name("path")
        list_node = node.child_by_field_name("list")
        segments = syntax.path_segments(path_node, data) if path_node is not None else []
        if path_node is None and node.children and node.children[0].type == "::":
            segments = [""]
        items: list[UseItem] = []
        if list_node is not None:
            items.extend(flatten_use_tree(list_node, data, prefix + tuple(segments or []), declaration))
        return items
    if kind == "use_list":
        items = []
        for child in node.named_children:
            if child.type in ("line_comment", "block_comment", "attribute_item"):
                continue
            items.extend(flatten_use_tree(child, data, prefix, declaration))
        return items
    return []


# Use declarations and items cannot occur inside token trees, comments or strings,
# which the old walk skipped, so the query finds the same nodes.
_COLLECT_QUERY = syntax.LazyQuery(syntax.COLLECT_PATTERN)
assert set(syntax.COLLECT_KINDS) == {"use_declaration", *ITEM_KINDS}


def use_items(declaration, data: bytes) -> list[UseItem]:
    argument = declaration.child_by_field_name("argument")
    if argument is None:
        return []
    return flatten_use_tree(argument, data, (), declaration)


class Resolver:
    """Scopes of one file (or of a re-parsed macro body, given its outer resolver).

    Built whole (a walk of the tree finds every `use` and item), or with `lazy`
    scope by scope as resolutions need them: a scope's uses and items are its
    direct children, so the scopes around a node cost a look at their children,
    not a walk of the file. Only for trees without syntax errors (under an ERROR
    node a `use` may sit anywhere)."""

    def __init__(
        self,
        root,
        data: bytes,
        *,
        respect_cfg: bool = True,
        target: cfgmod.Target = cfgmod.WASI,
        nodes: list | None = None,
        lazy: bool = False,
    ) -> None:
        """`nodes`: what `syntax.captured(_COLLECT_QUERY, root)` gives, when the caller already has it."""
        self.root = root
        self.data = data
        self.scopes: dict[int, Scope] = {}
        self.respect_cfg = respect_cfg
        self.target = target
        self._cfg = syntax.CfgCache(data, target) if respect_cfg else None
        self._complete = not lazy or nodes is not None
        if self._complete:
            self._collect(root, nodes)

    def all_scopes(self) -> list[Scope]:
        """Every scope of the file with its uses and items."""
        if not self._complete:
            self.scopes = {}
            self._collect(self.root)
            self._complete = True
        return list(self.scopes.values())

    def _scope_at(self, node) -> Scope | None:
        """The scope of scope node `node` (None for one without uses or items, when built whole)."""
        if self._complete:
            return self.scopes.get(node.id)
        scope = self.scopes.get(node.id)
        if scope is None:
            scope = self.scopes[node.id] = Scope(node)
            # last to first: the order _collect handles them in (see there)
            for child in reversed(node.named_children):
                kind = child.type
                if kind == "use_declaration":
                    if self._cfg is None or self._cfg(child) is not False:
                        self._add_uses(scope, child)
                elif kind in ITEM_KINDS:
                    name = child.child_by_field_name(ITEM_KINDS[kind])
                    if name is not None:
                        scope.items.add(self.data[name.start_byte : name.end_byte].decode("utf-8", "replace"))
        return scope

    def _add_uses(self, scope: Scope, declaration) -> None:
        for item in use_items(declaration, self.data):
            scope.uses.append(item)
            if item.is_glob:
                scope.globs.append(normalize(item.path))
            else:
                scope.names[item.name] = normalize(item.path)

    def _scope_for(self, node) -> Scope:
        key = node.id
        scope = self.scopes.get(key)
        if scope is None:
            scope = self.scopes[key] = Scope(node)
        return scope

    def _collect(self, root, nodes: list | None = None) -> None:
        # tree-sitter finds the use declarations and items (a walk in Python over
        # every node cost more than parsing). They are then handled in the order
        # of a depth-first walk that visits children last to first (what this
        # method did before), so that when two `use`s of one scope bind the same
        # name (under unknown cfgs) the same one wins.
        self._scope_for(root)
        cfg = self._cfg
        for node in syntax.walk_order(nodes if nodes is not None else syntax.captured(_COLLECT_QUERY, root)):
            kind = node.type
            if kind == "use_declaration":
                if cfg is not None and cfg(node) is False:
                    continue
                self._add_uses(self._scope_for(self.enclosing_scope_node(node)), node)
                continue
            parent = node.parent
            if parent is not None and parent.type in syntax.SCOPE_NODES:
                name = node.child_by_field_name(ITEM_KINDS[kind])
                if name is not None:
                    self._scope_for(parent).items.add(self.data[name.start_byte : name.end_byte].decode("utf-8", "replace"))

    @staticmethod
    def enclosing_scope_node(node):
        for ancestor in syntax.ancestors(node):
            if ancestor.type in syntax.SCOPE_NODES:
                return ancestor
        return node

    def scope_chain(self, node) -> list[Scope]:
        """Scopes visible at `node`, innermost first, ending at the enclosing module."""
        chain: list[Scope] = []
        for ancestor in syntax.ancestors(node):
            if ancestor.type in syntax.SCOPE_NODES:
                scope = self._scope_at(ancestor)
                if scope is not None:
                    chain.append(scope)
                if syntax.is_module_scope(ancestor):
                    break
        return chain

    def resolve_segments(self, segments: list[str], at) -> Path | None:
        """The full path `segments` stands for at node `at`, or None if it is local/unknown."""
        if not segments:
            return None
        first = segments[0]
        if first == "":
            return tuple(segments[1:])
        if first in ("crate", "self", "super", "Self"):
            return None
        for scope in self.scope_chain(at):
            if first in scope.names:
                return scope.names[first] + tuple(segments[1:])
            if first in scope.items:
                return None
            if len(segments) == 1:
                for glob in scope.globs:
                    if glob == ("std", "net") and first in STD_NET_ITEMS:
                        return glob + (first,)
        if first in ("std", "core", "alloc"):
            return tuple(segments)
        return None

    def resolve_node(self, node) -> Path | None:
        segments = syntax.path_segments(node, self.data)
        if segments is None:
            return None
        return self.resolve_segments(segments, node)

    def module_uses(self, node) -> list[UseItem]:
        uses: list[UseItem] = []
        for scope in self.scope_chain(node):
            uses.extend(scope.uses)
        return uses

    def trait_in_scope(self, node, trait: Path) -> bool:
        for scope in self.scope_chain(node):
            if any(path == trait for path in scope.names.values()):
                return True
            if trait[:-1] in scope.globs:
                return True
        return False
