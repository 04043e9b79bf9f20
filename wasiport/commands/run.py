"""`wasiport run MODULE.wasm`: run a module with WasmEdge's socket host functions.

Exit codes: the module's own (proc_exit, modulo 256; 0 when _start returns),
134 when it traps (the trap and its wasm backtrace go to stderr), 124 when
--timeout stops it, 130 on Ctrl-C, 2 for bad input (no such file, not a WASI
command, a bad --allow value). A proxy-wasm plugin (it exports
`proxy_abi_version_*`) is driven through its lifecycle instead
(wasiport/commands/plugin.py, with its own exit codes).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from wasiport.commands.common import parse_env
from wasiport.commands.plugin import PLUGIN_EPILOG, add_plugin_options, plugin_options_given, run_plugin_command
from wasiport.errors import UserError

# After --timeout, blocked host calls are woken and wasm code is interrupted;
# if the module is still not done this much later (e.g. it waits on stdin
# inside wasmtime), the command gives up on it.
HARD_STOP_GRACE_SECONDS = 5.0

EPILOG = """\
network policy: by default the module may connect to, bind and send to
loopback addresses only (127.0.0.0/8, ::1). --allow HOST:PORT adds more;
HOST is an IP, a CIDR network, a name or *, PORT a number or *. IPv6 hosts
go in brackets ([::1]:8080). Binding 0.0.0.0 needs e.g. --allow 0.0.0.0:8080.
A denied call fails in the module with EACCES (PermissionDenied) and is
reported on stderr; names whose addresses are all denied do not resolve.

exit status: the module's exit code; 134 if it traps; 124 if --timeout
stops it; 130 on Ctrl-C; 2 for bad arguments.

""" + PLUGIN_EPILOG


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run",
        help="run a module (or a proxy-wasm plugin) with WasmEdge's socket host functions",
        description="Run a WASI command module, or a proxy-wasm plugin, on wasmtime with WasmEdge's socket host functions.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("module", type=Path, metavar="MODULE.wasm")
    _add_options(parser)
    # Options may also follow the module; `--` ends them (see _guest_args).
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS", help="arguments for the module")
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow", action="append", default=[], metavar="HOST:PORT", help="also allow this destination (repeatable)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set an environment variable (repeatable)"
    )
    parser.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="HOST_DIR[:GUEST_DIR]",
        help="give the module a host directory, under GUEST_DIR (default: the same path)",
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the module after this long")
    parser.add_argument("--no-cache", action="store_true", help="do not use wasmtime's compilation cache")
    parser.add_argument(
        "--runtime",
        metavar="wasmedge-X.Y",
        help="link only what that WasmEdge release defines (0.10 to 0.14): a module that would not load there fails here too",
    )
    add_plugin_options(parser)


def _guest_args(args: argparse.Namespace) -> list[str]:
    """Split what follows MODULE.wasm: our options up to `--`, the module's arguments after it."""
    rest = list(args.args)
    head, tail = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    options = argparse.ArgumentParser(prog="wasiport run", add_help=False)
    _add_options(options)
    _, unknown = options.parse_known_args(head, namespace=args)
    return unknown + tail


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from wasiport.runtime import RunConfig, RunStatus, run_module

    guest_args = _guest_args(args)

    if args.timeout is not None and args.timeout <= 0:
        raise UserError("--timeout must be a positive number of seconds")
    config = RunConfig(
        args=tuple(guest_args),
        env=tuple(parse_env(item) for item in args.env),
        dirs=tuple(parse_dir(item) for item in args.dir),
        allow=tuple(args.allow),
        timeout=args.timeout,
        cache_dir=None if args.no_cache else default_cache_dir(),
        program_name=args.module.name,
        inherit_stdin=True,
        on_denied=lambda decision: print(f"wasiport: {decision.message()}", file=sys.stderr, flush=True),
        runtime=args.runtime,
    )
    plugin = _is_plugin(args.module)
    if not plugin and plugin_options_given(args):
        raise UserError(
            f"{args.module}: {', '.join(plugin_options_given(args))} are for proxy-wasm plugins, "
            "and this module exports no proxy_abi_version_* function"
        )
    if plugin and guest_args:
        raise UserError(f"{args.module}: a proxy-wasm plugin takes no arguments (got {' '.join(guest_args)})")
    hard_stop = _hard_stop(args.timeout)
    try:
        with _cancel_on_interrupt() as cancel:
            if plugin:
                return _plugin_exit(run_plugin_command(args, replace(config, cancel=cancel)), cancel)
            outcome = run_module(args.module, replace(config, cancel=cancel))
    finally:
        if hard_stop is not None:
            hard_stop.cancel()
    if outcome.status is RunStatus.CANCELLED:
        raise KeyboardInterrupt
    if outcome.unsupported_imports:
        names = ", ".join(outcome.unsupported_imports)
        print(f"wasiport: note: the module imports {names}, which wasiport run does not provide", file=sys.stderr)
    if outcome.status is RunStatus.TRAPPED:
        print(f"wasiport: the module trapped: {outcome.message}", file=sys.stderr)
        if outcome.host_error:
            print(f"wasiport: the trap comes from a bug in wasiport's host code:\n{outcome.host_error}", file=sys.stderr)
    elif outcome.status is RunStatus.TIMED_OUT:
        print(f"wasiport: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


def _is_plugin(path: Path) -> bool:
    """Whether the module exports a proxy-wasm ABI marker (unreadable files go to the runner's checks)."""
    from wasiport.runtime.proxywasm import is_proxy_wasm_module
    from wasiport.wasm import read_module

    if not path.is_file():
        return False
    try:
        exports = read_module(path).exports
    except UserError:
        return False
    return is_proxy_wasm_module(export.name for export in exports)


def _plugin_exit(code: int, cancel: threading.Event) -> int:
    if cancel.is_set():
        raise KeyboardInterrupt
    return code


def parse_dir(text: str) -> tuple[str, str]:
    host, sep, guest = text.partition(":")
    if not host:
        raise UserError(f"--dir {text!r}: expected HOST_DIR[:GUEST_DIR]")
    return host, guest if sep and guest else host


def default_cache_dir() -> Path:
    from wasiport.paths import cache_dir

    return cache_dir() / "wasmtime"


@contextlib.contextmanager
def _cancel_on_interrupt() -> Iterator[threading.Event]:
    """An Event set by Ctrl-C, even while wasm code runs.

    Python runs its SIGINT handler only between bytecodes, never while the
    main thread is inside wasmtime, so a spinning guest would ignore Ctrl-C.
    The C-level handler does write to the wakeup fd at once; a thread reads it
    and sets the Event, which makes run_module stop the guest."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def watch() -> None:
        while data := os.read(read_fd, 64):
            if signal.SIGINT in data:
                cancel.set()

    watcher = threading.Thread(target=watch, name="wasiport-sigint", daemon=True)
    watcher.start()
    try:
        yield cancel
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_fd)  # ends the watcher's read
        watcher.join()
        os.close(read_fd)


def _hard_stop(timeout: float | None) -> threading.Timer | None:
    """The last resort when a module ignores --timeout (blocked inside wasmtime itself)."""
    if timeout is None:
        return None

    def give_up() -> None:
        print(
            f"wasiport: the module did not stop {HARD_STOP_GRACE_SECONDS:g} s after --timeout {timeout:g} s; exiting",
            file=sys.stderr,
            flush=True,
        )
        os._exit(124)  # EXIT_TIMEOUT; wasiport.runtime is not imported at module level

    timer = threading.Timer(timeout + HARD_STOP_GRACE_SECONDS, give_up)
    timer.daemon = True
    timer.start()
    return timer
