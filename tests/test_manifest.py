"""Cargo.toml / .cargo/config.toml edits: before/after pairs, idempotence, conflicts,
errors, and cargo itself resolving what was written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from tests.support.offline_cargo import DEBIAN_CARGO, DEBIAN_REGISTRY, DEBIAN_RUSTC, OfflineCargo
from wasiport.cargo import (
    AddPatch,
    DependencySpec,
    DepTable,
    EnableFeatures,
    ExcludeFromWorkspace,
    MoveDependency,
    SetDependency,
    Version,
    VersionReq,
    cargo_metadata,
    plan_consumer_patch,
    plan_socket_dependency,
    plan_wasm_rustflags,
    run_cargo,
    target_applies_to_wasm,
    verify_patch_used,
)
from wasiport.cargo import manifest
from wasiport.cargo.changes import (
    PORTS_REGISTRY,
    AddPortsSource,
    ManifestConflictError,
    ManifestVerificationError,
    plan_ports_source,
)
from wasiport.cargo.manifest import FileChanges, apply_changes, edit_manifest
from wasiport.cargo.versions import requirement_within
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.port.consumer import expose_port

PROFILE = Profile()
GATE = PROFILE.gate
GATE_TABLE = DepTable.gated(GATE)
NOT_GATE_TABLE = DepTable.not_gated(GATE)


def toml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def edit_twice(before: str, changes: list) -> str:
    """Apply, then check that a second application finds everything done and changes nothing."""
    after = apply_changes(before, changes, path_for_errors="Cargo.toml")
    again = edit_manifest(after, changes, path_for_errors="Cargo.toml")
    assert again.text == after
    assert not again.applied and not again.conflicts
    assert len(again.already_done) == len(changes)
    return after


# ---------------------------------------------------------------------------
# Before/after pairs
# ---------------------------------------------------------------------------


def test_socket_dependency_goes_under_the_gate_and_everything_else_is_kept() -> None:
    before = toml("""
        # redis-rs, trimmed: comments, odd spacing, a header-table dependency
        [package]
        name="redis"   # keep this spacing
        version = "0.22.1"
        keywords = ['redis', "database"]

        [dependencies]
        combine = { version = "4.6", default-features = false, features = ["std"] } # parser
        itoa="1.0"
        percent-encoding = "2.1"
        sha1_smol = { version = "1.0", optional = true }
        url.version = "2.1"
        url.default-features = false

        [dependencies.serde]
        version = "1"
        features = [
            "derive",
        ]

        [features]
        default = ["acl"]
        acl = []

        [[example]]
        name = "basic"
    """)
    after = edit_twice(before, plan_socket_dependency(PROFILE))
    # Only the new table is added, after the last dependency table (not after [[example]]).
    assert after == before.replace(
        "[features]\n",
        f"[target.'cfg({GATE})'.dependencies]\nwasmedge_wasi_socket = \"0.5.4\"\n\n[features]\n",
    )


def test_an_existing_gate_table_is_reused_even_when_spelled_differently() -> None:
    before = toml("""
        [package]
        name = "client"

        [target.'cfg(all(target_os="wasi",not(target_env="p2")))'.dependencies]
        # needed by the hand-written compat layer
        bytes = "1"

        [dev-dependencies]
        tempfile = "3"
    """)
    after = edit_twice(before, plan_socket_dependency(PROFILE))
    assert after == toml("""
        [package]
        name = "client"

        [target.'cfg(all(target_os="wasi",not(target_env="p2")))'.dependencies]
        # needed by the hand-written compat layer
        bytes = "1"
        wasmedge_wasi_socket = "0.5.4"

        [dev-dependencies]
        tempfile = "3"
    """)


def test_sorted_tables_stay_sorted_and_unsorted_ones_get_the_key_appended() -> None:
    sorted_before = toml(f"""
        [target.'cfg({GATE})'.dependencies]
        anyhow = "1"
        zstd = "0.12"
    """)
    assert edit_twice(sorted_before, plan_socket_dependency(PROFILE)) == toml(f"""
        [target.'cfg({GATE})'.dependencies]
        anyhow = "1"
        wasmedge_wasi_socket = "0.5.4"
        zstd = "0.12"
    """)
    unsorted_before = toml(f"""
        [target.'cfg({GATE})'.dependencies]
        zstd = "0.12"
        anyhow = "1"
    """)
    assert (
        edit_twice(unsorted_before, plan_socket_dependency(PROFILE))
        == unsorted_before + 'wasmedge_wasi_socket = "0.5.4"\n'
    )


def test_the_gate_table_is_added_beside_other_target_tables() -> None:
    before = toml("""
        [package]
        name = "tool"

        [target.'cfg(unix)'.dependencies]
        libc = "0.2"

        [dev-dependencies]
        tempfile = "3"
    """)
    assert edit_twice(before, plan_socket_dependency(PROFILE)) == toml(f"""
        [package]
        name = "tool"

        [target.'cfg(unix)'.dependencies]
        libc = "0.2"

        [target.'cfg({GATE})'.dependencies]
        wasmedge_wasi_socket = "0.5.4"

        [dev-dependencies]
        tempfile = "3"
    """)


def test_consumer_patch_joins_an_existing_patch_table_with_a_relative_path(tmp_path: Path) -> None:
    consumer = tmp_path / "app" / "Cargo.toml"
    ported = tmp_path / "ported" / "redis"
    before = toml("""
        [package]
        name = "app"

        [dependencies]
        redis = "0.22"

        [patch.crates-io]
        # our fork of the URL parser
        url = { git = "https://example.com/url.git" }
    """)
    changes = plan_consumer_patch(consumer, "redis", "0.22.1", ported)
    assert changes == [
        AddPatch(
            "redis",
            DependencySpec(version="=0.22.1", registry=PORTS_REGISTRY),
            supersedes=(DependencySpec(path="../ported/redis"),),
        )
    ]
    assert edit_twice(before, changes) == toml("""
        [package]
        name = "app"

        [dependencies]
        redis = "0.22"

        [patch.crates-io]
        # our fork of the URL parser
        url = { git = "https://example.com/url.git" }
        redis = { version = "=0.22.1", registry = "wasiport-ports" }
    """)


def test_a_port_patched_by_path_before_moves_to_the_ports_registry(tmp_path: Path) -> None:
    """Ports used to be path patches; re-applying replaces wasiport's own entry (and only that)."""
    consumer = tmp_path / "app" / "Cargo.toml"
    before = toml("""
        [patch.crates-io]
        redis = { path = "wasiport/redis-0.22.1" }
        url = { path = "../my-url" }
    """)
    changes = plan_consumer_patch(consumer, "redis", "0.22.1", tmp_path / "app" / "wasiport" / "redis-0.22.1")
    edit = edit_manifest(before, changes, path_for_errors="Cargo.toml")
    assert 'redis = { version = "=0.22.1", registry = "wasiport-ports" }' in edit.text
    assert 'url = { path = "../my-url" }' in edit.text
    assert edit.notes == ("Cargo.toml: [patch.crates-io] redis now takes the port as a registry crate",)
    foreign = toml("""
        [patch.crates-io]
        redis = { path = "../elsewhere/redis" }
    """)
    assert edit_manifest(foreign, changes, path_for_errors="Cargo.toml").conflicts


def test_the_ports_registry_is_a_directory_source_beside_the_copies(tmp_path: Path) -> None:
    consumer = tmp_path / "app" / "Cargo.toml"
    changes = plan_ports_source(consumer, tmp_path / "app" / "wasiport" / "redis-0.22.1")
    assert changes == [AddPortsSource("wasiport/.cargo-ports")]
    user_config = toml("""
        [build]
        jobs = 2
    """)
    after = edit_twice(user_config, changes)
    assert after == user_config + "\n" + toml("""
        [registries.wasiport-ports]
        index = "https://wasiport.invalid/ports"

        [source.wasiport-ports-index]
        registry = "https://wasiport.invalid/ports"
        replace-with = "wasiport-ports"

        [source.wasiport-ports]
        directory = "wasiport/.cargo-ports"
    """)
    taken = after.replace('directory = "wasiport/.cargo-ports"', 'directory = "vendor"')
    conflict = edit_manifest(taken, changes, path_for_errors=".cargo/config.toml").conflicts
    assert [c.key for c in conflict] == ["source.wasiport-ports.directory"]


def test_a_port_is_exposed_to_the_directory_source_without_dirtying_its_repository(tmp_path: Path) -> None:
    port = tmp_path / "wasiport" / "redis-0.22.1"
    (port / "src").mkdir(parents=True)
    (port / "Cargo.toml").write_text('[package]\nname = "redis"\nversion = "0.22.1"\n')
    (port / "src" / "lib.rs").write_text("")
    subprocess.run(["git", "init", "-q", str(port)], check=True)
    entry = expose_port(port)
    assert entry == tmp_path / "wasiport" / ".cargo-ports" / "redis-0.22.1"
    assert entry.is_symlink() and entry.resolve() == port.resolve()
    assert json.loads((port / ".cargo-checksum.json").read_text()) == {"files": {}, "package": None}
    assert expose_port(port) == entry  # twice == once
    assert (port / ".git" / "info" / "exclude").read_text().count("/.cargo-checksum.json") == 1
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=port, capture_output=True, text=True)
    assert ".cargo-checksum.json" not in status.stdout


def test_generation_one_rename_moves_the_users_line_and_adds_the_renamed_crate() -> None:
    before = toml("""
        [package]
        name = "server"

        [dependencies]
        anyhow = "1"
        rt = { package = "tokio", version = "1", features = ["net", "rt"] }  # the user's own rename
        serde = "1"
    """)
    changes = [
        MoveDependency("rt", DepTable(), NOT_GATE_TABLE),
        SetDependency(GATE_TABLE, "rt", DependencySpec(package="tokio_wasi", version="1.25", features=("net", "rt"))),
    ]
    assert edit_twice(before, changes) == toml(f"""
        [package]
        name = "server"

        [dependencies]
        anyhow = "1"
        serde = "1"

        [target.'cfg(not({GATE}))'.dependencies]
        rt = {{ package = "tokio", version = "1", features = ["net", "rt"] }}  # the user's own rename

        [target.'cfg({GATE})'.dependencies]
        rt = {{ package = "tokio_wasi", version = "1.25", features = ["net", "rt"] }}
    """)


def test_a_dotted_key_dependency_moves_as_an_inline_table() -> None:
    before = toml("""
        [dependencies]
        tokio.version = "1"
        tokio.features = ["net"]
        log = "0.4"
    """)
    assert edit_twice(before, [MoveDependency("tokio", DepTable(), NOT_GATE_TABLE)]) == toml(f"""
        [dependencies]
        log = "0.4"

        [target.'cfg(not({GATE}))'.dependencies]
        tokio = {{ version = "1", features = ["net"] }}
    """)


def test_features_are_added_without_touching_the_rest() -> None:
    before = toml("""
        [dependencies]
        bytes = "1"  # buffers
        tokio = { version = "1", features = ["rt"] }
        mio = { version = "0.8" }

        [dependencies.hyper]
        version = "0.14"
        features = [
            "client",
        ]
    """)
    changes = [
        EnableFeatures(DepTable(), "bytes", ("std",)),
        EnableFeatures(DepTable(), "tokio", ("net", "rt")),
        EnableFeatures(DepTable(), "mio", ("net",)),
        EnableFeatures(DepTable(), "hyper", ("tcp",)),
    ]
    assert edit_twice(before, changes) == toml("""
        [dependencies]
        bytes = { version = "1", features = ["std"] }  # buffers
        tokio = { version = "1", features = ["rt", "net"] }
        mio = { version = "0.8", features = ["net"] }

        [dependencies.hyper]
        version = "0.14"
        features = [
            "client",
            "tcp",
        ]
    """)


def test_rustflags_reach_the_wasm_target_only_and_keep_build_rustflags() -> None:
    changes = plan_wasm_rustflags(PROFILE, ["wasmedge", "tokio_unstable"])
    fresh = edit_twice("", changes)
    assert fresh == toml(f"""
        [target.'cfg({GATE})']
        rustflags = ["--cfg", "wasmedge", "--cfg", "tokio_unstable"]
    """)

    with_build = toml("""
        [build]
        rustflags = ["-C", "target-cpu=native"]  # mine
    """)
    edit = edit_manifest(with_build, changes, path_for_errors=".cargo/config.toml")
    assert edit.text == with_build + "\n" + toml(f"""
        [target.'cfg({GATE})']
        rustflags = ["-C", "target-cpu=native", "--cfg", "wasmedge", "--cfg", "tokio_unstable"]
    """)
    assert edit.notes and "[build] rustflags" in edit.notes[0]

    string_form = toml(f"""
        [target.'cfg({GATE})']
        rustflags = "--cfg wasmedge -C opt-level=s"
    """)
    assert edit_twice(string_form, changes) == string_form.replace(
        '"--cfg wasmedge -C opt-level=s"', '"--cfg wasmedge -C opt-level=s --cfg tokio_unstable"'
    )


def test_a_copy_under_the_workspace_folder_is_excluded_from_the_workspace() -> None:
    before = toml("""
        [workspace]
        members = ["app", "crates/*"]
        exclude = [
            "scratch",
        ]
    """)
    assert edit_twice(before, [ExcludeFromWorkspace("wasiport-ports")]) == toml("""
        [workspace]
        members = ["app", "crates/*"]
        exclude = [
            "scratch",
            "wasiport-ports",
        ]
    """)
    assert edit_twice("[workspace]\nmembers = []\n", [ExcludeFromWorkspace("ports")]) == toml("""
        [workspace]
        members = []
        exclude = ["ports"]
    """)
    package_only = '[package]\nname = "app"\n'
    assert edit_twice(package_only, [ExcludeFromWorkspace("ports")]) == package_only  # no workspace, no members
    [conflict] = edit_manifest(before, [ExcludeFromWorkspace("crates/redis")], path_for_errors="Cargo.toml").conflicts
    assert conflict.reason == "crates/redis is a workspace member"


# ---------------------------------------------------------------------------
# Conflicts: never overwrite the user's setting
# ---------------------------------------------------------------------------


def test_a_different_version_in_the_gate_table_is_a_conflict_and_nothing_is_written() -> None:
    before = toml(f"""
        [target.'cfg({GATE})'.dependencies]
        wasmedge_wasi_socket = "0.4"
    """)
    with pytest.raises(ManifestConflictError) as raised:
        apply_changes(before, plan_socket_dependency(PROFILE), path_for_errors="redis/Cargo.toml")
    conflict = raised.value.conflicts[0]
    assert conflict.key == f"target.'cfg({GATE})'.dependencies.wasmedge_wasi_socket"
    assert conflict.existing == '"0.4"'
    assert "redis/Cargo.toml" in str(raised.value)


def test_the_hand_ports_unconditional_dependency_is_reported_not_duplicated() -> None:
    # What the 2022 redis hand-port wrote: "0" for every target.
    before = toml("""
        [dependencies]
        wasmedge_wasi_socket = "0"
    """)
    edit = edit_manifest(before, plan_socket_dependency(PROFILE), path_for_errors="Cargo.toml")
    assert edit.text == before
    [conflict] = edit.conflicts
    assert conflict.key == "dependencies.wasmedge_wasi_socket"
    assert "every target" in conflict.reason and "native build breaks" in conflict.reason


def test_an_equivalent_declaration_under_another_wasi_table_counts_as_done() -> None:
    before = toml("""
        [target.'cfg(target_os = "wasi")'.dependencies]
        wasmedge_wasi_socket = "0.5.4"
    """)
    edit = edit_manifest(before, plan_socket_dependency(PROFILE), path_for_errors="Cargo.toml")
    assert edit.text == before and not edit.conflicts
    assert edit.already_done and "already declared" in edit.notes[0]


def test_non_conflicting_changes_still_apply_when_another_conflicts() -> None:
    before = toml("""
        [dependencies]
        redis = "0.22"

        [patch.crates-io]
        socket2 = { git = "https://github.com/someone/socket2.git" }
    """)
    fork = AddPatch("socket2", DependencySpec(git="https://github.com/second-state/socket2.git", branch="v0.5.x"))
    edit = edit_manifest(before, [fork, *plan_socket_dependency(PROFILE)], path_for_errors="Cargo.toml")
    assert [c.change for c in edit.conflicts] == [fork]
    assert "patched differently" in edit.conflicts[0].reason
    assert edit.applied == tuple(plan_socket_dependency(PROFILE))
    assert 'socket2 = { git = "https://github.com/someone/socket2.git" }' in edit.text


def test_moving_onto_an_existing_declaration_is_a_conflict() -> None:
    before = toml(f"""
        [dependencies]
        tokio = "1"

        [target.'cfg(not({GATE}))'.dependencies]
        tokio = "1.20"
    """)
    edit = edit_manifest(before, [MoveDependency("tokio", DepTable(), NOT_GATE_TABLE)], path_for_errors="Cargo.toml")
    assert edit.text == before
    assert "already declared" in edit.conflicts[0].reason


# ---------------------------------------------------------------------------
# Errors and the semantic check
# ---------------------------------------------------------------------------


def test_malformed_toml_names_file_line_and_column() -> None:
    broken = '[package]\nname = "x"\nversion = \n'
    with pytest.raises(UserError) as raised:
        edit_manifest(broken, plan_socket_dependency(PROFILE), path_for_errors="crates/x/Cargo.toml")
    assert str(raised.value).startswith("crates/x/Cargo.toml:3:11: invalid TOML")


def test_a_dependency_table_that_is_not_a_table_is_reported() -> None:
    with pytest.raises(UserError, match=r"`target\.'cfg\(.*\)'` is a str, expected a table"):
        edit_manifest(
            f"[target]\n'cfg({GATE})' = \"oops\"\n", plan_socket_dependency(PROFILE), path_for_errors="Cargo.toml"
        )


def test_the_semantic_check_catches_an_edit_that_means_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a tomlkit bug: the text comes back without the planned entry.
    monkeypatch.setattr(manifest, "_tomlkit_apply", lambda doc, op: [])
    with pytest.raises(ManifestVerificationError, match="does not mean what was planned"):
        edit_manifest('[package]\nname = "x"\n', plan_socket_dependency(PROFILE), path_for_errors="Cargo.toml")


def test_file_changes_treat_a_missing_config_file_as_empty(tmp_path: Path) -> None:
    config = tmp_path / ".cargo" / "config.toml"
    edit = FileChanges(config, tuple(plan_wasm_rustflags(PROFILE, ["wasmedge"]))).edit()
    assert edit.original == "" and tomllib.loads(edit.text) == {
        "target": {f"cfg({GATE})": {"rustflags": ["--cfg", "wasmedge"]}}
    }
    assert not config.exists()  # editing is in memory; writing belongs to the git transaction


# ---------------------------------------------------------------------------
# Version requirements and target tables
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "yes", "no"),
    [
        ("1.2", ["1.2.0", "1.9.3"], ["1.1.9", "2.0.0"]),
        ("0.4", ["0.4.0", "0.4.9"], ["0.5.0", "0.3.9"]),
        ("0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~0.4.3", ["0.4.3", "0.4.7"], ["0.4.2", "0.5.0"]),
        ("=1.36.0", ["1.36.0"], ["1.36.1"]),
        (">=0.4.7, <0.6.0", ["0.4.7", "0.5.7"], ["0.4.6", "0.6.0"]),
        ("1.*", ["1.0.0", "1.99.0"], ["2.0.0"]),
        ("*", ["0.0.1", "7.0.0"], ["1.0.0-alpha"]),
        ("1.0.0-alpha", ["1.0.0-alpha", "1.0.0-beta", "1.0.0"], ["0.9.0"]),
    ],
)
def test_version_requirements_follow_cargo(req: str, yes: list[str], no: list[str]) -> None:
    requirement = VersionReq.parse(req)
    assert [v for v in yes if requirement.matches(v)] == yes
    assert [v for v in no if requirement.matches(v)] == []


def test_requirement_within_judges_by_the_lowest_version() -> None:
    assert requirement_within("0.5.4", "0.5")
    assert requirement_within("=0.5.3", "0.5")
    assert not requirement_within("0", "0.5")  # the semver trap of the redis hand-port
    assert not requirement_within("0.4", "0.5")
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, True),
        (f"cfg({GATE})", True),
        (f"cfg(not({GATE}))", False),
        ('cfg(target_os = "wasi")', True),
        ("cfg(unix)", False),
        ('cfg(any(unix, target_arch = "wasm32"))', True),
        ('cfg(target_env = "p1")', None),  # rustc 1.63 sets "", newer ones "p1"
        ('cfg(feature = "tls")', None),
        ("wasm32-wasip1", True),
        ("x86_64-unknown-linux-gnu", False),
    ],
)
def test_which_target_tables_apply_to_the_wasi_build(key: str | None, expected: bool | None) -> None:
    assert target_applies_to_wasm(key) is expected


# ---------------------------------------------------------------------------
# With cargo: the gate table and [patch] entries as cargo resolves them
# ---------------------------------------------------------------------------


def host_triple() -> str:
    output = subprocess.run([str(DEBIAN_RUSTC), "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("host: "))


def resolved_names(manifest_path: Path, cargo: OfflineCargo, platform: str) -> set[str]:
    metadata, _ = cargo_metadata(manifest_path, cargo.env(), filter_platform=platform)
    return {p["name"] for p in metadata["packages"] if any(n["id"] == p["id"] for n in metadata["resolve"]["nodes"])}


def write_crate(root: Path, manifest_text: str, lib: str = "") -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(manifest_text)
    (root / "src" / "lib.rs").write_text(lib)
    return root / "Cargo.toml"


@pytest.mark.cargo
def test_cargo_takes_the_socket_crate_for_the_wasm_target_only(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    crate = write_crate(
        tmp_path / "ported",
        toml("""
        [package]
        name = "ported"
        version = "0.1.0"
        edition = "2021"

        [dependencies]
        itoa = "1"
    """),
    )
    crate.write_text(apply_changes(crate.read_text(), plan_socket_dependency(PROFILE), path_for_errors=str(crate)))
    assert "wasmedge_wasi_socket" in resolved_names(crate, offline_cargo, "wasm32-wasi")
    native = resolved_names(crate, offline_cargo, host_triple())
    assert "wasmedge_wasi_socket" not in native and "itoa" in native


def run_wasi(module: Path, tmp_path: Path) -> str:
    from wasmtime import Engine, Linker, Module, Store, WasiConfig

    engine = Engine()
    linker = Linker(engine)
    linker.define_wasi()
    store = Store(engine)
    config = WasiConfig()
    config.stdout_file = str(tmp_path / "stdout.txt")
    store.set_wasi(config)
    linker.instantiate(store, Module.from_file(engine, str(module))).exports(store)["_start"](store)
    return (tmp_path / "stdout.txt").read_text()


@pytest.mark.cargo
def test_cargo_passes_the_rustflags_to_the_wasm_build_only(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    crate = tmp_path / "flags"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "flags"\nversion = "0.1.0"\nedition = "2021"\n')
    (crate / "src" / "main.rs").write_text('fn main() {\n    println!("wasmedge={}", cfg!(wasmedge));\n}\n')
    config = FileChanges(crate / ".cargo" / "config.toml", tuple(plan_wasm_rustflags(PROFILE, ["wasmedge"])))
    config.path.parent.mkdir()
    config.path.write_text(config.edit().text)

    def build(*target: str) -> None:
        command = [str(DEBIAN_CARGO), "build", "--offline", *target]
        done = subprocess.run(command, cwd=crate, env=offline_cargo.env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    build()
    native = subprocess.run([str(offline_cargo.target_dir / "debug" / "flags")], capture_output=True, text=True)
    assert native.stdout == "wasmedge=false\n"
    build("--target", "wasm32-wasi")
    assert run_wasi(offline_cargo.target_dir / "wasm32-wasi" / "debug" / "flags.wasm", tmp_path) == "wasmedge=true\n"


def consumer_of_socket2(tmp_path: Path) -> Path:
    return write_crate(
        tmp_path / "app",
        toml("""
        [package]
        name = "app"
        version = "0.1.0"
        edition = "2021"

        [dependencies]
        hyper = { version = "0.14", default-features = false, features = ["client", "http1", "tcp"] }
    """),
    )


def local_copy(crate: str, destination: Path, *, version: str | None = None) -> Path:
    """A path copy of one of Debian's crates (what `wasiport apply` ports), maybe re-versioned."""
    shutil.copytree(DEBIAN_REGISTRY / crate, destination, symlinks=False)
    (destination / ".cargo-checksum.json").unlink(missing_ok=True)
    if version is not None:
        manifest_path = destination / "Cargo.toml"
        data = manifest_path.read_text()
        current = tomllib.loads(data)["package"]["version"]
        manifest_path.write_text(data.replace(f'version = "{current}"', f'version = "{version}"', 1))
    return destination


def add_patch(consumer: Path, name: str, crate_dir: Path) -> None:
    """A `[patch]` path entry, as users write them (wasiport's own ports: see below)."""
    relative = Path(os.path.relpath(crate_dir, consumer.parent)).as_posix()
    patch = AddPatch(name, DependencySpec(path=relative))
    consumer.write_text(apply_changes(consumer.read_text(), [patch], path_for_errors=str(consumer)))


def add_port(consumer: Path, name: str, version: str, crate_dir: Path) -> None:
    """What `wasiport apply` writes for a ported copy: a crate of the ports registry."""
    consumer.write_text(
        apply_changes(
            consumer.read_text(), plan_consumer_patch(consumer, name, version, crate_dir), path_for_errors=str(consumer)
        )
    )
    config = consumer.parent / ".cargo" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(apply_changes("", plan_ports_source(consumer, crate_dir), path_for_errors=str(config)))
    expose_port(crate_dir)


@pytest.mark.cargo
def test_a_port_from_the_ports_registry_is_reported_as_used_offline(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    consumer = consumer_of_socket2(tmp_path)
    add_port(consumer, "socket2", "0.4.4", local_copy("socket2-0.4.4", tmp_path / "app" / "wasiport" / "socket2-0.4.4"))
    check = verify_patch_used(consumer, ["socket2"], offline_cargo.env())
    assert check.ok and check.patches[0].version == "0.4.4"
    lock = tomllib.loads((consumer.parent / "Cargo.lock").read_text())
    [port] = [p for p in lock["package"] if p["name"] == "socket2"]
    assert port["source"] == "registry+https://wasiport.invalid/ports" and "checksum" not in port


@pytest.mark.cargo
def test_a_patch_cargo_takes_is_reported_as_used(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    consumer = consumer_of_socket2(tmp_path)
    add_patch(consumer, "socket2", local_copy("socket2-0.4.4", tmp_path / "ported" / "socket2"))
    assert 'socket2 = { path = "../ported/socket2" }' in consumer.read_text()
    check = verify_patch_used(consumer, ["socket2"], offline_cargo.env())
    assert check.ok and check.patches[0].version == "0.4.4"
    check.raise_if_unused()
    lock = tomllib.loads((consumer.parent / "Cargo.lock").read_text())
    assert "unused" not in lock.get("patch", {})


@pytest.mark.cargo
def test_a_patch_with_an_incompatible_version_is_an_error_with_the_requirement(
    tmp_path: Path, offline_cargo: OfflineCargo
) -> None:
    consumer = consumer_of_socket2(tmp_path)
    # The WasmEdge fork of socket2 is 0.5.x; hyper 0.14.19 asks for socket2 ^0.4.
    add_patch(consumer, "socket2", local_copy("socket2-0.4.4", tmp_path / "fork" / "socket2", version="0.5.7"))
    check = verify_patch_used(consumer, ["socket2"], offline_cargo.env())
    [unused] = check.unused
    assert unused.version == "0.5.7"
    # hyper's own requirement, and tokio's (its native `net` pulls socket2 in); tokio's
    # dev-dependency on socket2 is never built, so it is not a reason.
    assert (
        unused.reason
        == "the patch's version 0.5.7 does not meet the requirement (hyper requires ^0.4, tokio requires ^0.4.4)"
    )
    with pytest.raises(UserError, match=r"\[patch\] socket2 0\.5\.7: the patch's version 0\.5\.7 does not meet"):
        check.raise_if_unused()


@pytest.mark.cargo
def test_a_patch_behind_a_locked_version_names_the_cargo_update_fix(
    tmp_path: Path, offline_cargo: OfflineCargo
) -> None:
    consumer = consumer_of_socket2(tmp_path)
    cargo_metadata(consumer, offline_cargo.env())  # Cargo.lock now pins socket2 0.4.4
    add_patch(consumer, "socket2", local_copy("socket2-0.4.4", tmp_path / "ported" / "socket2", version="0.4.9"))
    [unused] = verify_patch_used(consumer, ["socket2"], offline_cargo.env()).unused
    assert "Cargo.lock pins socket2 0.4.4" in unused.reason and "cargo update -p socket2" in unused.reason


@pytest.mark.cargo
def test_a_patch_for_a_crate_outside_the_graph_is_unused(tmp_path: Path, offline_cargo: OfflineCargo) -> None:
    consumer = consumer_of_socket2(tmp_path)
    net2 = write_crate(tmp_path / "net2", '[package]\nname = "net2"\nversion = "0.2.38"\n').parent
    add_patch(consumer, "net2", net2)
    [unused] = verify_patch_used(consumer, ["net2"], offline_cargo.env()).unused
    assert "no crate in the dependency graph depends on `net2`" in unused.reason


@pytest.mark.cargo
def test_a_patch_whose_key_is_not_the_package_name_fails_with_cargos_reason(
    tmp_path: Path, offline_cargo: OfflineCargo
) -> None:
    consumer = consumer_of_socket2(tmp_path)
    add_patch(consumer, "sockets2", local_copy("socket2-0.4.4", tmp_path / "ported" / "socket2"))
    with pytest.raises(UserError, match="does not appear to contain any packages matching the name `sockets2`"):
        verify_patch_used(consumer, ["sockets2"], offline_cargo.env())


def test_cargo_errors_become_user_errors_naming_the_manifest(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "Cargo.toml"
    with pytest.raises(UserError) as raised:
        run_cargo(["metadata"], manifest_path=missing, env={"PATH": "/nonexistent"})
    assert "cargo was not found" in str(raised.value)


# ---------------------------------------------------------------------------
# Real manifests: every Cargo.toml in Debian's crate registry
# ---------------------------------------------------------------------------


def header_table_lines(text: str, dotted: str) -> list[str]:
    lines = text.splitlines()
    if f"[{dotted}]" not in lines:
        return []
    start = lines.index(f"[{dotted}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def debian_manifests() -> list[Path]:
    """Every other manifest of Debian's registry (all of them pass; half keep the suite lean)."""
    return sorted(DEBIAN_REGISTRY.glob("*/Cargo.toml"))[::2] if DEBIAN_REGISTRY.is_dir() else []


@pytest.mark.skipif(not debian_manifests(), reason="Debian's crate registry is not installed (see .ci/run)")
def test_every_debian_manifest_takes_the_port_edits_without_losing_a_line() -> None:
    """cargo-normalised manifests: `[dependencies.x]` header tables, `[target."cfg(..)".x]`,
    badges, [[bench]] arrays. Each edit must verify, repeat as a no-op and keep every line."""
    checked = 0
    for path in debian_manifests():
        text = path.read_text()
        first_dependency = next(iter(tomllib.loads(text).get("dependencies", {})), None)
        changes = [
            *plan_socket_dependency(PROFILE),
            AddPatch("socket2", DependencySpec(path="../ported/socket2")),
        ]
        if first_dependency is not None:
            changes += [
                MoveDependency(first_dependency, DepTable(), NOT_GATE_TABLE),
                SetDependency(
                    GATE_TABLE, first_dependency, DependencySpec(package=f"{first_dependency}_wasi", version="1")
                ),
            ]
        edit = edit_manifest(text, changes, path_for_errors=str(path))
        assert edit_manifest(edit.text, changes, path_for_errors=str(path)).text == edit.text, path
        gone = Counter(line for line in text.splitlines() if line.strip()) - Counter(edit.text.splitlines())
        # only a moved `[dependencies.x]` header table goes (it comes back as an inline table)
        assert sorted(gone.elements()) == sorted(header_table_lines(text, f"dependencies.{first_dependency}")), path
        checked += 1
    assert checked > 50
