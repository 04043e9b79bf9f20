"""Patch series: export a port as `git format-patch` files, re-apply them to another upstream version."""
from __future__ import annotations

import email.utils
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from wasiport.errors import UserError
from wasiport.vcs.gate import check_clean
from wasiport.vcs.git import (
    DEFAULT_BRANCH,
    git_bytes,
    git_error_text,
    git_text,
    identity_env,
    move_branch,
    open_repo,
    plan_branch,
    restore_branch,
    split_z,
)
from wasiport.vcs.lock import repository_lock
from wasiport.vcs.signals import signals_held
from wasiport.vcs.transaction import recover_interrupted

SERIES_FILE = "series"
PREIMAGES_DIR = "preimages"
_PATCH_ID_DEPTH = 500  # recent commits searched by patch-id when metadata does not match


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
        base_commit = git_text(repo, "rev-parse", "--verify", f"{base}^{{commit}}")
    except git.GitCommandError:
        raise UserError(f"`{base}` is not a commit in {root}") from None
    commits = git_text(repo, "rev-list", "--reverse", "--no-merges", f"{base_commit}..HEAD").split()
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
            output = git_text(
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
        raw = git_bytes(repo, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", f"{commit}^", commit)
        fields = raw.split(b"\0")
        for header in fields[0::2]:
            parts = header.decode("ascii", "replace").lstrip(":").split()
            if len(parts) < 5 or set(parts[2]) == {"0"}:
                continue  # an added file has no preimage
            preimages.mkdir(exist_ok=True)
            blob = parts[2]
            (preimages / blob).write_bytes(git_bytes(repo, "cat-file", "blob", blob))
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
        info = git_text(
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
    raw = git_text(repo, "log", "--no-merges", "--date=raw", "--format=%an%x00%ae%x00%ad%x00%s", "HEAD")
    identities = set()
    for line in raw.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        timestamp, _, offset = parts[2].partition(" ")
        identities.add(_PatchIdentity(parts[0], parts[1], int(timestamp), offset, " ".join(parts[3].split())))
    return identities


def _patch_id(repo: git.Repo, diff: bytes) -> set[str]:
    output = git_text(repo, "patch-id", "--stable", stdin=diff)
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
            log = git_bytes(repo, "log", "-p", "--no-merges", f"-n{_PATCH_ID_DEPTH}", "--format=commit %H", "HEAD")
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
        written = git_text(repo, "hash-object", "-w", "--no-filters", "--", str(blob))
        if written != blob.name:
            raise UserError(f"{blob} does not hold the blob its name says (it hashes to {written})")


def _conflicted_files(repo: git.Repo, error_text: str) -> list[str]:
    unmerged = split_z(git_bytes(repo, "diff", "--name-only", "--diff-filter=U", "-z"))
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
        git_text(repo, "am", "--abort", env=identity_env(repo))  # it writes reflog entries


def apply_series(repo_root: Path, patch_dir: Path, *, branch: str = DEFAULT_BRANCH) -> list[str]:
    """Apply the patches of PATCH_DIR that HEAD lacks (3-way) on the port branch; the new commit ids.

    Patches already in the history are skipped, so re-running is a no-op. On a patch
    that does not apply, everything this call did is undone and the `UserError` names
    the patch and the conflicting files."""
    root = Path(repo_root).resolve()
    with repository_lock(root):
        return _apply_series(root, Path(patch_dir), branch)


def _apply_series(root: Path, patch_dir: Path, branch: str) -> list[str]:
    repo = open_repo(root)
    recover_interrupted(root)
    check_clean(root, [root])
    patches = _series_patches(patch_dir)
    todo = [patch for patch, applied in zip(patches, _applied_flags(repo, patches), strict=True) if not applied]
    if not todo:
        return []
    _load_preimages(repo, patch_dir)
    plan = plan_branch(repo, branch)
    with signals_held():
        if plan.created:
            move_branch(repo, plan, plan.previous_head, "wasiport: branch for the patch series")
    try:
        git_text(
            repo,
            "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false",
            "am", "--3way", "--keep-cr", "--quiet", "--whitespace=nowarn", "--",
            *(str(patch.resolve()) for patch in todo),
            env=identity_env(repo),
        )
    except git.GitCommandError as err:
        text = git_error_text(err)
        position = Path(repo.git_dir) / "rebase-apply" / "next"
        number = int(position.read_text().strip()) if position.is_file() else 1
        failed = todo[min(number, len(todo)) - 1]
        files = _conflicted_files(repo, text)
        with signals_held():
            _abort_am(repo)
            restore_branch(repo, plan)
        where = f": conflicts in {', '.join(files)}" if files else f" ({text})"
        raise UserError(
            f"patch {failed.name} does not apply to {root}{where}",
            hint="nothing was applied; port this version with the rules and export a new series",
        ) from None
    except BaseException:
        with signals_held():
            _abort_am(repo)
            restore_branch(repo, plan)
        raise
    return git_text(repo, "rev-list", "--reverse", f"{plan.previous_head}..HEAD").split()
