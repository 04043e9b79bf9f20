"""crates.io crates for rustc 1.63: resolved and vendored by a modern cargo, built offline.

Debian's cargo 1.63 cannot read crates.io's sparse index, and the newest releases of many crates
need a newer rustc. So a modern cargo (rustup's, which speaks the sparse index) resolves the
crates a test needs with MSRV-aware resolution (`rust-version` of the scratch crate = the rustc
that will build them), a few known crates are pinned below that, and `cargo vendor` copies them
into a directory source. Debian's cargo then builds from that directory offline, through the
`CARGO_HOME/config.toml` of an `OfflineCargo`, as the other tests do.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.offline_cargo import DEBIAN_RUSTC, OfflineCargo

MODERN_CARGO = Path.home() / ".cargo" / "bin" / "cargo"

# Crates whose newest release builds on a newer rustc than it declares (or declares none):
# wasmedge_wasi_socket 0.5.5 and mio_wasi 0.8.8/0.8.9 use `std::os::fd` (Rust 1.66).
RUSTC_163_PINS = {"wasmedge_wasi_socket": "0.5.4", "mio_wasi": "0.8.7"}


def modern_cargo_available() -> bool:
    return MODERN_CARGO.exists()


def _run(cargo_args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        [str(MODERN_CARGO), *cargo_args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"cargo {' '.join(cargo_args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _scratch_manifest(dependencies: dict[str, str], rust_version: str) -> str:
    lines = [
        "[package]",
        'name = "vendored-set"',
        'version = "0.0.0"',
        'edition = "2021"',
        f'rust-version = "{rust_version}"',
        "",
        "[dependencies]",
    ]
    lines += [f"{key} = {spec}" for key, spec in dependencies.items()]
    return "\n".join(lines) + "\n"


def vendor_crates(
    dependencies: dict[str, str],
    root: Path,
    *,
    pins: dict[str, str] = RUSTC_163_PINS,
    rust_version: str = "1.63",
) -> OfflineCargo:
    """Resolve `dependencies` (key -> TOML inline spec) on crates.io, vendor them under `root`.

    Returns an OfflineCargo whose directory source holds every crate of that resolution (for all
    targets), so any project depending on a subset of them builds offline with Debian's cargo.
    """
    scratch = root / "resolve"
    (scratch / "src").mkdir(parents=True, exist_ok=True)
    (scratch / "Cargo.toml").write_text(_scratch_manifest(dependencies, rust_version))
    (scratch / "src" / "lib.rs").write_text("")
    env = dict(os.environ)
    env.pop("RUSTUP_TOOLCHAIN", None)
    env.pop("CARGO_HOME", None)
    env.update(CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS="fallback", CARGO_TERM_COLOR="never")
    env.pop("CARGO", None)
    env.pop("RUSTC", None)
    _run(["generate-lockfile"], scratch, env)
    lock = (scratch / "Cargo.lock").read_text()
    for name, version in pins.items():
        if f'name = "{name}"' in lock:
            _run(["update", "-p", name, "--precise", version], scratch, env)
    registry = root / "registry"
    if registry.exists():
        shutil.rmtree(registry)
    _run(["vendor", "--versioned-dirs", str(registry)], scratch, env)
    home = root / "cargo-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        "[source.crates-io]\n"
        'replace-with = "vendored"\n'
        "[source.vendored]\n"
        f"directory = {str(registry)!r}\n"
        "[net]\n"
        "offline = true\n"
    )
    target_dir = root / "target"
    target_dir.mkdir(exist_ok=True)
    return OfflineCargo(home=home, registry=registry, target_dir=target_dir)


def debian_rustc_version() -> str:
    """`1.63` for Debian's rustc: the rust-version the vendored crates must build with."""
    done = subprocess.run([str(DEBIAN_RUSTC), "--version"], capture_output=True, text=True, check=True)
    major, minor = done.stdout.split()[1].split(".")[:2]
    return f"{major}.{minor}"
