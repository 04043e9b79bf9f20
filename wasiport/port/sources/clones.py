"""Crates from git: `--git URL [--rev REV]` cloned, and the crate found inside the clone."""
from __future__ import annotations

import re
from pathlib import Path

import git

from wasiport import vcs
from wasiport.errors import UserError
from wasiport.port.sources.crate import workspace_members
from wasiport.tomlread import read_toml

_NETWORK_ERRORS = (
    "could not resolve host",
    "could not resolve hostname",
    "failed to connect",
    "couldn't connect",
    "connection refused",
    "network is unreachable",
    "connection timed out",
    "operation timed out",
    "temporary failure in name resolution",
    "name or service not known",
    "no route to host",
)


def _is_remote_url(url: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", url) and not url.startswith("file://")) or bool(
        re.match(r"^[^/\s]+@[^/\s]+:", url)
    )


def clone_repository(url: str, dest: Path, rev: str | None) -> None:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=20"}
    try:
        repo = git.Repo.clone_from(url, dest, env=env)
    except git.GitCommandError as err:
        stderr = str(err.stderr or "").lower()
        if _is_remote_url(url) and any(marker in stderr for marker in _NETWORK_ERRORS):
            raise UserError(
                f"cannot clone {url}: there is no network access to it from here; pass a local path "
                "to the crate (or a local clone) or a downloaded .crate archive instead",
            ) from None
        raise UserError(f"cannot clone {url}: {vcs.git_error_reason(err)}") from None
    if rev:
        # A tag or commit resolves as given; a branch exists only as origin/<branch> in a fresh clone.
        for candidate in (rev, f"origin/{rev}"):
            try:
                repo.git.checkout("--detach", "-q", candidate)
                return
            except git.GitCommandError:
                continue
        raise UserError(f"{url} has no revision `{rev}`")


def find_package_dir(repo_dir: Path, crate_name: str | None, subdirectory: str | None, url: str) -> Path:
    """The crate directory inside a clone: SUBDIRECTORY, the root package, or a workspace member."""
    if subdirectory:
        candidate = repo_dir / subdirectory
        if (candidate / "Cargo.toml").is_file():
            return candidate
    root_manifest = repo_dir / "Cargo.toml"
    if not root_manifest.is_file():
        raise UserError(f"{url} has no Cargo.toml at its root")
    data = read_toml(root_manifest)
    if "package" in data and (crate_name is None or data["package"].get("name") == crate_name):
        return repo_dir
    members = workspace_members(root_manifest, data)
    if crate_name is None:
        listed = ", ".join(f"{n} ({d})" for n, d in members)
        raise UserError(f"{url} is a workspace; name the crate to port, one of: {listed}")
    for name, directory in members:
        if name == crate_name:
            return repo_dir / directory
    listed = ", ".join(name for name, _ in members) or "none"
    raise UserError(f"{url} has no crate named {crate_name} (its crates: {listed})")


def clone_origin(directory: Path) -> str | None:
    try:
        return git.Repo(directory).remotes.origin.url
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, AttributeError, ValueError):
        return None
