"""Declarations of a whole crate (struct fields, enum variants, fn return types).

Loaded only when a receiver's type is not declared in the file being scanned,
e.g. `config.addr.bind()` where `ConfigListenAddr` lives in another module.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from wasiport.rust.names import Resolver
from wasiport.rust.source import MAX_FILE_BYTES, parse_bytes
from wasiport.rust.types import Declarations, TypeOracle

_DECLARATION_WORDS = (b"struct ", b"enum ", b"fn ")


def crate_root_of(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / "Cargo.toml").is_file():
            return parent
    return None


@lru_cache(maxsize=64)
def crate_declarations(crate_root: Path) -> Declarations:
    merged = Declarations()
    source_dir = crate_root / "src"
    if not source_dir.is_dir():
        return merged
    for dirpath, dirnames, filenames in os.walk(source_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.endswith(".rs"):
                continue
            try:
                data = (Path(dirpath) / name).read_bytes()
            except OSError:
                continue
            if len(data) > MAX_FILE_BYTES or not any(w in data for w in _DECLARATION_WORDS):
                continue
            root = parse_bytes(data).root_node
            oracle = TypeOracle(root, data, Resolver(root, data))
            merged.merge(oracle.declarations())
    return merged.cleaned()


def provider_for(path: Path):
    """A zero-argument callable giving the crate's declarations (or None outside a crate)."""

    def load() -> Declarations | None:
        root = crate_root_of(path.resolve())
        return crate_declarations(root) if root is not None else None

    return load
