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


@lru_cache(maxsize=8)  # a worker scans one crate at a time (scan._chunks); each holds its files' bytes
def crate_declarations(crate_root: Path) -> "LazyDeclarations":
    return LazyDeclarations(crate_root)


def _crate_files(crate_root: Path) -> list[bytes]:
    """The crate's src/ files that can declare anything, in os.walk order."""
    found: list[bytes] = []
    source_dir = crate_root / "src"
    if not source_dir.is_dir():
        return found
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
            found.append(data)
    return found


def _file_declarations(data: bytes) -> Declarations:
    root = parse_bytes(data).root_node
    oracle = TypeOracle(root, data, Resolver(root, data))
    return oracle.declarations()


class LazyDeclarations:
    """The merged declarations of a crate's files, worked out name by name.

    Building the whole index parsed every file of the crate (seconds for a large
    one) although a lookup needs one name. A declaration of `name` spells it, so
    only files whose bytes contain it can take part; and merging is
    order-independent (equal declarations keep their value, differing ones make
    the name ambiguous), so the answer for a name is the one the whole merged
    index gives. `cleaned()` still builds everything."""

    def __init__(self, crate_root: Path) -> None:
        self.files = _crate_files(crate_root)
        self._per_file: dict[int, Declarations] = {}
        self._by_name: dict[str, Declarations] = {}
        self._full: Declarations | None = None

    def _declarations(self, index: int) -> Declarations:
        if index not in self._per_file:
            self._per_file[index] = _file_declarations(self.files[index])
        return self._per_file[index]

    def _merged(self, name: str) -> Declarations:
        """The merge of every file that mentions `name` (enough for lookups of `name`)."""
        if self._full is not None:
            return self._full
        if "\ufffd" in name:  # could match a name decoded from invalid UTF-8: take everything
            return self.cleaned()
        if name not in self._by_name:
            needle = name.encode()
            merged = Declarations()
            for index, data in enumerate(self.files):
                if needle in data:
                    merged.merge(self._declarations(index))
            self._by_name[name] = merged.cleaned()
        return self._by_name[name]

    def cleaned(self) -> Declarations:
        if self._full is None:
            merged = Declarations()
            for index in range(len(self.files)):
                merged.merge(self._declarations(index))
            self._full = merged.cleaned()
        return self._full.cleaned()  # a copy: callers merge into it

    def struct_fields(self, name: str):
        return self._merged(name).struct_fields(name)

    def enum_variants(self, name: str):
        return self._merged(name).enum_variants(name)

    def has_free_fn(self, name: str) -> bool:
        return self._merged(name).has_free_fn(name)

    def function_return(self, owner: str | None, name: str):
        return self._merged(name).function_return(owner, name)


def provider_for(path: Path):
    """A zero-argument callable giving the crate's declarations (or None outside a crate)."""

    def load() -> Declarations | None:
        root = crate_root_of(path.resolve())
        return crate_declarations(root) if root is not None else None

    return load
