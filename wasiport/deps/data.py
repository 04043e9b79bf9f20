"""The dependency knowledge as data: which crates cannot work on WasmEdge as they are
(`rules/<profile>/deps-known.toml`) and their substitutes (`substitutions.toml`).

Apart from `deps` (the dependency graph and its substitution plan), so that `check`'s
look at a Cargo.toml reads the data without importing the graph and manifest-editing
machinery; records are NamedTuples for the same reason (see `wasiport.model`).
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from wasiport.cargo.versions import Version, VersionReq
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.paths import rules_dir
from wasiport.tomlread import read_toml

GENERATIONS = ("rename", "patch")
SUBSTITUTIONS_FILE = "substitutions.toml"
KNOWN_FILE = "deps-known.toml"


class Remedy(str, enum.Enum):
    COMPATIBLE = "compatible"  # nothing to do
    PORTABLE = "portable"  # std::net code that wasiport's rules port
    SUBSTITUTE = "substitute"  # replaced by a WasmEdge crate or fork
    MANUAL = "manual"  # wasiport cannot fix it

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------


class KnownIncompatibility(NamedTuple):
    crate: str
    reason: str
    remedy: Remedy  # SUBSTITUTE or MANUAL
    when_features: tuple[str, ...] = ()
    versions: VersionReq | None = None
    help: str = ""

    def applies(self, version: str, features: Iterable[str]) -> bool:
        if self.versions is not None:
            try:
                if not self.versions.matches(version):
                    return False
            except ValueError:
                pass
        return not self.when_features or bool(set(self.when_features) & set(features))


class SubstituteEntry(NamedTuple):
    crate: str  # the upstream crate it replaces
    generation: str  # "rename" or "patch"
    version: str  # rename: requirement to write; patch: the fork's version
    tracks: Version
    package: str = ""  # rename: the substitute's package name
    git: str = ""
    branch: str = ""
    features: frozenset[str] | None = None  # None: unknown, not checked
    replaces: tuple[str, ...] = ()
    requires: tuple[tuple[str, str], ...] = ()
    cfgs: tuple[str, ...] = ()
    source: str = ""
    notes: str = ""

    @property
    def label(self) -> str:
        if self.generation == "rename":
            return f"{self.package} {self.version}"
        return f"{self.git} (branch {self.branch}, {self.crate} {self.version})"

    def requirement_on(self, crate: str) -> str | None:
        return dict(self.requires).get(crate)


class DepsData(NamedTuple):
    known: Mapping[str, KnownIncompatibility]
    substitutions: Mapping[tuple[str, str], tuple[SubstituteEntry, ...]]  # (generation, crate)
    no_std: frozenset[str] = frozenset()  # never scanned: they cannot use std::net

    def entries(self, generation: str, crate: str) -> tuple[SubstituteEntry, ...]:
        return self.substitutions.get((generation, crate), ())

    def substitute_packages(self) -> dict[str, SubstituteEntry]:
        """Package names of the renamed crates (tokio_wasi, ...): already a substitute."""
        return {e.package: e for entries in self.substitutions.values() for e in entries if e.package}

    def fork_urls(self) -> dict[str, SubstituteEntry]:
        return {normalise_git(e.git): e for entries in self.substitutions.values() for e in entries if e.git}


class _DataError(UserError):
    pass


def _data_error(path: Path, key: str, problem: str) -> _DataError:
    return _DataError(f"{path}: `{key}`: {problem}", hint="fix the data file; its header says what each key means")


def _read_table(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: data file is missing")
    return read_toml(path)


def _string(path: Path, key: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _data_error(path, key, "expected a non-empty string")
    return value


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _data_error(path, key, "expected an array of strings")
    return tuple(value)


def _unknown_keys(path: Path, key: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _data_error(path, f"{key}.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _parse_no_std(path: Path, document: Mapping[str, Any]) -> frozenset[str]:
    table = document.get("no_std", {})
    if not isinstance(table, dict):
        raise _data_error(path, "no_std", "expected a table with `crates`")
    _unknown_keys(path, "no_std", table, {"crates"})
    return frozenset(_strings(path, "no_std.crates", table.get("crates")))


def _parse_known(path: Path, document: Mapping[str, Any]) -> dict[str, KnownIncompatibility]:
    _unknown_keys(path, "", document, {"crate", "no_std"})
    crates = document.get("crate", {})
    if not isinstance(crates, dict):
        raise _data_error(path, "crate", "expected tables [crate.<name>]")
    known = {}
    for name, entry in crates.items():
        key = f"crate.{name}"
        if not isinstance(entry, dict):
            raise _data_error(path, key, "expected a table")
        _unknown_keys(path, key, entry, {"reason", "remedy", "when_features", "versions", "help"})
        remedy = _string(path, f"{key}.remedy", entry.get("remedy"))
        if remedy not in ("substitute", "manual"):
            raise _data_error(path, f"{key}.remedy", 'expected "substitute" or "manual"')
        versions = None
        if "versions" in entry:
            try:
                versions = VersionReq.parse(_string(path, f"{key}.versions", entry["versions"]))
            except ValueError as err:
                raise _data_error(path, f"{key}.versions", str(err)) from None
        known[name] = KnownIncompatibility(
            crate=name,
            reason=_string(path, f"{key}.reason", entry.get("reason")),
            remedy=Remedy(remedy),
            when_features=_strings(path, f"{key}.when_features", entry.get("when_features")),
            versions=versions,
            help=_string(path, f"{key}.help", entry.get("help"), required=False),
        )
    return known


_RENAME_KEYS = {"package", "version", "tracks", "features", "replaces", "source", "notes"}
_PATCH_KEYS = {"git", "branch", "version", "tracks", "features", "replaces", "requires", "cfgs", "source", "notes"}


def _parse_entry(path: Path, generation: str, crate: str, index: int, entry: Any) -> SubstituteEntry:
    key = f"{generation}.{crate}[{index}]"
    if not isinstance(entry, dict):
        raise _data_error(path, key, f"expected a table ([[{generation}.{crate}]])")
    _unknown_keys(path, key, entry, _RENAME_KEYS if generation == "rename" else _PATCH_KEYS)
    version = _string(path, f"{key}.version", entry.get("version"))
    try:
        VersionReq.parse(version)
    except ValueError as err:
        raise _data_error(path, f"{key}.version", str(err)) from None
    try:
        tracks = Version.parse(_string(path, f"{key}.tracks", entry.get("tracks")))
    except ValueError as err:
        raise _data_error(path, f"{key}.tracks", str(err)) from None
    requires = entry.get("requires", {})
    if not isinstance(requires, dict) or not all(isinstance(v, str) for v in requires.values()):
        raise _data_error(path, f"{key}.requires", "expected a table of version requirements")
    for other, req in requires.items():
        try:
            VersionReq.parse(req)
        except ValueError as err:
            raise _data_error(path, f"{key}.requires.{other}", str(err)) from None
    features = entry.get("features")
    is_fork = generation == "patch"
    if is_fork:
        try:
            Version.parse(version)
        except ValueError:
            raise _data_error(path, f"{key}.version", "a fork's version must be exact, such as 1.36.0") from None
    return SubstituteEntry(
        crate=crate,
        generation=generation,
        version=version,
        tracks=tracks,
        package="" if is_fork else _string(path, f"{key}.package", entry.get("package")),
        git=_string(path, f"{key}.git", entry.get("git")) if is_fork else "",
        branch=_string(path, f"{key}.branch", entry.get("branch")) if is_fork else "",
        features=None if features is None else frozenset(_strings(path, f"{key}.features", features)),
        replaces=_strings(path, f"{key}.replaces", entry.get("replaces")),
        requires=tuple(sorted(requires.items())),
        cfgs=_strings(path, f"{key}.cfgs", entry.get("cfgs")),
        source=_string(path, f"{key}.source", entry.get("source"), required=False),
        notes=_string(path, f"{key}.notes", entry.get("notes"), required=False),
    )


def _parse_substitutions(path: Path, document: Mapping[str, Any]) -> dict[tuple[str, str], tuple[SubstituteEntry, ...]]:
    _unknown_keys(path, "", document, set(GENERATIONS))
    result = {}
    for generation in GENERATIONS:
        crates = document.get(generation, {})
        if not isinstance(crates, dict):
            raise _data_error(path, generation, f"expected arrays of tables [[{generation}.<crate>]]")
        for crate, entries in crates.items():
            if not isinstance(entries, list) or not entries:
                raise _data_error(path, f"{generation}.{crate}", f"expected [[{generation}.{crate}]] entries")
            result[(generation, crate)] = tuple(
                _parse_entry(path, generation, crate, i, e) for i, e in enumerate(entries)
            )
    return result


def load_deps_data(directory: Path | None = None, profile: Profile | None = None) -> DepsData:
    """Read `deps-known.toml` and `substitutions.toml`; a malformed file -> UserError naming file and key."""
    directory = directory or rules_dir() / (profile or Profile()).name
    known_path, subs_path = directory / KNOWN_FILE, directory / SUBSTITUTIONS_FILE
    known_document = _read_table(known_path)
    known = _parse_known(known_path, known_document)
    substitutions = _parse_substitutions(subs_path, _read_table(subs_path))
    for name, entry in known.items():
        if entry.remedy is Remedy.SUBSTITUTE and not any(crate == name for _, crate in substitutions):
            raise _data_error(
                known_path, f"crate.{name}.remedy", f"says substitute, but {subs_path.name} has no entry for {name}"
            )
    return DepsData(known=known, substitutions=substitutions, no_std=_parse_no_std(known_path, known_document))


def normalise_git(url: str) -> str:
    url = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    url = url.removeprefix("git+")
    return url.removesuffix(".git").lower()
