"""Ports on the toolchain users have: rustc 1.96 for wasm32-wasip1, real crates from crates.io.

- A port of an old crate builds wherever its registry copy builds: redis 0.22.1 from crates.io
  hits a lint that rustc 1.96 denies by default (`dependency_on_unit_never_type_fallback` in
  script.rs); cargo caps a registry crate's lints, and wasiport's port, taken from the ports
  registry, is capped the same way (a `[patch]` path dependency would not be: shown too).
- The generated compat module (both templates) compiles with 0 warnings against the real
  wasmedge_wasi_socket from crates.io (0.5.5 or later; 0.4.3), in edition 2021 and 2024 crates,
  and edition 2021 with `-W rust-2024-compatibility`.
"""
from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git_repo, run_wasiport
from tests.support.modern_cargo import ModernCargo
from tests.test_standin_and_compat import API_0_4, API_0_5, APIS, Api, socket_imports, write_probe

REDIS_CONSUMER = """\
fn main() {
    let addr = std::env::var("REDIS_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".to_string());
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let mut con = client.get_connection().expect("connect");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _: () = redis::cmd("SET").arg(&args[0]).arg(&args[1]).query(&mut con).expect("SET");
    let back: String = redis::cmd("GET").arg(&args[0]).query(&mut con).expect("GET");
    println!("{back}");
}
"""


def redis_consumer(root: Path, version: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        f'[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nredis = "={version}"\n'
    )
    (root / "src" / "main.rs").write_text(REDIS_CONSUMER)
    return git_repo(root)


@pytest.mark.cargo
def test_a_port_of_an_old_crate_keeps_the_lint_cap_of_its_registry_copy(
    modern_cargo: ModernCargo, tmp_path: Path, redis_server
) -> None:
    app = redis_consumer(tmp_path / "app", "0.22.1")
    env = ci_like_env(modern_cargo, tmp_path)

    done = run_wasiport(env, "apply", "redis", "--manifest-path", str(app / "Cargo.toml"), timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the consumer app builds natively and for wasm32-wasip1" in done.stdout + done.stderr

    # The port is a crate of the ports registry, a directory source beside the copies.
    manifest = tomllib.loads((app / "Cargo.toml").read_text())
    assert manifest["patch"]["crates-io"]["redis"] == {"version": "=0.22.1", "registry": "wasiport-ports"}
    lock = tomllib.loads((app / "Cargo.lock").read_text())
    [redis] = [p for p in lock["package"] if p["name"] == "redis"]
    assert redis["source"] == "registry+https://wasiport.invalid/ports"
    # The requirement the port wrote lets cargo 1.96 take the newest socket crate.
    [socket] = [p for p in lock["package"] if p["name"] == "wasmedge_wasi_socket"]
    assert tuple(int(n) for n in socket["version"].split(".")) >= (0, 5, 5)

    # Offline too: nothing of the ports registry is ever fetched.
    offline = subprocess.run(
        [str(modern_cargo.cargo), "build", "--offline", "--target", "wasm32-wasip1"],
        cwd=app, env=env, capture_output=True, text=True, timeout=900,
    )
    assert offline.returncode == 0, offline.stderr
    module = modern_cargo.target_dir / "wasm32-wasip1" / "debug" / "app.wasm"

    # And the port works: SET/GET against a real redis-server, read back with redis-cli.
    address = f"REDIS_ADDR=127.0.0.1:{redis_server.port}"
    run = run_wasiport(env, "run", "--env", address, str(module), "--", "wasiport-old-redis", "ported-0.22.1", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ported-0.22.1"
    assert redis_server.cli("GET", "wasiport-old-redis") == "ported-0.22.1"

    # The same port as a [patch] path dependency is a local package: no cap, and 1.96 denies.
    text = (app / "Cargo.toml").read_text()
    (app / "Cargo.toml").write_text(
        text.replace('redis = { version = "=0.22.1", registry = "wasiport-ports" }', 'redis = { path = "wasiport/redis-0.22.1" }')
    )
    as_path = subprocess.run(
        [str(modern_cargo.cargo), "build", "--offline"], cwd=app, env=env, capture_output=True, text=True, timeout=900
    )
    assert as_path.returncode != 0
    assert "this function depends on never type fallback being `()`" in as_path.stderr


def cargo_rustc(modern: ModernCargo, crate: Path, *lint_flags: str) -> subprocess.CompletedProcess[str]:
    """Build `crate` for wasm32-wasip1; `lint_flags` reach the crate's own code only."""
    return subprocess.run(
        [str(modern.cargo), "rustc", "--target", modern.wasm_target, "--", *lint_flags],
        cwd=crate, env=modern.env(), capture_output=True, text=True, timeout=900,
    )


def locked_version(crate: Path, name: str) -> tuple[int, ...]:
    lock = tomllib.loads((crate / "Cargo.lock").read_text())
    [package] = [p for p in lock["package"] if p["name"] == name]
    return tuple(int(n) for n in package["version"].split("."))


@pytest.mark.cargo
@pytest.mark.parametrize("api", APIS, ids=lambda api: api.version)
@pytest.mark.parametrize(
    "edition, lint_flags",
    [("2021", ("-D", "warnings")), ("2021", ("-D", "warnings", "-W", "rust-2024-compatibility")), ("2024", ("-D", "warnings"))],
    ids=["2021", "2021-with-2024-compatibility", "2024"],
)
def test_compat_module_has_no_warnings_on_rustc_1_96(
    modern_cargo: ModernCargo, tmp_path: Path, api: Api, edition: str, lint_flags: tuple[str, ...]
) -> None:
    name = f"modern-probe-{api.version.replace('.', '-')}-e{edition}"
    crate = write_probe(tmp_path, name, edition=edition, api=api)
    built = cargo_rustc(modern_cargo, crate, *lint_flags)
    assert built.returncode == 0, built.stderr
    assert "warning" not in built.stderr.replace("warning: the following packages contain code", "")
    socket = locked_version(crate, "wasmedge_wasi_socket")
    assert socket >= (0, 5, 5) if api is API_0_5 else socket[:2] == (0, 4)
    module = modern_cargo.target_dir / modern_cargo.wasm_target / "debug" / f"{name}.wasm"
    imports = socket_imports(module)
    assert {"sock_open", "sock_connect", "sock_bind", "sock_listen", "sock_getaddrinfo"} <= set(imports)
    assert imports["sock_recv_from"] == api.recv_from_params


@pytest.mark.cargo
def test_without_the_allow_first_success_gets_the_2024_drop_order_note(modern_cargo: ModernCargo, tmp_path: Path) -> None:
    """What the allow attribute on `first_success` silences (so the attribute is not dead)."""
    template = API_0_5.template.read_text()
    attribute = "#[allow(unknown_lints, tail_expr_drop_order)]\n"
    assert template.count(attribute) == 1
    crate = write_probe(
        tmp_path, "modern-probe-no-allow", edition="2021", api=API_0_5, template=template.replace(attribute, "")
    )
    built = cargo_rustc(modern_cargo, crate, "-W", "rust-2024-compatibility")
    assert built.returncode == 0, built.stderr
    assert "relative drop order changing in Rust 2024" in built.stderr
    assert "`-W tail-expr-drop-order` implied by `-W rust-2024-compatibility`" in built.stderr
    assert "generated 1 warning" in built.stderr
    assert API_0_4.template.read_text().count(attribute) == 1


REDIS_APP = Path(__file__).resolve().parent / "fixtures" / "registry" / "redis-app"


@pytest.mark.cargo
def test_the_seed_command_ports_the_current_redis_and_sets_and_gets(
    modern_cargo: ModernCargo, tmp_path: Path, redis_server
) -> None:
    """`wasiport apply redis-rs --run` on a project that depends on the newest redis 1.x, as
    cargo resolves it today: every socket site ported, built natively and for wasm32-wasip1,
    SET/GET under `wasiport run` against a real redis-server, read back with redis-cli."""
    app = tmp_path / "redis-app"
    shutil.copytree(REDIS_APP, app)
    manifest = app / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('redis = "REDIS_VERSION"', 'redis = "1"'))
    git_repo(app)
    env = ci_like_env(modern_cargo, tmp_path)

    address = f"REDIS_ADDR=127.0.0.1:{redis_server.port}"
    done = run_wasiport(
        env, "apply", "redis-rs", "--manifest-path", str(manifest), "--env", address,
        "--run", "wasiport:current", "ported-current-redis", timeout=2400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the consumer redis-app builds natively and for wasm32-wasip1" in done.stdout + done.stderr
    assert "ported-current-redis" in done.stdout
    assert redis_server.cli("GET", "wasiport:current") == "ported-current-redis"

    lock = tomllib.loads((app / "Cargo.lock").read_text())
    [redis] = [p for p in lock["package"] if p["name"] == "redis"]
    assert redis["version"].split(".")[0] == "1"
    port = app / "wasiport" / f"redis-{redis['version']}"
    connection = (port / "src" / "connection.rs").read_text()
    tcp = (port / "src" / "io" / "tcp.rs").read_text()
    # The std::net import of each file is gated: std's types natively, the compat types on wasm.
    assert "use crate::wasiport_net::{TcpStream, ToSocketAddrs};" in connection
    assert "TcpStream::connect_timeout(addr, timeout)" in connection  # call sites are not edited
    assert "crate::wasiport_net::TcpStream" in tcp
    # Upstream's own gate of socket2 for wasm stays as it was.
    assert '#[cfg(not(target_family = "wasm"))]\n    {\n        let socket2: socket2::Socket = socket.into();' in tcp
    # A second apply finds the port in place.
    again = run_wasiport(env, "apply", "redis-rs", "--manifest-path", str(manifest), "--no-build", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already ported" in again.stdout + again.stderr
