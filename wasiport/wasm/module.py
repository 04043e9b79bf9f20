"""Read wasm modules and wasm32 rlibs: imports, exports, function names, and a verdict.

A clean wasm32-wasi build proves nothing about networking: std's `std::net`
compiles for WASI and fails at run time. What a module links to does prove it:
a port imports WasmEdge's socket host functions (`wasi_snapshot_preview1.sock_open`,
`sock_connect`, ...), while an unported module still carries std's socket code
(visible by name in the `name` section of builds that keep symbol names).

Everything here is plain Python over the binary format (LEB128 integers,
length-prefixed sections); nothing is executed. Malformed input raises
`UserError` naming the byte offset.

An `.rlib` for a wasm32 target is an `ar` archive of relocatable wasm objects
(plus `lib.rmeta`). Their `linking` section lists the symbols each object
defines and references, so a library port with no binary can still be checked:
does the crate's own code go through `wasmedge_wasi_socket` or through `std::net`?
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.errors import UserError

WASM_MAGIC = b"\0asm"
AR_MAGIC = b"!<arch>\n"
BITCODE_MAGIC = b"BC\xc0\xde"
WASI_MODULE = "wasi_snapshot_preview1"
SOCKET_CRATE = "wasmedge_wasi_socket"

# WasmEdge's host functions that standard WASI preview1 does not have
# (wasmedge_wasi_socket declares them in `src/socket.rs`; `epoll_oneoff` with its
# `epoll` feature). Importing any of them means the module needs WasmEdge.
WASMEDGE_SOCKET_EXTENSIONS = frozenset(
    {
        "sock_open",
        "sock_bind",
        "sock_listen",
        "sock_connect",
        "sock_recv_from",
        "sock_send_to",
        "sock_getpeeraddr",
        "sock_getlocaladdr",
        "sock_getsockopt",
        "sock_setsockopt",
        "sock_getaddrinfo",
        "epoll_oneoff",
    }
)
# Socket functions standard preview1 defines too (Rust std imports these for
# pre-opened sockets). `sock_accept` is standard with 3 parameters; WasmEdge's
# original form takes 2, so a 2-parameter `sock_accept` is an extension.
STANDARD_SOCKET_FUNCTIONS = frozenset({"sock_accept", "sock_recv", "sock_send", "sock_shutdown"})
WASMEDGE_ACCEPT_PARAMS = 2

# std's socket code, by demangled path. Address types (`std::net::ip`,
# `std::net::addr` parsing and formatting) are deliberately not listed: the
# socket crate re-exports them, so a correct port keeps them.
_STD_SOCKET_CODE = re.compile(
    r"(?<![\w:])std::(?:"
    r"net::(?:tcp|udp)::"
    r"|net::addr::resolve_socket_addr"
    r"|net::each_addr"
    r"|sys_common::net::"
    r"|sys::(?:[a-z0-9_]+::)*net::"
    r")"
)
# The std entry points that open sockets or resolve names; on wasm32-wasi they
# all return "unsupported", so they are what a report names first (constructors,
# then name lookup).
_STD_CONSTRUCTORS = re.compile(
    r"(?:TcpStream::connect(?:_timeout)?|TcpListener::bind|UdpSocket::(?:bind|connect))(?:$|::<)"
)
_STD_ENTRY_POINTS = re.compile(
    _STD_CONSTRUCTORS.pattern + r"|\b(?:LookupHost|lookup_host|resolve_socket_addr)\b|each_addr(?:$|::<)"
)
_SOCKET_CRATE_CODE = re.compile(r"(?<![\w:])" + SOCKET_CRATE + r"::")


class Verdict(str, enum.Enum):
    PORTED = "ported"
    NOT_PORTED = "not ported"
    NO_NETWORKING = "no networking"

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------------------
# Data read from a module


@dataclass(frozen=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.params)}) -> ({', '.join(self.results)})"


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: str  # func | table | memory | global | tag
    signature: FuncType | None = None  # for functions whose type could be read


@dataclass(frozen=True)
class Export:
    name: str
    kind: str
    index: int


@dataclass(frozen=True)
class Symbol:
    """One entry of a relocatable object's `linking` symbol table."""

    name: str
    kind: str  # function | data | global | section | tag | table
    defined: bool
    flags: int


@dataclass(frozen=True)
class WasmModule:
    types: tuple[FuncType | None, ...]
    imports: tuple[Import, ...]
    exports: tuple[Export, ...]
    function_names: Mapping[int, str]  # from the `name` section, as stored (maybe mangled)
    custom_sections: tuple[str, ...]
    symbols: tuple[Symbol, ...] = ()  # relocatable objects only

    @property
    def is_object(self) -> bool:
        return "linking" in self.custom_sections


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    offset: int  # of the member's data in the archive
    data: bytes


# ---------------------------------------------------------------------------
# The verdict


@dataclass(frozen=True)
class SocketImport:
    name: str
    params: int | None  # None when the signature could not be read
    wasmedge_extension: bool


@dataclass(frozen=True)
class ObjectSummary:
    """What one object of an rlib links to (only objects that matter are kept)."""

    name: str
    socket_imports: tuple[str, ...]
    socket_crate_functions: tuple[str, ...]
    std_net_functions: tuple[str, ...]


@dataclass(frozen=True)
class Inspection:
    path: str
    kind: str  # module | rlib | object (one relocatable .o)
    verdict: Verdict
    imports: tuple[Import, ...]
    exports: tuple[Export, ...]
    socket_imports: tuple[SocketImport, ...]
    std_net_functions: tuple[str, ...]  # demangled, hash-free, sorted: entry points first
    socket_crate_functions: tuple[str, ...]
    has_names: bool  # False: a stripped module, so std code could not be looked for
    objects: tuple[ObjectSummary, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def wasmedge_imports(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.socket_imports if s.wasmedge_extension)

    @property
    def standard_socket_imports(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.socket_imports if not s.wasmedge_extension)

    @property
    def std_net_entry_points(self) -> tuple[str, ...]:
        return tuple(n for n in self.std_net_functions if _STD_ENTRY_POINTS.search(n))

    def imports_by_module(self) -> dict[str, list[Import]]:
        grouped: dict[str, list[Import]] = {}
        for imp in self.imports:
            grouped.setdefault(imp.module, []).append(imp)
        return grouped

    @property
    def summary(self) -> str:
        return summarise(self)


# ---------------------------------------------------------------------------
# Binary reader


class _Reader:
    """Sequential reader over a byte slice; `base` makes error offsets absolute."""

    def __init__(self, data: bytes | memoryview, *, base: int = 0, what: str = "module") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.base = base
        self.what = what

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def fail(self, reason: str, at: int | None = None) -> UserError:
        where = self.offset if at is None else at
        return UserError(f"malformed wasm {self.what} at byte offset {where}: {reason}")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int) -> memoryview:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"a length of {count} bytes runs past the end")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def uleb(self, max_bits: int = 32) -> int:
        start = self.offset
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
            if shift >= max_bits + 7:
                raise self.fail("an integer is too long", start)

    def sleb(self, max_bits: int = 64) -> int:
        start = self.offset
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
            if shift >= max_bits + 7:
                raise self.fail("an integer is too long", start)

    def name(self) -> str:
        start = self.offset
        raw = bytes(self.take(self.uleb()))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a name is not valid UTF-8", start) from None

    def sub(self, size: int) -> "_Reader":
        start = self.offset
        return _Reader(self.take(size), base=start, what=self.what)


_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
_EXTERNAL_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_SYMBOL_KINDS = {0: "function", 1: "data", 2: "global", 3: "section", 4: "tag", 5: "table"}
_SYM_UNDEFINED = 0x10
_SYM_EXPLICIT_NAME = 0x40
_SECTION_TYPE, _SECTION_IMPORT, _SECTION_EXPORT = 1, 2, 7
_NAME_SUBSECTION_FUNCTIONS = 1
_LINKING_SYMBOL_TABLE = 8


def _valtype(r: _Reader) -> str:
    code = r.byte()
    if code in _VALTYPES:
        return _VALTYPES[code]
    if code in (0x63, 0x64):  # (ref null ht) / (ref ht) from the GC proposal
        r.sleb(33)
        return "ref"
    raise r.fail(f"unknown value type 0x{code:02x}", r.offset - 1)


def _limits(r: _Reader) -> None:
    flags = r.byte()
    bits = 64 if flags & 0x04 else 32
    r.uleb(bits)
    if flags & 0x01:
        r.uleb(bits)
    if flags & 0x08:  # custom page size
        r.uleb()


def _type_section(r: _Reader) -> list[FuncType | None]:
    types: list[FuncType | None] = []
    for _ in range(r.uleb()):
        form = r.byte()
        if form != 0x60:
            # GC proposal types (rec groups, structs, arrays) never come out of
            # rustc; stop reading types rather than misread them.
            types.append(None)
            return types
        params = tuple(_valtype(r) for _ in range(r.uleb()))
        results = tuple(_valtype(r) for _ in range(r.uleb()))
        types.append(FuncType(params, results))
    return types


def _import_section(r: _Reader, types: Sequence[FuncType | None]) -> list[Import]:
    imports: list[Import] = []
    for _ in range(r.uleb()):
        module = r.name()
        name = r.name()
        kind_offset = r.offset
        kind_code = r.byte()
        kind = _EXTERNAL_KINDS.get(kind_code)
        signature = None
        if kind == "func":
            index = r.uleb()
            signature = types[index] if index < len(types) else None
        elif kind == "table":
            _valtype(r)
            _limits(r)
        elif kind == "memory":
            _limits(r)
        elif kind == "global":
            _valtype(r)
            r.byte()
        elif kind == "tag":
            r.byte()
            r.uleb()
        else:
            raise r.fail(f"unknown import kind 0x{kind_code:02x}", kind_offset)
        imports.append(Import(module, name, kind, signature))
    return imports


def _export_section(r: _Reader) -> list[Export]:
    exports: list[Export] = []
    for _ in range(r.uleb()):
        name = r.name()
        kind_code = r.byte()
        exports.append(Export(name, _EXTERNAL_KINDS.get(kind_code, f"0x{kind_code:02x}"), r.uleb()))
    return exports


def _name_section(r: _Reader) -> dict[int, str]:
    names: dict[int, str] = {}
    while not r.at_end():
        sub_id = r.byte()
        body = r.sub(r.uleb())
        if sub_id == _NAME_SUBSECTION_FUNCTIONS:
            for _ in range(body.uleb()):
                index = body.uleb()
                names[index] = body.name()
    return names


def _linking_section(r: _Reader, imports: Sequence[Import]) -> list[Symbol]:
    r.uleb()  # version (2)
    imported_functions = [imp.name for imp in imports if imp.kind == "func"]
    symbols: list[Symbol] = []
    while not r.at_end():
        sub_id = r.byte()
        body = r.sub(r.uleb())
        if sub_id != _LINKING_SYMBOL_TABLE:
            continue
        for _ in range(body.uleb()):
            kind_code = body.byte()
            kind = _SYMBOL_KINDS.get(kind_code)
            flags = body.uleb()
            defined = not flags & _SYM_UNDEFINED
            name = ""
            if kind in ("function", "global", "tag", "table"):
                index = body.uleb()
                if defined or flags & _SYM_EXPLICIT_NAME:
                    name = body.name()
                elif kind == "function" and index < len(imported_functions):
                    name = imported_functions[index]
            elif kind == "data":
                name = body.name()
                if defined:
                    body.uleb(), body.uleb(64), body.uleb(64)
            elif kind == "section":
                body.uleb()
            else:
                raise body.fail(f"unknown symbol kind {kind_code}")
            symbols.append(Symbol(name, kind or "?", defined, flags))
    return symbols


def parse_module(data: bytes | memoryview, *, base: int = 0, what: str = "module") -> WasmModule:
    """Parse the sections wasiport needs; skip the rest (code, data) by size."""
    r = _Reader(data, base=base, what=what)
    if len(r.data) < 8 or bytes(r.data[:4]) != WASM_MAGIC:
        raise r.fail("the file does not start with the wasm magic bytes", base)
    version = bytes(r.data[4:8])
    if version != b"\x01\0\0\0":
        if version[2:4] == b"\x01\0":
            raise UserError(
                f"{what} is a WebAssembly component, not a core module",
                hint="components (wasm32-wasip2) do not use WasmEdge's socket functions",
            )
        raise r.fail(f"unsupported wasm version {version.hex()}", base + 4)
    r.pos = 8
    types: list[FuncType | None] = []
    imports: list[Import] = []
    exports: list[Export] = []
    names: dict[int, str] = {}
    custom: list[str] = []
    linking: _Reader | None = None
    while not r.at_end():
        section_start = r.offset
        section_id = r.byte()
        size = r.uleb()
        remaining = len(r.data) - r.pos
        if size > remaining:
            raise r.fail(
                f"section {section_id} declares {size} bytes but only {remaining} remain (truncated file?)",
                section_start,
            )
        body = r.sub(size)
        if section_id == 0:
            name = body.name()
            custom.append(name)
            if name == "name":
                names = _name_section(body)
            elif name == "linking":
                linking = body
        elif section_id == _SECTION_TYPE:
            types = _type_section(body)
        elif section_id == _SECTION_IMPORT:
            imports = _import_section(body, types)
        elif section_id == _SECTION_EXPORT:
            exports = _export_section(body)
        elif section_id > 13:
            raise r.fail(f"unknown section id {section_id}", section_start)
    symbols = _linking_section(linking, imports) if linking is not None else []
    return WasmModule(tuple(types), tuple(imports), tuple(exports), names, tuple(custom), tuple(symbols))


_DECIMAL = re.compile(r"[0-9]+")


def parse_archive(data: bytes, *, what: str = "archive") -> list[ArchiveMember]:
    """Members of a GNU or BSD `ar` archive, without the symbol and name tables."""
    if not data.startswith(AR_MAGIC):
        raise UserError(f"malformed {what} at byte offset 0: no `!<arch>` header")
    members: list[ArchiveMember] = []
    long_names = b""
    pos = len(AR_MAGIC)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # padding to an even offset
            pos += 1
            continue
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise UserError(f"malformed {what} at byte offset {pos}: bad member header")
        raw_name = header[:16].decode("latin-1").rstrip()
        size_text = header[48:58].decode("latin-1").strip()
        if not _DECIMAL.fullmatch(size_text):
            raise UserError(f"malformed {what} at byte offset {pos + 48}: bad member size {size_text!r}")
        size = int(size_text)
        start = pos + 60
        if start + size > len(data):
            raise UserError(f"malformed {what} at byte offset {pos}: the member runs past the end")
        body = data[start : start + size]
        pos = start + size
        if raw_name in ("/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"):
            continue
        if raw_name == "//":
            long_names = body
            continue
        name = raw_name
        if raw_name.startswith("#1/"):  # BSD: the name leads the data
            length = int(raw_name[3:]) if _DECIMAL.fullmatch(raw_name[3:]) else -1
            if not 0 <= length <= size:
                raise UserError(f"malformed {what} at byte offset {pos - size - 60}: bad member name {raw_name!r}")
            name = body[:length].rstrip(b"\0").decode("utf-8", "replace")
            body = body[length:]
            start += length
        elif raw_name.startswith("/") and _DECIMAL.fullmatch(raw_name[1:]):  # GNU long name
            offset = int(raw_name[1:])
            end = long_names.find(b"\n", offset)
            name = long_names[offset : end if end >= 0 else None].decode("utf-8", "replace").rstrip("/")
        else:
            name = raw_name.rstrip("/")
        members.append(ArchiveMember(name, start, body))
    return members


def read_module(path: Path) -> WasmModule:
    return parse_module(_read(path), what=f"module {path}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None


# ---------------------------------------------------------------------------
# Demangling: enough of Rust's two schemes to match paths by text


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


# ---------------------------------------------------------------------------
# Classification


def is_std_socket_code(name: str) -> bool:
    """True for std's socket functions (std::net::{tcp,udp}, std::sys::*::net, name lookup)."""
    return bool(_STD_SOCKET_CODE.search(name))


def is_socket_crate_code(name: str) -> bool:
    return bool(_SOCKET_CRATE_CODE.search(name))


def socket_imports(imports: Iterable[Import]) -> tuple[SocketImport, ...]:
    """The module's imports from WASI's module that are socket functions, classified."""
    found: dict[str, SocketImport] = {}
    for imp in imports:
        if imp.module != WASI_MODULE or imp.kind != "func":
            continue
        if imp.name not in WASMEDGE_SOCKET_EXTENSIONS and imp.name not in STANDARD_SOCKET_FUNCTIONS:
            continue
        params = len(imp.signature.params) if imp.signature else None
        extension = imp.name in WASMEDGE_SOCKET_EXTENSIONS or (
            imp.name == "sock_accept" and params == WASMEDGE_ACCEPT_PARAMS
        )
        found[imp.name] = SocketImport(imp.name, params, extension)
    return tuple(sorted(found.values(), key=lambda s: (not s.wasmedge_extension, s.name)))


def _networking_names(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(std socket functions, socket crate functions) among symbol names, demangled."""
    std_net: set[str] = set()
    crate: set[str] = set()
    for raw in names:
        if not raw:
            continue
        name = demangle(raw)
        if is_std_socket_code(name):
            std_net.add(name)
        if is_socket_crate_code(name):
            crate.add(name)
    return tuple(sorted(std_net, key=_std_name_rank)), tuple(sorted(crate))


def _std_name_rank(name: str) -> tuple[int, str]:
    if _STD_CONSTRUCTORS.search(name):
        return (0, name)
    if _STD_ENTRY_POINTS.search(name):
        return (1, name)
    return (2, name)


def decide(
    socket_imports: Sequence[SocketImport], std_net: Sequence[str], socket_crate: Sequence[str]
) -> Verdict:
    """ported: WasmEdge's socket functions (or the socket crate) are linked in;
    not ported: none of them, but std's socket code (or std's socket imports) is there."""
    if any(s.wasmedge_extension for s in socket_imports) or socket_crate:
        return Verdict.PORTED
    if std_net or socket_imports:
        return Verdict.NOT_PORTED
    return Verdict.NO_NETWORKING


def inspect_module(module: WasmModule, path: str = "") -> Inspection:
    sockets = socket_imports(module.imports)
    std_net, crate = _networking_names(module.function_names.values())
    verdict = decide(sockets, std_net, crate)
    notes: list[str] = []
    has_names = bool(module.function_names)
    if not has_names:
        notes.append(
            "the module has no function names (a stripped build): std's socket code "
            "can only be found by name in builds that keep symbols"
        )
    if std_net:
        notes.append(
            "names come from the module's name section; the linker merges functions with "
            "identical code, so one std name may stand for several (e.g. WASI's 'unsupported' stubs)"
        )
    if verdict is Verdict.PORTED and std_net:
        entry = [n for n in std_net if _STD_ENTRY_POINTS.search(n)]
        notes.append(
            "std's socket code is still linked in beside the port"
            + (f" (e.g. {entry[0]})" if entry else f" (e.g. {std_net[0]})")
            + ": that path still fails on WASI at run time"
        )
    return Inspection(
        path=path,
        kind="module",
        verdict=verdict,
        imports=module.imports,
        exports=module.exports,
        socket_imports=sockets,
        std_net_functions=std_net,
        socket_crate_functions=crate,
        has_names=has_names,
        notes=tuple(notes),
    )


def _object_summary(name: str, obj: WasmModule) -> ObjectSummary:
    symbol_names = [s.name for s in obj.symbols if s.kind == "function"]
    symbol_names.extend(obj.function_names.values())
    std_net, crate = _networking_names(symbol_names)
    sockets = socket_imports(obj.imports)
    return ObjectSummary(name, tuple(s.name for s in sockets), crate, std_net)


def inspect_archive(data: bytes, path: str = "") -> Inspection:
    """Inspect an rlib (or any `ar` archive of wasm objects)."""
    what = f"archive {path}" if path else "archive"
    objects: list[ObjectSummary] = []
    all_imports: dict[tuple[str, str], Import] = {}
    notes: list[str] = []
    wasm_objects = bitcode_objects = 0
    for member in parse_archive(data, what=what):
        if member.data.startswith(BITCODE_MAGIC):
            bitcode_objects += 1
            continue
        if member.name.endswith(".rmeta") or not member.data.startswith(WASM_MAGIC):
            continue
        obj = parse_module(member.data, base=member.offset, what=f"object {member.name} in {what}")
        if not obj.is_object:
            continue  # rustc wraps lib.rmeta in a wasm file on some versions
        wasm_objects += 1
        for imp in obj.imports:
            if imp.module != "env":  # `env` holds plain undefined symbols, not host imports
                all_imports.setdefault((imp.module, imp.name), imp)
        summary = _object_summary(member.name, obj)
        if summary.socket_imports or summary.socket_crate_functions or summary.std_net_functions:
            objects.append(summary)
    if bitcode_objects and not wasm_objects:
        notes.append(
            "the archive holds LLVM bitcode only (built with LTO): build without LTO to inspect it"
        )
    elif not wasm_objects:
        raise UserError(
            f"{path or 'the archive'} holds no wasm objects",
            hint="inspect an .rlib built for a wasm32 target (cargo build --target wasm32-wasip1)",
        )
    notes.append(
        "an rlib holds only code compiled in this crate: generic functions appear "
        "where the crate itself instantiates them"
    )
    imports = tuple(sorted(all_imports.values(), key=lambda i: (i.module, i.name)))
    sockets = socket_imports(imports)
    std_net, crate = _networking_names(
        n for o in objects for n in (*o.std_net_functions, *o.socket_crate_functions)
    )
    verdict = decide(sockets, std_net, crate)
    if verdict is Verdict.PORTED and std_net:
        notes.insert(0, f"std's socket code is still referenced beside the port (e.g. {std_net[0]})")
    return Inspection(
        path=path,
        kind="rlib",
        verdict=verdict,
        imports=imports,
        exports=(),
        socket_imports=sockets,
        std_net_functions=std_net,
        socket_crate_functions=crate,
        has_names=True,
        objects=tuple(objects),
        notes=tuple(notes),
    )


def inspect_file(path: Path) -> Inspection:
    """Inspect a `.wasm` module or an `.rlib`, chosen by the file's magic bytes."""
    data = _read(path)
    if data.startswith(WASM_MAGIC):
        module = parse_module(data, what=f"module {path}")
        if module.is_object:
            return _inspect_single_object(path, module)
        return inspect_module(module, str(path))
    if data.startswith(AR_MAGIC):
        return inspect_archive(data, str(path))
    if len(data) < 4:
        raise UserError(f"{path} is not a wasm module: it is only {len(data)} bytes long")
    raise UserError(
        f"{path} is neither a wasm module nor an rlib (it starts with bytes {data[:4].hex()})"
    )


def _inspect_single_object(path: Path, obj: WasmModule) -> Inspection:
    summary = _object_summary(path.name, obj)
    sockets = socket_imports(obj.imports)
    verdict = decide(sockets, summary.std_net_functions, summary.socket_crate_functions)
    return Inspection(
        path=str(path),
        kind="object",
        verdict=verdict,
        imports=tuple(i for i in obj.imports if i.module != "env"),
        exports=obj.exports,
        socket_imports=sockets,
        std_net_functions=summary.std_net_functions,
        socket_crate_functions=summary.socket_crate_functions,
        has_names=True,
        objects=(summary,),
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summarise(inspection: Inspection) -> str:
    """One sentence: the verdict and its main evidence."""
    what = {"module": "module", "rlib": "library", "object": "object"}.get(inspection.kind, "file")
    if inspection.verdict is Verdict.PORTED:
        if inspection.wasmedge_imports:
            evidence = "imports WasmEdge's socket functions (" + ", ".join(inspection.wasmedge_imports) + ")"
        else:
            evidence = f"calls {SOCKET_CRATE} ({plural(len(inspection.socket_crate_functions), 'function')})"
        return f"ported: the {what} {evidence}."
    if inspection.verdict is Verdict.NOT_PORTED:
        named = inspection.std_net_entry_points or inspection.std_net_functions
        if named:
            shown = ", ".join(named[:3]) + (", ..." if len(named) > 3 else "")
            return f"not ported: the {what} uses std's sockets, which fail on WASI at run time ({shown})."
        return (
            f"not ported: the {what} imports only standard WASI socket functions "
            f"({', '.join(inspection.standard_socket_imports)}), none of WasmEdge's."
        )
    return f"no networking: the {what} neither imports socket functions nor contains std's socket code."


# ---------------------------------------------------------------------------
# JSON


JSON_SCHEMA_VERSION = 1


def inspection_to_json(inspection: Inspection) -> dict:
    """The stable JSON form of an inspection (`wasiport inspect --format json`).

    Keys: schema (int), file, kind (module|rlib|object), verdict (ported|not ported|
    no networking), summary, socket_imports [{name, params, wasmedge_extension}],
    wasmedge_imports [names], std_net_functions [demangled names, entry points first],
    std_net_entry_points, socket_crate_functions, has_names, imports {module: [{name,
    kind, params, results}]}, exports [{name, kind}], objects [{name, socket_imports,
    socket_crate_functions, std_net_functions}], notes [sentences].
    """
    return {
        "schema": JSON_SCHEMA_VERSION,
        "file": inspection.path,
        "kind": inspection.kind,
        "verdict": inspection.verdict.value,
        "summary": inspection.summary,
        "socket_imports": [
            {"name": s.name, "params": s.params, "wasmedge_extension": s.wasmedge_extension}
            for s in inspection.socket_imports
        ],
        "wasmedge_imports": list(inspection.wasmedge_imports),
        "std_net_functions": list(inspection.std_net_functions),
        "std_net_entry_points": list(inspection.std_net_entry_points),
        "socket_crate_functions": list(inspection.socket_crate_functions),
        "has_names": inspection.has_names,
        "imports": {
            module: [
                {
                    "name": imp.name,
                    "kind": imp.kind,
                    "params": list(imp.signature.params) if imp.signature else None,
                    "results": list(imp.signature.results) if imp.signature else None,
                }
                for imp in imports
            ]
            for module, imports in inspection.imports_by_module().items()
        },
        "exports": [{"name": e.name, "kind": e.kind} for e in inspection.exports],
        "objects": [
            {
                "name": o.name,
                "socket_imports": list(o.socket_imports),
                "socket_crate_functions": list(o.socket_crate_functions),
                "std_net_functions": list(o.std_net_functions),
            }
            for o in inspection.objects
        ],
        "notes": list(inspection.notes),
    }
