"""The seed's plugin on the real redis crate and the current toolchain.

`tests/fixtures/proxywasm/seed-plugin-redis` is a cdylib on the proxy-wasm Rust SDK 0.2.5 and
redis 1.x from crates.io, built by rustc 1.96 for wasm32-wasip1. Its on_configure reads a JSON
configuration, SETs then GETs a key through redis. `wasiport apply redis-rs` ports redis inside
the plugin project and builds it; `wasiport run --host apisix --runtime wasmedge-0.10` runs it
against a real redis-server, and redis-cli reads the value back.
"""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git_repo, run_wasiport
from tests.support.modern_cargo import ModernCargo

SEED_REDIS = Path(__file__).resolve().parent / "fixtures" / "proxywasm" / "seed-plugin-redis"

pytestmark = [pytest.mark.cargo, pytest.mark.redis]


def locked(project: Path, name: str) -> str:
    lock = tomllib.loads((project / "Cargo.lock").read_text())
    [package] = [p for p in lock["package"] if p["name"] == name]
    return package["version"]


def test_the_seed_plugin_on_the_real_redis_sets_and_gets_under_the_apisix_host(
    modern_cargo: ModernCargo, tmp_path: Path, redis_server
) -> None:
    plugin = tmp_path / "plugin"
    shutil.copytree(SEED_REDIS, plugin, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    git_repo(plugin, "plugin")
    env = ci_like_env(modern_cargo, tmp_path)

    applied = run_wasiport(env, "apply", "redis-rs", "--manifest-path", str(plugin / "Cargo.toml"), timeout=2400)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "seed_plugin_redis.wasm links to WasmEdge's socket functions" in applied.stdout
    assert locked(plugin, "redis").split(".")[0] == "1"
    assert locked(plugin, "proxy-wasm") == "0.2.5"
    module = modern_cargo.target_dir / modern_cargo.wasm_target / "debug" / "seed_plugin_redis.wasm"
    assert module.is_file()

    linked = run_wasiport(env, "inspect", str(module), "--runtime", "wasmedge-0.10")
    assert linked.returncode == 0 and "Links on wasmedge-0.10: yes" in linked.stdout, linked.stdout

    config = json.dumps({"redis": f"127.0.0.1:{redis_server.port}", "key": "wasiport:seed-redis", "value": "from-redis-1"})
    done = run_wasiport(
        env, "run", "--host", "apisix", "--runtime", "wasmedge-0.10", "--plugin-config", config,
        "--request", "GET /", "--header", "x-trace: abc", str(module), timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[info ctx=1] redis GET wasiport:seed-redis = from-redis-1" in done.stderr
    assert "[info ctx=2] request 2 header x-trace: abc" in done.stderr
    assert done.stdout.splitlines() == ["GET / -> 200 (upstream)"]
    assert redis_server.cli("GET", "wasiport:seed-redis") == "from-redis-1"
