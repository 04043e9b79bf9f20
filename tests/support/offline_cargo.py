"""An offline cargo environment for tests: Debian's crate sources plus our stand-ins.

crates.io is unreachable, so tests build against a cargo *directory source*:
a folder whose entries are Debian's crates (`/usr/share/cargo/registry/*`,
symlinked) and the stand-in crates written for the tests (`tests/standins/*`,
copied, each given the `.cargo-checksum.json` a directory source needs).
Cargo reads the source replacement from `$CARGO_HOME/config.toml`, so the
environment never touches a user's own cargo configuration.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
STANDINS = Path(__file__).resolve().parent.parent / "standins"
DEBIAN_CARGO = Path("/usr/bin/cargo")
DEBIAN_RUSTC = Path("/usr/bin/rustc")


@dataclass(frozen=True)
class OfflineCargo:
    home: Path  # CARGO_HOME holding config.toml
    registry: Path  # the directory source
    target_dir: Path  # shared build cache

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for running Debian's cargo offline against the test registry."""
        env = dict(os.environ)
        env.update(
            CARGO_HOME=str(self.home),
            CARGO=str(DEBIAN_CARGO),
            RUSTC=str(DEBIAN_RUSTC),
            CARGO_TARGET_DIR=str(self.target_dir),
            CARGO_TERM_COLOR="never",
        )
        env.pop("RUSTUP_TOOLCHAIN", None)
        env.update(extra)
        return env


def toolchain_available() -> bool:
    return DEBIAN_CARGO.exists() and DEBIAN_RUSTC.exists() and any(
        (Path("/usr/lib/rustlib") / t).is_dir() for t in ("wasm32-wasi", "wasm32-wasip1")
    )


def _package_checksum(crate_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in crate_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(crate_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def add_crate(registry: Path, crate_dir: Path) -> Path:
    """Copy a crate into the directory source as `<name>-<version>/` with its checksum file."""
    meta = tomllib.loads((crate_dir / "Cargo.toml").read_text())["package"]
    dest = registry / f"{meta['name']}-{meta['version']}"
    if dest.is_symlink() or dest.exists():
        if dest.is_symlink():
            dest.unlink()
        else:
            shutil.rmtree(dest)
    shutil.copytree(crate_dir, dest, ignore=shutil.ignore_patterns("target", "Cargo.lock", ".git"))
    checksum = {"package": _package_checksum(dest), "files": {}}
    (dest / ".cargo-checksum.json").write_text(json.dumps(checksum))
    return dest


def make_offline_cargo(root: Path) -> OfflineCargo:
    registry = root / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    if DEBIAN_REGISTRY.is_dir():
        for entry in DEBIAN_REGISTRY.iterdir():
            link = registry / entry.name
            if not link.exists():
                link.symlink_to(entry)
    if STANDINS.is_dir():
        for crate_dir in sorted(STANDINS.iterdir()):
            if (crate_dir / "Cargo.toml").is_file():
                add_crate(registry, crate_dir)
    home = root / "cargo-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        "[source.crates-io]\n"
        'replace-with = "offline-test-registry"\n'
        "[source.offline-test-registry]\n"
        f'directory = "{registry}"\n'
        "[net]\n"
        "offline = true\n"
    )
    target_dir = root / "target"
    target_dir.mkdir(exist_ok=True)
    return OfflineCargo(home=home, registry=registry, target_dir=target_dir)
