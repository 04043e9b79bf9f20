"""The port transaction: an all-or-nothing port commit that a killed process cannot leave half done.

Modelled on `cargo fix`, which restores the originals when the fixed code does not
build. Here the port is a commit on its own branch, so a reviewer reads it as a diff
and a failed build is undone exactly.

The order `apply` follows:

    recover_interrupted(root)          # undo a transaction a killed process left behind
    check_clean(root, [crate.root])    # refuse to overwrite uncommitted work
    with PortTransaction(root) as txn:
        txn.write(path, new_text) ...  # nothing touches the disk yet
        txn.commit(message)            # all files replaced, one commit on the port branch
        if not build_ok:
            txn.rollback()             # previous commit, index and bytes, exactly

Crash safety. Before the first file is replaced, the transaction writes a marker
(`<git dir>/wasiport/transaction.json`) and a copy of every file it will touch. A
process that is killed at any point leaves the marker behind; the next
`PortTransaction` (or an explicit `recover_interrupted`) puts the previous state back.
Finishing a transaction is deleting the marker, so the repository is always in the
state before the port or, once the transaction is finished, after it: never a mix.
SIGINT and SIGTERM are held during the few steps that replace files and move refs,
and SIGTERM raises `Interrupted` inside the `with` block so that the rollback runs.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from wasiport.errors import FilesystemRefused, UserError
from wasiport.faults import crash_point
from wasiport.fsutil import atomic_write, fsync_dir
from wasiport.vcs.git import (
    DEFAULT_BRANCH,
    BranchPlan,
    git_bytes,
    git_error_reason,
    git_text,
    identity_env,
    move_branch,
    open_repo,
    plan_branch,
    restore_branch,
    split_z,
    state_dir,
)
from wasiport.vcs.lock import boot_id, process_alive, repository_lock
from wasiport.vcs.signals import signals_held, sigterm_raises

_MARKER = "transaction.json"
_TEMP_SUFFIX = ".wasiport-tmp"
_open_transactions: set[Path] = set()  # repositories with a transaction open in this process


# --------------------------------------------------------------------------------------
# atomic file writes


def _write_new_file(path: Path, data: bytes, mode: int | None) -> None:
    """Create PATH (which must not exist) with DATA, durably; MODE None means the umask default.

    A write that fails half way (a full disk) removes what it created."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    finally:
        os.close(fd)


def _replace_atomically(target: Path, temp: Path, data: bytes, mode: int | None) -> None:
    temp.unlink(missing_ok=True)
    _write_new_file(temp, data, mode)
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{_TEMP_SUFFIX}")


def os_error_reason(err: OSError) -> str:
    """`path: reason` of a refused file operation, without Python's `[Errno N]`; a temporary
    sibling is named by the file it stands for."""
    reason = err.strerror or str(err)
    if not err.filename:
        return reason
    path = Path(os.fsdecode(err.filename))
    if path.name.startswith(".") and path.name.endswith(_TEMP_SUFFIX):
        path = path.with_name(path.name[1 : -len(_TEMP_SUFFIX)])
    return f"{path}: {reason}"


def listed(paths: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# --------------------------------------------------------------------------------------
# the transaction marker


@dataclass(frozen=True)
class _FileRecord:
    path: str  # relative to the repository root
    temp: str  # the temporary sibling the new bytes are written to first
    existed: bool
    mode: int | None  # permission bits before the transaction
    backup: str | None  # the copy of the old bytes, relative to the state dir


@dataclass(frozen=True)
class _Marker:
    """Everything needed to return to the state before a transaction, written before it starts."""

    pid: int
    host: str
    started: str
    branch: BranchPlan
    files: tuple[_FileRecord, ...]
    created_dirs: tuple[str, ...]  # parents first
    index: tuple[str, ...]  # `git ls-files -s` lines of the touched paths
    boot: str = ""  # the machine's boot id: a pid from another boot is not this process

    def to_json(self) -> str:
        return json.dumps({"version": 1, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> _Marker:
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started=str(data["started"]),
            branch=BranchPlan(**data["branch"]),
            files=tuple(_FileRecord(**entry) for entry in data["files"]),
            created_dirs=tuple(data["created_dirs"]),
            index=tuple(data["index"]),
            boot=str(data.get("boot", "")),
        )


def _write_marker(path: Path, marker: _Marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, marker.to_json().encode())


@dataclass(frozen=True)
class RestoreReport:
    """What a rollback put back, and what the filesystem (or git) would not let it."""

    restored: tuple[str, ...]  # files whose old bytes (or absence) are back
    failed: tuple[tuple[str, str], ...]  # (what, why)

    @property
    def complete(self) -> bool:
        return not self.failed

    def sentence(self) -> str:
        done = f"restored {listed(self.restored)}" if self.restored else "no file had changed yet"
        if self.complete:
            return f"{done}; the files, the index and HEAD are as before"
        failed = "; ".join(f"{what} ({why})" for what, why in self.failed)
        return f"{done}; could NOT restore {failed}"


@dataclass(frozen=True)
class Recovery:
    """What `recover_interrupted` undid."""

    started: str  # when the interrupted transaction began (ISO 8601)
    pid: int  # the process that was interrupted
    restored_paths: tuple[str, ...]
    head: str  # the commit HEAD points at again
    deleted_branch: str | None  # the port branch it had created, now gone

    def describe(self) -> str:
        """One sentence for a note: never a Python object's repr."""
        files = f"{len(self.restored_paths)} file(s) restored ({listed(self.restored_paths)})" if self.restored_paths else "no file needed restoring"
        branch = f", branch {self.deleted_branch} deleted" if self.deleted_branch else ""
        return f"the run of pid {self.pid} started {self.started} was cut short and is undone: {files}, HEAD back at {self.head[:12]}{branch}"

    def __str__(self) -> str:
        return self.describe()


def _restore_file(root: Path, state: Path, record: _FileRecord) -> bool:
    """Put one file back; True when it had to change. Raises OSError when the filesystem refuses."""
    target = root / record.path
    temp = root / record.temp
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    if not (record.existed and record.backup is not None):
        if target.is_file() or target.is_symlink():
            target.unlink()
            return True
        return False
    old = (state / record.backup).read_bytes()
    if target.is_file() and not target.is_symlink() and target.read_bytes() == old:
        if record.mode is not None and stat.S_IMODE(target.stat().st_mode) != record.mode:
            os.chmod(target, record.mode)
        return False  # never replaced (the write failed first), or already restored
    target.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(target, temp, old, record.mode)
    return True


def _restore_from_marker(repo: git.Repo, root: Path, marker: _Marker) -> RestoreReport:
    """Return files, index and refs to the state recorded in the marker, as far as the filesystem
    allows. Safe to repeat. The marker and backups are removed only when everything is back:
    otherwise the next run tries again."""
    state = state_dir(repo)
    restored: list[str] = []
    failed: list[tuple[str, str]] = []
    for record in marker.files:
        try:
            if _restore_file(root, state, record):
                restored.append(record.path)
        except OSError as err:
            failed.append((record.path, err.strerror or str(err)))
    for directory in reversed(marker.created_dirs):
        with contextlib.suppress(OSError):
            (root / directory).rmdir()
    try:
        restore_branch(repo, marker.branch)
    except git.GitCommandError as err:
        failed.append(("HEAD and the port branch", git_error_reason(err)))
    zero = "0" * len(marker.branch.previous_head)
    index_info = b"".join(os.fsencode(f"0 {zero}\t{record.path}") + b"\0" for record in marker.files)
    index_info += b"".join(os.fsencode(line) + b"\0" for line in marker.index)
    try:
        git_bytes(repo, "update-index", "-z", "--index-info", stdin=index_info)
    except git.GitCommandError as err:
        failed.append(("the index", git_error_reason(err)))
    if not failed:
        # The marker goes first: backups without a marker are garbage, a marker without backups is not.
        (state / _MARKER).unlink(missing_ok=True)
        shutil.rmtree(state / "backup", ignore_errors=True)
    return RestoreReport(tuple(restored), tuple(failed))


def _marker_owner_alive(marker: _Marker) -> bool:
    """Whether the process that wrote MARKER may still be running (it cannot be, under the lock,
    unless it predates the lock; a marker from another host is never taken over blindly)."""
    if marker.host != socket.gethostname():
        return True
    if marker.boot and marker.boot != boot_id():
        return False
    return marker.pid != os.getpid() and process_alive(marker.pid)


def recover_interrupted(repo_root: Path) -> Recovery | None:
    """Undo a transaction that a killed or crashed wasiport left unfinished; None when there is none.

    Holds the repository's writer lock (waiting for a live writer, see `vcs.lock`). When the
    filesystem does not let everything be restored, FilesystemRefused says what was and what not."""
    root = Path(repo_root).resolve()
    with repository_lock(root):
        return _recover_locked(root)


def _recover_locked(root: Path) -> Recovery | None:
    repo = open_repo(root)
    marker_path = state_dir(repo) / _MARKER
    if not marker_path.is_file():
        return None
    try:
        marker = _Marker.from_json(marker_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{marker_path} is damaged ({err.__class__.__name__}), so an interrupted port cannot be undone automatically",
            hint=f"check `git status` in {root}, restore the files by hand, then delete {marker_path}",
        ) from None
    if root in _open_transactions and marker.pid == os.getpid():
        return None  # our own open transaction (see PortTransaction.__enter__)
    if _marker_owner_alive(marker):
        raise UserError(
            f"another wasiport process (pid {marker.pid} on {marker.host}) is porting the crate in {root}",
            hint=f"wait for it to finish; if it is gone, delete {marker_path}",
        )
    with signals_held():
        report = _restore_from_marker(repo, root, marker)
    if not report.complete:
        raise FilesystemRefused(
            f"an interrupted port in {root} could not be fully undone: {report.sentence()}",
            hint="make those files writable (or free some space) and run wasiport again: it retries",
        )
    return Recovery(
        started=marker.started,
        pid=marker.pid,
        restored_paths=report.restored,
        head=marker.branch.previous_head,
        deleted_branch=marker.branch.branch_ref.removeprefix("refs/heads/") if marker.branch.created else None,
    )


# --------------------------------------------------------------------------------------
# the transaction


class PortTransaction:
    """Write a port's files all at once and commit them on the port branch, or undo it all.

    `write`/`remove` only queue changes. `commit(message)` replaces every file
    atomically, makes one commit on BRANCH (created from HEAD, or reused when HEAD is
    on it) and returns its id (None when nothing changed). `rollback()` restores the
    previous commit, index and file bytes and modes. An exception in the `with` block
    rolls back, except one raised after a complete commit with `keep_on_error=True`
    (the caller's `--keep-broken`). Commits go through git plumbing: no hooks run, and
    changes the user staged elsewhere stay staged and out of the commit."""

    def __init__(self, repo_root: Path, *, branch: str = DEFAULT_BRANCH, keep_on_error: bool = False) -> None:
        self.repo_root = Path(repo_root).resolve()
        self.branch = branch
        self.keep_on_error = keep_on_error
        self.recovered: Recovery | None = None
        self.commit_sha: str | None = None
        self.changed_paths: tuple[str, ...] = ()
        self._pending: dict[str, bytes | None] = {}
        self._repo: git.Repo | None = None
        self._plan: BranchPlan | None = None
        self._marker: _Marker | None = None
        self._committed = False
        self._closed = False
        self._scope: contextlib.ExitStack | None = None

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> PortTransaction:
        repo = open_repo(self.repo_root)
        if Path(repo.working_tree_dir or "").resolve() != self.repo_root:
            raise UserError(f"{self.repo_root} is not the root of its git repository")
        if self.repo_root in _open_transactions:
            raise UserError(f"a port of another crate in {self.repo_root} is still open: one transaction per repository at a time")
        scope = contextlib.ExitStack()
        try:
            # The writer lock for the whole transaction: never two on one repository.
            scope.enter_context(repository_lock(self.repo_root))
            self._repo = repo
            self.recovered = _recover_locked(self.repo_root)
            self._plan = plan_branch(repo, self.branch)
            scope.enter_context(sigterm_raises())
        except BaseException:
            scope.close()
            raise
        self._scope = scope
        _open_transactions.add(self.repo_root)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if self._marker is not None and not self._closed:
                if exc_type is not None and not (self._committed and self.keep_on_error):
                    self._rollback_after(exc)
                else:
                    self._finish()
        finally:
            _open_transactions.discard(self.repo_root)
            if self._scope is not None:
                self._scope.close()

    def _rollback_after(self, exc: BaseException | None) -> None:
        """Roll back because of EXC; a rollback the filesystem refuses in part is reported with it."""
        report = self._restore()
        if report.complete:
            return
        cause = str(exc) if isinstance(exc, UserError) else (os_error_reason(exc) if isinstance(exc, OSError) else "the port was interrupted")
        raise FilesystemRefused(
            f"{cause}; and the rollback is incomplete: {report.sentence()}",
            hint="make those files writable (or free some space) and run wasiport again: it finishes the rollback",
        ) from exc

    # -- queueing ----------------------------------------------------------------------

    def _relative(self, path: Path | str) -> str:
        candidate = Path(path)
        absolute = Path(os.path.normpath(candidate if candidate.is_absolute() else self.repo_root / candidate))
        # Resolve the directory only: the file itself may not exist yet.
        absolute = absolute.parent.resolve() / absolute.name
        try:
            relative = absolute.relative_to(self.repo_root)
        except ValueError:
            relative = None
        if relative is None or not relative.parts or relative.parts[0] == ".git":
            raise UserError(f"{path} is outside the crate's repository {self.repo_root}")
        return relative.as_posix()

    def write(self, path: Path | str, data: bytes | str) -> None:
        """Queue PATH (relative to the repository root, or absolute inside it) to hold DATA."""
        self._require_open()
        self._pending[self._relative(path)] = data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def remove(self, path: Path | str) -> None:
        """Queue PATH for deletion."""
        self._require_open()
        self._pending[self._relative(path)] = None

    def _require_open(self) -> None:
        if self._repo is None:
            raise RuntimeError("use PortTransaction in a `with` block")
        if self._marker is not None:
            raise RuntimeError("this transaction has already written its files")

    # -- commit ------------------------------------------------------------------------

    def _effective_changes(self) -> dict[str, bytes | None]:
        """Drop queued changes that would leave a file as it is."""
        changes: dict[str, bytes | None] = {}
        for relative, data in sorted(self._pending.items()):
            target = self.repo_root / relative
            if target.is_symlink():
                raise UserError(f"refusing to write through the symbolic link {target}")
            if data is None:
                if target.exists():
                    changes[relative] = None
            elif not target.is_file() or target.read_bytes() != data:
                changes[relative] = data
        return changes

    def commit(self, message: str) -> str | None:
        """Replace all queued files and commit them; the commit id, or None when nothing changed."""
        self._require_open()
        assert self._repo is not None and self._plan is not None
        if not message.strip():
            raise ValueError("a port commit needs a message")
        repo = self._repo
        changes = self._effective_changes()
        if not changes:
            return None
        try:
            return self._write_and_commit(message, changes)
        except (OSError, git.GitCommandError) as err:
            reason = os_error_reason(err) if isinstance(err, OSError) else f"git refused: {git_error_reason(err)}"
            if self._marker is None:  # nothing was touched: the backups could not even be made
                shutil.rmtree(state_dir(repo) / "backup", ignore_errors=True)
                raise FilesystemRefused(f"cannot write the port: {reason}; nothing was changed") from None
            report = self._restore()
            if report.complete:
                raise FilesystemRefused(f"cannot write the port: {reason}; rolled back: {report.sentence()}") from None
            raise FilesystemRefused(
                f"cannot write the port: {reason}; and the rollback is incomplete: {report.sentence()}",
                hint="make those files writable (or free some space) and run wasiport again: it finishes the rollback",
            ) from None

    def _write_and_commit(self, message: str, changes: Mapping[str, bytes | None]) -> str | None:
        assert self._repo is not None and self._plan is not None
        repo, root = self._repo, self.repo_root
        self._prepare(changes)
        crash_point("prepared")
        # Every new file is written in full first (where a full disk or a bad path shows up),
        # so that the visible step is a run of renames.
        for relative, data in changes.items():
            if data is not None:
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                existing_mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
                temp = _temp_name(target)
                temp.unlink(missing_ok=True)
                _write_new_file(temp, data, existing_mode)
        crash_point("written")
        with signals_held():
            for number, (relative, data) in enumerate(changes.items()):
                target = root / relative
                if data is None:
                    target.unlink()
                else:
                    os.replace(_temp_name(target), target)
                if number == 0:
                    crash_point("replaced-one")
            for directory in {(root / relative).parent for relative in changes}:
                fsync_dir(directory)
            self.changed_paths = tuple(changes)
            new_commit = self._make_commit(message, list(changes))
            crash_point("commit-object")
            if new_commit is not None:
                move_branch(repo, self._plan, new_commit, f"wasiport: {message.splitlines()[0]}")
            crash_point("branch-moved")
            # The real index follows the commit for these paths only; other staged work stays staged.
            git_text(repo, "--literal-pathspecs", "add", "-A", "--force", "--", *changes)
            self.commit_sha = new_commit
            self._committed = True
        crash_point("committed")
        return new_commit

    def _prepare(self, changes: Mapping[str, bytes | None]) -> None:
        """Back up what will change and write the marker, before touching any file."""
        assert self._repo is not None and self._plan is not None
        repo, root = self._repo, self.repo_root
        state = state_dir(repo)
        shutil.rmtree(state / "backup", ignore_errors=True)
        (state / "backup").mkdir(parents=True)
        records = []
        created_dirs: list[str] = []
        for number, relative in enumerate(changes):
            target = root / relative
            existed = target.is_file()
            backup = f"backup/{number}" if existed else None
            if backup is not None:
                shutil.copyfile(target, state / backup)
            for parent in reversed(target.parents):
                if parent != root and root in parent.parents and not parent.exists():
                    name = parent.relative_to(root).as_posix()
                    if name not in created_dirs:
                        created_dirs.append(name)
            records.append(
                _FileRecord(
                    path=relative,
                    temp=_temp_name(target).relative_to(root).as_posix(),
                    existed=existed,
                    mode=stat.S_IMODE(target.stat().st_mode) if existed else None,
                    backup=backup,
                )
            )
        index = split_z(git_bytes(repo, "--literal-pathspecs", "ls-files", "-s", "-z", "--", *changes))
        self._marker = _Marker(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            branch=self._plan,
            files=tuple(records),
            created_dirs=tuple(created_dirs),
            index=tuple(index),
            boot=boot_id(),
        )
        _write_marker(state / _MARKER, self._marker)

    def _make_commit(self, message: str, paths: list[str]) -> str | None:
        """Build the port commit in a private index; None when the tree did not change."""
        assert self._repo is not None and self._plan is not None
        repo = self._repo
        state = state_dir(repo)
        private_index = state / "index"
        private_index.unlink(missing_ok=True)
        env = {"GIT_INDEX_FILE": str(private_index)}
        try:
            git_text(repo, "read-tree", self._plan.previous_head, env=env)
            git_text(repo, "--literal-pathspecs", "add", "-A", "--force", "--", *paths, env=env)
            tree = git_text(repo, "write-tree", env=env)
        finally:
            private_index.unlink(missing_ok=True)
        if tree == git_text(repo, "rev-parse", f"{self._plan.previous_head}^{{tree}}"):
            return None
        return git_text(
            repo,
            "commit-tree", tree, "-p", self._plan.previous_head, "-F", "-",
            stdin=message.encode("utf-8"),
            env=identity_env(repo),
        )

    # -- ending ------------------------------------------------------------------------

    def rollback(self) -> RestoreReport:
        """Restore the commit, index entries and file bytes/modes from before `commit`.

        FilesystemRefused when the filesystem does not let everything be put back; it says
        what was restored and what was not (the marker stays: the next run finishes it)."""
        report = self._restore()
        if not report.complete:
            raise FilesystemRefused(
                f"the rollback is incomplete: {report.sentence()}",
                hint="make those files writable (or free some space) and run wasiport again: it finishes the rollback",
            )
        return report

    def _restore(self) -> RestoreReport:
        if self._repo is None:
            raise RuntimeError("use PortTransaction in a `with` block")
        if self._closed or self._marker is None:
            self._closed = True
            return RestoreReport((), ())
        with signals_held():
            report = _restore_from_marker(self._repo, self.repo_root, self._marker)
        self._closed = True
        self.commit_sha = None
        return report

    def _finish(self) -> None:
        assert self._repo is not None
        crash_point("before-finish")
        state = state_dir(self._repo)
        (state / _MARKER).unlink(missing_ok=True)
        shutil.rmtree(state / "backup", ignore_errors=True)
        self._closed = True
