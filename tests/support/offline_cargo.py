"""An offline cargo environment for tests: Debian's crate sources plus the real socket crate.

Debian's cargo 1.63 builds against a cargo *directory source*: a folder whose entries are
Debian's crates (`/usr/share/cargo/registry/*`, symlinked) and the real `wasmedge_wasi_socket`
releases a port of 1.63-era code uses (0.5.4 and 0.4.3), vendored from crates.io once per test
session by a newer cargo (`tests.support.crates_io`) together with the dependencies Debian
lacks. Cargo reads the source replacement from `$CARGO_HOME/config.toml`, so the environment
never touches a user's own cargo configuration, and the builds themselves never go online:
the offline path users take with vendored crates.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tests.support.crates_io import DEBIAN_RUSTC, VendoredSource, vendor_for_old_cargo

DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
# The socket crate releases a port writes for rustc 1.63 (0.5.5 and later need 1.66).
SOCKET_CRATE_RELEASES = ("0.5.4", "0.4.3")
DEBIAN_CARGO = Path("/usr/bin/cargo")


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
    add_vendored(registry, socket_crates_of_this_session())
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


@functools.cache
def socket_crates_of_this_session() -> VendoredSource:
    """`vendor_socket_crates`, once per test process (every offline registry links to it)."""
    return vendor_socket_crates(Path(tempfile.mkdtemp(prefix="wasiport-socket-crates-")))


def vendor_socket_crates(root: Path) -> VendoredSource:
    """The real wasmedge_wasi_socket releases of SOCKET_CRATE_RELEASES and their dependencies,
    resolved for Debian's rustc and vendored from crates.io."""
    project = root / "resolve"
    (project / "src").mkdir(parents=True, exist_ok=True)
    (project / "src" / "lib.rs").write_text("")
    requirements = "".join(
        f'socket-{version.replace(".", "-")} = {{ package = "wasmedge_wasi_socket", version = "={version}" }}\n'
        for version in SOCKET_CRATE_RELEASES
    )
    (project / "Cargo.toml").write_text(
        '[package]\nname = "socket-crates"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n' + requirements
    )
    return vendor_for_old_cargo(project, root / "vendor", cargo_home=root / "cargo-home", old_rustc=DEBIAN_RUSTC)


def add_vendored(registry: Path, vendored: VendoredSource) -> None:
    """Link the vendored crates into the registry beside Debian's. Where both have a crate, cargo
    takes the newer release, as it would from crates.io: Debian's copies are patched for
    Debian (its getrandom, for one, drops the `wasi` dependency the wasm build needs), and the
    vendored ones were resolved for rustc 1.63, so every one of them builds here."""
    for entry in sorted(vendored.directory.iterdir()):
        link = registry / entry.name
        if not link.exists():
            link.symlink_to(entry)
