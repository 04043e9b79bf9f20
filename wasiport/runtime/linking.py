"""Which host functions a module gets, chosen from its own import types.

WasmEdge registers two variants for a few socket functions and links the one
whose type matches the guest's import (`lib/executor/instantiate/import.cpp`):
`sock_accept` (2 or 3 parameters), `sock_recv_from` (7 or 8) and
`sock_getlocaladdr`/`sock_getpeeraddr` (4 or 3). `plan_host_functions` does
the same from the module's import section. The descriptor functions that
socket descriptors need are shadowed only when the module imports a socket
function at all; otherwise the module runs on wasmtime's WASI unchanged
(apart from `proc_exit`, shadowed so that exit codes of 126 and above work as
on WasmEdge).
"""
from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from wasiport.errors import UserError

WASI_MODULE = "wasi_snapshot_preview1"

# import name -> {parameter count: implementing method}
SOCKET_FUNCTIONS: dict[str, dict[int, str]] = {
    "sock_open": {3: "sock_open"},
    "sock_bind": {3: "sock_bind"},
    "sock_listen": {2: "sock_listen"},
    "sock_accept": {2: "sock_accept_v1", 3: "sock_accept_v2"},
    "sock_connect": {3: "sock_connect"},
    "sock_recv": {6: "sock_recv"},
    "sock_recv_from": {7: "sock_recv_from_v1", 8: "sock_recv_from_v2"},
    "sock_send": {5: "sock_send"},
    "sock_send_to": {7: "sock_send_to"},
    "sock_shutdown": {2: "sock_shutdown"},
    "sock_getlocaladdr": {4: "sock_getlocaladdr_v1", 3: "sock_getlocaladdr_v2"},
    "sock_getpeeraddr": {4: "sock_getpeeraddr_v1", 3: "sock_getpeeraddr_v2"},
    "sock_getsockopt": {5: "sock_getsockopt"},
    "sock_setsockopt": {5: "sock_setsockopt"},
    "sock_getaddrinfo": {8: "sock_getaddrinfo"},
}
DESCRIPTOR_FUNCTIONS: dict[str, dict[int, str]] = {
    "fd_close": {1: "fd_close"},
    "fd_fdstat_get": {2: "fd_fdstat_get"},
    "fd_fdstat_set_flags": {2: "fd_fdstat_set_flags"},
    "poll_oneoff": {4: "poll_oneoff"},
}


@dataclass(frozen=True)
class ImportSignature:
    module: str
    name: str
    params: tuple[str, ...]  # wasm value types: "i32", "i64", ...
    results: tuple[str, ...]


@dataclass(frozen=True)
class HostFunction:
    name: str
    nparams: int
    has_result: bool
    owner: str  # "sockets" (SocketHost) or "descriptors" (DescriptorOps)
    method: str


def import_signatures(module: wasmtime.Module) -> list[ImportSignature]:
    """The module's function imports as plain data."""
    found = []
    for item in module.imports:
        functype = item.type
        if isinstance(functype, wasmtime.FuncType):
            found.append(
                ImportSignature(
                    item.module,
                    item.name or "",
                    tuple(str(t) for t in functype.params),
                    tuple(str(t) for t in functype.results),
                )
            )
    return found


def plan_host_functions(imports: list[ImportSignature]) -> list[HostFunction]:
    """The Python host functions to define for these imports (raises UserError on a bad type)."""
    wasi = [imp for imp in imports if imp.module == WASI_MODULE]
    uses_sockets = any(imp.name in SOCKET_FUNCTIONS for imp in wasi)
    planned = []
    for imp in wasi:
        if imp.name in SOCKET_FUNCTIONS:
            planned.append(_pick("sockets", imp, SOCKET_FUNCTIONS[imp.name]))
        elif imp.name in DESCRIPTOR_FUNCTIONS and uses_sockets:
            planned.append(_pick("descriptors", imp, DESCRIPTOR_FUNCTIONS[imp.name]))
        elif imp.name == "proc_exit" and imp.params == ("i32",) and imp.results == ():
            planned.append(HostFunction("proc_exit", 1, False, "descriptors", "proc_exit"))
    return planned


def _pick(owner: str, imp: ImportSignature, variants: dict[int, str]) -> HostFunction:
    count = len(imp.params)
    if count not in variants or any(t != "i32" for t in imp.params) or imp.results != ("i32",):
        expected = " or ".join(f"({' '.join(['i32'] * n)}) -> i32" for n in sorted(variants))
        got = f"({' '.join(imp.params)}) -> ({' '.join(imp.results)})"
        raise UserError(
            f"the module imports {WASI_MODULE}.{imp.name} as {got}, but WasmEdge defines {expected}",
            hint="rebuild the module against a wasmedge_wasi_socket release that matches your WasmEdge",
        )
    return HostFunction(imp.name, count, True, owner, variants[count])
