"""`check`'s engine room: which files to scan, scanning them (in parallel, cached).

A file is skipped without parsing unless it contains the word `net`: every
way Rust code can reach std's sockets spells it (`std::net`, `net::`,
`use std::{net, ..}`), so the prefilter loses no finding and most files of a
large tree never reach tree-sitter.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from wasiport import __version__
from wasiport.engine.matcher import CompatData, ScanContext, scan_tree
from wasiport.engine.rules import Rule, RulePack, load_pack
from wasiport.errors import UserError
from wasiport.model import FileReport, PortStatus, Profile
from wasiport.paths import rules_dir
from wasiport.rust.source import SourceFile, check_readable, first_syntax_error

PREFILTER = re.compile(rb"\bnet\b")
NON_PORT_DIRS = {"tests", "examples", "benches"}  # crate dirs that never run in the wasm build
PRUNED_DIRS = {"target", ".git", ".hg", ".svn", "node_modules"}
PARALLEL_THRESHOLD = 256


@dataclass(frozen=True)
class FileTask:
    path: str  # absolute
    display: str
    is_crate_root: bool


@dataclass
class ScanResult:
    reports: list[FileReport] = field(default_factory=list)
    files_seen: int = 0
    files_parsed: int = 0
    from_cache: int = 0

    @property
    def findings(self):
        return [f for r in self.reports for f in r.findings]

    @property
    def problems(self):
        return [p for r in self.reports for p in r.problems]


# -- rule pack and compat data ---------------------------------------------------------

def load_rules(profile: Profile, *, directory: Path | None = None, compile_queries: bool = False) -> RulePack:
    return load_pack(directory or rules_dir() / profile.name, compile_queries=compile_queries)


def load_compat(profile: Profile, directory: Path | None = None) -> CompatData:
    """Port status per compat method, from `rules/<profile>/compat/DEGRADATIONS.toml`."""
    path = (directory or rules_dir() / profile.name) / "compat" / "DEGRADATIONS.toml"
    if not path.is_file():
        return CompatData()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    return compat_from_document(document, path)


_STATUS_WORDS = {"kept": PortStatus.KEPT, "degraded": PortStatus.DEGRADED, "unsupported": PortStatus.DEGRADED, "manual": PortStatus.MANUAL}


def compat_from_document(document: dict, path: Path) -> CompatData:
    entries: dict[str, dict[str, tuple[PortStatus, str]]] = {}
    for api, methods in _api_tables(document):
        for method, entry in methods.items():
            if not isinstance(entry, dict) or "status" not in entry:
                raise UserError(f"{path}: [{api}.\"{method}\"] needs a `status`")
            status = _STATUS_WORDS.get(str(entry["status"]))
            if status is None:
                raise UserError(f"{path}: [{api}.\"{method}\"]: unknown status {entry['status']!r}")
            note = str(entry.get("note", ""))
            if entry["status"] == "unsupported" and note:
                note = f"unsupported: {note}"
            entries.setdefault(api, {})[method] = (status, note)
    return CompatData(entries)


def _api_tables(document: dict):
    """Accept `[api."0.5"]` / `["0.5"]` layouts: yields (api, {method: entry})."""
    tables = document.get("api", document)
    for api, methods in tables.items():
        if isinstance(methods, dict) and re.fullmatch(r"\d+\.\d+", str(api)):
            yield str(api), methods


# -- discovery ---------------------------------------------------------------------------

def discover(paths: Iterable[Path], *, all_targets: bool = False) -> list[FileTask]:
    """The .rs files to scan under `paths`; explicit files are always scanned."""
    tasks: dict[str, FileTask] = {}
    cwd = Path.cwd()
    for given in paths:
        if not given.exists():
            raise UserError(f"{given}: no such file or directory")
        if given.is_file():
            if given.suffix != ".rs" and given.name != "Cargo.toml":
                raise UserError(f"{given}: not a Rust source file (.rs) or crate directory")
            if given.suffix == ".rs":
                absolute = given.resolve()
                tasks[str(absolute)] = FileTask(str(absolute), _display(given, cwd), _looks_like_root(absolute))
            continue
        for path in _walk_rust_files(given.resolve(), all_targets):
            display = _display(given / path.relative_to(given.resolve()), cwd)
            tasks.setdefault(str(path), FileTask(str(path), display, _looks_like_root(path)))
    return sorted(tasks.values(), key=lambda t: t.display)


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd).as_posix()
    except ValueError:
        return path.as_posix()


def _walk_rust_files(root: Path, all_targets: bool) -> Iterable[Path]:
    crate_roots: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in PRUNED_DIRS and not d.startswith("."))
        if "Cargo.toml" in filenames:
            crate_roots.append(current)
            if not all_targets:
                dirnames[:] = [d for d in dirnames if d not in NON_PORT_DIRS]
        for name in sorted(filenames):
            if not name.endswith(".rs"):
                continue
            if name == "build.rs" and "Cargo.toml" in filenames and not all_targets:
                continue  # build scripts run on the host, never in the wasm build
            yield current / name


def _looks_like_root(path: Path) -> bool:
    if path.parent.name == "src" and path.name in ("lib.rs", "main.rs"):
        return True
    return path.parent.name == "bin" and path.parent.parent.name == "src"


# -- scanning ------------------------------------------------------------------------------

_WORKER_RULES: list[Rule] = []
_WORKER_CONTEXT: ScanContext | None = None


def _init_worker(rules: list[Rule], context: ScanContext) -> None:
    global _WORKER_RULES, _WORKER_CONTEXT
    _WORKER_RULES = rules
    _WORKER_CONTEXT = context


def scan_file(task: FileTask, rules: list[Rule], context: ScanContext) -> tuple[FileReport, bool]:
    """Scan one file; returns the report and whether it was parsed."""
    report = FileReport(task.display)
    try:
        data = Path(task.path).read_bytes()
    except OSError as err:
        from wasiport.model import Problem

        report.problems.append(Problem("wasiport/unreadable", f"cannot read file: {err.strerror}", task.display))
        return report, False
    problem = check_readable(task.display, data)
    if problem is not None:
        report.problems.append(problem)
        return report, False
    if not PREFILTER.search(data):
        return report, False
    source = SourceFile.from_bytes(task.display, data)
    syntax_problem = first_syntax_error(source)
    if syntax_problem is not None:
        report.problems.append(syntax_problem)
    from wasiport.rust.crateindex import provider_for

    file_context = ScanContext(context.profile, context.compat, is_crate_root=task.is_crate_root, crate_index=provider_for(Path(task.path)))
    report.findings.extend(scan_tree(source, rules, file_context))
    return report, True


def _scan_chunk(tasks: list[FileTask]) -> list[tuple[FileReport, bool]]:
    assert _WORKER_CONTEXT is not None
    return [scan_file(task, _WORKER_RULES, _WORKER_CONTEXT) for task in tasks]


def scan_tasks(
    tasks: list[FileTask],
    rules: list[Rule],
    context: ScanContext,
    *,
    jobs: int | None = None,
    cache: "ScanCache | None" = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    result = ScanResult(files_seen=len(tasks))
    todo: list[FileTask] = []
    reports: dict[str, FileReport] = {}
    for task in tasks:
        cached = cache.get(task) if cache is not None else None
        if cached is not None:
            reports[task.path] = cached
            result.from_cache += 1
        else:
            todo.append(task)
    jobs = jobs or os.cpu_count() or 1
    outcomes: list[tuple[FileTask, FileReport, bool]] = []
    if jobs > 1 and len(todo) >= PARALLEL_THRESHOLD:
        # Files that pass the prefilter are the expensive ones: spread them evenly.
        chunks = [todo[i::jobs * 8] for i in range(jobs * 8)]
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(rules, context)) as pool:
            done = 0
            for chunk, chunk_results in zip(chunks, pool.map(_scan_chunk, chunks)):
                for task, (report, parsed) in zip(chunk, chunk_results):
                    outcomes.append((task, report, parsed))
                done += len(chunk)
                if progress:
                    progress(done, len(todo))
    else:
        for index, task in enumerate(todo):
            report, parsed = scan_file(task, rules, context)
            outcomes.append((task, report, parsed))
            if progress and index % 200 == 0:
                progress(index, len(todo))
    for task, report, parsed in outcomes:
        reports[task.path] = report
        result.files_parsed += int(parsed)
        if cache is not None:
            cache.put(task, report)
    _drop_cfgd_out_modules(tasks, reports)
    result.reports = [reports[t.path] for t in tasks if t.path in reports]
    if cache is not None:
        cache.save()
    return result


def scan_paths(
    paths: list[Path],
    profile: Profile | None = None,
    *,
    all_targets: bool = False,
    jobs: int | None = None,
    use_cache: bool = True,
    rules_directory: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    profile = profile or Profile()
    pack = load_rules(profile, directory=rules_directory)
    context = ScanContext(profile, load_compat(profile, rules_directory))
    tasks = discover(paths, all_targets=all_targets)
    cache = ScanCache.for_run(paths, pack) if use_cache else None
    return scan_tasks(tasks, pack.rules, context, jobs=jobs, cache=cache, progress=progress)


def scan_crate(crate_root: Path, profile: Profile | None = None) -> list:
    """Findings of one crate directory (library and binary targets), for the dependency report."""
    return scan_paths([crate_root], profile, jobs=1, use_cache=False).findings


# -- modules that are cfg'd out as a whole --------------------------------------------------

def _drop_cfgd_out_modules(tasks: list[FileTask], reports: dict[str, FileReport]) -> None:
    """`#[cfg(unix)] mod unix;` removes unix.rs from the wasm build: its findings go."""
    memo: dict[Path, bool] = {}
    for task in tasks:
        report = reports.get(task.path)
        if report is None or not report.findings or task.is_crate_root:
            continue
        if module_cfgd_out(Path(task.path), memo):
            reports[task.path] = FileReport(report.path, [], list(report.problems))


def module_cfgd_out(path: Path, memo: dict[Path, bool], depth: int = 0) -> bool:
    """Whether the `mod` item that declares this file (or an ancestor module) is cfg'd out."""
    if path in memo:
        return memo[path]
    memo[path] = False
    if depth > 16 or _looks_like_root(path):
        return False
    declared = _declaring_item(path)
    if declared is None:
        return False
    parent_file, cfg_false = declared
    result = cfg_false or module_cfgd_out(parent_file, memo, depth + 1)
    memo[path] = result
    return result


def _declaring_item(path: Path) -> tuple[Path, bool] | None:
    from wasiport.rust import syntax
    from wasiport.rust.source import parse_bytes

    if path.name == "mod.rs":
        module, directory = path.parent.name, path.parent.parent
    else:
        module, directory = path.stem, path.parent
    candidates = [directory / "mod.rs", directory / "lib.rs", directory / "main.rs", directory.parent / f"{directory.name}.rs"]
    pattern = re.compile(rb"\bmod\s+" + re.escape(module.encode()) + rb"\s*;")
    for candidate in candidates:
        if candidate == path or not candidate.is_file():
            continue
        data = candidate.read_bytes()
        if not pattern.search(data):
            continue
        tree = parse_bytes(data)
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            if node.type == "mod_item" and node.child_by_field_name("body") is None:
                name = node.child_by_field_name("name")
                if name is not None and data[name.start_byte : name.end_byte].decode() == module:
                    return candidate, syntax.node_cfg(node, data) is False
            stack.extend(c for c in node.named_children if c.type in ("mod_item", "declaration_list", "source_file"))
        return None
    return None


# -- cache --------------------------------------------------------------------------------------

class ScanCache:
    """Findings per file, keyed by size and mtime, per scanned root and rule pack.

    A re-run on an unchanged tree reads one pickle and stats the files."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.entries: dict[str, tuple[int, int, FileReport]] = {}
        self.dirty = False
        try:
            with path.open("rb") as handle:
                stored = pickle.load(handle)
            if stored.get("fingerprint") == fingerprint:
                self.entries = stored["entries"]
        except (OSError, pickle.PickleError, EOFError, AttributeError, KeyError, TypeError, ValueError):
            self.entries = {}

    @classmethod
    def for_run(cls, paths: list[Path], pack: RulePack) -> "ScanCache":
        base = Path(os.environ.get("WASIPORT_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wasiport")
        key = hashlib.sha256("\0".join(sorted(str(p.resolve()) for p in paths)).encode()).hexdigest()[:24]
        return cls(base / f"scan-{key}.pickle", _pack_fingerprint(pack))

    @staticmethod
    def _stat(task: FileTask) -> tuple[int, int] | None:
        try:
            st = os.stat(task.path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def get(self, task: FileTask) -> FileReport | None:
        entry = self.entries.get(task.path)
        if entry is None:
            return None
        stat = self._stat(task)
        if stat is None or (entry[0], entry[1]) != stat or entry[2].path != task.display:
            return None
        return entry[2]

    def put(self, task: FileTask, report: FileReport) -> None:
        stat = self._stat(task)
        if stat is not None:
            self.entries[task.path] = (stat[0], stat[1], report)
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                pickle.dump({"fingerprint": self.fingerprint, "entries": self.entries}, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def _pack_fingerprint(pack: RulePack) -> str:
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(pack.directory.rglob("*.toml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
