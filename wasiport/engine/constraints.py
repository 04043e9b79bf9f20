"""The `where` constraints of the rule language, each registered once: its name, the type
of its value, the placeholders it binds for `message`/`help`/`compat-method`, the other
constraints it needs on the same capture, and the function that checks it.

    [rule.where.recv]
    type-is = ["std::net::TcpStream"]   # binds {type}
    unknown = "warning"                 # needs type-is

The loader (engine/rules.py) validates rules against this table, and the matcher
(engine/matcher.py) runs the functions it holds: a constraint cannot be declared in one
and missing from the other. A check gets the captured node, the constraint's value, all
the capture's constraints, the file's view (resolver, type oracle, bytes), the bindings
so far (to add to) and a lazy "does this file mention std::net" test.
"""
from __future__ import annotations

import re
from typing import Callable, NamedTuple

from wasiport.model import Severity
from wasiport.rust import syntax
from wasiport.rust.names import Resolver, normalize, use_items


class Bindings:
    """What a rule's constraints found: placeholder values, whether the match is sure, a
    severity for unsure matches, and the use items to switch (for `gate-use`)."""

    __slots__ = ("values", "sure", "severity", "switch")

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.sure = True
        self.severity: Severity | None = None
        self.switch: list = []


class Constraint(NamedTuple):
    name: str
    value_type: type
    binds: tuple[str, ...]  # placeholders it fills
    needs: tuple[str, ...]  # constraints it needs on the same capture
    check: Callable | None  # None: it modifies another constraint, and checks nothing itself
    validate: Callable[[object], None] | None  # raises ValueError for a value of the right type but wrong
    doc: str


CONSTRAINTS: dict[str, Constraint] = {}


def constraint(name: str, value_type: type, *, binds: tuple[str, ...] = (), needs: tuple[str, ...] = (), validate=None, doc: str):
    """Register the decorated function as constraint `name` (once)."""

    def register(check: Callable | None) -> Callable | None:
        assert name not in CONSTRAINTS, f"constraint {name} registered twice"
        CONSTRAINTS[name] = Constraint(name, value_type, binds, needs, check, validate, doc)
        return check

    return register


@constraint("resolves-to", list, binds=("path", "type"), doc="the captured path resolves to one of these full paths")
def resolves_to(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    full = view.resolver.resolve_node(node)
    if full is None or "::".join(normalize(full)) not in value:
        return False
    bindings.values["path"] = "::".join(normalize(full))
    bindings.values["type"] = normalize(full)[-1]
    return True


@constraint("qualified", bool, doc="the captured path is written with a `::` prefix (not a bare imported name)")
def qualified(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    segments = syntax.path_segments(node, view.data) or []
    return (len(segments) > 1) == value


@constraint("not-inside", list, doc="the capture is not inside any node of these kinds")
def not_inside(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    return not syntax.inside(node, set(value))


@constraint("trait-in-scope", str, doc="the trait is imported where the capture is")
def trait_in_scope(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    return view.resolver.trait_in_scope(node, tuple(value.split("::")))


@constraint("imports", list, binds=("items",), doc="the captured use declaration imports one of these (or their module / a glob)")
def imports(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    switch = imported_items(node, set(value), view)
    if not switch:
        return False
    bindings.switch = switch
    bindings.values["items"] = ", ".join(f"`{describe_use_item(i)}`" for i in switch)
    return True


@constraint("type-is", list, binds=("type",), doc="the captured expression's inferred type is one of these")
def type_is(node, value, constraints, view, bindings: Bindings, mentions_std_net) -> bool:
    wanted = frozenset(tuple(p.split("::")) for p in value)
    verdict = view.oracle.classify(node, wanted)
    if verdict.kind == "other":
        return False
    if verdict.kind == "unknown":
        fallback = constraints.get("unknown", "warning")
        if fallback == "skip" or not mentions_std_net():
            return False
        bindings.sure = False
        bindings.severity = Severity.parse(fallback)
        bindings.values["type"] = "/".join(sorted(p[-1] for p in wanted))
    else:
        bindings.values["type"] = verdict.path[-1] if verdict.path else ""
    return True


def _severity_or_skip(value: str) -> None:
    if value != "skip":
        Severity.parse(value)  # raises ValueError naming the word


# Read by type-is (above) for its unsure matches; checks nothing itself.
constraint("unknown", str, needs=("type-is",), validate=_severity_or_skip, doc='with type-is: the severity for receivers whose type is unknown, or "skip"')(None)


def check_all(constraints: dict, node, view, bindings: Bindings, mentions_std_net) -> bool:
    """Whether the capture's node meets every constraint (in the order written)."""
    for name, value in constraints.items():
        check = CONSTRAINTS[name].check
        if check is not None and not check(node, value, constraints, view, bindings, mentions_std_net):
            return False
    return True


def describe_use_item(item) -> str:
    path = "::".join(normalize(item.path))
    if item.is_glob:
        return f"{path}::*"
    last = normalize(item.path)[-1] if item.path else ""
    return path if item.name == last else f"{path} as {item.name}"


def imported_items(declaration, wanted: set[str], view) -> list:
    """The items of a use declaration that bring std's socket types into scope.

    A module import (`use std::net;`, `{self}`) counts only if the scope then
    names a socket type through it (`net::TcpStream`); a glob always counts."""
    items = use_items(declaration, view.data)
    module_paths = {tuple(p.split("::")[:-1]) for p in wanted}
    switch = []
    for item in items:
        path = normalize(item.path)
        if item.is_glob:
            if path in module_paths:
                switch.append(item)
        elif "::".join(path) in wanted:
            switch.append(item)
        elif path in module_paths and _alias_names_socket_type(declaration, item.name, wanted, view):
            switch.append(item)
    return switch


def _alias_names_socket_type(declaration, alias: str, wanted: set[str], view) -> bool:
    scope_node = Resolver.enclosing_scope_node(declaration)
    short_names = {p.split("::")[-1] for p in wanted}
    pattern = re.compile(rb"\b" + re.escape(alias.encode()) + rb"\s*::\s*(" + b"|".join(n.encode() for n in short_names) + rb")\b")
    text = view.data[scope_node.start_byte : scope_node.end_byte]
    return bool(pattern.search(text))
