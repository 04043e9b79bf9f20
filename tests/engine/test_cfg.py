from __future__ import annotations

import pytest

from wasiport.rust.cfg import CfgSyntaxError, evaluate
from wasiport.rust.source import SourceFile
from wasiport.rust.syntax import node_cfg

GATE = 'all(target_os = "wasi", not(target_env = "p2"))'


@pytest.mark.parametrize(
    "predicate,expected",
    [
        ("unix", False),
        ("windows", False),
        ("test", False),
        ('target_os = "wasi"', True),
        ('target_os = "linux"', False),
        ('target_family = "wasm"', True),
        ('target_family = "unix"', False),
        ('target_arch = "wasm32"', True),
        ('target_pointer_width = "32"', True),
        ('target_env = "p2"', False),
        ('target_env = "p1"', None),  # set by newer rustc only
        ('feature = "tls"', None),
        ("debug_assertions", None),
        ("wasmedge", None),  # a custom --cfg
        (GATE, True),
        (f"not({GATE})", False),
        ('any(unix, feature = "x")', None),
        ('all(unix, feature = "x")', False),
        ("any(unix, windows)", False),
        ('any(unix, target_os = "wasi")', True),
        ("not(any(unix, windows))", True),
        ("all()", True),
        ("any()", False),
    ],
)
def test_evaluate(predicate, expected):
    assert evaluate(predicate) is expected


@pytest.mark.parametrize("bad", ["", "all(unix", 'feature =', "unix unix", "not(unix, windows)"])
def test_malformed_predicates_raise(bad):
    with pytest.raises(CfgSyntaxError):
        evaluate(bad)


def _node_at(source: SourceFile, needle: str):
    offset = source.data.index(needle.encode())
    return source.root.descendant_for_byte_range(offset, offset + len(needle))


def test_attributes_on_items_statements_arms_and_modules():
    source = SourceFile.from_bytes(
        "x.rs",
        b"""
#[cfg(unix)]
fn unix_only() { a(); }
fn both() {
    #[cfg(windows)]
    let w = b();
    #[cfg(feature = "x")]
    c();
    match k { #[cfg(unix)] 1 => d(), _ => e() }
}
mod inner {
    #![cfg(not(target_os = "wasi"))]
    fn f() { g(); }
}
#[cfg_attr(unix, allow(dead_code))]
fn kept() { h(); }
""",
    )
    assert node_cfg(_node_at(source, "a()"), source.data) is False
    assert node_cfg(_node_at(source, "b()"), source.data) is False
    assert node_cfg(_node_at(source, "c()"), source.data) is None
    assert node_cfg(_node_at(source, "d()"), source.data) is False
    assert node_cfg(_node_at(source, "e()"), source.data) is True
    assert node_cfg(_node_at(source, "g()"), source.data) is False
    assert node_cfg(_node_at(source, "h()"), source.data) is True
