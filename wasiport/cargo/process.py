"""The one way wasiport runs cargo and rustc: where the program is, how long it may take,
and how a failure reads.

- `cargo_program` / `rustc_program`: `$CARGO` / `$RUSTC` when set (cargo sets them for
  its subcommands; a chosen toolchain pins them), else the one on PATH.
- The timeout policy: a question to rustc or rustup (`--print`, `which`) gets
  `QUERY_TIMEOUT`; a cargo command that resolves a graph (`cargo metadata`) gets
  `RESOLVE_TIMEOUT` (it may fetch an index); a build runs as long as its caller allows.
- One error format: ``cargo <command>` failed for <manifest>: <cargo's own error lines>`,
  with the offline hint when cargo's words say it could not reach the network.
- `stream_cargo` runs a build in its own process group, reading its JSON messages as they
  come, so that a timeout or Ctrl-C stops the compilers it started too.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.errors import UserError

QUERY_TIMEOUT = 60  # seconds for `rustc --print ...` and `rustup ...` queries
RESOLVE_TIMEOUT = 300  # seconds for `cargo metadata`: resolving may fetch an index
# What cargo says when it needed the network and had none (or was told to stay offline).
_OFFLINE_MARKERS = (
    "offline mode",
    "--offline was specified",
    "unable to update",
    "failed to fetch",
    "failed to download",
    "could not resolve host",
    "couldn't resolve host",
    "network is unreachable",
    "failed to connect",
)
OFFLINE_HINT = (
    "cargo could not fetch a dependency (offline, or no network): build once with network access, "
    "or vendor the sources (a directory source); the WasmEdge forks come from git, so "
    "--substitution rename or --no-build avoid them"
)


def cargo_program(env: Mapping[str, str] | None) -> str:
    """`$CARGO` when set (cargo sets it for subcommands; tests point it at Debian's cargo)."""
    return _program("CARGO", "cargo", env)


def rustc_program(env: Mapping[str, str] | None) -> str:
    """`$RUSTC` when set (a chosen toolchain pins it), else rustc on PATH."""
    return _program("RUSTC", "rustc", env)


def _program(variable: str, name: str, env: Mapping[str, str] | None) -> str:
    environ = os.environ if env is None else env
    chosen = environ.get(variable) or shutil.which(name, path=environ.get("PATH"))
    if not chosen:
        raise UserError(f"{name} was not found", hint=f"install Rust (https://rustup.rs) or set {variable} to {name}'s path")
    return chosen


def run_query(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a question to rustc or rustup; never raises: a tool
    that is missing, not executable or silent past QUERY_TIMEOUT answers with a status."""
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT,
        )
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    except PermissionError:
        return 126, "", f"{argv[0]}: not executable"
    except OSError as err:
        return 126, "", f"{argv[0]}: {err.strerror or err}"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not answer within {QUERY_TIMEOUT} s"
    return proc.returncode, proc.stdout, proc.stderr


def ask_rustc(args: Sequence[str], env: Mapping[str, str] | None) -> str:
    """rustc's answer to a question (`--print target-list`); a failure raises UserError."""
    rustc = rustc_program(env)
    code, out, err = run_query([rustc, *args], os.environ if env is None else env)
    if code != 0:
        raise UserError(f"`{rustc} {' '.join(args)}` failed: {first_line(err) or f'exit status {code}'}")
    return out


def run_cargo(
    args: Sequence[str], *, manifest_path: Path, env: Mapping[str, str] | None, timeout: float | None = RESOLVE_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `cargo <args> --manifest-path <manifest>`; a failure raises UserError with cargo's words."""
    command = [cargo_program(env), *args, "--manifest-path", str(manifest_path)]
    try:
        done = subprocess.run(
            command,
            cwd=manifest_path.parent,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except OSError as err:
        raise UserError(f"cannot run {command[0]}: {err.strerror or err}", hint="install cargo or set $CARGO") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"`cargo {args[0]}` for {manifest_path} did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        raise cargo_failure(args[0], manifest_path, done.stderr)
    return done


def cargo_failure(command: str, manifest_path: Path, stderr: str) -> UserError:
    """The one wording of a failed cargo command: cargo's error and the chain of causes it
    gives, on one line, and the offline hint if it applies."""
    return UserError(
        f"`cargo {command}` failed for {manifest_path}: {error_chain(stderr) or 'no reason given'}",
        hint=offline_hint(stderr),
    )


def error_chain(stderr: str, limit: int = 2000) -> str:
    """`error: X` and its `Caused by:` reasons as one line: `error: X: reason: deeper reason`."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.startswith("error")), None)
    chain = lines[first:] if first is not None else lines[-4:]
    text = ": ".join(line for line in chain if line != "Caused by:")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def offline_hint(stderr: str) -> str:
    """How to get on when cargo's words say it needed the network; "" otherwise."""
    lowered = stderr.lower()
    return OFFLINE_HINT if any(marker in lowered for marker in _OFFLINE_MARKERS) else ""


def wants_offline(env: Mapping[str, str]) -> bool:
    """Cargo's own switch: CARGO_NET_OFFLINE=true (cargo also reads `[net] offline` itself)."""
    return env.get("CARGO_NET_OFFLINE", "").strip().lower() in ("true", "1", "yes")


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


# ---------------------------------------------------------------------------
# Builds: streamed, in their own process group


@dataclass(frozen=True)
class CargoRun:
    returncode: int
    messages: tuple[dict, ...]
    stderr: str
    timed_out: bool


def stream_cargo(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> CargoRun:
    """Run cargo in its own process group, so that a timeout or an interrupt stops
    the compilers it started too (they hold the output pipes open)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as err:
        raise UserError(f"cannot run {argv[0]}: {err.strerror or err}", hint="install cargo or set $CARGO") from None

    timed_out = threading.Event()

    def stop_group() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone

    def on_timeout() -> None:
        timed_out.set()
        stop_group()

    stderr_lines: list[str] = []
    reader = threading.Thread(target=_pump_stderr, args=(proc.stderr, stderr_lines, progress), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, on_timeout) if timeout is not None else None
    if timer is not None:
        timer.start()
    messages: list[dict] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = _json_line(line)
            if message is not None:
                messages.append(message)
        returncode = proc.wait()
        reader.join()
    except BaseException:  # KeyboardInterrupt: cargo is not in our terminal's group
        stop_group()
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return CargoRun(returncode, tuple(messages), "".join(stderr_lines), timed_out.is_set() and returncode != 0)


def _pump_stderr(stream, sink: list[str], progress: Callable[[str], None] | None) -> None:
    for line in stream:
        sink.append(line)
        text = line.strip()
        if progress is not None and text:
            progress(short_status(text))


_LOCAL_PACKAGE_STATUS = re.compile(r"^(\w+ \S+ v\S+) \((?:/|[A-Za-z]:\\|path\+).*\)$")


def short_status(line: str) -> str:
    """`Compiling foo v1.0 (/long/path/foo)` -> `Compiling foo v1.0`; other lines as they are."""
    match = _LOCAL_PACKAGE_STATUS.match(line)
    return match.group(1) if match else line


def _json_line(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None  # build scripts and proc macros may print to stdout too
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
