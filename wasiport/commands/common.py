"""Options shared by several commands: the port target (profile), the rule pack, --env."""
from __future__ import annotations

import argparse
from pathlib import Path

from wasiport.errors import UserError
from wasiport.model import Profile


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    default = Profile()
    group = parser.add_argument_group("port target")
    group.add_argument(
        "--socket-version",
        default=default.socket_version,
        help='wasmedge_wasi_socket version requirement written to Cargo.toml (default: "0.5.4"; "0.4.3" selects the 0.4 compat module)',
    )
    group.add_argument("--gate", default=default.gate, help=f"cfg predicate of the wasm build (default: {default.gate})")
    group.add_argument(
        "--substitution",
        choices=("patch", "rename"),
        default=default.substitution,
        help="crate substitutions: same-name forks through [patch.crates-io] (default) or renamed *_wasi crates",
    )
    group.add_argument("--rules", type=Path, default=None, metavar="DIR", help="use this rule pack directory instead of the bundled one")


def profile_from_args(args: argparse.Namespace) -> Profile:
    version = str(args.socket_version).strip()
    if not version or not version.lstrip("^~=").startswith(("0.4", "0.5")):
        raise UserError(f"--socket-version {version!r} is not supported (use 0.4 or 0.5)")
    if args.rules is not None and not args.rules.is_dir():
        raise UserError(f"--rules {args.rules}: no such directory")
    return Profile()._replace(socket_version=version, gate=args.gate, substitution=args.substitution)


def parse_env(text: str) -> tuple[str, str]:
    """One `--env KEY=VALUE` (of `run`, and of `apply --run`) as a pair."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UserError(f"--env {text!r}: expected KEY=VALUE")
    return key, value
