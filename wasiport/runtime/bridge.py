"""Reaching wasmtime's own WASI functions from Python host code.

The socket host shadows `fd_close`, `fd_fdstat_get`, `fd_fdstat_set_flags` and
`poll_oneoff`, because socket descriptors live in Python, not in wasmtime's fd
table. For every other descriptor those calls must behave exactly as wasmtime's
do. Calling wasmtime's functions directly from Python does not work: each of
them looks up the *calling instance's* `memory` export and fails with "missing
required memory export" when called from the host. So a tiny bridge module,
instantiated in the same store (hence the same WASI context and fd table),
imports the built-in functions, exports its own memory and re-exports them;
Python calls the bridge and copies the few bytes between the bridge's memory
and the guest's.
"""
from __future__ import annotations

import wasmtime

from wasiport.runtime import abi

_BRIDGE_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $fd_fdstat_set_flags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "fd_close") (param i32) (result i32) (call $fd_close (local.get 0)))
  (func (export "fd_fdstat_get") (param i32 i32) (result i32)
    (call $fd_fdstat_get (local.get 0) (local.get 1)))
  (func (export "fd_fdstat_set_flags") (param i32 i32) (result i32)
    (call $fd_fdstat_set_flags (local.get 0) (local.get 1)))
  (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
    (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "clock_time_get") (param i32 i64 i32) (result i32)
    (call $clock_time_get (local.get 0) (local.get 1) (local.get 2)))
)
"""
_PAGE = 65536


class WasiBridge:
    """wasmtime's built-in WASI functions for descriptors the socket host does not own."""

    def __init__(self, engine: wasmtime.Engine, store: wasmtime.Store) -> None:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, wasmtime.Module(engine, _BRIDGE_WAT))
        exports = instance.exports(store)
        self._store = store
        self._memory: wasmtime.Memory = exports["memory"]  # type: ignore[assignment]
        self._fd_close: wasmtime.Func = exports["fd_close"]  # type: ignore[assignment]
        self._fdstat_get: wasmtime.Func = exports["fd_fdstat_get"]  # type: ignore[assignment]
        self._set_flags: wasmtime.Func = exports["fd_fdstat_set_flags"]  # type: ignore[assignment]
        self._poll: wasmtime.Func = exports["poll_oneoff"]  # type: ignore[assignment]
        self._clock: wasmtime.Func = exports["clock_time_get"]  # type: ignore[assignment]

    def fd_close(self, fd: int) -> int:
        return self._fd_close(self._store, fd)

    def fdstat(self, fd: int) -> tuple[int, bytes]:
        """(errno, the 24 fdstat bytes wasmtime wrote)."""
        errno = self._fdstat_get(self._store, fd, 0)
        return errno, bytes(self._memory.read(self._store, 0, abi.FDSTAT.size))

    def exists(self, fd: int) -> bool:
        return self.fdstat(fd)[0] != abi.Errno.BADF

    def set_flags(self, fd: int, flags: int) -> int:
        return self._set_flags(self._store, fd, flags)

    def poll(self, subscriptions: bytes, count: int) -> tuple[int, bytes]:
        """Run wasmtime's poll_oneoff on `count` subscriptions; (errno, the events written)."""
        events_at = len(subscriptions)
        nevents_at = events_at + count * abi.EVENT.size
        self._ensure(nevents_at + 4)
        self._memory.write(self._store, subscriptions, 0)
        errno = self._poll(self._store, 0, events_at, count, nevents_at)
        nevents = abi.U32.unpack(self._memory.read(self._store, nevents_at, nevents_at + 4))[0]
        nevents = min(nevents, count)
        events = self._memory.read(self._store, events_at, events_at + nevents * abi.EVENT.size)
        return errno, bytes(events)

    def monotonic_now(self) -> int:
        """The guest's CLOCK_MONOTONIC in ns (wasmtime's clock, not Python's)."""
        self._clock(self._store, abi.CLOCK_MONOTONIC, 1, 0)
        return abi.U64.unpack(self._memory.read(self._store, 0, 8))[0]

    def _ensure(self, size: int) -> None:
        have = self._memory.data_len(self._store)
        if size > have:
            self._memory.grow(self._store, (size - have + _PAGE - 1) // _PAGE)
