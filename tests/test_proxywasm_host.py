"""The proxy-wasm host with plugins written against the raw ABI (WAT, compiled by wasmtime).

- `hostile.wat` hands the host bad pointers, absurd sizes and unknown enums in
  every call and logs the statuses it got back: each must be the documented
  status, never a host traceback; the same with no allocator at all.
- `lifecycle.wat` logs every callback: the order of the lifecycle in the spec
  and APISIX profiles, refusals and traps with their exit codes, local
  responses, and scenario files (passing, and failing with a diff-like report).
"""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.support.cli import run_wasiport
from wasiport.runtime import RunConfig
from wasiport.runtime.proxywasm import (
    EXIT_REFUSED,
    EXIT_START_FAILED,
    HostProfile,
    HttpRequest,
    LogRecord,
    PluginRun,
    Status,
    UpstreamResponse,
    parse_map,
    run_plugin,
    serialize_map,
)
from wasiport.runtime.proxywasm.abi import MapFormatError

# Each test runs twice: with the C host calls in front (hotpath.c), then with Python alone.
pytestmark = pytest.mark.usefixtures("host_call_paths")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "proxywasm"
BOGUS_ALLOCATOR = '(func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0xffffff00))'


def compile_wat(tmp_path: Path, name: str, **fills: str) -> Path:
    text = (FIXTURES / f"{name}.wat").read_text()
    for key, value in fills.items():
        text = text.replace("{{" + key + "}}", value)
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    return path


def run_quietly(path: Path, run: PluginRun, **config) -> tuple:
    logs: list[LogRecord] = []
    result = run_plugin(path, run, RunConfig(capture_output=True, timeout=60, **config), log_sink=logs.append)
    return result, [record.message for record in logs]


def statuses(message: str) -> list[int]:
    """The hostile plugin's log line: one byte 'A' + status per call."""
    return [ord(char) - ord("A") for char in message]


# -- the header-map wire format -------------------------------------------------


def test_header_map_serialization_is_exact():
    pairs = [(b":path", b"/a"), (b"x-empty", b""), (b"k", b"v")]
    raw = serialize_map(pairs)
    assert raw == (
        b"\x03\x00\x00\x00"
        b"\x05\x00\x00\x00\x02\x00\x00\x00" b"\x07\x00\x00\x00\x00\x00\x00\x00" b"\x01\x00\x00\x00\x01\x00\x00\x00"
        b":path\x00/a\x00x-empty\x00\x00k\x00v\x00"
    )
    assert parse_map(raw) == pairs
    assert serialize_map([]) == b"\x00\x00\x00\x00" and parse_map(b"") == []


@pytest.mark.parametrize(
    "raw",
    [b"\x01", b"\xff\xff\xff\xff\x01\x00\x00\x00", b"\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00ab"],
)
def test_malformed_header_maps_are_rejected_not_crashed_on(raw):
    with pytest.raises(MapFormatError):
        parse_map(raw)


# -- hostile guests -----------------------------------------------------------------

CONFIGURE_STATUSES = [
    Status.INVALID_MEMORY_ACCESS,  # proxy_log: message outside memory
    Status.BAD_ARGUMENT,  # proxy_log: level 99
    Status.INVALID_MEMORY_ACCESS,  # get_buffer_bytes: out-pointer at the end of memory
    Status.INVALID_MEMORY_ACCESS,  # get_buffer_bytes: the allocator answers a pointer outside memory
    Status.BAD_ARGUMENT,  # get_buffer_bytes: buffer type 99
    Status.BAD_ARGUMENT,  # get_buffer_bytes: start 0xffffffff
    Status.INVALID_MEMORY_ACCESS,  # set_buffer_bytes: data outside memory
    Status.NOT_FOUND,  # get_header_map_pairs: no request during configure
    Status.INVALID_MEMORY_ACCESS,  # get_property: path outside memory
    Status.INVALID_MEMORY_ACCESS,  # set_property: path of 4 GiB
    Status.INVALID_MEMORY_ACCESS,  # get_current_time_nanoseconds
    Status.INVALID_MEMORY_ACCESS,  # get_log_level
    Status.BAD_ARGUMENT,  # set_effective_context(999)
    Status.UNIMPLEMENTED,  # proxy_get_shared_data
    21,  # WASI sock_open with its out-pointer outside memory: FAULT, as for command modules
]
REQUEST_STATUSES = [
    Status.INVALID_MEMORY_ACCESS,  # get_header_map_pairs: out-pointer outside memory
    Status.INVALID_MEMORY_ACCESS,  # get_header_map_value: key outside memory
    Status.NOT_FOUND,  # get_header_map_value: no such header
    Status.INVALID_MEMORY_ACCESS,  # add_header_map_value: key of 4 GiB
    Status.SERIALIZATION_FAILURE,  # set_header_map_pairs: 0xffffffff pairs in 12 bytes
    Status.BAD_ARGUMENT,  # remove_header_map_value: map type 77
    Status.INVALID_MEMORY_ACCESS,  # get_header_map_size
    Status.INVALID_MEMORY_ACCESS,  # send_local_response: details outside memory
    Status.BAD_ARGUMENT,  # send_local_response: status 5
    Status.BAD_ARGUMENT,  # continue_stream(99)
    Status.INVALID_MEMORY_ACCESS,  # http_call: upstream outside memory
    Status.SERIALIZATION_FAILURE,  # http_call: malformed header map
    Status.INVALID_MEMORY_ACCESS,  # http_call: token out-pointer outside memory
]


def test_hostile_calls_get_status_codes_never_a_host_error(tmp_path):
    plugin = compile_wat(tmp_path, "hostile", ALLOCATOR=BOGUS_ALLOCATOR)
    result, messages = run_quietly(plugin, PluginRun(plugin_config=b"abc", requests=(HttpRequest("GET", "/"),)))
    assert result.exit_code == 0, result.message
    assert result.outcome.host_error is None
    assert statuses(messages[0]) == CONFIGURE_STATUSES
    assert statuses(messages[1]) == REQUEST_STATUSES
    assert result.report.unimplemented == ["proxy_get_shared_data"]
    assert result.report.requests[0].status == 200  # the request still went through


def test_a_plugin_without_an_allocator_gets_internal_failure(tmp_path):
    plugin = compile_wat(tmp_path, "hostile", ALLOCATOR="")
    result, messages = run_quietly(plugin, PluginRun(plugin_config=b"abc", requests=(HttpRequest("GET", "/"),)))
    assert result.exit_code == 0 and result.outcome.host_error is None
    expected = list(CONFIGURE_STATUSES)
    expected[3] = Status.INTERNAL_FAILURE  # the host cannot hand the configuration over
    assert statuses(messages[0]) == expected
    assert any("no proxy_on_memory_allocate" in note for note in result.report.notes)


# -- the lifecycle -------------------------------------------------------------------

STARTS = "(i32.const 1)"
CONTINUES = "(i32.const 0)"
REQUEST_CALLBACKS = ["context_create", "request_headers", "request_body", "response_headers", "response_body", "done", "log", "delete"]


def test_spec_profile_runs_vm_start_ticks_and_every_body_chunk(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE="(drop (call $tick_period (i32.const 10))) " + STARTS, HEADERS=CONTINUES)
    request = HttpRequest("POST", "/x", body=(b"one", b"two"), response=UpstreamResponse(201, [(b"x-up", b"1")], (b"ok",)))
    result, messages = run_quietly(plugin, PluginRun(requests=(request,), ticks=2))
    assert result.exit_code == 0, result.message
    assert messages[:6] == ["initialize", "context_create", "vm_start", "configure", "tick", "tick"]
    body_calls = ["request_body", "request_body"]  # one per chunk
    assert messages[6:] == ["context_create", "request_headers", *body_calls, *REQUEST_CALLBACKS[3:], "done", "delete"]
    outcome = result.report.requests[0]
    assert outcome.status == 201 and outcome.upstream_body == b"onetwo" and outcome.response_body == b"ok"
    assert (b"x-plugin", b"seen") in outcome.response_headers and (b"x-up", b"1") in outcome.response_headers


def test_apisix_profile_has_no_vm_start_no_ticks_and_one_body_call(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    request = HttpRequest("POST", "/x", body=(b"one", b"two"), response=UpstreamResponse(200, [], (b"ok",)))
    result, messages = run_quietly(plugin, PluginRun(requests=(request,), profile=HostProfile.APISIX))
    assert result.exit_code == 0, result.message
    assert messages[:3] == ["initialize", "context_create", "configure"]
    # the plugin set wasm_process_req_body, not wasm_process_resp_body: one request body call only
    assert messages[3:] == ["context_create", "request_headers", "request_body", "response_headers", "done", "log", "delete", "done", "delete"]


def test_apisix_profile_answers_tick_period_unimplemented(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE="(drop (call $tick_period (i32.const 10))) " + STARTS, HEADERS=CONTINUES)
    result, messages = run_quietly(plugin, PluginRun(profile=HostProfile.APISIX))
    assert result.exit_code == 0
    assert "tick" not in messages
    assert result.report.unimplemented == ["proxy_set_tick_period_milliseconds"]


def test_configure_returning_false_is_a_refusal(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE="(i32.const 0)", HEADERS=CONTINUES)
    result, messages = run_quietly(plugin, PluginRun(requests=(HttpRequest("GET", "/"),)))
    assert result.exit_code == EXIT_REFUSED
    assert result.message == "the plugin refused to start: proxy_on_configure returned false"
    assert "request_headers" not in messages


def test_a_trap_while_starting_and_one_in_a_request_have_different_exit_codes(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE="unreachable", HEADERS=CONTINUES)
    result, _ = run_quietly(plugin, PluginRun())
    assert result.exit_code == EXIT_START_FAILED
    assert result.message.startswith("the plugin trapped in proxy_on_configure:")

    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS="unreachable")
    result, _ = run_quietly(plugin, PluginRun(requests=(HttpRequest("GET", "/"),)))
    assert result.exit_code == 134
    assert result.message.startswith("the plugin trapped in proxy_on_request_headers:")


LOCAL_RESPONSE = (
    "(drop (call $local (i32.const 403) (i32.const 440) (i32.const 6) (i32.const 440) (i32.const 6)"
    " (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 1)"
)


def test_a_local_response_replaces_the_upstream(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=LOCAL_RESPONSE)
    request = HttpRequest("GET", "/", body=(b"never read",))
    result, messages = run_quietly(plugin, PluginRun(requests=(request,)))
    outcome = result.report.requests[0]
    assert outcome.status == 403 and outcome.response_body == b"denied"
    assert outcome.local_response is not None and outcome.local_response.details == "denied"
    assert not outcome.reached_upstream and "request_body" not in messages


def test_a_closed_stream_gets_no_response(tmp_path):
    close = "(drop (call $close (i32.const 0))) (i32.const 0)"
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=close)
    result, messages = run_quietly(plugin, PluginRun(requests=(HttpRequest("GET", "/"),)))
    outcome = result.report.requests[0]
    assert outcome.status is None and outcome.closed and not outcome.reached_upstream
    assert outcome.stalled == "the plugin closed the stream (proxy_close_stream) in proxy_on_request_headers"
    assert messages[-5:] == ["done", "log", "delete", "done", "delete"]


def test_paused_without_resume_is_reported(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS="(i32.const 1)")
    result, _ = run_quietly(plugin, PluginRun(requests=(HttpRequest("GET", "/"),)))
    outcome = result.report.requests[0]
    assert outcome.status is None
    assert outcome.stalled == "proxy_on_request_headers returned Pause and the plugin never resumed the stream"


@pytest.fixture
def echo_upstream() -> Iterator[tuple[int, list[tuple[str, str, bytes]]]]:
    """A real HTTP upstream that records (method, path, body) and answers 202 with a body."""
    seen: list[tuple[str, str, bytes]] = []

    class Upstream(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append((self.command, self.path, body))
            answer = b"upstream got " + body
            self.send_response(202)
            self.send_header("content-length", str(len(answer)))
            self.send_header("x-from", "upstream")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_requests_go_on_to_a_real_upstream(tmp_path, echo_upstream):
    port, seen = echo_upstream
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    request = HttpRequest("POST", "/orders?id=1", body=(b"two ", b"apples"))
    result, _ = run_quietly(plugin, PluginRun(requests=(request,), upstream=f"127.0.0.1:{port}"))
    assert seen == [("POST", "/orders?id=1", b"two apples")]
    outcome = result.report.requests[0]
    assert outcome.status == 202 and outcome.response_body == b"upstream got two apples"
    assert (b"x-from", b"upstream") in outcome.response_headers and (b"x-plugin", b"seen") in outcome.response_headers


def test_an_upstream_outside_the_allow_list_is_a_502_and_reported(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    denied = []
    result, _ = run_quietly(plugin, PluginRun(requests=(HttpRequest("GET", "/"),), upstream="10.255.0.1:80"), on_denied=denied.append)
    assert result.report.requests[0].status == 502
    assert [d.message() for d in denied] == ["denied connect to 10.255.0.1:80 (allow it with --allow 10.255.0.1:80)"]


# -- the command line and scenarios -----------------------------------------------------


def test_command_line_runs_requests_and_prints_a_summary(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    done = run_wasiport(None, "run", str(plugin), "--request", "GET /a", "--request", "post /b", "--header", "X-Trace: 1", "--response-status", "204")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["GET /a -> 204 (upstream)", "POST /b -> 204 (upstream)"]
    assert "[info ctx=1] configure" in done.stderr and "[info ctx=3] request_headers" in done.stderr


def test_command_line_rejects_plugin_options_for_a_command_module(tmp_path):
    command = tmp_path / "cmd.wasm"
    command.write_bytes(wasmtime.wat2wasm('(module (func (export "_start")))'))
    done = run_wasiport(None, "run", str(command), "--request", "GET /")
    assert done.returncode == 2
    assert "--request are for proxy-wasm plugins" in done.stderr and "Traceback" not in done.stderr


SCENARIO = """
host = "spec"
plugin_config = "anything"
ticks = 0

[start]
logs = ["initialize", {level = "info", text = "configure"}]

[[request]]
name = "plain"
method = "GET"
path = "/a"
response = { status = 200, body = "up" }
[request.expect]
status = 200
local_response = false
logs = ["request_headers", {re = "^response_head"}]
not_logs = ["tick"]
response_headers = { "x-plugin" = "seen" }
body = "up"
"""


def test_a_scenario_that_holds_passes(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    done = run_wasiport(None, "run", str(plugin), "--scenario", str(scenario))
    assert done.returncode == 0, done.stderr
    assert f"scenario {scenario}: 1 request(s), all expectations met" in done.stdout


def test_a_scenario_that_fails_prints_a_diff_and_exits_1(tmp_path):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=LOCAL_RESPONSE)
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    done = run_wasiport(None, "run", str(plugin), "--scenario", str(scenario))
    assert done.returncode == 1
    report = done.stderr[done.stderr.index("wasiport: scenario"):]
    assert "request 1 'plain':" in report
    assert "  - expected status 200\n  + actual   status 403" in report
    assert "  - expected no local response\n  + actual   a local response 403 (denied)" in report
    assert "  - expected body b'up'\n  + actual   body b'denied'" in report


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host = 'envoy'", "host = 'envoy': expected \"spec\" or \"apisix\""),
        ("[[request]]\nmethd = 'GET'", "request 1: unknown key 'methd'"),
        ("[[request]]\n[request.expect]\nlogs = [{level = 'loud', text = 'x'}]", "level must be one of"),
        ("[[request]]\n[request.expect]\nlogs = [{re = '('}]", "re '('"),
        ("plugin_config = 'a'\nplugin_config_file = 'b'", "give plugin_config or plugin_config_file, not both"),
    ],
)
def test_bad_scenarios_are_one_sentence_errors(tmp_path, text, message):
    plugin = compile_wat(tmp_path, "lifecycle", CONFIGURE=STARTS, HEADERS=CONTINUES)
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    done = run_wasiport(None, "run", str(plugin), "--scenario", str(scenario))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
