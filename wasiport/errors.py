"""Errors the CLI turns into one clear sentence on stderr and exit code 2.

Stages raise `UserError` for bad input or a missing tool; anything else that
escapes is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input, a missing tool, or a refused operation: not a bug in wasiport."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")
