"""Evaluating `#[cfg(...)]` predicates against the port target.

Three-valued: True (compiled for the target), False (cfg'd out) and None
(unknown: a cargo feature, `debug_assertions`, a custom `--cfg`). Code is only
dropped from the scan when its cfg is definitely False.
"""
from __future__ import annotations

import re
from typing import Mapping, NamedTuple

Tri = bool | None

# What rustc sets for wasm32-wasi / wasm32-wasip1: for each key, the tri-state
# of each known value and the tri-state of every other value. target_env is ""
# on older toolchains and "p1" on newer ones, so both are unknown; "p2" is false.
WASI_TARGET: Mapping[str, tuple[Mapping[str, Tri], Tri]] = {
    "target_os": ({"wasi": True}, False),
    "target_family": ({"wasm": True}, False),
    "target_arch": ({"wasm32": True}, False),
    "target_vendor": ({"unknown": True}, False),
    "target_pointer_width": ({"32": True}, False),
    "target_endian": ({"little": True}, False),
    "target_env": ({"": None, "p1": None}, False),
}
# Names that are definitely set or unset for a normal (non-test) build of the port.
WASI_FLAGS: Mapping[str, bool] = {
    "unix": False,
    "windows": False,
    "test": False,  # test code runs natively; it is not part of the port
    "doc": False,
    "doctest": False,
    "miri": False,
    "proc_macro": False,
}

_TOKEN = re.compile(r'\s*(?:(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<punct>[(),=]))')


class CfgSyntaxError(ValueError):
    pass


class Target(NamedTuple):
    """Known cfg values; everything not listed here evaluates to unknown.

    `features` is the set of enabled cargo features when it is known (cargo
    resolved it, as for a dependency graph); None leaves `feature = ".."` unknown."""

    values: Mapping[str, tuple[Mapping[str, Tri], Tri]]
    flags: Mapping[str, bool]
    features: frozenset[str] | None = None

    def with_features(self, features) -> "Target":
        return Target(self.values, self.flags, None if features is None else frozenset(features))

    def key_value(self, key: str, value: str) -> Tri:
        if key == "feature":
            return None if self.features is None else value in self.features
        if key not in self.values:  # custom keys: unknown
            return None
        known, otherwise = self.values[key]
        return known.get(value, otherwise)

    def flag(self, name: str) -> Tri:
        return self.flags.get(name)


WASI = Target(WASI_TARGET, WASI_FLAGS)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise CfgSyntaxError(f"unexpected text in cfg: {text[pos:pos + 20]!r}")
        tokens.append(match.group("ident") or match.group("str") or match.group("punct"))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def evaluate(predicate: str, target: Target = WASI) -> Tri:
    """Evaluate the text inside `cfg( ... )`, e.g. `all(unix, not(feature = "x"))`."""
    tokens = _tokenize(predicate)
    value, pos = _expr(tokens, 0, target)
    if pos != len(tokens):
        raise CfgSyntaxError(f"trailing tokens in cfg: {' '.join(tokens[pos:])}")
    return value


def _expr(tokens: list[str], pos: int, target: Target) -> tuple[Tri, int]:
    if pos >= len(tokens):
        raise CfgSyntaxError("empty cfg predicate")
    name = tokens[pos]
    if not re.match(r"[A-Za-z_]", name):
        raise CfgSyntaxError(f"expected a name in cfg, found {name!r}")
    pos += 1
    if pos < len(tokens) and tokens[pos] == "(" and name in ("all", "any", "not"):
        args: list[Tri] = []
        pos += 1
        while pos < len(tokens) and tokens[pos] != ")":
            value, pos = _expr(tokens, pos, target)
            args.append(value)
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
        if pos >= len(tokens):
            raise CfgSyntaxError("unclosed parenthesis in cfg")
        pos += 1
        return _combine(name, args), pos
    if pos < len(tokens) and tokens[pos] == "=":
        if pos + 1 >= len(tokens) or not tokens[pos + 1].startswith('"'):
            raise CfgSyntaxError(f"expected a string after `{name} =`")
        value = tokens[pos + 1][1:-1]
        return target.key_value(name, value), pos + 2
    return target.flag(name), pos


def _combine(op: str, args: list[Tri]) -> Tri:
    if op == "not":
        if len(args) != 1:
            raise CfgSyntaxError("not() takes exactly one predicate")
        return None if args[0] is None else not args[0]
    if op == "all":
        if any(a is False for a in args):
            return False
        return True if all(a is True for a in args) else None
    # any
    if any(a is True for a in args):
        return True
    return False if all(a is False for a in args) else None


def cfg_of_attribute(attribute_text: str) -> str | None:
    """The predicate text of `#[cfg(...)]` / `#![cfg(...)]`, or None for other attributes."""
    match = re.match(r"#!?\s*\[\s*cfg\s*\((.*)\)\s*\]\s*$", attribute_text, re.S)
    return match.group(1) if match else None
