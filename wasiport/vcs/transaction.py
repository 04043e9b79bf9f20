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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from wasiport.errors import UserError
from wasiport.fsutil import atomic_write, fsync_dir
from wasiport.vcs.git import (
    DEFAULT_BRANCH,
    BranchPlan,
    git_bytes,
    git_text,
    identity_env,
    move_branch,
    open_repo,
    plan_branch,
    restore_branch,
    split_z,
    state_dir,
)
from wasiport.vcs.signals import signals_held, sigterm_raises

_MARKER = "transaction.json"
_TEMP_SUFFIX = ".wasiport-tmp"


# --------------------------------------------------------------------------------------
# atomic file writes


def _write_new_file(path: Path, data: bytes, mode: int | None) -> None:
    """Create PATH (which must not exist) with DATA, durably; MODE None means the umask default."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _replace_atomically(target: Path, temp: Path, data: bytes, mode: int | None) -> None:
    temp.unlink(missing_ok=True)
    _write_new_file(temp, data, mode)
    os.replace(temp, target)


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{_TEMP_SUFFIX}")


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
        )


def _write_marker(path: Path, marker: _Marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, marker.to_json().encode())


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Recovery:
    """What `recover_interrupted` undid."""

    started: str  # when the interrupted transaction began (ISO 8601)
    pid: int  # the process that was interrupted
    restored_paths: tuple[str, ...]
    head: str  # the commit HEAD points at again
    deleted_branch: str | None  # the port branch it had created, now gone


def _restore_from_marker(repo: git.Repo, root: Path, marker: _Marker) -> None:
    """Return files, index and refs to the state recorded in the marker. Safe to repeat."""
    state = state_dir(repo)
    for record in marker.files:
        target = root / record.path
        temp = root / record.temp
        temp.unlink(missing_ok=True)
        if record.existed and record.backup is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace_atomically(target, temp, (state / record.backup).read_bytes(), record.mode)
        elif target.is_file() or target.is_symlink():
            target.unlink()
    for directory in reversed(marker.created_dirs):
        with contextlib.suppress(OSError):
            (root / directory).rmdir()
    restore_branch(repo, marker.branch)
    zero = "0" * len(marker.branch.previous_head)
    index_info = b"".join(os.fsencode(f"0 {zero}\t{record.path}") + b"\0" for record in marker.files)
    index_info += b"".join(os.fsencode(line) + b"\0" for line in marker.index)
    git_bytes(repo, "update-index", "-z", "--index-info", stdin=index_info)
    # The marker goes first: backups without a marker are garbage, a marker without backups is not.
    (state / _MARKER).unlink(missing_ok=True)
    shutil.rmtree(state / "backup", ignore_errors=True)


def recover_interrupted(repo_root: Path) -> Recovery | None:
    """Undo a transaction that a killed or crashed wasiport left unfinished; None when there is none."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    marker_path = state_dir(repo) / _MARKER
    if not marker_path.is_file():
        return None
    marker = _Marker.from_json(marker_path.read_text(encoding="utf-8"))
    if marker.host == socket.gethostname() and marker.pid != os.getpid() and _process_alive(marker.pid):
        raise UserError(
            f"another wasiport process (pid {marker.pid}) is porting the crate in {root}",
            hint=f"wait for it to finish; if it is gone, delete {marker_path}",
        )
    with signals_held():
        _restore_from_marker(repo, root, marker)
    return Recovery(
        started=marker.started,
        pid=marker.pid,
        restored_paths=tuple(record.path for record in marker.files),
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
        self._signal_scope: contextlib.ExitStack | None = None

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> PortTransaction:
        repo = open_repo(self.repo_root)
        if Path(repo.working_tree_dir or "").resolve() != self.repo_root:
            raise UserError(f"{self.repo_root} is not the root of its git repository")
        self._repo = repo
        self.recovered = recover_interrupted(self.repo_root)
        self._plan = plan_branch(repo, self.branch)
        self._signal_scope = contextlib.ExitStack()
        self._signal_scope.enter_context(sigterm_raises())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if self._marker is not None and not self._closed:
                if exc_type is not None and not (self._committed and self.keep_on_error):
                    self.rollback()
                else:
                    self._finish()
        finally:
            if self._signal_scope is not None:
                self._signal_scope.close()

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
        repo, root = self._repo, self.repo_root
        changes = self._effective_changes()
        if not changes:
            return None
        self._prepare(changes)
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
        with signals_held():
            for relative, data in changes.items():
                target = root / relative
                if data is None:
                    target.unlink()
                else:
                    os.replace(_temp_name(target), target)
            for directory in {(root / relative).parent for relative in changes}:
                fsync_dir(directory)
            self.changed_paths = tuple(changes)
            new_commit = self._make_commit(message, list(changes))
            if new_commit is not None:
                move_branch(repo, self._plan, new_commit, f"wasiport: {message.splitlines()[0]}")
            # The real index follows the commit for these paths only; other staged work stays staged.
            git_text(repo, "--literal-pathspecs", "add", "-A", "--force", "--", *changes)
            self.commit_sha = new_commit
            self._committed = True
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

    def rollback(self) -> None:
        """Restore the commit, index entries and file bytes/modes from before `commit`."""
        if self._repo is None:
            raise RuntimeError("use PortTransaction in a `with` block")
        if self._closed or self._marker is None:
            self._closed = True
            return
        with signals_held():
            _restore_from_marker(self._repo, self.repo_root, self._marker)
        self._closed = True
        self.commit_sha = None

    def _finish(self) -> None:
        assert self._repo is not None
        state = state_dir(self._repo)
        (state / _MARKER).unlink(missing_ok=True)
        shutil.rmtree(state / "backup", ignore_errors=True)
        self._closed = True
