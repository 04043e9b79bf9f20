"""`wasiport run` for proxy-wasm plugins: a host for ABI 0.2.1 beside the command runner.

Public API::

    from wasiport.runtime.proxywasm import PluginRun, HttpRequest, run_plugin
    result = run_plugin(Path("plugin.wasm"), PluginRun(plugin_config=b"{}", requests=(HttpRequest("GET", "/"),)))
    result.report.logs, result.report.requests, result.exit_code

WASI and WasmEdge's `sock_*` functions come from the command runner
(wasiport.runtime.runner) unchanged; this package adds the `env` host
functions and the lifecycle.
"""
from wasiport.runtime.proxywasm.abi import LogLevel, Status, parse_map, serialize_map
from wasiport.runtime.proxywasm.driver import abi_marker, header_pairs, parse_header, summary_lines
from wasiport.runtime.proxywasm.model import (
    HostProfile,
    HttpRequest,
    LogRecord,
    Phase,
    PluginRun,
    RequestOutcome,
    RunReport,
    UpstreamResponse,
)
from wasiport.runtime.proxywasm.plugin import (
    EXIT_REFUSED,
    EXIT_START_FAILED,
    PluginResult,
    is_proxy_wasm_module,
    run_plugin,
)

__all__ = [
    "EXIT_REFUSED",
    "EXIT_START_FAILED",
    "HostProfile",
    "HttpRequest",
    "LogLevel",
    "LogRecord",
    "Phase",
    "PluginResult",
    "PluginRun",
    "RequestOutcome",
    "RunReport",
    "Status",
    "UpstreamResponse",
    "abi_marker",
    "header_pairs",
    "is_proxy_wasm_module",
    "parse_header",
    "parse_map",
    "run_plugin",
    "serialize_map",
    "summary_lines",
]
