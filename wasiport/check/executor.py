"""Where a scan's units of work run: here (`SerialExecutor`) or in forked worker processes
(`ForkedExecutor`), behind one interface (`submit(unit)`, `wait(in_flight)`, `shutdown()`),
so the scan loop does not know which; and `forked_map` for a warm run's stat calls.

A unit is `("rs", [FileTask tuples])` (files to scan) or `("toml", [(path, display)])`
(Cargo.toml files to check); its outcome is what `Worker.run` returns. Workers are forked:
they inherit the rules, the compiled queries and the imported modules instead of
unpickling or importing them again.
"""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Callable

from wasiport.check import gcpace
from wasiport.check.files import FileTask
from wasiport.check.filescan import scan_file
from wasiport.check.manifests import check_manifest
from wasiport.engine.context import ScanContext
from wasiport.engine.rules import Rule
from wasiport.model import FileReport, Profile
from wasiport.rust.modtree import declaring_item, looks_like_crate_root


class ManifestChecker:
    """`check_manifest` with the dependency data read once per run, not once per Cargo.toml."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._data = None

    def data(self):
        if self._data is None:
            from wasiport.deps.data import load_deps_data  # its TOML reader: only a run with a Cargo.toml pays for it

            self._data = load_deps_data(profile=self.profile)
        return self._data

    def __call__(self, manifest: Path, display: str):
        return check_manifest(manifest, display, self.profile, deps_data=self.data)


class Worker:
    """What a unit of work needs: the rules, the run's context, the manifest checker."""

    def __init__(self, rules: list[Rule], context: ScanContext) -> None:
        self.rules = rules
        self.context = context
        self.manifest_checker = ManifestChecker(context.profile)

    def run(self, unit: tuple[str, list]):
        kind, items = unit
        if kind == "rs":  # FileTask fields as tuples: pickled several times faster than NamedTuples
            return self.scan_chunk(list(map(FileTask._make, items)))
        return [self.manifest_checker(Path(path), display) for path, display in items]

    def scan_chunk(self, tasks: list[FileTask]) -> tuple[list[tuple[int, FileReport | None, bool, tuple[int, int] | None]], dict]:
        """Per task (index in chunk, report if not empty, parsed, stat), and the `declaring_item`
        answers for the files with findings (see module_cfgd_out). Empty reports are not sent
        back: most files have none, and pickling them was a measurable part of a large scan."""
        results = []
        declarations: dict = {}
        for index, task in enumerate(tasks):
            report, parsed, stat = scan_file(task, self.rules, self.context)
            empty = not report.findings and not report.problems
            results.append((index, None if empty else report, parsed, stat))
            if report.findings and not task.is_crate_root:
                declaring_chain(Path(task.path), self.context.target, declarations)
        return results, declarations


def declaring_chain(path: Path, target, out: dict, depth: int = 0) -> None:
    """`declaring_item` for `path` and the files above it that module_cfgd_out may ask about."""
    while depth <= 16 and not looks_like_crate_root(path) and str(path) not in out:
        declared = out[str(path)] = declaring_item(path, target)
        if declared is None:
            return
        path, depth = declared[0], depth + 1


class _Done:
    """A unit's outcome, computed when it was submitted (the serial executor's future)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


class SerialExecutor:
    """Runs each unit in this process, at submit."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def submit(self, unit: tuple[str, list]) -> _Done:
        return _Done(self.worker.run(unit))

    @staticmethod
    def wait(in_flight) -> list:
        return list(in_flight)

    def shutdown(self) -> None:
        pass


_WORKER: Worker | None = None  # the forked workers' Worker: set before forking, inherited


def _run_in_worker(unit: tuple[str, list]):
    assert _WORKER is not None
    return _WORKER.run(unit)


def _init_forked_worker() -> None:
    gcpace.worker_pace()


class ForkedExecutor:
    """`jobs` worker processes, forked at the first submit: a small tree never starts them,
    and the workers of a large one do not inherit a copy of its whole file list."""

    def __init__(self, jobs: int, worker: Worker) -> None:
        self.jobs = jobs
        self.worker = worker
        self.executor = None

    def submit(self, unit: tuple[str, list]):
        if self.executor is None:
            self.executor = self._fork()
        return self.executor.submit(_run_in_worker, unit)

    def _fork(self):
        import multiprocessing  # here, not at the top: a one-file run never needs a pool
        from concurrent.futures import ProcessPoolExecutor

        from wasiport.engine.matcher import prepare_for_many
        import wasiport.rust.crateindex  # noqa: F401 - imported once here, not once per worker

        global _WORKER
        prepare_for_many(self.worker.rules)  # compiled once, before forking: the workers inherit it
        self.worker.manifest_checker.data()  # the dependency data (and the TOML reader) loaded once
        _WORKER = self.worker
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init_forked_worker)

    @staticmethod
    def wait(in_flight) -> list:
        """Some of the futures in `in_flight` that are done (at least one)."""
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_for

        return list(wait_for(in_flight, return_when=FIRST_COMPLETED).done)

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)  # after an error, queued work is dropped


def forked_map(function: Callable, parts: list) -> list:
    """`[function(part) for part in parts]`, all parts but the first computed in forked
    child processes at the same time (the results come back pickled through a pipe).
    For system-call-bound work on several cores: threads would queue on the GIL. A
    child that fails is redone here, and so are the parts no child could be forked
    for (out of processes or file descriptors); without fork (not POSIX) all runs here."""
    threading = sys.modules.get("threading")  # not imported: no thread was started from Python
    if len(parts) < 2 or not hasattr(os, "fork") or (threading is not None and threading.active_count() > 1):
        return [function(part) for part in parts]  # forking a process with threads is not safe
    children = []
    for part in parts[1:]:
        try:
            read_end, write_end = os.pipe()
        except OSError:  # out of file descriptors: the rest is done here
            break
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: the rest is done here
            os.close(read_end)
            os.close(write_end)
            break
        if pid == 0:  # the child: compute, send, leave without the parent's exit handlers or buffers
            status = 1
            try:
                os.close(read_end)
                view = memoryview(pickle.dumps(function(part), protocol=pickle.HIGHEST_PROTOCOL))
                while view:
                    view = view[os.write(write_end, view) :]
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((part, pid, read_end))
    results = [function(parts[0])]
    unforked = parts[1 + len(children) :]  # when a fork failed: those after it, done here once the children are read
    for part, pid, read_end in children:
        chunks = []
        try:
            while chunk := os.read(read_end, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(read_end)
        _pid, status = os.waitpid(pid, 0)
        try:
            results.append(pickle.loads(b"".join(chunks)) if status == 0 else function(part))
        except Exception:  # a truncated result: do that part here
            results.append(function(part))
    results.extend(function(part) for part in unforked)
    return results
