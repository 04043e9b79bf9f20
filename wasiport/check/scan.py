"""`check`'s scan of a tree: the files (check/files.py), each scanned once
(check/filescan.py), by an executor (check/executor.py), remembered (check/cache.py).

This module only sequences them: walk and scan overlap (the files come in batches and
are handed out while the walk goes on), the Cargo.toml checks come last, and the
findings of modules cfg'd out for the wasm target are dropped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from wasiport.check import gcpace
from wasiport.check.cache import DeclaringLookup, ScanCache
from wasiport.check.executor import ForkedExecutor, SerialExecutor, Worker
from wasiport.check.files import FileTask, display_path, has_package_table, walk
from wasiport.engine.context import ScanContext
from wasiport.engine.pack import load_compat, load_rules
from wasiport.engine.rules import Rule
from wasiport.model import FileReport, Profile
from wasiport.rust.cfg import WASI, Target
from wasiport.rust.modtree import module_cfgd_out

PARALLEL_THRESHOLD = 256  # files waiting for a scan before worker processes are worth starting
MANY_FILES = 16  # from this many files on, all rules share one compiled query (matcher.prepare_for_many)
UNIT_FILES = 100  # files per unit of pool work (a larger crate is one unit of its own)
IN_FLIGHT_PER_JOB = 4  # units handed out and not yet done, per worker, while the walk goes on
MANIFEST_BATCH = 64


class ScanResult:
    __slots__ = ("reports", "files_seen", "files_parsed", "from_cache")

    def __init__(self) -> None:
        self.reports: list[FileReport] = []
        self.files_seen = 0
        self.files_parsed = 0
        self.from_cache = 0

    @property
    def findings(self):
        return [f for r in self.reports for f in r.findings]

    @property
    def problems(self):
        return [p for r in self.reports for p in r.problems]


def scan_paths(
    paths: list[Path],
    profile: Profile | None = None,
    *,
    all_targets: bool = False,
    jobs: int | None = None,
    use_cache: bool = True,
    rules_directory: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    nested_crates: bool = True,
    features: Iterable[str] | None = None,
    manifests: bool = True,
) -> ScanResult:
    """Scan .rs files under `paths`; with `manifests`, also each crate's Cargo.toml for
    direct dependencies that cannot work on WasmEdge (`wasiport.check.manifests`)."""
    profile = profile or Profile()
    pack = load_rules(profile, directory=rules_directory, use_cache=use_cache)
    context = ScanContext(profile, load_compat(profile, rules_directory, use_cache=use_cache), target=WASI.with_features(features))
    cache = ScanCache.for_run(paths, pack, profile, context.target) if use_cache else None
    discovery = _Discovery(paths, cache, all_targets=all_targets, nested_crates=nested_crates, jobs=jobs or os.cpu_count() or 1)

    def manifest_jobs() -> list[tuple[str, str]]:
        if not manifests:
            return []
        cwd = Path.cwd()
        packages = sorted({m for m in discovery.manifests if _is_package(m, cache)}, key=_path_order)
        return [(m, discovery.displays.get(m) or display_path(Path(m), cwd)) for m in packages]

    return _scan(discovery, pack.rules, context, jobs=jobs, cache=cache, progress=progress, manifests=manifest_jobs)


def scan_crate(crate_root: Path, profile: Profile | None = None, features: Iterable[str] | None = None) -> list:
    """Findings of one package directory (library and binary targets, not nested packages),
    for the dependency report; `features` are the package's enabled features when known."""
    # Its dependencies are packages of the graph in their own right: no manifest findings here.
    return scan_paths([crate_root], profile, jobs=1, use_cache=False, nested_crates=False, features=features, manifests=False).findings


class _Discovery:
    """The walk's batches, or the last run's result as one batch when no directory it
    listed has changed (adding, removing or renaming a file or directory changes its
    directory's mtime). Once iterated: `manifests` and `displays` (the Cargo.toml
    files found and their display paths), and with a cache `tasks` (all files, in
    display order)."""

    def __init__(self, paths: list[Path], cache: ScanCache | None, *, all_targets: bool, nested_crates: bool, jobs: int = 1) -> None:
        self.paths = paths
        self.jobs = jobs
        self.cache = cache if all(p.is_dir() for p in paths) else None
        self.options = {"all_targets": all_targets, "nested_crates": nested_crates}
        self.key = (os.getcwd(), tuple(str(p) for p in paths), all_targets, nested_crates)
        self.tasks: list[FileTask] = []
        self.manifests: list[str] = []  # Cargo.toml paths (strings: a warm run makes no Path of them)
        self.displays: dict[str, str] = {}

    def __iter__(self) -> Iterator[list[FileTask]]:
        found = self.cache.discovered(self.key, jobs=self.jobs) if self.cache is not None else None
        if found is not None:
            self.tasks, self.manifests, self.displays = found
            yield self.tasks
            return
        directories: list | None = [] if self.cache is not None else None
        walked: list[FileTask] = []  # kept for the cache only: without one, memory stays flat
        for batch in walk(self.paths, self.manifests, self.displays, directories=directories, **self.options):
            if self.cache is not None:
                walked.extend(batch)
            yield batch
        if self.cache is not None:
            self.tasks = sorted(walked, key=lambda t: t.display)
            self.cache.put_discovered(self.key, directories, (self.tasks, self.manifests, self.displays))


def _units(pending: list[FileTask], *, final: bool) -> tuple[list[list[FileTask]], list[FileTask]]:
    """Units of pool work from the files waiting for one, and what keeps waiting.

    A crate's files go to one unit, so its declaration index (crateindex) and its
    module files are read once, not once per worker; small crates are packed
    together. Until `final`, a pack short of UNIT_FILES waits for the next crates."""
    groups: dict[str, list[FileTask]] = {}
    for task in pending:
        groups.setdefault(task.crate, []).append(task)
    units: list[list[FileTask]] = []
    current: list[FileTask] = []
    for group in groups.values():
        if len(group) >= UNIT_FILES:
            units.append(group)
            continue
        current.extend(group)
        if len(current) >= UNIT_FILES:
            units.append(current)
            current = []
    if current and final:
        units.append(current)
        current = []
    return units, current


def _scan(
    discovery,
    rules: list[Rule],
    context: ScanContext,
    *,
    jobs: int | None,
    cache: ScanCache | None,
    progress: Callable[[int, int], None] | None,
    manifests: Callable[[], list[tuple[str, str]]],
) -> ScanResult:
    """Scan the files `discovery` yields in batches, then the Cargo.toml files
    `manifests()` names (called once the walk is done)."""
    jobs = jobs or os.cpu_count() or 1
    worker = Worker(rules, context)
    run = _ScanRun(worker, ForkedExecutor(jobs, worker) if jobs > 1 else None, jobs, cache, progress)
    with gcpace.scanning_pace():
        try:
            run.files(discovery)
            run.manifests(manifests())
            return run.result(context.target)
        finally:
            run.shutdown()


class _ScanRun:
    """One scan's state while the work goes out and the outcomes come back.

    With worker processes, work is handed out while the batches still come (the walk of
    a large tree and the scan overlap) once PARALLEL_THRESHOLD files wait; a tree with
    fewer is scanned in this process (SerialExecutor: the same units, the same folding).
    Only files with findings or problems keep a report: on a large tree most have none,
    and one object per file was most of the memory a scan held."""

    def __init__(self, worker: Worker, parallel: ForkedExecutor | None, jobs: int, cache: ScanCache | None, progress) -> None:
        self.serial = SerialExecutor(worker)
        self.parallel = parallel
        self.executor: SerialExecutor | ForkedExecutor = self.serial  # the parallel one once work went to it
        self.jobs = jobs
        self.cache = cache
        self.progress = progress
        self.outcome = ScanResult()
        self.reports: dict[str, FileReport] = {}
        self.reported: dict[str, FileTask] = {}  # the tasks of `reports`: the only ones kept
        self.declarations: dict = {}  # declaring_item answers the workers computed
        self.manifest_list: list[tuple[str, str]] = []
        self.manifest_outcomes: dict[int, tuple[list, list]] = {}
        self.in_flight: dict = {}  # future -> (kind, items)
        self.done = self.handed_out = 0  # files

    def shutdown(self) -> None:
        if self.parallel is not None:
            self.parallel.shutdown()

    def _record(self, task: FileTask, report: FileReport | None, parsed: bool, stat: tuple[int, int] | None) -> None:
        if report is not None and (report.findings or report.problems):
            self.reports[task.path] = report
            self.reported[task.path] = task
        self.outcome.files_parsed += int(parsed)
        if self.cache is not None and stat is not None:
            self.cache.put(task, report, stat)

    def _hand_out(self, units: list[list[FileTask]]) -> None:
        for unit in units:
            future = self.executor.submit(("rs", list(map(tuple, unit))))
            self.in_flight[future] = ("rs", unit)
            self.handed_out += len(unit)
        if self.executor is self.serial:
            self._collect()

    def _collect(self, keep: int = 0) -> None:
        """Fold in finished work, waiting until at most `keep` units are in flight.
        Results are folded in as they finish (not in order), and the walk does not run
        far ahead of the workers: what this process holds stays the same however large
        the tree."""
        while len(self.in_flight) > keep:
            for future in self.executor.wait(self.in_flight):
                kind, items = self.in_flight.pop(future)
                self._fold(kind, items, future.result())

    def _fold(self, kind: str, items: list, outcome) -> None:
        if kind == "toml":
            self.manifest_outcomes.update(zip(items, outcome))
            return
        chunk_results, chunk_declarations = outcome
        for index, report, parsed, stat in chunk_results:
            self._record(items[index], report, parsed, stat)
        self.declarations.update(chunk_declarations)
        self.done += len(items)
        if self.progress:
            self.progress(self.done, self.handed_out)

    def _go_parallel(self, waiting: int) -> bool:
        if self.parallel is not None and (self.executor is self.parallel or waiting >= PARALLEL_THRESHOLD):
            self.executor = self.parallel
        return self.executor is self.parallel

    def files(self, discovery) -> None:
        pending: list[FileTask] = []  # not in the cache, not handed out yet
        seen = 0
        for batch in discovery:
            seen += len(batch)
            if self.cache is None:
                pending.extend(batch)
            else:
                todo, kept = self.cache.split(batch)
                self.outcome.from_cache += len(batch) - len(todo)
                pending.extend(todo)
                for task, report in kept:
                    self.reports[task.path] = report
                    self.reported[task.path] = task
            if self._go_parallel(len(pending)):
                units, pending = _units(pending, final=False)
                self._hand_out(units)
                self._collect(keep=self.jobs * IN_FLIGHT_PER_JOB)
        self.outcome.files_seen = seen
        if not self._go_parallel(len(pending)) and len(pending) >= MANY_FILES:
            from wasiport.engine.matcher import prepare_for_many  # the matcher only when files are parsed here

            prepare_for_many(self.serial.worker.rules)  # one combined query for every file
        self._hand_out(_units(pending, final=True)[0])

    def manifests(self, manifest_list: list[tuple[str, str]]) -> None:
        """The Cargo.toml checks, from the cache or as the last units of work (they are
        small and fill the end of the scan)."""
        self.manifest_list = manifest_list
        todo: list[int] = []
        for index, (manifest, display) in enumerate(manifest_list):
            known = self.cache.cached_manifest(manifest, display) if self.cache is not None else None
            if known is not None:
                self.manifest_outcomes[index] = known
            else:
                todo.append(index)
        for start in range(0, len(todo), MANIFEST_BATCH):
            batch = todo[start : start + MANIFEST_BATCH]
            self.in_flight[self.executor.submit(("toml", [manifest_list[i] for i in batch]))] = ("toml", batch)
        self._collect()
        if self.cache is not None:
            for index in todo:
                self.cache.put_manifest(*manifest_list[index], *self.manifest_outcomes[index])

    def result(self, target: Target) -> ScanResult:
        drop_cfgd_out_modules(list(self.reported.values()), self.reports, target, self.declarations, self.cache)
        # in the order of the files' display paths, the order discovery sorts them in
        self.outcome.reports = [self.reports[t.path] for t in sorted(self.reported.values(), key=lambda t: t.display)]
        for index, (_manifest, display) in enumerate(self.manifest_list):
            findings, problems = self.manifest_outcomes[index]
            if findings or problems:
                self.outcome.reports.append(FileReport(display, list(findings), list(problems)))
        if self.cache is not None:
            self.cache.save()
        return self.outcome


def drop_cfgd_out_modules(
    tasks: list[FileTask],
    reports: dict[str, FileReport],
    target: Target = WASI,
    declarations: dict | None = None,
    cache: ScanCache | None = None,
) -> None:
    """`#[cfg(unix)] mod unix;` removes unix.rs from the wasm build: its findings go.

    `declarations` holds `declaring_item` answers the workers already computed, and the
    cache keeps them between runs (checked against the candidate files' size and mtime),
    so this does not parse module files one by one in the main process."""
    memo: dict[Path, bool] = {}
    lookup = DeclaringLookup(target, declarations or {}, cache)
    for task in tasks:
        report = reports.get(task.path)
        if report is None or not report.findings or task.is_crate_root:
            continue
        if module_cfgd_out(Path(task.path), memo, target=target, declaring=lookup):
            reports[task.path] = FileReport(report.path, [], list(report.problems))


def _path_order(path: str) -> list[str]:
    """The order of `Path(path)` objects (component by component, the root first), for
    paths as pathlib writes them."""
    return ["/", *path[1:].split("/")] if path.startswith("/") else path.split("/")


def _is_package(manifest: str, cache: ScanCache | None) -> bool:
    """Whether a Cargo.toml has a [package] table (a workspace root alone is not built)."""
    if cache is not None:
        return cache.is_package(manifest)
    with open(manifest, "rb") as handle:
        return has_package_table(handle.read())
