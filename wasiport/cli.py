"""Argument parsing and dispatch only: stages return values, commands render them."""
from __future__ import annotations

import argparse
import importlib
import os
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only`, one whose sole subcommand is that command:
    importing every command module cost a pre-commit `wasiport check one.rs` tens
    of milliseconds, and parsing `check ...` needs nothing from the others."""
    parser = argparse.ArgumentParser(
        prog="wasiport",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wasiport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"wasiport.commands.{name}").register(sub)
    return parser


_skip_teardown = False  # set by main() for commands that ask for it (see entry)


def entry() -> None:
    """The console script and `python -m wasiport`: main(), then exit with its status.

    After `check` the interpreter's teardown is skipped: it would free the scan
    cache's entries one by one (a tenth of a second on a large tree, a good part of
    a re-run), and once the report is flushed nothing is left to clean up."""
    code = main()
    if _skip_teardown:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    global _skip_teardown
    arguments = sys.argv[1:] if argv is None else argv
    # `wasiport check ...`: only the named command's module is imported. Anything else
    # (no command, an option first, an unknown name) gets the full parser and its messages.
    only = arguments[0] if arguments and arguments[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    _skip_teardown = not getattr(args, "teardown", True)
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
