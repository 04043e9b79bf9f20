"""Nothing lost, no traceback: racing applies, killed applies, refusing filesystems, bad trees.

Every test uses small crates written here, real git repositories and `wasiport` as a real
process where the behaviour is the process's (locks, kills, exit codes)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import git
from wasiport import vcs
from wasiport.errors import EXIT_INTERNAL, EXIT_IO, EXIT_TEMPFAIL, FilesystemRefused, UserError
from wasiport.faults import CRASH_POINTS

REPO = Path(__file__).resolve().parent.parent

MANIFEST = '[package]\nname = "netclient"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
LIB = textwrap.dedent(
    """\
    use std::io::Write;
    use std::net::TcpStream;

    pub fn send(addr: &str, data: &[u8]) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(addr)?;
        stream.write_all(data)
    }
    """
)


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global git configuration, own caches: like a fresh CI machine."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("WASIPORT_CRASH_AT", raising=False)
    monkeypatch.delenv("WASIPORT_DEBUG", raising=False)


def make_crate(root: Path, files: dict[str, str] | None = None) -> Path:
    """A crate with one std::net site, committed in its own repository."""
    root.mkdir(parents=True)
    for relative, text in {"Cargo.toml": MANIFEST, "src/lib.rs": LIB, **(files or {})}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "upstream")
    return root.resolve()


def wasiport(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "wasiport", *args], env=full_env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    process = wasiport(*args, env=env, cwd=cwd)
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def work_tree(root: Path) -> dict[str, bytes]:
    """Every file outside .git with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def assert_consistent_port(root: Path, reference: dict[str, bytes]) -> None:
    """One port commit; HEAD, index and files agree; nothing of a transaction left behind."""
    assert git(root, "symbolic-ref", "HEAD") == "refs/heads/wasiport/wasmedge"
    subjects = git(root, "log", "--format=%s").splitlines()
    assert subjects == ["wasiport: port netclient 0.1.0 to WasmEdge sockets", "upstream"]
    assert git(root, "status", "--porcelain=v1", "--untracked-files=all") == ""
    assert git(root, "diff", "--cached", "HEAD", "--name-only") == ""
    assert set(git(root, "ls-tree", "-r", "--name-only", "HEAD").splitlines()) == set(reference)
    assert work_tree(root) == reference
    state = root / ".git" / "wasiport"
    assert not (state / "transaction.json").exists()
    assert not (state / "backup").exists()
    assert not list(root.rglob("*.wasiport-tmp"))
    subprocess.run(["git", "fsck", "--no-dangling", "--no-progress"], cwd=root, check=True, capture_output=True)


@pytest.fixture(scope="module")
def reference_port(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of the crate after one undisturbed `apply --no-build`."""
    root = make_crate(tmp_path_factory.mktemp("reference") / "netclient")
    done = run("apply", str(root), "--no-build", "-q")
    assert done.returncode == 0, done.stderr
    files = work_tree(root)
    assert files["src/lib.rs"] != LIB.encode() and "src/wasiport_net.rs" in files
    return files


# --------------------------------------------------------------------------------------
# two writers


RACES = 20


def test_two_applies_racing_on_one_crate_never_corrupt_it(tmp_path: Path, reference_port: dict[str, bytes]) -> None:
    env = {"WASIPORT_LOCK_WAIT": "300"}  # the loser waits for the winner (a loaded machine is slow)
    for attempt in range(RACES):
        root = make_crate(tmp_path / f"race-{attempt}")
        first = wasiport("apply", str(root), "--no-build", env=env)
        second = wasiport("apply", str(root), "--no-build", env=env)
        outputs = [process.communicate(timeout=600) + (process.returncode,) for process in (first, second)]
        for out, err, code in outputs:
            assert code == 0, err
            assert "Traceback" not in err
        committed = [out for out, _, _ in outputs if "git: ok: committed " in out]
        already = [out for out, _, _ in outputs if "already ported, nothing committed" in out]
        assert len(committed) == 1 and len(already) == 1, outputs
        assert_consistent_port(root, reference_port)


def hold_lock(root: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the crate's writer lock for SECONDS (then exits)."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from wasiport import vcs
        with vcs.repository_lock(Path({str(root)!r})):
            print("held", flush=True)
            time.sleep({seconds})
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_gives_up_naming_the_holder_then_waits_for_it(tmp_path: Path, reference_port: dict[str, bytes]) -> None:
    root = make_crate(tmp_path / "netclient")
    holder = hold_lock(root, 120)
    try:
        refused = run("apply", str(root), "--no-build", "--wait", "0")
        assert refused.returncode == EXIT_TEMPFAIL
        assert f"pid {holder.pid}" in refused.stderr and "another wasiport process is writing to" in refused.stderr
        assert "since " in refused.stderr and "Traceback" not in refused.stderr
        assert work_tree(root)["src/lib.rs"] == LIB.encode()  # nothing was written
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed holding the lock: the next writer takes it at once and says so.
    done = run("apply", str(root), "--no-build", "--wait", "0")
    assert done.returncode == 0, done.stderr
    assert f"an earlier run (pid {holder.pid}" in done.stdout and "was killed while it held the lock; it left nothing half done" in done.stdout
    assert_consistent_port(root, reference_port)


def test_a_project_is_locked_too_in_its_repository_or_under_target(tmp_path: Path) -> None:
    """`apply --deps` writes the consumer's Cargo.toml and copies beside it: the project's lock."""
    outside_git = tmp_path / "app"
    (outside_git / "src").mkdir(parents=True)
    (outside_git / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n')
    in_git = make_crate(tmp_path / "netclient")
    assert vcs.lock.project_lock_path(outside_git / "Cargo.toml") == outside_git.resolve() / "target" / "wasiport.lock"
    assert vcs.lock.project_lock_path(in_git / "Cargo.toml") == vcs.lock.repository_lock_path(in_git)

    code = f"""
import time
from pathlib import Path
from wasiport import vcs
with vcs.project_lock(Path({str(outside_git / "Cargo.toml")!r})):
    print("held", flush=True)
    time.sleep(120)
"""
    holder = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = run("apply", "--deps", "--manifest-path", str(outside_git / "Cargo.toml"), "--no-build", "--wait", "0")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == EXIT_TEMPFAIL, refused.stderr
    assert f"writing to {outside_git.resolve() / 'Cargo.toml'} (pid {holder.pid} on " in refused.stderr


def test_a_writer_waits_for_a_holder_that_finishes(tmp_path: Path, reference_port: dict[str, bytes]) -> None:
    root = make_crate(tmp_path / "netclient")
    holder = hold_lock(root, 2)
    done = run("apply", str(root), "--no-build", "--wait", "300")
    holder.wait()
    assert done.returncode == 0, done.stderr
    assert "killed" not in done.stdout  # a holder that released cleanly leaves no record
    assert_consistent_port(root, reference_port)


def test_without_flock_a_lock_file_of_a_dead_process_is_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filesystems without flock: an O_EXCL owner file, taken over when its process is gone."""
    from wasiport.vcs import lock as locks

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    root = make_crate(tmp_path / "netclient")
    owner = vcs.lock.repository_lock_path(root).with_name(locks.OWNER_FILE)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = locks.Holder(dead.pid, locks.socket.gethostname(), locks.boot_id(), "wasiport apply .", "2026-01-01T00:00:00+00:00")
    owner.parent.mkdir(parents=True, exist_ok=True)
    owner.write_text(record.to_json())
    with vcs.repository_lock(root, wait=0):
        assert locks.parse_holder(owner.read_text()).pid == os.getpid()
    assert not owner.exists()
    alive = locks.Holder(os.getppid(), locks.socket.gethostname(), locks.boot_id(), "wasiport apply .", "2026-01-01T00:00:00+00:00")
    owner.write_text(alive.to_json())
    with pytest.raises(vcs.LockBusy, match=f"pid {os.getppid()}"):
        with vcs.repository_lock(root, wait=0):
            pass


# --------------------------------------------------------------------------------------
# killed at every stage


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p != "manifest"])
def test_an_apply_killed_at_any_stage_is_recovered_by_the_next_run(point: str, tmp_path: Path, reference_port: dict[str, bytes]) -> None:
    root = make_crate(tmp_path / "netclient")
    killed = wasiport("apply", str(root), "--no-build", env={"WASIPORT_CRASH_AT": point})
    _, stderr = killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL, stderr

    again = run("apply", str(root), "--no-build")

    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    if point == "locked":
        assert "was killed while it held the lock; it left nothing half done" in again.stdout
    else:
        note = next(line for line in again.stdout.splitlines() if line.startswith("note: an interrupted earlier run was undone"))
        assert f"pid {killed.pid}" in note and "HEAD back at" in note
        assert "Recovery(" not in note and "PosixPath" not in note
    assert "committed " in again.stdout
    assert_consistent_port(root, reference_port)


# --------------------------------------------------------------------------------------
# the filesystem refuses


@contextlib.contextmanager
def unwritable(folder: Path):
    """FOLDER refuses new entries: immutable as root (chmod does not stop root), read-only otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("running as root, and this filesystem cannot make a folder immutable")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = stat.S_IMODE(folder.stat().st_mode)
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)


def assert_untouched(root: Path) -> None:
    assert work_tree(root) == {"Cargo.toml": MANIFEST.encode(), "src/lib.rs": LIB.encode()}
    assert git(root, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(root, "status", "--porcelain=v1", "--untracked-files=all") == ""
    assert not (root / ".git/wasiport/transaction.json").exists()
    assert not (root / ".git/wasiport/backup").exists()
    assert not [p for p in root.rglob("*") if p.name.endswith((".wasiport-tmp", ".tmp"))]


def test_apply_into_a_read_only_folder_is_one_sentence_and_changes_nothing(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "netclient")
    with unwritable(root / "src"):
        done = run("apply", str(root), "--no-build")
    assert done.returncode == EXIT_IO, done.stderr
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("wasiport: error:")]
    assert len(error) == 1
    assert "cannot write the port:" in error[0] and "src/" in error[0]
    assert "rolled back" in error[0] and "the files, the index and HEAD are as before" in error[0]
    assert_untouched(root)


def test_an_immutable_file_met_half_way_through_the_renames_is_rolled_back(tmp_path: Path) -> None:
    """Cargo.toml is replaced first; src/lib.rs refuses its replacement: Cargo.toml comes back."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("an immutable file needs root and chattr (a read-only file does not stop a rename)")
    root = make_crate(tmp_path / "netclient")
    lib = root / "src" / "lib.rs"
    if subprocess.run(["chattr", "+i", str(lib)], capture_output=True).returncode:
        pytest.skip("this filesystem cannot make a file immutable")
    try:
        done = run("apply", str(root), "--no-build")
    finally:
        subprocess.run(["chattr", "-i", str(lib)], check=True)
    assert done.returncode == EXIT_IO, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("wasiport: error:")]
    assert len(error) == 1 and "Traceback" not in done.stderr
    assert f"cannot write the port: {lib}: Operation not permitted; rolled back: restored Cargo.toml;" in error[0]
    assert_untouched(root)


def test_a_full_disk_during_the_write_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_crate(tmp_path / "netclient")
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # The disk fills up while the last new file is written (the others are written by then).
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".wasiport_net.rs.wasiport-tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with vcs.PortTransaction(root) as txn:
        txn.write("Cargo.toml", MANIFEST + 'wasmedge_wasi_socket = "0.5"\n')
        txn.write("src/lib.rs", "// ported\n")
        txn.write("src/wasiport_net.rs", "// compat\n")
        with pytest.raises(FilesystemRefused, match="No space left on device") as refused:
            txn.commit("port")
    assert "the files, the index and HEAD are as before" in str(refused.value)
    assert_untouched(root)


def test_a_rollback_the_filesystem_refuses_says_what_it_could_not_restore_and_the_next_run_finishes_it(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "netclient")
    with contextlib.ExitStack() as later, pytest.raises(FilesystemRefused) as refused:
        with vcs.PortTransaction(root) as txn:
            txn.write("Cargo.toml", MANIFEST + 'wasmedge_wasi_socket = "0.5"\n')
            txn.write("src/lib.rs", "// ported\n")
            txn.commit("port")
            later.enter_context(unwritable(root / "src"))  # still unwritable while the rollback runs
            raise UserError("the port does not build")
    message = str(refused.value)
    assert message.startswith("the port does not build; and the rollback is incomplete: restored Cargo.toml")
    assert "could NOT restore src/lib.rs (" in message
    assert refused.value.exit_code == EXIT_IO
    assert (root / ".git/wasiport/transaction.json").exists()  # kept: the next run finishes the rollback

    recovery = vcs.recover_interrupted(root)

    assert recovery is not None and recovery.restored_paths == ("src/lib.rs",)
    assert_untouched(root)


# --------------------------------------------------------------------------------------
# no traceback


def test_a_bug_becomes_one_sentence_exit_70_and_the_traceback_only_on_request(tmp_path: Path) -> None:
    """A crafted bug: the rule pack's loader fails in a way no input check foresaw."""
    probe = textwrap.dedent(
        """
        import sys
        from wasiport import cli
        import wasiport.commands.rules as rules_command
        def broken(args):
            raise AttributeError("'PosixPath' object has no attribute 'flag'")
        rules_command.run_list = broken
        sys.exit(cli.main(sys.argv[1:]))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # `rules list` is registered with the module's run_list: patched before main() builds the parser.
    plain = subprocess.run([sys.executable, "-c", probe, "rules", "list"], env=env, capture_output=True, text=True)
    verbose = subprocess.run([sys.executable, "-c", probe, "--verbose", "rules", "list"], env=env, capture_output=True, text=True)
    debug = subprocess.run([sys.executable, "-c", probe, "rules", "list"], env=dict(env, WASIPORT_DEBUG="1"), capture_output=True, text=True)

    assert plain.returncode == EXIT_INTERNAL
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in plain.stderr
    assert lines[0].startswith("wasiport: internal error: AttributeError in ")
    assert "a bug in wasiport" in lines[0] and "--verbose" in lines[0]
    for detailed in (verbose, debug):
        assert detailed.returncode == EXIT_INTERNAL
        assert "Traceback (most recent call last)" in detailed.stderr


def test_help_documents_the_exit_codes() -> None:
    done = run("--help")
    assert done.returncode == 0
    for code in ("70", "74", "75", "130"):
        assert code in done.stdout
    assert "--verbose" in done.stdout


# --------------------------------------------------------------------------------------
# check on odd trees


def test_check_on_a_symlink_loop_among_rs_files_reports_a_problem_with_exit_2(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "netclient", {"src/lib.rs": "mod a;\n" + LIB})
    (crate / "src/a.rs").symlink_to("b.rs")
    (crate / "src/b.rs").symlink_to("a.rs")
    (crate / "src/again").symlink_to(".")

    whole = run("check", str(crate), "--no-cache")
    single = run("check", str(crate / "src/a.rs"))

    assert whole.returncode == 2, whole.stderr
    assert "Traceback" not in whole.stderr + whole.stdout
    assert "cannot read file: Too many levels of symbolic links" in whole.stdout
    assert "src/a.rs" in whole.stdout and "src/b.rs" in whole.stdout
    assert "wasmedge/std-net-import" in whole.stdout  # the rest of the crate is still checked
    assert single.returncode == 2
    assert single.stderr.strip() == f"wasiport: error: {crate / 'src/a.rs'}: a symbolic link that leads nowhere (or in a loop)"


def test_a_spaced_package_header_does_not_hide_manifest_findings(tmp_path: Path) -> None:
    manifest = MANIFEST.replace("[package]", "[ package ]") + 'socket2 = "0.5"\n'
    crate = make_crate(tmp_path / "netclient", {"Cargo.toml": manifest})
    done = run("check", str(crate), "--no-cache")
    assert done.returncode == 1, done.stderr
    assert "dependency `socket2`" in done.stdout and "Cargo.toml:7" in done.stdout


# --------------------------------------------------------------------------------------
# apply's smaller refusals


def test_a_large_generated_file_blocks_apply_until_the_limit_is_raised(tmp_path: Path) -> None:
    table = "pub static TABLE: &[u32] = &[\n" + "    12345678,\n" * 400_000 + "];\n"  # ~5.2 MB
    crate = make_crate(tmp_path / "netclient", {"src/lib.rs": "mod table;\n" + LIB, "src/table.rs": table})

    blocked = run("apply", str(crate), "--no-build")
    allowed = run("apply", str(crate), "--no-build", "--max-file-size", "8M")

    assert blocked.returncode == 2 and "Traceback" not in blocked.stderr
    assert re.search(r"src/table\.rs: file is \d+ KiB, over the 4 MiB limit; not scanned", blocked.stderr)
    assert "--max-file-size" in blocked.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert "committed " in allowed.stdout
    bad = run("apply", str(crate), "--no-build", "--max-file-size", "lots")
    assert bad.returncode == 2 and "'lots' is not a size" in bad.stderr


def test_allow_dirty_never_commits_the_users_changes(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "netclient", {"README.md": "readme\n", "src/util.rs": "pub fn util() {}\n"})
    (crate / "README.md").write_text("readme, edited\n")  # a file the port does not edit
    (crate / "notes.txt").write_text("mine\n")  # untracked
    (crate / "src/lib.rs").write_text(LIB + "// my own edit\n")  # a file the port must edit

    refused = run("apply", str(crate), "--no-build", "--allow-dirty")

    assert refused.returncode == 2, refused.stderr
    assert "the port must edit files with uncommitted changes: src/lib.rs (modified)" in refused.stderr
    assert "never puts your own changes into the port commit" in refused.stderr
    assert git(crate, "symbolic-ref", "HEAD") == "refs/heads/main"

    git(crate, "checkout", "--", "src/lib.rs")
    done = run("apply", str(crate), "--no-build", "--allow-dirty")

    assert done.returncode == 0, done.stderr
    in_commit = git(crate, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert "README.md" not in in_commit and "notes.txt" not in in_commit
    assert git(crate, "show", "HEAD:README.md") == "readme"
    assert (crate / "README.md").read_text() == "readme, edited\n"  # still uncommitted in the work tree
    status = git(crate, "status", "--porcelain=v1", "--untracked-files=all").splitlines()
    assert sorted(line.strip() for line in status) == ["?? notes.txt", "M README.md"]


# --------------------------------------------------------------------------------------
# a consumer project: its manifest, the copy beside it (offline cargo)


@pytest.fixture
def consumer(offline_cargo, tmp_path: Path) -> tuple[Path, dict]:
    """A project that depends on the corpus's redis-sample, "published" to the offline registry."""
    from tests.support.cli import ci_like_env, git_repo
    from tests.support.offline_cargo import add_crate

    add_crate(offline_cargo.registry, REPO / "corpus" / "samples" / "redis-sample")
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\nedition = "2018"\n\n[dependencies]\nredis-sample = "0.1"\n')
    (app / "src" / "main.rs").write_text("fn main() { let _ = redis_sample::Client::open(\"redis://127.0.0.1/\"); }\n")
    git_repo(app, "app")
    return app, ci_like_env(offline_cargo, tmp_path)


def consumer_state(app: Path) -> tuple[bytes, list[str], str]:
    copy = app / "wasiport" / "redis-sample-0.1.0"
    subjects = git(copy, "log", "--format=%s").splitlines()
    status = git(copy, "status", "--porcelain=v1", "--untracked-files=all")
    return (app / "Cargo.toml").read_bytes(), subjects, status


@pytest.mark.cargo
def test_a_consumer_apply_killed_after_writing_the_manifest_is_recovered(consumer) -> None:
    app, env = consumer
    killed = wasiport("apply", "redis-sample", "--manifest-path", str(app / "Cargo.toml"), "--no-build", env=dict(env, WASIPORT_CRASH_AT="manifest"))
    _, stderr = killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL, stderr

    again = run("apply", "redis-sample", "--manifest-path", str(app / "Cargo.toml"), "--no-build", env=env)

    assert again.returncode == 0, again.stderr
    assert "note: an interrupted earlier run was undone" in again.stdout
    manifest, subjects, status = consumer_state(app)
    assert manifest.count(b"[patch.crates-io]") == 1 and b'redis-sample = { version = "=0.1.0", registry = "wasiport-ports" }' in manifest
    assert subjects == ["wasiport: port redis-sample 0.1.0 to WasmEdge sockets", "upstream: redis-sample 0.1.0"]
    assert status == ""


@pytest.mark.cargo
def test_two_consumer_applies_racing_give_one_copy_one_port_and_one_patch(consumer) -> None:
    app, env = consumer
    env = dict(env, WASIPORT_LOCK_WAIT="600")
    racers = [wasiport("apply", "redis-sample", "--manifest-path", str(app / "Cargo.toml"), "--no-build", env=env) for _ in range(2)]
    outputs = [racer.communicate(timeout=900) + (racer.returncode,) for racer in racers]
    for out, err, code in outputs:
        assert code == 0, err
    assert sum("git: ok: committed " in out for out, _, _ in outputs) == 1
    manifest, subjects, status = consumer_state(app)
    assert manifest.count(b"[patch.crates-io]") == 1
    assert subjects == ["wasiport: port redis-sample 0.1.0 to WasmEdge sockets", "upstream: redis-sample 0.1.0"]
    assert status == ""
    assert sorted(p.name for p in (app / "wasiport").iterdir()) == [".cargo-ports", "redis-sample-0.1.0"]  # the ports registry and one copy: no partial copy left
