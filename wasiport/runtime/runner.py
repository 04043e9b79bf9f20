"""Run a WASI command module with WasmEdge's socket host functions on wasmtime.

    outcome = run_module(Path("client.wasm"), RunConfig(args=("127.0.0.1", "6379")))
    outcome.exit_code  # proc_exit's code, or EXIT_TRAP, EXIT_TIMEOUT, EXIT_CANCELLED

Each run gets its own engine, so that one run's --timeout (which advances the
engine's epoch) never interrupts another run in the same process; compiled
code is shared between runs through wasmtime's cache when `cache_dir` is set.
"""
from __future__ import annotations

import enum
import json
import logging
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import wasmtime

from wasiport.errors import UserError
from wasiport.runtime.bridge import WasiBridge
from wasiport.runtime.fdops import DescriptorOps, Interrupt
from wasiport.runtime import hotpath
from wasiport.runtime.fdops import HOTPATH_MASKS, SPIN_PAUSE
from wasiport.runtime.hostcall import HostFailures, define_host_function, raw_api_available
from wasiport.runtime.linking import WASI_MODULE, HostFunction, ImportSignature, import_signatures, plan_host_functions
from wasiport.runtime.memory import GuestMemory
from wasiport.runtime.policy import NetworkPolicy, PolicyDecision, PolicyError, build_policy
from wasiport.runtime.sockets import SOCKET_FD_BASE, SocketHost
from wasiport.wasm.runtimes import ImportType, find_runtime, link_problems, load_runtimes, socket_function_names

EXIT_TRAP = 134  # 128 + SIGABRT, what wasmtime's own CLI returns for a trap
EXIT_TIMEOUT = 124  # what coreutils' timeout(1) returns
EXIT_CANCELLED = 130  # 128 + SIGINT

_log = logging.getLogger("wasiport.runtime")

OutputSink = Callable[[bytes], None]


class RunStatus(enum.Enum):
    EXITED = "exited"  # returned from _start or called proc_exit
    TRAPPED = "trapped"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"  # RunConfig.cancel was set


@dataclass(frozen=True)
class RunConfig:
    args: tuple[str, ...] = ()  # argv after the program name
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[tuple[str, str], ...] = ()  # (host directory, guest path) preopens
    allow: tuple[str, ...] = ()  # --allow HOST:PORT rules on top of loopback
    timeout: float | None = None  # seconds
    cancel: threading.Event | None = None  # set it to stop the guest (e.g. from a SIGINT watcher)
    cache_dir: Path | None = None  # wasmtime's compilation cache; None disables it
    program_name: str | None = None  # argv[0]; the module's file name by default
    inherit_stdin: bool = False
    capture_output: bool = False  # keep stdout/stderr in the outcome instead of passing them through
    on_stdout: OutputSink | None = None  # called with each write, as it happens
    on_stderr: OutputSink | None = None
    on_denied: Callable[[PolicyDecision], None] | None = None  # the policy log; logging by default
    fast_host_calls: bool = True  # False: wasmtime-py's public (slow) host-function API
    c_host_calls: bool = True  # sock_recv/sock_send/poll_oneoff answered in C where it can (hotpath.py)
    runtime: str | None = None  # "wasmedge-0.10": link only what that WasmEdge release defines


@dataclass
class RunTimings:
    """Seconds, measured with time.perf_counter()."""

    load: float = 0.0  # read and compile (or fetch from the cache)
    instantiate: float = 0.0
    to_first_socket_call: float | None = None  # from instantiation to the first sock_open/getaddrinfo
    total: float = 0.0


@dataclass
class RunOutcome:
    exit_code: int
    status: RunStatus
    message: str = ""  # the trap with its wasm backtrace, or why the run was stopped
    host_error: str | None = None  # traceback of an exception in wasiport's host code (a bug)
    denied: list[PolicyDecision] = field(default_factory=list)
    unsupported_imports: list[str] = field(default_factory=list)  # defined as traps
    stdout: bytes = b""  # only with capture_output
    stderr: bytes = b""
    timings: RunTimings = field(default_factory=RunTimings)
    host_calls_in_c: int | None = None  # answered by hotpath.c; None when it was not in front


class GuestProgram(Protocol):
    """What to do with an instantiated module: a WASI command's `_start`, or a proxy-wasm lifecycle.

    `define_imports` adds the program's own host functions (after WASI and the
    socket functions, before unknown imports become traps); `run` drives the
    instance and lets wasm errors (wasmtime.Trap, WasmtimeError) propagate."""

    def define_imports(self, linker: wasmtime.Linker, module: wasmtime.Module, host: GuestHost) -> None: ...

    def run(self, store: wasmtime.Store, instance: wasmtime.Instance, host: GuestHost) -> None: ...


class CommandProgram:
    """A WASI command: call `_start` once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def define_imports(self, linker: wasmtime.Linker, module: wasmtime.Module, host: GuestHost) -> None:
        return None

    def run(self, store: wasmtime.Store, instance: wasmtime.Instance, host: GuestHost) -> None:
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            raise UserError(f"{self.path}: not a WASI command (it exports no _start function)")
        start(store)


def run_module(path: Path, config: RunConfig = RunConfig(), program: GuestProgram | None = None) -> RunOutcome:
    """Run `path` to completion; raises UserError for input that cannot run at all.

    `program` says what running means (default: a WASI command's `_start`)."""
    started = time.perf_counter()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        policy = build_policy(config.allow)
    except PolicyError as err:
        raise UserError(str(err)) from None
    engine = wasmtime.Engine(_engine_config(config.cache_dir))
    module = _load(engine, path)
    signatures = import_signatures(module)
    if config.runtime is not None:
        refuse_unlinkable(path, signatures, config.runtime)
    planned = plan_host_functions(signatures)
    timings = RunTimings(load=time.perf_counter() - started)
    outputs = _Outputs(config)
    program = program if program is not None else CommandProgram(path)
    try:
        outcome = _execute(path, config, engine, module, planned, policy, outputs, timings, program)
    finally:
        stdout, stderr = outputs.finish()
    outcome.stdout, outcome.stderr = stdout, stderr
    timings.total = time.perf_counter() - started
    outcome.timings = timings
    return outcome


@dataclass
class GuestHost:
    """Everything the host functions of one run share."""

    memory: GuestMemory
    bridge: WasiBridge
    interrupt: Interrupt
    sockets: SocketHost
    descriptors: DescriptorOps
    failures: HostFailures
    hot: hotpath.HotPath | None = None  # the C host calls, when there are

    def release(self) -> None:
        self.memory.detach()
        self.sockets.close_all()
        if self.hot is not None:
            self.hot.release()
        self.interrupt.close()
        # The ctypes callbacks are only needed while the guest can call them.
        self.failures.keepalive.clear()


def _execute(
    path: Path,
    config: RunConfig,
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    planned: list[HostFunction],
    policy: NetworkPolicy,
    outputs: _Outputs,
    timings: RunTimings,
    program: GuestProgram,
) -> RunOutcome:
    store = wasmtime.Store(engine)
    store.set_wasi(_wasi_config(path, config, outputs))
    store.set_epoch_deadline(1)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    host = _make_host(engine, store, policy, config)
    host.hot = _hot_path(config, host)
    try:
        owners = {"sockets": host.sockets, "descriptors": host.descriptors}
        for function in planned:
            implementation = getattr(owners[function.owner], function.method)
            define_host_function(
                linker,
                WASI_MODULE,
                function.name,
                function.nparams,
                function.has_result,
                implementation,
                host.failures,
                fast=config.fast_host_calls,
                in_front=host.hot.in_front_of(function.name) if host.hot is not None else None,
            )
        program.define_imports(linker, module, host)
        unsupported = _undefined_imports(linker, store, module)
        if unsupported:
            linker.define_unknown_imports_as_traps(module)
        instantiate_at = time.perf_counter()
        error = _run_program(path, config, engine, store, linker, module, host, timings, program)
    finally:
        host.release()
    if isinstance(host.failures.error, KeyboardInterrupt):
        raise host.failures.error
    if host.sockets.first_socket_call is not None:
        timings.to_first_socket_call = host.sockets.first_socket_call - instantiate_at
    outcome = _classify(error, host.failures, host.interrupt, config.timeout)
    outcome.denied = list(host.sockets.denied)
    if host.hot is not None:
        outcome.host_calls_in_c = host.sockets.counters.answered
        _log.info("host calls answered in C: %d", outcome.host_calls_in_c)
    outcome.unsupported_imports = unsupported
    return outcome


def _make_host(engine: wasmtime.Engine, store: wasmtime.Store, policy: NetworkPolicy, config: RunConfig) -> GuestHost:
    memory = GuestMemory()
    bridge = WasiBridge(engine, store)
    interrupt = Interrupt()
    denied_log = config.on_denied or (lambda decision: _log.warning("%s", decision.message()))
    sockets = SocketHost(memory, policy, bridge, denied_log)
    descriptors = DescriptorOps(memory, sockets, bridge, interrupt)
    return GuestHost(memory, bridge, interrupt, sockets, descriptors, HostFailures())


def _hot_path(config: RunConfig, host: GuestHost) -> hotpath.HotPath | None:
    """The C host calls for this run; None when turned off or not available here."""
    if not (config.c_host_calls and config.fast_host_calls and raw_api_available()):
        return None
    hot = hotpath.load(
        host.sockets.counters,
        fd_base=SOCKET_FD_BASE,
        wakeup_fd=host.interrupt.wakeup_fd,
        spin_pause=SPIN_PAUSE,
        masks=HOTPATH_MASKS,
    )
    host.sockets.hot = hot
    return hot


def _run_program(
    path: Path,
    config: RunConfig,
    engine: wasmtime.Engine,
    store: wasmtime.Store,
    linker: wasmtime.Linker,
    module: wasmtime.Module,
    host: GuestHost,
    timings: RunTimings,
    program: GuestProgram,
) -> Exception | None:
    """Instantiate and run the program under the watchdog; the wasm error that ended it, if any."""
    watchdog = _start_watchdog(config.timeout, config.cancel, engine, host.interrupt, host.sockets)
    instantiate_at = time.perf_counter()
    try:
        try:
            instance = linker.instantiate(store, module)
        except wasmtime.Trap as trap:
            return trap
        except wasmtime.WasmtimeError as err:
            failures = host.failures
            if failures.exit_code is None and failures.trap_message is None and not host.interrupt.fired:
                raise UserError(f"{path}: cannot instantiate: {err}") from None
            return err
        timings.instantiate = time.perf_counter() - instantiate_at
        _attach_memory(store, instance, host)
        try:
            program.run(store, instance, host)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as err:
            return err
        return None
    finally:
        if watchdog is not None:
            watchdog.cancel()


def refuse_unlinkable(path: Path, signatures: list[ImportSignature], runtime: str) -> None:
    """Fail as the WasmEdge release `runtime` would when the module imports what it lacks."""
    table = load_runtimes()
    spec = find_runtime(runtime, table)
    imports = [ImportType(s.module, s.name, s.params, s.results) for s in signatures]
    problems = link_problems(imports, spec, socket_function_names(table))
    if problems:
        details = "; ".join(problem.message() for problem in problems)
        raise UserError(
            f"{path}: instantiation failed on {spec.name}: {details}",
            hint=f"`wasiport inspect {path.name} --runtime {spec.name}` lists them; rebuild against a socket crate for that release",
        )


def _engine_config(cache_dir: Path | None) -> wasmtime.Config:
    config = wasmtime.Config()
    # Host functions keep a view of linear memory; it must never move on growth.
    config.memory_may_move = False
    # Always on, so that runs with and without --timeout share cached code.
    config.epoch_interruption = True
    if cache_dir is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            settings = cache_dir / "wasmtime-cache.toml"
            settings.write_text(f"[cache]\ndirectory = {json.dumps(str(cache_dir.resolve()))}\n")
        except OSError as err:  # a cache is an optimisation: run without it
            _log.info("compilation cache disabled: %s", err)
        else:
            config.cache = str(settings)
    return config


def _load(engine: wasmtime.Engine, path: Path) -> wasmtime.Module:
    try:
        return wasmtime.Module.from_file(engine, str(path))
    except wasmtime.WasmtimeError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else "invalid module"
        raise UserError(f"{path}: not a WebAssembly module wasmtime can compile ({first_line})") from None


def _wasi_config(path: Path, config: RunConfig, outputs: _Outputs) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [config.program_name or path.name, *config.args]
    wasi.env = [list(pair) for pair in config.env]
    for host_dir, guest_dir in config.dirs:
        if not Path(host_dir).is_dir():
            raise UserError(f"--dir {host_dir}: no such directory")
        wasi.preopen_dir(host_dir, guest_dir)
    if config.inherit_stdin:
        wasi.inherit_stdin()
    for stream, tail in (("stdout", outputs.stdout), ("stderr", outputs.stderr)):
        if tail is None:
            getattr(wasi, f"inherit_{stream}")()
        else:
            setattr(wasi, f"{stream}_file", str(tail.path))
    return wasi


class _Tail:
    """The guest's output stream, written by wasmtime to a file and followed from here.

    wasmtime-py's `stdout_custom` calls back into Python from wasmtime's own
    threads and crashes at interpreter exit, so captured output goes through a
    file instead; a thread hands new bytes to the sink as they appear."""

    POLL_SECONDS = 0.01

    def __init__(self, directory: Path, name: str, sink: OutputSink | None) -> None:
        self.path = directory / name
        self.path.touch()
        self._sink = sink
        self._done = threading.Event()
        self._reader = self.path.open("rb")
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._follow, name=f"wasiport-{name}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while True:
            finished = self._done.is_set()
            data = self._reader.read()
            if data:
                self._chunks.append(data)
                if self._sink is not None:
                    self._sink(data)
            elif finished:
                return
            else:
                self._done.wait(self.POLL_SECONDS)

    def finish(self) -> bytes:
        self._done.set()
        self._thread.join()
        self._reader.close()
        return b"".join(self._chunks)


class _Outputs:
    """Where the guest's stdout and stderr go: inherited, or followed through files."""

    def __init__(self, config: RunConfig) -> None:
        wanted = {
            "stdout": config.capture_output or config.on_stdout is not None,
            "stderr": config.capture_output or config.on_stderr is not None,
        }
        self._directory = tempfile.TemporaryDirectory(prefix="wasiport-run-") if any(wanted.values()) else None
        folder = Path(self._directory.name) if self._directory else Path()
        self.stdout = _Tail(folder, "stdout", config.on_stdout) if wanted["stdout"] else None
        self.stderr = _Tail(folder, "stderr", config.on_stderr) if wanted["stderr"] else None
        self._capture = config.capture_output

    def finish(self) -> tuple[bytes, bytes]:
        out = self.stdout.finish() if self.stdout else b""
        err = self.stderr.finish() if self.stderr else b""
        if self._directory is not None:
            self._directory.cleanup()
        return (out, err) if self._capture else (b"", b"")


def _undefined_imports(linker: wasmtime.Linker, store: wasmtime.Store, module: wasmtime.Module) -> list[str]:
    missing = []
    for item in module.imports:
        try:
            linker.get(store, item.module, item.name or "")
        except wasmtime.WasmtimeError:
            missing.append(f"{item.module}.{item.name}")
    return missing


def _attach_memory(store: wasmtime.Store, instance: wasmtime.Instance, host: GuestHost) -> None:
    guest_memory = instance.exports(store).get("memory")
    if isinstance(guest_memory, wasmtime.Memory):
        host.memory.attach(store, guest_memory)
        if host.hot is not None:
            host.hot.attach_memory(store, guest_memory)


class _Watchdog:
    """Stops the guest when the timeout expires or `cancel` is set.

    Stopping means: advance the engine's epoch (wasm code traps at its next
    loop or call), shut down the guest's sockets (blocked recv/accept/connect
    return) and wake Python-side waits (poll_oneoff, sleeps)."""

    CANCEL_POLL_SECONDS = 0.05

    def __init__(
        self,
        timeout: float | None,
        cancel: threading.Event | None,
        engine: wasmtime.Engine,
        interrupt: Interrupt,
        sockets: SocketHost,
    ) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._cancel = cancel
        self._engine = engine
        self._interrupt = interrupt
        self._sockets = sockets
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="wasiport-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            wait = self.CANCEL_POLL_SECONDS if self._cancel is not None else None
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                wait = remaining if wait is None else min(wait, remaining)
            if self._done.wait(max(wait, 0) if wait is not None else None):
                return
            if self._cancel is not None and self._cancel.is_set():
                self._stop("cancelled")
                return
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._stop("timeout")
                return

    def _stop(self, reason: str) -> None:
        self._interrupt.fire(reason)
        self._engine.increment_epoch()
        self._sockets.shutdown_all()

    def cancel(self) -> None:
        self._done.set()
        self._thread.join()


def _start_watchdog(
    timeout: float | None,
    cancel: threading.Event | None,
    engine: wasmtime.Engine,
    interrupt: Interrupt,
    sockets: SocketHost,
) -> _Watchdog | None:
    if timeout is None and cancel is None:
        return None
    return _Watchdog(timeout, cancel, engine, interrupt, sockets)


def _classify(
    error: Exception | None, failures: HostFailures, interrupt: Interrupt, timeout: float | None
) -> RunOutcome:
    if failures.exit_code is not None:
        # A shell sees exit codes modulo 256, as it would from WasmEdge.
        return RunOutcome(failures.exit_code & 0xFF, RunStatus.EXITED)
    if isinstance(error, wasmtime.ExitTrap):
        return RunOutcome(error.code & 0xFF, RunStatus.EXITED)
    if interrupt.reason == "cancelled":
        return RunOutcome(EXIT_CANCELLED, RunStatus.CANCELLED, "the module was stopped on request")
    if interrupt.fired:
        return RunOutcome(
            EXIT_TIMEOUT, RunStatus.TIMED_OUT, f"the module was stopped after running for --timeout {timeout:g} s"
        )
    if error is None:
        return RunOutcome(0, RunStatus.EXITED)
    host_error = None
    if failures.error is not None:
        host_error = "".join(traceback.format_exception(failures.error))
    return RunOutcome(EXIT_TRAP, RunStatus.TRAPPED, str(error).strip(), host_error=host_error)
