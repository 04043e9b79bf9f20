"""Toolchain discovery, cargo builds with structured diagnostics, tracing errors to
edits, and probe crates, all against real toolchains and real cargo builds."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.modern_cargo import ModernCargo
from tests.support.offline_cargo import OfflineCargo
from wasiport.cargo import BuildResult, Diagnostic, Toolchain, build, find_toolchain, map_diagnostics
from wasiport.cargo.probe import make_probe
from wasiport.cargo.toolchain import DEBIAN_INSTALL
from wasiport.errors import UserError
from wasiport.deps import wasm_target as graph_wasm_target
from wasiport.model import Edit, Profile
from wasiport.wasm import Verdict, inspect_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "build"

def fixture_crate(offline: OfflineCargo, name: str) -> Path:
    """A copy of a fixture crate at a fixed place per session, so that builds of it
    from different tests share the target dir's cache (and the repo stays clean)."""
    dest = offline.target_dir.parent / "fixtures" / name
    if not dest.exists():
        shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return dest


@pytest.fixture(scope="module")
def toolchain(offline_cargo: OfflineCargo) -> Toolchain:
    return find_toolchain(env=offline_cargo.env())


@pytest.fixture(scope="module")
def apps_build(offline_cargo: OfflineCargo, toolchain: Toolchain) -> tuple[BuildResult, list[str]]:
    lines: list[str] = []
    result = build(
        fixture_crate(offline_cargo, "apps") / "Cargo.toml",
        toolchain,
        target=toolchain.wasm_target,
        env=offline_cargo.env(),
        progress=lines.append,
    )
    return result, lines


# ---------------------------------------------------------------------------
# Toolchain discovery


def write_fake_rustc(directory: Path, *, version: str, targets: Sequence[str], sysroot: Path) -> Path:
    """A real program that answers rustc's queries like a toolchain with `targets`."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "rustc"
    target_lines = "\\n".join(targets)
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  -vV) printf 'rustc {version} (fake)\\nrelease: {version}\\n';;\n"
        f"  '--print target-list') printf '{target_lines}\\n';;\n"
        f"  '--print sysroot') echo '{sysroot}';;\n"
        "  *) echo 'fake rustc: unsupported' >&2; exit 1;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    cargo = directory / "cargo"
    cargo.write_text("#!/bin/sh\nexit 1\n")
    cargo.chmod(cargo.stat().st_mode | stat.S_IXUSR)
    return script


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment that sees no rustup, no cargo and no rustc unless `extra` says so."""
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "HOME": str(tmp_path)}
    env.update(extra)
    return env


@pytest.mark.cargo
def test_finds_debian_toolchain_named_by_cargo_env(toolchain: Toolchain) -> None:
    assert toolchain.wasm_target == "wasm32-wasi"
    assert toolchain.version_tuple[:2] == (1, 63)
    assert toolchain.rustc == Path("/usr/bin/rustc")
    assert "$CARGO" in toolchain.origin


@pytest.mark.cargo
def test_finds_debian_toolchain_in_system_dir_without_any_hint(offline_cargo: OfflineCargo, tmp_path: Path) -> None:
    found = find_toolchain(env=isolated_env(tmp_path))
    assert found.cargo == Path("/usr/bin/cargo")
    assert found.wasm_target == "wasm32-wasi"
    assert "/usr/bin" in found.origin


def test_missing_toolchain_lists_attempts_and_install_commands(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, CARGO="/nowhere/cargo", RUSTC="/nowhere/rustc")
    with pytest.raises(UserError) as caught:
        find_toolchain(env=env, system_bins=(tmp_path / "no-bin",))
    err = caught.value
    assert "no Rust toolchain that can build for wasm32-wasip1 or wasm32-wasi" in err.message
    assert "$RUSTC=/nowhere/rustc" in err.message and "rustc not found" in err.message
    assert f"system packages in {tmp_path / 'no-bin'}" in err.message
    assert "rustup target add wasm32-wasip1" in err.hint
    assert DEBIAN_INSTALL in err.hint


def test_rustc_without_wasm_target_is_rejected_with_the_reason(tmp_path: Path) -> None:
    rustc = write_fake_rustc(
        tmp_path / "fake", version="1.99.0", targets=["x86_64-unknown-linux-gnu"], sysroot=tmp_path / "sysroot"
    )
    with pytest.raises(UserError) as caught:
        find_toolchain(env=isolated_env(tmp_path, RUSTC=str(rustc)), system_bins=())
    message = caught.value.message
    assert "rustc 1.99.0" in message
    assert "knows neither wasm32-wasip1 nor wasm32-wasi" in message


def test_target_needs_installed_std_and_wasip1_is_preferred(tmp_path: Path) -> None:
    sysroot = tmp_path / "sysroot"
    rustc = write_fake_rustc(
        tmp_path / "fake", version="1.80.0", targets=["wasm32-wasi", "wasm32-wasip1"], sysroot=sysroot
    )
    env = isolated_env(tmp_path, RUSTC=str(rustc))
    with pytest.raises(UserError) as caught:
        find_toolchain(env=env, system_bins=())
    assert "has no std installed for wasm32-wasip1 or wasm32-wasi" in caught.value.message

    for target in ("wasm32-wasi", "wasm32-wasip1"):
        lib = sysroot / "lib" / "rustlib" / target / "lib"
        lib.mkdir(parents=True)
        (lib / "libstd-0123.rlib").write_bytes(b"")
    found = find_toolchain(env=env, system_bins=())
    assert (found.wasm_target, found.version) == ("wasm32-wasip1", "1.80.0")


@pytest.fixture
def rustup_home(tmp_path: Path) -> dict[str, str]:
    """A private RUSTUP_HOME whose default toolchain has no wasm target and which also
    links Debian's toolchain as `debian`."""
    rustup = shutil.which("rustup")
    if rustup is None:
        pytest.skip("rustup is not installed")
    home = tmp_path / "rustup-home"
    fake_root = tmp_path / "nowasm-toolchain"
    write_fake_rustc(fake_root / "bin", version="1.99.0", targets=["x86_64-unknown-linux-gnu"], sysroot=fake_root)
    (fake_root / "lib").mkdir()
    env = isolated_env(tmp_path, RUSTUP_HOME=str(home), RUST_BACKTRACE="0")
    env["PATH"] = f"{Path(rustup).parent}{os.pathsep}{env['PATH']}"
    for argv in (["toolchain", "link", "nowasm", str(fake_root)], ["default", "nowasm"]):
        subprocess.run([rustup, *argv], env=env, check=True, capture_output=True)
    env["WASIPORT_TEST_RUSTUP"] = rustup
    return env


def link_debian(env: dict[str, str]) -> None:
    subprocess.run(
        [env["WASIPORT_TEST_RUSTUP"], "toolchain", "link", "debian", "/usr"], env=env, check=True, capture_output=True
    )


@pytest.mark.cargo
def test_rustup_active_toolchain_without_wasm_falls_through_to_another(
    offline_cargo: OfflineCargo, rustup_home: dict[str, str]
) -> None:
    link_debian(rustup_home)
    found = find_toolchain(env=rustup_home, system_bins=())
    assert found.rustup_toolchain == "debian"
    assert found.origin == "rustup toolchain debian"
    assert found.wasm_target == "wasm32-wasi"
    assert find_toolchain("+debian", env=rustup_home, system_bins=()).origin == "rustup toolchain debian (requested)"


def test_rustup_without_wasm_anywhere_names_the_active_toolchain(rustup_home: dict[str, str]) -> None:
    with pytest.raises(UserError) as caught:
        find_toolchain(env=rustup_home, system_bins=())
    assert "rustup toolchain nowasm (active)" in caught.value.message
    assert "knows neither" in caught.value.message
    with pytest.raises(UserError) as requested:
        find_toolchain("+absent", env=rustup_home, system_bins=())
    assert "rustup toolchain absent is not installed" in requested.value.message


# ---------------------------------------------------------------------------
# Builds


@pytest.mark.cargo
def test_wasm_build_lists_modules_and_rlibs_and_reports_progress(apps_build: tuple[BuildResult, list[str]]) -> None:
    result, lines = apps_build
    assert result.ok, result.failure_summary()
    assert sorted(p.name for p in result.wasm_modules) == ["sockabi_app.wasm", "stdnet_app.wasm"]
    assert all(p.is_file() and p.read_bytes()[:4] == b"\0asm" for p in result.wasm_modules)
    assert result.rlib_of("stdnet_app") is not None and result.rlib_of("stdnet_app").is_file()
    assert "--message-format=json" in result.command
    assert "wasm32-wasi" in result.command
    assert "Compiling stdnet_app v0.1.0" in lines or any(line.startswith("Finished") for line in lines)


@pytest.mark.cargo
def test_native_build_makes_host_programs(offline_cargo: OfflineCargo, toolchain: Toolchain) -> None:
    result = build(fixture_crate(offline_cargo, "apps") / "Cargo.toml", toolchain, target=None, env=offline_cargo.env())
    assert result.ok, result.failure_summary()
    assert result.wasm_modules == ()
    programs = [a.executable for a in result.artifacts if a.executable is not None]
    assert sorted(p.name for p in programs) == ["sockabi_app", "stdnet_app"]
    run = subprocess.run([str(p) for p in programs if p.name == "sockabi_app"], capture_output=True, text=True)
    assert "errno 58" in run.stderr  # the native fallback of the fixture, really executed


def apply_edits(text: bytes, edits: Sequence[Edit]) -> bytes:
    """Splice edits (original byte offsets) into the text, last first."""
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.replacement.encode() + text[edit.end :]
    return text


def edit_replacing(path: str, text: bytes, old: str, new: str) -> Edit:
    start = text.index(old.encode())
    return Edit(path, start, start + len(old.encode()), new)


@pytest.fixture(scope="module")
def broken_port(offline_cargo: OfflineCargo, toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory):
    """portme rewritten by three edits, as a port would: the build fails."""
    crate = tmp_path_factory.mktemp("broken") / "portme"
    shutil.copytree(FIXTURES / "portme", crate)
    source = crate / "src" / "lib.rs"
    original = source.read_bytes()
    edits = [
        edit_replacing("src/lib.rs", original, "use std::io;\n", "use std::io;\nuse std::fmt;\n"),
        edit_replacing("src/lib.rs", original, "6379", '"6379"'),
        edit_replacing("src/lib.rs", original, "fn port()", "fn default_port()"),
    ]
    rules = ["test/add-import", "test/quote-port", "test/rename-port"]
    source.write_bytes(apply_edits(original, edits))
    result = build(crate / "Cargo.toml", toolchain, target=toolchain.wasm_target, env=offline_cargo.env())
    return crate, source.read_bytes(), edits, rules, result


@pytest.mark.cargo
def test_type_error_becomes_a_structured_diagnostic(broken_port) -> None:
    crate, rewritten, _, _, result = broken_port
    assert not result.ok
    mismatch = next(d for d in result.errors if d.code == "E0308")
    start = rewritten.index(b'"6379"')
    assert mismatch.file == str(crate / "src" / "lib.rs")
    assert (mismatch.byte_start, mismatch.byte_end) == (start, start + len(b'"6379"'))
    assert mismatch.line == rewritten.count(b"\n", 0, start) + 1
    assert mismatch.column == start - rewritten.rindex(b"\n", 0, start)
    assert mismatch.message == "mismatched types" and "error[E0308]" in mismatch.rendered
    assert mismatch.package == "portme"
    assert not any(d.message.startswith("aborting due to") for d in result.diagnostics)
    assert "lib.rs" in result.failure_summary()


@pytest.mark.cargo
def test_errors_are_traced_to_the_rules_that_rewrote_the_code(broken_port) -> None:
    crate, _, edits, rules, result = broken_port
    traced = {a.diagnostic.code: a for a in map_diagnostics(result.diagnostics, edits, rules, root=crate)}
    assert (traced["E0308"].relation, traced["E0308"].rule_id) == ("inside", "test/quote-port")
    assert traced["E0308"].edit == edits[1]
    assert (traced["unused_imports"].relation, traced["unused_imports"].rule_id) == ("inside", "test/add-import")
    # The call site `port()` was left alone by the rename: the error is outside any rewrite.
    assert traced["E0425"].relation == "outside" and traced["E0425"].rule_id is None


def test_same_line_and_shifted_offsets_without_a_build(tmp_path: Path) -> None:
    original = b"let a = 1;\nlet b = 2; let c = 3;\n"
    widen = Edit("x.rs", 0, 3, "let mut")  # shifts everything after it by 4 bytes
    value = Edit("x.rs", original.index(b"2"), original.index(b"2") + 1, "\u00e9\u00e9")  # 4 bytes in UTF-8
    rewritten = apply_edits(original, [widen, value])
    (tmp_path / "x.rs").write_bytes(rewritten)
    value_at = rewritten.index("\u00e9".encode())
    c_at = rewritten.index(b"c =")

    def diag(start: int, end: int) -> Diagnostic:
        return Diagnostic("error", "x", "", file=str(tmp_path / "x.rs"), line=2, end_line=2, byte_start=start, byte_end=end)

    attributed = map_diagnostics(
        [diag(value_at + 2, value_at + 3), diag(c_at, c_at + 1), diag(value_at + 4, value_at + 5)],
        [widen, value],
        ["r/mut", "r/value"],
        root=tmp_path,
    )
    assert [(a.relation, a.rule_id) for a in attributed] == [
        ("inside", "r/value"),
        ("same-line", "r/value"),
        ("same-line", "r/value"),  # the `;` right after the replacement is not inside it
    ]


@pytest.mark.cargo
def test_unresolvable_dev_dependency_fails_a_direct_build(offline_cargo: OfflineCargo, toolchain: Toolchain) -> None:
    """Why probes exist: the library's own manifest does not resolve offline."""
    result = build(fixture_crate(offline_cargo, "netlib") / "Cargo.toml", toolchain,
                   target=toolchain.wasm_target, env=offline_cargo.env())
    assert not result.ok
    assert result.diagnostics == ()
    assert "wasiport-fixture-absent" in result.failure_summary()


@pytest.mark.cargo
def test_missing_manifest_is_a_user_error(toolchain: Toolchain, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no Cargo.toml"):
        build(tmp_path / "Cargo.toml", toolchain, target=toolchain.wasm_target)


# ---------------------------------------------------------------------------
# Probe crates


@pytest.mark.parametrize(
    ("features", "verdict"),
    [((), Verdict.NOT_PORTED), (("wasmedge",), Verdict.PORTED)],
    ids=["std-net", "wasmedge"],
)
@pytest.mark.cargo
def test_probe_builds_the_library_offline_for_wasm(
    offline_cargo: OfflineCargo, toolchain: Toolchain, tmp_path: Path, features: tuple[str, ...], verdict: Verdict
) -> None:
    crate = fixture_crate(offline_cargo, "netlib")
    manifest = make_probe(crate, "netlib", "net_lib", features=features, into=tmp_path / "probe")
    assert "extern crate net_lib as _;" in (tmp_path / "probe" / "src" / "main.rs").read_text()
    assert str(crate / "socket") in manifest.read_text()  # the [patch] came along, absolute

    result = build(manifest, toolchain, target=toolchain.wasm_target, env=offline_cargo.env())
    assert result.ok, result.failure_summary() + "\n" + result.stderr
    [module] = result.wasm_modules
    assert inspect_file(module).verdict is Verdict.NO_NETWORKING  # main() uses nothing
    library = result.rlib_of("netlib")
    assert library is not None
    assert inspect_file(library).verdict is verdict


@pytest.mark.cargo
def test_build_past_its_time_limit_is_stopped(offline_cargo: OfflineCargo, toolchain: Toolchain, tmp_path: Path) -> None:
    crate = tmp_path / "portme"
    shutil.copytree(FIXTURES / "portme", crate)
    result = build(crate / "Cargo.toml", toolchain, target=toolchain.wasm_target, env=offline_cargo.env(),
                   target_dir=tmp_path / "target", timeout=0.05)
    assert not result.ok and result.timed_out
    assert "time limit" in result.failure_summary()


@pytest.mark.cargo
def test_builds_and_the_dependency_graph_choose_the_same_target(
    offline_cargo: OfflineCargo, modern_cargo: ModernCargo, tmp_path: Path
) -> None:
    """Modern first: rustc 1.96 builds for wasm32-wasip1, Debian's 1.63 (which lacks it) for
    wasm32-wasi, and `check --deps` resolves the graph for the same target as the build."""
    for env, expected in ((modern_cargo.env(), "wasm32-wasip1"), (offline_cargo.env(), "wasm32-wasi")):
        found = find_toolchain(env=env, system_bins=())
        assert (found.wasm_target, graph_wasm_target(Profile(), env)) == (expected, expected)


def test_a_rustc_that_knows_no_wasi_target_is_one_sentence_with_the_fix(tmp_path: Path) -> None:
    rustc = write_fake_rustc(tmp_path / "fake", version="1.20.0", targets=["x86_64-unknown-linux-gnu"], sysroot=tmp_path)
    env = isolated_env(tmp_path, RUSTC=str(rustc))
    with pytest.raises(UserError) as from_build:
        find_toolchain(env=env, system_bins=())
    with pytest.raises(UserError) as from_graph:
        graph_wasm_target(Profile(), env)
    for message in (from_build.value.message, from_graph.value.message):
        assert "\n" not in message
        assert "knows neither wasm32-wasip1 nor wasm32-wasi: use Rust 1.78 or newer" in message
        assert "rustc 1.20.0" in message
