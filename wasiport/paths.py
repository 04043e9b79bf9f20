"""Where wasiport's own data lives, installed or in a checkout."""
from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """wasiport's caches (scan results, probe crates, wasmtime's compiled modules):
    $WASIPORT_CACHE_DIR, else $XDG_CACHE_HOME/wasiport, else ~/.cache/wasiport."""
    explicit = os.environ.get("WASIPORT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasiport"


def rules_dir() -> Path:
    """The bundled rule packs: `wasiport/_rules` in a wheel, `rules/` in a checkout."""
    installed = _PACKAGE / "_rules"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "rules"
