"""Valid Rust that tree-sitter-rust cannot read is still examined (check) and ported (apply).

Every source here is ours, written to reproduce a construct measured in real crates
(redis >= 0.32, web-sys, pyo3, syn, mio, quickcheck, capnp, ...): each one makes the
grammar fail on its own (asserted), and the sites before, after and around it are
found at their exact lines.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import git, git_repo, run_wasiport
from wasiport.check import scan_paths
from wasiport.model import Profile, Severity
from wasiport.port import Root, plan_port
from wasiport.rust import gaps
from wasiport.rust.source import NOT_EXAMINED, UNREAD_EDIT, SourceFile, first_syntax_error, parse_bytes, read_rust

BEFORE = "use std::net::TcpStream;\n"  # line 1: std-net-import
AFTER = """
pub fn after(s: &TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)
}
"""

# name -> (code between BEFORE and AFTER, the construct `read_rust` masks)
CONSTRUCTS = {
    "field attribute in fn parameters": (
        """pub struct Parts { pub addr: String, #[cfg(feature = "tls")] pub tls: bool }
pub fn open(Parts { addr, #[cfg(feature = "tls")] tls }: Parts) -> std::io::Result<()> {
    let s = std::net::TcpStream::connect(addr.as_str())?;
    s.set_nodelay(true)
}
""",
        "attribute on a struct-pattern field",
    ),
    "field attribute in let": (
        """pub struct Parts { pub addr: String, #[cfg(feature = "tls")] pub tls: bool }
pub fn open(parts: Parts) -> std::io::Result<()> {
    let Parts {
        addr,
        #[cfg(feature = "tls")]
        tls,
    } = parts;
    let s = std::net::TcpStream::connect(addr.as_str())?;
    s.set_nodelay(true)
}
""",
        "attribute on a struct-pattern field",
    ),
    "safe fn in unsafe extern": (
        """unsafe extern "C" {
    pub safe fn abs(x: i32) -> i32;
    pub safe static LIMIT: u32;
}
""",
        "`safe` item in an extern block",
    ),
    "auto trait under cfg": ('#[cfg(feature = "nightly")]\npub unsafe auto trait Local {}\n', "`auto trait`"),
    "type in extern block": (
        """extern "C" {
    pub type Handle;
    pub fn handle_new() -> *mut Handle;
}
""",
        "`type X;` in an extern block",
    ),
    "cast before <=": (
        "type Tick = u32;\npub fn due(now: u64, tick: Tick) -> bool {\n    if now as Tick <= tick {\n        return true;\n    }\n    false\n}\n",
        "cast before `<=`",
    ),
    "closure returning ..=end": (
        "pub fn upto(ends: Vec<u8>) -> Vec<std::ops::RangeToInclusive<u8>> {\n    ends.into_iter().map(|end| ..=end).collect()\n}\n",
        "closure returning `..=end`",
    ),
    "tilde in macro body": ("macro_rules! fuel {\n    (~ $($rest:tt)*) => { 1 };\n}\n", "`~` in a macro body"),
    "lone dollar in macro body": ("macro_rules! dollar {\n    () => { [$] };\n}\n", "lone `$` in a macro body"),
    "empty generic arguments": (
        "pub struct Reader<T = u8>(T);\npub fn reborrow(r: &Reader) -> Reader<> {\n    Reader::<>(r.0)\n}\n",
        "empty generic arguments `<>`",
    ),
    "unit struct with where-clause": (
        "pub struct Bound<T>\nwhere\n    T: Send;\n",
        "where-clause on a unit struct",
    ),
    "trait with where and no supertraits": (
        "pub trait Bins:\n    where for<'a> &'a Self: IntoIterator<Item = u8>\n{\n    fn count(&self) -> usize;\n}\n",
        "empty supertrait list before `where`",
    ),
    "trailing + in supertraits": ("pub trait Flags: Copy +\n    Eq +\n{\n    const WIDTH: u32;\n}\n", "trailing `+` in supertraits"),
}


def brief(findings) -> set[tuple[int, str]]:
    return {(f.span.start_line, f.rule_id.split("/", 1)[1]) for f in findings}


def line_of(code: str, text: str, last: bool = False) -> int:
    return code[: code.rindex(text) if last else code.index(text)].count("\n") + 1


def scan(tmp_path: Path, code: str, name: str = "lib.rs"):
    path = tmp_path / name
    path.write_bytes(code.encode())
    return scan_paths([path], use_cache=False, jobs=1)


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_known_construct_is_examined_in_full(tmp_path, name):
    middle, construct = CONSTRUCTS[name]
    code = BEFORE + middle + AFTER
    data = code.encode()
    assert parse_bytes(data).root_node.has_error, "the grammar reads this construct now: drop its mask"
    reading = read_rust(data)
    assert not reading.tree.root_node.has_error and reading.gaps == () and reading.broken is None
    assert construct in {m.construct for m in reading.masks}
    assert len(reading.tree.root_node.text) == len(data)  # same length: offsets are the file's

    result = scan(tmp_path, code)
    assert result.problems == []
    found = brief(result.findings)
    assert (1, "std-net-import") in found
    assert (line_of(code, "s.set_nodelay(true)", last=True), "set-nodelay") in found
    assert not any(f.rule_id == NOT_EXAMINED for f in result.findings)
    if "std::net::TcpStream::connect" in middle:  # the body of the fn whose pattern the grammar rejects
        inner = line_of(code, "std::net::TcpStream::connect")
        assert (inner, "std-net-path") in found
        assert (inner + 1, "set-nodelay") in found


def test_masking_never_touches_strings_comments_or_clean_items():
    code = (
        'const DOC: &str = "S { a, #[cfg(x)] b } ~ $ auto trait safe fn";\n'
        "// ~ and $ and k#gen in a comment\n"
        "/* nested /* ~ */ still a comment ~ */\n"
        "pub fn clean(x: u32) -> u32 { !x }\n"
        "macro_rules! m { () => { ~ }; }\n"
    )
    data = code.encode()
    reading = read_rust(data)
    assert [(data[m.start : m.end], m.construct) for m in reading.masks] == [(b"~", "`~` in a macro body")]
    assert reading.masks[0].start == code.rindex("~")
    assert not reading.tree.root_node.has_error


def test_unknown_gap_is_a_warning_and_the_rest_is_scanned(tmp_path):
    # `dyn 'a + Read`: valid Rust (lifetime first), unknown to the grammar and not masked
    code = (
        BEFORE
        + "pub fn first(addr: &str) -> std::io::Result<TcpStream> {\n    TcpStream::connect_timeout(&addr.parse().unwrap(), std::time::Duration::from_secs(1))\n}\n"
        + "pub fn boxed<'a>(r: Box<dyn 'a + std::io::Read>) -> usize {\n"
        + "    let s = std::net::TcpStream::connect(\"127.0.0.1:6379\").unwrap();\n"
        + "    drop((r, s));\n    0\n}\n"
        + AFTER
    )
    reading = read_rust(code.encode())
    assert reading.broken is None and len(reading.gaps) == 1
    gap = reading.gaps[0]
    assert code[gap.start : gap.end].startswith("pub fn boxed") and code[gap.start : gap.end].endswith("0\n}")

    result = scan(tmp_path, code)
    assert result.problems == []  # valid Rust: not a parse error
    found = brief(result.findings)
    assert {(1, "std-net-import"), (3, "connect-timeout"), (line_of(code, "s.set_nodelay"), "set-nodelay")} <= found
    inner = line_of(code, "std::net::TcpStream::connect")
    assert (inner, "std-net-path") in found  # found from the partial parse, and flagged below
    warning = next(f for f in result.findings if f.rule_id == NOT_EXAMINED)
    assert warning.severity is Severity.WARNING and warning.span.start_line == line_of(code, "std::net::TcpStream::connect")
    assert f"grammar gap at {line_of(code, 'dyn')}:" in warning.message and "`fn boxed`" in warning.message
    assert f"`TcpStream` (line {inner})" in warning.message and f"(lines {inner - 1}-{inner + 3})" in warning.message


def test_a_gap_without_socket_words_says_nothing(tmp_path):
    code = BEFORE + "pub fn boxed<'a>(r: Box<dyn 'a + std::io::Read>) -> usize {\n    drop(r);\n    0\n}\n" + AFTER
    result = scan(tmp_path, code)
    assert result.problems == [] and not any(f.rule_id == NOT_EXAMINED for f in result.findings)
    assert (1, "std-net-import") in brief(result.findings)


@pytest.mark.parametrize(
    "code, line, why",
    [
        ("use std::net::TcpStream;\nfn f( {\n", 2, "unclosed delimiter `{`"),
        ("use std::net::TcpStream;\nfn f() {}\n}\n", 3, "unexpected closing delimiter `}`"),
        ('use std::net::TcpStream;\nconst S: &str = "open\n', 2, "unterminated string"),
        ("use std::net::TcpStream;\n/* open /* nested */\nfn f() {}\n", 2, "unterminated block comment"),
        ("use std::net::TcpStream;\nfn f() -> std::io::Result<TcpStream> {\n    let s = TcpStream::connect(\"a:1\")?\n    Ok(s)\n}\n", 3, "expected `;`"),
        ("use std::net::TcpStream;\n<<<<<<< HEAD\nfn f() {}\n=======\nfn g() {}\n>>>>>>> other\n", 2, "merge-conflict marker"),
    ],
)
def test_rust_that_rustc_rejects_stays_a_parse_error(tmp_path, code, line, why):
    source = SourceFile.from_bytes("lib.rs", code.encode())
    problem = first_syntax_error(source)
    assert problem is not None and problem.code == "wasiport/parse-error"
    assert (problem.line, problem.message) == (line, f"file does not parse as Rust: {why}")
    result = scan(tmp_path, code)
    assert [(p.code, p.line) for p in result.problems] == [("wasiport/parse-error", line)]
    assert (1, "std-net-import") in brief(result.findings)  # what parses is still reported


# -- apply ------------------------------------------------------------------------------


def crate(tmp_path: Path, lib: str) -> Path:
    root = tmp_path / "gapcrate"
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "gapcrate"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "lib.rs").write_bytes(lib.encode())
    return root


def plan(root: Path):
    return plan_port(root, [Root(root / "src" / "lib.rs", "lib")], Profile())


def test_apply_ports_a_file_with_masked_constructs_byte_exactly(tmp_path):
    middle = CONSTRUCTS["field attribute in fn parameters"][0] + CONSTRUCTS["type in extern block"][0]
    lib = "use std::net::{SocketAddr, TcpStream};\n" + middle + AFTER
    root = crate(tmp_path, lib)
    done = plan(root)
    assert done.problems == []
    path = root / "src" / "lib.rs"
    new = done.contents[path].decode()
    # the import is gated and the path rerouted; every other line is the file's own, byte for byte
    assert "use crate::wasiport_net::{TcpStream};" in new or "use crate::wasiport_net::TcpStream;" in new
    old_lines, new_lines = lib.splitlines(keepends=True), new.splitlines(keepends=True)
    tail = new_lines[len(new_lines) - len(old_lines) + 1 :]
    changed = [(old, new) for old, new in zip(old_lines[1:], tail) if old != new]
    assert changed == [("    let s = std::net::TcpStream::connect(addr.as_str())?;\n", "    let s = wasiport_net::TcpStream::connect(addr.as_str())?;\n")]
    assert "Parts { addr, #[cfg(feature = \"tls\")] tls }: Parts" in new and "    pub type Handle;\n" in new
    assert brief(done.findings) >= {(1, "std-net-import"), (line_of(lib, "std::net::TcpStream::connect"), "std-net-path")}


def test_apply_refuses_an_edit_inside_an_unread_region_and_says_where(tmp_path):
    lib = (
        BEFORE
        + "pub fn boxed<'a>(r: Box<dyn 'a + std::io::Read>) -> usize {\n"
        + "    let s = std::net::TcpStream::connect(\"127.0.0.1:6379\").unwrap();\n"
        + "    drop((r, s));\n    0\n}\n"
        + AFTER
    )
    root = crate(tmp_path, lib)
    done = plan(root)
    assert done.contents == {}  # nothing to write
    assert [(p.code, p.path, p.line) for p in done.problems] == [(UNREAD_EDIT, "src/lib.rs", 3)]
    message = done.problems[0].message
    assert "`fn boxed` (lines 2-6)" in message and "grammar gap at 2:" in message


def test_apply_edits_around_an_unread_region(tmp_path):
    # the gap is in a fn without socket code: the import above it is ported
    lib = BEFORE + "pub fn boxed<'a>(r: Box<dyn 'a + std::io::Read>) -> usize {\n    drop(r);\n    0\n}\n" + AFTER
    root = crate(tmp_path, lib)
    done = plan(root)
    assert done.problems == []
    new = done.contents[root / "src" / "lib.rs"].decode()
    assert new.endswith(lib[len(BEFORE) :]) and "wasiport_net::TcpStream" in new


def test_gap_regions_and_overlaps():
    assert gaps.overlaps(5, 5, 0, 10) and not gaps.overlaps(0, 0, 0, 10) and not gaps.overlaps(10, 12, 0, 10)
    assert gaps.overlaps(8, 12, 0, 10)
    assert gaps.merged([(5, 9), (0, 3), (2, 4), (9, 11)]) == [(0, 4), (5, 11)]


@pytest.mark.cargo
def test_apply_on_the_command_line_writes_nothing_and_says_where(tmp_path):
    lib = (
        BEFORE
        + "pub fn boxed<'a>(r: Box<dyn 'a + std::io::Read>) -> usize {\n"
        + "    let s = std::net::TcpStream::connect(\"127.0.0.1:6379\").unwrap();\n"
        + "    drop((r, s));\n    0\n}\n"
    )
    root = git_repo(crate(tmp_path, lib))
    env = {**os.environ, "WASIPORT_CACHE_DIR": str(tmp_path / "cache")}
    done = run_wasiport(env, "apply", str(root), "--no-build")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "nothing was written: " in done.stderr
    assert "src/lib.rs:3:13: an edit would land inside `fn boxed` (lines 2-6)" in done.stderr
    assert (root / "src" / "lib.rs").read_text() == lib and not (root / "src" / "wasiport_net.rs").exists()
    assert git(root, "status", "--porcelain") == ""
