"""The one TOML reader: plain values, or one sentence that says where the file is wrong.

Every TOML file wasiport reads (Cargo.toml, Cargo.lock, .cargo/config.toml, recipes, the
rule pack's data) goes through here, so a syntax error reads the same wherever it is
found: `path:line:col: invalid TOML: reason`. tomli is the stdlib's reader compiled
(a dependency: `check` parses every Cargo.toml of a tree) and reports the position as
numbers; this module imports nothing else of wasiport's but `errors`, so the check
path can use it without loading any Cargo code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli

from wasiport.errors import UserError

TOMLDecodeError = tomli.TOMLDecodeError


def read_toml(path: Path, *, hint: str = "") -> dict[str, Any]:
    """Parse the TOML file at `path`; a missing, unreadable or malformed file -> UserError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", hint=hint) from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it: {err.strerror or err}", hint=hint) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})", hint=hint) from None
    return parse_toml(text, path_for_errors=str(path), hint=hint)


def parse_toml(text: str, *, path_for_errors: str, hint: str = "") -> dict[str, Any]:
    """Parse TOML text read from `path_for_errors`; malformed text -> UserError naming line and column."""
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as err:
        raise UserError(invalid_toml_message(path_for_errors, err), hint=hint) from None


def invalid_toml_message(path: str, err: tomli.TOMLDecodeError) -> str:
    """`path:line:col: invalid TOML: reason`, the one wording of a TOML syntax error."""
    at_end = err.pos >= len(err.doc)
    reason = err.msg + (" at the end of the file" if at_end else "")
    return f"{path}:{err.lineno}:{err.colno}: invalid TOML: {reason}"
