"""The git transaction, with real repositories in temporary directories and real git."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wasiport import vcs
from wasiport.errors import UserError

REPO = Path(__file__).resolve().parent.parent
TESTER = ("-c", "user.name=Test Author", "-c", "user.email=author@example.test")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No global or system git configuration, like a fresh CI machine."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL", "DATE"):
            monkeypatch.delenv(f"GIT_{role}_{part}", raising=False)
    return home


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *TESTER, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_repo(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root.resolve()


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file outside .git with its bytes and permission bits."""
    result = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or not path.is_file():
            continue
        result[path.relative_to(root).as_posix()] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return result


def porcelain(root: Path) -> str:
    return git(root, "status", "--porcelain=v1", "--untracked-files=all")


LIB = (  # CRLF line ends: the transaction must keep bytes, not normalise text
    "pub fn connect() -> std::io::Result<std::net::TcpStream> {\r\n"
    '    std::net::TcpStream::connect("127.0.0.1:6379")\r\n'
    "}\r\n"
)
BINARY = bytes(range(256)) * 4  # not UTF-8: the transaction must restore bytes, not text


@pytest.fixture
def crate_repo(tmp_path: Path) -> Path:
    """A repository with a crate in `client/` and unrelated code in `other/`."""
    root = make_repo(
        tmp_path / "work",
        {
            "client/Cargo.toml": '[package]\nname = "client"\nversion = "0.1.0"\nedition = "2021"\n',
            "client/src/lib.rs": LIB,
            "client/data.bin": BINARY,
            "client/run.sh": "#!/bin/sh\necho run\n",
            "other/notes.txt": "unrelated\n",
        },
    )
    (root / "client/run.sh").chmod(0o755)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "make run.sh executable")
    return root


# --------------------------------------------------------------------------------------
# the clean-tree gate


def test_check_clean_lists_dirty_files_in_the_crate_and_ignores_dirt_elsewhere(crate_repo: Path) -> None:
    (crate_repo / "client/src/lib.rs").write_text("// edited\n")
    (crate_repo / "client/Cargo.toml").write_text('[package]\nname = "client"\nversion = "0.2.0"\n')
    git(crate_repo, "add", "client/Cargo.toml")
    (crate_repo / "client/src/new.rs").write_text("// new\n")
    (crate_repo / "other/notes.txt").write_text("dirty but outside the crate\n")
    (crate_repo / "other/untracked.txt").write_text("also outside\n")

    with pytest.raises(UserError) as refused:
        vcs.check_clean(crate_repo, [crate_repo / "client"])

    text = str(refused.value)
    assert "client/src/lib.rs (modified)" in text
    assert "client/Cargo.toml (staged)" in text
    assert "client/src/new.rs (untracked)" in text
    assert "other/" not in text
    assert "--allow-dirty" in text

    allowed = vcs.check_clean(crate_repo, [crate_repo / "client"], allow_dirty=True)
    assert [str(entry) for entry in allowed] == [
        "client/Cargo.toml (staged)",
        "client/src/lib.rs (modified)",
        "client/src/new.rs (untracked)",
    ]
    assert vcs.check_clean(crate_repo, [crate_repo / "other"], allow_dirty=True) != []


def test_check_clean_passes_a_clean_crate_and_refuses_an_unfinished_merge(crate_repo: Path) -> None:
    assert vcs.check_clean(crate_repo, [crate_repo / "client"]) == []

    git(crate_repo, "checkout", "-q", "-b", "side")
    (crate_repo / "other/notes.txt").write_text("side\n")
    git(crate_repo, "commit", "-q", "-am", "side")
    git(crate_repo, "checkout", "-q", "main")
    (crate_repo / "other/notes.txt").write_text("main\n")
    git(crate_repo, "commit", "-q", "-am", "main")
    merge = subprocess.run(["git", *TESTER, "merge", "-q", "side"], cwd=crate_repo, capture_output=True)
    assert merge.returncode != 0  # a real conflict leaves the merge unfinished

    with pytest.raises(UserError, match="merge in progress"):
        vcs.check_clean(crate_repo, [crate_repo / "client"])


def test_require_repo_refuses_a_crate_outside_git_unless_allowed(tmp_path: Path) -> None:
    crate = tmp_path / "loose"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "loose"\nversion = "0.1.0"\n')
    (crate / "src/lib.rs").write_text("pub fn f() {}\n")

    with pytest.raises(UserError, match="not in a git repository") as refused:
        vcs.require_repo(crate)
    assert "--allow-no-vcs" in str(refused.value)
    assert not (crate / ".git").exists()

    root = vcs.require_repo(crate, allow_no_vcs=True)
    assert root == crate.resolve()
    assert porcelain(crate) == ""
    assert git(crate, "log", "--format=%an <%ae>") == "wasiport <wasiport@localhost>"


# --------------------------------------------------------------------------------------
# the transaction


def test_commit_writes_every_file_and_makes_one_commit_on_the_port_branch(crate_repo: Path) -> None:
    before = git(crate_repo, "rev-parse", "HEAD")
    # The user's staged work outside the crate must stay staged and out of the port commit.
    (crate_repo / "other/notes.txt").write_text("staged by the user\n")
    git(crate_repo, "add", "other/notes.txt")

    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "pub use wasmedge_wasi_socket::TcpStream;\n")
        txn.write(crate_repo / "client/run.sh", "#!/bin/sh\necho ported\n")
        txn.write("client/src/compat/mod.rs", "// generated\n")
        sha = txn.commit("Port client to WasmEdge sockets\n\nrules: std-net-import\n")

    assert sha is not None
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/wasiport/wasmedge"
    assert git(crate_repo, "rev-parse", "HEAD") == sha
    assert git(crate_repo, "rev-parse", "HEAD^") == before
    assert git(crate_repo, "log", "-1", "--format=%s") == "Port client to WasmEdge sockets"
    assert git(crate_repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "wasiport <wasiport@localhost>|wasiport <wasiport@localhost>"
    )
    assert git(crate_repo, "show", "--name-only", "--format=", "HEAD").splitlines() == [
        "client/run.sh",
        "client/src/compat/mod.rs",
        "client/src/lib.rs",
    ]
    assert (crate_repo / "client/src/lib.rs").read_text() == "pub use wasmedge_wasi_socket::TcpStream;\n"
    assert stat.S_IMODE((crate_repo / "client/run.sh").stat().st_mode) == 0o755
    assert git(crate_repo, "ls-files", "-s", "client/run.sh").startswith("100755")
    assert porcelain(crate_repo) == "M  other/notes.txt"
    assert not list(crate_repo.rglob("*.wasiport-tmp"))
    assert not (crate_repo / ".git/wasiport/transaction.json").exists()


def test_commit_uses_the_configured_identity(crate_repo: Path, isolated_git: Path) -> None:
    (isolated_git / "gitconfig").write_text("[user]\n\tname = Rita Porter\n\temail = rita@example.test\n")
    with vcs.PortTransaction(crate_repo, branch="port/custom") as txn:
        txn.write("client/src/lib.rs", "// ported\n")
        txn.commit("port")
    assert git(crate_repo, "log", "-1", "--format=%an <%ae>") == "Rita Porter <rita@example.test>"
    assert git(crate_repo, "symbolic-ref", "--short", "HEAD") == "port/custom"


def test_rollback_restores_commit_index_bytes_and_modes_exactly(crate_repo: Path) -> None:
    before_files = snapshot(crate_repo)
    before_head = git(crate_repo, "rev-parse", "HEAD")
    before_index = git(crate_repo, "ls-files", "-s")

    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// ported\n")
        txn.write("client/data.bin", b"\x00changed")
        txn.write("client/run.sh", "#!/bin/sh\n")
        txn.write("client/src/net/compat.rs", "// new file in a new directory\n")
        txn.remove("client/Cargo.toml")
        assert txn.commit("port") is not None
        assert snapshot(crate_repo) != before_files
        txn.rollback()  # what apply does when the ported crate does not build

    assert snapshot(crate_repo) == before_files
    assert not (crate_repo / "client/src/net").exists()
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(crate_repo, "rev-parse", "HEAD") == before_head
    assert git(crate_repo, "branch", "--list", "wasiport/wasmedge") == ""
    assert git(crate_repo, "ls-files", "-s") == before_index
    assert porcelain(crate_repo) == ""


def test_rollback_over_allowed_dirt_gives_back_the_staged_and_unstaged_work(crate_repo: Path) -> None:
    # What --allow-dirty ports over: a staged edit plus a further unstaged edit of the same file.
    (crate_repo / "client/src/lib.rs").write_text("// staged edit\n")
    git(crate_repo, "add", "client/src/lib.rs")
    (crate_repo / "client/src/lib.rs").write_text("// staged edit\n// unstaged edit\n")
    staged = git(crate_repo, "diff", "--cached")
    unstaged = git(crate_repo, "diff")

    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// ported\n")
        txn.commit("port")
        txn.rollback()

    assert git(crate_repo, "diff", "--cached") == staged
    assert git(crate_repo, "diff") == unstaged


def test_a_second_port_reuses_the_branch_and_its_rollback_keeps_the_first(crate_repo: Path) -> None:
    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// first pass\n")
        first = txn.commit("first")
    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// second pass\n")
        second = txn.commit("second")
        assert git(crate_repo, "rev-parse", "HEAD^") == first
        txn.rollback()
    assert second != first
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/wasiport/wasmedge"
    assert git(crate_repo, "rev-parse", "HEAD") == first
    assert (crate_repo / "client/src/lib.rs").read_text() == "// first pass\n"
    assert porcelain(crate_repo) == ""


def test_an_existing_port_branch_that_is_not_checked_out_is_refused(crate_repo: Path) -> None:
    git(crate_repo, "branch", "wasiport/wasmedge")
    with pytest.raises(UserError, match="already exists") as refused, vcs.PortTransaction(crate_repo):
        pass
    assert "git checkout wasiport/wasmedge" in str(refused.value)


def test_an_exception_before_or_after_the_commit_leaves_the_old_state(crate_repo: Path) -> None:
    before = snapshot(crate_repo)
    with pytest.raises(RuntimeError), vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// never written\n")
        raise RuntimeError("the rewrite engine failed")
    assert snapshot(crate_repo) == before

    with pytest.raises(KeyboardInterrupt), vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", "// written, then interrupted during the build\n")
        txn.commit("port")
        raise KeyboardInterrupt
    assert snapshot(crate_repo) == before
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert porcelain(crate_repo) == ""


def test_keep_on_error_keeps_a_complete_commit(crate_repo: Path) -> None:
    with pytest.raises(RuntimeError), vcs.PortTransaction(crate_repo, keep_on_error=True) as txn:
        txn.write("client/src/lib.rs", "// kept although the build failed\n")
        sha = txn.commit("port")
        raise RuntimeError("build failed")
    assert git(crate_repo, "rev-parse", "HEAD") == sha
    assert (crate_repo / "client/src/lib.rs").read_text() == "// kept although the build failed\n"
    assert not (crate_repo / ".git/wasiport/transaction.json").exists()


def test_writing_what_is_already_there_makes_no_commit(crate_repo: Path) -> None:
    head = git(crate_repo, "rev-parse", "HEAD")
    with vcs.PortTransaction(crate_repo) as txn:
        txn.write("client/src/lib.rs", LIB)
        assert txn.commit("nothing to do") is None
    assert git(crate_repo, "rev-parse", "HEAD") == head
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_paths_outside_the_repository_are_refused(crate_repo: Path, tmp_path: Path) -> None:
    with vcs.PortTransaction(crate_repo) as txn:
        for bad in ("../escape.rs", str(tmp_path / "elsewhere.rs"), ".git/config"):
            with pytest.raises(UserError, match="outside"):
                txn.write(bad, "x")


# --------------------------------------------------------------------------------------
# interrupted transactions (real processes, really killed)

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from wasiport import vcs
    root = Path(sys.argv[1])
    mode = sys.argv[2]
    real_replace = os.replace
    replaced = []

    def replace(src, dst):
        # Count replacements in the work tree only (not the marker inside .git).
        if ".git" not in Path(dst).parts:
            if mode == "kill-between-files" and len(replaced) == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            replaced.append(dst)
        return real_replace(src, dst)

    os.replace = replace
    try:
        with vcs.PortTransaction(root) as txn:
            txn.write("client/src/lib.rs", "// ported\\n")
            txn.write("client/data.bin", b"ported")
            txn.write("client/src/added.rs", "// added\\n")
            txn.commit("port")
            if mode == "kill-after-commit":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "sigterm-after-commit":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
    except KeyboardInterrupt:
        sys.exit(130)
    """
)


def run_child(root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", CHILD, str(root), mode], env=env, capture_output=True, text=True)


def test_a_process_killed_between_file_replacements_is_undone_by_recovery(crate_repo: Path) -> None:
    before = snapshot(crate_repo)
    head = git(crate_repo, "rev-parse", "HEAD")

    child = run_child(crate_repo, "kill-between-files")

    assert child.returncode == -signal.SIGKILL
    assert (crate_repo / ".git/wasiport/transaction.json").is_file()
    assert snapshot(crate_repo) != before  # a mix: one file replaced, temp files lying around

    recovery = vcs.recover_interrupted(crate_repo)

    assert recovery is not None and recovery.head == head
    # Only the file that was replaced before the kill needed its old bytes back.
    assert recovery.restored_paths == ("client/data.bin",)
    assert "raw" not in recovery.describe() and "Recovery(" not in recovery.describe()
    assert snapshot(crate_repo) == before
    assert git(crate_repo, "rev-parse", "HEAD") == head
    assert porcelain(crate_repo) == ""
    assert vcs.recover_interrupted(crate_repo) is None


def test_a_process_killed_after_its_commit_is_undone_by_the_next_transaction(crate_repo: Path) -> None:
    before = snapshot(crate_repo)
    head = git(crate_repo, "rev-parse", "HEAD")

    child = run_child(crate_repo, "kill-after-commit")

    assert child.returncode == -signal.SIGKILL
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/wasiport/wasmedge"  # committed, unverified

    with vcs.PortTransaction(crate_repo) as txn:
        assert txn.recovered is not None
        assert txn.recovered.deleted_branch == "wasiport/wasmedge"
        assert snapshot(crate_repo) == before
        assert git(crate_repo, "rev-parse", "HEAD") == head
        assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert porcelain(crate_repo) == ""


def test_sigterm_inside_the_transaction_rolls_back_in_process(crate_repo: Path) -> None:
    before = snapshot(crate_repo)

    child = run_child(crate_repo, "sigterm-after-commit")

    assert child.returncode == 130, child.stderr
    assert snapshot(crate_repo) == before
    assert git(crate_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert not (crate_repo / ".git/wasiport/transaction.json").exists()
    assert porcelain(crate_repo) == ""


def test_a_transaction_of_a_live_process_is_not_taken_over(crate_repo: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child = run_child(crate_repo, "kill-after-commit")
        assert child.returncode == -signal.SIGKILL
        marker = crate_repo / ".git/wasiport/transaction.json"
        # Hand the unfinished transaction to a process that is still running.
        data = json.loads(marker.read_text())
        data["pid"] = sleeper.pid
        marker.write_text(json.dumps(data))
        with pytest.raises(UserError, match=f"pid {sleeper.pid}"):
            vcs.recover_interrupted(crate_repo)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert vcs.recover_interrupted(crate_repo) is not None  # its owner is gone now


# --------------------------------------------------------------------------------------
# patch series


def upstream_source(version: str, changed: dict[int, str]) -> dict[str, str]:
    lines = [f"pub const LINE_{n}: u32 = {n};" for n in range(1, 21)]
    for number, text in changed.items():
        lines[number - 1] = text
    manifest = (
        f'[package]\nname = "demo"\nversion = "{version}"\nedition = "2021"\n'
        'description = "demo"\nlicense = "MIT"\n\n[dependencies]\n'
    )
    return {"Cargo.toml": manifest, "src/lib.rs": "\n".join(lines) + "\n"}


def upstream_copy(root: Path, version: str, changed: dict[int, str]) -> tuple[Path, str]:
    """A fresh copy of one upstream version, as locate makes it."""
    root.mkdir(parents=True)
    for relative, text in upstream_source(version, changed).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root.resolve(), vcs.init_with_commit(root, f"upstream: demo {version}", include_ignored=True)


PORTED_10 = "pub const LINE_10: u32 = 10; // ported"
PORTED_15 = "pub const LINE_15: u32 = 15; // ported"


@pytest.fixture
def exported_series(tmp_path: Path) -> tuple[Path, Path]:
    """demo 0.1.0 ported in two transactions, exported as a series."""
    copy, base = upstream_copy(tmp_path / "demo-0.1.0", "0.1.0", {})
    source = upstream_source("0.1.0", {10: PORTED_10})
    with vcs.PortTransaction(copy) as txn:
        txn.write("src/lib.rs", source["src/lib.rs"])
        txn.write("Cargo.toml", source["Cargo.toml"] + 'wasmedge_wasi_socket = "0.5"\n')
        txn.commit("Port demo to WasmEdge sockets")
    with vcs.PortTransaction(copy) as txn:
        txn.write("src/lib.rs", upstream_source("0.1.0", {10: PORTED_10, 15: PORTED_15})["src/lib.rs"])
        txn.write("src/compat.rs", "// compat\n")
        txn.commit("Add the compat module")
    patches = vcs.export_patches(copy, base, tmp_path / "series", crate_name="demo", crate_version="0.1.0")
    assert [p.name for p in patches] == [
        "demo-0.1.0-0001-Port-demo-to-WasmEdge-sockets.patch",
        "demo-0.1.0-0002-Add-the-compat-module.patch",
    ]
    return copy, tmp_path / "series"


def test_export_writes_a_named_series_that_the_ported_crate_already_carries(exported_series) -> None:
    copy, series = exported_series
    listed = [line for line in (series / "series").read_text().splitlines() if not line.startswith("#")]
    assert listed == sorted(p.name for p in series.glob("*.patch"))
    assert "+" + PORTED_10 in (series / listed[0]).read_text()
    assert len(list((series / "preimages").iterdir())) == 3  # lib.rs twice, Cargo.toml once

    assert vcs.series_applied(copy, series)
    head = git(copy, "rev-parse", "HEAD")
    assert vcs.apply_series(copy, series) == []  # already carried: a no-op
    assert git(copy, "rev-parse", "HEAD") == head


def test_series_reapplies_with_three_way_merge_to_the_next_upstream_version(
    exported_series, tmp_path: Path
) -> None:
    _, series = exported_series
    # 0.2.0 changes lines 8 and 17, inside the patches' context: a plain apply fails there.
    changed = {8: "pub const LINE_8: u32 = 800;", 17: "pub const LINE_17: u32 = 1700;"}
    copy, base = upstream_copy(tmp_path / "demo-0.2.0", "0.2.0", changed)
    assert not vcs.series_applied(copy, series)
    plain = subprocess.run(
        ["git", "apply", "--check", str(sorted(series.glob("*0001*.patch"))[0])], cwd=copy, capture_output=True
    )
    assert plain.returncode != 0

    commits = vcs.apply_series(copy, series)

    assert len(commits) == 2
    lib = (copy / "src/lib.rs").read_text().splitlines()
    assert lib[7] == changed[8] and lib[16] == changed[17]
    assert lib[9] == PORTED_10 and lib[14] == PORTED_15
    assert (copy / "src/compat.rs").read_text() == "// compat\n"
    manifest = (copy / "Cargo.toml").read_text()
    assert 'version = "0.2.0"' in manifest and 'wasmedge_wasi_socket = "0.5"' in manifest
    assert git(copy, "symbolic-ref", "HEAD") == "refs/heads/wasiport/wasmedge"
    assert git(copy, "rev-list", "--count", f"{base}..HEAD") == "2"
    assert git(copy, "log", "-2", "--format=%s") == "Add the compat module\nPort demo to WasmEdge sockets"
    assert porcelain(copy) == ""
    assert vcs.series_applied(copy, series)
    assert vcs.apply_series(copy, series) == []


def test_a_conflicting_patch_is_named_and_nothing_is_half_applied(exported_series, tmp_path: Path) -> None:
    _, series = exported_series
    # Patch 1 applies to this version; patch 2 changes line 15, which upstream changed too.
    copy, base = upstream_copy(tmp_path / "demo-0.3.0", "0.3.0", {15: "pub const LINE_15: u64 = 15;"})

    with pytest.raises(UserError) as refused:
        vcs.apply_series(copy, series)

    text = str(refused.value)
    assert "demo-0.1.0-0002-Add-the-compat-module.patch" in text
    assert "src/lib.rs" in text
    assert git(copy, "rev-parse", "HEAD") == base
    assert git(copy, "symbolic-ref", "HEAD") != "refs/heads/wasiport/wasmedge"
    assert git(copy, "branch", "--list", "wasiport/wasmedge") == ""
    assert not (copy / ".git/rebase-apply").exists()
    assert porcelain(copy) == ""
    assert (copy / "src/lib.rs").read_text() == upstream_source("0.3.0", {15: "pub const LINE_15: u64 = 15;"})[
        "src/lib.rs"
    ]
