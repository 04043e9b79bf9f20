"""One answer to "which files make this crate", for `check`, `apply` and `check --deps`.

The rule by name (`in_wasm_build`), then small crates written here, one per kind of
module that used to make check and apply disagree (or crash): modules declared inside
macros, `#[path]` next to `#[cfg]`, modules cfg'd out, a nested package. For each,
what `check` calls fixable is what `apply` fixes, and after `apply` check finds
nothing fixable left.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git, git_repo, run_wasiport as wasiport
from tests.support.offline_cargo import OfflineCargo
from wasiport.check.files import crate_files, in_wasm_build, nested_packages
from wasiport.check.scan import scan_crate
from wasiport.rust.modtree import module_cfgd_out, module_tree


# -- the rule, by name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("src/lib.rs", True),
        ("src/net/tcp.rs", True),
        ("lib.rs", True),
        ("build.rs", False),  # runs on the host
        ("src/build.rs", True),  # only the package's own build script is one
        ("tests/it.rs", False),
        ("examples/client.rs", False),
        ("benches/speed.rs", False),
        ("src/tests/helpers.rs", True),  # a module named tests inside src is part of the library
        ("target/debug/build/out.rs", False),
        (".hidden/x.rs", False),
        ("node_modules/x/y.rs", False),
        ("src/README.md", False),
    ],
)
def test_in_wasm_build_by_path(relative, expected):
    assert in_wasm_build(relative) is expected


def test_in_wasm_build_all_targets_keeps_tests_examples_and_the_build_script():
    for relative in ("build.rs", "tests/it.rs", "examples/client.rs", "benches/speed.rs"):
        assert in_wasm_build(relative, all_targets=True)
    assert not in_wasm_build("target/x.rs", all_targets=True)


def test_in_wasm_build_leaves_nested_packages_to_themselves():
    nested = {"inner", "tools/gen"}
    assert not in_wasm_build("inner/src/lib.rs", nested)
    assert not in_wasm_build("tools/gen/src/main.rs", nested)
    assert in_wasm_build("tools/src/lib.rs", nested)
    assert in_wasm_build("src/inner/lib.rs", nested)


def test_the_walk_takes_exactly_the_files_in_wasm_build_says(tmp_path):
    crate = tmp_path / "tree"
    names = [
        "src/lib.rs", "src/net/tcp.rs", "src/bin/tool.rs", "build.rs", "src/build.rs", "tests/it.rs",
        "examples/a.rs", "benches/b.rs", "src/tests/helper.rs", "target/debug/x.rs", ".cache/y.rs",
        "inner/src/lib.rs", "inner/tests/t.rs", "tools/gen/src/main.rs", "tools/src/lib.rs", "notes.txt",
    ]
    for name in names:
        (crate / name).parent.mkdir(parents=True, exist_ok=True)
        (crate / name).write_text("fn f() {}\n")
    for package in ("", "inner", "tools/gen"):
        (crate / package / "Cargo.toml").write_text('[package]\nname = "x"\nversion = "0.1.0"\n')
    nested = {"inner", "tools/gen"}
    for all_targets in (False, True):
        walked = {Path(t.path).relative_to(crate.resolve()).as_posix() for t in crate_files(crate, all_targets=all_targets)}
        assert walked == {n for n in names if in_wasm_build(n, nested, all_targets=all_targets)}


# -- small crates -------------------------------------------------------------------------------

MACRO_LIB = """\
//! Modules declared inside macros, as tokio and mio do.
macro_rules! cfg_net {
    ($($item:item)*) => { $( $item )* }
}

cfg_net! {
    pub mod net;
}

#[cfg(unix)]
cfg_net! {
    mod unix_only;
}

pub mod plain;
"""
MACRO_NET = """\
use std::io;
use std::net::TcpStream;

cfg_net! {
    pub mod tcp;
}

pub fn connect(address: &str) -> io::Result<TcpStream> {
    TcpStream::connect(address)
}
"""
MACRO_TCP = """\
use std::net::{TcpListener, ToSocketAddrs};

pub fn listen<A: ToSocketAddrs>(address: A) -> std::io::Result<TcpListener> {
    TcpListener::bind(address)
}
"""
UNIX_ONLY = """\
use std::net::UdpSocket;

pub fn socket() -> std::io::Result<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0")
}
"""
PLAIN = "pub fn add(a: u32, b: u32) -> u32 { a + b }\n"


def write_crate(root: Path, name: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2018"\n\n[dependencies]\n')
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def macro_crate(root: Path) -> Path:
    return write_crate(
        root,
        "macromods",
        {"src/lib.rs": MACRO_LIB, "src/net.rs": MACRO_NET, "src/net/tcp.rs": MACRO_TCP, "src/unix_only.rs": UNIX_ONLY, "src/plain.rs": PLAIN},
    )


def checked(env: dict, path: Path) -> list[dict]:
    done = wasiport(env, "check", str(path), "--format", "json", "--no-cache")
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)["findings"]


def fixable_sites(findings: list[dict], crate: Path) -> set[tuple[str, int, str]]:
    return {(Path(f["path"]).resolve().relative_to(crate.resolve()).as_posix(), f["span"]["start_line"], f["rule_id"]) for f in findings if f["fixable"]}


@pytest.fixture
def env(offline_cargo: OfflineCargo, tmp_path: Path) -> dict:
    return ci_like_env(offline_cargo, tmp_path)


def test_module_tree_follows_modules_declared_in_macros_and_drops_cfgd_out_ones(tmp_path):
    crate = macro_crate(tmp_path / "macromods")
    files = {p.relative_to(crate.resolve()).as_posix() for p in module_tree(crate / "src" / "lib.rs").files}
    assert files == {"src/lib.rs", "src/net.rs", "src/net/tcp.rs", "src/plain.rs"}
    assert module_cfgd_out(crate / "src" / "unix_only.rs", {})
    assert not module_cfgd_out(crate / "src" / "net" / "tcp.rs", {})


@pytest.mark.cargo
def test_a_crate_with_macro_declared_modules_is_ported_in_full(tmp_path, env):
    crate = git_repo(macro_crate(tmp_path / "macromods"))
    before = checked(env, crate)
    fixable = fixable_sites(before, crate)
    assert {path for path, _line, _rule in fixable} == {"src/net.rs", "src/net/tcp.rs"}  # unix_only.rs is cfg'd out

    dry = wasiport(env, "apply", str(crate), "--dry-run", "--no-build", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert {(f["path"], f["line"], f["rule_id"]) for f in planned["findings"] if (f["path"], f["line"], f["rule_id"]) in fixable} == fixable

    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 0, done.stderr
    changed = set(git(crate, "diff", "--name-only", "HEAD~1", "HEAD").splitlines())
    assert changed == {"Cargo.toml", "src/lib.rs", "src/net.rs", "src/net/tcp.rs", "src/wasiport_net.rs"}
    assert (crate / "src" / "unix_only.rs").read_text() == UNIX_ONLY
    assert fixable_sites(checked(env, crate), crate) == set()

    again = wasiport(env, "apply", str(crate), "--no-build")
    assert again.returncode == 0, again.stderr
    assert "macromods: already ported, nothing committed" in again.stdout


PATH_LIB = """\
#[cfg(unix)]
#[path = "sys/unix.rs"]
mod sys;

#[cfg(not(unix))]
#[path = "sys/portable.rs"]
mod sys;

#[cfg(windows)]
mod windows_only;

pub use sys::connect;
"""
PATH_PORTABLE = """\
use std::net::TcpStream;

pub fn connect(address: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect(address)
}
"""
PATH_UNIX = PATH_PORTABLE.replace("TcpStream::connect(address)", "TcpStream::connect(address) // unix")


def path_crate(root: Path) -> Path:
    return write_crate(root, "pathmods", {"src/lib.rs": PATH_LIB, "src/sys/portable.rs": PATH_PORTABLE, "src/sys/unix.rs": PATH_UNIX})


def test_path_attribute_next_to_cfg_is_followed_without_a_traceback(tmp_path):
    crate = path_crate(tmp_path / "pathmods")
    files = {p.relative_to(crate.resolve()).as_posix() for p in module_tree(crate / "src" / "lib.rs").files}
    assert files == {"src/lib.rs", "src/sys/portable.rs"}


@pytest.mark.cargo
def test_apply_follows_path_attributes_next_to_cfg(tmp_path, env):
    crate = git_repo(path_crate(tmp_path / "pathmods"))
    fixable = fixable_sites(checked(env, crate), crate)
    dry = wasiport(env, "apply", str(crate), "--dry-run", "--no-build")
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr
    assert "+++ b/src/sys/portable.rs" in dry.stdout and "+++ b/src/wasiport_net.rs" in dry.stdout
    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 0, done.stderr
    changed = set(git(crate, "diff", "--name-only", "HEAD~1", "HEAD").splitlines())
    assert {path for path, _line, _rule in fixable} <= changed
    assert fixable_sites(checked(env, crate), crate) == set()


NESTED_INNER = """\
use std::net::TcpStream;

pub fn open(address: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect(address)
}
"""


def nested_crate(root: Path) -> Path:
    outer = write_crate(root, "outer", {"src/lib.rs": "pub mod client;\n", "src/client.rs": PATH_PORTABLE})
    write_crate(outer / "inner", "inner", {"src/lib.rs": NESTED_INNER})
    return outer


def test_a_nested_package_is_another_crate_for_every_command(tmp_path):
    outer = nested_crate(tmp_path / "outer")
    own = {Path(t.path).relative_to(outer.resolve()).as_posix() for t in crate_files(outer)}
    assert own == {"src/lib.rs", "src/client.rs"}
    assert {Path(f.path).name for f in scan_crate(outer)} == {"client.rs"}  # check --deps's view of the package
    assert {Path(f.path).parent.parent.name for f in scan_crate(outer / "inner")} == {"inner"}


@pytest.mark.cargo
def test_apply_leaves_a_nested_package_alone_and_check_reports_it_as_its_own(tmp_path, env):
    outer = git_repo(nested_crate(tmp_path / "outer"))
    findings = checked(env, outer)
    inner_sites = {f["path"] for f in findings if "/inner/" in f["path"]}
    assert inner_sites  # check of the tree still reports the nested package (a crate of its own)
    done = wasiport(env, "apply", str(outer), "--no-build")
    assert done.returncode == 0, done.stderr
    changed = set(git(outer, "diff", "--name-only", "HEAD~1", "HEAD").splitlines())
    assert not any(path.startswith("inner/") for path in changed)
    assert "src/client.rs" in changed
    assert (outer / "inner" / "src" / "lib.rs").read_text() == NESTED_INNER
    left = fixable_sites(checked(env, outer), outer)
    assert left and all(path.startswith("inner/") for path, _line, _rule in left)


@pytest.mark.cargo
def test_a_crate_without_findings_has_nothing_to_port(tmp_path, env):
    crate = git_repo(write_crate(tmp_path / "quiet", "quiet", {"src/lib.rs": PLAIN}))
    dry = wasiport(env, "apply", str(crate), "--dry-run", "--no-build")
    assert dry.returncode == 0, dry.stderr
    assert "nothing was written (nothing to port)" in dry.stdout and "already ported" not in dry.stdout
    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 0, done.stderr
    assert "quiet: nothing to port, nothing committed" in done.stdout and "already ported" not in done.stdout


# A workspace whose root package has no socket code, and a member (a test server, used only as
# a path dev-dependency) that has it all: `check` of the root's directory reports the member's
# findings, `apply` of it ports the root package alone (as cargo builds it alone).
SERVER_LIB = """\
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

pub fn serve_once(listener: &TcpListener) -> io::Result<()> {
    let (stream, _) = listener.accept()?;
    let mut reader = stream.try_clone()?;
    let mut writer: TcpStream = stream;
    let mut buffer = [0u8; 64];
    let read = reader.read(&mut buffer)?;
    writer.write_all(&buffer[..read])
}

pub fn listen() -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}
"""
WORKSPACE_TAIL = '\n[dev-dependencies.echoserver]\npath = "support/echoserver"\n\n[workspace]\nmembers = ["support/echoserver"]\n'


def workspace_with_a_server_member(root: Path) -> Path:
    outer = write_crate(root, "quietclient", {"src/lib.rs": PLAIN})
    with (outer / "Cargo.toml").open("a") as manifest:
        manifest.write(WORKSPACE_TAIL)
    write_crate(outer / "support" / "echoserver", "echoserver", {"src/lib.rs": SERVER_LIB})
    return outer


def test_nested_packages_are_the_packages_directly_below_a_package(tmp_path):
    outer = workspace_with_a_server_member(tmp_path / "quietclient")
    write_crate(outer / "support" / "echoserver" / "deeper", "deeper", {"src/lib.rs": PLAIN})  # the member's own
    assert nested_packages(outer) == [(outer / "support" / "echoserver").resolve()]
    assert crate_files(outer) and all("/support/" not in t.path for t in crate_files(outer))


@pytest.mark.cargo
def test_fixable_findings_of_a_nested_member_are_what_applying_to_it_fixes(tmp_path, env):
    outer = git_repo(workspace_with_a_server_member(tmp_path / "quietclient"))
    fixable = fixable_sites(checked(env, outer), outer)
    assert fixable and all(path.startswith("support/echoserver/") for path, _line, _rule in fixable)

    # the root package: nothing to port, and apply says where check's fixable findings are
    done = wasiport(env, "apply", str(outer), "--no-build", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not report.get("commit")
    expected = f"/ is a package of its own ({len(fixable)} fixable finding(s)), not part of this port: `wasiport apply "
    notes = [note for note in report["notes"] if expected in note]
    assert len(notes) == 1 and notes[0].endswith("support/echoserver` ports it"), report["notes"]

    # the member: applying to it fixes exactly what check called fixable, and nothing is left
    ported = wasiport(env, "apply", str(outer / "support" / "echoserver"), "--no-build")
    assert ported.returncode == 0, ported.stderr
    changed = set(git(outer, "diff", "--name-only", "HEAD~1", "HEAD").splitlines())
    assert {path for path, _line, _rule in fixable} <= changed
    assert all(path.startswith("support/echoserver/") for path in changed)
    assert fixable_sites(checked(env, outer), outer) == set()
    again = wasiport(env, "apply", str(outer), "--no-build")
    assert again.returncode == 0, again.stderr
    assert "quietclient: nothing to port, nothing committed" in again.stdout and "is a package of its own" not in again.stdout
