"""Where wasiport's own data lives, installed or in a checkout."""
from __future__ import annotations

import os
import zlib
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


def short_key(key: str) -> str:
    """A short name for a cache file holding `key`, which the file stores in full and
    compares on load (so two keys sharing a name only evict each other). A CRC rather
    than a cryptographic hash: `hashlib` loads OpenSSL, ~8 ms of a pre-commit run."""
    data = key.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
