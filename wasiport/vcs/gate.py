"""The clean-tree gate: refuse to port over the user's uncommitted work.

Modelled on `cargo fix`, which refuses to touch uncommitted work unless told to.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from wasiport.errors import UserError
from wasiport.vcs.git import git_bytes, open_repo

_MAX_LISTED = 25


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
    raw = git_bytes(
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


def refuse_dirty_edits(repo_root: Path, dirty: Sequence[DirtyFile], edited: Iterable[Path]) -> None:
    """With --allow-dirty: refuse when the port must edit a file that holds uncommitted work.

    The port commit records whole files, so editing such a file would put the user's own
    changes into it (and a rollback would have to guess which bytes were theirs). Files the
    port does not edit keep their changes, uncommitted, in the work tree and the index."""
    root = Path(repo_root).resolve()
    by_path = {entry.path: entry for entry in dirty}
    clashes = []
    for path in edited:
        relative = os.path.relpath(Path(path).resolve(), root).replace(os.sep, "/")
        if relative in by_path:
            clashes.append(str(by_path[relative]))
    if clashes:
        listed = ", ".join(sorted(clashes)[:_MAX_LISTED])
        raise UserError(
            f"the port must edit files with uncommitted changes: {listed}; "
            "--allow-dirty never puts your own changes into the port commit",
            hint="commit or stash the changes to those files first; uncommitted changes to other files may stay",
        )
