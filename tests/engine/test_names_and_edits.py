"""Use-tree resolution and byte-exact edits."""
from __future__ import annotations

import pytest

from wasiport.engine.edits import OverlappingEdits, apply_edits
from wasiport.model import Edit
from wasiport.rust.names import Resolver, use_items
from wasiport.rust.source import SourceFile


def imports(code: str) -> list[tuple[str, str]]:
    source = SourceFile.from_bytes("x.rs", code.encode())
    declaration = next(c for c in source.root.named_children if c.type == "use_declaration")
    return [("::".join(i.path), i.name) for i in use_items(declaration, source.data)]


@pytest.mark.parametrize(
    "code,expected",
    [
        ("use std::net::TcpStream;", [("std::net::TcpStream", "TcpStream")]),
        ("use std::net::{self, TcpStream, ToSocketAddrs};", [("std::net", "net"), ("std::net::TcpStream", "TcpStream"), ("std::net::ToSocketAddrs", "ToSocketAddrs")]),
        ("use std::{io, net::TcpStream};", [("std::io", "io"), ("std::net::TcpStream", "TcpStream")]),
        ("use std::net::*;", [("std::net", "*")]),
        ("use ::std::net::TcpStream as Tcp;", [("::std::net::TcpStream", "Tcp")]),
        ("use std::net::{self as n};", [("std::net", "n")]),
        ("use std::{net::{TcpListener, UdpSocket as U}, io::Read};", [("std::net::TcpListener", "TcpListener"), ("std::net::UdpSocket", "U"), ("std::io::Read", "Read")]),
    ],
)
def test_use_tree_shapes(code, expected):
    assert imports(code) == expected


def test_resolution_follows_aliases_globs_and_module_scopes():
    code = b"""
use std::net;
use std::net::TcpStream as Tcp;
fn f() { let a: Tcp; let b: net::UdpSocket; }
mod m {
    fn g() { let c: Tcp; }
    use std::net::*;
    fn h() { let d: TcpListener; }
}
struct TcpStream;
fn k() { let e: TcpStream; }
"""
    source = SourceFile.from_bytes("x.rs", code)
    resolver = Resolver(source.root, source.data)

    def resolve(needle: bytes):
        offset = code.index(needle)
        node = source.root.descendant_for_byte_range(offset, offset + 1)
        while node.type not in ("type_identifier", "scoped_type_identifier"):
            node = node.parent
        return resolver.resolve_node(node)

    assert resolve(b"Tcp; let b") == ("std", "net", "TcpStream")
    assert resolve(b"net::UdpSocket") == ("std", "net", "UdpSocket")
    assert resolve(b"Tcp; }\n    use") is None  # a module does not see its parent's imports
    assert resolve(b"TcpListener") == ("std", "net", "TcpListener")
    assert resolve(b"TcpStream; }") is None  # the file's own struct


def test_edits_leave_other_bytes_identical():
    data = "fn a() {}\r\n// ünïcode\r\nfn b() {}\r\n".encode()
    start = data.index(b"b()")
    out = apply_edits(data, [Edit("x.rs", start, start + 1, "bee")])
    assert out == data.replace(b"b()", b"bee()")


def test_identical_edits_merge_and_overlaps_are_rejected():
    data = b"0123456789"
    same = [Edit("x", 2, 4, "ab"), Edit("x", 2, 4, "ab")]
    assert apply_edits(data, same) == b"01ab456789"
    with pytest.raises(OverlappingEdits):
        apply_edits(data, [Edit("x", 2, 5, "a"), Edit("x", 4, 6, "b")])


def test_insertions_at_one_offset_are_ordered_deterministically():
    data = b"ab"
    first = apply_edits(data, [Edit("x", 1, 1, "Y"), Edit("x", 1, 1, "X")])
    second = apply_edits(data, [Edit("x", 1, 1, "X"), Edit("x", 1, 1, "Y")])
    assert first == second == b"aXYb"


@pytest.mark.parametrize(
    "code",
    [
        "//! A crate.\nmacro_rules! m {\n    () => {};\n}\n",  # the doc comment's node may end with its newline
        "//! A crate.\n//! More.\n\nuse std::net::TcpStream;\n",
        "#![allow(dead_code)]\nfn f() {}\n",
        "fn f() {}\n",
    ],
)
def test_the_compat_module_is_declared_after_inner_attributes_and_before_every_item(code):
    from wasiport.engine.transforms import module_declaration
    from wasiport.model import Profile

    source = SourceFile.from_bytes("lib.rs", code.encode())
    edit = module_declaration(source.data, "lib.rs", Profile(), "\n", source.root, extern_crate=False)
    before = code.encode()[: edit.start]
    assert before == b"" or before.endswith(b"\n")
    assert all(line.startswith((b"//!", b"#!")) for line in before.splitlines() if line.strip())
    assert not code.encode()[edit.start :].startswith(b"//!")
