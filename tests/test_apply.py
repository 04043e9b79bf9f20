"""`wasiport apply` end to end: real crates, real git, real cargo builds (offline), real modules.

The consumer projects here depend on crates by version, as users' projects do; the
test registry serves Debian's crates, the real wasmedge_wasi_socket (from crates.io), and the
corpus's redis-sample "published" as 0.1.0.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git, git_repo, run_wasiport as wasiport
from tests.support.offline_cargo import OfflineCargo, add_crate

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "corpus" / "samples"
GATE = 'all(target_os = "wasi", not(target_env = "p2"))'

pytestmark = pytest.mark.cargo






def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts and "target" not in p.relative_to(root).parts
    }


@pytest.fixture(scope="module")
def registry_with_samples(offline_cargo: OfflineCargo) -> OfflineCargo:
    add_crate(offline_cargo.registry, SAMPLES / "redis-sample")
    return offline_cargo


@pytest.fixture
def env(registry_with_samples: OfflineCargo, tmp_path: Path) -> dict:
    # A CI machine has no git identity; wasiport must cope.
    return ci_like_env(registry_with_samples, tmp_path)


def make_consumer(tmp_path: Path, name: str, dependency: str, main_rs: str) -> Path:
    app = tmp_path / name
    (app / "src").mkdir(parents=True)
    (app / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2018"\n\n# what we talk to\n[dependencies]\n{dependency}\n'
    )
    (app / "src" / "main.rs").write_text(main_rs)
    return git_repo(app, "app")


def in_place_crate(tmp_path: Path, sample: str = "redis-sample") -> Path:
    crate = tmp_path / sample
    shutil.copytree(SAMPLES / sample, crate, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return git_repo(crate)


def imports_of(module: Path) -> set[str]:
    from wasiport import wasm
    return {i.name for i in wasm.inspect_file(module).imports if i.module == "wasi_snapshot_preview1"}


REDIS_MAIN = (SAMPLES / "redis-consumer" / "src" / "main.rs").read_text()


def test_seed_scenario_ports_builds_verifies_and_is_idempotent(tmp_path, env):
    app = make_consumer(tmp_path, "app", 'redis-sample = "0.1"', REDIS_MAIN)
    done = wasiport(env, "apply", "redis-sample", "--manifest-path", str(app / "Cargo.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: ok" in done.stdout

    port = app / "wasiport" / "redis-sample-0.1.0"
    assert git(port, "rev-parse", "--abbrev-ref", "HEAD") == "wasiport/wasmedge"
    log = git(port, "log", "--format=%s")
    assert log.splitlines() == ["wasiport: port redis-sample 0.1.0 to WasmEdge sockets", "upstream: redis-sample 0.1.0"]
    message = git(port, "log", "-1", "--format=%B")
    assert "wasmedge/connect-timeout" in message and "wasmedge/std-net-import" in message

    # Gated, never replaced: std natively, the compat module on the wasm target.
    connection = (port / "src" / "connection.rs").read_text()
    assert f"#[cfg(not({GATE}))]\nuse std::net::{{TcpStream, ToSocketAddrs}};" in connection
    assert f"#[cfg({GATE})]\nuse crate::wasiport_net::{{TcpStream, ToSocketAddrs}};" in connection
    assert "TcpStream::connect_timeout(&resolved, timeout)" in connection  # call sites untouched
    manifest = (port / "Cargo.toml").read_text()
    assert f"[target.'cfg({GATE})'.dependencies]\nwasmedge_wasi_socket = " in manifest
    assert "[patch.crates-io]\nredis-sample = { version = \"=0.1.0\", registry = \"wasiport-ports\" }" in (app / "Cargo.toml").read_text()
    # ... a registry crate (its lints capped as the registry copy's), from a directory source.
    assert 'directory = "wasiport/.cargo-ports"' in (app / ".cargo" / "config.toml").read_text()
    assert (app / "wasiport" / ".cargo-ports" / "redis-sample-0.1.0").resolve() == port.resolve()

    # Files without findings are byte-identical to upstream.
    upstream = git(port, "rev-list", "--max-parents=0", "HEAD")
    changed = set(git(port, "diff", "--name-only", upstream, "HEAD").splitlines())
    assert changed == {"Cargo.toml", "src/connection.rs", "src/lib.rs", "src/wasiport_net.rs"}
    for rel in ("src/resp.rs", "src/client.rs", "src/types.rs"):
        assert (port / rel).read_bytes() == (SAMPLES / "redis-sample" / rel).read_bytes()

    module = Path(env["CARGO_TARGET_DIR"]) / "wasm32-wasi" / "debug" / "app.wasm"
    assert {"sock_open", "sock_connect", "sock_getaddrinfo"} <= imports_of(module)

    head = git(port, "rev-parse", "HEAD")
    again = wasiport(env, "apply", "redis-sample", "--manifest-path", str(app / "Cargo.toml"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already ported" in again.stdout
    assert git(port, "rev-parse", "HEAD") == head


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path, env):
    crate = in_place_crate(tmp_path)
    before = snapshot(crate)
    done = wasiport(env, "apply", str(crate), "--dry-run", "--no-build")
    assert done.returncode == 0, done.stderr
    assert "--- a/src/connection.rs" in done.stdout and "+++ b/src/wasiport_net.rs" in done.stdout
    assert "+wasmedge_wasi_socket = " in done.stdout  # the TOML change is in the diff too
    assert "dry run: nothing was written" in done.stdout
    assert snapshot(crate) == before
    assert "wasiport/wasmedge" not in git(crate, "branch", "--list")


def test_dirty_tree_is_refused_and_listed(tmp_path, env):
    crate = in_place_crate(tmp_path)
    (crate / "src" / "resp.rs").write_text((crate / "src" / "resp.rs").read_text() + "\n// local edit\n")
    (crate / "src" / "new.rs").write_text("// untracked\n")
    before = snapshot(crate)
    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 2
    assert "src/resp.rs (modified)" in done.stderr and "src/new.rs (untracked)" in done.stderr
    assert "--allow-dirty" in done.stderr
    assert snapshot(crate) == before
    allowed = wasiport(env, "apply", str(crate), "--no-build", "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    assert "local edit" in (crate / "src" / "resp.rs").read_text()


def test_unparsable_rust_file_stops_before_anything_is_written(tmp_path, env):
    crate = in_place_crate(tmp_path)
    types = crate / "src" / "types.rs"
    types.write_text(types.read_text() + "\nuse std::net::TcpStream;\nfn broken( {\n")
    git(crate, "commit", "-qam", "broken")
    before = snapshot(crate)
    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 2
    assert "nothing was written" in done.stderr and "src/types.rs:" in done.stderr and "does not parse" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(crate) == before


def test_malformed_cargo_toml_stops_with_its_line(tmp_path, env):
    crate = in_place_crate(tmp_path)
    manifest = crate / "Cargo.toml"
    lines = manifest.read_text().splitlines()
    lines.insert(3, 'edition = = "2018"')
    manifest.write_text("\n".join(lines) + "\n")
    git(crate, "commit", "-qam", "broken manifest")
    before = snapshot(crate)
    done = wasiport(env, "apply", str(crate), "--no-build")
    assert done.returncode == 2
    assert re.search(r"Cargo\.toml:4:\d+: invalid TOML", done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(crate) == before


def test_a_port_that_does_not_build_is_rolled_back(tmp_path, env):
    crate = in_place_crate(tmp_path)
    lib = crate / "src" / "lib.rs"
    # A crate that refuses WASI outright: the port builds natively, not for wasm.
    lib.write_text(lib.read_text() + '\n#[cfg(target_os = "wasi")]\ncompile_error!("no WASI support yet");\n')
    git(crate, "commit", "-qam", "refuse wasi")
    before, head = snapshot(crate), git(crate, "rev-parse", "HEAD")
    done = wasiport(env, "apply", str(crate))
    assert done.returncode == 1
    assert "no WASI support yet" in done.stderr and "rolled back" in done.stderr
    assert snapshot(crate) == before
    assert git(crate, "rev-parse", "HEAD") == head

    kept = wasiport(env, "apply", str(crate), "--keep-broken")
    assert kept.returncode == 1
    assert "wasiport: port redis-sample" in git(crate, "log", "-1", "--format=%s")
    assert (crate / "src" / "wasiport_net.rs").is_file()


def test_library_without_consumer_is_verified_through_its_rlib(tmp_path, env):
    crate = in_place_crate(tmp_path)
    done = wasiport(env, "apply", str(crate), "--format", "json")
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["build"]["ok"] and "probe crate" in stages["build"]["summary"]
    assert stages["verify"]["ok"] and ".rlib" in stages["verify"]["summary"]
    assert any(f["rule_id"] == "wasmedge/connect-timeout" and f["port"] == "kept" for f in report["findings"])


def test_export_patches_then_reapply_to_the_next_upstream_version(tmp_path, env):
    crate = in_place_crate(tmp_path)
    series = tmp_path / "series"
    done = wasiport(env, "apply", str(crate), "--no-build", "--export-patches", str(series))
    assert done.returncode == 0, done.stderr
    patches = sorted(series.glob("*.patch"))
    assert len(patches) == 1 and (series / "series").is_file()

    # The next upstream release: one file changed, a new method added.
    nxt = tmp_path / "next" / "redis-sample"
    shutil.copytree(SAMPLES / "redis-sample", nxt, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    resp = nxt / "src" / "resp.rs"
    resp.write_text(resp.read_text() + "\n/// New in 0.1.1.\npub fn protocol_version() -> u8 { 2 }\n")
    manifest = nxt / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.1.1"', 1))
    git_repo(nxt, "upstream 0.1.1")
    again = wasiport(env, "apply", str(nxt), "--no-build", "--from-patches", str(series))
    assert again.returncode == 0, again.stderr
    assert "re-applied 1 patch" in again.stdout
    assert "already ported" in again.stdout  # the series did the port; the rules found nothing left
    assert "protocol_version" in resp.read_text()
    assert (nxt / "src" / "wasiport_net.rs").is_file()


UREQ_MAIN = """
fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080/".to_string());
    match ureq::get(&url).timeout(std::time::Duration::from_secs(5)).call() {
        Ok(response) => println!("{}", response.into_string().unwrap()),
        Err(err) => { eprintln!("error: {}", err); std::process::exit(1) }
    }
}
"""

TINY_HTTP_MAIN = """
fn main() {
    let server = tiny_http::Server::http("127.0.0.1:8080").expect("bind");
    if let Some(request) = server.incoming_requests().next() {
        let _ = request.respond(tiny_http::Response::from_string("hello"));
    }
}
"""


@pytest.mark.parametrize(
    "crate,dependency,main_rs,expected_imports,degraded",
    [
        ("ureq", 'ureq = { version = "2.6", default-features = false }', UREQ_MAIN, {"sock_connect", "sock_getaddrinfo"}, {"set-nodelay", "peek"}),
        ("tiny_http", 'tiny_http = { version = "0.12", default-features = false }', TINY_HTTP_MAIN, {"sock_bind", "sock_listen", "sock_accept"}, set()),
    ],
)
def test_debian_crates_port_build_and_link_to_wasmedge_sockets(tmp_path, env, crate, dependency, main_rs, expected_imports, degraded):
    if not (Path("/usr/share/cargo/registry") / ("ureq-2.6.2" if crate == "ureq" else "tiny_http-0.12.0")).is_dir():
        pytest.skip(f"Debian's {crate} sources are not installed (.ci/run installs them)")
    app = make_consumer(tmp_path, f"{crate.replace('_', '')}app", dependency, main_rs)
    done = wasiport(env, "apply", crate, "--manifest-path", str(app / "Cargo.toml"), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    report = json.loads(done.stdout)
    assert all(stage["ok"] for stage in report["stages"])
    assert expected_imports <= imports_of(Path(report["module"]))
    reported = {f["rule_id"].split("/")[1] for f in report["findings"] if f["port"] == "degraded"}
    assert degraded <= reported
    if crate == "tiny_http":
        # threads: reported for manual work, never hidden
        assert any(f["rule_id"] == "wasmedge/thread-spawn" and f["port"] == "manual" for f in report["findings"])
    # The port leaves the crate's untouched files byte-identical to Debian's sources.
    port = Path(report["root"])
    upstream = git(port, "rev-list", "--max-parents=0", "HEAD")
    changed = set(git(port, "diff", "--name-only", upstream, "HEAD").splitlines())
    source = Path("/usr/share/cargo/registry") / port.name
    for path in source.rglob("*.rs"):
        rel = path.relative_to(source).as_posix()
        if rel not in changed:
            assert (port / rel).read_bytes() == path.read_bytes(), rel


def test_dry_run_of_a_registry_copy_makes_no_copy(tmp_path, env):
    """A registry entry is ported in a copy; a dry run plans in a scratch copy and leaves no
    `wasiport/` folder behind in the directory it ran from."""
    entry = tmp_path / "registry" / "redis-sample-0.1.0"
    shutil.copytree(SAMPLES / "redis-sample", entry, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    (entry / ".cargo-checksum.json").write_text('{"package": "0", "files": {}}')
    workdir = tmp_path / "work"
    workdir.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "wasiport", "apply", str(entry), "--dry-run", "--no-build"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--- a/src/connection.rs" in done.stdout
    assert "dry run: nothing was written" in done.stdout
    assert list(workdir.iterdir()) == []
