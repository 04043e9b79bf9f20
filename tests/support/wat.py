"""WAT snippets that fill poll_oneoff subscriptions (48 bytes each) in a guest's memory."""
from __future__ import annotations


def fd_subscription(at: int, userdata: int, tag: int, fd: str) -> str:
    """An FD_READ (tag 1) or FD_WRITE (tag 2) subscription on the descriptor `fd` (a WAT expression)."""
    return (
        f"(i64.store (i32.const {at}) (i64.const {userdata})) (i32.store8 (i32.const {at + 8}) (i32.const {tag}))"
        f" (i32.store (i32.const {at + 16}) {fd})"
    )


def clock_subscription(at: int, userdata: int, timeout_ns: int) -> str:
    """A relative clock subscription on the monotonic clock."""
    return (
        f"(i64.store (i32.const {at}) (i64.const {userdata})) (i32.store8 (i32.const {at + 8}) (i32.const 0))"
        f" (i32.store (i32.const {at + 16}) (i32.const 1)) (i64.store (i32.const {at + 24}) (i64.const {timeout_ns}))"
    )
