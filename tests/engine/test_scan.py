"""Scanning real sources: Debian's ureq and tiny_http at exact lines, macros, cfg, problems, cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from wasiport.model import Profile, Severity
from wasiport.check.files import discover
from wasiport.check.scan import scan_paths

REGISTRY = Path("/usr/share/cargo/registry")


def brief(result, root: str = "") -> set[tuple[str, int, str, str]]:
    return {
        (f.path.split(root + "/", 1)[-1] if root else Path(f.path).name, f.span.start_line, f.rule_id.split("/", 1)[1], str(f.severity))
        for f in result.findings
    }


def scan_source(tmp_path: Path, code: str, name: str = "lib.rs", **kwargs):
    path = tmp_path / name
    path.write_text(code)
    return scan_paths([path], use_cache=False, jobs=1, **kwargs)


UREQ = {
    ("src/ntls.rs", 5, "std-net-import", "error"),
    ("src/resolve.rs", 3, "std-net-import", "error"),
    ("src/resolve.rs", 16, "to-socket-addrs", "error"),
    ("src/rtls.rs", 4, "std-net-import", "error"),
    ("src/stream.rs", 4, "std-net-import", "error"),
    ("src/stream.rs", 82, "socket-timeouts", "error"),
    ("src/stream.rs", 83, "socket-timeouts", "error"),
    ("src/stream.rs", 167, "std-net-path", "error"),
    ("src/stream.rs", 216, "std-net-path", "error"),
    ("src/stream.rs", 220, "peek", "error"),
    ("src/stream.rs", 254, "socket-timeouts", "error"),
    ("src/stream.rs", 255, "socket-timeouts", "error"),
    ("src/stream.rs", 267, "socket-timeouts", "error"),
    ("src/stream.rs", 391, "connect-timeout", "error"),
    ("src/stream.rs", 412, "set-nodelay", "error"),
    ("src/stream.rs", 415, "socket-timeouts", "error"),
    ("src/stream.rs", 417, "socket-timeouts", "error"),
    ("src/stream.rs", 421, "socket-timeouts", "error"),
    ("src/stream.rs", 423, "socket-timeouts", "error"),
    ("src/stream.rs", 526, "thread-spawn", "warning"),  # behind feature "socks-proxy": may be on
    ("src/testserver.rs", 1, "std-net-import", "error"),
    ("src/testserver.rs", 6, "std-net-import", "error"),
    ("src/testserver.rs", 66, "to-socket-addrs", "error"),
    ("src/testserver.rs", 128, "listener-bind", "error"),
    ("src/testserver.rs", 132, "thread-spawn", "warning"),
    ("src/testserver.rs", 141, "thread-spawn", "warning"),
    ("Cargo.toml", 42, "dependency", "warning"),  # [dependencies.native-tls], optional
}
TINY_HTTP = {
    ("src/connection.rs", 5, "std-net-import", "error"),
    ("src/connection.rs", 27, "listener-accept", "error"),
    ("src/connection.rs", 100, "try-clone", "error"),
    ("src/connection.rs", 126, "to-socket-addrs-bound", "warning"),
    ("src/connection.rs", 127, "to-socket-addrs", "error"),
    ("src/connection.rs", 137, "listener-bind", "error"),
    ("src/lib.rs", 101, "std-net-import", "error"),
    ("src/lib.rs", 196, "to-socket-addrs-bound", "warning"),
    ("src/lib.rs", 212, "to-socket-addrs-bound", "warning"),
    # `server` comes from `listener.into()` on a generic: unresolved, so only a warning
    ("src/lib.rs", 294, "listener-accept", "warning"),
    ("src/lib.rs", 288, "thread-spawn", "warning"),
    ("src/util/task_pool.rs", 83, "thread-spawn", "warning"),
}


@pytest.mark.parametrize("crate,expected", [("ureq-2.6.2", UREQ), ("tiny_http-0.12.0", TINY_HTTP)])
def test_debian_crates_at_exact_lines(crate, expected):
    root = REGISTRY / crate
    if not root.is_dir():
        pytest.skip(f"{root} is not installed (Debian package librust-{crate.split('-')[0].replace('_', '-')}-dev; .ci/run installs it)")
    result = scan_paths([root], use_cache=False, jobs=1)
    assert brief(result, crate) == expected
    assert result.problems == []


def test_unresolved_look_alikes_are_warnings_and_not_sure(tmp_path):
    result = scan_source(tmp_path, "use std::net::TcpStream;\nfn f(c: &Conn) { c.inner().set_nodelay(true).unwrap(); }\n")
    nodelay = [f for f in result.findings if f.rule_id.endswith("set-nodelay")]
    assert len(nodelay) == 1 and nodelay[0].severity is Severity.WARNING and not nodelay[0].sure


def test_no_std_net_means_no_look_alikes(tmp_path):
    result = scan_source(tmp_path, "fn f(c: &Conn) { c.inner().set_nodelay(true).unwrap(); } // network\n")
    assert result.findings == []


def test_sites_inside_macros_are_found(tmp_path):
    code = """use std::net::{TcpStream, TcpListener};
macro_rules! t { ($e:expr) => { $e.unwrap() } }
fn f(a: &std::net::SocketAddr, d: std::time::Duration) {
    let s = t!(TcpStream::connect_timeout(a, d));
    assert_ok!(s.set_nodelay(true));
    let l = try!(TcpListener::bind("127.0.0.1:0"));
    println!("{:?}", l.accept());
    let v = vec![std::net::UdpSocket::bind("0.0.0.0:0")];
}
"""
    found = brief(scan_source(tmp_path, code))
    rules = {(line, rule) for _, line, rule, _ in found}
    assert (4, "connect-timeout") in rules
    assert (5, "set-nodelay") in rules
    assert (6, "listener-bind") in rules
    assert (7, "listener-accept") in rules
    assert (8, "std-net-path") in rules


def test_macro_findings_point_at_the_exact_bytes(tmp_path):
    code = "use std::net::TcpStream;\nfn f() { t!(TcpStream::connect_timeout(&A, T)); }\n"
    result = scan_source(tmp_path, code)
    finding = next(f for f in result.findings if f.rule_id.endswith("connect-timeout"))
    data = code.encode()
    assert data[finding.span.start_byte : finding.span.end_byte] == b"TcpStream::connect_timeout(&A, T)"
    assert (finding.span.start_line, finding.span.start_col) == (2, 13)


def test_doc_comments_and_strings_are_not_findings(tmp_path):
    code = '''//! Opens a `std::net::TcpStream`.
/// ```
/// let s = std::net::TcpStream::connect("x").unwrap();
/// s.set_nodelay(true);
/// ```
#[doc = "std::net::TcpListener::bind"]
fn f() { let _ = "std::net::TcpStream::connect"; }
'''
    assert scan_source(tmp_path, code).findings == []


def test_cfgd_out_code_is_not_a_finding(tmp_path):
    code = """
#[cfg(unix)]
use std::net::TcpStream;
#[cfg(not(target_os = "wasi"))]
fn native() { let _ = std::net::TcpListener::bind("0.0.0.0:80"); }
#[cfg(test)]
mod tests { use std::net::UdpSocket; }
#[cfg(feature = "net")]
fn maybe() { let _ = std::net::UdpSocket::bind("0.0.0.0:0"); }
"""
    found = brief(scan_source(tmp_path, code))
    assert {line for _, line, _, _ in found} == {9}  # only the feature-gated one: it may be on


def test_a_file_behind_a_cfgd_out_mod_is_skipped(tmp_path):
    src = tmp_path / "crate" / "src"
    src.mkdir(parents=True)
    (tmp_path / "crate" / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    (src / "lib.rs").write_text("#[cfg(unix)]\nmod unix_sock;\nmod tcp;\n")
    (src / "unix_sock.rs").write_text("use std::net::TcpStream;\n")
    (src / "tcp.rs").write_text("use std::net::TcpStream;\n")
    found = brief(scan_paths([tmp_path / "crate"], use_cache=False, jobs=1), "crate")
    assert found == {("src/tcp.rs", 1, "std-net-import", "error")}


def test_suppression_comments(tmp_path):
    code = """use std::net::TcpStream; // wasiport: allow(std-net-import)
fn a(s: &TcpStream) {
    // wasiport: allow(wasmedge/set-nodelay)
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(None).unwrap();
}
// wasiport: allow(socket-timeouts)
fn b(s: &TcpStream) {
    s.set_write_timeout(None).unwrap();
}
"""
    found = brief(scan_source(tmp_path, code))
    assert found == {("lib.rs", 5, "socket-timeouts", "error")}


def test_problems_instead_of_tracebacks(tmp_path):
    (tmp_path / "latin1.rs").write_bytes(b"// caf\xe9\nuse std::net::TcpStream;\n")
    (tmp_path / "broken.rs").write_text("use std::net::TcpStream;\nfn f( {\n")
    (tmp_path / "huge.rs").write_bytes(b"// net\n" + b" " * (5 * 1024 * 1024))
    result = scan_paths([tmp_path], use_cache=False, jobs=1)
    codes = {(Path(p.path).name, p.code) for p in result.problems}
    assert codes == {
        ("latin1.rs", "wasiport/not-utf8"),
        ("broken.rs", "wasiport/parse-error"),
        ("huge.rs", "wasiport/file-too-large"),
    }
    broken = next(p for p in result.problems if p.path.endswith("broken.rs"))
    assert broken.line == 2
    # findings in the part that parses are still reported
    assert any(f.path.endswith("broken.rs") and f.span.start_line == 1 for f in result.findings)


def test_bom_and_crlf_positions(tmp_path):
    code = "\ufeffuse std::io;\r\nuse std::net::TcpStream;\r\nfn f() {}\r\n"
    result = scan_source(tmp_path, code)
    finding = result.findings[0]
    assert (finding.span.start_line, finding.span.start_col) == (2, 1)
    data = code.encode()
    assert data[finding.span.start_byte : finding.span.end_byte] == b"use std::net::TcpStream;"


def test_build_scripts_tests_and_examples_are_skipped_unless_asked(tmp_path):
    crate = tmp_path / "c"
    for rel in ("src/lib.rs", "tests/it.rs", "examples/ex.rs", "build.rs"):
        (crate / rel).parent.mkdir(parents=True, exist_ok=True)
        (crate / rel).write_text("use std::net::TcpStream;\n")
    (crate / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    default = {Path(t.display).name for t in discover([crate])}
    everything = {Path(t.display).name for t in discover([crate], all_targets=True)}
    assert default == {"lib.rs"}
    assert everything == {"lib.rs", "it.rs", "ex.rs", "build.rs"}


def test_cache_reuses_unchanged_files_and_rescans_changed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    crate = tmp_path / "c" / "src"
    crate.mkdir(parents=True)
    (crate / "a.rs").write_text("use std::net::TcpStream;\n")
    (crate / "b.rs").write_text("use std::net::UdpSocket;\n")
    first = scan_paths([tmp_path / "c"], jobs=1)
    second = scan_paths([tmp_path / "c"], jobs=1)
    assert (first.from_cache, second.from_cache) == (0, 2)
    assert brief(second) == brief(first)
    (crate / "b.rs").write_text("use std::net::{UdpSocket, TcpListener};\n// changed\n")
    stat = os.stat(crate / "b.rs")
    os.utime(crate / "b.rs", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    third = scan_paths([tmp_path / "c"], jobs=1)
    assert third.from_cache == 1
    assert any("TcpListener" in f.message for f in third.findings)


def test_parallel_scan_equals_serial(tmp_path):
    for i in range(300):
        (tmp_path / f"f{i}.rs").write_text("use std::net::TcpStream;\n" if i % 3 == 0 else "fn f() {}\n")
    serial = scan_paths([tmp_path], use_cache=False, jobs=1)
    parallel = scan_paths([tmp_path], use_cache=False, jobs=2)
    assert brief(serial) == brief(parallel) and len(serial.findings) == 100


def test_profile_gate_is_used_in_fixes(tmp_path):
    profile = Profile(gate='target_os = "wasi"')
    result = scan_source(tmp_path, "use std::net::TcpStream;\n", profile=profile)
    replacement = result.findings[0].fix.edits[0].replacement
    assert '#[cfg(target_os = "wasi")]' in replacement and '#[cfg(not(target_os = "wasi"))]' in replacement


def test_cargo_toml_dependencies_that_cannot_work(tmp_path):
    crate = tmp_path / "c"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_text("fn f() {}\n")
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "c"\nversion = "0.1.0"\n\n'
        "[dependencies]\n"
        'tokio = { version = "1", features = ["full"] }  # full includes net\n'
        'tokio-util = "0.7"\n'
        'socket2 = "0.4"\n'
        'mio = "0.8"  # without net/os-poll: fine\n'
        'native-tls = { version = "0.2", optional = true }\n'
        "\n[target.'cfg(unix)'.dependencies]\n"
        'net2 = "0.2"  # never built for wasm\n'
        "\n[dev-dependencies]\n"
        'reqwest = "0.11"  # tests only\n'
    )
    result = scan_paths([crate], use_cache=False, jobs=1)
    found = {(f.span.start_line, f.message.split(":")[0], str(f.severity), str(f.port)) for f in result.findings}
    assert found == {
        (6, "dependency `tokio` (feature net)", "error", "kept"),
        (8, "dependency `socket2`", "error", "kept"),
        (10, "dependency `native-tls` (optional", "warning", "manual"),
    }
    tokio = next(f for f in result.findings if "tokio" in f.message)
    assert "wasi_tokio" in tokio.help


def test_a_malformed_cargo_toml_is_a_problem_with_its_line(tmp_path):
    crate = tmp_path / "c"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_text("use std::net::TcpStream;\n")
    (crate / "Cargo.toml").write_text('[package]\nname = "c"\nversion = = "0.1.0"\n')
    result = scan_paths([crate], use_cache=False, jobs=1)
    problem = next(p for p in result.problems if p.code == "wasiport/manifest-parse-error")
    assert problem.line == 3 and problem.path.endswith("Cargo.toml")
    assert any(f.rule_id.endswith("std-net-import") for f in result.findings)  # the sources are still scanned
