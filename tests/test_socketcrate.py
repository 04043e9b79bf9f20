"""The socket crate requirement a port writes follows the toolchain that builds it."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.support.offline_cargo import OfflineCargo
from wasiport.port.request import ApplyRequest
from wasiport.port.stages import toolchain_env_and_profile
from wasiport.cargo.versions import VersionReq
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.paths import rules_dir
from wasiport.port.socketcrate import SocketApi, load_socket_api, profile_for_toolchain, socket_requirement

PACK = rules_dir() / "wasmedge"
API_0_5 = load_socket_api(Profile())


def test_the_pack_data_says_which_release_needs_a_newer_rustc() -> None:
    assert API_0_5.requirement == Profile().socket_version == "0.5.4"
    assert [(str(release), rustc) for release, rustc in API_0_5.needs_rustc] == [("0.5.5", (1, 66, 0))]
    assert load_socket_api(Profile()._replace(socket_version="0.4.3")) == SocketApi("0.4.3", ())


@pytest.mark.parametrize(
    "requested, rustc, written",
    [
        ("0.5.4", (1, 96, 0), "0.5.4"),  # cargo may pick 0.5.5 and later
        ("0.5.4", (1, 66, 0), "0.5.4"),
        ("0.5.4", (1, 63, 0), ">=0.5.4, <0.5.5"),
        ("~0.5.4", (1, 65, 1), ">=0.5.4, <0.5.5"),
        ("=0.5.4", (1, 63, 0), "=0.5.4"),  # already below 0.5.5
        (">=0.5.0, <0.5.5", (1, 63, 0), ">=0.5.0, <0.5.5"),
        (">=0.5.4", (1, 63, 0), ">=0.5.4, <0.5.5"),
        ("0.5.4", None, "0.5.4"),  # no toolchain known (--dry-run without one)
    ],
)
def test_an_older_rustc_gets_a_requirement_cargo_cannot_resolve_to_0_5_5(
    requested: str, rustc: tuple[int, ...] | None, written: str
) -> None:
    requirement = socket_requirement(requested, API_0_5, rustc)
    assert requirement == written
    if rustc is not None and rustc < (1, 66):
        assert not VersionReq.parse(requirement).matches("0.5.5")
        assert not VersionReq.parse(requirement).matches("0.5.9")


def test_a_requirement_only_newer_rustc_can_build_is_one_sentence_with_the_fix() -> None:
    with pytest.raises(UserError) as raised:
        socket_requirement("0.5.5", API_0_5, (1, 63, 0))
    assert str(raised.value.message) == (
        "wasmedge_wasi_socket 0.5.5 needs rustc 1.66.0 or newer, and the toolchain found is rustc 1.63.0"
    )
    assert raised.value.hint == 'use a newer toolchain, or --socket-version ">=0.5.4, <0.5.5"'


def test_the_0_4_api_is_not_capped() -> None:
    profile = profile_for_toolchain(Profile()._replace(socket_version="0.4.3"), (1, 63, 0))
    assert profile.socket_version == "0.4.3"


def test_malformed_needs_rustc_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "compat").mkdir()
    text = (PACK / "compat" / "DEGRADATIONS.toml").read_text()
    (tmp_path / "compat" / "DEGRADATIONS.toml").write_text(text.replace('"0.5.5" = "1.66"', '"0.5.5" = "soon"'))
    with pytest.raises(UserError, match=r"DEGRADATIONS.toml: \[api.\"0.5\"\] needs-rustc"):
        load_socket_api(Profile(), tmp_path)


@pytest.mark.cargo
def test_apply_chooses_for_the_toolchain_it_found(offline_cargo: OfflineCargo, tmp_path: Path) -> None:
    request = ApplyRequest(spec=str(tmp_path), env=offline_cargo.env())
    env, profile = toolchain_env_and_profile(request, offline_cargo.env(), lambda line: None)
    assert env["RUSTC"] == "/usr/bin/rustc"  # Debian's 1.63
    assert profile.socket_version == ">=0.5.4, <0.5.5"
    written = tomllib.loads(f'x = "{profile.socket_version}"')["x"]
    assert VersionReq.parse(written).matches("0.5.4")
