"""What a scan knows besides the rules: the profile, the compat module's port status per
method, and the build's cfg values.

Apart from the matcher so that a re-run served from the cache (which matches
nothing) does not import the matcher and the name and type machinery behind it.
"""
from __future__ import annotations

from wasiport.model import PortStatus, Profile, Record
from wasiport.rust.cfg import WASI, Target


class CompatData(Record):
    """Port status per compat method and API version (from the compat template's data)."""

    __slots__ = ("entries",)

    def __init__(self, entries: dict[str, dict[str, tuple[PortStatus, str]]] | None = None) -> None:
        self.entries = {} if entries is None else entries

    def status(self, api: str, method: str) -> tuple[PortStatus, str] | None:
        return self.entries.get(api, {}).get(method)


class ScanContext(Record):
    __slots__ = ("profile", "compat", "is_crate_root", "crate_index", "target")

    def __init__(self, profile: Profile, compat: CompatData | None = None, is_crate_root: bool = False, crate_index: object = None, target: Target = WASI) -> None:
        self.profile = profile
        self.compat = CompatData() if compat is None else compat
        self.is_crate_root = is_crate_root
        # Returns the declarations of the file's whole crate (struct fields, fn return types);
        # called only when a receiver's type is not declared in the file itself.
        self.crate_index = crate_index
        # cfg values of the wasm build (enabled features, when cargo resolved them)
        self.target = target
