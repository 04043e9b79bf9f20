"""`wasiport inspect` and wasiport.wasm on modules and rlibs built by cargo, on modules
assembled from text by wasmtime, and on broken files."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import wasmtime

from tests.support.offline_cargo import OfflineCargo
from tests.test_build import fixture_crate
from wasiport.cargo import BuildResult, build, find_toolchain
from wasiport.cli import main
from wasiport.errors import UserError
from wasiport.wasm import (
    Verdict,
    demangle,
    inspect_archive,
    inspect_file,
    inspect_module,
    parse_module,
    read_module,
)

DOCUMENTED_KEYS = {
    "schema", "file", "kind", "verdict", "summary", "socket_imports", "wasmedge_imports",
    "std_net_functions", "std_net_entry_points", "socket_crate_functions", "has_names",
    "imports", "exports", "objects", "notes",
}


@pytest.fixture(scope="module")
def apps(offline_cargo: OfflineCargo) -> BuildResult:
    """The two fixture programs built for wasm32 (shares test_build's copy and cache)."""
    toolchain = find_toolchain(env=offline_cargo.env())
    result = build(
        fixture_crate(offline_cargo, "apps") / "Cargo.toml", toolchain, target=toolchain.wasm_target,
        env=offline_cargo.env(),
    )
    assert result.ok, result.failure_summary()
    return result


def module_of(result: BuildResult, name: str) -> Path:
    return next(p for p in result.wasm_modules if p.stem == name)


def inspect_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["inspect", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------
# Modules built by cargo


@pytest.mark.cargo
def test_std_net_program_is_not_ported_and_names_connect(apps: BuildResult, capsys) -> None:
    path = module_of(apps, "stdnet_app")
    code, out, _ = inspect_cli(capsys, str(path))
    assert code == 1
    verdict_line = out.splitlines()[0]
    assert verdict_line.startswith(f"{path}: not ported")
    assert "std::net::tcp::TcpStream::connect" in verdict_line

    code, out, _ = inspect_cli(capsys, str(path), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "not ported"
    assert {"std::net::tcp::TcpStream::connect", "std::net::udp::UdpSocket::bind"} <= set(
        report["std_net_entry_points"]
    )
    assert report["wasmedge_imports"] == [] and report["has_names"] is True


@pytest.mark.cargo
def test_program_calling_wasmedge_socket_functions_is_ported(apps: BuildResult, capsys) -> None:
    path = module_of(apps, "sockabi_app")
    code, out, _ = inspect_cli(capsys, str(path), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["verdict"] == "ported"
    assert report["wasmedge_imports"] == ["sock_connect", "sock_open"]
    assert {s["name"]: s["params"] for s in report["socket_imports"]} == {"sock_connect": 3, "sock_open": 3}
    assert report["std_net_functions"] == []
    assert set(report) == DOCUMENTED_KEYS

    code, out, _ = inspect_cli(capsys, str(path))
    assert code == 0 and out.splitlines()[0].startswith(f"{path}: ported")
    assert "sock_open          WasmEdge extension, 3 params" in out


@pytest.mark.cargo
@pytest.mark.parametrize("name", ["stdnet_app", "sockabi_app"])
def test_import_and_export_parsing_agrees_with_wasmtime(apps: BuildResult, name: str) -> None:
    path = module_of(apps, name)
    ours = read_module(path)
    theirs = wasmtime.Module(wasmtime.Engine(), path.read_bytes())
    expected_imports = [
        (i.module, i.name, [str(p) for p in i.type.params], [str(r) for r in i.type.results])
        for i in theirs.imports
        if isinstance(i.type, wasmtime.FuncType)
    ]
    assert [
        (i.module, i.name, list(i.signature.params), list(i.signature.results))
        for i in ours.imports
        if i.kind == "func"
    ] == expected_imports
    assert [e.name for e in ours.exports] == [e.name for e in theirs.exports]


@pytest.mark.cargo
def test_legacy_mangled_names_all_demangle(apps: BuildResult) -> None:
    names = [n for n in read_module(module_of(apps, "stdnet_app")).function_names.values() if n.startswith("_ZN")]
    assert len(names) > 100
    for name in names:
        readable = demangle(name)
        assert readable != name and "$" not in readable and ".." not in readable, name


@pytest.mark.cargo
def test_rlibs_show_what_the_crates_own_code_links_to(apps: BuildResult, capsys) -> None:
    std_lib = inspect_file(apps.rlib_of("stdnet_app"))
    assert std_lib.kind == "rlib" and std_lib.verdict is Verdict.NOT_PORTED
    assert "std::net::tcp::TcpStream::connect" in std_lib.std_net_entry_points
    assert std_lib.objects and all(o.std_net_functions for o in std_lib.objects)

    sock_lib = inspect_file(apps.rlib_of("sockabi_app"))
    assert sock_lib.verdict is Verdict.PORTED
    assert sock_lib.wasmedge_imports == ("sock_connect", "sock_open")
    assert [o.socket_imports for o in sock_lib.objects] == [("sock_connect", "sock_open")]

    code, out, _ = inspect_cli(capsys, str(apps.rlib_of("stdnet_app")))
    assert code == 1 and "not ported: the library" in out.splitlines()[0]


@pytest.mark.cargo
def test_v0_mangled_names_are_recognised(offline_cargo: OfflineCargo, tmp_path_factory) -> None:
    toolchain = find_toolchain(env=offline_cargo.env())
    result = build(
        fixture_crate(offline_cargo, "apps") / "stdnet_app" / "Cargo.toml",
        toolchain,
        target=toolchain.wasm_target,
        env=offline_cargo.env(RUSTFLAGS="-C symbol-mangling-version=v0"),
        target_dir=tmp_path_factory.mktemp("v0-target"),  # other flags: keep the shared cache intact
    )
    assert result.ok, result.failure_summary()
    path = module_of(result, "stdnet_app")
    v0_names = [n for n in read_module(path).function_names.values() if n.startswith("_R")]
    assert v0_names, "the build did not use v0 mangling"
    assert all(demangle(n) != n for n in v0_names)
    inspection = inspect_file(path)
    assert inspection.verdict is Verdict.NOT_PORTED
    assert any(n.startswith("std::net::tcp::TcpStream::connect") for n in inspection.std_net_entry_points)


# ---------------------------------------------------------------------------
# Modules assembled from text


def assemble(tmp_path: Path, wat: str, name: str = "m.wasm") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(wasmtime.wat2wasm(wat)))
    return path


def test_two_argument_sock_accept_is_wasmedges_own(tmp_path: Path, capsys) -> None:
    path = assemble(tmp_path, """(module
      (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_recv" (func (param i32 i32 i32 i32 i32 i32) (result i32))))""")
    inspection = inspect_file(path)
    assert inspection.verdict is Verdict.PORTED
    assert inspection.wasmedge_imports == ("sock_accept",)
    assert inspection.standard_socket_imports == ("sock_recv",)
    assert inspect_cli(capsys, str(path))[0] == 0


def test_standard_socket_imports_alone_are_not_a_port(tmp_path: Path, capsys) -> None:
    path = assemble(tmp_path, """(module
      (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_shutdown" (func (param i32 i32) (result i32)))
      (func (export "_start")))""")
    inspection = inspect_file(path)
    assert inspection.verdict is Verdict.NOT_PORTED
    assert inspection.standard_socket_imports == ("sock_accept", "sock_shutdown")
    assert not inspection.has_names and any("no function names" in n for n in inspection.notes)
    code, out, _ = inspect_cli(capsys, str(path))
    assert code == 1 and "only standard WASI socket functions" in out


def test_module_without_sockets_has_no_networking(tmp_path: Path, capsys) -> None:
    path = assemble(tmp_path, """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $main (export "_start")))""")
    code, out, _ = inspect_cli(capsys, str(path), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "no networking"
    assert report["imports"] == {
        "wasi_snapshot_preview1": [
            {"name": "fd_write", "kind": "func", "params": ["i32"] * 4, "results": ["i32"]}
        ]
    }
    assert [e["name"] for e in report["exports"]] == ["memory", "_start"]


# ---------------------------------------------------------------------------
# Bad input: exit 2 and one sentence


def bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    module = bytes(wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32))))'
    ))
    return {
        "truncated": (module[: len(module) - 5], "byte offset"),
        "garbage": (b"#!/bin/sh\necho not wasm\n", "neither a wasm module nor an rlib"),
        "empty": (b"", "only 0 bytes long"),
        "endless-leb": (b"\0asm\x01\0\0\0\x01" + b"\xff" * 8, "byte offset 9"),
        "unknown-section": (b"\0asm\x01\0\0\0\x2a\x00", "unknown section id 42"),
        "component": (bytes(wasmtime.wat2wasm("(component)")), "component"),
        "bad-archive": (b"!<arch>\nlib.rmeta/      0           0     0     644     99999     `\n", "byte offset 8"),
    }


@pytest.mark.parametrize(
    "case", ["truncated", "garbage", "empty", "endless-leb", "unknown-section", "component", "bad-archive"]
)
def test_bad_input_exits_2_with_one_sentence(tmp_path: Path, capsys, case: str) -> None:
    data, expected = bad_files(tmp_path)[case]
    path = tmp_path / f"{case}.wasm"
    path.write_bytes(data)
    code, out, err = inspect_cli(capsys, str(path))
    assert code == 2 and out == ""
    first_line = err.splitlines()[0]
    assert first_line.startswith("wasiport: error: ") and expected in first_line
    assert all(line.startswith("  hint:") for line in err.splitlines()[1:])


def test_missing_file_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = inspect_cli(capsys, str(tmp_path / "absent.wasm"))
    assert code == 2 and "cannot read" in err


@pytest.mark.cargo
def test_no_corruption_escapes_as_anything_but_a_user_error(apps: BuildResult) -> None:
    """Every truncation and a fixed set of byte flips of a module with names and of a
    real rlib either parse or raise UserError: never a traceback."""
    module = bytes(wasmtime.wat2wasm("""(module
      (import "wasi_snapshot_preview1" "sock_open" (func $open (param i32 i32 i32) (result i32)))
      (import "env" "mem" (memory 1 2))
      (import "env" "tab" (table 1 funcref))
      (import "env" "g" (global (mut i32)))
      (func $_ZN3std3net3tcp9TcpStream7connect17h0123456789abcdefE (export "f") (param i32) (result i32)
        local.get 0))"""))
    assert inspect_module(parse_module(module)).verdict is Verdict.PORTED  # intact, it parses
    rlib = apps.rlib_of("sockabi_app").read_bytes()
    rng = random.Random(20)
    for parse, data in ((parse_module, module), (inspect_archive, rlib)):
        variants = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 400))]
        for _ in range(400):
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            variants.append(bytes(flipped))
        for variant in variants:
            try:
                parse(variant)
            except UserError as err:
                assert "\n" not in err.message
