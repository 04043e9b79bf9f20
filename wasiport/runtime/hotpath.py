"""sock_recv, sock_send and poll_oneoff in C, in front of their Python versions.

hotpath.c answers the plain case of the three calls an async server makes
per request and hands every other call to the Python host function unchanged
(its docstring says which). This module compiles it once per machine with the
system's C compiler (`$CC`, else `cc`) into wasiport's cache, loads it with
ctypes, and gives the host one `HotPath` per run: the C functions to define
in front of the Python ones, the socket table they may touch, and the
counters both sides share (`Counters`).

Without a compiler, or with WASIPORT_HOTPATH=0, nothing changes but speed:
the Python host answers every call, as it always could.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from wasiport.runtime import abi

if TYPE_CHECKING:
    import wasmtime

    from wasiport.runtime.sockets import GuestSocket

_log = logging.getLogger("wasiport.runtime")

SOURCE = Path(__file__).with_name("hotpath.c")
# The calls hotpath.c stands in front of: WASI import name -> its C function.
FRONTED = {"sock_recv": "hotpath_sock_recv", "sock_send": "hotpath_sock_send", "poll_oneoff": "hotpath_poll_oneoff"}
_COMPILE_TIMEOUT = 120.0


class Counters(ctypes.Structure):
    """What the Python host and hotpath.c both count (hotpath.c holds a pointer to it)."""

    _fields_ = [
        ("activity", ctypes.c_uint64),  # socket calls that move data or change a connection
        ("polls", ctypes.c_uint64),  # poll_oneoff calls answered
        ("answered", ctypes.c_uint64),  # calls hotpath.c answered itself
    ]


def enabled_by_environment() -> bool:
    return os.environ.get("WASIPORT_HOTPATH", "1") != "0"


@functools.cache
def compiled_library() -> ctypes.CDLL | None:
    """hotpath.c compiled and loaded, or None (logged) when that cannot be done here."""
    try:
        source = SOURCE.read_bytes()
    except OSError as err:
        _log.info("C host calls off: %s", err)
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        _log.info("C host calls off: no C compiler (%s) on PATH", compiler)
        return None
    name = f"hotpath-{zlib.crc32(source):08x}-{os.uname().machine}.so"
    try:
        built = _compiled(source, compiler, _cache_folder() / name)
    except (OSError, subprocess.SubprocessError) as err:
        _log.info("C host calls off: compiling %s failed: %s", SOURCE.name, err)
        return None
    try:
        library = ctypes.CDLL(str(built))
    except OSError as err:
        _log.info("C host calls off: %s", err)
        return None
    _declare(library)
    return library


def _cache_folder() -> Path:
    from wasiport.paths import cache_dir

    folder = cache_dir() / "hotpath"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="wasiport-hotpath-"))
    return folder


def _compiled(source: bytes, compiler: str, target: Path) -> Path:
    """Compile `source` to `target` unless a previous run did (atomic: a second run that
    compiles at the same time replaces the file with an identical one)."""
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="hotpath-", dir=target.parent) as scratch:
        source_file = Path(scratch) / "hotpath.c"
        source_file.write_bytes(source)
        output = Path(scratch) / target.name
        done = subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-o", str(output), str(source_file)],
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
        os.replace(output, target)
    return target


def _declare(library: ctypes.CDLL) -> None:
    p, u32, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    library.hotpath_new.restype = p
    library.hotpath_free.argtypes = [p]
    library.hotpath_bind.restype = p
    library.hotpath_bind.argtypes = [p, p]
    library.hotpath_unbind.argtypes = [p]
    library.hotpath_configure.argtypes = [
        p, p, u32, i32, ctypes.POINTER(ctypes.c_uint16), i32, ctypes.c_uint16, i32, i32, i32, i32,
        i32, i32, i32, u32, u32, ctypes.c_int64, i32,
    ]
    library.hotpath_attach_memory.argtypes = [p, p, p, p, p]
    library.hotpath_detach_memory.argtypes = [p]
    library.hotpath_set_socket.argtypes = [p, u32, ctypes.c_int32, i32]
    library.hotpath_set_socket.restype = i32
    library.hotpath_forget_socket.argtypes = [p, u32]


def load(counters: Counters, *, fd_base: int, wakeup_fd: int, spin_pause: float, masks: dict[str, int]) -> HotPath | None:
    """A HotPath for one run, or None when the C functions are not available here."""
    if not enabled_by_environment():
        return None
    library = compiled_library()
    if library is None:
        return None
    state = library.hotpath_new()
    if not state:
        return None
    table = [abi.errno_from_os(code) if code else 0 for code in range(512)]
    errnos = (ctypes.c_uint16 * len(table))(*table)
    library.hotpath_configure(
        state, ctypes.addressof(counters), fd_base, wakeup_fd, errnos, len(table), abi.errno_from_os(None),
        masks["read"], masks["write"], masks["trouble"], abi.EVENTRWFLAGS_HANGUP,
        abi.EVENTTYPE_CLOCK, abi.EVENTTYPE_FD_READ, abi.EVENTTYPE_FD_WRITE,
        abi.CLOCK_REALTIME, abi.CLOCK_MONOTONIC, int(spin_pause * 1e9), masks["nosignal"],
    )  # fmt: skip
    return HotPath(library, state, counters)


class HotPath:
    """hotpath.c's state for one run."""

    def __init__(self, library: ctypes.CDLL, state: int, counters: Counters) -> None:
        self._library = library
        self._state: int | None = state
        self._bindings: list[int] = []
        self._memory: object = None  # the wasmtime.Memory whose struct hotpath.c reads
        self.counters = counters  # kept alive here: hotpath.c writes to it

    def in_front_of(self, name: str) -> Callable[[int], tuple[int, int]] | None:
        """For a fronted WASI function: (Python callback address) -> (C function, its env)."""
        symbol = FRONTED.get(name)
        if symbol is None:
            return None
        function = ctypes.cast(getattr(self._library, symbol), ctypes.c_void_p).value or 0

        def bind(fallback: int) -> tuple[int, int]:
            env = self._library.hotpath_bind(self._state, fallback)
            if not env:
                raise MemoryError("hotpath_bind")
            self._bindings.append(env)
            return function, env

        return bind

    def attach_memory(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        from wasmtime import _ffi as ffi  # the C API wasmtime-py binds; see hostcall.py

        self._memory = memory
        context = ctypes.cast(store._context(), ctypes.c_void_p).value
        self._library.hotpath_attach_memory(
            self._state,
            context,
            ctypes.addressof(memory._memory),
            ctypes.cast(ffi.dll.wasmtime_memory_data, ctypes.c_void_p).value,
            ctypes.cast(ffi.dll.wasmtime_memory_data_size, ctypes.c_void_p).value,
        )

    def set_socket(self, fd: int, sock: GuestSocket) -> None:
        if self._state is None:
            return
        sock.told_empty = sock.ahead_end == sock.ahead_pos
        stream_without_read_ahead = sock.stream and sock.told_empty
        self._library.hotpath_set_socket(self._state, fd, sock.fileno(), int(stream_without_read_ahead))

    def forget_socket(self, fd: int) -> None:
        if self._state is not None:
            self._library.hotpath_forget_socket(self._state, fd)

    def release(self) -> None:
        """Free the C state once the guest can no longer call in."""
        if self._state is None:
            return
        self._library.hotpath_detach_memory(self._state)
        for env in self._bindings:
            self._library.hotpath_unbind(env)
        self._bindings.clear()
        self._library.hotpath_free(self._state)
        self._state = None
        self._memory = None
