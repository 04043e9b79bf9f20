"""What the scanner leaves out to be fast must never change what it finds.

Each shortcut is checked against the slow way on real sources: the query run
over the keyword ranges against a walk of the whole tree, the crate index's
per-name lookups against the whole merged index, files whose keywords are only
in comments, a rule's `prefilter`, and the Cargo.toml checks in the pool.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from wasiport.engine import matcher
from wasiport.engine.rules import RuleError, load_pack
from wasiport.model import Profile
from wasiport.rust.crateindex import LazyDeclarations, Overlay, _DECLARED
from wasiport.rust.source import parse_bytes
from wasiport.rust.types import Declarations
from wasiport.check import cache as cache_module
from wasiport.check.executor import forked_map
from wasiport.check.scan import scan_paths
from wasiport.engine.pack import load_rules

REPO = Path(__file__).resolve().parents[2]
REGISTRY = Path("/usr/share/cargo/registry")


def real_sources() -> list[Path]:
    """Our samples and Debian's socket crates (installed by .ci/run)."""
    files = sorted((REPO / "corpus" / "samples").rglob("*.rs"))
    for pattern in ("ureq-*", "tiny_http-*", "mio-*", "socket2-*", "hyper-*"):
        for crate in sorted(REGISTRY.glob(pattern)):
            files.extend(sorted((crate / "src").rglob("*.rs")))
    return files


def matched(prepared) -> tuple:
    """What a run of the combined query gave, as byte ranges (comparable across runs)."""
    rules = {
        position: [sorted((name, tuple((n.start_byte, n.end_byte) for n in nodes)) for name, nodes in captures.items()) for captures in found]
        for position, found in prepared.rule_matches.items()
    }
    macros = [(n.start_byte, n.end_byte) for n in prepared.macros]
    return rules, macros


def test_the_query_over_keyword_ranges_finds_what_a_whole_walk_finds():
    rules = load_rules(Profile()).rules
    combined = matcher._Combined(rules)
    checked = 0
    for path in real_sources():
        data = path.read_bytes()
        active = matcher.active_rules(rules, data)
        if not active:
            continue
        root = parse_bytes(data).root_node
        ranges = matcher.keyword_ranges(root, data, matcher._view_keywords(active))
        whole, narrowed = combined.run(root), combined.run(root, ranges)
        positions = {combined.position[(r.id, r.query_text)] for r in active}
        whole_rules, whole_macros = matched(whole)
        narrow_rules, narrow_macros = matched(narrowed)
        # rules with a keyword in the file: the same matches in the same order
        assert {p: m for p, m in whole_rules.items() if p in positions} == {p: m for p, m in narrow_rules.items() if p in positions}, path
        # macros whose body mentions a keyword (the ones the scan re-parses) are all there
        keywords = matcher._view_keywords(active)
        wanted = [
            (n.start_byte, n.end_byte)
            for n in whole.macros
            if any(matcher._in_code(data, k, n.start_byte, n.end_byte) for k in keywords)
        ]
        assert set(wanted) <= set(narrow_macros), path
        checked += 1
    assert checked >= 20


def test_keyword_ranges_look_into_impl_and_mod_bodies():
    data = b"""use std::io;
impl Server {
    fn unrelated(&self) {}
    fn open(&self) { let s = std::net::TcpStream::connect(self.addr); }
}
mod inner { fn other() {} }
"""
    root = parse_bytes(data).root_node
    ranges = matcher.keyword_ranges(root, data, {b"TcpStream"})
    covered = b"".join(data[s:e] for s, e in ranges)
    assert b"fn open" in covered and b"fn unrelated" not in covered and b"mod inner" not in covered


def test_keywords_only_in_comments_do_not_make_a_file_worth_parsing(tmp_path):
    (tmp_path / "docs.rs").write_text(
        "//! Connect with `std::net::TcpStream::connect(addr)`.\n"
        "/// let s = std::net::TcpStream::connect(\"127.0.0.1:80\")?;\n"
        "// use std::net::TcpStream;\n"
        "pub fn f() {}\n"
    )
    (tmp_path / "code.rs").write_text("use std::io; // not std::net here\nuse std::net::TcpStream; // trailing comment\n")
    (tmp_path / "string.rs").write_text('use std::net::SocketAddr;\nconst S: &str = "a\n// TcpStream inside a string";\n')
    result = scan_paths([tmp_path], use_cache=False, jobs=1)
    assert {(Path(f.path).name, f.span.start_line) for f in result.findings} == {("code.rs", 2)}
    assert scan_paths([tmp_path / "docs.rs"], use_cache=False, jobs=1).files_parsed == 0  # never reached tree-sitter


def test_comment_lines_inside_macro_bodies_do_not_trigger_a_reparse():
    data = b"fn f() {\n    log!(\n        // TcpStream\n        x);\n    t!(TcpStream::connect(a));\n}\n"
    root = parse_bytes(data).root_node
    bodies = [data[m.start_byte : m.end_byte] for m, _ in matcher._macro_bodies(root, data, {b"TcpStream"})]
    assert bodies == [b"t!(TcpStream::connect(a))"]


def crate_dirs() -> list[Path]:
    found = [REPO / "corpus" / "samples" / "redis-sample"]
    for pattern in ("tiny_http-*", "ureq-*", "mio-0.8*", "hyper-0.14*"):
        found.extend(sorted(REGISTRY.glob(pattern))[:1])
    return [d for d in found if (d / "src").is_dir()]


@pytest.mark.parametrize("crate", crate_dirs(), ids=lambda p: p.name)
def test_crate_index_lookups_equal_the_whole_merged_index(crate):
    lazy, whole = LazyDeclarations(crate), LazyDeclarations(crate).cleaned()
    names: set[tuple[str, str]] = set()
    for path in lazy.files:
        data = path.read_bytes()
        for kind, pattern in _DECLARED.items():
            names |= {(kind, n.decode("utf-8", "replace")) for n in pattern.findall(data)}
    names |= {("fn", "new"), ("struct", "NoSuchThing"), ("fn", "r#match")}
    owners = [None, *whole.functions][:40]
    for kind, name in sorted(names):
        if kind == "struct":
            assert lazy.struct_fields(name) == whole.struct_fields(name), name
        elif kind == "enum":
            assert lazy.enum_variants(name) == whole.enum_variants(name), name
        else:
            assert lazy.has_free_fn(name) == whole.has_free_fn(name), name
            for owner in owners:
                assert lazy.function_return(owner, name) == whole.function_return(owner, name), (owner, name)


def test_lookups_of_a_common_fn_name_stop_once_their_answer_is_settled(tmp_path):
    # Four files declare `fn new` for four types, one a free `fn helper`: the return of
    # `new` whatever its owner is ambiguous after two files, a free `helper` is found in one.
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    (tmp_path / "src").mkdir()
    for name in "abcd":
        extra = "pub fn helper() -> u8 { 1 }\n" if name == "a" else ""
        (tmp_path / "src" / f"{name}.rs").write_text(f"pub struct T{name};\nimpl T{name} {{ pub fn new() -> T{name} {{ T{name} }} }}\n{extra}")
    lazy = LazyDeclarations(tmp_path)
    assert lazy.function_return(None, "new") is None
    assert len(lazy._per_file) == 2
    assert LazyDeclarations(tmp_path).function_return("Tc", "new") == ("local", "Tc")
    for_helper = LazyDeclarations(tmp_path)
    assert for_helper.has_free_fn("helper") and len(for_helper._per_file) == 1
    whole = LazyDeclarations(tmp_path).cleaned()
    assert whole.function_return(None, "new") is None and whole.has_free_fn("helper")
    assert not LazyDeclarations(tmp_path).has_free_fn("new")  # all four read: none is free


def test_an_overlay_answers_as_the_merged_declarations_would():
    crate = REPO / "corpus" / "samples" / "redis-sample"
    base = LazyDeclarations(crate)
    full = base.cleaned()
    some_struct = next(iter(full.structs))
    top = Declarations(structs={some_struct: {"other": ("path", ("std", "net", "TcpStream"))}, "Local": {"x": None}})
    merged = full.cleaned()
    merged.merge(top)
    overlay = Overlay(base, top)
    for name in [*full.structs, "Local", "Missing"]:
        assert overlay.struct_fields(name) == merged.struct_fields(name), name
    for owner, functions in full.functions.items():
        for name in functions:
            assert overlay.function_return(owner, name) == merged.function_return(owner, name)
            assert overlay.function_return(None, name) == merged.function_return(None, name)
    nested = Overlay(overlay, Declarations(structs={"Local": {"y": None}}))
    again = merged.cleaned()
    again.merge(Declarations(structs={"Local": {"y": None}}))
    assert nested.struct_fields("Local") == again.struct_fields("Local")


RULE_WITH_PREFILTER = '''
[[rule]]
id = "spawn"
severity = "warning"
message = "spawn"
keywords = ["spawn"]
prefilter = 'thread\\s*::\\s*spawn'
query = """(call_expression function: (scoped_identifier name: (identifier) @name) (#eq? @name "spawn")) @site"""
[[rule.examples]]
invalid = """
fn f() { std::thread::spawn(|| {}); }
         ^^^^^^^^^^^^^^^^^^^^^^^^^^
"""
'''


def test_a_rule_prefilter_narrows_where_the_rule_runs(tmp_path):
    pack_dir = tmp_path / "pack"
    pack_dir.mkdir()
    (pack_dir / "r.toml").write_text(RULE_WITH_PREFILTER)
    rule = load_pack(pack_dir).rules[0]
    assert rule.prefilter == (r"thread\s*::\s*spawn",)
    assert matcher.active_rules([rule], b"fn f() { std::thread::spawn(|| {}); }") == [rule]
    assert matcher.active_rules([rule], b"fn f() { tokio::task::spawn(async {}); }") == []
    # the prefilter must match in code: a doc example saying thread::spawn is not enough
    documented = b"/// std::thread::spawn(|| {});\nfn f() { tokio::task::spawn(async {}); }"
    assert matcher.active_rules([rule], documented) == []


def test_a_prefilter_match_in_a_comment_does_not_hide_one_in_code(tmp_path):
    # thread-spawn's prefilter matches `thread` + blanks + `as`: first across the
    # comment line and the next (a cast), then the real import further down.
    source = (
        "fn widen(x: u32) -> u64 {\n"
        "    x\n"
        "    // one per thread\n"
        "    as u64\n"
        "}\n"
        "use std::thread as worker;\n"
        "fn go() { worker::spawn(|| {}); }\n"
    )
    rule = next(r for r in load_rules(Profile()).rules if r.id == "wasmedge/thread-spawn")
    first = matcher._prefilter_regex(rule.prefilter[0]).search(source.encode())
    assert source[first.start() :].startswith("thread\n    as u64")  # in the comment
    assert matcher.active_rules([rule], source.encode()) == [rule]
    (tmp_path / "lib.rs").write_text(source)
    result = scan_paths([tmp_path / "lib.rs"], use_cache=False, jobs=1)
    assert [(f.rule_id, f.span.start_line) for f in result.findings if f.rule_id == rule.id] == [(rule.id, 7)]


def test_keywords_from_eq_predicates_must_be_whole_names():
    rules = {r.short_id: r for r in load_rules(Profile()).rules}
    accept = rules["listener-accept"]
    assert accept.keywords == ("accept",) and accept.keywords_are_names
    # `accepts` (postgres-types' ToSql::accepts) is not `accept`: the file is not worth parsing
    lookalike = b"use std::net::IpAddr;\nfn accepts(ty: &Type) -> bool { T::accepts(ty) }\n"
    assert accept not in matcher.active_rules([accept], lookalike)
    real = b"use std::net::TcpListener;\nfn serve(l: &TcpListener) { let (s, _) = l.accept().unwrap(); }\n"
    assert matcher.active_rules([accept], real) == [accept]
    assert matcher.active_rules([accept], b"fn f(l: &L) { l.accept() }") == [accept]  # at the very end and start
    assert matcher.active_rules([accept], b"accept") == [accept]
    # given keywords, and words of a #match? regex, may be part of a longer name
    assert not rules["udp-multicast"].keywords_are_names and not rules["std-net-path"].keywords_are_names
    multicast = b"fn j(s: &std::net::UdpSocket) { s.join_multicast_v4(&A, &B).unwrap(); }"
    assert matcher.active_rules([rules["udp-multicast"]], multicast) == [rules["udp-multicast"]]


def test_thread_spawn_skips_other_crates_thread_modules_but_not_aliases_of_std(tmp_path):
    rule = next(r for r in load_rules(Profile()).rules if r.id == "wasmedge/thread-spawn")
    crossbeam = b"use std::thread;\nfn f(d: Duration) { crossbeam_utils::thread::scope(|s| ()); thread::sleep(d); }\n"
    assert matcher.active_rules([rule], crossbeam) == []
    cast = b"impl E { fn v(self) -> u32 { self as u32 } }\nfn f(p: &Pool) { p.spawn(|| ()); }\n"  # `self as` a cast
    assert matcher.active_rules([rule], cast) == []
    for source in (
        "use std as s;\nfn f() {\n    s::thread::spawn(|| ());\n}\n",
        "use std::{self as s};\nfn f() {\n    s::thread::spawn(|| ());\n}\n",
        "use ::std::thread::{self as t};\nfn f() {\n    t::spawn(|| ());\n}\n",
        "fn f() {\n    let _ = 1;\n    ::std::thread::scope(|s| ());\n}\n",
    ):
        (tmp_path / "lib.rs").write_text(source)
        found = scan_paths([tmp_path / "lib.rs"], use_cache=False, jobs=1).findings
        assert [(f.rule_id, f.span.start_line) for f in found] == [(rule.id, 3)], source


def test_a_bad_prefilter_names_the_file_and_rule(tmp_path):
    pack_dir = tmp_path / "pack"
    pack_dir.mkdir()
    (pack_dir / "bad.toml").write_text(RULE_WITH_PREFILTER.replace("prefilter = 'thread", "prefilter = '(thread"))
    with pytest.raises(RuleError) as raised:
        load_pack(pack_dir)
    assert "bad.toml" in str(raised.value) and "spawn" in str(raised.value) and "`prefilter` is not a valid regular expression" in str(raised.value)


def test_cargo_toml_checks_in_the_pool_equal_a_serial_run(tmp_path):
    for c in range(12):
        crate = tmp_path / f"c{c}"
        (crate / "src").mkdir(parents=True)
        deps = 'tokio = { version = "1", features = ["net"] }\n' if c % 2 else 'serde = "1"\n'
        bad = "version = = 1\n" if c == 4 else ""
        (crate / "Cargo.toml").write_text(f'[package]\nname = "c{c}"\nversion = "0.1.0"\n{bad}\n[dependencies]\n{deps}')
        for i in range(30):
            (crate / "src" / f"m{i}.rs").write_text("use std::net::TcpStream;\n" if i % 7 == 0 else "fn f() {}\n")

    def outcome(result):
        return [(r.path, [(f.rule_id, f.span.start_line) for f in r.findings], [(p.code, p.line) for p in r.problems]) for r in result.reports]

    serial = scan_paths([tmp_path], use_cache=False, jobs=1)
    parallel = scan_paths([tmp_path], use_cache=False, jobs=2)
    assert outcome(parallel) == outcome(serial)
    manifests = [r for r in serial.reports if r.path.endswith("Cargo.toml")]
    assert len(manifests) == 7  # six with tokio's net, one malformed


def test_lazy_scopes_resolve_as_the_whole_walk():
    from wasiport.rust.names import Resolver

    checked = 0
    for path in real_sources():
        data = path.read_bytes()
        root = parse_bytes(data).root_node
        if root.has_error:
            continue  # the scan builds those whole
        whole, lazy = Resolver(root, data), Resolver(root, data, lazy=True)
        stack = [root]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.type in ("scoped_identifier", "scoped_type_identifier", "identifier", "type_identifier"):
                assert lazy.resolve_node(node) == whole.resolve_node(node), (path, node.start_point)
                assert [u.path for u in lazy.module_uses(node)] == [u.path for u in whole.module_uses(node)], (path, node.start_point)
                checked += 1
        assert sorted(str(u.path) for s in lazy.all_scopes() for u in s.uses) == sorted(str(u.path) for s in whole.scopes.values() for u in s.uses)
    assert checked > 10_000


def test_a_warm_run_reuses_the_walk_only_while_no_directory_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    crate = tmp_path / "c"
    (crate / "src" / "net").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    (crate / "src" / "lib.rs").write_text("mod net;\n")
    (crate / "src" / "net" / "mod.rs").write_text("use std::net::TcpStream;\n")

    def found():
        return sorted((Path(f.path).relative_to(crate).as_posix(), f.span.start_line) for f in scan_paths([crate], jobs=1).findings)

    assert found() == [("src/net/mod.rs", 1)]
    assert found() == [("src/net/mod.rs", 1)]  # from the cache, walk included
    (crate / "src" / "net" / "udp.rs").write_text("use std::net::UdpSocket;\n")  # a new file deep down
    (crate / "src" / "net" / "mod.rs").write_text("mod udp;\nuse std::net::TcpStream;\n")
    assert found() == [("src/net/mod.rs", 2), ("src/net/udp.rs", 1)]
    (crate / "src" / "net" / "udp.rs").unlink()
    (crate / "src" / "extra").mkdir()  # and a new directory with a file
    (crate / "src" / "extra" / "x.rs").write_text("use std::net::TcpListener;\n")
    assert found() == [("src/extra/x.rs", 1), ("src/net/mod.rs", 2)]


def test_a_warm_run_inside_the_tree_sees_files_edited_in_place(tmp_path, monkeypatch):
    # Below the working directory a warm run stats files and directories by relative path.
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    crate = tmp_path / "c"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    lib = crate / "src" / "lib.rs"
    lib.write_text("pub fn f() {}\n")
    for cwd, root in ((crate, Path(".")), (tmp_path, Path("c")), (crate / "src", crate)):
        monkeypatch.chdir(cwd)
        lib.write_text("pub fn f() {}\n")
        assert scan_paths([root], jobs=1).findings == []
        assert scan_paths([root], jobs=1).from_cache == 1  # the relative stat found it unchanged
        directory_mtime = os.stat(crate / "src").st_mtime_ns
        with lib.open("a") as handle:  # in place: the directory's mtime stays
            handle.write("use std::net::TcpStream;\n")
        assert os.stat(crate / "src").st_mtime_ns == directory_mtime
        again = scan_paths([root], jobs=1)
        assert [(Path(f.path).name, f.span.start_line) for f in again.findings] == [("lib.rs", 2)], cwd
        assert again.from_cache == 0


def _crates(root: Path, count: int) -> None:
    """`count` small crates, every third with a finding (line 2 of its lib.rs)."""
    for index in range(count):
        crate = root / f"c{index:02d}"
        (crate / "src" / "deep").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(f'[package]\nname = "c{index}"\nversion = "0.1.0"\n')
        tail = "use std::net::TcpStream;\n" if index % 3 == 0 else ""
        (crate / "src" / "lib.rs").write_text(f"mod deep;\n{tail}")
        (crate / "src" / "deep" / "mod.rs").write_text("pub fn f() {}\n")


def test_a_warm_run_shares_its_stat_calls_out_and_still_sees_every_change(tmp_path, monkeypatch):
    # Forked shares stat every other directory and file each: an edit in place, a
    # removed file and a new directory must show whichever share holds them.
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "PARALLEL_STAT_FILES", 4)
    tree = tmp_path / "tree"
    _crates(tree, 12)

    def found(result):
        return sorted((Path(f.path).relative_to(tree).as_posix(), f.span.start_line) for f in result.findings)

    cold = scan_paths([tree], jobs=2)
    expected = [(f"c{i:02d}/src/lib.rs", 2) for i in range(0, 12, 3)]
    assert found(cold) == expected and cold.from_cache == 0
    warm = scan_paths([tree], jobs=2)
    assert found(warm) == expected and warm.from_cache == warm.files_seen == 24
    for index in (4, 7):  # in place, in both shares' halves: the directories' mtimes stay
        with (tree / f"c{index:02d}" / "src" / "deep" / "mod.rs").open("a") as handle:
            handle.write("fn g(s: std::net::UdpSocket) {}\n")
    edited = scan_paths([tree], jobs=2)
    assert found(edited) == sorted(expected + [("c04/src/deep/mod.rs", 2), ("c07/src/deep/mod.rs", 2)])
    assert edited.from_cache == 22
    (tree / "c03" / "src" / "lib.rs").write_text("mod deep;\n")  # a finding goes away
    (tree / "c05" / "src" / "extra").mkdir()  # a new directory (its parent's mtime changes)
    (tree / "c05" / "src" / "extra" / "x.rs").write_text("use std::net::TcpListener;\n")
    again = scan_paths([tree], jobs=2)
    assert found(again) == sorted([e for e in expected if e[0] != "c03/src/lib.rs"] + [("c04/src/deep/mod.rs", 2), ("c05/src/extra/x.rs", 1), ("c07/src/deep/mod.rs", 2)])
    assert found(scan_paths([tree], jobs=2)) == found(again)
    assert found(scan_paths([tree], jobs=1, use_cache=False)) == found(again)


def test_forked_map_redoes_a_failed_share_in_this_process():
    parent = os.getpid()

    def square(n):
        if os.getpid() != parent and n == 3:
            os._exit(3)  # a child dies without an answer
        return n * n

    assert forked_map(square, [1, 2, 3, 4]) == [1, 4, 9, 16]
    assert forked_map(square, [5]) == [25]
    # the shares after the first really ran elsewhere
    assert forked_map(lambda n: (n, os.getpid() != parent), [0, 1, 2]) == [(0, False), (1, True), (2, True)]


def test_forked_map_does_here_what_it_cannot_fork_for(monkeypatch):
    # The second fork fails (a process limit): the third part runs here, in order.
    parent = os.getpid()
    real_fork, forks = os.fork, []

    def fork():
        forks.append(1)
        if len(forks) == 2:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    results = forked_map(lambda n: (n, os.getpid() != parent), [0, 1, 2, 3])
    assert results == [(0, False), (1, True), (2, False), (3, False)]


def test_a_cache_of_another_layout_or_damaged_is_ignored_and_rewritten(tmp_path, monkeypatch):
    import pickle

    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    _crates(tree, 3)
    assert scan_paths([tree], jobs=1).from_cache == 0
    (stored,) = (tmp_path / "cache").glob("scan-*.pickle")
    good = stored.read_bytes()
    layout = pickle.loads(good)
    old = {"fingerprint": layout["fingerprint"], "entries": {}, "manifests": {}, "declaring": {}, "discovery": None}  # the first layout
    short = dict(layout, sizes=layout["sizes"][:8])  # one entry's size missing: columns of different lengths
    odd = dict(layout, mtimes=layout["mtimes"][:-3])  # not a whole number of entries
    for damaged in (pickle.dumps(old), good[: len(good) // 2], b"not a pickle", pickle.dumps(short), pickle.dumps(odd)):
        stored.write_bytes(damaged)
        result = scan_paths([tree], jobs=1)
        assert result.from_cache == 0 and [(Path(f.path).name, f.span.start_line) for f in result.findings] == [("lib.rs", 2)]
        assert scan_paths([tree], jobs=1).from_cache == 6  # rewritten whole, in the current layout


def test_overlapping_roots_scan_each_file_once(tmp_path):
    crate = tmp_path / "c"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_text("use std::net::TcpStream;\n")
    result = scan_paths([crate, crate / "src", crate / "src" / "lib.rs"], use_cache=False, jobs=1, manifests=False)
    assert [(f.path, f.span.start_line) for f in result.findings] == [(result.findings[0].path, 1)]
    assert result.files_seen == 1
