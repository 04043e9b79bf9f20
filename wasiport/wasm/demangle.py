"""Demangling: enough of Rust's two symbol schemes (legacy `_ZN..E` and v0 `_R..`) to
match paths by text, e.g. `std::net::tcp::TcpStream::connect`.
"""
from __future__ import annotations

import re

_LEGACY_ESCAPES = {
    "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
}
_ASCII_DIGITS = "0123456789"
_LEGACY_HASH = re.compile(r"h[0-9a-f]{16}")
_LLVM_SUFFIX = re.compile(r"\.llvm\.\d+$")


def demangle(symbol: str) -> str:
    """A readable Rust path for a legacy (`_ZN...E`) or v0 (`_R...`) symbol; other names unchanged.

    Hashes are dropped (`std::net::tcp::TcpStream::connect`, not `...::connect::h1a2b...`)
    so that names compare across builds. Names that fail to decode are returned as given.
    """
    name = _LLVM_SUFFIX.sub("", symbol)
    for prefix in ("_ZN", "__ZN", "ZN"):
        if name.startswith(prefix):
            return _demangle_legacy(name[len(prefix) :]) or symbol
    for prefix in ("_R", "__R", "R"):
        if name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)].isupper():
            try:
                return _V0(name[len(prefix) :]).symbol()
            except (_V0Error, IndexError, ValueError, RecursionError):
                return symbol
    return symbol


def _demangle_legacy(body: str) -> str | None:
    parts: list[str] = []
    i = 0
    while i < len(body) and body[i] != "E":
        j = i
        while j < len(body) and body[j] in _ASCII_DIGITS:
            j += 1
        if j == i:
            return None
        length = int(body[i:j])
        parts.append(body[j : j + length])
        i = j + length
    if i >= len(body):
        return None
    if parts and _LEGACY_HASH.fullmatch(parts[-1]):
        parts.pop()
    return "::".join(_legacy_unescape(p) for p in parts)


def _legacy_unescape(part: str) -> str:
    if part.startswith("_$"):
        part = part[1:]
    out: list[str] = []
    i = 0
    while i < len(part):
        if part.startswith("..", i):
            out.append("::")
            i += 2
        elif part[i] == "$":
            end = part.find("$", i + 1)
            code = part[i + 1 : end] if end > 0 else ""
            if code in _LEGACY_ESCAPES:
                out.append(_LEGACY_ESCAPES[code])
            elif code.startswith("u") and _is_hex(code[1:]):
                out.append(chr(int(code[1:], 16)))
            else:
                out.append(part[i : end + 1] if end > 0 else part[i:])
            i = end + 1 if end > 0 else len(part)
        else:
            out.append(part[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


class _V0Error(Exception):
    pass


def _looks_like_path(type_text: str) -> bool:
    return bool(type_text) and (type_text[0].isalpha() or type_text[0] == "_") and not type_text.startswith(
        ("dyn ", "fn(", "unsafe ", "extern ")
    )


_V0_BASIC = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
    "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16",
    "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _V0:
    """A small recursive-descent reader of the v0 mangling grammar (RFC 2603).

    Inherent impls print as their self type (`std::net::tcp::TcpStream::connect`)
    so that v0 and legacy names of the same function read alike."""

    _MAX_DEPTH = 200
    _MAX_STEPS = 20_000

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0
        self.steps = 0

    def symbol(self) -> str:
        if self.s[self.i] in _ASCII_DIGITS:  # encoding version
            self._decimal()
        return self.path()

    # -- lexical pieces
    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _eat(self, ch: str) -> bool:
        if self._peek() == ch:
            self.i += 1
            return True
        return False

    def _decimal(self) -> int:
        start = self.i
        while self._peek() and self._peek() in _ASCII_DIGITS:
            self.i += 1
        if start == self.i:
            raise _V0Error("expected a number")
        return int(self.s[start : self.i])

    def _base62(self) -> int:
        if self._eat("_"):
            return 0
        value = 0
        while not self._eat("_"):
            ch = self._peek()
            if not ch:
                raise _V0Error("unterminated number")
            value = value * 62 + _BASE62.index(ch)
            self.i += 1
        return value + 1

    def _disambiguator(self) -> None:
        if self._eat("s"):
            self._base62()

    def _ident(self) -> str:
        self._disambiguator()
        return self._undisambiguated_ident()

    def _undisambiguated_ident(self) -> str:
        punycode = self._eat("u")
        length = self._decimal()
        self._eat("_")
        text = self.s[self.i : self.i + length]
        self.i += length
        return f"punycode{{{text}}}" if punycode else text

    def _backref(self, parse) -> str:
        target = self._base62()
        saved = self.i
        self.i = target
        try:
            return parse()
        finally:
            self.i = saved

    def _nested(self, parse) -> str:
        self.depth += 1
        self.steps += 1
        # Backrefs can make a short symbol expand exponentially: bound the work.
        if self.depth > self._MAX_DEPTH or self.steps > self._MAX_STEPS:
            raise _V0Error("too deep")
        try:
            return parse()
        finally:
            self.depth -= 1

    # -- grammar
    def path(self, in_value: bool = True) -> str:
        return self._nested(lambda: self._path(in_value))

    def _path(self, in_value: bool) -> str:
        tag = self.s[self.i]
        self.i += 1
        if tag == "C":
            return self._ident()
        if tag == "M":
            self._disambiguator()
            self.path()
            self_type = self.type()
            # Print a path self type bare, as legacy names do: std::net::tcp::TcpStream::connect.
            return self_type if _looks_like_path(self_type) else f"<{self_type}>"
        if tag == "X":
            self._disambiguator()
            self.path()
            self_type = self.type()
            trait = self.path(in_value=False)
            return f"<{self_type} as {trait}>"
        if tag == "Y":
            self_type = self.type()
            trait = self.path(in_value=False)
            return f"<{self_type} as {trait}>"
        if tag == "N":
            namespace = self.s[self.i]
            self.i += 1
            parent = self.path(in_value)
            name = self._ident()
            if namespace == "C":
                return f"{parent}::{{{{closure}}}}" + (f"::{name}" if name else "")
            if namespace == "S":
                return f"{parent}::{{shim:{name}}}"
            if namespace.isupper():
                return f"{parent}::{{{namespace}:{name}}}"
            return f"{parent}::{name}" if name else parent
        if tag == "I":
            base = self.path(in_value)
            args = []
            while not self._eat("E"):
                args.append(self._generic_arg())
            return f"{base}{'::' if in_value else ''}<{', '.join(args)}>"
        if tag == "B":
            return self._backref(lambda: self.path(in_value))
        raise _V0Error(f"unknown path tag {tag}")

    def _generic_arg(self) -> str:
        if self._eat("L"):
            self._base62()
            return "'_"
        if self._eat("K"):
            return self.const()
        return self.type()

    def type(self) -> str:
        return self._nested(self._type)

    def _type(self) -> str:
        tag = self.s[self.i]
        if tag in _V0_BASIC:
            self.i += 1
            return _V0_BASIC[tag]
        self.i += 1
        if tag in "CMXYNI":
            self.i -= 1
            return self.path(in_value=False)
        if tag == "A":
            inner = self.type()
            return f"[{inner}; {self.const()}]"
        if tag == "S":
            return f"[{self.type()}]"
        if tag == "T":
            items = []
            while not self._eat("E"):
                items.append(self.type())
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if tag in "RQ":
            if self._eat("L"):
                self._base62()
            return ("&mut " if tag == "Q" else "&") + self.type()
        if tag in "PO":
            return ("*mut " if tag == "O" else "*const ") + self.type()
        if tag == "F":
            return self._fn_sig()
        if tag == "D":
            return self._dyn()
        if tag == "B":
            return self._backref(self.type)
        raise _V0Error(f"unknown type tag {tag}")

    def _fn_sig(self) -> str:
        if self._eat("G"):
            self._base62()
        unsafe = self._eat("U")
        abi = ""
        if self._eat("K"):
            abi = '"C" ' if self._eat("C") else f'"{self._undisambiguated_ident()}" '
        params = []
        while not self._eat("E"):
            params.append(self.type())
        result = self.type()
        prefix = ("unsafe " if unsafe else "") + (f"extern {abi}" if abi else "")
        return f"{prefix}fn({', '.join(params)})" + ("" if result == "()" else f" -> {result}")

    def _dyn(self) -> str:
        if self._eat("G"):
            self._base62()
        traits = []
        while not self._eat("E"):
            trait = self.path(in_value=False)
            while self._eat("p"):
                name = self._undisambiguated_ident()
                trait += f"<{name} = {self.type()}>"
            traits.append(trait)
        if self._eat("L"):
            self._base62()
        return "dyn " + " + ".join(traits)

    def const(self) -> str:
        return self._nested(self._const)

    def _const(self) -> str:
        if self._eat("p"):
            return "_"
        if self._eat("B"):
            return self._backref(self.const)
        ty = self.type()
        negative = self._eat("n")
        start = self.i
        while self._peek() and self._peek() != "_":
            self.i += 1
        digits = self.s[start : self.i]
        self.i += 1
        if ty == "bool":
            return "true" if digits == "1" else "false"
        value = int(digits, 16) if digits else 0
        return f"{'-' if negative else ''}{value}"
