"""Every rule carries its own examples; this runs them (`wasiport rules test`).

- invalid: the rule must report a finding exactly where each `^` line marks one, and
  nothing elsewhere (see engine/rules.py for the marker lines);
- valid: the rule must report nothing;
- before/after: applying the rule's fixes to `before` gives exactly `after`,
  and the rule finds nothing left to fix in `after` (a second apply is a no-op).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from wasiport.engine.edits import apply_edits
from wasiport.engine.matcher import ScanContext, scan_tree
from wasiport.engine.rules import Example, Mark, Rule
from wasiport.model import Finding
from wasiport.rust.source import SourceFile


@dataclass(frozen=True)
class ExampleResult:
    rule_id: str
    index: int
    kind: str
    ok: bool
    detail: str = ""


def findings_for(rule: Rule, code: str, context: ScanContext, path: str = "example.rs") -> list[Finding]:
    source = SourceFile.from_bytes(path, code.encode("utf-8"))
    return [f for f in scan_tree(source, [rule], context) if f.rule_id == rule.id]


def run_example(rule: Rule, index: int, example: Example, context: ScanContext) -> ExampleResult:
    found = findings_for(rule, example.code, context)
    if example.kind == "invalid":
        if not found:
            return ExampleResult(rule.id, index, "invalid", False, "missing: the rule found nothing in\n" + _indent(example.code))
        where = {mark_of(f, example.code) for f in found}
        if where == set(example.marks):
            return ExampleResult(rule.id, index, "invalid", True)
        return ExampleResult(rule.id, index, "invalid", False, "found elsewhere than marked:\n" + _marked(example.code, where, set(example.marks)))
    if example.kind == "valid":
        if not found:
            return ExampleResult(rule.id, index, "valid", True)
        lines = ", ".join(f"line {f.span.start_line}" for f in found)
        return ExampleResult(rule.id, index, "valid", False, f"noisy: the rule reported {lines} in\n" + _indent(example.code))
    # fix example
    edits = [edit for finding in found if finding.fix for edit in finding.fix.edits]
    if not found:
        return ExampleResult(rule.id, index, "fix", False, "missing: the rule found nothing to fix in `before`")
    fixed = apply_edits(example.code.encode("utf-8"), edits).decode("utf-8")
    if fixed != example.after:
        diff = "".join(difflib.unified_diff(example.after.splitlines(True), fixed.splitlines(True), "expected", "actual"))
        return ExampleResult(rule.id, index, "fix", False, "fix differs from `after`:\n" + diff)
    again = findings_for(rule, fixed, context)
    if any(f.fix and f.fix.edits for f in again):
        return ExampleResult(rule.id, index, "fix", False, "not idempotent: the rule would change `after` again")
    return ExampleResult(rule.id, index, "fix", True)


def run_rule_examples(rules: list[Rule], context: ScanContext) -> list[ExampleResult]:
    results = []
    for rule in rules:
        for index, example in enumerate(rule.examples):
            results.append(run_example(rule, index, example, context))
    return results


def mark_of(finding: Finding, code: str) -> Mark:
    """The mark a finding answers: its first line, and the columns it covers on it."""
    span = finding.span
    if span.end_line == span.start_line:
        return Mark(span.start_line, span.start_col, span.end_col)
    line = code.splitlines()[span.start_line - 1]
    return Mark(span.start_line, span.start_col, len(line.rstrip()) + 1)


def _marked(code: str, found: set[Mark], expected: set[Mark]) -> str:
    """The example with a `^` line under each finding and a `-` line under each mark
    nothing answered, for the reader to compare."""
    lines = []
    for number, line in enumerate(code.splitlines(), start=1):
        lines.append(line)
        for mark in sorted(m for m in found if m.line == number):
            lines.append(" " * (mark.start_col - 1) + "^" * max(1, mark.end_col - mark.start_col) + ("" if mark in expected else "  <- found, not marked"))
        for mark in sorted(m for m in expected - found if m.line == number):
            lines.append(" " * (mark.start_col - 1) + "-" * max(1, mark.end_col - mark.start_col) + "  <- marked, not found")
    return _indent("\n".join(lines))


def _indent(text: str) -> str:
    return "".join("    | " + line + "\n" for line in text.strip("\n").splitlines())
