"""A profile's rule pack and compat data, loaded (and kept in the cache directory) for a run.

Both `check` and `apply` load their rules here. Parsing the rule pack's TOML took a
pre-commit run of one file ~30 ms; the pickled result loads in ~2, so a run that asks
for `use_cache` gets the pickle while no rule file (nor the code that reads them) changed.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Callable

from wasiport import __version__
from wasiport.engine import rules as rules_module
from wasiport.engine.context import CompatData
from wasiport.engine.rules import RulePack, load_pack
from wasiport.errors import UserError
from wasiport.model import PortStatus, Profile
from wasiport.paths import cache_dir, rules_dir, short_key


def load_rules(profile: Profile, *, directory: Path | None = None, compile_queries: bool = False, use_cache: bool = False) -> RulePack:
    directory = directory or rules_dir() / profile.name
    if use_cache and not compile_queries:
        return memoised_on_disk("pack", sorted(directory.glob("*.toml")), lambda: load_pack(directory, compile_queries=False))
    return load_pack(directory, compile_queries=compile_queries)


def load_compat(profile: Profile, directory: Path | None = None, *, use_cache: bool = False) -> CompatData:
    """Port status per compat method, from `rules/<profile>/compat/DEGRADATIONS.toml`."""
    path = (directory or rules_dir() / profile.name) / "compat" / "DEGRADATIONS.toml"
    if not path.is_file():
        return CompatData()
    if use_cache:
        return memoised_on_disk("compat", [path], lambda: _load_compat_file(path))
    return _load_compat_file(path)


def _load_compat_file(path: Path) -> CompatData:
    # Imported here (a measured cost rule, see wasiport/model.py): a run served from the
    # cache never parses TOML, nor loads the reader.
    from wasiport.tomlread import read_toml

    return compat_from_document(read_toml(path), path)


# "unsupported" (the compat module returns an Unsupported error) needs manual work at that site.
_STATUS_WORDS = {"kept": PortStatus.KEPT, "degraded": PortStatus.DEGRADED, "unsupported": PortStatus.MANUAL, "manual": PortStatus.MANUAL}


def compat_from_document(document: dict, path: Path) -> CompatData:
    """`[method."TcpStream::set_nodelay"] "0.5" = { status = "degraded", note = "..." }`."""
    entries: dict[str, dict[str, tuple[PortStatus, str]]] = {}
    methods = document.get("method", {})
    if not isinstance(methods, dict):
        raise UserError(f"{path}: `method` must be a table of std methods")
    for method, per_api in methods.items():
        if not isinstance(per_api, dict):
            raise UserError(f"{path}: [method.\"{method}\"] must be a table of API versions")
        for api, entry in per_api.items():
            if not isinstance(entry, dict) or "status" not in entry:
                raise UserError(f"{path}: [method.\"{method}\"] \"{api}\" needs a `status`")
            status = _STATUS_WORDS.get(str(entry["status"]))
            if status is None:
                raise UserError(f"{path}: [method.\"{method}\"] \"{api}\": unknown status {entry['status']!r}")
            note = str(entry.get("note", ""))
            if entry["status"] == "unsupported":
                note = f"unsupported on WasmEdge: {note}" if note else "unsupported on WasmEdge"
            entries.setdefault(str(api), {})[method] = (status, note)
    return CompatData(entries)


def memoised_on_disk(kind: str, files: list[Path], build: Callable[[], object]):
    """`build()`, kept in the cache directory and keyed by the files' names, sizes and mtimes.
    Errors are not cached (build raises, nothing is written)."""
    # The code that builds the value is part of the key too (a checkout changes it).
    files = [*files, Path(__file__), Path(rules_module.__file__)]
    try:
        stats = [(str(p), st.st_size, st.st_mtime_ns) for p in files for st in (os.stat(p),)]
    except OSError:
        return build()
    key = repr((__version__, kind, stats))
    path = cache_dir() / f"{kind}-{short_key(key)}.pickle"
    try:
        with open(path, "rb") as handle:
            stored_key, value = pickle.load(handle)
        if stored_key == key:
            return value
    except Exception:  # missing, unreadable or another key's: build it
        pass
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            pickle.dump((key, value), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return value
