"""The git side of `wasiport apply`: a clean-tree gate, an all-or-nothing port commit, patch series.

Modelled on `cargo fix`, which refuses to touch uncommitted work and restores the
originals when the fixed code does not build. Here the port is a commit on its own
branch, so a reviewer reads it as a diff and a failed build is undone exactly.

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

Decision on crates outside version control: a crate that wasiport copied is always
given its own repository (`init_with_commit`). A crate ported in place that is not in a
git repository is refused unless the user passes `--allow-no-vcs`; then wasiport runs
`git init` there and commits the current files as a baseline, because rollback and a
reviewable diff both need a commit to return to (`require_repo`).

Git identity: the user's configuration or GIT_AUTHOR_*/GIT_COMMITTER_* variables when
present, otherwise `wasiport <wasiport@localhost>`; no global configuration is assumed.
"""
from __future__ import annotations

import contextlib
import email.utils
import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from wasiport.errors import UserError
from wasiport.fsutil import atomic_write, fsync_dir

DEFAULT_BRANCH = "wasiport/wasmedge"
FALLBACK_NAME = "wasiport"
FALLBACK_EMAIL = "wasiport@localhost"
UPSTREAM_SUBJECT_PREFIX = "upstream: "
SERIES_FILE = "series"
PREIMAGES_DIR = "preimages"

_STATE_DIR = "wasiport"  # inside the git dir
_MARKER = "transaction.json"
_TEMP_SUFFIX = ".wasiport-tmp"
_MAX_LISTED = 25
_PATCH_ID_DEPTH = 500  # recent commits searched by patch-id when metadata does not match


class Interrupted(KeyboardInterrupt):
    """SIGTERM arrived while a port transaction was open (handled like Ctrl-C)."""


# --------------------------------------------------------------------------------------
# running git


def _git_bytes(
    repo: git.Repo,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run `git ARGS` in the repository and return stdout as bytes (paths may not be UTF-8)."""
    command = ["git", *args]
    with tempfile.TemporaryFile() as stream:
        if stdin is not None:
            stream.write(stdin)
            stream.seek(0)
        output = repo.git.execute(
            command,
            istream=stream if stdin is not None else None,
            env=dict(env or {}),
            stdout_as_string=False,
            strip_newline_in_stdout=False,
        )
    assert isinstance(output, bytes)
    return output


def _git(repo: git.Repo, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
    return os.fsdecode(_git_bytes(repo, *args, stdin=stdin, env=env)).strip()


def _git_ok(repo: git.Repo, *args: str) -> bool:
    try:
        _git_bytes(repo, *args)
    except git.GitCommandError:
        return False
    return True


def _git_error_lines(err: git.GitCommandError) -> list[str]:
    stderr = err.stderr
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [line.strip().removeprefix("stderr: ").strip("'").strip() for line in str(stderr or "").splitlines()]
    return [line for line in lines if line]


def _git_error_text(err: git.GitCommandError) -> str:
    return "; ".join(_git_error_lines(err)) or str(err)


def git_error_reason(err: git.GitCommandError) -> str:
    """git's own one-line reason for a failed command (its first `fatal:` or `error:` line)."""
    lines = _git_error_lines(err)
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix):]
    return lines[0] if lines else str(err)


def _split_z(raw: bytes) -> list[str]:
    return [os.fsdecode(part) for part in raw.split(b"\0") if part]


# --------------------------------------------------------------------------------------
# repositories and identity


def find_repo_root(path: Path) -> Path | None:
    """The working tree root of the git repository containing `path`, or None."""
    start = Path(path)
    if not start.is_dir():
        start = start.parent
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    return Path(repo.working_tree_dir).resolve()


def open_repo(repo_root: Path) -> git.Repo:
    try:
        return git.Repo(Path(repo_root))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{repo_root} is not the root of a git repository") from None


def _configured(repo: git.Repo, key: str) -> bool:
    try:
        return bool(repo.git.config("--get", key).strip())
    except git.GitCommandError:
        return False


def identity_env(repo: git.Repo) -> dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* for what the user has not configured: the fallback identity.

    git refuses to commit without a name and an email, and CI machines often have no
    global configuration; the user's own settings always win."""
    env: dict[str, str] = {}
    for role in ("author", "committer"):
        for part, fallback in (("name", FALLBACK_NAME), ("email", FALLBACK_EMAIL)):
            variable = f"GIT_{role.upper()}_{part.upper()}"
            if os.environ.get(variable):
                continue
            if _configured(repo, f"{role}.{part}") or _configured(repo, f"user.{part}"):
                continue
            env[variable] = fallback
    return env


def init_with_commit(
    root: Path,
    message: str,
    *,
    include_ignored: bool = False,
    exclude: Sequence[str] = (),
) -> str:
    """`git init` ROOT and commit every file in it; return the commit id.

    `include_ignored` adds files an upstream `.gitignore` would hide, so that the first
    commit of a copied crate is the whole package. `exclude` goes to `.git/info/exclude`
    (never a tracked file): build output such as `/target/` must not make the copy dirty."""
    repo = git.Repo.init(Path(root))
    if exclude:
        info = Path(repo.git_dir) / "info"
        info.mkdir(parents=True, exist_ok=True)
        with open(info / "exclude", "a", encoding="utf-8") as handle:
            handle.write("".join(f"{pattern}\n" for pattern in exclude))
    _git(repo, "add", "-A", *(["--force"] if include_ignored else []))
    # No hooks and no signing: this commit records files as they are, it is not the user's work.
    _git(
        repo,
        "-c", "commit.gpgsign=false",
        "commit", "-q", "--no-verify", "--allow-empty", "-m", message,
        env=identity_env(repo),
    )
    return repo.head.commit.hexsha


def require_repo(path: Path, *, allow_no_vcs: bool = False, baseline_message: str = "") -> Path:
    """The repository root for a crate ported in place; refuse (or, if allowed, create) when none."""
    root = find_repo_root(path)
    if root is not None:
        return root
    if not allow_no_vcs:
        raise UserError(
            f"{path} is not in a git repository: wasiport commits a port so that it can be "
            "reviewed and rolled back",
            hint="run `git init && git add -A && git commit -m baseline` there, or pass "
            "--allow-no-vcs to let wasiport do it",
        )
    init_with_commit(Path(path), baseline_message or "wasiport: baseline before porting")
    return Path(path).resolve()


def upstream_commit(repo_root: Path, name: str | None = None, version: str | None = None) -> str | None:
    """The `upstream: NAME VERSION` commit a copied crate starts from (any, when name is None)."""
    repo = open_repo(repo_root)
    try:
        roots = _git(repo, "rev-list", "--max-parents=0", "--format=%H %s", "HEAD").splitlines()
    except git.GitCommandError:
        return None
    wanted = f"{UPSTREAM_SUBJECT_PREFIX}{name} {version}" if name is not None else None
    for line in roots:
        if line.startswith("commit "):
            continue
        sha, _, subject = line.partition(" ")
        if subject == wanted or (wanted is None and subject.startswith(UPSTREAM_SUBJECT_PREFIX)):
            return sha
    return None


# --------------------------------------------------------------------------------------
# the clean-tree gate


@dataclass(frozen=True)
class DirtyFile:
    """A file with uncommitted changes; `states` among modified, staged, untracked, conflicted."""

    path: str  # relative to the repository root, '/' separators
    states: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path} ({', '.join(self.states)})"


_UNMERGED = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}


def _states(code: str) -> tuple[str, ...]:
    if code == "??":
        return ("untracked",)
    if code in _UNMERGED:
        return ("conflicted",)
    states = []
    if code[0] not in " ?!":
        states.append("staged")
    if code[1] not in " ?!":
        states.append("modified")
    return tuple(states)


def parse_porcelain_z(raw: bytes) -> list[DirtyFile]:
    """Parse `git status --porcelain=v1 -z` output."""
    entries = raw.split(b"\0")
    result: list[DirtyFile] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        code = entry[:2].decode("ascii")
        result.append(DirtyFile(os.fsdecode(entry[3:]), _states(code)))
        if code[0] in "RC":
            index += 1  # the rename's source path follows
    return result


def _pathspecs(root: Path, paths: Sequence[Path]) -> list[str]:
    specs = []
    for path in paths:
        relative = os.path.relpath(Path(path).resolve(), root)
        if relative == os.curdir:
            return []
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise UserError(f"{path} is outside the git repository at {root}")
        specs.append(relative)
    return specs


def dirty_files(repo_root: Path, paths: Sequence[Path] = ()) -> list[DirtyFile]:
    """Uncommitted, staged and untracked files under PATHS (the whole tree when empty)."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    specs = _pathspecs(root, paths)
    raw = _git_bytes(
        repo,
        "--literal-pathspecs",
        "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none",
        "--", *specs,
    )
    return sorted(parse_porcelain_z(raw), key=lambda dirty: dirty.path)


def operation_in_progress(repo: git.Repo) -> str | None:
    """A merge, rebase, cherry-pick, revert or am that the user has not finished."""
    git_dir = Path(repo.git_dir)
    for marker, name in (
        ("rebase-merge", "rebase"),
        ("rebase-apply", "rebase or am"),
        ("MERGE_HEAD", "merge"),
        ("CHERRY_PICK_HEAD", "cherry-pick"),
        ("REVERT_HEAD", "revert"),
    ):
        if (git_dir / marker).exists():
            return name
    return None


def check_clean(repo_root: Path, paths: Sequence[Path], allow_dirty: bool = False) -> list[DirtyFile]:
    """Refuse when files under PATHS (the crate dir) have uncommitted work; dirt elsewhere is ignored.

    Returns the dirty files (empty when clean) so that a caller passing `allow_dirty`
    can say what it ported over."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    operation = operation_in_progress(repo)
    if operation is not None:
        raise UserError(
            f"{root} has a git {operation} in progress",
            hint="finish or abort it before porting",
        )
    dirty = dirty_files(root, paths)
    if dirty and not allow_dirty:
        listed = [f"  {entry}" for entry in dirty[:_MAX_LISTED]]
        if len(dirty) > _MAX_LISTED:
            listed.append(f"  ... and {len(dirty) - _MAX_LISTED} more")
        where = ", ".join(str(p) for p in paths) or str(root)
        raise UserError(
            f"wasiport would change files with uncommitted changes in {where}:\n" + "\n".join(listed),
            hint="commit or stash them first, or pass --allow-dirty to port anyway",
        )
    return dirty


# --------------------------------------------------------------------------------------
# signals


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `Interrupted` so that `with` blocks unwind and roll back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM during a critical section and deliver the first one afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {number: signal.signal(number, hold) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            signal.raise_signal(received[0])


# --------------------------------------------------------------------------------------
# HEAD and the port branch


@dataclass(frozen=True)
class _BranchPlan:
    previous_head: str
    previous_ref: str | None  # None when HEAD was detached
    branch_ref: str
    created: bool  # the branch did not exist: rollback deletes it


def _plan_branch(repo: git.Repo, branch: str) -> _BranchPlan:
    """Where the port commit goes: a new branch from HEAD, or the branch HEAD is already on."""
    if not _git_ok(repo, "check-ref-format", "--branch", branch):
        raise UserError(f"`{branch}` is not a valid git branch name")
    try:
        previous_head = _git(repo, "rev-parse", "--verify", "HEAD^{commit}")
    except git.GitCommandError:
        raise UserError(
            f"the git repository at {repo.working_tree_dir} has no commit yet",
            hint="commit the crate first, so that the port can be reviewed and undone",
        ) from None
    try:
        previous_ref: str | None = _git(repo, "symbolic-ref", "-q", "HEAD")
    except git.GitCommandError:
        previous_ref = None
    branch_ref = f"refs/heads/{branch}"
    exists = _git_ok(repo, "rev-parse", "--verify", "-q", branch_ref)
    if exists and previous_ref != branch_ref:
        raise UserError(
            f"branch {branch} already exists but is not checked out",
            hint=f"`git checkout {branch}` to continue that port, delete the branch to start over, "
            "or choose another branch with --branch",
        )
    return _BranchPlan(previous_head, previous_ref, branch_ref, created=not exists)


def _move_branch(repo: git.Repo, plan: _BranchPlan, new_commit: str, reason: str) -> None:
    if plan.created:
        _git(repo, "update-ref", "-m", reason, plan.branch_ref, new_commit, "")
        _git(repo, "symbolic-ref", "-m", reason, "HEAD", plan.branch_ref)
    else:
        _git(repo, "update-ref", "-m", reason, plan.branch_ref, new_commit, plan.previous_head)


def _restore_branch(repo: git.Repo, plan: _BranchPlan) -> None:
    """Put HEAD and the port branch back where they were. Safe to repeat."""
    reason = "wasiport: roll back"
    if plan.created:
        if plan.previous_ref is not None:
            _git(repo, "symbolic-ref", "-m", reason, "HEAD", plan.previous_ref)
        else:
            _git(repo, "update-ref", "--no-deref", "-m", reason, "HEAD", plan.previous_head)
        _git(repo, "update-ref", "-d", plan.branch_ref)
    else:
        _git(repo, "update-ref", "-m", reason, plan.branch_ref, plan.previous_head)


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
    branch: _BranchPlan
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
            branch=_BranchPlan(**data["branch"]),
            files=tuple(_FileRecord(**entry) for entry in data["files"]),
            created_dirs=tuple(data["created_dirs"]),
            index=tuple(data["index"]),
        )


def _state_dir(repo: git.Repo) -> Path:
    return Path(repo.git_dir) / _STATE_DIR


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
    state = _state_dir(repo)
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
    _restore_branch(repo, marker.branch)
    zero = "0" * len(marker.branch.previous_head)
    index_info = b"".join(os.fsencode(f"0 {zero}\t{record.path}") + b"\0" for record in marker.files)
    index_info += b"".join(os.fsencode(line) + b"\0" for line in marker.index)
    _git_bytes(repo, "update-index", "-z", "--index-info", stdin=index_info)
    # The marker goes first: backups without a marker are garbage, a marker without backups is not.
    (state / _MARKER).unlink(missing_ok=True)
    shutil.rmtree(state / "backup", ignore_errors=True)


def recover_interrupted(repo_root: Path) -> Recovery | None:
    """Undo a transaction that a killed or crashed wasiport left unfinished; None when there is none."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    marker_path = _state_dir(repo) / _MARKER
    if not marker_path.is_file():
        return None
    marker = _Marker.from_json(marker_path.read_text(encoding="utf-8"))
    if marker.host == socket.gethostname() and marker.pid != os.getpid() and _process_alive(marker.pid):
        raise UserError(
            f"another wasiport process (pid {marker.pid}) is porting the crate in {root}",
            hint=f"wait for it to finish; if it is gone, delete {marker_path}",
        )
    with _signals_held():
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
        self._plan: _BranchPlan | None = None
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
        self._plan = _plan_branch(repo, self.branch)
        self._signal_scope = contextlib.ExitStack()
        self._signal_scope.enter_context(_sigterm_raises())
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
        with _signals_held():
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
                _move_branch(repo, self._plan, new_commit, f"wasiport: {message.splitlines()[0]}")
            # The real index follows the commit for these paths only; other staged work stays staged.
            _git(repo, "--literal-pathspecs", "add", "-A", "--force", "--", *changes)
            self.commit_sha = new_commit
            self._committed = True
        return new_commit

    def _prepare(self, changes: Mapping[str, bytes | None]) -> None:
        """Back up what will change and write the marker, before touching any file."""
        assert self._repo is not None and self._plan is not None
        repo, root = self._repo, self.repo_root
        state = _state_dir(repo)
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
        index = _split_z(_git_bytes(repo, "--literal-pathspecs", "ls-files", "-s", "-z", "--", *changes))
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
        state = _state_dir(repo)
        private_index = state / "index"
        private_index.unlink(missing_ok=True)
        env = {"GIT_INDEX_FILE": str(private_index)}
        try:
            _git(repo, "read-tree", self._plan.previous_head, env=env)
            _git(repo, "--literal-pathspecs", "add", "-A", "--force", "--", *paths, env=env)
            tree = _git(repo, "write-tree", env=env)
        finally:
            private_index.unlink(missing_ok=True)
        if tree == _git(repo, "rev-parse", f"{self._plan.previous_head}^{{tree}}"):
            return None
        return _git(
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
        with _signals_held():
            _restore_from_marker(self._repo, self.repo_root, self._marker)
        self._closed = True
        self.commit_sha = None

    def _finish(self) -> None:
        assert self._repo is not None
        state = _state_dir(self._repo)
        (state / _MARKER).unlink(missing_ok=True)
        shutil.rmtree(state / "backup", ignore_errors=True)
        self._closed = True


# --------------------------------------------------------------------------------------
# patch series


def _listed_patches(series: Path) -> list[Path]:
    names = [
        line.strip()
        for line in series.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [series.parent / name for name in names]


def _series_patches(patch_dir: Path) -> list[Path]:
    """The series in order: the `series` file if present, else every *.patch by name."""
    series = patch_dir / SERIES_FILE
    if not series.is_file():
        return sorted(patch_dir.glob("*.patch"))
    patches = _listed_patches(series)
    missing = [str(p) for p in patches if not p.is_file()]
    if missing:
        raise UserError(f"{series} lists patches that do not exist: {', '.join(missing)}")
    return patches


def export_patches(
    repo_root: Path,
    base: str,
    dest_dir: Path,
    *,
    crate_name: str,
    crate_version: str,
) -> list[Path]:
    """Write the commits BASE..HEAD as a `git format-patch` series into DEST_DIR.

    Files are named `<crate>-<version>-NNNN-<subject>.patch` and listed in order in
    `series`. The preimage of every file a patch changes is stored under `preimages/`
    by blob id, which is what a 3-way apply on a fresh copy of another upstream version
    needs (that copy's history has none of this version's blobs). A previous export in
    DEST_DIR is replaced."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    try:
        base_commit = _git(repo, "rev-parse", "--verify", f"{base}^{{commit}}")
    except git.GitCommandError:
        raise UserError(f"`{base}` is not a commit in {root}") from None
    commits = _git(repo, "rev-list", "--reverse", "--no-merges", f"{base_commit}..HEAD").split()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if (dest_dir / SERIES_FILE).is_file():
        for old in _listed_patches(dest_dir / SERIES_FILE):
            old.unlink(missing_ok=True)
    shutil.rmtree(dest_dir / PREIMAGES_DIR, ignore_errors=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="wasiport-patches-") as scratch:
        if commits:
            # --zero-commit and --no-signature keep the files stable across exports;
            # --full-index records whole blob ids for the 3-way fallback.
            output = _git(
                repo,
                "format-patch", "--zero-commit", "--full-index", "--no-signature", "--no-renames",
                "-o", scratch, f"{base_commit}..HEAD",
            )
            for line in output.splitlines():
                produced = Path(line.strip())
                final = dest_dir / f"{crate_name}-{crate_version}-{produced.name}"
                shutil.move(produced, final)
                written.append(final)
    preimages = dest_dir / PREIMAGES_DIR
    for commit in commits:
        raw = _git_bytes(repo, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", f"{commit}^", commit)
        fields = raw.split(b"\0")
        for header in fields[0::2]:
            parts = header.decode("ascii", "replace").lstrip(":").split()
            if len(parts) < 5 or set(parts[2]) == {"0"}:
                continue  # an added file has no preimage
            preimages.mkdir(exist_ok=True)
            blob = parts[2]
            (preimages / blob).write_bytes(_git_bytes(repo, "cat-file", "blob", blob))
    lines = [f"# wasiport patch series for {crate_name} {crate_version}, in order"]
    lines += [path.name for path in written]
    (dest_dir / SERIES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


@dataclass(frozen=True)
class _PatchIdentity:
    author: str
    email: str
    timestamp: int
    offset: str
    subject: str


def _patch_identity(repo: git.Repo, patch: Path) -> _PatchIdentity | None:
    """Author, date and subject as `git am` would record them (read by `git mailinfo`)."""
    with tempfile.TemporaryDirectory(prefix="wasiport-mailinfo-") as scratch:
        info = _git(
            repo, "mailinfo", str(Path(scratch) / "msg"), str(Path(scratch) / "patch"),
            stdin=patch.read_bytes(),
        )
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    parsed = email.utils.parsedate_tz(fields.get("Date", ""))
    if parsed is None:
        return None
    offset_seconds = parsed[9] or 0
    sign = "-" if offset_seconds < 0 else "+"
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)
    return _PatchIdentity(
        author=fields.get("Author", ""),
        email=fields.get("Email", ""),
        timestamp=int(email.utils.mktime_tz(parsed)),
        offset=f"{sign}{hours:02d}{minutes:02d}",
        subject=" ".join(fields.get("Subject", "").split()),
    )


def _history_identities(repo: git.Repo) -> set[_PatchIdentity]:
    raw = _git(repo, "log", "--no-merges", "--date=raw", "--format=%an%x00%ae%x00%ad%x00%s", "HEAD")
    identities = set()
    for line in raw.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        timestamp, _, offset = parts[2].partition(" ")
        identities.add(_PatchIdentity(parts[0], parts[1], int(timestamp), offset, " ".join(parts[3].split())))
    return identities


def _patch_id(repo: git.Repo, diff: bytes) -> set[str]:
    output = _git(repo, "patch-id", "--stable", stdin=diff)
    return {line.split()[0] for line in output.splitlines() if line.strip()}


def _applied_flags(repo: git.Repo, patches: Sequence[Path]) -> list[bool]:
    """Which patches HEAD already carries: same author, date and subject, or the same patch-id."""
    history = _history_identities(repo)
    recent_ids: set[str] | None = None
    flags = []
    for patch in patches:
        identity = _patch_identity(repo, patch)
        if identity is not None and identity in history:
            flags.append(True)
            continue
        if recent_ids is None:
            log = _git_bytes(repo, "log", "-p", "--no-merges", f"-n{_PATCH_ID_DEPTH}", "--format=commit %H", "HEAD")
            recent_ids = _patch_id(repo, log)
        flags.append(bool(_patch_id(repo, patch.read_bytes()) & recent_ids))
    return flags


def series_applied(repo_root: Path, patch_dir: Path) -> bool:
    """True when every patch of the series in PATCH_DIR is already in HEAD's history."""
    repo = open_repo(Path(repo_root).resolve())
    return all(_applied_flags(repo, _series_patches(Path(patch_dir))))


def _load_preimages(repo: git.Repo, patch_dir: Path) -> None:
    directory = patch_dir / PREIMAGES_DIR
    if not directory.is_dir():
        return
    for blob in sorted(directory.iterdir()):
        written = _git(repo, "hash-object", "-w", "--no-filters", "--", str(blob))
        if written != blob.name:
            raise UserError(f"{blob} does not hold the blob its name says (it hashes to {written})")


def _conflicted_files(repo: git.Repo, error_text: str) -> list[str]:
    unmerged = _split_z(_git_bytes(repo, "diff", "--name-only", "--diff-filter=U", "-z"))
    if unmerged:
        return sorted(set(unmerged))
    files = []
    for line in error_text.split("; "):
        for prefix in ("error: patch failed: ", "patch failed: "):
            if line.startswith(prefix):
                files.append(line[len(prefix):].rsplit(":", 1)[0])
        if line.startswith("error: ") and line.endswith(": patch does not apply"):
            files.append(line[len("error: "):-len(": patch does not apply")])
        if line.startswith("error: ") and line.endswith(": does not exist in index"):
            files.append(line[len("error: "):-len(": does not exist in index")])
    return sorted(set(files))


def _abort_am(repo: git.Repo) -> None:
    if (Path(repo.git_dir) / "rebase-apply").exists():
        _git(repo, "am", "--abort", env=identity_env(repo))  # it writes reflog entries


def apply_series(repo_root: Path, patch_dir: Path, *, branch: str = DEFAULT_BRANCH) -> list[str]:
    """Apply the patches of PATCH_DIR that HEAD lacks (3-way) on the port branch; the new commit ids.

    Patches already in the history are skipped, so re-running is a no-op. On a patch
    that does not apply, everything this call did is undone and the `UserError` names
    the patch and the conflicting files."""
    root = Path(repo_root).resolve()
    repo = open_repo(root)
    patch_dir = Path(patch_dir)
    recover_interrupted(root)
    check_clean(root, [root])
    patches = _series_patches(patch_dir)
    todo = [patch for patch, applied in zip(patches, _applied_flags(repo, patches), strict=True) if not applied]
    if not todo:
        return []
    _load_preimages(repo, patch_dir)
    plan = _plan_branch(repo, branch)
    with _signals_held():
        if plan.created:
            _move_branch(repo, plan, plan.previous_head, "wasiport: branch for the patch series")
    try:
        _git(
            repo,
            "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false",
            "am", "--3way", "--keep-cr", "--quiet", "--whitespace=nowarn", "--",
            *(str(patch.resolve()) for patch in todo),
            env=identity_env(repo),
        )
    except git.GitCommandError as err:
        text = _git_error_text(err)
        position = Path(repo.git_dir) / "rebase-apply" / "next"
        number = int(position.read_text().strip()) if position.is_file() else 1
        failed = todo[min(number, len(todo)) - 1]
        files = _conflicted_files(repo, text)
        with _signals_held():
            _abort_am(repo)
            _restore_branch(repo, plan)
        where = f": conflicts in {', '.join(files)}" if files else f" ({text})"
        raise UserError(
            f"patch {failed.name} does not apply to {root}{where}",
            hint="nothing was applied; port this version with the rules and export a new series",
        ) from None
    except BaseException:
        with _signals_held():
            _abort_am(repo)
            _restore_branch(repo, plan)
        raise
    return _git(repo, "rev-list", "--reverse", f"{plan.previous_head}..HEAD").split()
