"""Crash points: where a test may kill wasiport to prove that the next run recovers.

`WASIPORT_CRASH_AT=<point>` makes the process SIGKILL itself when it reaches that
point, as a power cut or `kill -9` would, with no chance to clean up. Points, in the
order `apply` passes them: locked, prepared (marker and backups written), written
(new files beside the old), replaced-one, commit-object, branch-moved, committed,
manifest (the consumer's Cargo.toml written), before-finish. Unset, this costs one
dictionary lookup per point.
"""
from __future__ import annotations

import os
import signal

CRASH_POINTS = (
    "locked",
    "prepared",
    "written",
    "replaced-one",
    "commit-object",
    "branch-moved",
    "committed",
    "manifest",
    "before-finish",
)


def crash_point(point: str) -> None:
    """Die here, at once and uncleanly, when $WASIPORT_CRASH_AT names POINT."""
    if os.environ.get("WASIPORT_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
