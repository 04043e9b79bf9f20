"""Will a module load on the WasmEdge it is deployed with? `inspect --runtime` and `run --runtime`.

Modules are written in WAT with the import forms real builds have: std's
3-argument `sock_accept`, wasmedge_wasi_socket 0.5's 8-argument
`sock_recv_from`, 0.4's 7-argument one, `epoll_oneoff`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import wasmtime

from tests.support.cli import run_wasiport
from wasiport.errors import UserError
from wasiport.wasm.runtimes import ImportType, find_runtime, link_problems, load_runtimes, socket_function_names

I32 = "i32"


def module_with(tmp_path: Path, name: str, imports: dict[str, int]) -> Path:
    lines = [
        f'(import "wasi_snapshot_preview1" "{fn}" (func (param {" ".join([I32] * count)}) (result i32)))'
        for fn, count in imports.items()
    ]
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(f'(module {" ".join(lines)} (memory (export "memory") 1) (func (export "_start")))'))
    return path


V2_CLIENT = {"sock_open": 3, "sock_accept": 3, "sock_recv_from": 8, "sock_getpeeraddr": 3}
V1_CLIENT = {"sock_open": 3, "sock_connect": 3, "sock_recv": 6, "sock_send": 5, "sock_recv_from": 7, "sock_getaddrinfo": 8}


def test_the_table_says_what_each_release_links():
    table = load_runtimes()
    assert list(table) == ["wasmedge-0.10", "wasmedge-0.11", "wasmedge-0.12", "wasmedge-0.13", "wasmedge-0.14"]
    assert table["wasmedge-0.10"].forms("sock_accept") == (2,)
    assert table["wasmedge-0.10"].forms("epoll_oneoff") is None
    assert table["wasmedge-0.12"].forms("sock_recv_from") == (7, 8)
    assert find_runtime("0.10.0", table).name == "wasmedge-0.10"
    assert find_runtime("wasmedge-0.15.1", table).name == "wasmedge-0.14"
    with pytest.raises(UserError, match="unknown runtime"):
        find_runtime("wasmedge-0.9", table)


def test_link_problems_use_wasmedges_wording():
    table = load_runtimes()
    imports = [
        ImportType("wasi_snapshot_preview1", "sock_accept", (I32,) * 3, (I32,)),
        ImportType("wasi_snapshot_preview1", "epoll_oneoff", (I32,) * 4, (I32,)),
        ImportType("wasi_snapshot_preview1", "fd_write", (I32,) * 4, (I32,)),  # not a socket function: not checked
        ImportType("env", "sock_accept", (I32,) * 3, (I32,)),
    ]
    problems = link_problems(imports, table["wasmedge-0.10"], socket_function_names(table))
    assert [p.message() for p in problems] == [
        'incompatible import type: "wasi_snapshot_preview1" function "sock_accept": the module imports '
        "(i32 i32 i32) -> (i32), wasmedge-0.10 defines (i32 i32) -> (i32)",
        'unknown import: "wasi_snapshot_preview1" function "epoll_oneoff": wasmedge-0.10 has no such function '
        "(the module imports (i32 i32 i32 i32) -> (i32))",
    ]
    assert link_problems(imports, table["wasmedge-0.12"], socket_function_names(table)) == []


def test_inspect_runtime_exits_1_when_an_import_would_not_link(tmp_path):
    module = module_with(tmp_path, "v2", V2_CLIENT)
    done = run_wasiport(None, "inspect", str(module), "--runtime", "wasmedge-0.10")
    assert done.returncode == 1
    assert "Links on wasmedge-0.10: no (3 imports would fail)" in done.stdout
    assert '"sock_recv_from": the module imports (i32 i32 i32 i32 i32 i32 i32 i32) -> (i32), wasmedge-0.10 defines' in done.stdout
    later = run_wasiport(None, "inspect", str(module), "--runtime", "0.13", "--format", "json")
    assert later.returncode == 0, later.stdout
    assert json.loads(later.stdout)["runtime"] == {"name": "wasmedge-0.13", "problems": []}


def test_inspect_runtime_accepts_a_v1_module_everywhere(tmp_path):
    module = module_with(tmp_path, "v1", V1_CLIENT)
    for runtime in ("wasmedge-0.10", "wasmedge-0.11", "wasmedge-0.12", "wasmedge-0.13", "wasmedge-0.14"):
        done = run_wasiport(None, "inspect", str(module), "--runtime", runtime)
        assert done.returncode == 0, done.stdout
        assert f"Links on {runtime}: yes" in done.stdout


def test_run_runtime_refuses_what_that_release_would_refuse(tmp_path):
    module = module_with(tmp_path, "v2", V2_CLIENT)
    refused = run_wasiport(None, "run", str(module), "--runtime", "wasmedge-0.10")
    assert refused.returncode == 2
    assert "instantiation failed on wasmedge-0.10: incompatible import type" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert run_wasiport(None, "run", str(module), "--runtime", "wasmedge-0.12").returncode == 0
    assert run_wasiport(None, "run", str(module_with(tmp_path, "v1", V1_CLIENT)), "--runtime", "wasmedge-0.10").returncode == 0


SAMPLES = Path(__file__).resolve().parent.parent / "corpus" / "samples"


@pytest.mark.cargo
def test_apply_runtime_refuses_udp_recv_from_on_0_10_and_says_what_links(offline_cargo, tmp_path):
    from tests.support.cli import ci_like_env, git_repo

    env = ci_like_env(offline_cargo, tmp_path)

    def fresh_copy(name: str) -> tuple[str, str]:
        crate = tmp_path / name / "udp-ping"
        shutil.copytree(SAMPLES / "udp-ping", crate, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
        git_repo(crate)
        return str(crate), str(crate / "Cargo.toml")

    crate, manifest = fresh_copy("default")
    refused = run_wasiport(env, "apply", crate, "--manifest-path", manifest, "--runtime", "wasmedge-0.10")
    assert refused.returncode != 0
    assert 'would not load on wasmedge-0.10: incompatible import type: "wasi_snapshot_preview1" function "sock_recv_from"' in refused.stderr
    assert "--socket-version 0.4.3 imports the 7-argument form" in refused.stderr
    # the configuration the hint names links there
    crate, manifest = fresh_copy("old-socket-crate")
    linked = run_wasiport(env, "apply", crate, "--manifest-path", manifest, "--runtime", "wasmedge-0.10", "--socket-version", "0.4.3")
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert "links on wasmedge-0.10" in linked.stdout
