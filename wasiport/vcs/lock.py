"""Writer locks: one wasiport process at a time writes to a repository or to a consumer project.

Two `wasiport apply` on one crate used to share the private index, the backups and the
transaction marker under `.git/wasiport/`, and could commit each other's half-written
files. Every command that writes now holds the lock of what it writes to:

- a crate's repository: `<git dir>/wasiport/lock`;
- a consumer project (its Cargo.toml gets `[patch]`, its folder gets copies): the lock of
  the git repository the manifest is in, or `<project>/target/wasiport.lock` outside git
  (build output, which nobody commits).

How:

- `flock(LOCK_EX)` on the lock file. The kernel drops the lock when its holder exits,
  however it exits, so a SIGKILLed holder never leaves a lock that blocks the next run.
  Its *record* stays: the holder writes who it is into the file (pid, host, boot id,
  command, since) and blanks it on release, so a record found under a free lock is the
  trace of a killed process. The caller is told (`Acquired.previous`) and the transaction
  marker the killed process left is recovered by the transaction itself.
- A second writer polls for a bounded time (`wait`, default $WASIPORT_LOCK_WAIT or 30 s)
  and then refuses with `LockBusy` (exit 75, "try again later"), naming the holder.
- Where the filesystem has no flock (ENOLCK/EOPNOTSUPP on some network filesystems) the
  lock is a file created with O_EXCL next to it (`lock.owner`). Such a file can outlive
  its process, so it is taken over when its record proves the holder gone: same host and
  the same boot, and no such pid; or same host and another boot (the machine restarted).
- Reentrant within a process: `flock` belongs to an open file description, and a second
  `open()` of the same file in one process would wait for itself. Locks are counted per
  path instead (a crate ported in place inside its consumer's repository shares its lock).
- Order: the consumer's lock, then the crate's, so that two processes cannot each hold
  one and wait for the other.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wasiport.errors import EXIT_TEMPFAIL, UserError
from wasiport.vcs.git import find_repo_root, open_repo, state_dir

LOCK_FILE = "lock"
OWNER_FILE = "lock.owner"  # the O_EXCL fallback where flock is not supported
DEFAULT_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class LockBusy(UserError):
    """Another live wasiport process holds the lock: try again later."""

    exit_code = EXIT_TEMPFAIL


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as it wrote itself into the lock file."""

    pid: int
    host: str
    boot: str
    command: str
    since: str  # ISO 8601, UTC

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, `{self.command}`, since {self.since}"

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "boot": self.boot, "command": self.command, "since": self.since})


@dataclass(frozen=True)
class Acquired:
    """A lock now held; `previous` is the record of a holder that died holding it."""

    path: Path
    previous: Holder | None


def default_wait() -> float:
    """$WASIPORT_LOCK_WAIT seconds (a bad value is ignored), else 30."""
    text = os.environ.get("WASIPORT_LOCK_WAIT", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_WAIT_SECONDS
    return value if value >= 0 else DEFAULT_WAIT_SECONDS


def boot_id() -> str:
    """This boot of this machine (pids are reused across boots); empty where unknown."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def current_holder() -> Holder:
    arguments = " ".join(sys.argv[1:])
    command = f"wasiport {arguments}".strip()
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        boot=boot_id(),
        command=command if len(command) <= 120 else command[:117] + "...",
        since=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_holder(text: str) -> Holder | None:
    """The record in a lock file; None when blank or not a record (an older or damaged file)."""
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data["host"]), str(data.get("boot", "")), str(data["command"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def holder_gone(holder: Holder) -> bool:
    """True only when the record proves its process has exited (never guessed across hosts)."""
    if holder.host != socket.gethostname():
        return False
    here = boot_id()
    if holder.boot and here and holder.boot != here:
        return True  # the machine restarted since
    return holder.pid != os.getpid() and not process_alive(holder.pid)


# -- the process's own locks --------------------------------------------------------------


@dataclass
class _Held:
    fd: int
    depth: int
    fallback: Path | None  # the owner file of the O_EXCL fallback


_held: dict[str, _Held] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def writer_lock(lock_path: Path, *, what: str, wait: float | None = None) -> Iterator[Acquired]:
    """Hold the lock at LOCK_PATH for writing WHAT (a folder, for messages), waiting at most WAIT s."""
    key = os.path.realpath(lock_path)
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield Acquired(Path(key), None)
        finally:
            _release(key)
        return
    acquired = _acquire(Path(key), what, default_wait() if wait is None else wait)
    try:
        yield acquired
    finally:
        _release(key)


def _acquire(path: Path, what: str, wait: float) -> Acquired:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fallback = None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError as err:
                if err.errno not in _NO_FLOCK:
                    raise
                fallback = path.with_name(OWNER_FILE)
                _acquire_owner_file(fallback, what, deadline, wait)
                break
            if time.monotonic() >= deadline:
                raise _busy(what, _read_record(fd), wait)
            time.sleep(POLL_SECONDS)
        previous = _read_record(fd) if fallback is None else None
        _write_record(fd, current_holder().to_json())
    except BaseException:
        os.close(fd)
        raise
    with _guard:
        _held[str(path)] = _Held(fd, 1, fallback)
    return Acquired(path, previous)


def _acquire_owner_file(owner: Path, what: str, deadline: float, wait: float) -> None:
    """The O_EXCL fallback: create OWNER, or take it over from a holder proven gone."""
    while True:
        try:
            fd = os.open(owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            try:
                record = parse_holder(owner.read_text(encoding="utf-8"))
            except OSError:
                record = None
            if record is not None and holder_gone(record):
                owner.unlink(missing_ok=True)
                continue
            if time.monotonic() >= deadline:
                raise _busy(what, record, wait) from None
            time.sleep(POLL_SECONDS)
            continue
        try:
            os.write(fd, current_holder().to_json().encode("utf-8"))
        finally:
            os.close(fd)
        return


def _busy(what: str, holder: Holder | None, wait: float) -> LockBusy:
    who = holder.describe() if holder is not None else "a process that did not say who it is"
    waited = f"after waiting {wait:g} s" if wait > 0 else "without waiting"
    return LockBusy(
        f"another wasiport process is writing to {what} ({who}); gave up {waited}",
        hint="let it finish and run again, or wait longer with --wait SECONDS (or $WASIPORT_LOCK_WAIT)",
    )


def _read_record(fd: int) -> Holder | None:
    try:
        return parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except OSError:
        return None


def _write_record(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8"), 0)


def _release(key: str) -> None:
    with _guard:
        held = _held[key]
        held.depth -= 1
        if held.depth:
            return
        del _held[key]
    # Blank the record first: a record under a free lock means its holder was killed.
    with contextlib.suppress(OSError):
        _write_record(held.fd, "")
    if held.fallback is not None:
        held.fallback.unlink(missing_ok=True)
    os.close(held.fd)  # releases the flock


def holds(lock_path: Path) -> bool:
    """Whether this process holds the lock at LOCK_PATH."""
    with _guard:
        return os.path.realpath(lock_path) in _held


# -- what is locked ------------------------------------------------------------------------


def repository_lock_path(repo_root: Path) -> Path:
    return state_dir(open_repo(Path(repo_root))) / LOCK_FILE


def project_lock_path(manifest: Path) -> Path:
    """A consumer project's lock: its repository's, or under its target folder outside git."""
    folder = Path(manifest).resolve().parent
    root = find_repo_root(folder)
    if root is not None:
        return repository_lock_path(root)
    return folder / "target" / "wasiport.lock"


def repository_lock(repo_root: Path, *, wait: float | None = None) -> contextlib.AbstractContextManager[Acquired]:
    """Hold the writer lock of the repository at REPO_ROOT (see the module docstring)."""
    return writer_lock(repository_lock_path(repo_root), what=str(Path(repo_root).resolve()), wait=wait)


def project_lock(manifest: Path, *, wait: float | None = None) -> contextlib.AbstractContextManager[Acquired]:
    """Hold the writer lock of the project whose Cargo.toml is MANIFEST."""
    return writer_lock(project_lock_path(manifest), what=str(Path(manifest).resolve()), wait=wait)
