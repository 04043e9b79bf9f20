"""Declarations of a whole crate (struct fields, enum variants, fn return types).

Loaded only when a receiver's type is not declared in the file being scanned,
e.g. `config.addr.bind()` where `ConfigListenAddr` lives in another module.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from wasiport.rust import syntax
from wasiport.rust.names import Resolver
from wasiport.rust.source import MAX_FILE_BYTES, read_rust
from wasiport.rust.types import Declarations, TypeOracle

_DECLARATION_WORDS = (b"struct ", b"enum ", b"fn ")


def crate_root_of(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / "Cargo.toml").is_file():
            return parent
    return None


@lru_cache(maxsize=4)  # a worker scans a crate at a time (scan._chunks): a few is plenty
def crate_declarations(crate_root: Path) -> "LazyDeclarations":
    return LazyDeclarations(crate_root)


def _crate_files(crate_root: Path):
    """(path, bytes) of the crate's src/ files that can declare anything, in os.walk order."""
    source_dir = crate_root / "src"
    if not source_dir.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(source_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.endswith(".rs"):
                continue
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) > MAX_FILE_BYTES or not any(w in data for w in _DECLARATION_WORDS):
                continue
            yield path, data


def _file_declarations(data: bytes) -> Declarations:
    root = read_rust(data).tree.root_node
    collect, index = syntax.scopes_and_declarations(root)  # one walk for both
    oracle = TypeOracle(root, data, Resolver(root, data, nodes=collect), nodes=index)
    return oracle.declarations()


# What a declaration of `name` must spell: its keyword, blanks or block comments, the
# name (perhaps raw, perhaps not ASCII). One pass per keyword over a crate's files finds
# every such name (and some look-alikes in comments or words ending in `fn`: harmless,
# a file that does not really declare the name adds nothing to its lookups). Narrower
# than the name alone, which pulled in every file saying `new` or `file`.
_DECLARED = {
    kind: re.compile(kind.encode() + rb"(?:\s|/\*.*?\*/)+((?:r#)?[\w\x80-\xff]+)", re.DOTALL) for kind in ("struct", "enum", "fn")
}


class _LookupsByName:
    """The TypeOracle's four lookups, each answered from `declarations_for` the name
    looked up (what LazyDeclarations and Overlay narrow differently)."""

    def declarations_for(self, kind: str, name: str, owner: str | None = None) -> Declarations:
        raise NotImplementedError

    def struct_fields(self, name: str):
        return self.declarations_for("struct", name).struct_fields(name)

    def enum_variants(self, name: str):
        return self.declarations_for("enum", name).enum_variants(name)

    def has_free_fn(self, name: str) -> bool:
        return self.declarations_for("free-fn", name).has_free_fn(name)

    def function_return(self, owner: str | None, name: str):
        if owner is None:
            return self.declarations_for("any-fn", name).function_return(None, name)
        return self.declarations_for("fn", name, owner).function_return(owner, name)


def _owners_declaring(declarations: Declarations, name: str) -> int:
    return sum(1 for functions in declarations.functions.values() if name in functions)


# The fn lookups whose answer a partial merge can settle (see declarations_for).
_SETTLED = {
    "any-fn": lambda merged, name: _owners_declaring(merged, name) >= 2,
    "free-fn": lambda merged, name: merged.has_free_fn(name),
}
_DECLARED_KIND = {"any-fn": "fn", "free-fn": "fn"}  # which text index lists their files


class LazyDeclarations(_LookupsByName):
    """The merged declarations of a crate's files, worked out name by name.

    Building the whole index parsed every file of the crate (seconds for a large
    one) although a lookup needs one name. A declaration of `name` spells it after
    its keyword (`struct Name`, `fn name`), so only files where that text occurs
    can take part; and merging is order-independent (equal declarations keep their
    value, differing ones make the name ambiguous), so the answer for a name is the
    one the whole merged index gives. `cleaned()` still builds everything."""

    def __init__(self, crate_root: Path) -> None:
        # The files' paths and the names each may declare; not their bytes, which a large
        # crate has megabytes of: a file is read again when a lookup needs it parsed.
        self.files: list[Path] = []
        self._declared: dict[str, dict[str, list[int]]] = {kind: {} for kind in _DECLARED}  # kind -> name -> files
        for index, (path, data) in enumerate(_crate_files(crate_root)):
            self.files.append(path)
            for kind, pattern in _DECLARED.items():
                names = self._declared[kind]
                for found in set(pattern.findall(data)):
                    names.setdefault(found.decode("utf-8", "replace"), []).append(index)
        self._per_file: dict[int, Declarations] = {}
        self._by_key: dict[tuple[str, str, str | None], Declarations] = {}
        self._full: Declarations | None = None

    def _read(self, index: int) -> bytes:
        try:
            return self.files[index].read_bytes()
        except OSError:
            return b""  # gone since the crate was indexed: it declares nothing now

    def _declarations(self, index: int) -> Declarations:
        if index not in self._per_file:
            self._per_file[index] = _file_declarations(self._read(index))
        return self._per_file[index]

    def declarations_for(self, kind: str, name: str, owner: str | None = None) -> Declarations:
        """The merge of every file that can declare `name` as a `kind` (struct, enum, fn;
        for a method, in an impl of `owner`): what any lookup of that name needs. Cleaned.

        Two fn lookups can stop early, which spares parsing most files declaring a
        common name (`new`, `clone`): "any-fn" (the return of `name` whatever its owner)
        once two owners declare it, as its answer is then None whatever the other files
        hold; "free-fn" (is there a free fn `name`) once one is found. Merging only adds
        owners and names, so a partial merge gives these two answers as the whole one."""
        if self._full is not None:
            return self._full
        if "\ufffd" in name or (owner is not None and "\ufffd" in owner):
            return self.cleaned()  # could match a name decoded from invalid UTF-8: take everything
        key = (kind, name, owner)
        if key not in self._by_key:
            owner_text = owner.encode() if owner is not None else b""
            settled = _SETTLED.get(kind)
            merged = Declarations()
            for index in self._declared[_DECLARED_KIND.get(kind, kind)].get(name, []):
                if not owner_text or index in self._per_file or owner_text in self._read(index):
                    merged.merge(self._declarations(index))
                    if settled is not None and settled(merged, name):
                        break
            self._by_key[key] = merged.cleaned()
        return self._by_key[key]

    def cleaned(self) -> Declarations:
        if self._full is None:
            merged = Declarations()
            for index in range(len(self.files)):
                merged.merge(self._declarations(index))
            self._full = merged.cleaned()
        return self._full.cleaned()  # a copy: callers merge into it


class Overlay(_LookupsByName):
    """A crate's declarations with one file's own on top: what a macro body inside that
    file sees. Answers each lookup as `base.cleaned()` merged with `top` would, from only
    the part of the base that can declare the name looked up."""

    def __init__(self, base, top: Declarations) -> None:
        self.base = base  # LazyDeclarations, Declarations or another Overlay
        self.top = top

    def declarations_for(self, kind: str, name: str, owner: str | None = None) -> Declarations:
        merged = self.base.declarations_for(kind, name, owner).cleaned()
        merged.merge(self.top)
        return merged

    def cleaned(self) -> Declarations:
        merged = self.base.cleaned()
        merged.merge(self.top)
        return merged.cleaned()


def provider_for(path: Path):
    """A zero-argument callable giving the crate's declarations (or None outside a crate)."""

    def load() -> Declarations | None:
        root = crate_root_of(path.resolve())
        return crate_declarations(root) if root is not None else None

    return load
