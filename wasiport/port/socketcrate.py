"""Which `wasmedge_wasi_socket` requirement a port writes: one decision, for the toolchain found.

The port's Cargo.toml must name releases the building rustc can compile. The rule pack's
compat data (`compat/DEGRADATIONS.toml`, `[api."0.5"]`) says which requirement an API
generation starts from and which later releases need a newer rustc
(`needs-rustc = { "0.5.5" = "1.66" }`: 0.5.5 uses `std::os::fd`). For an older rustc the
requirement is capped below the first such release (`>=0.5.4, <0.5.5`), so that cargo cannot
resolve to it; a requirement that asks only for such releases is an error that names the fix.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from wasiport.cargo.versions import Version, VersionReq
from wasiport.errors import UserError
from wasiport.model import Profile
from wasiport.paths import rules_dir


class SocketApi(NamedTuple):
    """One API generation of the socket crate, as the compat data describes it."""

    requirement: str  # what a port writes by default, e.g. "0.5.4"
    needs_rustc: tuple[tuple[Version, tuple[int, ...]], ...]  # (first release, rustc it needs), oldest first


def load_socket_api(profile: Profile, directory: Path | None = None) -> SocketApi:
    """The `[api."<profile.socket_api>"]` entry of the pack's compat data."""
    path = (directory or rules_dir() / profile.name) / "compat" / "DEGRADATIONS.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SocketApi(profile.socket_version or Profile().socket_version, ())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"{path}: cannot be read as TOML: {err}") from None
    entry = document.get("api", {}).get(profile.socket_api)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("requirement"), str):
        raise UserError(f'{path}: [api."{profile.socket_api}"] needs a `requirement` string')
    return SocketApi(entry["requirement"], _needs_rustc(entry.get("needs-rustc", {}), path, profile.socket_api))


def _needs_rustc(table: object, path: Path, api: str) -> tuple[tuple[Version, tuple[int, ...]], ...]:
    if not isinstance(table, Mapping):
        raise UserError(f'{path}: [api."{api}"] `needs-rustc` must be a table of release = "rustc version"')
    pairs = []
    for release, rustc in table.items():
        try:
            pairs.append((Version.parse(str(release)), rustc_tuple(str(rustc))))
        except ValueError:
            raise UserError(f'{path}: [api."{api}"] needs-rustc: "{release}" = {rustc!r} is not release = "1.66"') from None
    return tuple(sorted(pairs))


def rustc_tuple(version: str) -> tuple[int, ...]:
    """"1.66" or "1.66.0-beta" -> (1, 66, 0)."""
    parts = version.strip().split("-", 1)[0].split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a rustc version: {version!r}")
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


def socket_requirement(requested: str, api: SocketApi, rustc: tuple[int, ...] | None) -> str:
    """The requirement to write: `requested` (or the API's default when empty), capped below the
    first release that `rustc` is too old for. `rustc` None (no toolchain known): as requested."""
    requirement = requested.strip() or api.requirement
    if rustc is None:
        return requirement
    parsed = VersionReq.parse(requirement)
    for release, needed in api.needs_rustc:
        reaches_release = parsed.matches(release) or parsed.lowest() >= release
        if tuple(rustc) >= needed or not reaches_release:
            continue
        if parsed.lowest() >= release:
            raise UserError(
                f"wasmedge_wasi_socket {requirement} needs rustc {'.'.join(map(str, needed))} or newer, "
                f"and the toolchain found is rustc {'.'.join(map(str, rustc))}",
                hint=f'use a newer toolchain, or --socket-version "{_capped(VersionReq.parse(api.requirement), release)}"',
            )
        return _capped(parsed, release)
    return requirement


def _capped(parsed: VersionReq, release: Version) -> str:
    """`^0.5.4` -> `>=0.5.4, <0.5.5`; other forms keep their comparators and gain the bound."""
    if len(parsed.comparators) == 1 and parsed.comparators[0].op in ("^", "~"):
        return f">={parsed.lowest()}, <{release}"
    return f"{parsed.text}, <{release}"


def profile_for_toolchain(profile: Profile, rustc: tuple[int, ...] | None, directory: Path | None = None) -> Profile:
    """`profile` with the socket requirement this rustc can build (see `socket_requirement`)."""
    api = load_socket_api(profile, directory)
    return profile._replace(socket_version=socket_requirement(profile.socket_version, api, rustc))
