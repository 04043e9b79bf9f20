"""Read wasm modules and wasm32 rlibs: imports, exports, function names, and a verdict.

A clean wasm32-wasi build proves nothing about networking: std's `std::net`
compiles for WASI and fails at run time. What a module links to does prove it:
a port imports WasmEdge's socket host functions (`wasi_snapshot_preview1.sock_open`,
`sock_connect`, ...), while an unported module still carries std's socket code
(visible by name in the `name` section of builds that keep symbol names).

The binary format is read by `wasiport.wasm.binary`, names are demangled by
`wasiport.wasm.demangle`; this module classifies what they say.

An `.rlib` for a wasm32 target is an `ar` archive of relocatable wasm objects
(plus `lib.rmeta`). Their `linking` section lists the symbols each object
defines and references, so a library port with no binary can still be checked:
does the crate's own code go through `wasmedge_wasi_socket` or through `std::net`?
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.errors import UserError
from wasiport.wasm.binary import (
    AR_MAGIC,
    BITCODE_MAGIC,
    WASM_MAGIC,
    Export,
    Import,
    WasmModule,
    parse_archive,
    parse_module,
    read_bytes,
)
from wasiport.wasm.demangle import demangle
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
    data = read_bytes(path)
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
