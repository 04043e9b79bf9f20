"""`wasiport run`: WasmEdge's socket host functions on wasmtime, in Python.

Public API::

    from wasiport.runtime import RunConfig, run_module
    outcome = run_module(Path("client.wasm"), RunConfig(args=("127.0.0.1", "6379"), capture_output=True))

`run_module(path, config, program)` runs something other than a command's
`_start` with the same host (proxywasm/ drives a proxy-wasm plugin so).
The package imports wasmtime; command modules import it inside the function
that runs (see wasiport/commands/__init__.py).
"""
from wasiport.runtime.policy import NetworkPolicy, PolicyDecision, PolicyError, build_policy, parse_allow
from wasiport.runtime.runner import (
    EXIT_CANCELLED,
    EXIT_TIMEOUT,
    EXIT_TRAP,
    CommandProgram,
    GuestHost,
    GuestProgram,
    RunConfig,
    RunOutcome,
    RunStatus,
    RunTimings,
    run_module,
)

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_TIMEOUT",
    "EXIT_TRAP",
    "CommandProgram",
    "GuestHost",
    "GuestProgram",
    "NetworkPolicy",
    "PolicyDecision",
    "PolicyError",
    "RunConfig",
    "RunOutcome",
    "RunStatus",
    "RunTimings",
    "build_policy",
    "parse_allow",
    "run_module",
]
