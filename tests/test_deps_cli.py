"""`wasiport check --deps` and `wasiport apply --deps` through the CLI, on a project whose graph
comes from Debian's registry (tokio), the corpus (redis-sample) and a path crate of its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git, git_repo, run_wasiport as wasiport
from tests.support.offline_cargo import OfflineCargo, add_crate

REPO = Path(__file__).resolve().parent.parent
GATE = 'all(target_os = "wasi", not(target_env = "p2"))'

pytestmark = pytest.mark.cargo

MAIN = """
fn main() {
    let addr: std::net::SocketAddr = std::env::var("REDIS_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into()).parse().unwrap();
    println!("reachable: {}", netutil::reachable(&addr));
    let client = redis_sample::Client::open(format!("redis://{}/", addr).as_str()).unwrap();
    let mut con = client.get_connection().unwrap();
    con.set("wasiport-deps", "yes").unwrap();
    println!("tokio from {}", tokio_provider());
}

#[cfg(target_os = "wasi")]
fn tokio_provider() -> &'static str { tokio::PROVIDED_BY }
#[cfg(not(target_os = "wasi"))]
fn tokio_provider() -> &'static str { let _ = tokio::runtime::Builder::new_current_thread(); "tokio" }
"""

NETUTIL = """use std::net::TcpStream;
use std::time::Duration;

/// Is anything listening at `addr`?
pub fn reachable(addr: &std::net::SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(500)).is_ok()
}
"""




@pytest.fixture(scope="module")
def registry(offline_cargo: OfflineCargo) -> OfflineCargo:
    add_crate(offline_cargo.registry, REPO / "corpus" / "samples" / "redis-sample")
    for standin in (REPO / "tests" / "fixtures" / "deps" / "standins").iterdir():
        add_crate(offline_cargo.registry, standin)
    return offline_cargo


@pytest.fixture
def project(tmp_path: Path, registry: OfflineCargo) -> tuple[Path, dict]:
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "netutil" / "src").mkdir(parents=True)
    (app / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
        "[dependencies]\n"
        'redis-sample = "0.1"   # a client library from the registry\n'
        'netutil = { path = "netutil" }\n'
        'tokio = { version = "1.24", features = ["rt", "net"] }\n'
    )
    (app / "src" / "main.rs").write_text(MAIN)
    (app / "netutil" / "Cargo.toml").write_text('[package]\nname = "netutil"\nversion = "0.2.0"\nedition = "2021"\n')
    (app / "netutil" / "src" / "lib.rs").write_text(NETUTIL)
    git_repo(app, "app")
    return app, ci_like_env(registry, tmp_path)




def test_check_deps_reports_packages_remedies_and_paths(project):
    app, env = project
    done = wasiport(env, "check", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    by_name = {p["name"]: p for p in report["packages"]}
    assert by_name["netutil"]["remedy"] == "portable" and by_name["netutil"]["path"] == ["app", "netutil"]
    assert by_name["redis-sample"]["remedy"] == "portable"
    assert {f["rule_id"] for f in by_name["redis-sample"]["findings"]} >= {"wasmedge/std-net-import", "wasmedge/connect-timeout"}
    assert by_name["tokio"]["remedy"] == "substitute" and by_name["tokio"]["substitute"].startswith("tokio_wasi")
    assert by_name["app"]["needs_action"] is False  # the consumer itself has no socket code
    assert report["summary"]["need_action"] == 3

    text = wasiport(env, "check", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename")
    assert "path: app -> netutil" in text.stdout and "substitute: tokio_wasi" in text.stdout

    sarif = json.loads(wasiport(env, "check", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--format", "sarif").stdout)
    results = sarif["runs"][0]["results"]
    tokio = next(r for r in results if r["ruleId"] == "wasmedge/dependency-substitute")
    location = tokio["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("Cargo.toml") and location["region"]["startLine"] == 9


def imported_modules(env: dict, *args: str) -> set[str]:
    """The modules a wasiport run imports, from Python's own -X importtime report."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "wasiport", *args], capture_output=True, text=True, env=env, timeout=900)
    rows = [line.split("|")[-1] for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {row.strip() for row in rows}


def test_check_deps_reads_the_graph_without_the_manifest_editor_or_the_pipeline(project):
    app, env = project
    modules = imported_modules(env, "check", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--format", "json")
    assert "wasiport.deps.graph" in modules and "wasiport.cargo.workspace" in modules  # it did read the graph
    assert not {"tomlkit", "wasiport.cargo.manifest", "wasiport.deps.substitutions", "wasiport.port", "git"} & modules


def test_apply_deps_has_no_dry_run_and_writes_nothing(project):
    app, env = project
    before = {p: p.read_bytes() for p in app.rglob("*") if p.is_file() and ".git" not in p.parts}
    done = wasiport(env, "apply", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--dry-run")
    assert done.returncode == 2 and "--deps has no --dry-run" in done.stderr and "check --deps" in done.stderr
    assert "Traceback" not in done.stderr
    after = {p: p.read_bytes() for p in app.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before


def test_apply_deps_ports_substitutes_builds_and_verifies(project):
    app, env = project
    done = wasiport(env, "apply", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    actions = {(p["name"], p["action"]) for p in report["packages"]}
    assert actions == {("netutil", "ported"), ("redis-sample", "ported"), ("tokio", "substituted")}
    assert all(stage["ok"] for stage in report["stages"])

    manifest = (app / "Cargo.toml").read_text()
    assert "# a client library from the registry" in manifest  # comments survive
    assert f"[target.'cfg({GATE})'.dependencies]\ntokio = {{ package = \"tokio_wasi\"" in manifest
    assert "[patch.crates-io]\nredis-sample = { version = \"=0.1.0\", registry = \"wasiport-ports\" }" in manifest
    assert "use crate::wasiport_net::TcpStream;" in (app / "netutil" / "src" / "lib.rs").read_text()

    from wasiport import wasm
    imports = {i.name for i in wasm.inspect_file(Path(report["module"])).imports}
    assert {"sock_connect", "sock_open"} <= imports

    # The graph is clean now, and a second run changes nothing.
    again = wasiport(env, "check", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename", "--format", "json")
    assert again.returncode == 0, again.stdout
    before = (app / "Cargo.toml").read_text()
    second = wasiport(env, "apply", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename", "--no-build")
    assert second.returncode == 0, second.stderr
    assert (app / "Cargo.toml").read_text() == before


def test_apply_deps_rolls_everything_back_when_the_build_fails(project):
    app, env = project
    main = app / "src" / "main.rs"
    main.write_text(main.read_text() + '\n#[cfg(target_os = "wasi")]\nconst _: () = missing_function();\n')
    git(app, "commit", "-qam", "does not build for wasm")
    manifest = (app / "Cargo.toml").read_bytes()
    head = git(app, "rev-parse", "HEAD")
    done = wasiport(env, "apply", "--deps", "--manifest-path", str(app / "Cargo.toml"), "--substitution", "rename")
    assert done.returncode == 1
    assert "missing_function" in done.stderr and "rolled back" in done.stderr
    assert (app / "Cargo.toml").read_bytes() == manifest
    assert git(app, "rev-parse", "HEAD") == head
    assert (app / "netutil" / "src" / "lib.rs").read_text() == NETUTIL
    assert not (app / "wasiport").exists()  # the copy of redis-sample it made is gone too


def test_apply_deps_on_a_virtual_workspace_ports_what_it_can_and_reports_the_rest(registry, tmp_path):
    """Two members (a ureq client with tokio, a tiny_http server with a path library): the
    sockets of every crate are ported, tokio substituted, threads left as manual work."""
    if not Path("/usr/share/cargo/registry/tiny_http-0.12.0").is_dir():
        pytest.skip("Debian's tiny_http and ureq sources are not installed (.ci/run installs them)")
    import shutil

    workspace = tmp_path / "ws"
    shutil.copytree(REPO / "tests" / "fixtures" / "deps" / "projects" / "workspace", workspace)
    git_repo(workspace, "workspace")
    env = ci_like_env(registry, tmp_path)
    done = wasiport(env, "apply", "--deps", "--manifest-path", str(workspace / "Cargo.toml"), "--substitution", "rename", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    actions = {p["name"]: p["action"] for p in report["packages"]}
    assert actions["shared"] == "ported" and actions["tokio"] == "substituted"
    assert actions["ureq"] == actions["tiny_http"] == "ported, manual work left"
    assert all(stage["ok"] for stage in report["stages"])
    assert "[workspace]" in (workspace / "Cargo.toml").read_text()
