"""Applying byte-range edits: deterministic, overlap-checked, byte-exact elsewhere."""
from __future__ import annotations

from typing import Iterable

from wasiport.model import Edit


class OverlappingEdits(ValueError):
    def __init__(self, first: Edit, second: Edit) -> None:
        super().__init__(
            f"{first.path}: edits overlap: bytes {first.start}-{first.end} and {second.start}-{second.end}"
        )
        self.first = first
        self.second = second


def normalize(edits: Iterable[Edit]) -> list[Edit]:
    """Sorted, with exact duplicates dropped (two findings may ask for the same import).

    Insertions at the same offset keep the order of their replacement text so the
    result does not depend on the order findings were produced in."""
    unique = sorted(set(edits), key=lambda e: (e.path, e.start, e.end, e.replacement))
    previous: Edit | None = None
    for edit in unique:
        if previous is not None and previous.path == edit.path:
            both_insertions = previous.is_insertion and edit.is_insertion and previous.start == edit.start
            if not both_insertions and edit.start < previous.end:
                raise OverlappingEdits(previous, edit)
            if edit.start == previous.start and not edit.is_insertion and previous.is_insertion:
                pass  # an insertion right before a replacement is fine
        previous = edit
    return unique


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply the edits of one file; bytes outside the edited ranges are untouched."""
    ordered = normalize(edits)
    out = bytearray()
    cursor = 0
    for edit in ordered:
        if edit.start < cursor:
            raise OverlappingEdits(edit, edit)
        out += data[cursor : edit.start]
        out += edit.replacement.encode("utf-8")
        cursor = edit.end
    out += data[cursor:]
    return bytes(out)


def by_path(edits: Iterable[Edit]) -> dict[str, list[Edit]]:
    grouped: dict[str, list[Edit]] = {}
    for edit in edits:
        grouped.setdefault(edit.path, []).append(edit)
    return grouped
