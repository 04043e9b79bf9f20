"""What a proxy-wasm run is made of, as plain data: the plugin's settings, requests, and what happened.

`PluginRun` is the input (configuration, host profile, requests with their
upstream responses); `RunReport` is what the host saw (log lines, each
request's outcome, the calls it had to answer UNIMPLEMENTED), from which the
command prints a summary and a scenario checks its expectations.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from wasiport.runtime.proxywasm.abi import HeaderPairs, LogLevel


class HostProfile(enum.Enum):
    """Which gateway the host behaves like."""

    SPEC = "spec"  # proxy-wasm ABI 0.2.1 as written: on_vm_start, ticks, body callbacks per chunk
    APISIX = "apisix"  # api7/wasm-nginx-module: no on_vm_start, no ticks, body callbacks only when asked for


@dataclass(frozen=True)
class UpstreamResponse:
    status: int = 200
    headers: HeaderPairs = field(default_factory=list)
    body: tuple[bytes, ...] = ()  # chunks


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: HeaderPairs = field(default_factory=list)
    body: tuple[bytes, ...] = ()  # chunks; each is one proxy_on_request_body call (spec profile)
    response: UpstreamResponse = field(default_factory=UpstreamResponse)
    name: str = ""  # for reports; "METHOD PATH" by default

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


@dataclass(frozen=True)
class PluginRun:
    plugin_config: bytes = b""
    vm_config: bytes = b""
    profile: HostProfile = HostProfile.SPEC
    requests: tuple[HttpRequest, ...] = ()
    ticks: int = 1  # on_tick calls after configure when the plugin sets a period (spec profile)
    max_tick_wait: float = 1.0  # seconds: longer periods are shortened to this
    log_level: LogLevel = LogLevel.TRACE  # what proxy_get_log_level answers
    plugin_name: str = "plugin"
    upstream: str | None = None  # "host:port": send each request to this real HTTP server instead of `response`


@dataclass(frozen=True)
class LogRecord:
    level: LogLevel
    context_id: int
    message: str
    request_index: int | None  # which request was running, None during start-up and shutdown

    def render(self) -> str:
        return f"[{self.level.name.lower()} ctx={self.context_id}] {self.message}"


@dataclass
class LocalResponse:
    status: int
    details: str
    body: bytes
    headers: HeaderPairs


@dataclass
class RequestOutcome:
    """What one request came to: the response the client would get, and how."""

    request: HttpRequest
    context_id: int
    status: int | None = None  # None when the plugin paused it and never resumed
    response_headers: HeaderPairs = field(default_factory=list)
    response_body: bytes = b""
    upstream_headers: HeaderPairs = field(default_factory=list)  # request headers as sent upstream
    upstream_body: bytes = b""
    local_response: LocalResponse | None = None
    reached_upstream: bool = False
    stalled: str = ""  # why the request stopped without a response
    actions: list[tuple[str, int]] = field(default_factory=list)  # (callback, action returned)
    closed: bool = False  # proxy_close_stream


class Phase(enum.Enum):
    INITIALIZE = "_initialize"
    VM_START = "proxy_on_vm_start"
    CONFIGURE = "proxy_on_configure"
    TICK = "proxy_on_tick"
    REQUEST = "request"
    SHUTDOWN = "shutdown"

    @property
    def is_start(self) -> bool:
        return self in (Phase.INITIALIZE, Phase.VM_START, Phase.CONFIGURE)


@dataclass
class RunReport:
    abi_version: str = ""
    logs: list[LogRecord] = field(default_factory=list)
    requests: list[RequestOutcome] = field(default_factory=list)
    unimplemented: list[str] = field(default_factory=list)  # each import once, in first-call order
    phase: Phase = Phase.INITIALIZE  # where the plugin is (where it stopped, after a trap)
    callback: str = ""  # the export running when it stopped
    refused: str = ""  # "proxy_on_configure returned false", ...
    ticks: int = 0
    tick_period_ms: int = 0
    http_calls: int = 0
    notes: list[str] = field(default_factory=list)

    def last_critical(self) -> str:
        """The last CRITICAL log line: the Rust SDK's panic hook logs the panic message there."""
        for record in reversed(self.logs):
            if record.level is LogLevel.CRITICAL:
                return record.message
        return ""
