"""Just enough type inference to tell a `std::net` receiver from a look-alike.

`conn.set_read_timeout(d)` is a std::net site only if `conn` is a std
`TcpStream`/`UdpSocket`; redis has its own `set_read_timeout` on its own
connection type. We follow what the crate states: parameter and `let`
annotations, struct fields, enum variants, bindings from `TcpStream::connect`
and friends, `?`/`unwrap()`, and patterns (`Ok(s)`, `Tcp(Conn { ref reader, .. })`).
Anything else is unknown, and the engine reports unknowns at a lower severity.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from wasiport.model import Record
from wasiport.rust import syntax
from wasiport.rust.names import Path, Resolver

# Ty values: ("path", full_path) | ("local", name) | ("result", Ty) | ("option", Ty)
#            | ("tuple", (Ty, ...)) | ("iter", Ty) | ("other",) ; None = unknown
Ty = tuple

TCP_STREAM = ("std", "net", "TcpStream")
TCP_LISTENER = ("std", "net", "TcpListener")
UDP_SOCKET = ("std", "net", "UdpSocket")
SOCKET_ADDR = ("std", "net", "SocketAddr")

# Associated functions of std::net types and what they return.
CONSTRUCTORS: dict[tuple[Path, str], Ty] = {
    (TCP_STREAM, "connect"): ("result", ("path", TCP_STREAM)),
    (TCP_STREAM, "connect_timeout"): ("result", ("path", TCP_STREAM)),
    (TCP_LISTENER, "bind"): ("result", ("path", TCP_LISTENER)),
    (UDP_SOCKET, "bind"): ("result", ("path", UDP_SOCKET)),
}
# Methods on std::net values and what they return (Self stands for the receiver's type).
METHODS: dict[str, object] = {
    "try_clone": "result-self",
    "accept": ("result", ("tuple", (("path", TCP_STREAM), ("path", SOCKET_ADDR)))),
    "incoming": ("iter", ("result", ("path", TCP_STREAM))),
}
WRAPPERS = {"Box", "Arc", "Rc", "Cow"}
# Macros that unwrap a Result, as written in real crates' code and tests.
UNWRAPPING_MACROS = {"try", "t", "ok", "assert_ok", "unwrap", "tri"}
_MAX_DEPTH = 40
# Declarations never occur inside token trees, comments or strings (which a walk would skip).
_INDEX_QUERY = syntax.LazyQuery(syntax.INDEX_PATTERN)


class Verdict(NamedTuple):
    """How sure we are that an expression is one of the wanted std types."""

    kind: str  # "sure" | "other" | "unknown"
    path: Path | None = None


class TypeOracle:
    def __init__(
        self, root, data: bytes, resolver: Resolver, crate_index: "Callable[[], Declarations | None] | None" = None, nodes: list | None = None
    ) -> None:
        self.data = data
        self.resolver = resolver
        # Declarations of the rest of the crate, loaded only when a lookup misses in this file.
        self._crate_index_provider = crate_index
        self._crate_index: Declarations | None = None
        self.structs: dict[str, dict[str, object]] = {}
        self.enums: dict[str, dict[str, list[object]]] = {}
        # return types the crate declares: impl type name (None for free fns) -> fn name -> type node
        self.functions: dict[str | None, dict[str, object]] = {}
        self._index(root, nodes)

    @property
    def crate_index(self) -> "Declarations | None":
        if self._crate_index is None and self._crate_index_provider is not None:
            self._crate_index = self._crate_index_provider()
            self._crate_index_provider = None
        return self._crate_index

    # -- declarations ----------------------------------------------------
    def _index(self, root, nodes: list | None = None) -> None:
        # tree-sitter finds the declarations; they are handled in the order of the
        # depth-first walk this method used to do (later declarations of a name
        # overwrite earlier ones; see syntax.walk_order).
        for node in syntax.walk_order(nodes if nodes is not None else syntax.captured(_INDEX_QUERY, root)):
            if node.type == "struct_item":
                name = node.child_by_field_name("name")
                body = node.child_by_field_name("body")
                if name is not None and body is not None:
                    fields: dict[str, object] = {}
                    if body.type == "field_declaration_list":
                        for decl in body.named_children:
                            if decl.type == "field_declaration":
                                fname, ftype = decl.child_by_field_name("name"), decl.child_by_field_name("type")
                                if fname is not None and ftype is not None:
                                    fields[self._text(fname)] = ftype
                    elif body.type == "ordered_field_declaration_list":
                        types = [c for c in body.named_children if c.type not in ("attribute_item", "visibility_modifier")]
                        for i, ftype in enumerate(types):
                            fields[str(i)] = ftype
                    self.structs[self._text(name)] = fields
            elif node.type == "enum_item":
                name = node.child_by_field_name("name")
                body = node.child_by_field_name("body")
                if name is not None and body is not None:
                    variants: dict[str, list[object]] = {}
                    for variant in body.named_children:
                        if variant.type != "enum_variant":
                            continue
                        vname = variant.child_by_field_name("name")
                        vbody = variant.child_by_field_name("body")
                        types: list[object] = []
                        if vbody is not None and vbody.type == "ordered_field_declaration_list":
                            types = [c for c in vbody.named_children if c.type not in ("attribute_item", "visibility_modifier")]
                        if vname is not None:
                            variants[self._text(vname)] = types
                    self.enums[self._text(name)] = variants
            elif node.type == "function_item":
                name = node.child_by_field_name("name")
                returns = node.child_by_field_name("return_type")
                if name is not None and returns is not None:
                    owner = _impl_type_name(node, self.data)
                    self.functions.setdefault(owner, {})[self._text(name)] = returns

    def _declared_return(self, owner: str | None, name: str) -> Ty | None:
        """The return type of a fn the crate declares, when the name is unambiguous."""
        node = None
        if owner is not None and name in self.functions.get(owner, {}):
            node = self.functions[owner][name]
        elif owner is None:
            matches = [fns[name] for fns in self.functions.values() if name in fns]
            if len(matches) == 1:
                node = matches[0]
        if node is not None:
            return self._return_type(node, ("local", owner) if owner else None, 0)
        if self.crate_index is not None:
            return self.crate_index.function_return(owner, name)
        return None

    def struct_field(self, struct: str, field: str) -> Ty | None:
        if struct in self.structs:
            node = self.structs[struct].get(field)
            return self.type_of_type_node(node) if node is not None else None
        if self.crate_index is not None:
            return self.crate_index.struct_fields(struct).get(field)
        return None

    def declarations(self) -> "Declarations":
        """This file's declarations with their types resolved in this file's scope."""
        decls = Declarations()
        for name, fields in self.structs.items():
            decls.structs[name] = {f: self.type_of_type_node(t) for f, t in fields.items()}
        for name, variants in self.enums.items():
            decls.enums[name] = {v: [self.type_of_type_node(t) for t in types] for v, types in variants.items()}
        for owner, functions in self.functions.items():
            for fname, node in functions.items():
                decls.functions.setdefault(owner, {})[fname] = self._return_type(node, ("local", owner) if owner else None, 0)
        return decls

    def _text(self, node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # -- types written in the source ---------------------------------------
    def type_of_type_node(self, node, depth: int = 0) -> Ty | None:
        if node is None or depth > _MAX_DEPTH:
            return None
        kind = node.type
        if kind in ("reference_type", "pointer_type"):
            return self.type_of_type_node(node.child_by_field_name("type"), depth + 1)
        if kind == "tuple_type":
            return ("tuple", tuple(self.type_of_type_node(c, depth + 1) for c in node.named_children))
        if kind == "generic_type":
            base = node.child_by_field_name("type")
            args = node.child_by_field_name("type_arguments")
            name = self._text(base).split("::")[-1] if base is not None else ""
            first_arg = None
            if args is not None:
                type_args = [c for c in args.named_children if c.type not in ("lifetime", "type_binding")]
                first_arg = type_args[0] if type_args else None
            if name in WRAPPERS:
                return self.type_of_type_node(first_arg, depth + 1)
            if name == "Result":
                return ("result", self.type_of_type_node(first_arg, depth + 1))
            if name == "Option":
                return ("option", self.type_of_type_node(first_arg, depth + 1))
            return self._named_type(base)
        if kind in ("type_identifier", "scoped_type_identifier"):
            return self._named_type(node)
        if kind == "primitive_type":
            return ("other",)
        if kind in ("abstract_type", "dynamic_type", "function_type", "array_type", "never_type"):
            return ("other",)
        return None

    def _named_type(self, node) -> Ty | None:
        if node is None:
            return None
        segments = syntax.path_segments(node, self.data)
        if not segments:
            return None
        if segments == ["Self"]:
            return self.self_type(node)
        full = self.resolver.resolve_node(node)
        if full is not None:
            return ("path", full)
        return ("local", segments[-1])

    def self_type(self, node) -> Ty | None:
        for ancestor in syntax.ancestors(node):
            if ancestor.type == "impl_item":
                return self.type_of_type_node(ancestor.child_by_field_name("type"))
        return None

    # -- expressions -------------------------------------------------------
    def type_of_expr(self, node, depth: int = 0) -> Ty | None:
        if node is None or depth > _MAX_DEPTH:
            return None
        kind = node.type
        if kind == "parenthesized_expression" or kind == "reference_expression" or kind == "unary_expression":
            inner = node.named_children[-1] if node.named_children else None
            ty = self.type_of_expr(inner, depth + 1)
            previous = node.prev_sibling
            if kind == "parenthesized_expression" and previous is not None and previous.type == "ERROR" and previous.text.strip() == b"try!":
                return _unwrap(ty)  # `try!(e)`: tree-sitter-rust sees `try!` as an error before `(e)`
            return ty
        if kind == "macro_invocation":
            return self._macro_value(node, depth)
        if kind == "try_expression":
            return _unwrap(self.type_of_expr(node.named_children[0] if node.named_children else None, depth + 1))
        if kind == "self":
            return self.self_type(node)
        if kind == "identifier":
            return self.type_of_binding(node, self._text(node), depth + 1)
        if kind == "field_expression":
            value = node.child_by_field_name("value")
            field = node.child_by_field_name("field")
            return self._field_type(self.type_of_expr(value, depth + 1), self._text(field) if field is not None else "", depth)
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            if function is None:
                return None
            if function.type == "field_expression":
                return self._method_result(function, depth)
            if function.type == "identifier" and self._text(function) in ("Some", "Ok"):
                args = node.child_by_field_name("arguments")
                inner = args.named_children[0] if args is not None and args.named_children else None
                wrapper = "option" if self._text(function) == "Some" else "result"
                return (wrapper, self.type_of_expr(inner, depth + 1))
            segments = syntax.path_segments(function, self.data)
            if segments and len(segments) >= 2:
                owner = self.resolver.resolve_segments(segments[:-1], function)
                if owner is not None and (owner, segments[-1]) in CONSTRUCTORS:
                    return CONSTRUCTORS[(owner, segments[-1])]
                if owner is None and len(segments) == 2:
                    local = self.self_type(function) if segments[0] == "Self" else ("local", segments[0])
                    if local is not None and local[0] == "local":
                        return self._declared_return(local[1], segments[-1])
                return None
            if segments and len(segments) == 1:
                return self._declared_return(None, segments[0]) if self._is_free_fn(segments[0]) else None
            return None
        if kind in ("integer_literal", "string_literal", "boolean_literal", "float_literal", "char_literal"):
            return ("other",)
        if kind == "tuple_expression":
            return ("tuple", tuple(self.type_of_expr(c, depth + 1) for c in node.named_children))
        if kind == "block":
            tail = _tail_expression(node)
            return self.type_of_expr(tail, depth + 1) if tail is not None else None
        if kind == "match_expression":
            body = node.child_by_field_name("body")
            arms = [a for a in body.named_children if a.type == "match_arm"] if body is not None else []
            return self._first_known(arms and [a.child_by_field_name("value") for a in arms], depth)
        if kind == "if_expression":
            alternative = node.child_by_field_name("alternative")
            branches = [node.child_by_field_name("consequence")]
            if alternative is not None and alternative.named_children:
                branches.append(alternative.named_children[0])
            return self._first_known(branches, depth)
        return None

    def _macro_value(self, node, depth: int) -> Ty | None:
        """`t!(TcpStream::connect(a))`, `try!(...)`: the unwrapped value of a constructor call."""
        name_node = node.child_by_field_name("macro")
        name = self._text(name_node).split("::")[-1] if name_node is not None else ""
        if name not in UNWRAPPING_MACROS:
            return None
        trees = [c for c in node.children if c.type == "token_tree"]
        if not trees:
            return None
        # Imported here (a cost rule, wasiport/model.py): only a file that is parsed pays for tree-sitter.
        from wasiport.rust.source import parse_bytes

        content = self.data[trees[-1].start_byte + 1 : trees[-1].end_byte - 1]
        wrapped = b"fn __w() { __f(" + content + b"); }"
        tree = parse_bytes(wrapped)
        if tree.root_node.has_error:
            return None
        calls = [n for n in _walk(tree.root_node) if n.type == "arguments"]
        args = calls[0].named_children if calls else []
        if not args:
            return None
        inner = args[0]
        if inner.type == "call_expression":
            function = inner.child_by_field_name("function")
            segments = syntax.path_segments(function, wrapped) if function is not None else None
            if segments and len(segments) >= 2:
                owner = self.resolver.resolve_segments(segments[:-1], node)
                if owner is not None and (owner, segments[-1]) in CONSTRUCTORS:
                    return _unwrap(CONSTRUCTORS[(owner, segments[-1])])
        if inner.type == "identifier":
            return _unwrap(self.type_of_binding(node, wrapped[inner.start_byte : inner.end_byte].decode(), depth + 1))
        return None

    def _first_known(self, expressions, depth: int) -> Ty | None:
        """The type of the first branch whose type we can tell (all branches have one type)."""
        for expression in expressions or []:
            ty = self.type_of_expr(expression, depth + 1)
            if ty is not None:
                return ty
        return None

    def _method_result(self, function, depth: int) -> Ty | None:
        receiver = function.child_by_field_name("value")
        method = self._text(function.child_by_field_name("field"))
        receiver_ty = self.type_of_expr(receiver, depth + 1)
        if receiver_ty is not None and receiver_ty[0] == "path" and receiver_ty[1] not in (TCP_STREAM, TCP_LISTENER, UDP_SOCKET):
            receiver_ty = _as_local(receiver_ty)
        if method in ("unwrap", "expect", "unwrap_or_else") :
            return _unwrap(receiver_ty)
        if receiver_ty is not None and receiver_ty[0] == "path" and receiver_ty[1] in (TCP_STREAM, TCP_LISTENER, UDP_SOCKET):
            result = METHODS.get(method)
            if result == "result-self":
                return ("result", receiver_ty)
            if isinstance(result, tuple):
                return result
            return None
        if receiver_ty is not None and receiver_ty[0] == "local":
            return self._declared_return(receiver_ty[1], method)
        if receiver_ty is None:
            return self._declared_return(None, method)
        return None

    def _is_free_fn(self, name: str) -> bool:
        if name in self.functions.get(None, {}):
            return True
        return self.crate_index is not None and self.crate_index.has_free_fn(name)

    def _return_type(self, type_node, self_ty: Ty | None, depth: int) -> Ty | None:
        if type_node is None:
            return None
        text = self._text(type_node).replace(" ", "")
        if text in ("Self", "&Self", "&mutSelf"):
            return self_ty
        ty = self.type_of_type_node(type_node, depth + 1)
        return _replace_self(ty, self_ty)

    def _field_type(self, owner: Ty | None, field: str, depth: int) -> Ty | None:
        owner = _as_local(owner)
        if owner is None:
            return None
        if owner[0] == "tuple" and field.isdigit():
            items = owner[1]
            index = int(field)
            return items[index] if index < len(items) else None
        if owner[0] == "local":
            return self.struct_field(owner[1], field)
        return None

    # -- bindings ------------------------------------------------------------
    def type_of_binding(self, at, name: str, depth: int) -> Ty | None:
        """Find where `name` was bound before `at` and infer its type."""
        child = at
        for ancestor in syntax.ancestors(at):
            kind = ancestor.type
            if kind == "block":
                found = self._from_block(ancestor, child, name, depth)
                if found is not _MISSING:
                    return found
            elif kind in ("function_item", "closure_expression"):
                params = ancestor.child_by_field_name("parameters")
                if params is not None:
                    for param in params.named_children:
                        if param.type == "parameter":
                            bound = self._bind(param.child_by_field_name("pattern"), self.type_of_type_node(param.child_by_field_name("type")), depth)
                            if name in bound:
                                return bound[name]
                        elif param.type == "identifier" and self._text(param) == name:
                            return None  # untyped closure parameter
                if kind == "function_item":
                    return None
            elif kind == "match_arm":
                match = ancestor.parent.parent if ancestor.parent is not None else None
                pattern = ancestor.child_by_field_name("pattern")
                if match is not None and match.type == "match_expression" and pattern is not None and child != pattern:
                    value_ty = self.type_of_expr(match.child_by_field_name("value"), depth + 1)
                    bound = self._bind(pattern, value_ty, depth)
                    if name in bound:
                        return bound[name]
            elif kind in ("let_condition",):
                pass
            elif kind in ("if_expression", "while_expression"):
                condition = ancestor.child_by_field_name("condition")
                if condition is not None and child != condition:
                    for let in _let_conditions(condition):
                        bound = self._bind(let.child_by_field_name("pattern"), self.type_of_expr(let.child_by_field_name("value"), depth + 1), depth)
                        if name in bound:
                            return bound[name]
            elif kind == "for_expression":
                pattern = ancestor.child_by_field_name("pattern")
                value = ancestor.child_by_field_name("value")
                if pattern is not None and child not in (pattern, value):
                    iter_ty = self.type_of_expr(value, depth + 1)
                    item_ty = iter_ty[1] if iter_ty is not None and iter_ty[0] == "iter" else None
                    bound = self._bind(pattern, item_ty, depth)
                    if name in bound:
                        return bound[name]
            child = ancestor
        return None

    def _from_block(self, block, child, name: str, depth: int):
        statements = block.named_children
        try:
            index = next(i for i, s in enumerate(statements) if s == child)
        except StopIteration:
            return _MISSING
        for statement in reversed(statements[:index]):
            if statement.type != "let_declaration":
                continue
            pattern = statement.child_by_field_name("pattern")
            declared = statement.child_by_field_name("type")
            if declared is not None:
                ty = self.type_of_type_node(declared)
            else:
                ty = self.type_of_expr(statement.child_by_field_name("value"), depth + 1)
            bound = self._bind(pattern, ty, depth)
            if name in bound:
                if _is_unknown(bound[name]) and pattern is not None and pattern.type in ("identifier", "mut_pattern"):
                    # `let mut found = None;` ... `found = Some(stream);`: learn from the assignment
                    assigned = self._from_assignments(block, statement, name, depth)
                    if assigned is not None:
                        return assigned
                return bound[name]
        return _MISSING

    def _from_assignments(self, block, after, name: str, depth: int) -> Ty | None:
        stack = [s for s in block.named_children if s.start_byte > after.start_byte]
        while stack:
            node = stack.pop()
            if node.type == "assignment_expression":
                left = node.child_by_field_name("left")
                if left is not None and left.type == "identifier" and self._text(left) == name:
                    ty = self.type_of_expr(node.child_by_field_name("right"), depth + 1)
                    if not _is_unknown(ty):
                        return ty
            if node.type in ("function_item", "closure_expression", "token_tree"):
                continue
            stack.extend(node.named_children)
        return None

    def _bind(self, pattern, ty: Ty | None, depth: int) -> dict[str, Ty | None]:
        """Names bound by `pattern` matched against a value of type `ty`."""
        if pattern is None or depth > _MAX_DEPTH:
            return {}
        kind = pattern.type
        if kind == "identifier":
            return {self._text(pattern): ty}
        if kind == "match_pattern":
            inner = pattern.named_children[0] if pattern.named_children else None
            return self._bind(inner, ty, depth + 1)
        if kind in ("mut_pattern", "ref_pattern", "reference_pattern", "captured_pattern"):
            inner = [c for c in pattern.named_children if c.type not in ("mutable_specifier",)]
            if kind == "captured_pattern" and inner:
                bound = {self._text(inner[0]): ty}
                if len(inner) > 1:
                    bound.update(self._bind(inner[-1], ty, depth + 1))
                return bound
            return self._bind(inner[-1], ty, depth + 1) if inner else {}
        if kind == "tuple_pattern":
            items = ty[1] if ty is not None and ty[0] == "tuple" else ()
            bound: dict[str, Ty | None] = {}
            for i, sub in enumerate(pattern.named_children):
                bound.update(self._bind(sub, items[i] if i < len(items) else None, depth + 1))
            return bound
        if kind == "tuple_struct_pattern":
            constructor = pattern.child_by_field_name("type")
            name = self._text(constructor).split("::")[-1] if constructor is not None else ""
            subpatterns = [c for c in pattern.named_children if c != constructor]
            if name in ("Ok", "Some") and subpatterns:
                inner = ty[1] if ty is not None and ty[0] in ("result", "option") else None
                return self._bind(subpatterns[0], inner, depth + 1)
            field_types = self._variant_fields(constructor)
            bound = {}
            for i, sub in enumerate(subpatterns):
                sub_ty = field_types[i] if i < len(field_types) else None
                bound.update(self._bind(sub, sub_ty, depth + 1))
            return bound
        if kind == "struct_pattern":
            type_node = pattern.child_by_field_name("type")
            struct_name = self._text(type_node).split("::")[-1] if type_node is not None else ""
            if struct_name == "Self":
                own = self.self_type(pattern)
                struct_name = own[1] if own is not None and own[0] == "local" else struct_name
            bound = {}
            for child in pattern.named_children:
                if child.type == "field_pattern":
                    fname = child.child_by_field_name("name")
                    sub = child.child_by_field_name("pattern")
                    field_name = self._text(fname) if fname is not None else ""
                    fty = self.struct_field(struct_name, field_name.replace("ref ", "").replace("mut ", "").strip())
                    if sub is not None:
                        bound.update(self._bind(sub, fty, depth + 1))
                    else:
                        bound[field_name.split()[-1]] = fty
            return bound
        if kind in ("or_pattern",):
            bound = {}
            for sub in pattern.named_children:
                bound.update(self._bind(sub, ty, depth + 1))
            return bound
        return {}

    def _variant_fields(self, constructor) -> list[Ty | None]:
        """Field types of `Enum::Variant(..)` / `Variant(..)` / `Self::Variant(..)` / `TupleStruct(..)`."""
        if constructor is None:
            return []
        segments = syntax.path_segments(constructor, self.data) or []
        if len(segments) >= 2:
            enum_name = segments[-2]
            if enum_name == "Self":
                own = self.self_type(constructor)
                enum_name = own[1] if own is not None and own[0] == "local" else enum_name
            return self._enum_variant(enum_name, segments[-1])
        if len(segments) == 1:
            for enum_name, variants in self.enums.items():
                if segments[0] in variants:
                    return self._enum_variant(enum_name, segments[0])
            if segments[0] in self.structs:
                fields = self.structs[segments[0]]
                return [self.type_of_type_node(fields[k]) for k in sorted(fields) if k.isdigit()]
        return []

    def _enum_variant(self, enum_name: str, variant: str) -> list[Ty | None]:
        if enum_name in self.enums:
            return [self.type_of_type_node(t) for t in self.enums[enum_name].get(variant, [])]
        if self.crate_index is not None:
            return list(self.crate_index.enum_variants(enum_name).get(variant, []))
        return []

    # -- the question the rules ask ---------------------------------------------
    def classify(self, expr, wanted: frozenset[Path]) -> Verdict:
        ty = self.type_of_expr(expr)
        if ty is None:
            return Verdict("unknown")
        if ty[0] == "path" and ty[1] in wanted:
            return Verdict("sure", ty[1])
        return Verdict("other", ty[1] if ty[0] == "path" else None)


_MISSING = object()


def _unwrap(ty: Ty | None) -> Ty | None:
    if ty is not None and ty[0] in ("result", "option"):
        return ty[1]
    return None


def _let_conditions(condition):
    if condition.type == "let_condition":
        yield condition
    elif condition.type == "let_chain":
        for child in condition.named_children:
            if child.type == "let_condition":
                yield child


def _tail_expression(block):
    """The value of a block: its last child when that is an expression without a `;`."""
    children = [c for c in block.named_children if c.type not in ("line_comment", "block_comment")]
    if not children:
        return None
    last = children[-1]
    if last.type == "expression_statement":
        # tree-sitter wraps block-like tails (`match`, `if`) in an expression_statement
        if last.text.rstrip().endswith(b";") or not last.named_children:
            return None
        return last.named_children[0]
    if last.type.endswith("_expression") or last.type in ("identifier", "self", "macro_invocation"):
        return last
    return None


def _impl_type_name(function, data: bytes) -> str | None:
    """`Foo` for a fn inside `impl Foo` / `impl Trait for Foo`; None for a free fn."""
    parent = function.parent
    if parent is None or parent.type != "declaration_list" or parent.parent is None or parent.parent.type != "impl_item":
        return None
    type_node = parent.parent.child_by_field_name("type")
    if type_node is None:
        return None
    if type_node.type == "generic_type":
        type_node = type_node.child_by_field_name("type")
    segments = syntax.path_segments(type_node, data) if type_node is not None else None
    return segments[-1] if segments else None


def _is_unknown(ty: Ty | None) -> bool:
    """None, or a container of nothing we know (`None`, `Vec::new()`)."""
    if ty is None:
        return True
    if ty[0] in ("option", "result", "iter"):
        return _is_unknown(ty[1])
    return False



def _replace_self(ty: Ty | None, self_ty: Ty | None) -> Ty | None:
    """`io::Result<Self>` declared in `impl Foo` means `io::Result<Foo>`."""
    if ty is None:
        return None
    if ty == ("local", "Self"):
        return self_ty
    if ty[0] in ("result", "option", "iter"):
        return (ty[0], _replace_self(ty[1], self_ty))
    if ty[0] == "tuple":
        return ("tuple", tuple(_replace_self(t, self_ty) for t in ty[1]))
    return ty


class Declarations(Record):
    """Struct fields, enum variants and fn return types of a crate, as resolved types."""

    __slots__ = ("structs", "enums", "functions")

    def __init__(self, structs: dict | None = None, enums: dict | None = None, functions: dict | None = None) -> None:
        self.structs = {} if structs is None else structs
        self.enums = {} if enums is None else enums
        self.functions = {} if functions is None else functions

    def merge(self, other: "Declarations") -> None:
        for mine, theirs in ((self.structs, other.structs), (self.enums, other.enums)):
            for name, value in theirs.items():
                if name in mine and mine[name] != value:
                    mine[name] = None  # two different declarations of one name: ambiguous
                else:
                    mine.setdefault(name, value)
        for owner, functions in other.functions.items():
            target = self.functions.setdefault(owner, {})
            for name, value in functions.items():
                if name in target and target[name] != value:
                    target[name] = None
                else:
                    target.setdefault(name, value)

    def declarations_for(self, kind: str, name: str, owner: str | None = None) -> "Declarations":
        """What lookups of `name` need (crateindex.LazyDeclarations narrows; here: all)."""
        return self

    # Lookups, shared with crateindex.LazyDeclarations (a value may be None: ambiguous).
    def struct_fields(self, name: str):
        return self.structs.get(name, {})

    def enum_variants(self, name: str):
        return self.enums.get(name, {})

    def has_free_fn(self, name: str) -> bool:
        return name in self.functions.get(None, {})

    def function_return(self, owner: str | None, name: str) -> Ty | None:
        if owner is not None:
            return (self.functions.get(owner) or {}).get(name)
        matches = [fns[name] for fns in self.functions.values() if fns and name in fns]
        return matches[0] if len(matches) == 1 else None

    def cleaned(self) -> "Declarations":
        return Declarations(
            {k: v for k, v in self.structs.items() if v is not None},
            {k: v for k, v in self.enums.items() if v is not None},
            {k: {n: t for n, t in v.items()} for k, v in self.functions.items()},
        )


def _as_local(ty: Ty | None) -> Ty | None:
    """A path into this crate (`connection::Listener`) names a local type; std's and core's do not."""
    if ty is not None and ty[0] == "path" and ty[1] and ty[1][0] not in ("std", "core", "alloc"):
        return ("local", ty[1][-1])
    return ty


def _walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))
