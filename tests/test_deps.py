"""The dependency report and substitution plans, on consumer projects resolved by cargo
against Debian's crates (tokio 1.24, hyper 0.14, mio 0.8, socket2 0.4, ureq, tiny_http)
plus stand-ins for the renamed `*_wasi` crates."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.offline_cargo import DEBIAN_CARGO, DEBIAN_RUSTC, OfflineCargo, add_crate, make_offline_cargo
from wasiport.deps.graph import (
    GraphReport,
    Remedy,
    SourceKind,
    analyze,
    load_deps_data,
    wasm_target,
)
from wasiport.deps.substitutions import SubstitutionPlan, plan_substitutions
from wasiport.errors import UserError
from wasiport.cargo import (
    AddPatch,
    AddRustCfgs,
    MoveDependency,
    SetDependency,
    cargo_metadata,
    plan_consumer_patch,
    verify_patch_used,
)
from wasiport.cargo.changes import PORTS_SOURCE_ID, plan_ports_source
from wasiport.cargo.manifest import apply_changes
from wasiport.port.consumer import expose_port
from wasiport.model import Profile, Severity
from wasiport.paths import rules_dir
from wasiport.check.scan import scan_crate

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deps"
PATCH = Profile()._replace(substitution="patch")
RENAME = Profile()._replace(substitution="rename")
GATE = Profile().gate

pytestmark = pytest.mark.cargo
SCANNED_WITH_STD_NET = ("netapp", "netutil", "tiny_http", "ureq", "url")


def project(name: str, tmp_path: Path) -> Path:
    destination = tmp_path / name
    shutil.copytree(FIXTURES / "projects" / name, destination)
    return destination


def report_for(root: Path, profile: Profile, cargo: OfflineCargo, **env: str) -> GraphReport:
    return analyze(root / "Cargo.toml", profile, scan=lambda crate, features: scan_crate(crate, profile, features), env=cargo.env(**env))


def remedies(report: GraphReport) -> dict[str, str]:
    """name -> remedy for every package that needs something or is covered by a substitute."""
    return {
        p.name: (f"covered by {p.covered_by}" if p.covered_by else str(p.remedy))
        for p in report.packages
        if p.remedy is not Remedy.COMPATIBLE or p.covered_by
    }


def write_plan(plan: SubstitutionPlan) -> None:
    for file_changes in plan.files:
        edit = file_changes.edit()
        assert not edit.conflicts, edit.conflicts
        file_changes.path.parent.mkdir(parents=True, exist_ok=True)
        file_changes.path.write_text(edit.text)


def resolved(manifest_path: Path, cargo: OfflineCargo, platform: str) -> set[str]:
    metadata, _ = cargo_metadata(manifest_path, cargo.env(), filter_platform=platform)
    nodes = {n["id"] for n in metadata["resolve"]["nodes"]}
    return {p["name"] for p in metadata["packages"] if p["id"] in nodes}


def host_triple() -> str:
    output = subprocess.run([str(DEBIAN_RUSTC), "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("host: "))


@pytest.fixture(scope="module")
def rename_cargo(tmp_path_factory: pytest.TempPathFactory, offline_cargo: OfflineCargo) -> OfflineCargo:
    """Debian's crates plus stand-ins for tokio_wasi and hyper_wasi (package names, lib
    names and feature names as published; tiny libraries)."""
    cargo = make_offline_cargo(tmp_path_factory.mktemp("rename-cargo"))
    for standin in sorted((FIXTURES / "standins").iterdir()):
        add_crate(cargo.registry, standin)
    return cargo


# ---------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def netapp(tmp_path_factory: pytest.TempPathFactory, offline_cargo: OfflineCargo) -> tuple[Path, GraphReport]:
    """netapp analysed once for the patch generation (the report is a value; tests that
    write the plan change only the files)."""
    root = project("netapp", tmp_path_factory.mktemp("netapp"))
    return root, report_for(root, PATCH, offline_cargo)


def test_report_finds_what_the_wasm_build_compiles_and_why(netapp: tuple[Path, GraphReport]) -> None:
    root, report = netapp
    assert report.target == "wasm32-wasi"  # Debian's rustc 1.63 predates wasm32-wasip1
    assert report.members == ("netapp",)
    judged_by_data = {name: r for name, r in remedies(report).items() if name not in SCANNED_WITH_STD_NET}
    assert judged_by_data == {
        "tokio": "substitute",
        "hyper": "substitute",
        "socket2": "substitute",
        "mio": "covered by tokio",  # the tokio fork takes mio from its own git fork
    }
    # The rest were scanned: std::net code (url: Url::socket_addrs resolves names with std).
    # Whether the rules port all of it (portable) or not (manual) is the rule pack's call.
    for name in SCANNED_WITH_STD_NET:
        package = report.package(name)
        assert package.findings and package.remedy in (Remedy.PORTABLE, Remedy.MANUAL), name
    assert report.package("netutil").remedy is Remedy.PORTABLE  # connect + read timeout
    assert report.package("socket2").chain == "netapp -> hyper -> socket2"
    assert report.package("url").chain == "netapp -> ureq -> url"
    assert report.package("mio").chain == "netapp -> tokio -> mio"
    # dev-dependencies are not built, build-dependencies and proc macros run on the host
    assert {"native-tls", "openssl-sys", "cc", "tokio-macros", "syn"}.isdisjoint(report.names())
    # features as cargo resolved them for the wasm target
    assert {"net", "rt", "macros"} <= set(report.package("tokio").features)
    netutil = report.package("netutil")
    assert netutil.source is SourceKind.PATH and netutil.root == root / "netutil"
    assert {Path(f.path).as_posix().rsplit("/", 2)[-2:] == ["src", "lib.rs"] for f in netutil.findings} == {True}
    assert report.package("tokio").source is SourceKind.REGISTRY
    [requirement] = report.package("socket2").required_by
    assert (requirement.dependent_name, requirement.req) == ("hyper", "^0.4")


def test_known_manual_crates_are_reported_with_the_reason(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    report = report_for(project("tlsapp", tmp_path), PATCH, offline_cargo)
    assert remedies(report) == {"native-tls": "manual", "openssl-sys": "manual"}
    assert "OpenSSL C library" in report.package("openssl-sys").reason
    assert report.package("openssl-sys").chain == "tlsapp -> native-tls -> openssl-sys"
    assert report.package("libc").reason == "a no_std crate: it cannot use std::net"
    plan = plan_substitutions(report, PATCH)
    assert plan.files == ()
    assert [m.package for m in plan.errors] == ["native-tls", "openssl-sys"]
    assert not report.ok


def test_a_workspace_with_two_members_and_a_path_library(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    root = project("workspace", tmp_path)
    report = report_for(root, PATCH, offline_cargo)
    assert report.members == ("client", "server")
    assert report.workspace_root == root
    chains = {p.name: p.chain for p in report.packages if p.needs_action}
    assert chains == {
        "shared": "server -> shared",
        "tiny_http": "server -> tiny_http",
        "tokio": "client -> tokio",
        "ureq": "client -> ureq",
        "url": "client -> ureq -> url",
    }
    assert report.package("shared").source is SourceKind.PATH
    assert report.package("client").source is SourceKind.WORKSPACE
    # [patch] is only read in the workspace root, so the patch goes there, not to a member
    plan = plan_substitutions(report, PATCH)
    assert {f.path for f in plan.files} == {root / "Cargo.toml", root / ".cargo" / "config.toml"}
    rename_plan = plan_substitutions(report_for(root, RENAME, offline_cargo), RENAME)
    assert {f.path for f in rename_plan.files} == {root / "client" / "Cargo.toml"}


def test_a_git_dependency_is_scanned_and_named_with_its_source(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    repository = tmp_path / "gitnet"
    shutil.copytree(FIXTURES / "gitnet", repository)
    git = ["git", "-C", str(repository), "-c", "user.name=wasiport", "-c", "user.email=tests@wasiport.invalid"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "gitnet 0.3.0"]):
        subprocess.run(git + command, check=True)
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "src" / "main.rs").write_text('fn main() { let _ = gitnet::ping("127.0.0.1:7"); }\n')
    (app / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\ngitnet = {{ git = "{repository.as_uri()}" }}\n'
    )
    # cargo clones a file:// repository only when it is allowed to use the network
    report = report_for(app, PATCH, offline_cargo, CARGO_NET_OFFLINE="false")
    gitnet = report.package("gitnet")
    assert gitnet.source is SourceKind.GIT and gitnet.source_url.startswith(f"git+{repository.as_uri()}")
    assert gitnet.remedy is Remedy.PORTABLE and gitnet.chain == "app -> gitnet"
    [message] = [m for m in plan_substitutions(report, PATCH).messages if m.package == "gitnet"]
    assert message.severity is Severity.WARNING
    assert message.text.endswith(
        f"port a copy with `wasiport apply gitnet` and add it to [patch.'{repository.as_uri()}']"
    )

    # that patch table is one cargo honours: a ported copy takes the git crate's place
    ported = tmp_path / "ported" / "gitnet"
    shutil.copytree(FIXTURES / "gitnet", ported)
    manifest_path = app / "Cargo.toml"
    changes = plan_consumer_patch(manifest_path, "gitnet", "0.3.0", ported, registry=repository.as_uri())
    manifest_path.write_text(apply_changes(manifest_path.read_text(), changes, path_for_errors=str(manifest_path)))
    config = app / ".cargo" / "config.toml"
    config.parent.mkdir()
    config.write_text(apply_changes("", plan_ports_source(manifest_path, ported), path_for_errors=str(config)))
    expose_port(ported)
    check = verify_patch_used(manifest_path, ["gitnet"], offline_cargo.env(CARGO_NET_OFFLINE="false"))
    assert check.ok, check.unused
    # ... as a crate of wasiport's ports registry (built like the git copy: lints capped)
    taken = report_for(app, PATCH, offline_cargo, CARGO_NET_OFFLINE="false").package("gitnet")
    assert (taken.source, taken.source_url) == (SourceKind.REGISTRY, PORTS_SOURCE_ID)


# ---------------------------------------------------------------------------
# Generation 2: same-name forks through [patch.crates-io]
# ---------------------------------------------------------------------------


def test_patch_plan_writes_the_forks_and_the_wasm_only_rustflags(netapp: tuple[Path, GraphReport]) -> None:
    root, report = netapp
    plan = plan_substitutions(report, PATCH)
    manifest_changes = {f.path: f.changes for f in plan.files}
    patches = {
        c.name: (c.spec.git, c.spec.branch) for c in manifest_changes[root / "Cargo.toml"] if isinstance(c, AddPatch)
    }
    assert patches == {
        "tokio": ("https://github.com/second-state/wasi_tokio.git", "v1.36.x"),
        "hyper": ("https://github.com/second-state/wasi_hyper.git", "v0.14.x"),
        # hyper's fork accepts socket2 ">=0.4.7, <0.6.0", so the 0.5.7 fork fits
        "socket2": ("https://github.com/second-state/socket2.git", "v0.5.x"),
    }
    [rustflags] = manifest_changes[root / ".cargo" / "config.toml"]
    assert rustflags == AddRustCfgs(f"cfg({GATE})", ("wasmedge", "tokio_unstable"))

    write_plan(plan)
    manifest = tomllib.loads((root / "Cargo.toml").read_text())
    assert manifest["patch"]["crates-io"]["tokio"] == {
        "git": "https://github.com/second-state/wasi_tokio.git",
        "branch": "v1.36.x",
    }
    assert manifest["dependencies"]["tokio"] == {"version": "1.24", "features": ["net", "rt", "macros"]}  # untouched
    config = tomllib.loads((root / ".cargo" / "config.toml").read_text())
    assert config == {"target": {f"cfg({GATE})": {"rustflags": ["--cfg", "wasmedge", "--cfg", "tokio_unstable"]}}}
    # planning again on the written files changes nothing
    assert all(not f.edit().changed for f in plan_substitutions(report, PATCH).files)


def test_a_fork_whose_version_misses_a_requirement_is_not_planned(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    report = report_for(project("layered", tmp_path), PATCH, offline_cargo)
    socket2 = report.package("socket2")
    assert socket2.remedy is Remedy.MANUAL and socket2.chain == "layered -> rawsock -> socket2"
    assert "second-state/socket2.git v0.5.x is socket2 0.5.7, but rawsock requires ^0.4" in socket2.reason
    # a transitive tokio is no problem for a same-name fork
    assert report.package("tokio").remedy is Remedy.SUBSTITUTE
    assert report.package("tokio").chain == "layered -> netlib -> tokio"
    plan = plan_substitutions(report, PATCH)
    [root_changes] = [f.changes for f in plan.files if f.path.name == "Cargo.toml"]
    assert [c.name for c in root_changes] == ["tokio"]
    assert [m.package for m in plan.errors] == ["socket2"]


# ---------------------------------------------------------------------------
# Generation 1: renamed crates, checked by cargo against stand-ins
# ---------------------------------------------------------------------------


def run_wasi(module: Path, tmp_path: Path) -> str:
    from wasmtime import Engine, Linker, Module, Store, WasiConfig

    engine = Engine()
    linker = Linker(engine)
    linker.define_wasi()
    store = Store(engine)
    config = WasiConfig()
    stdout = tmp_path / "stdout.txt"
    config.stdout_file = str(stdout)
    store.set_wasi(config)
    instance = linker.instantiate(store, Module.from_file(engine, str(module)))
    instance.exports(store)["_start"](store)
    return stdout.read_text()


def test_rename_plan_is_resolved_built_and_run_with_the_renamed_crates(
    tmp_path: Path, rename_cargo: OfflineCargo
) -> None:
    root = project("asyncapp", tmp_path)
    report = report_for(root, RENAME, rename_cargo)
    assert remedies(report) == {
        "tokio": "substitute",
        "hyper": "substitute",
        "mio": "covered by tokio",
        "socket2": "covered by hyper",
        "h2": "covered by hyper",
        "tokio-util": "covered by hyper",
        "futures-sink": "covered by hyper",
        "indexmap": "covered by hyper",
        "hashbrown": "covered by hyper",
        "slab": "covered by hyper",
    }
    plan = plan_substitutions(report, RENAME)
    [changes] = [f.changes for f in plan.files if f.path == root / "Cargo.toml"]
    assert [type(c) for c in changes] == [MoveDependency, SetDependency, MoveDependency, SetDependency]
    # the user's `h2` feature has no counterpart in hyper_wasi: reported, and left out
    [h2_warning] = [m for m in plan.messages if m.severity is Severity.WARNING and "h2" in m.text]
    assert "hyper_wasi has no feature(s) h2" in h2_warning.text
    write_plan(plan)

    manifest = tomllib.loads((root / "Cargo.toml").read_text())
    wasm_deps = manifest["target"][f"cfg({GATE})"]["dependencies"]
    assert wasm_deps["tokio"] == {"package": "tokio_wasi", "version": "1.25", "features": ["net", "rt", "macros"]}
    assert wasm_deps["hyper"] == {
        "package": "hyper_wasi",
        "version": "0.15",
        "default-features": False,
        "features": ["client", "http1", "tcp"],
    }
    native_deps = manifest["target"][f"cfg(not({GATE}))"]["dependencies"]
    assert native_deps["tokio"] == {"version": "1.24", "features": ["net", "rt", "macros"]}
    assert manifest["dependencies"] == {"bytes": "1"}

    # cargo resolves the renamed crates for WasmEdge, and the upstream ones natively
    wasm = resolved(root / "Cargo.toml", rename_cargo, "wasm32-wasi")
    assert {"tokio_wasi", "hyper_wasi"} <= wasm and not {"tokio", "hyper", "mio", "socket2", "h2"} & wasm
    native = resolved(root / "Cargo.toml", rename_cargo, host_triple())
    assert {"tokio", "hyper"} <= native and not {"tokio_wasi", "hyper_wasi"} & native

    # the code still says `tokio::` and `hyper::`; built for WASI it runs on the renamed crates
    build = subprocess.run(
        [
            str(DEBIAN_CARGO),
            "build",
            "--offline",
            "--target",
            "wasm32-wasi",
            "--manifest-path",
            str(root / "Cargo.toml"),
        ],
        env=rename_cargo.env(),
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    module = rename_cargo.target_dir / "wasm32-wasi" / "debug" / "asyncapp.wasm"
    assert run_wasi(module, tmp_path) == "tokio from tokio_wasi (net: true), hyper from hyper_wasi on tokio_wasi\n"

    # analysed again, the renamed crates count as done
    again = report_for(root, RENAME, rename_cargo)
    assert again.ok
    assert again.package("tokio_wasi").reason == "already the WasmEdge substitute for tokio"
    assert all(not f.edit().changed for f in plan_substitutions(again, RENAME).files)


def test_a_users_own_rename_keeps_its_key(tmp_path: Path, rename_cargo: OfflineCargo) -> None:
    root = project("renamedapp", tmp_path)
    report = report_for(root, RENAME, rename_cargo)
    [requirement] = report.package("tokio").required_by
    assert requirement.key == "runtime"
    write_plan(plan_substitutions(report, RENAME))
    manifest = tomllib.loads((root / "Cargo.toml").read_text())
    assert manifest["target"][f"cfg({GATE})"]["dependencies"] == {
        "runtime": {"package": "tokio_wasi", "version": "1.25", "features": ["net", "rt"]}
    }
    assert manifest["target"][f"cfg(not({GATE}))"]["dependencies"] == {
        "runtime": {"package": "tokio", "version": "1", "features": ["net", "rt"]}
    }
    assert resolved(root / "Cargo.toml", rename_cargo, "wasm32-wasi") == {"renamedapp", "tokio_wasi"}


def test_a_dependency_renamed_to_its_substitute_already_needs_nothing(
    tmp_path: Path, rename_cargo: OfflineCargo
) -> None:
    report = report_for(project("substituted", tmp_path), RENAME, rename_cargo)
    assert report.ok and report.names() == {"substituted", "tokio_wasi"}
    assert report.package("tokio_wasi").path == ("substituted", "tokio_wasi")
    assert plan_substitutions(report, RENAME).files == ()


def test_a_transitive_crate_cannot_be_renamed_and_the_fork_is_suggested(
    tmp_path: Path, offline_cargo: OfflineCargo
) -> None:
    report = report_for(project("layered", tmp_path), RENAME, offline_cargo)
    tokio = report.package("tokio")
    assert tokio.remedy is Remedy.MANUAL
    assert "transitive dependency (of netlib)" in tokio.reason
    assert "cargo's [patch] cannot rename a crate" in tokio.reason
    assert "second-state/wasi_tokio.git, branch v1.36.x" in tokio.reason
    assert plan_substitutions(report, RENAME).files == ()


# ---------------------------------------------------------------------------
# Data files and targets
# ---------------------------------------------------------------------------


def test_the_shipped_data_files_load() -> None:
    data = load_deps_data(profile=Profile())
    assert data.known["tokio"].when_features == ("net",)
    assert [e.branch for e in data.entries("patch", "tokio")] == ["v1.36.x", "v1.40.x"]
    assert data.entries("rename", "tokio")[0].package == "tokio_wasi"
    assert "tokio_wasi" in data.substitute_packages()


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        ("substitutions.toml", 'package = "tokio_wasi"\n', "", "rename.tokio[0].package"),
        ("substitutions.toml", 'tracks = "1.36.0"', 'tracks = "1.36"', "patch.tokio[0].tracks"),
        ("substitutions.toml", 'branch = "v0.5.x"\n', 'branch = "v0.5.x"\nbranches = 1\n', "patch.socket2[0].branches"),
        ("substitutions.toml", 'version = "0.5.7"', 'version = "0.5"', "patch.socket2[0].version"),
        ("deps-known.toml", 'remedy = "manual"\nhelp = "move', 'remedy = "maybe"\nhelp = "move', "crate.net2.remedy"),
        ("deps-known.toml", 'when_features = ["net"]', 'when_features = "net"', "crate.tokio.when_features"),
    ],
)
def test_a_malformed_data_file_is_an_error_naming_file_and_key(
    tmp_path: Path, file: str, old: str, new: str, key: str
) -> None:
    shutil.copy(rules_dir() / "wasmedge" / "substitutions.toml", tmp_path)
    shutil.copy(rules_dir() / "wasmedge" / "deps-known.toml", tmp_path)
    text = (tmp_path / file).read_text()
    assert old in text
    (tmp_path / file).write_text(text.replace(old, new, 1))
    with pytest.raises(UserError) as raised:
        load_deps_data(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / file}: `{key}`")


def test_the_target_name_follows_the_toolchain(offline_cargo: OfflineCargo) -> None:
    assert wasm_target(Profile(), offline_cargo.env()) == "wasm32-wasi"
    with pytest.raises(UserError, match="knows none of the targets wasm32-wasip2"):
        wasm_target(Profile()._replace(targets=("wasm32-wasip2",)), offline_cargo.env())
