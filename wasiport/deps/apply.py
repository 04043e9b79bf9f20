"""`wasiport apply --deps`: port a whole project's dependency graph in one command.

    analyze graph -> port each portable package (its own git-tracked copy, or in place)
                  -> substitute what has a substitute (Cargo.toml, .cargo/config.toml)
                  -> build and inspect the consumer once

The same stages as `apply` (`wasiport.port.stages`, `wasiport.port.prove`). Every port
stays an open transaction until the final build: a build that fails rolls every port
back and restores every manifest the run edited, unless the user asks to keep them
(--keep-broken).
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from wasiport import vcs
from wasiport.cargo import find_toolchain
from wasiport.check.scan import scan_crate
from wasiport.cargo.changes import PORTS_DIRECTORY
from wasiport.cargo.versions import Version
from wasiport.deps.gap import VersionGap, version_gap
from wasiport.deps.graph import GraphReport, PackageReport, Remedy, SourceKind, analyze
from wasiport.deps.proof import SubstituteProof, prove_substitute
from wasiport.deps.substitutions import SubstitutionPlan, plan_substitutions
from wasiport.errors import UserError
from wasiport.fsutil import FileBackup, atomic_write
from wasiport.model import PortResult, StageResult
from wasiport.port.consumer import plan_consumer, takes_port_by_patch
from wasiport.port.plan import PortPlan
from wasiport.port.prove import Proof, consumer_subject, prove
from wasiport.port.request import ApplyRequest, PortFailed, Progress
from wasiport.port.run import run_port_captured
from wasiport.port.sources import Crate, locate
from wasiport.port.stages import base_env, clean_repo, commit, plan_crate, refuse_dirty_edits, toolchain_env_and_profile


@dataclass
class PackageOutcome:
    name: str
    version: str
    action: str  # ported | already ported | nothing to port | substituted | manual | failed
    detail: str = ""
    proof: SubstituteProof | None = None  # substitutes: built / inspected / run


@dataclass
class DepsOutcome:
    result: PortResult
    packages: list[PackageOutcome] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    module: Path | None = None
    gaps: list[VersionGap] = field(default_factory=list)  # substitutes behind the user's version
    run_output: str | None = None  # what the module printed under --run
    run_exit_code: int | None = None


@dataclass(frozen=True)
class PackagePort:
    """One package of the graph, located and planned, in its clean repository."""

    package: PackageReport
    crate: Crate
    plan: PortPlan
    repo_root: Path


def apply_deps(request: ApplyRequest, progress: Progress = lambda line: None) -> DepsOutcome:
    """Port a project's graph under the project's writer lock (and each crate's, see vcs.lock).

    A run that fails (and is not --keep-broken) removes the copies it made under the
    project's copies folder, so nothing it created stays behind untracked."""
    consumer = consumer_manifest(request)
    copies: list[Path] = []
    with contextlib.ExitStack() as locks:
        locks.enter_context(vcs.project_lock(consumer, wait=request.wait))
        try:
            return _apply_deps(request, progress, consumer, copies, locks)
        except BaseException:
            if not request.keep_broken:
                remove_copies(copies)
            raise


def remove_copies(copies: list[Path]) -> None:
    """The copies a failed run made, their entries in the ports registry beside them, and the
    registry and copies folders when nothing else is left in them."""
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
        ports = copy.parent / PORTS_DIRECTORY
        with contextlib.suppress(OSError):
            (ports / copy.name).unlink()
        for folder in (ports, copy.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _apply_deps(request: ApplyRequest, progress: Progress, consumer: Path, copies: list[Path], locks: contextlib.ExitStack) -> DepsOutcome:
    env, profile = toolchain_env_and_profile(request, base_env(request), progress)
    request = dataclasses.replace(request, profile=profile)  # the socket requirement this toolchain builds
    progress(f"resolving the dependency graph of {consumer}")
    graph = analyze(consumer, profile, scan=lambda root, features: scan_crate(root, profile, features), env=env)
    result = PortResult(consumer.parent.name, consumer.parent)
    outcome = DepsOutcome(result)
    result.stages.append(StageResult("locate", True, f"{len(graph.packages)} packages for {graph.target}, {len(graph.needing_action)} need action"))

    portable = portable_packages(graph)
    partly = {p.name for p in portable if p.remedy is Remedy.MANUAL}
    substitution_plan = plan_substitutions(graph, profile)
    outcome.messages.extend(substitution_messages(substitution_plan, portable))
    outcome.packages.extend(
        PackageOutcome(p.name, p.version, "manual", p.reason)
        for p in graph.needing_action
        if p.remedy is Remedy.MANUAL and p.name not in partly
    )
    # Plan every port before writing anything: a file that does not parse stops the run here.
    ports = [plan_package(package, consumer, request, env, progress, locks, copies) for package in portable]

    backups: list[FileBackup] = []
    with contextlib.ExitStack() as stack:
        try:
            for port in ports:
                outcome.packages.append(commit_package(port, stack, request, partly, backups, result))
            result.stages.append(StageResult("git", True, f"{sum(p.action.startswith('ported') for p in outcome.packages)} package(s) ported"))
            backups.extend(write_substitutions(substitution_plan))
            substituted = [p for p in graph.needing_action if p.remedy is Remedy.SUBSTITUTE and p.substitution is not None]
            outcome.packages.extend(PackageOutcome(p.name, p.version, "substituted", p.substitution.entry.label) for p in substituted)
            outcome.gaps = substitute_gaps(substituted, project_sources(graph))
            result.stages.append(StageResult("manifest", True, f"{len(substitution_plan.files)} file(s) with substitutions", [str(f.path) for f in substitution_plan.files]))
            if request.build:
                proof = prove_project(consumer, request, env, progress, result)
                outcome.module = proof.module
                if request.run_args is not None:
                    run, stage = run_port_captured(outcome.module, request, progress)
                    result.stages.append(stage)
                    outcome.run_output = run.stdout.decode("utf-8", "replace") + run.stderr.decode("utf-8", "replace")
                    outcome.run_exit_code = run.exit_code
                attach_proofs(outcome.packages, substituted, proof, outcome.run_exit_code)
            else:
                result.stages.append(StageResult("build", True, "skipped (--no-build): nothing was confirmed"))
        except BaseException as failure:
            if not request.keep_broken:
                for backup in reversed(backups):
                    backup.restore()
            if isinstance(failure, PortFailed):
                failure.result = result
            raise
    return outcome


def consumer_manifest(request: ApplyRequest) -> Path:
    consumer = (request.manifest_path or Path("Cargo.toml")).resolve()
    if consumer.is_dir():
        consumer = consumer / "Cargo.toml"
    if not consumer.is_file():
        raise UserError(f"{consumer}: no such Cargo.toml", hint="pass --manifest-path to the project's Cargo.toml")
    return consumer


def portable_packages(graph: GraphReport) -> list[PackageReport]:
    """Crates with std::net sites get ported even when something else in them (threads) is
    manual work: the sockets then work, and the rest is reported, never hidden."""
    return [
        p for p in graph.needing_action
        if p.remedy is Remedy.PORTABLE or (p.remedy is Remedy.MANUAL and any(f.fix and f.fix.edits for f in p.findings))
    ]


def substitution_messages(substitution_plan: SubstitutionPlan, portable: list[PackageReport]) -> list[str]:
    """The plan's messages, less the "port it with wasiport apply" advice for packages this run ports."""
    ported = {p.name for p in portable if p.remedy is Remedy.PORTABLE}
    return [str(m) for m in substitution_plan.messages if m.package is None or m.package not in ported]


def plan_package(
    package: PackageReport, consumer: Path, request: ApplyRequest, env: dict[str, str], progress: Progress,
    locks: contextlib.ExitStack, copies: list[Path],
) -> PackagePort:
    """The package located (a new copy is recorded in COPIES), planned, and its repository
    locked (held by LOCKS) and clean."""
    spec = str(package.root) if package.source in (SourceKind.WORKSPACE, SourceKind.PATH) else f"{package.name}@{package.version}"
    progress(f"locating {package.name} {package.version}")
    crate = locate(spec, manifest_path=consumer, into=request.into, env=env, recipes={})
    if crate.is_copy and not crate.reused:
        copies.append(crate.root)
    port_plan = plan_crate(crate, request.profile, request.rules_directory, request.max_file_bytes)
    repo = clean_repo(crate, allow_no_vcs=request.allow_no_vcs, allow_dirty=request.allow_dirty, progress=progress, locks=locks, wait=request.wait)
    refuse_dirty_edits(repo, port_plan)
    return PackagePort(package, crate, port_plan, repo.root)


def commit_package(
    port: PackagePort, stack: contextlib.ExitStack, request: ApplyRequest, partly: set[str], backups: list[FileBackup], result: PortResult
) -> PackageOutcome:
    """The package's port committed in a transaction that stays open until the final build."""
    crate, port_plan = port.crate, port.plan
    if port_plan.is_noop:
        return PackageOutcome(crate.name, crate.version, port_plan.no_change, str(crate.root))
    txn = stack.enter_context(vcs.PortTransaction(port.repo_root, branch=request.branch, keep_on_error=request.keep_broken))
    committed = commit(txn, crate, port_plan)
    result.findings.extend(port_plan.findings)
    if takes_port_by_patch(crate):
        backup = plan_consumer(crate, request.profile).write()
        if backup is not None:
            backups.append(backup)
    action = "ported, manual work left" if crate.name in partly else "ported"
    left = f"; left: {len(port_plan.manual)} site(s) for manual work, e.g. {port_plan.manual[0].path}:{port_plan.manual[0].span.start_line}" if port_plan.manual else ""
    return PackageOutcome(crate.name, crate.version, action, f"{crate.root} ({committed[:12] if committed else 'no change'}){left}")


def write_substitutions(substitution_plan: SubstitutionPlan) -> list[FileBackup]:
    """Every manifest and config change of the plan written, each file at once; their backups."""
    edits = [(file_changes.path, file_changes.edit()) for file_changes in substitution_plan.files]
    for _, edit in edits:
        if edit.conflicts:
            raise UserError("; ".join(str(c) for c in edit.conflicts), hint="wasiport never overwrites your settings")
    backups = []
    for path, edit in edits:
        if edit.changed:
            backups.append(FileBackup.of(path))
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, edit.text.encode("utf-8"))
    return backups


def prove_project(consumer: Path, request: ApplyRequest, env: dict[str, str], progress: Progress, result: PortResult) -> Proof:
    """The project itself (a package or a virtual workspace) built and inspected once."""
    toolchain = find_toolchain(request.toolchain, env, cwd=consumer.parent)
    subject = consumer_subject(consumer, consumer.parent.name, features=request.features, no_default_features=request.no_default_features)
    proof = prove(subject, toolchain, env, progress, root=consumer.parent)
    result.stages.extend(proof.stages())
    failure = proof.failure(keep_broken=request.keep_broken)
    if failure is not None:
        raise failure
    return proof


def project_sources(graph: GraphReport) -> list[Path]:
    """The project's own Rust files (its workspace members), where a version gap would bite."""
    files: list[Path] = []
    for package in graph.packages:
        if package.source is SourceKind.WORKSPACE:
            files += [p for p in sorted(package.root.rglob("*.rs")) if not {"target", "wasiport"} & set(p.relative_to(package.root).parts)]
    return files


def substitute_gaps(substituted: list[PackageReport], sources: list[Path]) -> list[VersionGap]:
    """For each substitute that follows an older upstream than the one resolved natively, the
    API the user's version added since (from its changelog) and where the project uses it."""
    gaps = []
    for package in substituted:
        entry = package.substitution.entry
        gap = version_gap(package.name, Version.parse(package.version), package.root, entry.tracks, entry.label, sources)
        if gap is not None:
            gaps.append(gap)
    return gaps


def attach_proofs(packages: list[PackageOutcome], substituted: list[PackageReport], proof: Proof, run_exit_code: int | None) -> None:
    """Fill in what the native and wasm builds, the module and the run prove of each substitute."""
    native = {a.package for a in proof.steps[0].result.artifacts}
    wasm = {a.package for a in proof.steps[-1].result.artifacts}
    entries = {p.name: p.substitution.entry for p in substituted}
    for outcome in packages:
        if outcome.action == "substituted" and outcome.name in entries:
            outcome.proof = prove_substitute(
                entries[outcome.name], native_packages=native, wasm_packages=wasm, module=proof.module, run_exit_code=run_exit_code
            )
