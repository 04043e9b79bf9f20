"""Run a proxy-wasm plugin and say how it went: `run_plugin` and its exit codes.

Exit codes (documented in `wasiport run --help`):
  0    every callback returned; requests got responses
  3    the plugin refused to start: proxy_on_vm_start or proxy_on_configure returned false
  4    the plugin failed to start: it trapped or panicked in _initialize, proxy_on_vm_start
       or proxy_on_configure
  134  it trapped or panicked later (a tick, a request, shutdown)
  124  --timeout stopped it; 130 Ctrl-C
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wasiport.runtime.proxywasm.abi import ABI_MARKER_PREFIX
from wasiport.runtime.proxywasm.driver import ProxyWasmProgram
from wasiport.runtime.proxywasm.host import LogSink, stderr_log_sink
from wasiport.runtime.proxywasm.model import PluginRun, RunReport
from wasiport.runtime.runner import EXIT_TRAP, RunConfig, RunOutcome, RunStatus, run_module

EXIT_REFUSED = 3
EXIT_START_FAILED = 4

WASM_PANIC_TRAP = "unreachable"  # how a Rust panic ends on wasm32 (panic = abort)


@dataclass
class PluginResult:
    outcome: RunOutcome  # the runner's view: status, trap message, denied calls, ...
    report: RunReport  # the proxy-wasm view: logs, requests, unimplemented calls
    exit_code: int
    message: str  # why it failed, in one sentence ("" when it did not)


def is_proxy_wasm_module(export_names: Iterable[str]) -> bool:
    return any(name.startswith(ABI_MARKER_PREFIX) for name in export_names)


def run_plugin(path: Path, run: PluginRun, config: RunConfig = RunConfig(), *, log_sink: LogSink = stderr_log_sink) -> PluginResult:
    program = ProxyWasmProgram(path, run, log_sink=log_sink)
    outcome = run_module(path, config, program)
    report = program.report
    exit_code, message = judge(outcome, report)
    return PluginResult(outcome, report, exit_code, message)


def judge(outcome: RunOutcome, report: RunReport) -> tuple[int, str]:
    """The exit code and the one-sentence reason for a finished plugin run."""
    if outcome.status in (RunStatus.TIMED_OUT, RunStatus.CANCELLED):
        return outcome.exit_code, outcome.message
    if outcome.status is RunStatus.TRAPPED:
        where = report.callback or report.phase.value
        panic = report.last_critical()
        first_line = outcome.message.splitlines()[0] if outcome.message else "trap"
        if panic and WASM_PANIC_TRAP in outcome.message:
            what = f"the plugin panicked in {where}: {panic}"
        else:
            what = f"the plugin trapped in {where}: {first_line}"
        return (EXIT_START_FAILED if report.phase.is_start else EXIT_TRAP), what
    if report.refused:
        return EXIT_REFUSED, f"the plugin refused to start: {report.refused}"
    if outcome.exit_code != 0:
        return outcome.exit_code, f"the plugin called proc_exit({outcome.exit_code}) in {report.callback}"
    return 0, ""
