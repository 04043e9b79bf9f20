"""The cyclic garbage collector's pace during a scan: speed machinery, apart from the scan.

Both processes of a scan allocate many objects and keep them with hardly any cycles,
so the collector's default pace (a collection every 700 allocations) rescans them over
and over for nothing.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def scanning_pace() -> Iterator[None]:
    """The scanning process allocates an object or more per file of the tree and keeps
    them (tasks, cache entries): a slower pace while it scans, its own again after."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def worker_pace() -> None:
    """A worker allocates millions of short-lived objects (query matches, tuples) and keeps
    few. What it inherited from the parent is frozen: never scanned (nor its pages copied)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
