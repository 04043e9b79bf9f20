"""`wasiport check`: find socket code that will fail on WasmEdge."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wasiport.commands.common import add_profile_options, profile_from_args

EPILOG = """\
examples:
  wasiport check                          scan the crate in the current directory
  wasiport check src/connection.rs        scan single files (what the pre-commit hook does)
  wasiport check --format sarif . > wasiport.sarif
  wasiport check --deps --manifest-path app/Cargo.toml
                                          scan every package of a project's dependency graph

exit status:
  0  nothing at or above --fail-on
  1  findings at or above --fail-on
  2  usage or input error (a missing path, a malformed rule pack), or files that
     could not be scanned (not UTF-8, not parsable): the scan is incomplete

Suppress a finding with a comment on its line or on the line above the item:
  // wasiport: allow(wasmedge/set-nodelay)
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check",
        help="find socket code that fails on WasmEdge",
        description="Find std::net socket code (and incompatible dependencies) that compiles for wasm32-wasi "
        "but fails at run time on WasmEdge, and say what `wasiport apply` would do about each site.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="crate or workspace directories, or .rs files (default: .)")
    parser.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text", help="output format (default: text)")
    parser.add_argument("--fail-on", choices=("error", "warning", "note", "never"), default="error", help="lowest severity that makes the exit status 1 (default: error)")
    parser.add_argument("--all-targets", action="store_true", help="also scan tests/, examples/, benches/ and build.rs (they run natively, so they are skipped by default)")
    parser.add_argument("--deps", action="store_true", help="scan the project's whole dependency graph as resolved for the wasm target")
    parser.add_argument("--manifest-path", type=Path, help="with --deps: the project's Cargo.toml (default: ./Cargo.toml)")
    parser.add_argument("--jobs", "-j", type=int, default=None, help="parallel scanner processes (default: all cores)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the scan cache")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output (default: on a terminal)")
    add_profile_options(parser)
    parser.set_defaults(func=run, teardown=False)  # see cli.entry


def run(args: argparse.Namespace) -> int:
    from wasiport.check import report
    from wasiport.check.scan import scan_paths
    from wasiport.engine.pack import load_rules

    profile = profile_from_args(args)
    if args.deps:
        from wasiport.commands.deps_check import run_deps_check

        return run_deps_check(args, profile)
    paths = args.paths or [Path(".")]
    result = scan_paths(
        paths,
        profile,
        all_targets=args.all_targets,
        jobs=args.jobs,
        use_cache=not args.no_cache,
        rules_directory=args.rules,
    )
    findings, problems = result.findings, result.problems
    if args.format == "text":
        output = report.render_text(findings, problems, read_source=_source_reader(), color=_use_color(args.color))
    elif args.format == "json":
        output = report.render_json(findings, problems)
    elif args.format == "sarif":
        pack = load_rules(profile, directory=args.rules)
        output = report.render_sarif(findings, problems, rules=pack.rules, root_uri=Path.cwd().as_uri() + "/", read_source=_source_reader())
    else:
        output = report.render_github(findings, problems)
    if output:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return report.exit_code(findings, problems, args.fail_on)


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _source_reader():
    cache: dict[str, bytes | None] = {}

    def read(path: str) -> bytes | None:
        if path not in cache:
            try:
                cache[path] = Path(path).read_bytes()
            except OSError:
                cache[path] = None
        return cache[path]

    return read
