"""The scan cache: findings per file, kept between runs, so a warm run parses nothing.

Speed machinery, apart from the rules it serves: the cache stores what `scan_file`
(wasiport.check.filescan) and the walk (wasiport.check.files) answered, keyed by the
files' sizes and mtimes and the directories' mtimes, and gives it back unchanged.
"""
from __future__ import annotations

import os
import pickle
import stat as statmod
import zlib
from array import array
from collections.abc import Sequence
from pathlib import Path

from wasiport import __version__
from wasiport.check.executor import forked_map
from wasiport.check.files import FileTask, has_package_table, resolved
from wasiport.engine.rules import RulePack
from wasiport.model import FileReport, Profile
from wasiport.paths import cache_dir, short_key
from wasiport.rust.cfg import WASI, Target
from wasiport.rust.modtree import declaring_candidates, declaring_item


def _cwd_prefix() -> str:
    """The working directory with a trailing slash. A warm run stats every file and directory
    of the tree: below the working directory it stats them by their path relative to it,
    the same file with fewer components for the kernel to walk (a fifth less time)."""
    try:
        return os.getcwd().rstrip("/") + "/"
    except OSError:  # the working directory was removed: absolute paths only
        return "\0"


class StoredTasks(Sequence):
    """The last run's file list, as the cache stores it (columns), read back as FileTasks
    one at a time: a warm run on an unchanged tree needs only the few with findings."""

    def __init__(self, paths: list[str], displays: list[str], roots: bytes, crate_ids: "array", crates: list[str]) -> None:
        self.paths, self.displays, self.roots, self.crate_ids, self.crates = paths, displays, roots, crate_ids, crates
        self.stale: list[int] | None = None  # positions of the files changed since, once known

    def __len__(self) -> int:
        return len(self.displays)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return FileTask(self.paths[index], self.displays[index], self.roots[index] == 1, self.crates[self.crate_ids[index]])



PARALLEL_STAT_FILES = 4096  # from this many files on, a warm run's stat calls are shared out


class StatCheck:
    """One share of a warm run's stat calls: (whether its directories are unchanged,
    positions of its files whose size or mtime changed, or that have no entry).
    Share i of n takes every n-th directory and file from the i-th: the directories
    of one crate sit together, and a slow part of the disk is split too."""

    def __init__(self, directories: list[str], directory_mtimes: "array", paths: list[str], sizes: "array", mtimes: "array") -> None:
        self.directories, self.directory_mtimes = directories, directory_mtimes
        self.paths, self.sizes, self.mtimes = paths, sizes, mtimes

    def __call__(self, share: tuple[int, int]) -> tuple[bool, list[int]]:
        first, step = share
        cwd = _cwd_prefix()  # paths below the working directory are stat'ed relative to it: less to walk
        skip, stat = len(cwd), os.stat
        try:
            for position in range(first, len(self.directories), step):
                directory = self.directories[position]
                if stat(directory[skip:] if directory.startswith(cwd) else directory).st_mtime_ns != self.directory_mtimes[position]:
                    return False, []
        except OSError:
            return False, []
        stale = []
        sizes, mtimes = self.sizes, self.mtimes
        for position in range(first, len(self.paths), step):
            path = self.paths[position]
            try:
                st = stat(path[skip:] if path.startswith(cwd) else path)
            except OSError:
                stale.append(position)
                continue
            if st.st_size != sizes[position] or st.st_mtime_ns != mtimes[position] or sizes[position] < 0:
                stale.append(position)
        return True, stale



def _columns_of(tasks: list[FileTask]) -> tuple:
    """FileTasks as the cache stores them: (displays joined by NUL, is-root flags, crate
    number per task, the crates). Their paths are the first entries of the cache."""
    numbers: dict[str, int] = {}
    crate_ids = array("I", [numbers.setdefault(t.crate, len(numbers)) for t in tasks])
    return "\0".join(t.display for t in tasks), bytes(t.is_crate_root for t in tasks), crate_ids.tobytes(), list(numbers)


def _split_joined(text: str) -> list[str]:
    return text.split("\0") if text else []


class ScanCache:
    """Findings per file, keyed by size and mtime, per scanned root, rule pack and target.

    A re-run on an unchanged tree reads one pickle and stats the files. The pickle
    holds columns rather than an object per file (a fifth of the time to load): the
    files' paths joined in one string, their sizes and mtimes as arrays (size -1: no
    entry), the reports of the few files with findings or problems by position; the
    last walk's file list, whose paths are the first entries, in the same order;
    plus the Cargo.toml checks and the answers about which `mod` item declares a
    file, so that a warm run parses nothing."""

    FORMAT = 4  # the layout of the pickle (3: macro-declared modules in the declaring answers; 4: spaced [ package ]); another is ignored

    def __init__(self, path: Path, fingerprint: tuple) -> None:
        self.path = path
        self.fingerprint = fingerprint  # the scanned roots, rule pack, profile and features
        # The stored entries (see the class docstring) and this run's, by path.
        self._paths: list[str] = []
        self._sizes, self._mtimes = array("q"), array("q")
        self._reports: dict[int, FileReport] = {}
        self._positions: dict[str, int] | None = None  # path -> position, built when a lookup needs it
        self._updates: dict[str, tuple] = {}  # path -> (size, mtime) or (size, mtime, report)
        # Cargo.toml path -> (size, mtime, has [package], display, findings, problems)
        self.manifests: dict[str, tuple] = {}
        # file -> (stats of its candidate declaring files, _declaring_item answer)
        self.declaring: dict[str, tuple] = {}
        # The last walk: (key, directories joined, their mtimes, task columns, manifests,
        # manifest displays) as stored, or (key, directories, tasks, manifests, displays) from this run.
        self.discovery: tuple | None = None
        self._discovery_is_new = False
        self._manifest_stats: dict[str, tuple[int, int] | None] = {}
        self.dirty = False
        try:
            with path.open("rb") as handle:
                stored = pickle.load(handle)
            if stored.get("format") == self.FORMAT and stored.get("fingerprint") == fingerprint:
                self._paths = _split_joined(stored["paths"])
                self._sizes.frombytes(stored["sizes"])
                self._mtimes.frombytes(stored["mtimes"])
                self._reports = stored["reports"]
                self.manifests = stored["manifests"]
                self.declaring = stored["declaring"]
                self.discovery = stored["discovery"]
                if not len(self._paths) == len(self._sizes) == len(self._mtimes):
                    raise ValueError("columns of different lengths")
        except (OSError, pickle.PickleError, EOFError, AttributeError, KeyError, TypeError, ValueError, ImportError, IndexError):
            self._paths, self._sizes, self._mtimes, self._reports = [], array("q"), array("q"), {}
            self.manifests, self.declaring, self.discovery = {}, {}, None

    @classmethod
    def for_run(cls, paths: list[Path], pack: RulePack, profile: Profile | None = None, target: Target | None = None) -> "ScanCache":
        roots = "\0".join(sorted(str(resolved(p)) for p in paths))
        # Findings depend on the profile (gate, API version) and the enabled features too.
        extra = repr(profile) + repr(sorted(target.features) if target is not None and target.features is not None else None)
        return cls(cache_dir() / f"scan-{short_key(roots)}.pickle", (roots, _pack_fingerprint(pack, extra)))

    @staticmethod
    def _stat(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def _entry(self, path: str) -> tuple | None:
        """(size, mtime) or (size, mtime, report) stored for `path`, or None."""
        entry = self._updates.get(path)
        if entry is not None:
            return entry
        if self._positions is None:
            self._positions = {p: i for i, p in enumerate(self._paths)}
        position = self._positions.get(path)
        if position is None or self._sizes[position] < 0:
            return None
        report = self._reports.get(position)
        return (self._sizes[position], self._mtimes[position]) if report is None else (self._sizes[position], self._mtimes[position], report)

    def split(self, tasks) -> tuple[list[FileTask], list[tuple[FileTask, FileReport]]]:
        """The files of a batch to scan (new, changed or unreadable), and (task, stored
        report) of the unchanged ones that had findings or problems (the others need
        nothing more). One call per batch: a warm run does this for every file of the tree."""
        if isinstance(tasks, StoredTasks) and tasks.paths is self._paths and not self._updates and tasks.stale is not None:
            return self._split_stored(tasks)
        if not self._paths:  # nothing stored (a cold run; this run's entries are of files already met)
            return list(tasks), []
        stat, todo, kept = os.stat, [], []
        cwd = _cwd_prefix()
        skip = len(cwd)
        for task in tasks:
            path = task.path
            entry = self._entry(path)
            if entry is not None:
                try:
                    st = stat(path[skip:] if path.startswith(cwd) else path)
                except OSError:
                    todo.append(task)
                    continue
                if entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
                    if len(entry) == 2:
                        continue
                    if entry[2].path == task.display:
                        kept.append((task, entry[2]))
                        continue
            todo.append(task)
        return todo, kept

    def _split_stored(self, tasks: StoredTasks) -> tuple[list[FileTask], list[tuple[FileTask, FileReport]]]:
        """`split` of the stored file list, whose changed files `discovered` found: the
        others are unchanged, and only those with a stored report need anything."""
        todo, kept = [], []
        stale = set(tasks.stale)
        for index in sorted(stale.union(p for p in self._reports if p < len(tasks))):
            task = tasks[index]
            report = None if index in stale else self._reports[index]
            if report is not None and report.path == task.display:
                kept.append((task, report))
            else:
                todo.append(task)
        return todo, kept

    def put(self, task: FileTask, report: FileReport | None, stat: tuple[int, int] | None = None) -> None:
        """Store a file's report (None: it had nothing)."""
        stat = stat or self._stat(task.path)
        if stat is not None:
            empty = report is None or (not report.findings and not report.problems)
            self._updates[task.path] = (stat[0], stat[1]) if empty else (stat[0], stat[1], report)
            self.dirty = True

    def _manifest_stat(self, key: str) -> tuple[int, int] | None:
        """A Cargo.toml's (size, mtime), stat'ed once per run (is_package, then cached_manifest)."""
        if key not in self._manifest_stats:
            self._manifest_stats[key] = self._stat(key)
        return self._manifest_stats[key]

    def is_package(self, manifest: str) -> bool:
        key = manifest
        stat = self._manifest_stat(key)
        entry = self.manifests.get(key)
        if entry is not None and stat is not None and (entry[0], entry[1]) == stat:
            return entry[2]
        with open(manifest, "rb") as handle:
            has_package = has_package_table(handle.read())
        if stat is not None:
            self.manifests[key] = (stat[0], stat[1], has_package, None, None, None)
            self.dirty = True
        return has_package

    def cached_manifest(self, manifest: str, display: str) -> tuple[list, list] | None:
        """The stored (findings, problems) of an unchanged Cargo.toml, or None."""
        key = manifest
        stat = self._manifest_stat(key)
        entry = self.manifests.get(key)
        if entry is not None and stat is not None and (entry[0], entry[1]) == stat and entry[3] == display:
            return list(entry[4]), list(entry[5])
        return None

    def put_manifest(self, manifest: str, display: str, findings: list, problems: list) -> None:
        key = manifest
        stat = self._manifest_stat(key)  # from before it was read: a later change shows next run
        if stat is not None:
            self.manifests[key] = (stat[0], stat[1], True, display, tuple(findings), tuple(problems))
            self.dirty = True

    def discovered(self, key: tuple, jobs: int = 1):
        """The stored walk for `key` (tasks, manifests, manifest displays) if none of the
        directories it listed changed; the tasks know which of their files changed too
        (`stale`). On a large tree the stat calls for both, most of a warm run, are shared
        out to `jobs` processes (see forked_map)."""
        if self.discovery is None or self._discovery_is_new or self.discovery[0] != key:
            return None
        _key, directories, mtimes, (displays, roots, crate_ids, crates), manifests, manifest_displays = self.discovery
        numbers = array("I")
        numbers.frombytes(crate_ids)
        tasks = StoredTasks(self._paths, _split_joined(displays), roots, numbers, crates)
        if len(tasks) > len(self._paths) or len(roots) != len(tasks) or len(numbers) != len(tasks):
            return None
        stored_mtimes = array("q")
        stored_mtimes.frombytes(mtimes)
        check = StatCheck(_split_joined(directories), stored_mtimes, self._paths[: len(tasks)], self._sizes, self._mtimes)
        parts = jobs if len(tasks) >= PARALLEL_STAT_FILES else 1
        outcomes = forked_map(check, [(i, parts) for i in range(parts)])
        if not all(unchanged for unchanged, _stale in outcomes):
            return None
        tasks.stale = [position for _unchanged, stale in outcomes for position in stale]
        return tasks, list(manifests), manifest_displays

    def put_discovered(self, key: tuple, directories: list, found) -> None:
        tasks, manifests, displays = found
        self.discovery = (key, directories, tasks, manifests, displays)
        self._discovery_is_new = True
        self.dirty = True

    def put_declaring(self, key: str, stats: tuple, declared) -> None:
        if self.declaring.get(key) != (stats, declared):
            self.declaring[key] = (stats, declared)
            self.dirty = True

    def _stored_discovery(self) -> tuple[list[str], tuple | None]:
        """The walk's task paths (to come first among the entries) and the walk as stored."""
        if self.discovery is None:
            return [], None
        if not self._discovery_is_new:
            count = len(self.discovery[3][1])  # the is-root flags: a byte per task
            return self._paths[:count], self.discovery
        key, directories, tasks, manifests, displays = self.discovery
        mtimes = array("q", [m for _d, m in directories]).tobytes()
        stored = (key, "\0".join(d for d, _m in directories), mtimes, _columns_of(tasks), manifests, displays)
        return [t.path for t in tasks], stored

    def _entry_columns(self, first: list[str]) -> tuple[list[str], "array", "array", dict[int, FileReport]]:
        """Every entry, stored and new, as columns; the paths of `first` lead, in order."""
        merged: dict[str, tuple | None] = dict.fromkeys(first)
        for position, path in enumerate(self._paths):
            if path not in self._updates:
                report = self._reports.get(position)
                merged[path] = (self._sizes[position], self._mtimes[position], report)
        merged.update(self._updates)
        sizes, mtimes, reports = array("q"), array("q"), {}
        for position, entry in enumerate(merged.values()):
            if entry is None or entry[0] < 0:
                sizes.append(-1)
                mtimes.append(0)
                continue
            sizes.append(entry[0])
            mtimes.append(entry[1])
            if len(entry) == 3 and entry[2] is not None:
                reports[position] = entry[2]
        return list(merged), sizes, mtimes, reports

    def save(self) -> None:
        if not self.dirty:
            return
        first, discovery = self._stored_discovery()
        paths, sizes, mtimes, reports = self._entry_columns(first)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                stored = {
                    "format": self.FORMAT,
                    "fingerprint": self.fingerprint,
                    "paths": "\0".join(paths),
                    "sizes": sizes.tobytes(),
                    "mtimes": mtimes.tobytes(),
                    "reports": reports,
                    "manifests": self.manifests,
                    "declaring": self.declaring,
                    "discovery": discovery,
                }
                pickle.dump(stored, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time



def _pack_fingerprint(pack: RulePack, extra: str = "") -> tuple:
    """What the findings depend on besides the sources: wasiport's version, the profile
    (`extra`) and every rule file's name, size and CRC."""
    files = []
    for path in sorted(pack.directory.rglob("*.toml")):
        data = path.read_bytes()
        files.append((path.name, len(data), zlib.crc32(data)))
    return (__version__, extra, tuple(files))


class DeclaringLookup:
    """`declaring_item`, answered from the workers' results, the cache, or by parsing."""

    def __init__(self, target: Target, computed: dict, cache: "ScanCache | None") -> None:
        self.target = target
        self.computed = computed
        self.cache = cache
        self.stats: dict = {}  # candidate file -> its (size, mtime), once per run

    def __call__(self, path: Path, target: Target = WASI) -> tuple[Path, bool] | None:
        key = str(path)
        if key in self.computed:
            declared = self.computed[key]
        else:
            stats = _candidate_stats(path, self.stats) if self.cache is not None else None
            if self.cache is not None:
                hit = self.cache.declaring.get(key)
                if hit is not None and hit[0] == stats:
                    return hit[1]
            declared = declaring_item(path, self.target)
            if self.cache is not None:
                self.cache.put_declaring(key, stats, declared)
            return declared
        if self.cache is not None:
            self.cache.put_declaring(key, _candidate_stats(path, self.stats), declared)
        return declared


def _candidate_stats(path: Path, seen: dict | None = None) -> tuple:
    """What `declaring_item(path)` depends on: which candidates are files, and their size
    and mtime. `seen`: the answers for candidates already stat'ed in this run (the files
    of one directory share their candidates)."""
    stats = []
    for key in declaring_candidates(path):
        if seen is not None and key in seen:
            stats.append(seen[key])
            continue
        try:
            st = os.stat(key)
        except (OSError, ValueError):
            found = None
        else:
            found = (st.st_size, st.st_mtime_ns) if statmod.S_ISREG(st.st_mode) else None
        stats.append(found)
        if seen is not None:
            seen[key] = found
    return tuple(stats)
