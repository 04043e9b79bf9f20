"""The wasm binary format, read: a module's types, imports, exports, function names and
linking symbols, and the relocatable objects inside a wasm32 `.rlib` (an `ar` archive).

Plain Python over the format (LEB128 integers, length-prefixed sections); nothing is
executed. Malformed input raises `UserError` naming the byte offset.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.errors import UserError

WASM_MAGIC = b"\0asm"
AR_MAGIC = b"!<arch>\n"
BITCODE_MAGIC = b"BC\xc0\xde"


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
    return parse_module(read_bytes(path), what=f"module {path}")


def read_bytes(path: Path) -> bytes:
    """A file's bytes; one that cannot be read -> UserError."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
