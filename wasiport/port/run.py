"""The last stage of `apply --run`: the verified program, run under wasiport's runtime.

A proxy-wasm plugin (a module exporting `proxy_abi_version_*`) has no arguments to run
with: `--run SCENARIO.toml` runs it through a scenario file, whose expectations decide.
"""
from __future__ import annotations

from pathlib import Path

from wasiport.errors import UserError
from wasiport.model import StageResult
from wasiport.port.request import ApplyRequest, Progress
from wasiport.runtime import RunConfig, RunOutcome, run_module
from wasiport.runtime.proxywasm import is_proxy_wasm_module
from wasiport.runtime.proxywasm.scenario import load_scenario, render_mismatches, run_scenario
from wasiport.wasm import read_module


def run_port(module: Path | None, request: ApplyRequest, progress: Progress) -> tuple[int, StageResult]:
    """Run the consumer's module with --run's arguments; its exit status and the run stage."""
    if module is not None and is_proxy_wasm_module(export.name for export in read_module(module).exports):
        return run_plugin_scenario(module, request, progress)
    run, stage = run_port_captured(module, request, progress, capture=False)
    return run.exit_code, stage


def run_port_captured(module: Path | None, request: ApplyRequest, progress: Progress, *, capture: bool = True) -> tuple[RunOutcome, StageResult]:
    """As run_port; the runtime's outcome, with what the module printed when `capture`."""
    if module is None:
        raise UserError("--run needs a program to run: pass --manifest-path of a consumer with a binary target (and do not pass --no-build)")
    progress(f"running {module.name} {' '.join(request.run_args or [])}".rstrip())
    config = RunConfig(args=tuple(request.run_args or ()), env=request.run_env, allow=tuple(request.run_allow), capture_output=capture, runtime=request.runtime)
    run = run_module(module, config)
    summary = f"{module.name} exited with status {run.exit_code}"
    details = [run.message] if run.message else []
    details += [f"denied by the network policy: {decision}" for decision in run.denied]
    return run, StageResult("run", run.exit_code == 0, summary, details)


def run_plugin_scenario(module: Path, request: ApplyRequest, progress: Progress) -> tuple[int, StageResult]:
    """A proxy-wasm plugin through `--run SCENARIO.toml`: the scenario's exit status and the run stage."""
    args = list(request.run_args or ())
    if len(args) != 1 or not args[0].endswith(".toml"):
        raise UserError(
            f"{module.name} is a proxy-wasm plugin: --run takes one scenario file (--run SCENARIO.toml), got {' '.join(args) or 'nothing'}",
            hint="docs/proxy-wasm-scenarios.md describes the format",
        )
    scenario = load_scenario(Path(args[0]))
    progress(f"running proxy-wasm plugin {module.name} through {args[0]}")
    config = RunConfig(env=request.run_env, allow=tuple(request.run_allow), runtime=request.runtime)
    checked = run_scenario(module, scenario, config, log_sink=lambda record: progress(record.render()))
    if checked.result.message:
        summary = f"{module.name}: {checked.result.message}"
    elif checked.mismatches:
        summary = f"{module.name}: scenario {args[0]} failed ({len(checked.mismatches)} mismatch(es))"
    else:
        summary = f"{module.name}: scenario {args[0]}: {len(scenario.requests)} request(s), all expectations met"
    details = render_mismatches(checked.mismatches).splitlines() if checked.mismatches else []
    details += [f"denied by the network policy: {decision.message()}" for decision in checked.result.outcome.denied]
    return checked.exit_code, StageResult("run", checked.exit_code == 0, summary, details)
