"""How far a substitute lags behind the crate it replaces, and what of that the project uses.

A `*_wasi` substitute follows an old upstream release (tokio_wasi 1.25 follows tokio 1.25.0),
while the user's code was written, and builds natively, against whatever cargo resolved (say
tokio 1.38.2). The API added upstream in between is missing from the wasm build. The upstream
crate's own CHANGELOG.md (shipped in the package cargo resolved) says what was added, release by
release, under `### Added`; the names it quotes (`File::create_new`) are then looked up in the
project's own sources, so the report says which of them the code uses and where. The wasm build
is the final word (a missing method does not compile); this explains why, before or after.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from wasiport.cargo.versions import Version

_RELEASE = re.compile(r"^#+\s+v?(\d+\.\d+\.\d+)\b", re.MULTILINE)  # "# 1.38.0 (May…)", "## v0.11.27"
_SECTION = re.compile(r"^###\s+(.*?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"`([A-Za-z_][\w:{}, ]*)(?:\([^`]*\))?`")  # a call's arguments dropped
_LINK_DEFINITION = re.compile(r"^\[[^\]]+\]:.*$", re.MULTILINE)  # "[#6573]: https://..."
_WORD = r"(?<![\w]){}(?![\w])"


class Addition(NamedTuple):
    """One `### Added` entry of an upstream release."""

    version: Version
    text: str  # the entry, e.g. "fs: add `File::create_new` (#6573)"
    names: tuple[str, ...]  # the API it names, e.g. ("File::create_new",)


class Use(NamedTuple):
    addition: Addition
    name: str
    path: Path
    line: int


class VersionGap(NamedTuple):
    crate: str
    resolved: Version  # what the project builds natively
    tracks: Version  # what the substitute follows
    substitute: str  # e.g. "tokio_wasi 1.25"
    additions: tuple[Addition, ...] | None  # newest release first; None: no changelog shipped
    uses: tuple[Use, ...]  # where the project's code names one of them

    def describe(self, *, examples: int = 4) -> str:
        """One sentence for the apply summary."""
        head = (
            f"{self.crate} {self.resolved} (native build) is newer than {self.substitute}, which follows "
            f"{self.crate} {self.tracks}"
        )
        if self.additions is None:
            return f"{head}: the {self.crate} package ships no changelog, so the API added in between is not listed"
        if not self.additions:
            return f"{head}: its changelog lists no API added in between"
        releases = sorted({a.version for a in self.additions})
        span = f"{releases[0]}" if len(releases) == 1 else f"{releases[0]}–{releases[-1]}"
        named = [name for addition in self.additions for name, _ in api_needles(addition, self.crate)]
        sample = ", ".join(f"`{n}`" for n in _unique(named)[:examples])
        missing = f"{len(self.additions)} API addition(s) of {span} are missing on the wasm build" + (f" (e.g. {sample})" if sample else "")
        if not self.uses:
            return f"{head}: {missing}; the project's code names none of them"
        used = "; ".join(f"`{u.name}` ({u.addition.version}) at {u.path}:{u.line}" for u in self.uses[:examples])
        return f"{head}: {missing}; the project's code uses {used}: that will not compile against {self.substitute}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def quoted_names(text: str) -> tuple[str, ...]:
    """API names quoted in a changelog entry; `Type::{a,b}` becomes `Type::a`, `Type::b`."""
    names: list[str] = []
    for quoted in _QUOTED.findall(text):
        quoted = quoted.replace(" ", "")
        head, brace, rest = quoted.partition("{")
        if brace and rest.endswith("}"):
            names += [head + part for part in rest[:-1].split(",") if part]
        elif "{" not in quoted and "}" not in quoted:
            names.append(quoted)
    return tuple(_unique(n.strip(":") for n in names if n.strip(":")))


def changelog_additions(changelog: str, after: Version, upto: Version) -> tuple[Addition, ...]:
    """The `### Added` entries of every release in (after, upto], from a Keep-a-Changelog-like file."""
    releases = list(_RELEASE.finditer(changelog))
    found: list[Addition] = []
    for index, release in enumerate(releases):
        version = Version.parse(release.group(1))
        if not after < version <= upto:
            continue
        end = releases[index + 1].start() if index + 1 < len(releases) else len(changelog)
        body = changelog[release.end():end]
        found += _added_entries(body, version)
    return tuple(found)


def _added_entries(body: str, version: Version) -> list[Addition]:
    """`### Added` sections (tokio), or else the items that start with "Add" (reqwest)."""
    entries: list[Addition] = []
    body = _LINK_DEFINITION.sub("", body)
    sections = list(_SECTION.finditer(body))
    if not sections:
        for item in _items(body):
            if re.match(r"(\(\w+\)\s*)?add\b", item, re.IGNORECASE):
                entries.append(Addition(version, item, quoted_names(item)))
        return entries
    for index, section in enumerate(sections):
        if not section.group(1).lower().startswith("added"):
            continue
        end = sections[index + 1].start() if index + 1 < len(sections) else len(body)
        entries += [Addition(version, text, quoted_names(text)) for text in _items(body[section.end():end])]
    return entries


def _items(text: str) -> list[str]:
    """The bullet items of a list, each on one line."""
    items = (" ".join(item.split()) for item in re.split(r"^\s*[-*]\s+", text, flags=re.MULTILINE)[1:])
    return [item for item in items if item]


def api_needles(addition: Addition, crate_name: str = "") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(name, words a file must contain to use it) for the entry's names that are API of their own.

    Changelogs also quote types that already existed ("implement `Clone` for `Join`"), and
    method names alone are too common to look for (`len`, `is_empty`), so: a method counts with
    its type (`Notify::notify_last`, or `try_new` in an entry that names `AsyncFd`); a free
    function only when its name is distinctive (two underscores or more); a type only when the
    entry adds it ("add `UnixSocket`")."""
    types = [n.split("::")[-1] for n in addition.names if n.split("::")[-1][:1].isupper()]
    found: list[tuple[str, tuple[str, ...]]] = []
    for name in addition.names:
        parts = name.split("::")
        last = parts[-1]
        if last[:1].isupper():
            if f"add `{name}`" in addition.text:
                found.append((name, (last,)))
        elif len(parts) >= 2:
            found.append((name, tuple(parts[1:] if parts[0] == crate_name else parts)))
        elif types:
            found += [(f"{t}::{last}", (t, last)) for t in types]
        elif last.count("_") >= 2:
            found.append((name, (last,)))
    return tuple(found)


def uses_in(additions: Iterable[Addition], sources: Iterable[Path], crate_name: str = "") -> tuple[Use, ...]:
    """Where the given sources name an addition's API (comments included: a hint, not a proof)."""
    wanted = [(addition, name, needles) for addition in additions for name, needles in api_needles(addition, crate_name)]
    uses: list[Use] = []
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for addition, name, needles in wanted:
            if not all(re.search(_WORD.format(re.escape(n)), text) for n in needles):
                continue
            last = re.search(_WORD.format(re.escape(needles[-1])), text)
            if last is not None:
                uses.append(Use(addition, name, path, text.count("\n", 0, last.start()) + 1))
    return tuple(uses)


def version_gap(
    crate: str, resolved: Version, crate_root: Path, tracks: Version, substitute: str, sources: Iterable[Path]
) -> VersionGap | None:
    """The gap between the resolved upstream crate and what its substitute follows; None when
    the substitute is not behind."""
    if resolved <= tracks:
        return None
    changelog = next((p for p in (crate_root / "CHANGELOG.md", crate_root / "CHANGES.md") if p.is_file()), None)
    if changelog is None:
        return VersionGap(crate, resolved, tracks, substitute, None, ())
    additions = changelog_additions(changelog.read_text(encoding="utf-8", errors="replace"), tracks, resolved)
    return VersionGap(crate, resolved, tracks, substitute, additions, uses_in(additions, sources, crate))
