"""The last stage of `apply --run`: the verified program, run under wasiport's runtime."""
from __future__ import annotations

from pathlib import Path

from wasiport.errors import UserError
from wasiport.model import StageResult
from wasiport.port.request import ApplyRequest, Progress
from wasiport.runtime import RunConfig, run_module


def run_port(module: Path | None, request: ApplyRequest, progress: Progress) -> tuple[int, StageResult]:
    """Run the consumer's module with --run's arguments; its exit status and the run stage."""
    if module is None:
        raise UserError("--run needs a program to run: pass --manifest-path of a consumer with a binary target (and do not pass --no-build)")
    progress(f"running {module.name} {' '.join(request.run_args or [])}".rstrip())
    config = RunConfig(args=tuple(request.run_args or ()), env=request.run_env, allow=tuple(request.run_allow))
    run = run_module(module, config)
    summary = f"{module.name} exited with status {run.exit_code}"
    details = [run.message] if run.message else []
    details += [f"denied by the network policy: {decision}" for decision in run.denied]
    return run.exit_code, StageResult("run", run.exit_code == 0, summary, details)
