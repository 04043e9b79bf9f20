"""Compiler diagnostics: cargo's JSON messages read into `Diagnostic`s, and traced back
to the edits a port made, so that apply can say "error in code rewritten by rule X".
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wasiport.errors import UserError
from wasiport.model import Edit, Finding


@dataclass(frozen=True)
class Diagnostic:
    """One compiler message, located at its primary span (in user code when a macro is involved)."""

    level: str  # error | warning | note | help | "error: internal compiler error"
    message: str
    rendered: str
    code: str | None = None  # E0308, unused_imports, ...
    file: str | None = None  # absolute path when it could be resolved
    line: int = 0  # 1-based
    column: int = 0  # 1-based, in characters
    end_line: int = 0
    end_column: int = 0
    byte_start: int = 0  # 0-based byte offsets into the file as compiled
    byte_end: int = 0
    label: str | None = None
    package: str = ""
    target: str = ""

    @property
    def is_error(self) -> bool:
        return self.level.startswith("error")

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.file else "(no location)"



_COMPILER_SUMMARY = re.compile(r"^aborting due to |^\d+ warnings? emitted$")


def package_name(package_id: str) -> str:
    """The package name in a cargo package id, old (`name 1.0 (source)`) or new (`source#name@1.0`) form."""
    if " " in package_id:
        return package_id.split(" ", 1)[0]
    fragment = package_id.rsplit("#", 1)[-1]
    if "@" in fragment:
        return fragment.split("@", 1)[0]
    if "#" in package_id:  # `path+file:///x/foo#1.0`: the name is the last path segment
        return package_id.rsplit("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return fragment


def parse_compiler_message(message: Mapping) -> Diagnostic | None:
    """A `compiler-message` line of cargo's JSON output as a Diagnostic (None for other
    lines and for rustc's closing summaries such as "aborting due to 2 previous errors")."""
    if message.get("reason") != "compiler-message":
        return None
    body = message.get("message") or {}
    level = str(body.get("level", ""))
    text = str(body.get("message", ""))
    spans = body.get("spans") or []
    if not spans and (level == "failure-note" or _COMPILER_SUMMARY.search(text)):
        return None
    manifest = message.get("manifest_path")
    package_dir = Path(manifest).parent if manifest else None
    span = _user_span(spans, package_dir)
    code = (body.get("code") or {}).get("code")
    diag = Diagnostic(
        level=level,
        message=text,
        rendered=str(body.get("rendered") or ""),
        code=code,
        package=package_name(str(message.get("package_id", ""))),
        target=str((message.get("target") or {}).get("name", "")),
    )
    if span is None:
        return diag
    return replace(
        diag,
        file=_resolve_source(str(span.get("file_name", "")), package_dir),
        line=int(span.get("line_start", 0)),
        column=int(span.get("column_start", 0)),
        end_line=int(span.get("line_end", 0)),
        end_column=int(span.get("column_end", 0)),
        byte_start=int(span.get("byte_start", 0)),
        byte_end=int(span.get("byte_end", 0)),
        label=span.get("label"),
    )


def _user_span(spans: Sequence[Mapping], package_dir: Path | None) -> Mapping | None:
    """The primary span, followed out of macro expansions until it is in the package's code."""
    span = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    for _ in range(64):  # expansion chains are short; the bound guards against cycles
        if span is None or not span.get("expansion"):
            return span
        if package_dir is not None and _inside(_resolve_source(str(span.get("file_name", "")), package_dir), package_dir):
            return span
        span = span["expansion"].get("span") or span
    return span


def _resolve_source(file_name: str, package_dir: Path | None) -> str:
    """rustc names workspace members' files relative to the workspace root, which is the
    package's directory or one of its parents; other files come absolute."""
    path = Path(file_name)
    if path.is_absolute() or package_dir is None:
        return file_name
    for base in (package_dir, *package_dir.parents):
        if (base / path).is_file():
            return str(base / path)
    return str(package_dir / path)


def _inside(file_name: str, directory: Path) -> bool:
    try:
        Path(file_name).resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True



# ---------------------------------------------------------------------------
# Tracing diagnostics to a port's edits


@dataclass(frozen=True)
class Attribution:
    """Where a diagnostic sits relative to the port's rewrites.

    relation: "inside" (its span overlaps rewritten text), "same-line" (it shares a
    line with rewritten text) or "outside"."""

    diagnostic: Diagnostic
    relation: str
    edit: Edit | None = None
    rule_id: str | None = None

    @property
    def in_rewritten_code(self) -> bool:
        return self.relation != "outside"


@dataclass(frozen=True)
class _Rewritten:
    start: int  # byte range of the replacement in the rewritten file
    end: int
    first_line: int
    last_line: int
    edit: Edit
    rule_id: str | None


def edits_with_rules(findings: Iterable[Finding]) -> tuple[list[Edit], list[str]]:
    """The edits of the findings' fixes, each with the rule that made it (for map_diagnostics)."""
    edits: list[Edit] = []
    rules: list[str] = []
    for finding in findings:
        for edit in finding.fix.edits if finding.fix else ():
            edits.append(edit)
            rules.append(finding.rule_id)
    return edits, rules


def map_diagnostics(
    diagnostics: Iterable[Diagnostic],
    edits: Sequence[Edit],
    rule_ids: Sequence[str | None] | None = None,
    *,
    root: Path,
    sources: Mapping[str, bytes] | None = None,
) -> list[Attribution]:
    """Attribute each diagnostic to the edit (and rule) whose rewritten text it falls in.

    `edits` are byte ranges of the *original* files (as a port plans them, non-overlapping);
    diagnostics point into the *rewritten* files, so each edit's replacement is located
    by shifting it past the earlier edits of its file. `Edit.path` is taken relative to
    `root`. Line numbers come from the rewritten file: `sources[edit.path]` if given,
    else the file on disk."""
    if rule_ids is not None and len(rule_ids) != len(edits):
        raise ValueError("rule_ids must have one entry per edit")
    rules = list(rule_ids) if rule_ids is not None else [None] * len(edits)
    by_file: dict[Path, list[tuple[Edit, str | None]]] = {}
    for edit, rule in zip(edits, rules):
        by_file.setdefault(_edit_file(root, edit.path), []).append((edit, rule))
    regions: dict[Path, list[_Rewritten]] = {}
    for path, items in by_file.items():
        text = sources.get(items[0][0].path) if sources is not None else None
        if text is None:
            text = _read_bytes(path)
        regions[path] = rewritten_regions(items, text)
    return [_attribute(diag, regions) for diag in diagnostics]


def rewritten_regions(items: Sequence[tuple[Edit, str | None]], rewritten: bytes | str) -> list[_Rewritten]:
    """Where each edit's replacement landed in the rewritten text of one file."""
    data = rewritten.encode("utf-8") if isinstance(rewritten, str) else rewritten
    regions: list[_Rewritten] = []
    shift = 0
    for edit, rule in sorted(items, key=lambda item: (item[0].start, item[0].end)):
        size = len(edit.replacement.encode("utf-8"))
        start = edit.start + shift
        end = start + size
        shift += size - (edit.end - edit.start)
        first_line = data.count(b"\n", 0, start) + 1
        last_line = data.count(b"\n", 0, max(start, end - 1)) + 1
        regions.append(_Rewritten(start, end, first_line, last_line, edit, rule))
    return regions


def _attribute(diag: Diagnostic, regions: Mapping[Path, list[_Rewritten]]) -> Attribution:
    if not diag.file:
        return Attribution(diag, "outside")
    candidates = regions.get(_realpath(Path(diag.file)), [])
    inside = [r for r in candidates if _overlaps(diag.byte_start, diag.byte_end, r.start, r.end)]
    if inside:
        best = min(inside, key=lambda r: r.end - r.start)  # the tightest rewrite explains it best
        return Attribution(diag, "inside", best.edit, best.rule_id)
    last_line = max(diag.line, diag.end_line)
    same_line = [r for r in candidates if r.first_line <= last_line and diag.line <= r.last_line]
    if same_line:
        best = min(same_line, key=lambda r: (abs(r.start - diag.byte_start), r.end - r.start))
        return Attribution(diag, "same-line", best.edit, best.rule_id)
    return Attribution(diag, "outside")


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    if a_start == a_end or b_start == b_end:  # an empty range touches what surrounds it
        return max(a_start, b_start) <= min(a_end, b_end)
    return a_start < b_end and b_start < a_end


def _edit_file(root: Path, path: str) -> Path:
    candidate = Path(path)
    return _realpath(candidate if candidate.is_absolute() else root / candidate)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read rewritten file {path}: {err.strerror or err}") from None


def _realpath(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path
