"""The last stage of `apply --run`: the verified program, run under wasiport's runtime."""
from __future__ import annotations

from pathlib import Path

from wasiport.errors import UserError
from wasiport.model import StageResult
from wasiport.port.request import ApplyRequest, Progress
from wasiport.runtime import RunConfig, RunOutcome, run_module


def run_port(module: Path | None, request: ApplyRequest, progress: Progress) -> tuple[int, StageResult]:
    """Run the consumer's module with --run's arguments; its exit status and the run stage."""
    run, stage = run_port_captured(module, request, progress, capture=False)
    return run.exit_code, stage


def run_port_captured(module: Path | None, request: ApplyRequest, progress: Progress, *, capture: bool = True) -> tuple[RunOutcome, StageResult]:
    """As run_port; the runtime's outcome, with what the module printed when `capture`."""
    if module is None:
        raise UserError("--run needs a program to run: pass --manifest-path of a consumer with a binary target (and do not pass --no-build)")
    progress(f"running {module.name} {' '.join(request.run_args or [])}".rstrip())
    config = RunConfig(args=tuple(request.run_args or ()), env=request.run_env, allow=tuple(request.run_allow), capture_output=capture)
    run = run_module(module, config)
    summary = f"{module.name} exited with status {run.exit_code}"
    details = [run.message] if run.message else []
    details += [f"denied by the network policy: {decision}" for decision in run.denied]
    return run, StageResult("run", run.exit_code == 0, summary, details)
