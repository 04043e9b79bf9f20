"""Argument parsing and dispatch only: stages return values, commands render them.

It is also the one place where errors meet the user: a `UserError` is its own sentence
and exit code; anything else is turned into one sentence too (a filesystem refusal,
exit 74; a bug, exit 70), with the traceback only under --verbose or WASIPORT_DEBUG=1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from wasiport import __version__
from wasiport.commands import COMMANDS
from wasiport.errors import EXIT_CODES_HELP, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_IO, UserError

DESCRIPTION = """\
Port Rust crates that open sockets to WasmEdge's WASI socket API.

  wasiport check [PATH...]     find socket code that fails on WasmEdge
  wasiport apply CRATE         port a crate (rules + Cargo.toml), commit, build, verify
  wasiport run MODULE.wasm     run a module with WasmEdge's socket host functions
  wasiport inspect FILE.wasm   list a module's imports: does it use WasmEdge sockets?
  wasiport rules list|test     the rule pack and its built-in examples
"""

EPILOG = EXIT_CODES_HELP + """
--verbose (before the command) or WASIPORT_DEBUG=1 says what was decided on the side (C host
calls on or off and why, caches) and adds the traceback to an internal error.
"""
VERBOSE_FLAGS = ("-v", "--verbose")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only`, one whose sole subcommand is that command:
    importing every command module cost a pre-commit `wasiport check one.rs` tens
    of milliseconds, and parsing `check ...` needs nothing from the others."""
    parser = argparse.ArgumentParser(
        prog="wasiport",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wasiport {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="say what was decided on the side (C host calls, caches) and, with an internal error, print its traceback (also WASIPORT_DEBUG=1)")
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = os.environ.get("WASIPORT_DEBUG", "") not in ("", "0")
    while arguments and arguments[0] in VERBOSE_FLAGS:
        verbose = True
        arguments.pop(0)
    if verbose:
        _log_to_stderr()
    # `wasiport check ...`: only the named command's module is imported. Anything else
    # (no command, an option first, an unknown name) gets the full parser and its messages.
    only = arguments[0] if arguments and arguments[0] in COMMANDS else None
    try:
        parser = build_parser(only)
        args = parser.parse_args(arguments)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        _skip_teardown = not getattr(args, "teardown", True)
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"wasiport: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("wasiport: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1
    except OSError as err:
        print(f"wasiport: error: {refusal_sentence(err)}", file=sys.stderr)
        _details(verbose)
        return EXIT_IO
    except Exception as err:  # a bug: one sentence, the traceback on request
        print(f"wasiport: internal error: {internal_sentence(err, verbose)}", file=sys.stderr)
        _details(verbose)
        return EXIT_INTERNAL


def refusal_sentence(err: OSError) -> str:
    """What the filesystem (or the system) refused, as one sentence."""
    reason = err.strerror or err.__class__.__name__
    where = f" ({err.filename})" if err.filename else ""
    return f"the system refused an operation: {reason}{where}; nothing more was done"


def _log_to_stderr() -> None:
    """--verbose: what wasiport decided on the side (C host calls on or off and why, caches)."""
    import logging  # only here: a plain `wasiport check` never pays for it

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("wasiport: %(message)s"))
    logger = logging.getLogger("wasiport")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def internal_sentence(err: Exception, verbose: bool) -> str:
    """A bug's one sentence: what broke and where, and how to get the details."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [frame for frame in frames if f"{os.sep}wasiport{os.sep}" in frame.filename]
    where = f" in {os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else ""
    text = str(err).splitlines()[0][:200] if str(err) else ""
    what = f"{err.__class__.__name__}{where}" + (f": {text}" if text else "")
    after = "" if verbose else "; rerun with --verbose (or WASIPORT_DEBUG=1) for the details"
    return f"{what} (a bug in wasiport, please report it){after}"


def _details(verbose: bool) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
