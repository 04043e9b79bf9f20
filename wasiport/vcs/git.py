"""Running git, and what every other part of `wasiport.vcs` needs of a repository.

One gateway to git: commands run through `git_bytes`/`git_text` (GitPython's
`execute`, so paths that are not UTF-8 survive). Also here: finding and opening a
repository, the commit identity, the private state folder under the git dir, and
moving HEAD and the port branch.

Git identity: the user's configuration or GIT_AUTHOR_*/GIT_COMMITTER_* variables when
present, otherwise `wasiport <wasiport@localhost>`; no global configuration is assumed.

Decision on crates outside version control: a crate that wasiport copied is always
given its own repository (`init_with_commit`). A crate ported in place that is not in a
git repository is refused unless the user passes `--allow-no-vcs`; then wasiport runs
`git init` there and commits the current files as a baseline, because rollback and a
reviewable diff both need a commit to return to (`require_repo`).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from wasiport.errors import UserError

DEFAULT_BRANCH = "wasiport/wasmedge"
FALLBACK_NAME = "wasiport"
FALLBACK_EMAIL = "wasiport@localhost"
UPSTREAM_SUBJECT_PREFIX = "upstream: "
STATE_DIR = "wasiport"  # inside the git dir: the transaction marker, backups, the lock


# --------------------------------------------------------------------------------------
# running git


def git_bytes(
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


def git_text(repo: git.Repo, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
    return os.fsdecode(git_bytes(repo, *args, stdin=stdin, env=env)).strip()


def git_succeeds(repo: git.Repo, *args: str) -> bool:
    try:
        git_bytes(repo, *args)
    except git.GitCommandError:
        return False
    return True


def _git_error_lines(err: git.GitCommandError) -> list[str]:
    stderr = err.stderr
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [line.strip().removeprefix("stderr: ").strip("'").strip() for line in str(stderr or "").splitlines()]
    return [line for line in lines if line]


def git_error_text(err: git.GitCommandError) -> str:
    return "; ".join(_git_error_lines(err)) or str(err)


def git_error_reason(err: git.GitCommandError) -> str:
    """git's own one-line reason for a failed command (its first `fatal:` or `error:` line)."""
    lines = _git_error_lines(err)
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix):]
    return lines[0] if lines else str(err)


def split_z(raw: bytes) -> list[str]:
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
    git_text(repo, "add", "-A", *(["--force"] if include_ignored else []))
    # No hooks and no signing: this commit records files as they are, it is not the user's work.
    git_text(
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
        roots = git_text(repo, "rev-list", "--max-parents=0", "--format=%H %s", "HEAD").splitlines()
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
# the private state folder


def state_dir(repo: git.Repo) -> Path:
    """`<git dir>/wasiport/`: never part of the work tree, shared by every worktree's process."""
    return Path(repo.git_dir) / STATE_DIR


# --------------------------------------------------------------------------------------
# HEAD and the port branch


@dataclass(frozen=True)
class BranchPlan:
    previous_head: str
    previous_ref: str | None  # None when HEAD was detached
    branch_ref: str
    created: bool  # the branch did not exist: rollback deletes it


def plan_branch(repo: git.Repo, branch: str) -> BranchPlan:
    """Where the port commit goes: a new branch from HEAD, or the branch HEAD is already on."""
    if not git_succeeds(repo, "check-ref-format", "--branch", branch):
        raise UserError(f"`{branch}` is not a valid git branch name")
    try:
        previous_head = git_text(repo, "rev-parse", "--verify", "HEAD^{commit}")
    except git.GitCommandError:
        raise UserError(
            f"the git repository at {repo.working_tree_dir} has no commit yet",
            hint="commit the crate first, so that the port can be reviewed and undone",
        ) from None
    try:
        previous_ref: str | None = git_text(repo, "symbolic-ref", "-q", "HEAD")
    except git.GitCommandError:
        previous_ref = None
    branch_ref = f"refs/heads/{branch}"
    exists = git_succeeds(repo, "rev-parse", "--verify", "-q", branch_ref)
    if exists and previous_ref != branch_ref:
        raise UserError(
            f"branch {branch} already exists but is not checked out",
            hint=f"`git checkout {branch}` to continue that port, delete the branch to start over, "
            "or choose another branch with --branch",
        )
    return BranchPlan(previous_head, previous_ref, branch_ref, created=not exists)


def move_branch(repo: git.Repo, plan: BranchPlan, new_commit: str, reason: str) -> None:
    if plan.created:
        git_text(repo, "update-ref", "-m", reason, plan.branch_ref, new_commit, "")
        git_text(repo, "symbolic-ref", "-m", reason, "HEAD", plan.branch_ref)
    else:
        git_text(repo, "update-ref", "-m", reason, plan.branch_ref, new_commit, plan.previous_head)


def restore_branch(repo: git.Repo, plan: BranchPlan) -> None:
    """Put HEAD and the port branch back where they were. Safe to repeat."""
    reason = "wasiport: roll back"
    if plan.created:
        if plan.previous_ref is not None:
            git_text(repo, "symbolic-ref", "-m", reason, "HEAD", plan.previous_ref)
        else:
            git_text(repo, "update-ref", "--no-deref", "-m", reason, "HEAD", plan.previous_head)
        git_text(repo, "update-ref", "-d", plan.branch_ref)
    else:
        git_text(repo, "update-ref", "-m", reason, plan.branch_ref, plan.previous_head)
