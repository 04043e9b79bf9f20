"""Rendering the dependency report of `check --deps` (text table, JSON, SARIF, GitHub)."""
from __future__ import annotations

import json
from pathlib import Path

from wasiport.deps.graph import GraphReport, PackageReport, Remedy
from wasiport.check.manifests import key_span
from wasiport.model import Finding, PortStatus, Severity, Span
from wasiport.check.files import display_path

JSON_VERSION = 1
_REMEDY_SEVERITY = {Remedy.PORTABLE: Severity.ERROR, Remedy.SUBSTITUTE: Severity.ERROR, Remedy.MANUAL: Severity.ERROR}
_REMEDY_PORT = {Remedy.PORTABLE: PortStatus.KEPT, Remedy.SUBSTITUTE: PortStatus.KEPT, Remedy.MANUAL: PortStatus.MANUAL}


def remedy_text(package: PackageReport) -> str:
    if package.covered_by:
        return f"covered by the substitute for {package.covered_by}"
    if package.remedy is Remedy.PORTABLE:
        return f"portable: `wasiport apply {package.name}@{package.version}`"
    if package.remedy is Remedy.SUBSTITUTE and package.substitution is not None:
        return f"substitute: {package.substitution.entry.label}"
    if package.remedy is Remedy.MANUAL:
        return "manual work"
    return "nothing to do"


def render_table(report: GraphReport, *, all_packages: bool = False) -> str:
    rows = [p for p in report.packages if all_packages or p.needs_action]
    lines = [
        f"dependency graph of {', '.join(report.members)} for {report.target}: "
        f"{len(report.packages)} packages, {len(report.needing_action)} need action"
    ]
    if rows:
        headers = ("package", "version", "remedy", "why")
        table = [(p.name, p.version, str(p.remedy) if not p.covered_by else "covered", p.reason) for p in rows]
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers[:3])]
        lines.append("")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers[:3], widths)) + "  " + headers[3])
        for package, row in zip(rows, table):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
            lines.append(" " * (sum(widths) + 6) + f"path: {package.chain}")
            lines.append(" " * (sum(widths) + 6) + f"fix:  {remedy_text(package)}")
            for finding in package.findings[:3]:
                lines.append(" " * (sum(widths) + 6) + f"  {finding.path}:{finding.span.start_line}: {finding.rule_id}")
            if len(package.findings) > 3:
                lines.append(" " * (sum(widths) + 6) + f"  ... and {len(package.findings) - 3} more")
    else:
        lines.append("nothing in the graph uses sockets WasmEdge cannot serve")
    if any(p.remedy in (Remedy.PORTABLE, Remedy.SUBSTITUTE) and p.needs_action for p in report.packages):
        lines.append("")
        lines.append(f"`wasiport apply --deps --manifest-path {report.manifest_path}` ports and substitutes what it can")
    return "\n".join(lines) + "\n"


def to_json(report: GraphReport) -> str:
    return json.dumps(
        {
            "version": JSON_VERSION,
            "manifest": str(report.manifest_path),
            "target": report.target,
            "generation": report.generation,
            "members": list(report.members),
            "packages": [
                {
                    "name": p.name,
                    "version": p.version,
                    "source": str(p.source),
                    "remedy": str(p.remedy),
                    "covered_by": p.covered_by,
                    "needs_action": p.needs_action,
                    "reason": p.reason,
                    "path": list(p.path),
                    "fix": remedy_text(p),
                    "substitute": p.substitution.entry.label if p.substitution else None,
                    "missing_features": list(p.substitution.missing_features) if p.substitution else [],
                    "findings": [
                        {"rule_id": f.rule_id, "path": f.path, "line": f.span.start_line, "column": f.span.start_col, "severity": str(f.severity), "message": f.message}
                        for f in p.findings
                    ],
                }
                for p in report.packages
            ],
            "summary": {"packages": len(report.packages), "need_action": len(report.needing_action)},
        },
        indent=2,
    )


def as_findings(report: GraphReport) -> list[Finding]:
    """One finding per package that needs action, located at its declaration in a
    workspace member's Cargo.toml (so SARIF viewers and GitHub annotate the manifest)."""
    findings: list[Finding] = []
    for package in report.needing_action:
        manifest, key = _declaring_manifest(report, package)
        span = _key_span(manifest, key)
        rule = f"wasmedge/dependency-{package.remedy}"
        message = f"{package.name} {package.version}: {package.reason} (path: {package.chain})"
        findings.append(
            Finding(
                rule_id=rule,
                severity=_REMEDY_SEVERITY.get(package.remedy, Severity.WARNING),
                message=message,
                path=_display(manifest),
                span=span,
                help=remedy_text(package),
                port=_REMEDY_PORT.get(package.remedy, PortStatus.MANUAL),
            )
        )
    return findings


def _declaring_manifest(report: GraphReport, package: PackageReport) -> tuple[Path, str]:
    """The member manifest and key through which the package enters the build."""
    for requirement in package.required_by:
        if requirement.dependent_is_member:
            return requirement.dependent_manifest, requirement.key
    # transitive: the member's dependency at the start of the chain
    if len(package.path) >= 2:
        first = package.path[1].split(" ")[0]
        return report.manifest_path, first
    return report.manifest_path, package.name


def _key_span(manifest: Path, key: str) -> Span:
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError:
        return Span(0, 0, 1, 1, 1, 1)
    return key_span(text, key)


def _display(path: Path) -> str:
    return display_path(path, Path.cwd())
