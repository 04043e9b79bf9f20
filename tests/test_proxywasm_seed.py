"""The seed's plugin, proven: a proxy-wasm plugin for APISIX that talks to Redis.

`tests/fixtures/proxywasm/seed-plugin` is a cdylib on the proxy-wasm Rust SDK
0.2.2 from crates.io (resolved for Debian's rustc 1.63 and vendored by a newer
cargo, tests/support/crates_io.py; once_cell kept below 1.20) whose on_configure SETs and GETs a key through the
corpus's redis-style client. `wasiport apply redis-sample` ports the client
inside the plugin project and builds it; `wasiport run --host apisix` runs
it against a real redis-server, and redis-cli reads the value back.
"""
from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.cli import ci_like_env, git_repo, run_wasiport
from tests.support.crates_io import newer_cargo, vendor_for_old_cargo
from tests.support.offline_cargo import OfflineCargo, add_crate, make_offline_cargo, toolchain_available
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "tests" / "fixtures" / "proxywasm" / "seed-plugin"
# The SDK release for rustc 1.63; its hashbrown needs ahash, whose once_cell >= 1.21 needs rustc 1.65.
SDK_CRATES = {"proxy-wasm": "=0.2.2", "once_cell": ">=1.17, <1.20", "log": "0.4"}


def vendor_sdk(root: Path) -> Path:
    """The SDK and what it needs, as crates.io has them, in a directory of `name-version/` crates."""
    project = root / "sdk-deps"
    (project / "src").mkdir(parents=True)
    (project / "src" / "lib.rs").write_text("")
    requirements = "".join(f'{name} = "{version}"\n' for name, version in SDK_CRATES.items())
    (project / "Cargo.toml").write_text(
        f'[package]\nname = "sdk-deps"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n{requirements}\n[workspace]\n'
    )
    return vendor_for_old_cargo(project, root / "vendor", cargo_home=root / "newer-cargo-home").directory


def link_into(registry: Path, vendored: Path) -> None:
    """Add the vendored crates to a directory source next to Debian's (theirs win on a tie)."""
    for crate in sorted(vendored.iterdir()):
        if crate.is_dir() and not (registry / crate.name).exists():
            (registry / crate.name).symlink_to(crate)

pytestmark = [pytest.mark.cargo, pytest.mark.redis]


@pytest.fixture(scope="module")
def plugin_cargo(tmp_path_factory: pytest.TempPathFactory) -> OfflineCargo:
    """An offline registry of its own: Debian's crates, the stand-ins, redis-sample and the SDK."""
    if not toolchain_available():
        pytest.skip("Debian's rustc, cargo and wasm32 std are not installed (see .ci/run)")
    if newer_cargo() is None:
        pytest.skip("vendoring the proxy-wasm SDK needs a newer cargo (rustup's, or .ci/modern-toolchain's)")
    root = tmp_path_factory.mktemp("seed-cargo")
    offline = make_offline_cargo(root / "cargo")
    add_crate(offline.registry, REPO / "corpus" / "samples" / "redis-sample")
    link_into(offline.registry, vendor_sdk(root))
    return offline


class SeedBuild(NamedTuple):
    module: Path  # the plugin's .wasm
    env: dict  # the offline cargo environment it was built in
    project: Path  # the plugin project, with redis-sample ported inside it


@pytest.fixture(scope="module")
def seed_plugin(plugin_cargo: OfflineCargo, tmp_path_factory: pytest.TempPathFactory) -> SeedBuild:
    """The seed plugin with redis-sample ported by `wasiport apply`."""
    work = tmp_path_factory.mktemp("seed")
    project = work / "seed-plugin"
    shutil.copytree(SEED, project, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    git_repo(project, "plugin")
    env = ci_like_env(plugin_cargo, work)
    done = run_wasiport(env, "apply", "redis-sample", "--manifest-path", str(project / "Cargo.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "links to WasmEdge's socket functions" in done.stdout
    module = Path(env["CARGO_TARGET_DIR"]) / "wasm32-wasi" / "debug" / "seed_plugin.wasm"
    assert module.is_file()
    return SeedBuild(module, env, project)


@pytest.fixture
def lookup_server() -> Iterator[int]:
    """A real HTTP server the plugin's proxy_http_call reaches."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = f"found {self.path}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_seed_plugin_sets_and_gets_through_redis_under_the_apisix_host(seed_plugin, redis_server):
    module, env, _ = seed_plugin
    config = f"redis=127.0.0.1:{redis_server.port} key=wasiport:seed value=from-the-plugin"
    # it links on the WasmEdge APISIX ships (0.10: first-version socket functions only)
    linked = run_wasiport(env, "inspect", str(module), "--runtime", "wasmedge-0.10")
    assert linked.returncode == 0 and "Links on wasmedge-0.10: yes" in linked.stdout, linked.stdout
    done = run_wasiport(
        env, "run", "--host", "apisix", "--runtime", "wasmedge-0.10", str(module), "--plugin-config", config,
        "--request", "POST /orders?id=7", "--header", "x-trace: abc", "--body", "hello body", timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "[info ctx=1] redis GET wasiport:seed = from-the-plugin" in done.stderr
    assert "[info ctx=2] request 2 header x-trace: abc" in done.stderr
    assert "[info ctx=2] request 2 body (10 bytes, end_of_stream=true): hello body" in done.stderr
    assert done.stdout.splitlines() == ["POST /orders?id=7 -> 200 (upstream)"]
    assert redis_server.cli("GET", "wasiport:seed") == "from-the-plugin"


def test_seed_plugin_refuses_to_start_when_redis_is_down(seed_plugin):
    module, env, _ = seed_plugin
    config = f"redis=127.0.0.1:{free_port()} key=k value=v"
    done = run_wasiport(env, "run", "--host", "apisix", str(module), "--plugin-config", config, timeout=300)
    assert done.returncode == 3
    assert "failed: IoError: Connection refused" in done.stderr
    assert "wasiport: the plugin refused to start: proxy_on_configure returned false" in done.stderr


def test_tick_period_panics_under_apisix_as_in_production_and_ticks_under_the_spec(seed_plugin, redis_server):
    module, env, _ = seed_plugin
    config = f"redis=127.0.0.1:{redis_server.port} key=k value=v tick=20"
    apisix = run_wasiport(env, "run", "--host", "apisix", str(module), "--plugin-config", config, timeout=300)
    assert apisix.returncode == 4
    assert "wasiport: the plugin panicked in proxy_on_configure: panicked at 'unexpected status: 12'" in apisix.stderr
    assert "answered UNIMPLEMENTED: proxy_set_tick_period_milliseconds" in apisix.stderr
    spec = run_wasiport(env, "run", str(module), "--plugin-config", config, "--ticks", "2", timeout=300)
    assert spec.returncode == 0, spec.stderr
    assert spec.stderr.count("[info ctx=1] tick") == 2


def test_seed_scenario_with_a_real_http_call_and_a_local_response(seed_plugin, redis_server, lookup_server, tmp_path):
    module, env, _ = seed_plugin
    scenario = tmp_path / "seed.toml"
    scenario.write_text(f"""
host = "apisix"
plugin_config = "redis=127.0.0.1:{redis_server.port} key=wasiport:scenario value=v1 lookup=127.0.0.1:{lookup_server}"

[start]
logs = ["redis GET wasiport:scenario = v1"]

[[request]]
method = "GET"
path = "/lookup"
headers = {{ "x-lookup" = "/users/7" }}
body = "payload"
[request.expect]
status = 200
logs = ["header x-lookup: /users/7", "lookup answered 200: found /users/7", "body (7 bytes, end_of_stream=true): payload"]
response_headers = {{ "x-seed-plugin" = "seen" }}

[[request]]
method = "GET"
path = "/private"
headers = {{ "x-deny" = "yes" }}
[request.expect]
status = 403
local_response = true
body = "denied by seed-plugin\\n"
not_logs = ["body ("]
""")
    done = run_wasiport(env, "run", str(module), "--scenario", str(scenario), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "GET /lookup -> 200 (upstream)",
        "GET /private -> 403 (local response)",
        f"scenario {scenario}: 2 request(s), all expectations met",
    ]
    assert redis_server.cli("GET", "wasiport:scenario") == "v1"


def test_apply_runs_the_seed_scenario_in_one_command(seed_plugin, redis_server, tmp_path):
    _, env, project = seed_plugin
    scenario = tmp_path / "seed.toml"
    scenario.write_text(f"""
host = "apisix"
plugin_config = "redis=127.0.0.1:{redis_server.port} key=wasiport:apply value=one-command"
[start]
logs = ["redis GET wasiport:apply = one-command"]
[[request]]
path = "/"
[request.expect]
status = 200
response_headers = {{ "x-seed-plugin" = "seen" }}
""")
    done = run_wasiport(env, "apply", "redis-sample", "--manifest-path", str(project / "Cargo.toml"), "--run", str(scenario), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run: ok: seed_plugin.wasm: scenario {scenario}: 1 request(s), all expectations met" in done.stdout
    assert redis_server.cli("GET", "wasiport:apply") == "one-command"

    scenario.write_text(scenario.read_text().replace("status = 200", "status = 201"))
    failed = run_wasiport(env, "apply", "redis-sample", "--manifest-path", str(project / "Cargo.toml"), "--run", str(scenario), timeout=600)
    assert failed.returncode == 1
    assert "- expected status 201" in failed.stdout and "+ actual   status 200" in failed.stdout
