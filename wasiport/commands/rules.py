"""`wasiport rules list|test`: the rule pack and its built-in examples."""
from __future__ import annotations

import argparse
import json
import sys

from wasiport.commands.common import add_profile_options, profile_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rules",
        help="list the rules, or run every rule's built-in examples",
        description="Rules are TOML data (rules/<profile>/*.toml). Each carries examples: code it must find "
        "(invalid), code it must not (valid), and before/after pairs for its fix.",
    )
    actions = parser.add_subparsers(dest="rules_action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the rules with severity and what apply does")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    add_profile_options(listing)
    listing.set_defaults(func=run_list)
    testing = actions.add_parser("test", help="run every rule's examples; exit 1 on a failure")
    testing.add_argument("-v", "--verbose", action="store_true", help="list every example, not only failures")
    add_profile_options(testing)
    testing.set_defaults(func=run_test)
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from wasiport.engine.pack import load_rules

    profile = profile_from_args(args)
    pack = load_rules(profile, directory=args.rules, compile_queries=True)
    if args.format == "json":
        rows = [
            {"id": r.id, "severity": str(r.severity), "port": str(r.port), "message": r.message, "help": r.help,
             "transform": r.transform, "file": r.source_file, "examples": len(r.examples)}
            for r in pack.rules
        ]
        print(json.dumps({"pack": pack.name, "rules": rows}, indent=2))
        return 0
    width = max(len(r.id) for r in pack.rules)
    print(f"{len(pack.rules)} rules in pack {pack.name!r} ({pack.directory})")
    for rule in pack.rules:
        fix = rule.transform or ("compat" if rule.compat_method else "-")
        print(f"  {rule.id:<{width}}  {str(rule.severity):<7}  {str(rule.port):<8}  fix: {fix}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    from wasiport.engine.matcher import ScanContext
    from wasiport.engine.ruletest import run_rule_examples
    from wasiport.engine.pack import load_compat, load_rules

    profile = profile_from_args(args)
    pack = load_rules(profile, directory=args.rules, compile_queries=True)
    results = run_rule_examples(pack.rules, ScanContext(profile, load_compat(profile, args.rules)))
    failed = [r for r in results if not r.ok]
    for result in results:
        if not result.ok:
            print(f"FAIL {result.rule_id} example #{result.index + 1} ({result.kind}): {result.detail}")
        elif args.verbose:
            print(f"ok   {result.rule_id} example #{result.index + 1} ({result.kind})")
    by_kind: dict[str, int] = {}
    for result in results:
        by_kind[result.kind] = by_kind.get(result.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({len(pack.rules)} rules; {summary})")
    return 1 if failed else 0
