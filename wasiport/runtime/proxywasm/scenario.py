"""Scenario files: a plugin's requests and what must happen, checked after a run.

A scenario is TOML (the format is documented in docs/proxy-wasm-scenarios.md)::

    host = "apisix"                      # or "spec" (default)
    plugin_config = '{"greeting": "hi"}' # or plugin_config_file = "conf.json" (relative to the scenario)
    allow = ["127.0.0.1:6379"]
    upstream = "127.0.0.1:8080"          # optional: a real upstream instead of each request's `response`

    [start]                              # expectations on start-up (_initialize .. on_configure)
    logs = ["configured", {level = "warn", re = "^slow"}]

    [[request]]
    method = "POST"
    path = "/orders?id=7"
    headers = { "content-type" = "text/plain" }
    body = ["chunk one", "chunk two"]
    response = { status = 200, headers = { "x-upstream" = "1" }, body = "ok" }
    [request.expect]
    status = 200
    local_response = false
    logs = ["content-type: text/plain"]
    not_logs = ["error"]
    response_headers = { "x-plugin" = "seen" }   # as the client would receive them; "" = absent
    upstream_headers = { "x-added" = "1" }       # as forwarded upstream
    body = "ok"                                   # the response body the client gets

Log expectations match, in order, log lines written while that request ran
(or during start-up for [start]): a string matches as a substring, a table
as `{text|re, level}`. Parsing validates everything up front (UserError with
the key's place), so a typo never turns into a passing check.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wasiport.errors import UserError
from wasiport.runtime.proxywasm.abi import HeaderPairs, LogLevel
from wasiport.runtime.proxywasm.host import LogSink, parse_upstream, stderr_log_sink
from wasiport.runtime.proxywasm.model import (
    HostProfile,
    HttpRequest,
    LogRecord,
    PluginRun,
    RequestOutcome,
    RunReport,
    UpstreamResponse,
)
from wasiport.runtime.proxywasm.plugin import PluginResult, run_plugin
from wasiport.runtime.runner import RunConfig

_TOP_KEYS = {"host", "plugin_config", "plugin_config_file", "vm_config", "vm_config_file", "allow", "ticks", "start", "request", "plugin_name", "upstream"}
_REQUEST_KEYS = {"name", "method", "path", "headers", "body", "response", "expect"}
_RESPONSE_KEYS = {"status", "headers", "body"}
_EXPECT_KEYS = {"status", "local_response", "logs", "not_logs", "response_headers", "upstream_headers", "body"}
_START_KEYS = {"logs", "not_logs", "refused"}


@dataclass(frozen=True)
class LogExpectation:
    text: str = ""
    pattern: re.Pattern[str] | None = None
    level: LogLevel | None = None

    def matches(self, record: LogRecord) -> bool:
        if self.level is not None and record.level is not self.level:
            return False
        if self.pattern is not None:
            return self.pattern.search(record.message) is not None
        return self.text in record.message

    def describe(self) -> str:
        what = f"/{self.pattern.pattern}/" if self.pattern is not None else repr(self.text)
        return f"{self.level.name.lower()} {what}" if self.level is not None else what


@dataclass(frozen=True)
class Expectations:
    status: int | None = None
    local_response: bool | None = None
    logs: tuple[LogExpectation, ...] = ()
    not_logs: tuple[LogExpectation, ...] = ()
    response_headers: tuple[tuple[bytes, bytes], ...] = ()
    upstream_headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes | None = None
    refused: bool | None = None  # [start] only


@dataclass(frozen=True)
class Scenario:
    run: PluginRun
    allow: tuple[str, ...]
    start: Expectations
    requests: tuple[Expectations, ...]


EXIT_SCENARIO_FAILED = 1


@dataclass
class ScenarioRun:
    scenario: Scenario
    result: PluginResult
    mismatches: list[Mismatch]

    @property
    def exit_code(self) -> int:
        """The plugin's own failure first (3, 4, 134, ...), else 1 for a mismatch, else 0."""
        if self.result.exit_code:
            return self.result.exit_code
        return EXIT_SCENARIO_FAILED if self.mismatches else 0


@dataclass
class Mismatch:
    where: str  # "start-up" or 'request 2 "GET /x"'
    expected: str
    actual: str

    def render(self) -> list[str]:
        return [f"  - expected {self.expected}", f"  + actual   {self.actual}"]


def run_scenario(
    module: Path,
    scenario: Scenario,
    config: RunConfig = RunConfig(),
    *,
    log_sink: LogSink = stderr_log_sink,
) -> ScenarioRun:
    """Run the plugin through the scenario's requests and check its expectations."""
    config = replace(config, allow=config.allow + scenario.allow)
    result = run_plugin(module, scenario.run, config, log_sink=log_sink)
    return ScenarioRun(scenario, result, check_scenario(scenario, result.report))


# -- parsing ----------------------------------------------------------------------


def load_scenario(path: Path, profile_override: HostProfile | None = None) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read scenario {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: invalid TOML: {err}") from None
    return parse_scenario(data, path)


def parse_scenario(data: dict[str, Any], path: Path) -> Scenario:
    _check_keys(data, _TOP_KEYS, f"{path}")
    host = data.get("host", "spec")
    if host not in {profile.value for profile in HostProfile}:
        raise UserError(f"{path}: host = {host!r}: expected \"spec\" or \"apisix\"")
    requests = data.get("request", [])
    if not isinstance(requests, list):
        raise UserError(f"{path}: [[request]] must be an array of tables")
    parsed = [_request(item, f"{path}: request {index + 1}") for index, item in enumerate(requests)]
    ticks = data.get("ticks", 1)
    if not isinstance(ticks, int) or ticks < 0:
        raise UserError(f"{path}: ticks must be a whole number >= 0")
    run = PluginRun(
        plugin_config=_config_bytes(data, "plugin_config", path),
        vm_config=_config_bytes(data, "vm_config", path),
        profile=HostProfile(host),
        requests=tuple(request for request, _ in parsed),
        ticks=ticks,
        plugin_name=_string(data.get("plugin_name", "plugin"), f"{path}: plugin_name"),
        upstream=_upstream(data.get("upstream"), f"{path}: upstream"),
    )
    allow = data.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(item, str) for item in allow):
        raise UserError(f"{path}: allow must be a list of \"HOST:PORT\" strings")
    start = _expectations(data.get("start", {}), f"{path}: [start]", _START_KEYS)
    return Scenario(run, tuple(allow), start, tuple(expect for _, expect in parsed))


def _upstream(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if parse_upstream(_string(value, where)) is None:
        raise UserError(f"{where}: expected \"HOST:PORT\", got {value!r}")
    return value


def _config_bytes(data: dict[str, Any], key: str, path: Path) -> bytes:
    if key in data and f"{key}_file" in data:
        raise UserError(f"{path}: give {key} or {key}_file, not both")
    if f"{key}_file" in data:
        file = path.parent / _string(data[f"{key}_file"], f"{path}: {key}_file")
        try:
            return file.read_bytes()
        except OSError as err:
            raise UserError(f"{path}: {key}_file {file}: {err.strerror or err}") from None
    return _string(data.get(key, ""), f"{path}: {key}").encode()


def _request(item: Any, where: str) -> tuple[HttpRequest, Expectations]:
    if not isinstance(item, dict):
        raise UserError(f"{where}: must be a table")
    _check_keys(item, _REQUEST_KEYS, where)
    response = item.get("response", {})
    if not isinstance(response, dict):
        raise UserError(f"{where}: response must be a table")
    _check_keys(response, _RESPONSE_KEYS, f"{where}: response")
    status = response.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise UserError(f"{where}: response status must be a number from 100 to 999")
    request = HttpRequest(
        method=_string(item.get("method", "GET"), f"{where}: method"),
        path=_string(item.get("path", "/"), f"{where}: path"),
        headers=_headers(item.get("headers", {}), f"{where}: headers"),
        body=_chunks(item.get("body", []), f"{where}: body"),
        response=UpstreamResponse(status, _headers(response.get("headers", {}), f"{where}: response headers"),
                                  _chunks(response.get("body", []), f"{where}: response body")),
        name=_string(item.get("name", ""), f"{where}: name"),
    )
    return request, _expectations(item.get("expect", {}), f"{where}: expect", _EXPECT_KEYS)


def _expectations(item: Any, where: str, allowed: set[str]) -> Expectations:
    if not isinstance(item, dict):
        raise UserError(f"{where}: must be a table")
    _check_keys(item, allowed, where)
    status = item.get("status")
    if status is not None and not isinstance(status, int):
        raise UserError(f"{where}: status must be a number")
    body = item.get("body")
    return Expectations(
        status=status,
        local_response=_optional_bool(item.get("local_response"), f"{where}: local_response"),
        logs=tuple(_log_expectation(entry, f"{where}: logs") for entry in _list(item.get("logs", []), f"{where}: logs")),
        not_logs=tuple(_log_expectation(entry, f"{where}: not_logs") for entry in _list(item.get("not_logs", []), f"{where}: not_logs")),
        response_headers=tuple(_headers(item.get("response_headers", {}), f"{where}: response_headers")),
        upstream_headers=tuple(_headers(item.get("upstream_headers", {}), f"{where}: upstream_headers")),
        body=None if body is None else _string(body, f"{where}: body").encode(),
        refused=_optional_bool(item.get("refused"), f"{where}: refused"),
    )


def _log_expectation(entry: Any, where: str) -> LogExpectation:
    if isinstance(entry, str):
        return LogExpectation(text=entry)
    if not isinstance(entry, dict):
        raise UserError(f"{where}: each entry is a string or a table {{text|re, level}}")
    _check_keys(entry, {"text", "re", "level"}, where)
    level = entry.get("level")
    if level is not None and (not isinstance(level, str) or level.upper() not in LogLevel.__members__):
        raise UserError(f"{where}: level must be one of trace, debug, info, warn, error, critical")
    if ("text" in entry) == ("re" in entry):
        raise UserError(f"{where}: give text or re (one of them)")
    pattern = None
    if "re" in entry:
        try:
            pattern = re.compile(_string(entry["re"], f"{where}: re"))
        except re.error as err:
            raise UserError(f"{where}: re {entry['re']!r}: {err}") from None
    return LogExpectation(
        text=_string(entry.get("text", ""), f"{where}: text"),
        pattern=pattern,
        level=None if level is None else LogLevel[level.upper()],
    )


def _headers(value: Any, where: str) -> HeaderPairs:
    """A table {name = value} or an array of [name, value] pairs (for repeated names)."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in value):
        items = [tuple(pair) for pair in value]
    else:
        raise UserError(f"{where}: a table of name = \"value\", or an array of [name, value] pairs")
    pairs = []
    for name, text in items:
        if not isinstance(name, str) or not isinstance(text, str):
            raise UserError(f"{where}: header names and values are strings")
        pairs.append((name.lower().encode("latin-1"), text.encode()))
    return pairs


def _chunks(value: Any, where: str) -> tuple[bytes, ...]:
    if isinstance(value, str):
        return (value.encode(),) if value else ()
    return tuple(_string(chunk, where).encode() for chunk in _list(value, where))


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise UserError(f"{where}: must be an array")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where}: must be a string")
    return value


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise UserError(f"{where}: must be true or false")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


# -- checking -----------------------------------------------------------------------


def check_scenario(scenario: Scenario, report: RunReport) -> list[Mismatch]:
    """Every expectation the run did not meet (empty: the scenario passed)."""
    mismatches = _check_start(scenario.start, report)
    for index, expect in enumerate(scenario.requests):
        request = scenario.run.requests[index]
        where = f"request {index + 1} {request.label!r}"
        if index >= len(report.requests):
            mismatches.append(Mismatch(where, "the request to run", "the plugin stopped before it"))
            continue
        outcome = report.requests[index]
        logs = [record for record in report.logs if record.request_index == index]
        mismatches += _check_request(where, expect, outcome, logs)
    return mismatches


def _check_start(expect: Expectations, report: RunReport) -> list[Mismatch]:
    logs = [record for record in report.logs if record.request_index is None]
    found = _check_logs("start-up", expect, logs)
    if expect.refused is not None and expect.refused != bool(report.refused):
        actual = report.refused or "the plugin started"
        found.append(Mismatch("start-up", "a refusal" if expect.refused else "a start", actual))
    return found


def _check_request(where: str, expect: Expectations, outcome: RequestOutcome, logs: list[LogRecord]) -> list[Mismatch]:
    found = []
    if expect.status is not None and expect.status != outcome.status:
        actual = f"status {outcome.status}" if outcome.status is not None else f"no response ({outcome.stalled or 'the plugin stopped'})"
        found.append(Mismatch(where, f"status {expect.status}", actual))
    if expect.local_response is not None and expect.local_response != (outcome.local_response is not None):
        found.append(Mismatch(where, "a local response" if expect.local_response else "no local response",
                              _local_text(outcome)))
    for name, value in expect.response_headers:
        found += _check_header(where, "response header", name, value, outcome.response_headers)
    for name, value in expect.upstream_headers:
        found += _check_header(where, "upstream header", name, value, outcome.upstream_headers)
    if expect.body is not None and expect.body != outcome.response_body:
        found.append(Mismatch(where, f"body {expect.body!r}", f"body {outcome.response_body!r}"))
    return found + _check_logs(where, expect, logs)


def _local_text(outcome: RequestOutcome) -> str:
    local = outcome.local_response
    if local is None:
        return "no local response"
    return f"a local response {local.status}" + (f" ({local.details})" if local.details else "")


def _check_header(where: str, kind: str, name: bytes, value: bytes, pairs: HeaderPairs) -> list[Mismatch]:
    values = [v for k, v in pairs if k.lower() == name]
    label = name.decode("latin-1")
    if value == b"":
        if values:
            return [Mismatch(where, f"no {kind} {label}", f"{label}: {values[0].decode('latin-1')}")]
        return []
    if value in values:
        return []
    actual = ", ".join(f"{label}: {v.decode('latin-1')}" for v in values) or f"no {kind} {label}"
    return [Mismatch(where, f"{kind} {label}: {value.decode('latin-1')}", actual)]


def _check_logs(where: str, expect: Expectations, logs: list[LogRecord]) -> list[Mismatch]:
    found = []
    cursor = 0
    for wanted in expect.logs:
        index = next((i for i in range(cursor, len(logs)) if wanted.matches(logs[i])), None)
        if index is None:
            earlier = any(wanted.matches(record) for record in logs[:cursor])
            actual = "it came before the previous expected line" if earlier else _nearest(wanted, logs)
            found.append(Mismatch(where, f"a log line {wanted.describe()}", actual))
        else:
            cursor = index + 1
    for unwanted in expect.not_logs:
        hit = next((record for record in logs if unwanted.matches(record)), None)
        if hit is not None:
            found.append(Mismatch(where, f"no log line {unwanted.describe()}", hit.render()))
    return found


def _nearest(wanted: LogExpectation, logs: list[LogRecord]) -> str:
    if not logs:
        return "no log lines"
    shown = "; ".join(record.render() for record in logs[-3:])
    return f"{len(logs)} log line(s), none matching (last: {shown})"


def render_mismatches(mismatches: list[Mismatch]) -> str:
    """A diff-like report, grouped by where the mismatch is."""
    lines = []
    current = None
    for mismatch in mismatches:
        if mismatch.where != current:
            current = mismatch.where
            lines.append(f"{current}:")
        lines += mismatch.render()
    return "\n".join(lines)
