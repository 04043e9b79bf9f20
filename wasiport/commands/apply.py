"""`wasiport apply`: port a crate to WasmEdge sockets, commit it, build it, prove it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wasiport.commands.common import add_profile_options, parse_env, profile_from_args

EPILOG = """\
where CRATE comes from:
  wasiport apply .                             the crate here, ported in place on a branch
  wasiport apply redis --manifest-path app/Cargo.toml
                                               a dependency of app: copied to app/wasiport/redis-<version>/,
                                               ported, and patched into app with [patch.crates-io]
  wasiport apply redis-rs                      a recipe name (rules/wasmedge/recipes/) for a dependency
  wasiport apply ureq-2.6.2.crate              a .crate archive, unpacked safely
  wasiport apply mycrate --git URL --rev v1.2  a git repository

what it does, in order:
  0. takes the writer lock of the crate's repository (and of the consumer project):
     another apply on it waits up to --wait seconds, then gives up naming the holder;
     what a killed earlier run left half done is undone first
  1. refuses a crate with uncommitted changes (--allow-dirty: uncommitted changes stay
     uncommitted in the work tree and never enter the port commit; apply refuses to
     edit a file that has them)
  2. rewrites std::net socket code under cfg(<gate>) and adds wasmedge_wasi_socket to Cargo.toml
  3. commits the port on branch wasiport/wasmedge (one commit; --dry-run shows the diff instead)
  4. builds it natively and for wasm32-wasip1/wasm32-wasi; a failure rolls the port back
  5. checks that the module imports WasmEdge's sock_* functions (wasiport inspect)
  6. with --run: runs the consumer's module against real servers (wasiport run)

exit status: 0 ported and verified (or already ported, or nothing to port), 1 the port failed to build or
verify (rolled back), 2 bad input (dirty tree, unparsable file, malformed Cargo.toml, no toolchain),
70 an internal error (a bug: rerun as `wasiport --verbose apply ...`), 74 the filesystem
refused a write (the message says what was restored and what not), 75 another wasiport
process holds the lock, 130 interrupted (rolled back)
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "apply",
        help="port a crate: rewrite, commit, build, verify",
        description="Port a Rust crate that opens sockets to WasmEdge's WASI sockets, keeping its native build.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("crate", metavar="CRATE", nargs="?", help="a path, a dependency name (NAME or NAME@VERSION), a recipe name, or a .crate archive")
    parser.add_argument("--deps", action="store_true", help="port the whole dependency graph of --manifest-path: every portable crate, and substitutes (tokio, hyper, socket2, ...) for the rest")
    source = parser.add_argument_group("source")
    source.add_argument("--manifest-path", type=Path, help="the consumer project's Cargo.toml (CRATE is one of its dependencies)")
    source.add_argument("--into", type=Path, help="folder for copies of dependencies (default: <consumer>/wasiport/)")
    source.add_argument("--git", dest="git_url", metavar="URL", help="clone the crate from this git URL")
    source.add_argument("--rev", help="with --git: the branch, tag or commit")
    safety = parser.add_argument_group("safety")
    safety.add_argument("--dry-run", action="store_true", help="print the unified diff of every change and write nothing")
    safety.add_argument("--allow-dirty", action="store_true", help="port even if the crate has uncommitted changes: they stay uncommitted and out of the port commit (a file the port must edit has to be committed first)")
    safety.add_argument("--wait", type=_seconds, metavar="SECONDS", help="how long to wait for another wasiport writing to the same crate or project (default: $WASIPORT_LOCK_WAIT or 30)")
    safety.add_argument("--max-file-size", type=_size, metavar="SIZE", help="port .rs files up to SIZE (e.g. 16M, 800K; default 4M: larger files are usually generated)")
    safety.add_argument("--allow-no-vcs", action="store_true", help="port a crate that is not in git (wasiport commits a baseline first)")
    safety.add_argument("--branch", default="wasiport/wasmedge", help="branch for the port commit (default: wasiport/wasmedge)")
    safety.add_argument("--keep-broken", action="store_true", help="keep the port even if it does not build or verify")
    build = parser.add_argument_group("build")
    build.add_argument("--no-build", action="store_true", help="skip building and verifying (nothing is confirmed)")
    build.add_argument("--toolchain", metavar="NAME", help="rustup toolchain to build with (like cargo +NAME)")
    build.add_argument("--features", default="", help="comma-separated features to build with")
    build.add_argument("--no-default-features", action="store_true", help="build without default features")
    build.add_argument(
        "--runtime",
        metavar="wasmedge-X.Y",
        help="the module must link on this WasmEdge release (e.g. wasmedge-0.10, APISIX's); --run then offers only its functions",
    )
    patches = parser.add_argument_group("patch series")
    patches.add_argument("--export-patches", type=Path, metavar="DIR", help="write the port as a git format-patch series to DIR")
    patches.add_argument("--from-patches", type=Path, metavar="DIR", help="re-apply an exported series first (e.g. to a new upstream version)")
    run = parser.add_argument_group("run")
    run.add_argument("--run", nargs=argparse.REMAINDER, metavar="ARGS", help="after a verified build, run the consumer's module with ARGS (must come last); a proxy-wasm plugin runs a scenario: --run SCENARIO.toml")
    run.add_argument("--allow", action="append", default=[], metavar="HOST:PORT", help="with --run: also allow this address (loopback is always allowed)")
    run.add_argument("--env", action="append", default=[], metavar="K=V", help="with --run: environment variable for the module")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_profile_options(parser)
    parser.set_defaults(func=run_apply)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2, "G": 1024**3, "GB": 1024**3, "GIB": 1024**3}


def _size(text: str) -> int:
    """`16M`, `800K`, `5000000`: a size in bytes."""
    stripped = text.strip().upper()
    number = stripped.rstrip("BKMGI")
    unit = stripped[len(number):]
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 16M, 800K, 5000000)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the size must be positive")
    return int(value)


def run_apply(args: argparse.Namespace) -> int:
    from wasiport.port import ApplyRequest, PortFailed, apply
    from wasiport.errors import UserError

    if args.deps and args.crate:
        raise UserError("--deps ports a whole project: give --manifest-path, not CRATE")
    if not args.deps and not args.crate:
        raise UserError("give CRATE (a path, a dependency name, a recipe, a .crate archive), or --deps")
    if args.deps and args.dry_run:
        raise UserError("--deps has no --dry-run: it would write", hint="`wasiport check --deps` shows what --deps would port and substitute")
    if args.runtime is not None:
        from wasiport.wasm.runtimes import find_runtime

        find_runtime(args.runtime)  # an unknown name is an error before anything is ported
    request = ApplyRequest(
        spec=args.crate or "",
        profile=profile_from_args(args),
        manifest_path=args.manifest_path,
        into=args.into,
        git_url=args.git_url,
        rev=args.rev,
        branch=args.branch,
        allow_dirty=args.allow_dirty,
        allow_no_vcs=args.allow_no_vcs,
        keep_broken=args.keep_broken,
        dry_run=args.dry_run,
        build=not args.no_build,
        toolchain=args.toolchain,
        features=tuple(f for f in args.features.replace(" ", ",").split(",") if f),
        no_default_features=args.no_default_features,
        export_patches=args.export_patches,
        from_patches=args.from_patches,
        run_args=args.run,
        run_allow=tuple(args.allow),
        run_env=tuple(parse_env(item) for item in args.env),
        rules_directory=args.rules,
        runtime=args.runtime,
        wait=args.wait,
        max_file_bytes=args.max_file_size,
    )
    progress = (lambda line: None) if args.quiet else (lambda line: print(f"wasiport: {line}", file=sys.stderr, flush=True))
    if args.deps:
        return _run_deps(request, args, progress)
    try:
        outcome = apply(request, progress)
    except PortFailed as failure:
        _print_failure(failure)
        return failure.exit_code
    if args.format == "json":
        print(json.dumps(_as_json(outcome), indent=2))
    else:
        print(render(outcome, dry_run=args.dry_run), end="")
    if outcome.run_exit_code is not None:
        return outcome.run_exit_code
    return 0


def _run_deps(request, args, progress) -> int:
    from wasiport.port import PortFailed
    from wasiport.deps.apply import apply_deps

    try:
        outcome = apply_deps(request, progress)
    except PortFailed as failure:
        _print_failure(failure)
        return failure.exit_code
    if args.format == "json":
        print(json.dumps({
            "stages": [{"stage": s.stage, "ok": s.ok, "summary": s.summary, "details": s.details} for s in outcome.result.stages],
            "packages": [
                {"name": p.name, "version": p.version, "action": p.action, "detail": p.detail}
                | ({"proof": p.proof.as_dict(), "proof_detail": p.proof.detail} if p.proof else {})
                for p in outcome.packages
            ],
            "messages": outcome.messages,
            "version_gaps": [_gap_json(gap) for gap in outcome.gaps],
            "module": str(outcome.module) if outcome.module else None,
            "run_output": outcome.run_output,
        }, indent=2))
        return _deps_exit_code(outcome)
    print("\n".join(stage_lines(outcome.result.stages)))
    if outcome.run_output:
        print("run output:")
        print("\n".join(f"  {line}" for line in outcome.run_output.splitlines()))
    print("summary:")
    for package in outcome.packages:
        print(f"  {package.action:<15} {package.name} {package.version}: {package.detail}")
        if package.proof:
            print(f"  {'':<15} {package.proof.detail}")
    for message in outcome.messages:
        print(f"  {message}")
    for gap in outcome.gaps:
        print(f"  version gap: {gap.describe()}")
    return _deps_exit_code(outcome)


def _deps_exit_code(outcome) -> int:
    """The module's own exit status when --run ran it (as `apply --run` returns it), else 0."""
    return outcome.run_exit_code or 0


def _gap_json(gap) -> dict:
    return {
        "crate": gap.crate,
        "resolved": str(gap.resolved),
        "substitute": gap.substitute,
        "tracks": str(gap.tracks),
        "additions": None if gap.additions is None else [
            {"version": str(a.version), "text": a.text, "names": list(a.names)} for a in gap.additions
        ],
        "uses": [{"name": u.name, "version": str(u.addition.version), "path": str(u.path), "line": u.line} for u in gap.uses],
        "summary": gap.describe(),
    }


def stage_lines(stages, detailed: tuple[str, ...] = ()) -> list[str]:
    """One line per pipeline stage; details for failed stages and the `detailed` ones."""
    lines: list[str] = []
    for stage in stages:
        lines.append(f"{stage.stage:>8}: {'ok' if stage.ok else 'FAILED'}: {stage.summary}")
        if not stage.ok or stage.stage in detailed:
            lines.extend(f"          {detail}" for detail in stage.details)
    return lines


def _print_failure(failure) -> None:
    """The stages so far (with the compiler's diagnostics), then the error sentence."""
    if failure.result is not None:
        print("\n".join(stage_lines(failure.result.stages)), file=sys.stderr)
    print(f"wasiport: error: {failure}", file=sys.stderr)


def render(outcome, *, dry_run: bool) -> str:
    result = outcome.result
    lines: list[str] = []
    if dry_run:
        if outcome.diff:
            lines.append(outcome.diff.rstrip("\n"))
            lines.append("")
        lines.append(f"dry run: nothing was written ({_no_change(result) or 'the diff above is the port'})")
    lines.extend(stage_lines(result.stages, detailed=("verify", "export", "manifest")))
    if result.degraded:
        lines.append("degraded on WasmEdge (reported, not hidden):")
        lines.extend(f"  {f.path}:{f.span.start_line}: {f.message}" for f in result.degraded)
    if result.manual:
        lines.append("left for manual work:")
        lines.extend(f"  {f.path}:{f.span.start_line}: {f.message}" for f in result.manual)
    for note in outcome.notes:
        lines.append(f"note: {note}")
    if _no_change(result) and not dry_run:
        lines.append(f"{result.crate_name}: {_no_change(result)}, nothing committed")
    return "\n".join(lines) + "\n"


def _no_change(result) -> str:
    """Why the port changes nothing ("" when it does): "already ported" only when a port exists."""
    return "already ported" if result.already_ported else "nothing to port" if result.nothing_to_port else ""


def _as_json(outcome) -> dict:
    result = outcome.result
    return {
        "crate": result.crate_name,
        "root": str(result.crate_root),
        "commit": result.commit,
        "already_ported": result.already_ported,
        "nothing_to_port": result.nothing_to_port,
        "stages": [{"stage": s.stage, "ok": s.ok, "summary": s.summary, "details": s.details} for s in result.stages],
        "findings": [
            {"rule_id": f.rule_id, "path": f.path, "line": f.span.start_line, "column": f.span.start_col,
             "severity": str(f.severity), "port": str(f.port), "message": f.message}
            for f in result.findings
        ],
        "module": str(outcome.module) if outcome.module else None,
        "diff": outcome.diff or None,
        "notes": outcome.notes,
        "run_exit_code": outcome.run_exit_code,
    }
