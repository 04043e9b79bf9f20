"""The shipped `wasiport-check` hook, run by the real pre-commit against this checkout.

pre-commit builds the hook's virtualenv from this repository (pip, from PyPI),
once per test module; no crates are needed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOOK_ID = "wasiport-check"

# Real socket code that cannot run on WasmEdge: connect_timeout has no WASI equivalent.
BAD_RS = """\
use std::io;
use std::time::Duration;

pub fn dial(addr: &std::net::SocketAddr) -> io::Result<std::net::TcpStream> {
    std::net::TcpStream::connect_timeout(addr, Duration::from_secs(3))
}
"""
BAD_CALL_LINE, BAD_CALL_COL = 5, 5

# Socket code with a missing `;` (the scanner skips files that never mention `net`):
# the file cannot be fully examined, which is exit code 2, whatever else it finds.
UNPARSABLE_RS = """\
pub fn dial(addr: &str) -> std::io::Result<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect(addr)?
    Ok(stream)
}
"""

GOOD_RS = """\
use std::time::Duration;

/// Backoff before the next reconnect: doubles, capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let millis = 100u64.saturating_mul(1 << attempt.min(16));
    Duration::from_millis(millis.min(30_000))
}
"""

# The bad call quoted in documentation: `types: [rust]` must keep it out of the check.
PORTING_MD = """\
# Porting notes

Do not call `std::net::TcpStream::connect_timeout(addr, timeout)` directly.
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=wasiport tests", "-c", "user.email=tests@wasiport.invalid",
         "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, check=True, capture_output=True,
    )


def working_tree_files(repo: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo, check=True, capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (repo / name).is_file()]


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's working tree, committed in a scratch repository.

    `try-repo` on the checkout itself would see only committed and modified
    tracked files; this way the hook under test is the code on disk."""
    snapshot = tmp_path_factory.mktemp("hook-repo")
    for name in working_tree_files(REPO):
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot for the hook test")
    return snapshot


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit cache for the module, so the hook's virtualenv is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def project_with(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text, encoding="utf-8")
    git(project, "init", "-q")
    git(project, "add", "-A")
    return project


def try_repo(project: Path, hook_repo: Path, pre_commit_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home), "NO_COLOR": "1"}
    env.pop("PRE_COMMIT_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), HOOK_ID, "--all-files",
         "--color", "never", "--verbose"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )


def test_manifest_is_valid_for_pre_commit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hook_fails_on_connect_timeout_and_shows_the_finding(
    tmp_path: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    project = project_with(tmp_path, {"src/lib.rs": BAD_RS, "Cargo.toml": '[package]\nname = "dial"\nversion = "0.1.0"\n'})
    result = try_repo(project, hook_repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Failed" in output and "- exit code: 1" in output, output
    # The frame of the finding about the call: its header names connect_timeout, its arrow the call.
    frame = re.compile(rf"error\[[\w/-]+\]: [^\n]*connect_timeout[^\n]*\n +--> src/lib\.rs:{BAD_CALL_LINE}:{BAD_CALL_COL}\n")
    assert frame.search(output), output
    assert "std::net::TcpStream::connect_timeout(addr, Duration::from_secs(3))" in output, output


def test_hook_passes_clean_rust_and_ignores_other_files(
    tmp_path: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    project = project_with(tmp_path, {"src/lib.rs": GOOD_RS, "docs/porting.md": PORTING_MD})
    result = try_repo(project, hook_repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Passed" in output, output


def test_hook_fails_with_exit_code_2_on_a_file_it_cannot_examine(
    tmp_path: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    project = project_with(tmp_path, {"src/lib.rs": UNPARSABLE_RS})
    result = try_repo(project, hook_repo, pre_commit_home)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # pre-commit's own status: a hook failed
    assert "- exit code: 2" in output, output
    assert "src/lib.rs:2:" in output and "could not be examined" in output, output
