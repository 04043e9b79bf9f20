"""`wasiport check --deps`: what in a project's dependency graph fails on WasmEdge."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wasiport.model import Profile


def run_deps_check(args: argparse.Namespace, profile: Profile) -> int:
    from wasiport import deps
    from wasiport.deps import report as depsreport
    from wasiport.check import report
    from wasiport.errors import UserError
    from wasiport.check.scan import scan_crate

    manifest = args.manifest_path or (args.paths[0] if args.paths else Path("Cargo.toml"))
    if manifest.is_dir():
        manifest = manifest / "Cargo.toml"
    if not manifest.is_file():
        raise UserError(f"{manifest}: no such Cargo.toml", hint="pass --manifest-path to the project's Cargo.toml")
    print(f"wasiport: resolving the dependency graph of {manifest}", file=sys.stderr)
    graph = deps.analyze(manifest, profile, scan=lambda root, features: scan_crate(root, profile, features))
    findings = depsreport.as_findings(graph)
    for package in graph.needing_action:
        findings.extend(package.findings)
    if args.format == "text":
        sys.stdout.write(depsreport.render_table(graph))
    elif args.format == "json":
        sys.stdout.write(depsreport.to_json(graph) + "\n")
    elif args.format == "sarif":
        from wasiport.engine.pack import load_rules

        pack = load_rules(profile, directory=args.rules)
        sys.stdout.write(report.render_sarif(findings, [], rules=pack.rules, root_uri=Path.cwd().as_uri() + "/") + "\n")
    else:
        sys.stdout.write(report.render_github(findings, []))
    return report.exit_code(depsreport.as_findings(graph), [], args.fail_on)
