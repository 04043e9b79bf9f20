"""rustc/cargo 1.96 for wasm32-wasip1 (assembled by `.ci/modern-toolchain`), reaching crates.io.

The toolchain users have: a current rustc whose only WASI preview 1 target is `wasm32-wasip1`,
and a cargo that fetches real crates from crates.io's sparse index. Each test session gets a
private CARGO_HOME (its own index and download cache), so a user's cargo configuration never
leaks in and the tests never write to it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.support.crates_io import modern_prefix

WASM_TARGET = "wasm32-wasip1"


@dataclass(frozen=True)
class ModernCargo:
    prefix: Path  # the toolchain's prefix (bin/ and lib/ under usr/)
    home: Path  # CARGO_HOME of this session
    target_dir: Path  # shared build cache
    wasm_target: str = WASM_TARGET

    @property
    def cargo(self) -> Path:
        return self.prefix / "usr" / "bin" / "cargo"

    @property
    def rustc(self) -> Path:
        return self.prefix / "usr" / "bin" / "rustc"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for running cargo 1.96 (and wasiport, which takes $CARGO/$RUSTC first)."""
        env = dict(os.environ)
        env.update(
            CARGO_HOME=str(self.home),
            CARGO=str(self.cargo),
            RUSTC=str(self.rustc),
            CARGO_TARGET_DIR=str(self.target_dir),
            CARGO_TERM_COLOR="never",
            PATH=f"{self.cargo.parent}{os.pathsep}{env.get('PATH', '')}",
        )
        for variable in ("RUSTUP_TOOLCHAIN", "RUSTFLAGS", "CARGO_BUILD_TARGET"):
            env.pop(variable, None)
        env.update(extra)
        return env


def modern_toolchain_available(prefix: Path | None = None) -> bool:
    """cargo and rustc are there, and a std for wasm32-wasip1 was built into the prefix."""
    prefix = prefix or modern_prefix()
    std_dir = prefix / "usr" / "lib" / "rustlib" / WASM_TARGET / "lib"
    return (
        os.access(prefix / "usr" / "bin" / "cargo", os.X_OK)
        and os.access(prefix / "usr" / "bin" / "rustc", os.X_OK)
        and std_dir.is_dir()
        and any(p.name.startswith("libstd-") for p in std_dir.iterdir())
    )


def make_modern_cargo(root: Path, prefix: Path | None = None) -> ModernCargo:
    home = root / "cargo-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[registries.crates-io]\nprotocol = "sparse"\n')
    target_dir = root / "target"
    target_dir.mkdir(exist_ok=True)
    return ModernCargo(prefix=prefix or modern_prefix(), home=home, target_dir=target_dir)
