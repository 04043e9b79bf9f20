"""Drives a proxy-wasm plugin through its lifecycle (ABI 0.2.1), as a gateway would.

    _initialize -> proxy_on_context_create(root) -> proxy_on_vm_start -> proxy_on_configure
    -> proxy_on_tick x N -> per request: context_create, request headers, request body,
       (upstream) response headers, response body, done, log, delete -> root done, delete

`ProxyWasmProgram` is a `GuestProgram` for the command runner: the runner
sets up WASI and WasmEdge's socket functions exactly as for a command module
(same allow-list, errnos and pointer checks), this module adds the `env`
host functions and calls the callbacks. A trap propagates to the runner;
`report.phase` and `report.callback` say where it happened.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import wasmtime

from wasiport.errors import UserError
from wasiport.runtime.hostcall import define_host_function
from wasiport.runtime.policy import PolicyDecision
from wasiport.runtime.proxywasm.abi import (
    ABI_MARKER_PREFIX,
    ENV_MODULE,
    SUPPORTED_ABI_MARKERS,
    Action,
    BufferType,
    HeaderPairs,
    MapType,
    StreamType,
)
from wasiport.runtime.proxywasm.host import HOST_FUNCTIONS, LogSink, ProxyWasmHost, parse_upstream, stderr_log_sink
from wasiport.runtime.proxywasm.httpcall import CallResult, perform
from wasiport.runtime.proxywasm.model import (
    HostProfile,
    HttpRequest,
    Phase,
    PluginRun,
    RequestOutcome,
    RunReport,
    UpstreamResponse,
)
from wasiport.runtime.proxywasm.state import HeaderMap, HostState, PendingCall
from wasiport.runtime.runner import GuestHost

ROOT_CONTEXT_ID = 1
MAX_CALLOUTS_PER_CALLBACK = 64  # a plugin that dispatches calls from every call response stops here
# APISIX decides whether body callbacks run from these properties (nginx variables).
APISIX_REQUEST_BODY_PROPERTY = ("wasm_process_req_body",)
APISIX_RESPONSE_BODY_PROPERTY = ("wasm_process_resp_body",)

HttpPerformer = Callable[[PendingCall], CallResult]


def abi_marker(module: wasmtime.Module) -> str | None:
    """The module's `proxy_abi_version_*` export, if it is a proxy-wasm plugin."""
    for export in module.exports:
        if export.name.startswith(ABI_MARKER_PREFIX):
            return export.name
    return None


class ProxyWasmProgram:
    """One plugin, one root context, the requests of `run`."""

    def __init__(
        self,
        path: Path,
        run: PluginRun,
        *,
        log_sink: LogSink = stderr_log_sink,
        perform_call: HttpPerformer = perform,
    ) -> None:
        self.path = path
        self.settings = run
        self.report = RunReport()
        self.state = HostState(self.report, root_id=ROOT_CONTEXT_ID)
        self.log_sink = log_sink
        self.perform_call = perform_call
        self.host: ProxyWasmHost | None = None
        self._exports: dict[str, wasmtime.Func] = {}
        self._store: wasmtime.Store | None = None
        self._guest: GuestHost | None = None
        self._next_context = ROOT_CONTEXT_ID + 1

    # -- GuestProgram ------------------------------------------------------------

    def define_imports(self, linker: wasmtime.Linker, module: wasmtime.Module, host: GuestHost) -> None:
        marker = abi_marker(module)
        if marker is None:
            raise UserError(f"{self.path}: not a proxy-wasm plugin (no proxy_abi_version_* export)")
        if marker not in SUPPORTED_ABI_MARKERS:
            raise UserError(
                f"{self.path}: proxy-wasm ABI {marker.removeprefix(ABI_MARKER_PREFIX).replace('_', '.')} "
                "is not supported (wasiport runs ABI 0.2.0 and 0.2.1)"
            )
        self.report.abi_version = marker.removeprefix(ABI_MARKER_PREFIX).replace("_", ".")
        sockets = host.sockets

        def denied(decision: PolicyDecision) -> None:
            sockets.denied.append(decision)
            sockets.on_denied(decision)

        self.host = ProxyWasmHost(
            host.memory, self.state, self.settings.profile, sockets.policy, denied,
            log_sink=self.log_sink, log_level=self.settings.log_level,
        )
        for item in module.imports:
            if item.module != ENV_MODULE or not isinstance(item.type, wasmtime.FuncType):
                continue
            params = [str(t) for t in item.type.params]
            results = [str(t) for t in item.type.results]
            if any(t != "i32" for t in params) or results != ["i32"]:
                continue  # left to the runner: a trap, listed as unsupported
            name = item.name or ""
            implementation = self._implementation(name, len(params))
            define_host_function(linker, ENV_MODULE, name, len(params), True, implementation, host.failures)

    def _implementation(self, name: str, nparams: int) -> Callable[..., int]:
        assert self.host is not None
        if HOST_FUNCTIONS.get(name) == nparams:
            return getattr(self.host, name)
        host = self.host
        return lambda *args: host.answer_unimplemented(name)

    def run(self, store: wasmtime.Store, instance: wasmtime.Instance, host: GuestHost) -> None:
        assert self.host is not None
        self._store, self._guest = store, host
        exports = instance.exports(store)
        self._exports = {name: item for name, item in exports.items() if isinstance(item, wasmtime.Func)}
        allocator = self._exports.get("proxy_on_memory_allocate") or self._exports.get("malloc")
        self.host.allocator.store, self.host.allocator.function = store, allocator
        if allocator is None:
            self.report.notes.append("the plugin exports no proxy_on_memory_allocate or malloc: "
                                     "host calls that return data answer INTERNAL_FAILURE")
        if not self._start():
            return
        self._tick()
        self.report.phase = Phase.REQUEST
        for index, request in enumerate(self.settings.requests):
            if host.interrupt.fired:
                return
            self._exchange(index, request)
        self._shutdown()

    # -- calling the guest ------------------------------------------------------

    def _call(self, name: str, *args: int) -> int | None:
        """Call an export if the plugin has it; its i32 result (None for none or a missing export)."""
        function = self._exports.get(name)
        if function is None:
            return None
        self.report.callback = name
        assert self._store is not None
        result = function(self._store, *args)
        return result if isinstance(result, int) else None

    def _enter(self, context_id: int) -> None:
        self.state.effective_context = context_id

    # -- start-up ------------------------------------------------------------------

    def _start(self) -> bool:
        report, settings, state = self.report, self.settings, self.state
        report.phase = Phase.INITIALIZE
        if "_initialize" in self._exports:
            self._call("_initialize")
        elif "_start" in self._exports:
            self._call("_start")
        state.contexts.add(ROOT_CONTEXT_ID)
        self._enter(ROOT_CONTEXT_ID)
        self._call("proxy_on_context_create", ROOT_CONTEXT_ID, 0)
        state.buffers[BufferType.VM_CONFIGURATION] = bytearray(settings.vm_config)
        state.buffers[BufferType.PLUGIN_CONFIGURATION] = bytearray(settings.plugin_config)
        state.properties[("plugin_name",)] = settings.plugin_name.encode()
        state.properties[("plugin_root_id",)] = settings.plugin_name.encode()
        if settings.profile is HostProfile.SPEC:
            report.phase = Phase.VM_START
            self._enter(ROOT_CONTEXT_ID)
            if self._call("proxy_on_vm_start", ROOT_CONTEXT_ID, len(settings.vm_config)) == 0:
                report.refused = "proxy_on_vm_start returned false"
                return False
            self._callouts()
        report.phase = Phase.CONFIGURE
        self._enter(ROOT_CONTEXT_ID)
        if self._call("proxy_on_configure", ROOT_CONTEXT_ID, len(settings.plugin_config)) == 0:
            report.refused = "proxy_on_configure returned false"
            return False
        self._callouts()
        return True

    def _tick(self) -> None:
        """proxy_on_tick at the plugin's period, `ticks` times (spec profile; APISIX has no timers)."""
        settings, state = self.settings, self.state
        if settings.profile is not HostProfile.SPEC or state.tick_period_ms == 0 or "proxy_on_tick" not in self._exports:
            return
        self.report.phase = Phase.TICK
        assert self._guest is not None
        for _ in range(settings.ticks):
            wait = min(state.tick_period_ms / 1000, settings.max_tick_wait)
            if self._guest.interrupt.event.wait(wait) or state.tick_period_ms == 0:
                return
            self._enter(ROOT_CONTEXT_ID)
            self._call("proxy_on_tick", ROOT_CONTEXT_ID)
            self.report.ticks += 1
            self._callouts()

    def _shutdown(self) -> None:
        self.report.phase = Phase.SHUTDOWN
        self.state.request_index = None
        self._enter(ROOT_CONTEXT_ID)
        self._call("proxy_on_done", ROOT_CONTEXT_ID)
        self._call("proxy_on_delete", ROOT_CONTEXT_ID)

    # -- callouts -------------------------------------------------------------------

    def _callouts(self) -> None:
        """Perform the calls the last callback dispatched and deliver their responses."""
        state = self.state
        delivered = 0
        while state.pending_calls and delivered < MAX_CALLOUTS_PER_CALLBACK:
            call = state.pending_calls.pop(0)
            result = self.perform_call(call)
            if result.error:
                self.report.notes.append(f"proxy_http_call to {call.host}:{call.port} failed: {result.error}")
            saved = {kind: state.maps.get(kind) for kind in (MapType.HTTP_CALL_RESPONSE_HEADERS, MapType.HTTP_CALL_RESPONSE_TRAILERS)}
            state.maps[MapType.HTTP_CALL_RESPONSE_HEADERS] = HeaderMap(result.headers)
            state.maps[MapType.HTTP_CALL_RESPONSE_TRAILERS] = HeaderMap()
            state.buffers[BufferType.HTTP_CALL_RESPONSE_BODY] = bytearray(result.body)
            self._enter(call.context_id)
            self._call("proxy_on_http_call_response", call.context_id, call.token, len(result.headers), len(result.body), 0)
            delivered += 1
            for kind, previous in saved.items():
                if previous is None:
                    state.maps.pop(kind, None)
                else:
                    state.maps[kind] = previous
            state.buffers.pop(BufferType.HTTP_CALL_RESPONSE_BODY, None)
        if state.pending_calls:
            self.report.notes.append(f"{len(state.pending_calls)} proxy_http_call(s) not performed: "
                                     f"more than {MAX_CALLOUTS_PER_CALLBACK} from one callback")
            state.pending_calls.clear()

    # -- one request -----------------------------------------------------------------

    def _exchange(self, index: int, request: HttpRequest) -> None:
        state = self.state
        state.clear_stream()
        state.request_index = index
        context_id = self._next_context
        self._next_context += 1
        state.contexts.add(context_id)
        outcome = RequestOutcome(request, context_id)
        self.report.requests.append(outcome)
        self._enter(context_id)
        self._call("proxy_on_context_create", context_id, ROOT_CONTEXT_ID)
        self._set_request_properties(request)
        response = self._request_side(outcome, request)
        if response is not None:
            self._response_side(outcome, response)
        self._enter(context_id)
        self._call("proxy_on_done", context_id)
        self._call("proxy_on_log", context_id)
        self._call("proxy_on_delete", context_id)
        state.contexts.discard(context_id)

    def _set_request_properties(self, request: HttpRequest) -> None:
        path, _, query = request.path.partition("?")
        properties = self.state.properties
        for key in [key for key in properties if key and key[0] in ("request", "response")]:
            del properties[key]
        for name in (APISIX_REQUEST_BODY_PROPERTY, APISIX_RESPONSE_BODY_PROPERTY):
            properties.pop(name, None)
        properties[("request", "path")] = request.path.encode()
        properties[("request", "url_path")] = path.encode()
        properties[("request", "query")] = query.encode()
        properties[("request", "method")] = request.method.encode()
        properties[("request", "scheme")] = b"http"
        properties[("request", "host")] = _authority(request).encode()

    def _request_side(self, outcome: RequestOutcome, request: HttpRequest) -> UpstreamResponse | None:
        """Request callbacks; the response to run the response side with (None: the request stalled)."""
        state = self.state
        headers = [(b":method", request.method.encode()), (b":path", request.path.encode()),
                   (b":authority", _authority(request).encode()), (b":scheme", b"http"), *request.headers]
        state.maps[MapType.HTTP_REQUEST_HEADERS] = HeaderMap(headers)
        state.maps[MapType.HTTP_REQUEST_TRAILERS] = HeaderMap()
        chunks = [chunk for chunk in request.body]
        action = self._call("proxy_on_request_headers", outcome.context_id, len(headers), int(not chunks))
        if not self._go_on(outcome, "proxy_on_request_headers", action, StreamType.HTTP_REQUEST):
            return self._local_or_stall(outcome)
        body = bytearray()
        for chunk, end in self._body_calls(chunks, APISIX_REQUEST_BODY_PROPERTY):
            state.buffers[BufferType.HTTP_REQUEST_BODY] = bytearray(chunk)
            action = self._call("proxy_on_request_body", outcome.context_id, len(chunk), int(end))
            body += state.buffers[BufferType.HTTP_REQUEST_BODY]
            if not self._go_on(outcome, "proxy_on_request_body", action, StreamType.HTTP_REQUEST):
                return self._local_or_stall(outcome)
        if not self._body_callbacks_run(APISIX_REQUEST_BODY_PROPERTY):
            body = bytearray(b"".join(chunks))
        outcome.upstream_headers = list(state.maps[MapType.HTTP_REQUEST_HEADERS].pairs)
        outcome.upstream_body = bytes(body)
        outcome.reached_upstream = True
        if self.settings.upstream is None:
            return request.response
        return self._from_upstream(outcome, self.settings.upstream)

    def _from_upstream(self, outcome: RequestOutcome, upstream: str) -> UpstreamResponse:
        """Send the request as the plugin left it to a real server; 502 when it cannot be reached."""
        assert self.host is not None
        address = parse_upstream(upstream)
        allowed = self.host.allowed_address(*address, action="connect") if address else None
        if address is None or not isinstance(allowed, str):
            self.report.notes.append(f"upstream {upstream}: not reachable under the network policy")
            return UpstreamResponse(502)
        call = PendingCall(0, outcome.context_id, allowed, address[1], outcome.upstream_headers, outcome.upstream_body, 0)
        answer = self.perform_call(call)
        if answer.error:
            self.report.notes.append(f"upstream {upstream}: {answer.error}")
            return UpstreamResponse(502)
        status = int(answer.headers[0][1])
        return UpstreamResponse(status, answer.headers[1:], (answer.body,) if answer.body else ())

    def _local_or_stall(self, outcome: RequestOutcome) -> UpstreamResponse | None:
        local = self.state.local_response
        if local is None:
            return None
        outcome.local_response = local
        self.state.local_response = None
        return UpstreamResponse(local.status, list(local.headers), (local.body,) if local.body else ())

    def _response_side(self, outcome: RequestOutcome, response: UpstreamResponse) -> None:
        state = self.state
        state.resumed.clear()
        status_header = [(b":status", str(response.status).encode())]
        state.maps[MapType.HTTP_RESPONSE_HEADERS] = HeaderMap(status_header + list(response.headers))
        state.maps[MapType.HTTP_RESPONSE_TRAILERS] = HeaderMap()
        chunks = list(response.body)
        count = len(state.maps[MapType.HTTP_RESPONSE_HEADERS])
        action = self._call("proxy_on_response_headers", outcome.context_id, count, int(not chunks))
        stopped = not self._go_on(outcome, "proxy_on_response_headers", action, StreamType.HTTP_RESPONSE)
        body = bytearray()
        if not stopped:
            for chunk, end in self._body_calls(chunks, APISIX_RESPONSE_BODY_PROPERTY):
                state.buffers[BufferType.HTTP_RESPONSE_BODY] = bytearray(chunk)
                action = self._call("proxy_on_response_body", outcome.context_id, len(chunk), int(end))
                body += state.buffers[BufferType.HTTP_RESPONSE_BODY]
                if not self._go_on(outcome, "proxy_on_response_body", action, StreamType.HTTP_RESPONSE):
                    stopped = True
                    break
            if not self._body_callbacks_run(APISIX_RESPONSE_BODY_PROPERTY):
                body = bytearray(b"".join(chunks))
        self._finish(outcome, body, stopped)

    def _finish(self, outcome: RequestOutcome, body: bytearray, stopped: bool) -> None:
        state = self.state
        if state.local_response is not None:  # sent from a response callback: it replaces the response
            local = state.local_response
            outcome.local_response = local
            outcome.status, outcome.response_headers, outcome.response_body = local.status, list(local.headers), local.body
            return
        if outcome.closed:  # the client gets no response at all
            return
        if stopped and not outcome.stalled:
            outcome.stalled = "the response was paused and never resumed"
        pairs = state.maps[MapType.HTTP_RESPONSE_HEADERS].pairs
        status = next((value for key, value in pairs if key == b":status"), b"")
        outcome.status = int(status) if status.isdigit() else None
        outcome.response_headers = [(key, value) for key, value in pairs if key != b":status"]
        outcome.response_body = bytes(body)

    def _body_calls(self, chunks: list[bytes], apisix_property: tuple[str, ...]) -> list[tuple[bytes, bool]]:
        """(chunk, end_of_stream) per body callback: every chunk (spec), or the whole body once
        when the plugin asked for it in its headers callback (APISIX)."""
        if not self._body_callbacks_run(apisix_property):
            return []
        if self.settings.profile is HostProfile.APISIX:
            return [(b"".join(chunks), True)] if chunks else []
        return [(chunk, index == len(chunks) - 1) for index, chunk in enumerate(chunks)]

    def _body_callbacks_run(self, apisix_property: tuple[str, ...]) -> bool:
        if self.settings.profile is HostProfile.SPEC:
            return True
        return bool(self.state.properties.get(apisix_property))

    def _go_on(self, outcome: RequestOutcome, callback: str, action: int | None, stream: StreamType) -> bool:
        """Whether processing continues after `callback` returned `action`.

        Calls the plugin dispatched are performed first; a paused stream goes
        on when a call response resumes it (proxy_continue_stream); a local
        response ends the request side."""
        state = self.state
        if action is not None:
            outcome.actions.append((callback, action))
        self._callouts()
        self._enter(outcome.context_id)  # a call response or set_effective_context may have moved it
        if state.local_response is not None:
            return False
        if state.closed:
            outcome.closed = True
            outcome.stalled = f"the plugin closed the stream (proxy_close_stream) in {callback}"
            return False
        if action != Action.PAUSE or stream in state.resumed:
            state.resumed.discard(stream)
            return True
        outcome.stalled = f"{callback} returned Pause and the plugin never resumed the stream"
        return False


def _authority(request: HttpRequest) -> str:
    for key, value in request.headers:
        if key.lower() == b"host":
            return value.decode("latin-1")
    return "localhost"


def parse_header(text: str) -> tuple[bytes, bytes]:
    """`name: value` as given on the command line (the name lower-cased, as HTTP/2 and proxy-wasm have it)."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or name.strip().startswith(":"):
        raise UserError(f"header {text!r}: expected 'name: value'")
    return name.strip().lower().encode("latin-1"), value.strip().encode("utf-8")


def header_pairs(items: list[str]) -> HeaderPairs:
    return [parse_header(item) for item in items]


def summary_lines(report: RunReport) -> list[str]:
    """One line per request: what the client would have received, and how."""
    lines = []
    for outcome in report.requests:
        label = outcome.request.label
        if outcome.status is None:
            lines.append(f"{label} -> no response ({outcome.stalled or 'the plugin stopped'})")
        elif outcome.local_response is not None:
            details = f": {outcome.local_response.details}" if outcome.local_response.details else ""
            lines.append(f"{label} -> {outcome.status} (local response{details})")
        else:
            lines.append(f"{label} -> {outcome.status} (upstream)")
    return lines
