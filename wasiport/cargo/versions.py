"""Reading Cargo's version numbers and requirements, and whether a `[target.<key>]` table
applies on the WASI target: what `check` needs of a Cargo.toml, apart from the editing
in `manifest` (which imports tomlkit and the rest, a tenth of a second a check of a
small crate did not need). Records are NamedTuples for the same reason (see `wasiport.model`)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from wasiport.model import Profile
from wasiport.rust.cfg import CfgSyntaxError, evaluate


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        core, _, pre = text.strip().split("+", 1)[0].partition("-")
        parts = core.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a semver version: {text!r}")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), tuple(pre.split(".")) if pre else ())

    def _key(self) -> tuple:
        # A pre-release sorts before its release; numeric identifiers before alphanumeric ones.
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)

    # semver's order, not the tuple's: a pre-release sorts before its release
    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{'.'.join(self.pre)}" if self.pre else "")


_COMPARATOR = re.compile(
    r"^\s*(=|>=|<=|>|<|~|\^)?\s*([0-9]+|\*|x|X)(?:\.([0-9]+|\*|x|X))?(?:\.([0-9]+|\*|x|X))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$"
)


class _Comparator(NamedTuple):
    op: str
    major: int | None
    minor: int | None
    patch: int | None
    pre: tuple[str, ...]

    def _version(self) -> Version:
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.pre)

    def matches(self, v: Version) -> bool:
        lo = self._version()
        if self.op == "*" or self.major is None:
            return True
        if self.op == "=":
            if self.minor is None:
                return v.major == self.major
            if self.patch is None:
                return (v.major, v.minor) == (self.major, self.minor)
            return v == lo
        if self.op == ">":
            if self.minor is None:
                return v.major > self.major
            if self.patch is None:
                return (v.major, v.minor) > (self.major, self.minor)
            return v > lo
        if self.op == ">=":
            return v >= lo
        if self.op == "<":
            return v < lo
        if self.op == "<=":
            if self.minor is None:
                return v.major <= self.major
            if self.patch is None:
                return (v.major, v.minor) <= (self.major, self.minor)
            return v <= lo
        if self.op == "~":
            if self.minor is None:
                return v >= lo and v.major == self.major
            return v >= lo and (v.major, v.minor) == (self.major, self.minor)
        # caret: the left-most non-zero part may not change
        if v < lo:
            return False
        if self.major > 0 or self.minor is None:
            return v.major == self.major
        if self.minor > 0 or self.patch is None:
            return v.major == 0 and v.minor == self.minor
        return (v.major, v.minor, v.patch) == (0, 0, self.patch)


class VersionReq(NamedTuple):
    """A Cargo version requirement such as `"1.2"`, `"~0.4.3"`, `">=0.4.7, <0.6.0"` or `"*"`."""

    text: str
    comparators: tuple[_Comparator, ...]

    @classmethod
    def parse(cls, text: str) -> VersionReq:
        comparators = []
        for part in text.split(","):
            if not part.strip():
                raise ValueError(f"empty comparator in version requirement {text!r}")
            match = _COMPARATOR.match(part)
            if not match:
                raise ValueError(f"not a version requirement: {text!r}")
            op, *nums, pre = match.groups()
            values = [None if n is None or n in "*xX" else int(n) for n in nums]
            major, minor, patch = values
            if minor is None:
                patch = None
            op = "*" if major is None else (op or "^")
            comparators.append(_Comparator(op, major, minor, patch, tuple(pre.split(".")) if pre else ()))
        return cls(text.strip(), tuple(comparators))

    def matches(self, version: Version | str) -> bool:
        v = Version.parse(version) if isinstance(version, str) else version
        if not all(c.matches(v) for c in self.comparators):
            return False
        # Pre-releases match only a comparator that names the same version with a pre-release.
        if v.pre:
            return any(
                c.pre and (c.major, c.minor or 0, c.patch or 0) == (v.major, v.minor, v.patch) for c in self.comparators
            )
        return True

    def lowest(self) -> Version:
        """The smallest version the requirement could pick (0.0.0 when it has no lower bound)."""
        bounds = [Version(0, 0, 0)]
        for c in self.comparators:
            major, minor, patch = c.major, c.minor, c.patch
            if major is None:
                continue
            if c.op in ("^", "~", "=", ">="):
                bounds.append(c._version())
            elif c.op == ">" and minor is None:
                bounds.append(Version(major + 1, 0, 0))
            elif c.op == ">" and patch is None:
                bounds.append(Version(major, (minor or 0) + 1, 0))
            elif c.op == ">":
                bounds.append(Version(major, minor or 0, (patch or 0) + 1))
        return max(bounds)

    def __str__(self) -> str:
        return self.text


def requirement_within(existing: str, wanted: str) -> bool:
    """True when every version `existing` accepts is acceptable for `wanted`, judged by the
    lowest version `existing` allows (exact enough for "0.5.4" within "0.5", "0" not within "0.5")."""
    try:
        existing_req, wanted_req = VersionReq.parse(existing), VersionReq.parse(wanted)
    except ValueError:
        return existing.strip() == wanted.strip()
    return wanted_req.matches(existing_req.lowest())


# ---------------------------------------------------------------------------
# Which `[target.<key>]` tables apply on the WASI target
# ---------------------------------------------------------------------------


def target_applies_to_wasm(target_key: str | None, wasm_triples: Sequence[str] = Profile().targets) -> bool | None:
    """Does `[target.<key>]` apply when building for WASI? None for 'cannot tell'
    (a cargo feature, a custom --cfg, target_env which differs between toolchains).

    `None` as the key means the table has no target (it applies everywhere)."""
    if target_key is None:
        return True
    key = target_key.strip()
    if not key.startswith("cfg(") or not key.endswith(")"):
        return key in wasm_triples
    try:
        return evaluate(key[4:-1])
    except CfgSyntaxError:
        return None
