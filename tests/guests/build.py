"""Build the test guests in tests/guests/ with the offline cargo environment.

Each guest is copied next to the environment's target directory and built
there: the source tree stays clean (no Cargo.lock written into it, none left
over from a stand-in crate that has changed since), and builds land in the
shared target directory, so a second build of an unchanged guest is a no-op.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.offline_cargo import DEBIAN_CARGO, OfflineCargo

GUESTS = Path(__file__).resolve().parent
WASM_TARGET = "wasm32-wasi"


def build_guest(cargo: OfflineCargo, name: str, *, native: bool = False) -> Path:
    """Build tests/guests/<name> in release mode; return the .wasm (or the native binary)."""
    source = cargo.target_dir.parent / "guest-sources" / name
    shutil.copytree(
        GUESTS / name, source, dirs_exist_ok=True, ignore=shutil.ignore_patterns("target", "Cargo.lock")
    )
    command = [str(DEBIAN_CARGO), "build", "--release", "--quiet"]
    if not native:
        command += ["--target", WASM_TARGET]
    result = subprocess.run(command, cwd=source, env=cargo.env(), capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"building guest {name} failed:\n{result.stderr}")
    if native:
        return cargo.target_dir / "release" / name
    return cargo.target_dir / WASM_TARGET / "release" / f"{name}.wasm"
