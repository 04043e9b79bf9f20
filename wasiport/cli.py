"""Argument parsing and dispatch only: stages return values, commands render them."""
from __future__ import annotations

import argparse
import importlib
import sys

from wasiport import __version__
from wasiport.commands import COMMANDS
from wasiport.errors import UserError

DESCRIPTION = """\
Port Rust crates that open sockets to WasmEdge's WASI socket API.

  wasiport check [PATH...]     find socket code that fails on WasmEdge
  wasiport apply CRATE         port a crate (rules + Cargo.toml), commit, build, verify
  wasiport run MODULE.wasm     run a module with WasmEdge's socket host functions
  wasiport inspect FILE.wasm   list a module's imports: does it use WasmEdge sockets?
  wasiport rules list|test     the rule pack and its built-in examples
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasiport",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wasiport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"wasiport.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"wasiport: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("wasiport: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
