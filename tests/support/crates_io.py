"""Real crates from crates.io for an old cargo that cannot read today's index.

Debian's cargo 1.63 predates crates.io's sparse index, so it cannot fetch anything itself.
A newer cargo (rustup's, or the 1.96 toolchain `.ci/modern-toolchain` assembles) can: it resolves
the project with the *old* rustc in mind (`incompatible-rust-versions = "fallback"` with `RUSTC`
pointing at the old compiler picks, for every crate, the newest release that compiler can
build), then `cargo vendor`s what it locked into a directory. The old cargo builds offline from
that directory as a cargo directory source.

    source = vendor_for_old_cargo(project_dir, tmp / "vendor", cargo_home=tmp / "home")
    (project_dir / ".cargo").mkdir()
    (project_dir / ".cargo" / "config.toml").write_text(source.config)
    # then: /usr/bin/cargo build --offline (Debian's cargo 1.63)

A lockfile of version 4 (written when the project declares no old `rust-version`) is deleted:
cargo 1.63 cannot read it, and resolving again against the vendored directory, which holds
exactly the locked versions, picks the same ones.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEBIAN_RUSTC = Path("/usr/bin/rustc")
MODERN_PREFIX_VARIABLE = "WASIPORT_MODERN_PREFIX"
DEFAULT_MODERN_PREFIX = Path("/opt/wasiport-rust-1.96")
CARGO_TIMEOUT = 600


@dataclass(frozen=True)
class VendoredSource:
    """A directory source of real crates.io crates, and the cargo configuration that uses it."""

    directory: Path

    @property
    def config(self) -> str:
        """`config.toml` text: crates.io replaced by the directory, and no network."""
        return (
            "[source.crates-io]\n"
            'replace-with = "vendored-crates-io"\n'
            "[source.vendored-crates-io]\n"
            f'directory = "{self.directory}"\n'
            "[net]\n"
            "offline = true\n"
        )

    def crates(self) -> set[str]:
        """The vendored `name-version` directories."""
        return {entry.name for entry in self.directory.iterdir() if entry.is_dir()}


def modern_prefix() -> Path:
    """Where `.ci/modern-toolchain` assembled rustc/cargo 1.96 (it may not exist)."""
    return Path(os.environ.get(MODERN_PREFIX_VARIABLE) or DEFAULT_MODERN_PREFIX)


def newer_cargo() -> Path | None:
    """A cargo that speaks crates.io's sparse index: rustup's, else the 1.96 one; None if neither."""
    candidates = (Path.home() / ".cargo" / "bin" / "cargo", modern_prefix() / "usr" / "bin" / "cargo")
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


class CratesIoError(RuntimeError):
    """A newer cargo could not resolve or vendor the project (the message has its stderr)."""


def vendor_for_old_cargo(
    project: Path,
    into: Path,
    *,
    cargo_home: Path,
    old_rustc: Path = DEBIAN_RUSTC,
    cargo: Path | None = None,
) -> VendoredSource:
    """Resolve `project` (a directory with Cargo.toml) for `old_rustc` and vendor into `into`.

    `cargo_home` is the newer cargo's own CARGO_HOME (its index and download cache; reuse one
    across calls to download each crate once). `cargo` defaults to `newer_cargo()`.
    Raises CratesIoError when no newer cargo exists or cargo fails."""
    cargo = cargo or newer_cargo()
    if cargo is None:
        raise CratesIoError("no cargo newer than 1.68 found (rustup's ~/.cargo/bin/cargo or .ci/modern-toolchain's)")
    cargo_home.mkdir(parents=True, exist_ok=True)
    env = _resolving_env(cargo_home, old_rustc)
    _run_cargo([str(cargo), "generate-lockfile"], project, env)
    _run_cargo([str(cargo), "vendor", "--versioned-dirs", str(into)], project, env)
    _drop_lockfile_newer_than_v3(project / "Cargo.lock")
    return VendoredSource(into.resolve())


def _resolving_env(cargo_home: Path, old_rustc: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CARGO_HOME=str(cargo_home),
        RUSTC=str(old_rustc),
        CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS="fallback",
        CARGO_REGISTRIES_CRATES_IO_PROTOCOL="sparse",
        CARGO_TERM_COLOR="never",
    )
    for variable in ("RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR", "CARGO"):
        env.pop(variable, None)
    return env


def _run_cargo(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=CARGO_TIMEOUT)
    if done.returncode != 0:
        raise CratesIoError(f"`{' '.join(argv[1:3])}` failed in {cwd}:\n{done.stderr[-4000:]}")


def _drop_lockfile_newer_than_v3(lockfile: Path) -> None:
    if not lockfile.is_file():
        return
    for line in lockfile.read_text(encoding="utf-8").splitlines():
        if line.startswith("version = "):
            if int(line.split("=", 1)[1].strip() or 0) > 3:
                lockfile.unlink()
            return
