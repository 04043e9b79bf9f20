"""Defining Python host functions in a wasmtime `Linker`, fast.

wasmtime-py's `Linker.define_func` converts every argument and result through
`Val` objects: about 20 µs per call, more than a loopback round trip. The host
functions here use wasmtime's *unchecked* C API instead
(`wasmtime_linker_define_func_unchecked`): the callback gets a pointer to the
raw 16-byte argument slots, reads the i32s through one ctypes array and writes
the errno back into slot 0, about 1 µs in all. wasmtime-py reaches that API
only through its private `_ffi` module, so when a wasmtime-py release lacks
it, `define_host_function` falls back to the public API (slower, same
behaviour).

Host implementations take the i32 arguments as unsigned ints and return the
errno. They stop the guest by raising `GuestTrap` (a trap with a message) or
`GuestExit` (proc_exit); any other exception is a wasiport bug, which traps
the guest too and is kept in `HostFailures.error` for the report.
"""
from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wasmtime

_wasmtime_ffi: Any
try:  # wasmtime-py's private binding of the C API; see the module docstring.
    from wasmtime import _ffi as _wasmtime_ffi

    _RAW_API = all(
        hasattr(_wasmtime_ffi, name)
        for name in (
            "wasmtime_linker_define_func_unchecked",
            "wasmtime_func_unchecked_callback_t",
            "wasmtime_trap_new",
        )
    )
except ImportError:  # pragma: no cover - depends on the installed wasmtime-py
    _wasmtime_ffi = None
    _RAW_API = False

HostImpl = Callable[..., int]
InFront = Callable[[int], tuple[int, int]]  # callback address -> (C function, env); see define_host_function

# (env, caller, args_and_results, count) -> wasm_trap_t* or NULL. Declared with
# plain pointers so that ctypes hands us ints instead of wrapper objects.
_RAW_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
_SLOT_WORDS = 4  # a wasmtime_val_raw_t is 16 bytes; an i32 sits in its first word


class GuestTrap(Exception):
    """Raised by host code to trap the guest with this message."""


class GuestExit(Exception):
    """Raised by proc_exit: the guest asked to exit with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(f"proc_exit({code})")
        self.code = code


@dataclass
class HostFailures:
    """Why host code stopped the guest, for the runner to turn into an outcome."""

    exit_code: int | None = None
    trap_message: str | None = None
    error: BaseException | None = None
    keepalive: list[object] = field(default_factory=list)  # ctypes callbacks must outlive the linker

    def record(self, exc: BaseException) -> str:
        """Remember why the guest stops; return the trap message."""
        if isinstance(exc, GuestExit):
            self.exit_code = exc.code
        elif isinstance(exc, GuestTrap):
            self.trap_message = str(exc)
        else:
            self.error = exc
            self.trap_message = f"wasiport host error: {type(exc).__name__}: {exc}"
        return str(exc) if self.trap_message is None else self.trap_message


def raw_api_available() -> bool:
    return _RAW_API


def define_host_function(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    nparams: int,
    has_result: bool,
    impl: HostImpl,
    failures: HostFailures,
    *,
    fast: bool = True,
    in_front: InFront | None = None,
) -> None:
    """Define `module.name` as (i32 * nparams) -> i32 (or nothing) calling `impl`.

    `in_front`, given the address of the callback that calls `impl`, returns a C function
    and its env to define instead; that function calls the callback for what it does not
    answer itself (hotpath.py). It needs the unchecked API, as the callback does."""
    i32 = wasmtime.ValType.i32()
    functype = wasmtime.FuncType([i32] * nparams, [i32] if has_result else [])
    if not (fast and _RAW_API):
        linker.define_func(module, name, functype, _public_adapter(impl, failures))
        return
    c_callback = _RAW_CALLBACK(_raw_adapter(impl, nparams, has_result, failures))
    failures.keepalive.append(c_callback)  # ctypes callbacks must outlive the linker
    function = ctypes.cast(c_callback, ctypes.c_void_p).value or 0
    env = 0
    if in_front is not None:
        function, env = in_front(function)
    _define_unchecked(linker, module, name, functype, function, env)


def _define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType, function: int, env: int
) -> None:
    assert _wasmtime_ffi is not None
    module_bytes, name_bytes = module.encode(), name.encode()
    no_finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # NULL: nothing to free
    error = _wasmtime_ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        module_bytes,
        len(module_bytes),
        name_bytes,
        len(name_bytes),
        functype.ptr(),
        ctypes.cast(ctypes.c_void_p(function), _wasmtime_ffi.wasmtime_func_unchecked_callback_t),
        ctypes.c_void_p(env or None),
        no_finalizer,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def _new_trap(message: str) -> int:
    """A wasm_trap_t* for wasmtime to raise; wasmtime takes ownership of it."""
    assert _wasmtime_ffi is not None
    data = message.encode("utf-8", "replace")
    trap = _wasmtime_ffi.wasmtime_trap_new(ctypes.create_string_buffer(data), len(data))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


def _raw_adapter(
    impl: HostImpl, nparams: int, has_result: bool, failures: HostFailures
) -> Callable[[int, int, int, int], int]:
    """One explicit callback per arity: indexing is ~3x faster than slicing or unpacking."""
    slots = ctypes.c_uint32 * (_SLOT_WORDS * max(nparams, 1))
    # wasmtime passes the argument slots on its native stack, so the same few
    # addresses come back call after call; reusing the ctypes view of an
    # address (it owns no memory) saves creating one per call.
    views: dict[int, ctypes.Array[ctypes.c_uint32]] = {}

    def view_at(address: int) -> ctypes.Array[ctypes.c_uint32]:
        if len(views) >= 64:
            views.clear()
        view = views[address] = slots.from_address(address)
        return view

    def stop(exc: BaseException) -> int:
        return _new_trap(failures.record(exc))

    if not has_result:  # proc_exit: never returns normally

        def call_void(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                impl(*a[0 : _SLOT_WORDS * nparams : _SLOT_WORDS])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call_void
    if nparams == 1:

        def call1(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call1
    if nparams == 2:

        def call2(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call2
    if nparams == 3:

        def call3(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call3
    if nparams == 4:

        def call4(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8], a[12])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call4
    if nparams == 5:

        def call5(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8], a[12], a[16])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call5
    if nparams == 6:

        def call6(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8], a[12], a[16], a[20])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call6
    if nparams == 7:

        def call7(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8], a[12], a[16], a[20], a[24])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call7
    if nparams == 8:

        def call8(env: int, caller: int, args: int, count: int) -> int:
            a = views.get(args) or view_at(args)
            try:
                a[0] = impl(a[0], a[4], a[8], a[12], a[16], a[20], a[24], a[28])
            except BaseException as exc:
                return stop(exc)
            return 0

        return call8

    # Wider calls (proxy-wasm's proxy_http_call has 10 parameters, gRPC calls 12)
    # are rare: slicing is fast enough for them.
    def call_many(env: int, caller: int, args: int, count: int) -> int:
        a = views.get(args) or view_at(args)
        try:
            a[0] = impl(*a[0 : _SLOT_WORDS * nparams : _SLOT_WORDS])
        except BaseException as exc:
            return stop(exc)
        return 0

    return call_many


def _public_adapter(impl: HostImpl, failures: HostFailures) -> Callable[..., int | None]:
    """The slow path: wasmtime-py converts values; exceptions become traps."""

    def call(*args: int) -> int | None:
        try:
            return impl(*(arg & 0xFFFFFFFF for arg in args))
        except BaseException as exc:
            raise wasmtime.Trap(failures.record(exc)) from None

    return call
