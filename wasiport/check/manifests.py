"""`check`'s look at Cargo.toml: direct dependencies that cannot work on WasmEdge as they are.

Without resolving the graph (that is `check --deps`), a crate's own manifest
already says a lot: `tokio` with `net`, `socket2`, `net2`, `reqwest`, ... The
knowledge is data (`rules/<profile>/deps-known.toml`, `substitutions.toml`);
each finding names the known substitute or says it is manual work.
"""
from __future__ import annotations

import re
from pathlib import Path

try:  # the same parser as the stdlib's tomllib, compiled: a large tree's Cargo.toml files parse 3x faster
    import tomli as tomllib
except ImportError:  # pragma: no cover - tomli is a dependency; the stdlib's copy gives the same answers
    import tomllib

from wasiport.model import Finding, PortStatus, Problem, Profile, Severity, Span

RULE_ID = "wasmedge/dependency"
_DEPENDENCY_TABLE = "dependencies"  # dev- and build-dependencies never reach the wasm build


def check_manifest(path: Path, display: str, profile: Profile, deps_data=None) -> tuple[list[Finding], list[Problem]]:
    """`deps_data`: a zero-argument callable returning `load_deps_data(profile=profile)`,
    for callers that check many manifests and read the data once (scan.py)."""
    from wasiport.cargo.versions import target_applies_to_wasm
    from wasiport.deps.data import Remedy, load_deps_data

    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError:
        return [], [Problem("wasiport/not-utf8", "Cargo.toml is not valid UTF-8; not checked", display)]
    except tomllib.TOMLDecodeError as err:
        line, col = _position(str(err))
        return [], [Problem("wasiport/manifest-parse-error", f"malformed TOML: {err}", display, line, col)]
    data = deps_data() if deps_data is not None else load_deps_data(profile=profile)
    findings: list[Finding] = []
    for table_key, dependencies in _dependency_tables(document):
        if table_key is not None and target_applies_to_wasm(table_key, profile.targets) is False:
            continue
        for key, spec in dependencies.items():
            name = spec.get("package", key) if isinstance(spec, dict) else key
            known = data.known.get(name)
            if known is None:
                continue
            features = set(spec.get("features", [])) if isinstance(spec, dict) else set()
            if "full" in features:  # tokio's (and others') umbrella feature
                features |= set(known.when_features)
            requirement = spec if isinstance(spec, str) else spec.get("version", "") if isinstance(spec, dict) else ""
            if not known.applies(str(requirement).lstrip("^=~ "), features):
                continue
            substitute = _substitute(data, profile, name)
            manual = known.remedy is Remedy.MANUAL or substitute is None
            help_text = (known.help or "no known substitute: this needs manual work") if manual else f"`wasiport apply --deps` substitutes {substitute}"
            enabled = sorted(features & set(known.when_features))
            via = f" (feature {', '.join(enabled)})" if enabled else ""
            optional = isinstance(spec, dict) and bool(spec.get("optional"))
            if optional:
                via += " (optional: only when a feature of this crate enables it)"
            findings.append(
                Finding(
                    rule_id=RULE_ID,
                    severity=Severity.WARNING if optional else Severity.ERROR,
                    message=f"dependency `{key}`{via}: {known.reason}",
                    path=display,
                    span=key_span(text, key, table_key),
                    help=help_text,
                    port=PortStatus.MANUAL if manual else PortStatus.KEPT,
                )
            )
    return findings, []


def _dependency_tables(document: dict):
    plain = document.get(_DEPENDENCY_TABLE)
    if isinstance(plain, dict):
        yield None, plain
    targets = document.get("target")
    if isinstance(targets, dict):
        for key, table in targets.items():
            if isinstance(table, dict) and isinstance(table.get(_DEPENDENCY_TABLE), dict):
                yield key, table[_DEPENDENCY_TABLE]


def _substitute(data, profile: Profile, name: str) -> str | None:
    entries = data.entries(profile.substitution, name) or data.entries("patch", name) or data.entries("rename", name)
    return entries[0].label if entries else None


def _position(message: str) -> tuple[int, int]:
    match = re.search(r"line (\d+), column (\d+)", message)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def key_span(text: str, key: str, table_key: str | None = None) -> Span:
    """Where `key = ...` (or `[dependencies.key]`) is written, inside its table when possible."""
    start_search = 0
    if table_key is not None:
        header = text.find(table_key)
        start_search = header if header >= 0 else 0
    pattern = re.compile(rf'^[ \t]*"?{re.escape(key)}"?[ \t]*(?:=|\.)|^\[.*dependencies\.{re.escape(key)}\]', re.M)
    match = pattern.search(text, start_search) or pattern.search(text)
    if match is None:
        return Span(0, 0, 1, 1, 1, 1)
    offset = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
    if match.group(0).lstrip().startswith("["):
        offset = text.index(key, match.start())
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    start = len(text[:offset].encode())
    end = start + len(key.encode())
    return Span(start, end, line, col, line, col + len(key))
