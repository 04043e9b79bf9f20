"""What a scan knows besides the rules: the profile, the compat module's port status per
method, and the build's cfg values.

Apart from the matcher so that a re-run served from the cache (which matches
nothing) does not import the matcher and the name and type machinery behind it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from wasiport.model import PortStatus, Profile
from wasiport.rust.cfg import WASI, Target


@dataclass
class CompatData:
    """Port status per compat method and API version (from the compat template's data)."""

    entries: dict[str, dict[str, tuple[PortStatus, str]]] = field(default_factory=dict)

    def status(self, api: str, method: str) -> tuple[PortStatus, str] | None:
        return self.entries.get(api, {}).get(method)


@dataclass
class ScanContext:
    profile: Profile
    compat: CompatData = field(default_factory=CompatData)
    is_crate_root: bool = False
    # Returns the declarations of the file's whole crate (struct fields, fn return types);
    # called only when a receiver's type is not declared in the file itself.
    crate_index: object = None
    # cfg values of the wasm build (enabled features, when cargo resolved them)
    target: Target = WASI
