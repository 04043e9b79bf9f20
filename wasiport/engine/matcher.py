"""Running rules over one parsed file: queries, then semantic constraints, then fixes.

The tree-sitter query finds candidate nodes; the constraints in the rule's
`where` table decide with the file's name resolution and type oracle
(`wasiport.rust.names`, `wasiport.rust.types`) whether a candidate is really
std's networking. Macro bodies are token trees to tree-sitter, so the
arguments of a macro that mentions a keyword are re-parsed as expressions,
statements or items, and matched like the rest of the file.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

from wasiport.engine import transforms
from wasiport.engine.constraints import Bindings, check_all
from wasiport.engine.context import CompatData, ScanContext  # noqa: F401 - also imported from here
from wasiport.engine.rules import Rule, rule_error, validate_lazily_compiled
from wasiport.model import Finding, Fix, PortStatus, Severity
from wasiport.rust import syntax
from wasiport.rust.cfg import WASI, Target
from wasiport.rust.names import Resolver, normalize
from wasiport.rust.source import SourceFile, gap_findings, parse_bytes
from wasiport.rust.types import TypeOracle

_SUPPRESS = re.compile(rb"wasiport:\s*allow\(([^)]*)\)")
_MACRO_WRAPPERS = (
    ("fn __wasiport_macro() { __wasiport_args(", "); }"),
    ("fn __wasiport_macro() { ", " }"),
    ("", ""),
)
_MAX_MACRO_DEPTH = 3
_ITEM_LIKE = {
    "function_item", "impl_item", "struct_item", "enum_item", "mod_item", "trait_item", "let_declaration",
    "expression_statement", "use_declaration", "const_item", "static_item", "field_declaration", "match_arm",
}


class _View:
    """A tree to match: the file itself, or a re-parsed macro body inside it."""

    def __init__(
        self,
        source: SourceFile,
        root,
        data: bytes,
        delta: int,
        make_resolver: "Callable[[], Resolver]",
        parent: "_View | None",
        anchor,
        crate_index=None,
        target: Target = WASI,
        prepared=None,
    ) -> None:
        self.prepared = prepared  # the combined query's results for this tree, when it ran
        self.crate_index = crate_index  # callable returning the crate's Declarations, or None
        self.target = target
        self.source = source
        self.root = root
        self.data = data
        self.delta = delta  # file offset = node offset + delta
        # Built at first use: most files' candidates are rejected (or there are none)
        # before a name needs resolving, and collecting a file's scopes is not free.
        self._make_resolver = make_resolver
        self._resolver: Resolver | None = None
        self.parent = parent
        self.anchor = anchor  # the macro_invocation node in the parent view
        self._oracle: TypeOracle | None = None
        self._cfg = syntax.CfgCache(data, target)  # node_cfg, memoised per ancestor

    @property
    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = self._make_resolver()
        return self._resolver

    @property
    def oracle(self) -> TypeOracle:
        if self._oracle is None:
            self._oracle = _NestedOracle(self)
        return self._oracle

    def text(self, node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def cfg(self, node):
        value = self._cfg(node)
        if value is False or self.parent is None:
            return value
        outer = self.parent.cfg(self.anchor)
        if outer is False:
            return False
        return None if (value is None or outer is None) else True


class _NestedResolver(Resolver):
    """Scopes of a macro body, falling back to the scopes around the macro call."""

    def __init__(self, root, data: bytes, outer: Resolver, anchor, nodes: list | None = None) -> None:
        super().__init__(root, data, target=outer.target, nodes=nodes)
        self.outer = outer
        self.anchor = anchor

    def scope_chain(self, node):
        chain = [s for s in super().scope_chain(node) if s.node.type != "source_file"]
        return chain + self.outer.scope_chain(self.anchor)


class _NestedOracle(TypeOracle):
    """Types in a view; in a macro body, names declared around the macro come from the outer view."""

    def __init__(self, view: _View) -> None:
        import weakref

        # A weak reference: the view holds this oracle, and a cycle would keep the
        # file's tree (megabytes for a large file) alive until a full garbage collection.
        view = weakref.proxy(view)
        super().__init__(
            view.root,
            view.data,
            view.resolver,
            crate_index=(lambda: _outer_declarations(view)) if view.parent else view.crate_index,
            nodes=view.prepared.index if view.prepared is not None else None,
        )
        self.view = view

    def type_of_binding(self, at, name, depth):
        found = super().type_of_binding(at, name, depth)
        if found is None and self.view.parent is not None:
            return self.view.parent.oracle.type_of_binding(self.view.anchor, name, depth)
        return found

    def self_type(self, node):
        if self.view.parent is not None:
            inner = super().self_type(node)
            return inner if inner is not None else self.view.parent.oracle.self_type(self.view.anchor)
        return super().self_type(node)


def _outer_declarations(view: _View):
    """The declarations a macro body's names may refer to: its file's, over its crate's."""
    outer = view.parent.oracle
    declarations = outer.declarations()
    if outer.crate_index is not None:
        # Imported here (a cost rule, wasiport/model.py): only a file that is parsed pays for tree-sitter.
        from wasiport.rust.crateindex import Overlay

        # the crate's declarations under the file's, merged name by name when looked up
        return Overlay(outer.crate_index, declarations)
    return declarations


def scan_tree(source: SourceFile, rules: list[Rule], context: ScanContext, active: list[Rule] | None = None) -> list[Finding]:
    """The findings of `rules` in a parsed file; `active`: `active_rules(rules, source.data)`
    when the caller has it already (it tests every keyword against the whole file)."""
    data = source.data
    if active is None:
        active = active_rules(rules, data)
    if not active:
        return []  # what matching nothing gives (the scopes are only needed to match)
    root = source.root
    combined = _combined_for(rules, active)
    keywords = _view_keywords(active)
    prepared = combined.run(root, keyword_ranges(root, data, keywords)) if combined is not None else None

    def make_resolver() -> Resolver:
        # Scope by scope (see Resolver) unless the tree has errors.
        return Resolver(root, data, target=context.target, lazy=not root.has_error)

    view = _View(source, root, data, 0, make_resolver, None, None, crate_index=context.crate_index, target=context.target, prepared=prepared)
    mentions_std_net = _MentionsStdNet(view)
    findings: list[Finding] = []
    _match_view(view, active, context, mentions_std_net, findings, depth=0, combined=combined)
    findings = _apply_suppressions(_dedupe(findings), source)
    if source.gaps:  # valid Rust the grammar could not read: say so where it mentions sockets
        findings.extend(_apply_suppressions(gap_findings(source, keywords), source))
    return findings


# -- one query per tree ------------------------------------------------------------------

class _Prepared:
    """What the combined query found in a tree.

    The rules' matches and the macro invocations come from the parts of the tree
    around the rules' keywords; the declarations (for the TypeOracle) and, in a
    re-parsed macro body, the use declarations and items (for its Resolver) from a
    walk of the whole tree, made only when they are first needed."""

    def __init__(self, root) -> None:
        self.macros: list = []  # macro invocations
        self.rule_matches: dict[int, list[dict]] = {}  # rule position -> captures of each match
        self._root = root
        self._collect: list | None = None
        self._index: list | None = None

    @property
    def collect(self) -> list:
        """Use declarations and items, for the Resolver."""
        if self._collect is None:
            self._walk_engine_query()
        return self._collect

    @property
    def index(self) -> list:
        """Struct, enum and fn items, for the TypeOracle."""
        if self._index is None:
            self._walk_engine_query()
        return self._index

    def _walk_engine_query(self) -> None:
        self._collect, self._index = syntax.scopes_and_declarations(self._root)


def _position(node) -> tuple[int, int]:
    return (node.start_byte, -node.end_byte)


class _Combined:
    """The rules' queries and the engine's macro look-up compiled as one tree-sitter query.

    Every query over a tree walks all of it; with a query per rule plus the scope,
    declaration and macro look-ups that was ~20 walks per file and the largest cost
    of a scan. One query gives the same matches: each rule's matches come out in the
    order its own query would give them (matches are ordered by position, per
    pattern), and each rule's patterns are told apart by where they start in the
    query text.

    It runs only over the items that contain one of the keywords (see
    `keyword_ranges`): every match of a rule contains one of its keywords (its
    query's predicates name them), so the rest of the tree cannot match."""

    def __init__(self, rules: list[Rule]) -> None:
        # Imported here (a cost rule, wasiport/model.py): only a file that is parsed pays for tree-sitter.
        import tree_sitter

        from wasiport.rust.source import language

        self.rules = rules
        parts = [syntax.MACRO_PATTERN] + [r.query_text for r in rules]
        text = ""
        bounds: list[tuple[int, int]] = []
        for part in parts:
            start = len(text.encode())
            text += part + "\n"
            bounds.append((start, len(text.encode())))
        self.query = tree_sitter.Query(language(), text)  # raises when a rule's query is bad
        self.owner: list[int] = []  # pattern -> part
        for pattern in range(self.query.pattern_count):
            start, end = self.query.start_byte_for_pattern(pattern), self.query.end_byte_for_pattern(pattern)
            owners = [i for i, (lo, hi) in enumerate(bounds) if lo <= start and end <= hi]
            if len(owners) != 1:
                raise ValueError("a pattern spans two parts")
            self.owner.append(owners[0])
        if set(self.owner) != set(range(len(parts))):
            raise ValueError("a part has no pattern")
        self.captures: list[set[str]] = [set() for _ in parts]
        for pattern, part in enumerate(self.owner):
            for index in range(self.query.capture_count):
                try:
                    self.query.capture_quantifier(pattern, index)
                except SystemError:  # py-tree-sitter reports "not in this pattern" this way
                    continue
                self.captures[part].add(self.query.capture_name(index))
        # Rules are told apart by id and query: the cache below may serve another pack's
        # Rule objects with the same queries (the positions are the same).
        self.position = {(rule.id, rule.query_text): i for i, rule in enumerate(rules)}
        self._validated: dict[int, Rule] = {}  # id -> the rule object checked (kept alive)

    def run(self, root, ranges: list[tuple[int, int]] | None = None) -> _Prepared:
        """Matches in the byte `ranges` of the tree (all of it when None)."""
        import tree_sitter

        prepared = _Prepared(root)
        owner = self.owner
        cursor = tree_sitter.QueryCursor(self.query)
        for byte_range in ranges if ranges is not None else [None]:
            if byte_range is not None:
                cursor.set_byte_range(*byte_range)
            for pattern, captures in cursor.matches(root):
                part = owner[pattern]
                if part >= 1:
                    prepared.rule_matches.setdefault(part - 1, []).append(captures)
                else:
                    for found in captures.values():
                        prepared.macros.extend(found)
        prepared.macros.sort(key=_position)
        return prepared

    def matches(self, rule: Rule, prepared: _Prepared) -> list[dict]:
        """The rule's matches, after the checks `validate_lazily_compiled` makes."""
        position = self.position[(rule.id, rule.query_text)]
        if self._validated.get(id(rule)) is not rule:
            captures = self.captures[position + 1]
            for capture, _ in rule.where:
                if capture not in captures:
                    raise rule_error(rule, f"`where.{capture}`: the query has no capture @{capture}")
            if rule.report is not None and rule.report not in captures:
                raise rule_error(rule, f"`report` names capture @{rule.report}, which the query does not define")
            self._validated[id(rule)] = rule
        return prepared.rule_matches.get(position, [])


_COMBINED: dict[tuple, "_Combined | None"] = {}
_FULL: list = []  # the rule list whose combined query serves every file (see prepare_for_many)


def prepare_for_many(rules: list[Rule]) -> None:
    """Before scanning many files: compile one combined query for all the rules.

    Files differ in which rules their keywords make active (150 combinations in
    Debian's crates); compiling a query per combination would cost more than it
    saves, so every file runs the full one and only its active rules' matches are
    evaluated. Called before the worker processes fork, so they inherit it."""
    _FULL[:] = [rules]
    _combined_for(rules, rules)


def _combined_for(rules: list[Rule], active: list[Rule]) -> "_Combined | None":
    """The combined query for this file, or None when the rules do not compile together
    (then each rule's own query runs, and reports its error as before)."""
    chosen = _FULL[0] if _FULL and _FULL[0] is rules else active
    key = tuple((r.id, r.query_text) for r in chosen)
    if key not in _COMBINED:
        try:
            _COMBINED[key] = _Combined(chosen)
        except Exception:  # a query that does not compile: QueryError, or our own checks
            _COMBINED[key] = None
    return _COMBINED[key]


def active_rules(rules: list[Rule], data: bytes) -> list[Rule]:
    """The rules that can match a file with these bytes (see _keywords_present)."""
    return [r for r in rules if _keywords_present(r, data)]


def _keywords_present(rule: Rule, data: bytes) -> bool:
    """Whether the rule can match the file at all: one of its keywords occurs in code,
    and one of its `prefilter` regexes matches (rules without either always run)."""
    # cheapest first: a plain substring test, the regex, then whether a keyword is in code
    keywords = [k for k in rule.keyword_bytes if k in data] if rule.keywords else None
    if keywords is not None and not keywords:
        return False
    if rule.prefilter and not any(_matches_in_code(_prefilter_regex(text), data) for text in rule.prefilter):
        return False
    if keywords is None:
        return True
    if rule.keywords_are_names:
        return any(_name_in_code(data, k) for k in keywords)
    return any(_in_code(data, k) for k in keywords)


_PREFILTERS: dict[str, "re.Pattern[bytes]"] = {}


def _prefilter_regex(text: str) -> "re.Pattern[bytes]":
    pattern = _PREFILTERS.get(text)
    if pattern is None:
        pattern = _PREFILTERS[text] = re.compile(text.encode())
    return pattern


def _view_keywords(rules: list[Rule]) -> frozenset[bytes]:
    """What a rule's match or a macro body worth re-parsing contains: a keyword of the rules."""
    key = tuple(id(r) for r in rules)
    found = _VIEW_KEYWORDS.get(key)
    if found is None or found[0] != rules:
        found = _VIEW_KEYWORDS[key] = (list(rules), frozenset({k.encode() for r in rules for k in r.keywords} | _NET_WORDS))
    return found[1]


_NET_WORDS = {b"net", b"TcpStream", b"TcpListener", b"UdpSocket"}
_VIEW_KEYWORDS: dict[tuple, tuple] = {}
# Items whose body is a list of items: looked into, so that one keyword in a large
# `impl` or inline `mod` does not make the whole of it part of the query's ranges.
_ITEM_CONTAINERS = {"mod_item", "impl_item", "trait_item", "foreign_mod_item"}


def keyword_ranges(root, data: bytes, keywords: Iterable[bytes]) -> list[tuple[int, int]]:
    """Byte ranges of the items (top-level, or inside a `mod`/`impl`/`trait` body) in
    which a keyword occurs, in order, adjacent ones merged. A rule's match contains one
    of its keywords, and a node lies within one item, so the rules' query over these
    ranges finds every match a walk of the whole tree finds."""
    positions = sorted({found for k in keywords for found in _occurrences(data, k)})
    ranges: list[tuple[int, int]] = []
    if positions:
        _cover(root, positions, ranges)
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _occurrences(data: bytes, keyword: bytes):
    """Where `keyword` occurs outside `//` comment lines."""
    at = data.find(keyword)
    while at >= 0:
        if not _on_comment_line(data, at):
            yield at
        at = data.find(keyword, at + 1)


def _in_code(data: bytes, keyword: bytes, start: int = 0, end: int | None = None) -> bool:
    """Whether `keyword` occurs in data[start:end] other than on a `//` comment line.

    Doc comments (`/// let s = TcpStream::connect(..)`) are where most mentions of
    std's sockets in a large tree are; they are never code, and a file, an item or a
    macro body that mentions a keyword only there cannot match."""
    end = len(data) if end is None else end
    at = data.find(keyword, start, end)
    while at >= 0:
        if not _on_comment_line(data, at):
            return True
        at = data.find(keyword, at + 1, end)
    return False


_NAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _name_in_code(data: bytes, name: bytes) -> bool:
    """Whether `name` occurs as a whole name (not inside a longer one: `accept` in
    `accepts`) other than on a `//` comment line. Bytes of a non-ASCII name count as
    ends: a lookalike there is only parsed for nothing, never missed."""
    at = data.find(name)
    while at >= 0:
        end = at + len(name)
        if (at == 0 or data[at - 1] not in _NAME_BYTES) and (end == len(data) or data[end] not in _NAME_BYTES) and not _on_comment_line(data, at):
            return True
        at = data.find(name, at + 1)
    return False


def _matches_in_code(pattern: "re.Pattern[bytes]", data: bytes) -> bool:
    """Whether the pattern matches at some position outside `//` comment lines.

    The search goes on from each rejected match's start + 1, not its end, so a match
    that begins in a comment cannot hide one that begins in code after it."""
    match = pattern.search(data)
    while match is not None:
        if not _on_comment_line(data, match.start()):
            return True
        match = pattern.search(data, match.start() + 1)
    return False


def _on_comment_line(data: bytes, at: int) -> bool:
    """Whether the line holding offset `at` starts (after blanks) with `//`: then what
    follows is a comment, or the inside of a multi-line string or block comment; never
    code either way."""
    line_start = data.rfind(b"\n", 0, at) + 1
    return data[line_start:at].lstrip(b" \t").startswith(b"//")


def _cover(parent, positions: list[int], ranges: list[tuple[int, int]]) -> None:
    """Add the ranges of `parent`'s children that contain a position; look into item containers."""
    from bisect import bisect_left

    for child in parent.children:
        start, end = child.start_byte, child.end_byte
        first = bisect_left(positions, start)
        if first == len(positions) or positions[first] >= end:
            continue  # no keyword in this child
        body = child.child_by_field_name("body") if child.type in _ITEM_CONTAINERS else None
        if body is None or body.type != "declaration_list":
            ranges.append((start, end))
            continue
        ranges.append((start, body.start_byte + 1))  # attributes, name, generics, `for` type, `{`
        _cover(body, positions, ranges)
        ranges.append((body.end_byte - 1, end))


class _MentionsStdNet:
    """Whether the file names std::net anywhere (then an unknown receiver is worth a
    warning); worked out at the first unknown receiver, most files never need it."""

    def __init__(self, view: _View) -> None:
        self.view = view
        self._value: bool | None = None

    def __call__(self) -> bool:
        if self._value is None:
            self._value = _mentions_std_net(self.view)
        return self._value


def _mentions_std_net(view: _View) -> bool:
    if b"std::net" in view.data:
        return True
    for scope in view.resolver.all_scopes():
        for use in scope.uses:
            if normalize(use.path)[:2] == ("std", "net") or normalize(use.path) == ("std",):
                return True
    return False


def _match_view(
    view: _View, rules: list[Rule], context: ScanContext, mentions_std_net: "Callable[[], bool]", findings: list[Finding], depth: int, combined: "_Combined | None" = None
) -> None:
    import tree_sitter

    for rule in rules:
        if combined is not None and view.prepared is not None:
            matches = combined.matches(rule, view.prepared)
        else:
            query = validate_lazily_compiled(rule)
            matches = [captures for _pattern, captures in tree_sitter.QueryCursor(query).matches(view.root)]
        for captures in matches:
            finding = _evaluate(rule, captures, view, context, mentions_std_net)
            if finding is not None:
                findings.append(finding)
    if depth < _MAX_MACRO_DEPTH:
        keywords = _view_keywords(rules)
        macros = view.prepared.macros if view.prepared is not None else None
        for macro, body in _macro_bodies(view.root, view.data, keywords, macros):
            nested = _reparse_macro(view, macro, body, combined)
            if nested is not None:
                _match_view(nested, rules, context, mentions_std_net, findings, depth + 1, combined)


# Macro invocations never nest in the tree (an inner one is part of the outer token
# tree) nor occur in comments or strings, so this finds the ones a walk would.
_MACRO_QUERY = syntax.LazyQuery(syntax.MACRO_PATTERN)


def _macro_bodies(root, data: bytes, keywords: set[bytes], macros: list | None = None):
    """Macro invocations whose body mentions a keyword, in the order of a depth-first
    walk that visits children last to first (see syntax.walk_order)."""
    if not any(k in data for k in keywords):
        return
    for node in syntax.walk_order(macros if macros is not None else syntax.captured(_MACRO_QUERY, root)):
        trees = [c for c in node.children if c.type == "token_tree"]
        if trees:
            body = trees[-1]
            start, end = body.start_byte, body.end_byte
            if any(_in_code(data, k, start, end) for k in keywords):
                yield node, body


def _reparse_macro(view: _View, macro, body, combined: "_Combined | None" = None) -> _View | None:
    # The token tree's content without its delimiters: `(...)`, `[...]` or `{...}`.
    content_start = body.start_byte + 1
    content = view.data[content_start : body.end_byte - 1]
    for prefix, suffix in _MACRO_WRAPPERS:
        wrapped = prefix.encode() + content + suffix.encode()
        tree = parse_bytes(wrapped)
        if not tree.root_node.has_error:
            delta = view.delta + content_start - len(prefix.encode())
            prepared = combined.run(tree.root_node) if combined is not None else None
            root = tree.root_node

            def make_resolver(root=root, wrapped=wrapped, prepared=prepared) -> Resolver:
                return _NestedResolver(root, wrapped, view.resolver, macro, nodes=prepared.collect if prepared else None)

            return _View(view.source, root, wrapped, delta, make_resolver, view, macro, target=view.target, prepared=prepared)
    return None


# -- constraints (see engine/constraints.py) -------------------------------------------

def _first_constraint(rule: Rule) -> tuple | None:
    """(capture, paths) when the first constraint `_evaluate` checks is `resolves-to`."""
    entry = _FIRST.get(id(rule))
    if entry is None or entry[0] is not rule:
        first = None
        if rule.where and rule.where[0][1] and rule.where[0][1][0][0] == "resolves-to":
            first = (rule.where[0][0], rule.where[0][1][0][1])
        entry = _FIRST[id(rule)] = (rule, first)
    return entry[1]


_FIRST: dict[int, tuple] = {}


def _evaluate(rule: Rule, captures: dict, view: _View, context: ScanContext, mentions_std_net: "Callable[[], bool]") -> Finding | None:
    names = list(captures)
    if not names:
        return None
    # Most candidates of a `resolves-to` rule (every path, every call) fail that check;
    # making it first spares them the cfg and attribute walks up the tree. The full
    # sequence below still runs for the rest, so the outcome is the same.
    first = _first_constraint(rule)
    if first is not None:
        nodes = captures.get(first[0])
        if nodes:
            full = view.resolver.resolve_node(nodes[0])
            if full is None or "::".join(normalize(full)) not in first[1]:
                return None
    report_name = rule.report or ("site" if "site" in captures else names[0])
    report_nodes = captures.get(report_name) or []
    if not report_nodes:
        return None
    site = report_nodes[0]
    if view.cfg(site) is False:
        return None
    if syntax.inside(site, {"attribute_item", "inner_attribute_item"}):
        return None
    bindings = Bindings()
    for capture, nodes in captures.items():
        bindings.values.setdefault(capture, view.text(nodes[0]))
    for capture, constraints in rule.constraints().items():
        nodes = captures.get(capture)
        if not nodes:
            return None
        if not check_all(constraints, nodes[0], view, bindings, mentions_std_net):
            return None
    severity = bindings.severity or rule.severity
    port, port_note = _port_status(rule, context, bindings)
    message = _fill(rule.message, bindings.values)
    help_text = _fill(rule.help, bindings.values)
    if port_note:
        help_text = f"{help_text} ({port_note})" if help_text else port_note
    start = site.start_byte + view.delta
    end = site.end_byte + view.delta
    fix = _fix(rule, site, view, context, bindings, help_text)
    return Finding(
        rule_id=rule.id,
        severity=severity,
        message=message,
        path=view.source.path,
        span=view.source.span(start, end),
        help=help_text,
        port=port,
        fix=fix,
        sure=bindings.sure,
    )


def _port_status(rule: Rule, context: ScanContext, bindings: Bindings) -> tuple[PortStatus, str]:
    if rule.compat_method:
        method = _fill(rule.compat_method, bindings.values)
        status = context.compat.status(context.profile.socket_api, method)
        if status is not None:
            return status
    return rule.port, ""


def _fill(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    return re.sub(r"\{([a-z_]+)\}", replace, template)


def _fix(rule: Rule, site, view: _View, context: ScanContext, bindings: Bindings, help_text: str) -> Fix | None:
    if rule.port is PortStatus.MANUAL and not rule.compat_method and not rule.transform:
        return None
    edits: tuple = ()
    if rule.transform and view.parent is None:  # no edits inside macro bodies
        ctx = transforms.FileContext(
            path=view.source.path,
            data=view.data,
            newline=view.source.newline,
            profile=context.profile,
            is_crate_root=context.is_crate_root,
        )
        edits = tuple(transforms.TRANSFORMS[rule.transform].edits(site, bindings, ctx))
    return Fix(help_text or rule.help, edits)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    unique = []
    for finding in sorted(findings, key=Finding.sort_key):
        key = (finding.rule_id, finding.span.start_byte, finding.span.end_byte)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


# -- suppressions ------------------------------------------------------------------

def suppression_lines(data: bytes) -> dict[int, set[str]]:
    """Line number -> rule ids allowed by `// wasiport: allow(id, ...)` comments on that line."""
    found: dict[int, set[str]] = {}
    if b"wasiport:" not in data:
        return found
    for match in _SUPPRESS.finditer(data):
        line = data.count(b"\n", 0, match.start()) + 1
        ids = {part.strip() for part in match.group(1).decode("utf-8", "replace").split(",") if part.strip()}
        found.setdefault(line, set()).update(ids)
    return found


def _allowed(rule_id: str, ids: set[str]) -> bool:
    short = rule_id.split("/", 1)[-1]
    return bool(ids & {rule_id, short, "all", "*"})


def _apply_suppressions(findings: list[Finding], source: SourceFile) -> list[Finding]:
    allowed = suppression_lines(source.data)
    if not allowed or not findings:
        return findings
    kept = []
    for finding in findings:
        lines = {finding.span.start_line, finding.span.start_line - 1}
        lines |= _item_lines_above(source, finding.span.start_byte)
        if any(_allowed(finding.rule_id, allowed.get(line, set())) for line in lines):
            continue
        kept.append(finding)
    return kept


def _item_lines_above(source: SourceFile, offset: int) -> set[int]:
    """Lines directly above each enclosing item/statement (and above its attributes)."""
    node = source.root.descendant_for_byte_range(offset, offset)
    lines: set[int] = set()
    while node is not None:
        if node.type in _ITEM_LIKE:
            first = node
            for attr in syntax.outer_attributes(node):
                if attr.start_byte < first.start_byte:
                    first = attr
            lines.add(source.line_col(first.start_byte)[0] - 1)
        node = node.parent
    return lines
