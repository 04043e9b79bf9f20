from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.modern_cargo import ModernCargo, make_modern_cargo, modern_toolchain_available
from tests.support.offline_cargo import OfflineCargo, make_offline_cargo, toolchain_available

# Fixtures for real servers (redis_server) live with their helpers.
pytest_plugins = ("tests.support.servers",)

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"


@pytest.fixture(params=["c-host-calls", "python-host-calls"])
def host_call_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with hotpath.c in front of the Python host calls, then with Python alone:
    the guest must not be able to tell them apart (see wasiport/runtime/hotpath.c)."""
    monkeypatch.setenv("WASIPORT_HOTPATH", "1" if request.param == "c-host-calls" else "0")
    return str(request.param)


@pytest.fixture(scope="session")
def offline_cargo(tmp_path_factory: pytest.TempPathFactory) -> OfflineCargo:
    """Debian's rustc/cargo with a directory source of Debian's crates and the real socket crate.

    Tests that build Rust skip (with the reason) only where the toolchain is
    absent; `.ci/run` installs it, so in CI they always run."""
    if not toolchain_available():
        pytest.skip("Debian's rustc, cargo and wasm32 std are not installed (see .ci/run)")
    return make_offline_cargo(tmp_path_factory.mktemp("offline-cargo"))


@pytest.fixture(scope="session")
def modern_cargo(tmp_path_factory: pytest.TempPathFactory) -> ModernCargo:
    """rustc/cargo 1.96 for wasm32-wasip1 with a private CARGO_HOME that reaches crates.io.

    Skips (with the reason) only where `.ci/modern-toolchain` has not assembled it; `.ci/run`
    does, so in CI these tests always run."""
    if not modern_toolchain_available():
        pytest.skip("rustc 1.96 for wasm32-wasip1 is not assembled (run .ci/modern-toolchain)")
    return make_modern_cargo(tmp_path_factory.mktemp("modern-cargo"))


@pytest.fixture
def corpus_copy(tmp_path: Path):
    """Copy a crate from corpus/ into a temporary directory and return its path."""

    def copy(relative: str) -> Path:
        src = CORPUS / relative
        dest = tmp_path / src.name
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
        return dest

    return copy
