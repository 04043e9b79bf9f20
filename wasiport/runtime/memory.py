"""The guest's linear memory as a Python buffer, without copies.

`view` is a writable memoryview over the memory's bytes (ctypes over
`Memory.data_ptr`), so `socket.recv_into(view[p:p+n])` writes straight into
the guest and `struct.unpack_from(view, p)` reads without copying. The engine
is configured with `memory_may_move = False`, so the base address never
changes; only the size grows. Memory never shrinks, so a cached size that
covers an access is always right, and the size is re-read only when an
access seems out of bounds (`covers`).
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime


class GuestMemory:
    __slots__ = ("_memory", "_store", "size", "view")

    def __init__(self) -> None:
        self.view: memoryview = memoryview(bytearray())
        self.size = 0
        self._memory: wasmtime.Memory | None = None
        self._store: wasmtime.Store | None = None

    def attach(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self._store = store
        self._memory = memory
        self.refresh()

    def detach(self) -> None:
        """Forget the view before the store goes away, so nothing can dangle."""
        self.view = memoryview(bytearray())
        self.size = 0
        self._memory = None
        self._store = None

    def refresh(self) -> None:
        if self._memory is None or self._store is None:
            return
        size = self._memory.data_len(self._store)
        if size == self.size:
            return
        if size == 0:
            self.view = memoryview(bytearray())
        else:
            base = ctypes.addressof(self._memory.data_ptr(self._store).contents)
            self.view = memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")
        self.size = size

    def covers(self, end: int) -> bool:
        """True when bytes [.., end) are inside the memory (re-reading its size once)."""
        if end <= self.size:
            return True
        self.refresh()
        return end <= self.size

    def read(self, offset: int, length: int) -> bytes:
        """A copy of guest bytes; callers have checked `covers(offset + length)`."""
        return bytes(self.view[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.view[offset : offset + len(data)] = data
