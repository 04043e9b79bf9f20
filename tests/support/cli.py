"""Helpers shared by the end-to-end tests: git with a fixed identity, wasiport as a real process,
and a per-test environment that looks like a fresh CI machine (no git identity, own caches)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.offline_cargo import OfflineCargo

TESTER = ("-c", "user.name=Test Author", "-c", "user.email=author@example.test")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *TESTER, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def git_repo(path: Path, message: str = "upstream") -> Path:
    """Put a directory under git with one commit of everything in it."""
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", message)
    return path


def run_wasiport(env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasiport", *args], capture_output=True, text=True, env=env, timeout=timeout)


def ci_like_env(cargo: OfflineCargo, tmp_path: Path) -> dict:
    """The offline cargo environment, with no git identity and caches of this test's own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return cargo.env(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        WASIPORT_CACHE_DIR=str(tmp_path / "cache"),
    )
