"""The dependency graph as the wasm build sees it, and what to do about each crate in it.

`analyze` resolves the project's graph with `cargo metadata --filter-platform <wasm
triple>` (features as cargo resolved them), walks the packages the wasm build
compiles (normal dependencies; build scripts and proc macros run on the host), and
judges each one:

* known from data (`rules/<profile>/deps-known.toml`) to fail on WASI whatever its
  source says (socket2, mio with `net`, tokio with `net`, hyper with `tcp`, ...), and
  then replaced by a substitute from `substitutions.toml` or left to the user;
* otherwise by its own source, scanned with the injected `scan` function: std::net
  findings without manual blockers make it *portable* by wasiport's rules.

The substitution generation comes from the profile: "rename" swaps direct
dependencies for the `*_wasi` crates (`tokio = { package = "tokio_wasi", .. }`),
"patch" puts same-name forks in `[patch.crates-io]`. A crate that only comes in
through a substituted crate which brings its own fork of it is *covered* and needs
nothing. `wasiport.deps.substitutions` turns the report into manifest changes; this
module never loads the Cargo.toml editor (`check --deps` reads, it does not write).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The data layer (deps-known.toml, substitutions.toml) lives in wasiport.deps.data, which `check`
# reads without this module; its names are part of this module's interface too.
from wasiport.deps.data import (  # noqa: F401
    GENERATIONS,
    KNOWN_FILE,
    SUBSTITUTIONS_FILE,
    DepsData,
    KnownIncompatibility,
    Remedy,
    SubstituteEntry,
    normalise_git,
    load_deps_data,
)
from wasiport.cargo.toolchain import metadata_wasm_target
from wasiport.cargo.versions import VersionReq, target_applies_to_wasm
from wasiport.cargo.workspace import cargo_metadata
from wasiport.errors import UserError
from wasiport.model import Finding, PortStatus, Profile


class SourceKind(str, enum.Enum):
    WORKSPACE = "workspace"
    PATH = "path"
    REGISTRY = "registry"
    GIT = "git"

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One crate's dependency declaration on a package (an edge of the graph)."""

    dependent: str  # package id
    dependent_name: str
    dependent_manifest: Path
    dependent_is_member: bool
    key: str  # the name in the dependent's manifest (its rename, or the package name)
    req: str
    features: tuple[str, ...] = ()
    uses_default_features: bool = True
    optional: bool = False
    target: str | None = None  # the [target.<..>] table it is declared in


@dataclass(frozen=True)
class Substitution:
    entry: SubstituteEntry
    missing_features: tuple[str, ...] = ()  # enabled by the user, absent from the substitute
    warnings: tuple[str, ...] = ()  # what the user must check (features left out, older API)


@dataclass(frozen=True)
class PackageReport:
    id: str
    name: str
    version: str
    source: SourceKind
    source_url: str | None
    root: Path
    manifest_path: Path
    features: tuple[str, ...]
    path: tuple[str, ...]  # from a workspace member to this package: why it is in the build
    required_by: tuple[Requirement, ...]
    remedy: Remedy
    reason: str
    findings: tuple[Finding, ...] = ()
    substitution: Substitution | None = None
    covered_by: str | None = None  # name of the substituted crate that takes this one out

    @property
    def chain(self) -> str:
        return " -> ".join(self.path)

    @property
    def needs_action(self) -> bool:
        return self.remedy is not Remedy.COMPATIBLE and self.covered_by is None


@dataclass(frozen=True)
class GraphReport:
    manifest_path: Path
    workspace_root: Path
    target: str
    generation: str
    members: tuple[str, ...]  # names of the workspace members analysed (the roots)
    packages: tuple[PackageReport, ...]  # every package the wasm build compiles, roots first

    def package(self, name: str) -> PackageReport:
        matches = [p for p in self.packages if p.name == name]
        if not matches:
            raise KeyError(name)
        return matches[0]

    def names(self) -> set[str]:
        return {p.name for p in self.packages}

    @property
    def needing_action(self) -> tuple[PackageReport, ...]:
        return tuple(p for p in self.packages if p.needs_action)

    @property
    def ok(self) -> bool:
        return not self.needing_action


# ---------------------------------------------------------------------------
# Target triple
# ---------------------------------------------------------------------------


def wasm_target(profile: Profile, env: Mapping[str, str] | None) -> str:
    """The wasm target the graph is resolved for: the build's own choice
    (`cargo.toolchain.metadata_wasm_target`) for the rustc of `env` ($RUSTC, else on PATH)."""
    return metadata_wasm_target(env, profile.targets)


# ---------------------------------------------------------------------------
# Reading cargo metadata into a graph
# ---------------------------------------------------------------------------


@dataclass
class _Graph:
    packages: dict[str, dict[str, Any]]
    children: dict[str, list[str]]  # normal dependencies for the wasm target
    parents: dict[str, list[str]]
    features: dict[str, tuple[str, ...]]
    members: list[str]
    roots: list[str]
    workspace_root: Path


def _is_proc_macro(package: Mapping[str, Any]) -> bool:
    return any("proc-macro" in target.get("kind", []) for target in package.get("targets", []))


def _graph(metadata: Mapping[str, Any]) -> _Graph:
    packages = {p["id"]: p for p in metadata["packages"]}
    resolve = metadata.get("resolve") or {}
    nodes = {n["id"]: n for n in resolve.get("nodes", [])}
    members = list(metadata.get("workspace_members", []))
    root = resolve.get("root")
    roots = [root] if root else sorted(members, key=lambda i: packages[i]["name"])
    children: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        kept = []
        for dep in node.get("deps", []):
            kinds = dep.get("dep_kinds") or [{"kind": None}]
            if not any(k.get("kind") in (None, "normal") for k in kinds):
                continue  # dev-dependencies are not built; build-dependencies run on the host
            if _is_proc_macro(packages[dep["pkg"]]):
                continue  # runs inside the compiler on the host
            kept.append(dep["pkg"])
        children[node_id] = sorted(set(kept), key=lambda i: (packages[i]["name"], i))
        for child in children[node_id]:
            parents.setdefault(child, []).append(node_id)
    features = {i: tuple(n.get("features", [])) for i, n in nodes.items()}
    return _Graph(packages, children, parents, features, members, roots, Path(metadata["workspace_root"]))


def _shortest_paths(graph: _Graph) -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    queue: deque[str] = deque()
    for root in graph.roots:
        paths[root] = [root]
        queue.append(root)
    while queue:
        current = queue.popleft()
        for child in graph.children.get(current, []):
            if child not in paths:
                paths[child] = paths[current] + [child]
                queue.append(child)
    return paths


def _topological(graph: _Graph, reachable: Iterable[str]) -> list[str]:
    """Parents before children (cargo graphs of normal dependencies have no cycles)."""
    nodes = set(reachable)
    indegree = {n: sum(1 for p in graph.parents.get(n, []) if p in nodes) for n in nodes}
    ready = sorted((n for n, d in indegree.items() if d == 0), key=lambda i: graph.packages[i]["name"])
    order: list[str] = []
    queue = deque(ready)
    while queue:
        current = queue.popleft()
        order.append(current)
        for child in graph.children.get(current, []):
            if child in nodes:
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
    order += sorted(nodes - set(order))  # a cycle would be a cargo bug; keep every node anyway
    return order


def _source_kind(package: Mapping[str, Any], members: Sequence[str]) -> SourceKind:
    if package["id"] in members:
        return SourceKind.WORKSPACE
    source = package.get("source") or ""
    if source.startswith("registry+") or source.startswith("sparse+"):
        return SourceKind.REGISTRY
    if source.startswith("git+"):
        return SourceKind.GIT
    return SourceKind.PATH


def _requirement(graph: _Graph, parent_id: str, child_id: str) -> Requirement:
    parent = graph.packages[parent_id]
    child = graph.packages[child_id]
    declared = [
        d
        for d in parent.get("dependencies", [])
        if d["name"] == child["name"]
        and d.get("kind") in (None, "normal")
        and target_applies_to_wasm(d.get("target")) is not False
    ]
    # Prefer the declaration whose requirement the resolved version meets.
    declared.sort(key=lambda d: not _req_matches(d.get("req", "*"), child["version"]))
    dep = declared[0] if declared else {"req": "*", "name": child["name"]}
    return Requirement(
        dependent=parent_id,
        dependent_name=parent["name"],
        dependent_manifest=Path(parent["manifest_path"]),
        dependent_is_member=parent_id in graph.members,
        key=dep.get("rename") or dep["name"],
        req=dep.get("req", "*"),
        features=tuple(dep.get("features", [])),
        uses_default_features=bool(dep.get("uses_default_features", True)),
        optional=bool(dep.get("optional", False)),
        target=dep.get("target"),
    )


def _req_matches(req: str, version: str) -> bool:
    try:
        return VersionReq.parse(req).matches(version)
    except ValueError:
        return False


def _explicit_features(package: Mapping[str, Any], enabled: Iterable[str]) -> list[str]:
    """Enabled features minus those that only name an optional dependency (`x = ["dep:x"]`):
    cargo turns those on as a consequence of the named ones."""
    table = package.get("features", {})
    return sorted(f for f in enabled if table.get(f) != [f"dep:{f}"])


# ---------------------------------------------------------------------------
# Judging packages
# ---------------------------------------------------------------------------


def _judge_by_scan(root: Path, scan: Callable[[Path, frozenset[str]], list[Finding]], features: Iterable[str]) -> tuple[Remedy, str, tuple[Finding, ...]]:
    try:
        findings = tuple(scan(root, frozenset(features)))
    except UserError as err:
        return Remedy.MANUAL, f"could not be scanned: {err.message}", ()
    if not findings:
        return Remedy.COMPATIBLE, "no socket code that fails on WASI", ()
    blockers = [f for f in findings if f.port is PortStatus.MANUAL]
    if blockers:
        first = blockers[0]
        return (
            Remedy.MANUAL,
            f"{len(blockers)} finding(s) wasiport cannot port, "
            f"e.g. {first.path}:{first.span.start_line}: {first.message}",
            findings,
        )
    return Remedy.PORTABLE, f"{len(findings)} std::net finding(s) that wasiport's rules port", findings


@dataclass(frozen=True)
class _Choice:
    remedy: Remedy
    reason: str
    substitution: Substitution | None = None


def _effective_requirements(
    graph: _Graph, package_id: str, live_parents: Sequence[str], chosen: Mapping[str, SubstituteEntry]
) -> list[tuple[str, str]]:
    """(dependent name, requirement) on this package once substituted parents use their forks."""
    name = graph.packages[package_id]["name"]
    result = []
    for parent in live_parents:
        requirement = _requirement(graph, parent, package_id)
        entry = chosen.get(parent)
        req = (entry.requirement_on(name) if entry else None) or requirement.req
        who = f"{graph.packages[parent]['name']} ({entry.label})" if entry else graph.packages[parent]["name"]
        result.append((who, req))
    return result


def _choose_patch(
    graph: _Graph,
    package_id: str,
    entries: Sequence[SubstituteEntry],
    live_parents: Sequence[str],
    chosen: Mapping[str, SubstituteEntry],
) -> _Choice:
    package = graph.packages[package_id]
    requirements = _effective_requirements(graph, package_id, live_parents, chosen)
    enabled = _explicit_features(package, graph.features.get(package_id, ()))
    refusals = []
    for entry in entries:
        unmet = [f"{who} requires {req}" for who, req in requirements if not _req_matches(req, entry.version)]
        if unmet:
            refusals.append(f"{entry.git} {entry.branch} is {package['name']} {entry.version}, but {'; '.join(unmet)}")
            continue
        missing = sorted(set(enabled) - entry.features) if entry.features is not None else []
        if missing:
            refusals.append(f"{entry.git} {entry.branch} lacks the enabled feature(s) {', '.join(missing)}")
            continue
        return _Choice(Remedy.SUBSTITUTE, f"patched with {entry.label}", Substitution(entry))
    return _Choice(Remedy.MANUAL, "no WasmEdge fork fits: " + "; ".join(refusals))


def _choose_rename(
    graph: _Graph, package_id: str, entries: Sequence[SubstituteEntry], live_parents: Sequence[str], data: DepsData
) -> _Choice:
    package = graph.packages[package_id]
    name = package["name"]
    entry = entries[0]
    indirect = [graph.packages[p]["name"] for p in live_parents if p not in graph.members]
    if indirect:
        forks = data.entries("patch", name)
        suggestion = f"; use the patch generation ({forks[0].git}, branch {forks[0].branch})" if forks else ""
        return _Choice(
            Remedy.MANUAL,
            f"{name} is a transitive dependency (of {', '.join(sorted(set(indirect)))}): {entry.package} can only "
            f"replace a direct dependency, because cargo's [patch] cannot rename a crate{suggestion}",
        )
    requirements = [_requirement(graph, p, package_id) for p in live_parents]
    warnings = []
    declared = sorted({f for r in requirements for f in r.features})
    missing = tuple(sorted(set(declared) - entry.features)) if entry.features is not None else ()
    if missing:
        warnings.append(
            f"{entry.package} has no feature(s) {', '.join(missing)} that the manifest enables for {name}: "
            "they are left out of the wasm dependency"
        )
    for requirement in requirements:
        if not _req_matches(requirement.req, str(entry.tracks)):
            warnings.append(
                f"{requirement.dependent_name} asks for {name} {requirement.req}, but {entry.package} follows "
                f"{name} {entry.tracks}: code written for a newer {name} may not compile"
            )
    return _Choice(Remedy.SUBSTITUTE, f"replaced by {entry.label}", Substitution(entry, missing, tuple(warnings)))


def _judge_known(
    graph: _Graph,
    package_id: str,
    known: KnownIncompatibility,
    generation: str,
    live_parents: Sequence[str],
    chosen: Mapping[str, SubstituteEntry],
    data: DepsData,
) -> _Choice:
    package = graph.packages[package_id]
    name = package["name"]
    if known.remedy is Remedy.MANUAL:
        return _Choice(Remedy.MANUAL, known.reason + (f"; {known.help}" if known.help else ""))
    if _source_kind(package, graph.members) is not SourceKind.REGISTRY:
        return _Choice(
            Remedy.MANUAL,
            f"{known.reason}; it comes from {package.get('source') or 'a path'}, not crates.io, "
            "so no substitute applies",
        )
    entries = data.entries(generation, name)
    if not entries:
        other = "patch" if generation == "rename" else "rename"
        alternative = data.entries(other, name)
        suggestion = f"; the {other} generation has {alternative[0].label}" if alternative else ""
        return _Choice(Remedy.MANUAL, f"{known.reason}; no {generation} substitute is known{suggestion}")
    if generation == "rename":
        choice = _choose_rename(graph, package_id, entries, live_parents, data)
    else:
        choice = _choose_patch(graph, package_id, entries, live_parents, chosen)
    return _Choice(choice.remedy, f"{known.reason}; {choice.reason}", choice.substitution)


def _carrier(
    graph: _Graph,
    package_id: str,
    parents: Sequence[str],
    chosen: Mapping[str, SubstituteEntry],
    reports: Mapping[str, PackageReport],
) -> str:
    """The substituted crate that takes this package out of the wasm build."""
    name = graph.packages[package_id]["name"]
    for parent in parents:
        if parent in chosen and name in chosen[parent].replaces:
            return graph.packages[parent]["name"]
        if parent in reports and reports[parent].covered_by:
            return reports[parent].covered_by or ""
    return graph.packages[parents[0]]["name"]


def analyze(
    manifest_path: Path,
    profile: Profile,
    *,
    scan: Callable[[Path, frozenset[str]], list[Finding]],
    env: Mapping[str, str] | None = None,
    data: DepsData | None = None,
) -> GraphReport:
    """Resolve the graph for the wasm target and judge every package the wasm build compiles.

    `scan(package_root, enabled_features)` returns a package's findings
    (wasiport.check.scan.scan_crate in the CLI); code behind features cargo did not enable is
    not part of the build, so it is not reported.
    `env` is the full environment for cargo and rustc (None: this process's)."""
    if profile.substitution not in GENERATIONS:
        raise UserError(f"unknown substitution generation {profile.substitution!r} (expected rename or patch)")
    manifest_path = manifest_path.resolve()
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path}: no such Cargo.toml")
    data = data or load_deps_data(profile=profile)
    target = wasm_target(profile, env)
    metadata, _ = cargo_metadata(manifest_path, env, filter_platform=target)
    graph = _graph(metadata)
    paths = _shortest_paths(graph)
    names: dict[str, set[str]] = {}
    for package_id in paths:
        names.setdefault(graph.packages[package_id]["name"], set()).add(package_id)

    def label(package_id: str) -> str:
        package = graph.packages[package_id]
        return package["name"] if len(names[package["name"]]) == 1 else f"{package['name']} {package['version']}"

    substitutes_in_place = data.substitute_packages()
    forks_in_place = data.fork_urls()
    live: set[str] = set()
    chosen: dict[str, SubstituteEntry] = {}
    reports: dict[str, PackageReport] = {}
    for package_id in _topological(graph, paths):
        package = graph.packages[package_id]
        name = package["name"]
        all_parents = [p for p in graph.parents.get(package_id, []) if p in paths]
        live_parents = [p for p in all_parents if p in live and not (p in chosen and name in chosen[p].replaces)]
        covered_by = None
        if package_id not in graph.roots and not live_parents:
            # Every way in passes through a substituted crate that brings its own fork of this one.
            covered_by = _carrier(graph, package_id, all_parents, chosen, reports)
        else:
            live.add(package_id)
        features = graph.features.get(package_id, ())
        source_url = package.get("source")
        known = data.known.get(name)
        findings: tuple[Finding, ...] = ()
        substitution = None
        if covered_by is not None:
            remedy = Remedy.COMPATIBLE
            reason = f"only reached through {covered_by}, whose substitute does not take {name} from crates.io"
            if known is not None and known.applies(package["version"], features):
                reason = f"{known.reason}; but {reason}"
        elif name in substitutes_in_place:
            remedy, reason = (
                Remedy.COMPATIBLE,
                f"already the WasmEdge substitute for {substitutes_in_place[name].crate}",
            )
        elif source_url and normalise_git(source_url) in forks_in_place:
            remedy, reason = Remedy.COMPATIBLE, "already the WasmEdge fork"
        elif known is not None and known.applies(package["version"], features):
            choice = _judge_known(graph, package_id, known, profile.substitution, live_parents, chosen, data)
            remedy, reason, substitution = choice.remedy, choice.reason, choice.substitution
            if substitution is not None:
                chosen[package_id] = substitution.entry
        elif name in data.no_std:
            remedy, reason = Remedy.COMPATIBLE, "a no_std crate: it cannot use std::net"
        else:
            remedy, reason, findings = _judge_by_scan(Path(package["manifest_path"]).parent, scan, features)
        reports[package_id] = PackageReport(
            id=package_id,
            name=name,
            version=package["version"],
            source=_source_kind(package, graph.members),
            source_url=source_url,
            root=Path(package["manifest_path"]).parent,
            manifest_path=Path(package["manifest_path"]),
            features=tuple(features),
            path=tuple(label(p) for p in paths[package_id]),
            required_by=tuple(_requirement(graph, p, package_id) for p in all_parents),
            remedy=remedy,
            reason=reason,
            findings=findings,
            substitution=substitution,
            covered_by=covered_by,
        )
    ordered = sorted(reports.values(), key=lambda r: (len(r.path), r.name, r.version))
    return GraphReport(
        manifest_path=manifest_path,
        workspace_root=graph.workspace_root,
        target=target,
        generation=profile.substitution,
        members=tuple(graph.packages[r]["name"] for r in graph.roots),
        packages=tuple(ordered),
    )
