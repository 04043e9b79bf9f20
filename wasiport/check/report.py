"""Render `wasiport check` results: rustc-style text, JSON, SARIF 2.1.0, GitHub annotations.

Every function here is pure: it takes findings and problems (plus a way to read
source bytes where it quotes code) and returns a string; the command prints it.

Conventions shared by all formats (docs/json-schema.md spells them out):
- lines and columns are 1-based; columns count Unicode code points; a span's
  end column is exclusive (the column just after its last character);
- byte offsets count from the first byte of the file, a UTF-8 BOM included, so
  they are the offsets `apply` edits;
- a `Problem` (an input that could not be examined) is shown as an error-level
  result under its own id, and makes the exit code 2 (see `exit_code`).
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

from wasiport import __version__
from wasiport.model import Edit, Finding, PortStatus, Problem, Severity

ReadSource = Callable[[str], bytes | None]

FORMATS = ("text", "json", "sarif", "github")
FAIL_ON_CHOICES = ("error", "warning", "note", "never")

# Bump only on an incompatible change to the JSON document; added fields keep it.
JSON_FORMAT_VERSION = 1
SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_ROOT_ID = "%SRCROOT%"
FINGERPRINT_KEY = "wasiport/v1"
TOOL_NAME = "wasiport"

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 2

TAB_WIDTH = 4  # what rustc shows a tab as
BOM = b"\xef\xbb\xbf"
# A span over more lines than this shows its first and last lines around "...".
MAX_SPAN_LINES = 5
EDGE_LINES = 2


# ---------------------------------------------------------------- rule descriptors


class RuleDescriptor(NamedTuple):
    """What SARIF's `tool.driver.rules` says about one rule or problem code."""

    id: str
    short_description: str
    help: str = ""
    default_severity: Severity = Severity.WARNING
    help_uri: str = ""
    full_description: str = ""


class RuleLike(Protocol):
    """What `rule_descriptors` reads from a rule (the engine's `Rule` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def message(self) -> str: ...
    @property
    def help(self) -> str: ...


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def rule_descriptors(rules: Iterable[RuleDescriptor | RuleLike]) -> list[RuleDescriptor]:
    """Descriptors for a rule pack. A rule's message may be a template (`{type}::{name}`);
    a descriptor describes every finding of the rule, so placeholders read as `<type>`."""
    return [rule if isinstance(rule, RuleDescriptor) else _describe(rule) for rule in rules]


def _describe(rule: RuleLike) -> RuleDescriptor:
    return RuleDescriptor(
        id=rule.id,
        short_description=_PLACEHOLDER.sub(r"<\1>", rule.message),
        help=rule.help,
        default_severity=rule.severity,
        full_description=str(getattr(rule, "description", "") or ""),
    )


# ---------------------------------------------------------------- summary and exit code


class Summary(NamedTuple):
    errors: int
    warnings: int
    notes: int
    problems: int
    files: int  # distinct files with at least one finding or problem
    fixable: int


def is_fixable(finding: Finding) -> bool:
    """`apply` has a plan for it: edits, or a file-level change that covers it."""
    return finding.fix is not None


def summarize(findings: Sequence[Finding], problems: Sequence[Problem]) -> Summary:
    by_severity = Counter(f.severity for f in findings)
    return Summary(
        errors=by_severity[Severity.ERROR],
        warnings=by_severity[Severity.WARNING],
        notes=by_severity[Severity.NOTE],
        problems=len(problems),
        files=len({f.path for f in findings} | {p.path for p in problems}),
        fixable=sum(1 for f in findings if is_fixable(f)),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(findings: Sequence[Finding], problems: Sequence[Problem]) -> str:
    """E.g. '3 errors, 2 warnings in 2 files; 4 fixable by `wasiport apply`'."""
    summary = summarize(findings, problems)
    counts = [
        _plural(count, noun)
        for count, noun in (
            (summary.errors, "error"),
            (summary.warnings, "warning"),
            (summary.notes, "note"),
        )
        if count
    ]
    finding_files = len({f.path for f in findings})
    parts = [f"{', '.join(counts)} in {_plural(finding_files, 'file')}" if counts else "no findings"]
    if summary.fixable:
        parts.append(f"{summary.fixable} fixable by `wasiport apply`")
    if summary.problems:
        parts.append(f"{_plural(summary.problems, 'input')} could not be examined")
    return "; ".join(parts)


def exit_code(findings: Sequence[Finding], problems: Sequence[Problem], fail_on: str = "error") -> int:
    """The `check` exit-code contract.

    2: some input could not be examined (a Problem). The findings are then
       incomplete, so no threshold, not even "never", reports the run as clean.
    1: a finding at or above `fail_on` ("error", "warning" or "note").
    0: otherwise; "never" makes findings alone always exit 0.
    """
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON_CHOICES)}, not {fail_on!r}")
    if problems:
        return EXIT_INCOMPLETE
    if fail_on == "never":
        return EXIT_CLEAN
    threshold = Severity.parse(fail_on)
    return EXIT_FINDINGS if any(f.severity >= threshold for f in findings) else EXIT_CLEAN


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def sorted_problems(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.path, p.line, p.col, p.code, p.message))


# ---------------------------------------------------------------- source lines


class SourceLine(NamedTuple):
    number: int  # 1-based
    start: int  # byte offset of the line's first byte (after the BOM on line 1)
    end: int  # byte offset of its terminator ("\n" or "\r\n"), or of the end of file


class SourceText:
    """A file's bytes split into lines, with the display arithmetic the text renderer needs."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.lines = _split_lines(data)
        self._starts = [line.start for line in self.lines]

    def line(self, number: int) -> SourceLine | None:
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else None

    def line_at(self, offset: int) -> SourceLine:
        index = bisect.bisect_right(self._starts, offset) - 1
        return self.lines[max(index, 0)]

    def text(self, line: SourceLine, start: int | None = None, end: int | None = None) -> str:
        """Decoded text of `line` between two byte offsets (the whole line by default)."""
        lo = line.start if start is None else min(max(start, line.start), line.end)
        hi = line.end if end is None else min(max(end, lo), line.end)
        return self.data[lo:hi].decode("utf-8", errors="replace")


def _split_lines(data: bytes) -> list[SourceLine]:
    lines: list[SourceLine] = []
    start = len(BOM) if data.startswith(BOM) else 0
    number = 1
    while True:
        newline = data.find(b"\n", start)
        if newline < 0:
            lines.append(SourceLine(number, start, len(data)))
            return lines
        end = newline - 1 if newline > start and data[newline - 1 : newline] == b"\r" else newline
        lines.append(SourceLine(number, start, end))
        start = newline + 1
        number += 1


def display_width(text: str) -> int:
    """Terminal cells `text` takes: tabs as rustc shows them, wide CJK as 2, combining marks as 0."""
    width = 0
    for char in text:
        if char == "\t":
            width += TAB_WIDTH
        elif unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            width += 2
        else:
            width += 1
    return width


def _display(text: str) -> str:
    return text.replace("\t", " " * TAB_WIDTH)


# ---------------------------------------------------------------- text


_STYLES = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;32m",
    "gutter": "\x1b[1;34m",
    "bold": "\x1b[1m",
}
_RESET = "\x1b[0m"


class _Diagnostic(NamedTuple):
    """One entry of the text report, finding or problem, before layout."""

    severity: Severity
    code: str
    message: str
    path: str
    line: int
    col: int
    notes: tuple[tuple[str, str], ...]  # ("help" | "note", text)
    byte_range: tuple[int, int] | None  # a finding's span; None for a problem


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: Severity | str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if self.color and text else text


def render_text(
    findings: Sequence[Finding],
    problems: Sequence[Problem],
    *,
    read_source: ReadSource,
    color: bool = False,
) -> str:
    """rustc-style frames, one per finding or problem, then a summary line."""
    paint = _Painter(color)
    sources: dict[str, SourceText | None] = {}

    def source_of(path: str) -> SourceText | None:
        if path not in sources:
            data = read_source(path)
            sources[path] = SourceText(data) if data is not None else None
        return sources[path]

    diagnostics = sorted(
        [_finding_diagnostic(f) for f in findings] + [_problem_diagnostic(p) for p in problems],
        key=lambda d: (d.path, d.line, d.col, d.byte_range is not None, d.code),
    )
    blocks = [_render_diagnostic(d, source_of(d.path), paint) for d in diagnostics]
    blocks.append(paint(summary_line(findings, problems), "bold"))
    return "\n\n".join(blocks) + "\n"


def _finding_diagnostic(finding: Finding) -> _Diagnostic:
    notes: list[tuple[str, str]] = []
    if finding.help:
        notes.append(("help", finding.help))
    if finding.port is PortStatus.DEGRADED:
        notes.append(("note", "`wasiport apply` ports this with changed behaviour"))
    elif finding.port is PortStatus.MANUAL:
        notes.append(("note", "`wasiport apply` cannot port this; change it by hand"))
    if not finding.sure and not finding.rule_id.startswith("wasiport/"):  # wasiport's own say why in their help
        notes.append(("note", "not proven to be a `std::net` socket (the receiver's type is unknown)"))
    span = finding.span
    return _Diagnostic(
        severity=finding.severity,
        code=finding.rule_id,
        message=finding.message,
        path=finding.path,
        line=span.start_line,
        col=span.start_col,
        notes=tuple(notes),
        byte_range=(span.start_byte, span.end_byte),
    )


def _problem_diagnostic(problem: Problem) -> _Diagnostic:
    return _Diagnostic(
        severity=Severity.ERROR,
        code=problem.code,
        message=problem.message,
        path=problem.path,
        line=problem.line,
        col=problem.col,
        notes=(("note", "this input was not examined, so its findings may be missing"),),
        byte_range=None,
    )


def _location(path: str, line: int, col: int) -> str:
    if line <= 0:
        return path
    return f"{path}:{line}:{col}" if col > 0 else f"{path}:{line}"


def _render_diagnostic(diag: _Diagnostic, source: SourceText | None, paint: _Painter) -> str:
    snippet = _snippet(diag, source) if source is not None else []
    numbers = [row.label for row in snippet if row.label.isdigit()]
    width = max((len(label) for label in numbers), default=len(str(max(diag.line, 1))))

    def gutter(number: str = "") -> str:
        return paint(f"{number:<{width}} |", "gutter")

    header = paint(f"{diag.severity}[{diag.code}]", diag.severity) + paint(f": {diag.message}", "bold")
    out = [header, f"{' ' * width}{paint('-->', 'gutter')} {_location(diag.path, diag.line, diag.col)}"]
    if snippet:
        out.append(gutter())
        for row in snippet:
            if row.label == "...":
                out.append(paint("...", "gutter"))
            else:
                out.append(f"{gutter(row.label)} {_paint_markers(row.markup, diag.severity, paint)}{row.code}")
        if diag.notes:
            out.append(gutter())
    for kind, text in diag.notes:
        out.append(f"{' ' * width} {paint('=', 'gutter')} {paint(kind + ':', 'bold')} {text}")
    return "\n".join(line.rstrip() for line in out)


class _Row(NamedTuple):
    """One snippet row: a gutter label (line number, "" or "..."), span markup, source code."""

    label: str
    markup: str = ""  # carets, underscores and the multi-line lane: drawn in the severity's colour
    code: str = ""


def _paint_markers(markup: str, severity: Severity, paint: _Painter) -> str:
    return re.sub(r"[|_^]+", lambda m: paint(m.group(0), severity), markup) if paint.color else markup


def _snippet(diag: _Diagnostic, source: SourceText) -> list[_Row]:
    """The rows under the location line; [] when the source does not fit the span."""
    if diag.byte_range is None:
        return _point_snippet(source, diag.line, diag.col)
    start, end = diag.byte_range
    if not 0 <= start <= end <= len(source.data):
        return []  # the file changed since the scan: quoting it would mislead
    first = source.line_at(start)
    last = source.line_at(end)
    if end > start and end == last.start and last.number > first.number:
        last = source.lines[last.number - 2]  # a span ending at a line start ends on the line before
    if first.number == last.number:
        return _single_line_snippet(source, first, start, end)
    return _multi_line_snippet(source, first, last, start, end)


def _single_line_snippet(source: SourceText, line: SourceLine, start: int, end: int) -> list[_Row]:
    indent = display_width(source.text(line, end=start))
    length = display_width(source.text(line, start, end))
    return [
        _Row(str(line.number), code=_display(source.text(line))),
        _Row("", markup=" " * indent + "^" * max(length, 1)),
    ]


def _multi_line_snippet(
    source: SourceText, first: SourceLine, last: SourceLine, start: int, end: int
) -> list[_Row]:
    # rustc's layout: a two-column lane left of the code carries the span's edge.
    start_indent = display_width(source.text(first, end=start))
    ending = source.text(last, end=end)
    end_indent = display_width(ending[:-1]) if ending else 0
    numbers = list(range(first.number, last.number + 1))
    if len(numbers) > MAX_SPAN_LINES:
        numbers = numbers[:EDGE_LINES] + [0] + numbers[-EDGE_LINES:]
    rows: list[_Row] = []
    for number in numbers:
        if number == 0:
            rows.append(_Row("..."))
            continue
        line = source.lines[number - 1]
        lane = "  " if number == first.number else "| "
        rows.append(_Row(str(number), markup=lane, code=_display(source.text(line))))
        if number == first.number:
            rows.append(_Row("", markup=" " + "_" * (start_indent + 1) + "^"))
    rows.append(_Row("", markup="|" + "_" * (end_indent + 1) + "^"))
    return rows


def _point_snippet(source: SourceText, line_number: int, col: int) -> list[_Row]:
    line = source.line(line_number) if line_number > 0 else None
    if line is None:
        return []
    text = source.text(line)
    rows = [_Row(str(line_number), code=_display(text))]
    if col > 0:
        rows.append(_Row("", markup=" " * display_width(text[: col - 1]) + "^"))
    return rows


# ---------------------------------------------------------------- JSON


def render_json(findings: Sequence[Finding], problems: Sequence[Problem]) -> str:
    """The documented JSON document (docs/json-schema.md, docs/check-output.schema.json)."""
    summary = summarize(findings, problems)
    document = {
        "version": JSON_FORMAT_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "findings": [_finding_json(f) for f in sorted_findings(findings)],
        "problems": [_problem_json(p) for p in sorted_problems(problems)],
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "notes": summary.notes,
            "problems": summary.problems,
            "files": summary.files,
            "fixable": summary.fixable,
        },
    }
    return _json_lines(document)


def _json_lines(document: dict) -> str:
    """`document` as JSON with each top-level key, and each item of a top-level list, on a
    line of its own: readable and diff-able, and written by the json module's C encoder
    (indent= switches to its pure-Python one: a quarter of a warm re-run of a large tree)."""
    import json  # imported where used: a text report (the pre-commit hook's) never needs it

    encode = json.JSONEncoder(ensure_ascii=False).encode
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            rendered = "[\n    " + ",\n    ".join(encode(item) for item in value) + "\n  ]"
        else:
            rendered = encode(value)
        lines.append(f"  {encode(key)}: {rendered}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _finding_json(finding: Finding) -> dict[str, object]:
    span = finding.span
    fix = finding.fix
    return {
        "rule_id": finding.rule_id,
        "severity": str(finding.severity),
        "message": finding.message,
        "path": finding.path,
        "span": {
            "start_line": span.start_line,
            "start_col": span.start_col,
            "end_line": span.end_line,
            "end_col": span.end_col,
            "start_byte": span.start_byte,
            "end_byte": span.end_byte,
        },
        "help": finding.help,
        "port": str(finding.port),
        "sure": finding.sure,
        "fixable": is_fixable(finding),
        "fix": None
        if fix is None
        else {"description": fix.description, "edits": [_edit_json(e) for e in fix.edits]},
    }


def _edit_json(edit: Edit) -> dict[str, object]:
    return {"path": edit.path, "start": edit.start, "end": edit.end, "replacement": edit.replacement}


def _problem_json(problem: Problem) -> dict[str, object]:
    return {
        "code": problem.code,
        "message": problem.message,
        "path": problem.path,
        "line": problem.line,
        "col": problem.col,
    }


# ---------------------------------------------------------------- SARIF


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def render_sarif(
    findings: Sequence[Finding],
    problems: Sequence[Problem],
    *,
    rules: Sequence[RuleDescriptor | RuleLike] = (),
    root_uri: str | None = None,
    read_source: ReadSource | None = None,
) -> str:
    """A SARIF 2.1.0 log with one run.

    `rules` describes the rule pack (descriptors, or the engine's rules as they are); ids seen in findings or problems but not
    described get a descriptor made from their first message, so every result's
    `ruleIndex` is valid. `root_uri` (an absolute URI ending in "/", e.g. the
    scanned repository as file:///...) becomes `originalUriBaseIds["%SRCROOT%"]`;
    result URIs are relative to it. `read_source` lets fingerprints use the
    source text of the flagged lines; without it they use the message.
    """
    descriptors = _descriptor_table(rules, findings, problems)
    index = {descriptor.id: i for i, descriptor in enumerate(descriptors)}
    root = _normalise_root(root_uri)
    fingerprints = _Fingerprints(read_source)
    results: list[dict[str, object]] = []
    for finding in sorted_findings(findings):
        results.append(_finding_result(finding, index[finding.rule_id], root, fingerprints))
    ordered_problems = sorted_problems(problems)
    for problem in ordered_problems:
        results.append(_problem_result(problem, index[problem.code], root, fingerprints))
    run: dict[str, object] = {"tool": {"driver": _driver(descriptors)}}
    if root is not None:
        run["originalUriBaseIds"] = {SARIF_ROOT_ID: {"uri": root}}
    run["columnKind"] = "unicodeCodePoints"
    run["results"] = results
    run["invocations"] = [
        {
            # Problems are conditions of the run (an input not examined), not a failed
            # run: the tool finished and its results for everything else stand.
            "executionSuccessful": True,
            "toolExecutionNotifications": [
                _notification(p, index[p.code], root) for p in ordered_problems
            ],
        }
    ]
    log = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
    import json

    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _descriptor_table(
    rules: Sequence[RuleDescriptor | RuleLike], findings: Sequence[Finding], problems: Sequence[Problem]
) -> list[RuleDescriptor]:
    table: dict[str, RuleDescriptor] = {}
    for rule in rule_descriptors(rules):
        table.setdefault(rule.id, rule)
    for finding in sorted_findings(findings):
        table.setdefault(
            finding.rule_id,
            RuleDescriptor(finding.rule_id, finding.message, finding.help, finding.severity),
        )
    for problem in sorted_problems(problems):
        table.setdefault(problem.code, RuleDescriptor(problem.code, problem.message, "", Severity.ERROR))
    return list(table.values())


def _information_uri() -> str | None:
    """The project's home page from the installed distribution's metadata, if it names one."""
    from importlib import metadata  # only SARIF needs it: keep `check`'s start-up lean

    try:
        meta = metadata.metadata(TOOL_NAME)
    except metadata.PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "documentation", "repository", "source"):
            return url.strip()
    return meta.get("Home-page") or None


def _driver(descriptors: Sequence[RuleDescriptor]) -> dict[str, object]:
    driver: dict[str, object] = {"name": TOOL_NAME, "version": __version__, "semanticVersion": __version__}
    information_uri = _information_uri()
    if information_uri:
        driver["informationUri"] = information_uri
    driver["rules"] = [_descriptor_json(d) for d in descriptors]
    return driver


def _descriptor_json(descriptor: RuleDescriptor) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": descriptor.id,
        "shortDescription": {"text": descriptor.short_description},
    }
    if descriptor.full_description:
        entry["fullDescription"] = {"text": descriptor.full_description}
    if descriptor.help:
        entry["help"] = {"text": descriptor.help}
    if descriptor.help_uri:
        entry["helpUri"] = descriptor.help_uri
    entry["defaultConfiguration"] = {"level": _SARIF_LEVEL[descriptor.default_severity]}
    return entry


def _normalise_root(root_uri: str | None) -> str | None:
    if not root_uri:
        return None
    # SARIF §3.14.14: a base URI must end with a slash, or relative URIs resolve against its parent.
    return root_uri if root_uri.endswith("/") else root_uri + "/"


def _artifact_location(path: str, root: str | None) -> dict[str, object]:
    """A repo-relative URI under %SRCROOT% where possible, an absolute file URI otherwise."""
    import urllib.parse  # SARIF only: kept off the text report's import path

    relative = path.removeprefix("./")
    if relative.startswith("/"):
        root_path = _file_uri_path(root)
        if root_path is not None and relative.startswith(root_path):
            relative = relative[len(root_path) :]
        else:
            return {"uri": "file://" + urllib.parse.quote(relative, safe="/")}
    return {"uri": urllib.parse.quote(relative, safe="/"), "uriBaseId": SARIF_ROOT_ID}


def _file_uri_path(root: str | None) -> str | None:
    import urllib.parse

    if root is None or not root.startswith("file:"):
        return None
    return urllib.parse.unquote(urllib.parse.urlparse(root).path)


def _region(line: int, col: int, end_line: int | None = None, end_col: int | None = None) -> dict[str, int]:
    region = {"startLine": line}
    if col > 0:
        region["startColumn"] = col
    if end_line is not None:
        region["endLine"] = end_line
    if end_col is not None and end_col > 0:
        region["endColumn"] = end_col
    return region


def _finding_result(
    finding: Finding, rule_index: int, root: str | None, fingerprints: _Fingerprints
) -> dict[str, object]:
    span = finding.span
    text = finding.message + (f"\nhelp: {finding.help}" if finding.help else "")
    result: dict[str, object] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(finding.path, root),
                    "region": _region(span.start_line, span.start_col, span.end_line, span.end_col),
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprints.of_finding(finding)},
    }
    if finding.fix is not None and finding.fix.edits:
        result["fixes"] = [_fix_json(finding.fix.description, finding.fix.edits, root)]
    result["properties"] = {"port": str(finding.port), "sure": finding.sure, "fixable": is_fixable(finding)}
    return result


def _fix_json(description: str, edits: Sequence[Edit], root: str | None) -> dict[str, object]:
    # SARIF applies a file's replacements in array order, each at its offset in the
    # unmodified file: keep the engine's order, which decides between insertions at
    # one offset.
    by_path: dict[str, list[Edit]] = {}
    for edit in edits:
        by_path.setdefault(edit.path, []).append(edit)
    return {
        "description": {"text": description},
        "artifactChanges": [
            {
                "artifactLocation": _artifact_location(path, root),
                "replacements": [
                    {
                        "deletedRegion": {"byteOffset": e.start, "byteLength": e.end - e.start},
                        "insertedContent": {"text": e.replacement},
                    }
                    for e in path_edits
                ],
            }
            for path, path_edits in by_path.items()
        ],
    }


def _problem_location(problem: Problem, root: str | None) -> dict[str, object]:
    physical: dict[str, object] = {"artifactLocation": _artifact_location(problem.path, root)}
    if problem.line > 0:
        physical["region"] = _region(problem.line, problem.col)
    return {"physicalLocation": physical}


def _problem_result(
    problem: Problem, rule_index: int, root: str | None, fingerprints: _Fingerprints
) -> dict[str, object]:
    return {
        "ruleId": problem.code,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": problem.message},
        "locations": [_problem_location(problem, root)],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprints.of_problem(problem)},
    }


def _notification(problem: Problem, rule_index: int, root: str | None) -> dict[str, object]:
    return {
        "level": "error",
        "message": {"text": problem.message},
        "locations": [_problem_location(problem, root)],
        "associatedRule": {"id": problem.code, "index": rule_index},
    }


class _Fingerprints:
    """Stable ids for results, so code scanning tracks an alert across unrelated edits.

    The hash covers rule id, path and the whitespace-normalised text of the lines
    the result points at, never line numbers: inserting lines above keeps it. The
    suffix counts earlier results with the same hash in the file, so two
    identical lines stay distinct.
    """

    def __init__(self, read_source: ReadSource | None) -> None:
        self._read_source = read_source
        self._sources: dict[str, SourceText | None] = {}
        self._seen: Counter[str] = Counter()

    def _source(self, path: str) -> SourceText | None:
        if self._read_source is None:
            return None
        if path not in self._sources:
            data = self._read_source(path)
            self._sources[path] = SourceText(data) if data is not None else None
        return self._sources[path]

    def _lines_text(self, path: str, first: int, last: int) -> str | None:
        source = self._source(path)
        if source is None or not 1 <= first <= last <= len(source.lines):
            return None
        return "\n".join(source.text(source.lines[n - 1]) for n in range(first, last + 1))

    def _next(self, rule_id: str, path: str, context: str) -> str:
        import hashlib  # SARIF fingerprints only

        normalised = " ".join(context.split())
        digest = hashlib.sha256("\0".join((rule_id, path, normalised)).encode("utf-8")).hexdigest()[:16]
        self._seen[digest] += 1
        return f"{digest}:{self._seen[digest]}"

    def of_finding(self, finding: Finding) -> str:
        span = finding.span
        context = self._lines_text(finding.path, span.start_line, span.end_line)
        return self._next(finding.rule_id, finding.path, finding.message if context is None else context)

    def of_problem(self, problem: Problem) -> str:
        context = self._lines_text(problem.path, problem.line, problem.line) if problem.line > 0 else None
        return self._next(problem.code, problem.path, problem.message if context is None else context)


# ---------------------------------------------------------------- GitHub annotations


_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_github_data(text: str) -> str:
    """Escape a workflow command's message, as the Actions runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(text: str) -> str:
    """Escape a workflow command's property value: the message escapes plus ':' and ','."""
    return escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_line(command: str, properties: Sequence[tuple[str, object]], message: str) -> str:
    rendered = ",".join(f"{key}={escape_github_property(str(value))}" for key, value in properties)
    return f"::{command} {rendered}::{escape_github_data(message)}"


def render_github(findings: Sequence[Finding], problems: Sequence[Problem]) -> str:
    """One `::error`/`::warning`/`::notice` workflow command per finding and problem, in file order."""
    entries = [((f.path, f.span.start_line, f.span.start_col, 1), _github_finding(f)) for f in findings]
    entries += [((p.path, p.line, p.col, 0), _github_problem(p)) for p in problems]
    return "".join(line + "\n" for _, line in sorted(entries))


def _github_finding(finding: Finding) -> str:
    span = finding.span
    properties: list[tuple[str, object]] = [("file", finding.path), ("line", span.start_line)]
    if span.end_line == span.start_line:
        # GitHub keeps columns only on single-line annotations; its endColumn is the
        # last annotated character, one before our exclusive end.
        properties += [("col", span.start_col), ("endColumn", max(span.end_col - 1, span.start_col))]
    else:
        properties.append(("endLine", span.end_line))
    properties.append(("title", finding.rule_id))
    message = finding.message + (f"\nhelp: {finding.help}" if finding.help else "")
    return _github_line(_GITHUB_COMMAND[finding.severity], properties, message)


def _github_problem(problem: Problem) -> str:
    properties: list[tuple[str, object]] = [("file", problem.path)]
    if problem.line > 0:
        properties.append(("line", problem.line))
        if problem.col > 0:
            properties.append(("col", problem.col))
    properties.append(("title", problem.code))
    return _github_line("error", properties, problem.message)


# ---------------------------------------------------------------- dispatch


def render(
    fmt: str,
    findings: Sequence[Finding],
    problems: Sequence[Problem],
    *,
    read_source: ReadSource,
    color: bool = False,
    rules: Sequence[RuleDescriptor | RuleLike] = (),
    root_uri: str | None = None,
) -> str:
    """Render in one of FORMATS; the command passes everything, each format takes what it uses."""
    if fmt == "text":
        return render_text(findings, problems, read_source=read_source, color=color)
    if fmt == "json":
        return render_json(findings, problems)
    if fmt == "sarif":
        return render_sarif(findings, problems, rules=rules, root_uri=root_uri, read_source=read_source)
    if fmt == "github":
        return render_github(findings, problems)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
