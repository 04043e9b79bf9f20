"""`wasiport apply --deps`: port a whole project's dependency graph in one command.

    analyze graph -> port each portable package (its own git-tracked copy, or in place)
                  -> substitute what has a substitute (Cargo.toml, .cargo/config.toml)
                  -> build and inspect the consumer once

Every port stays an open transaction until the final build: a build that
fails rolls every port back and restores every manifest the run edited,
unless the user asks to keep them (--keep-broken).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from wasiport.port.pipeline import (
    ApplyOutcome,
    ApplyRequest,
    ConsumerChange,
    PortFailed,
    Progress,
    _build_and_verify,
    _plan_consumer,
    commit_message,
    toolchain_env,
)
from wasiport.errors import UserError
from wasiport.fsutil import FileBackup, atomic_write
from wasiport.model import PortResult, StageResult


@dataclass
class PackageOutcome:
    name: str
    version: str
    action: str  # ported | already ported | substituted | manual | failed
    detail: str = ""


@dataclass
class DepsOutcome:
    result: PortResult
    packages: list[PackageOutcome] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    module: Path | None = None


def apply_deps(request: ApplyRequest, progress: Progress = lambda line: None) -> DepsOutcome:
    from wasiport.deps import graph as deps
    from wasiport.deps.substitutions import plan_substitutions
    from wasiport import vcs
    from wasiport.port import sources as locating
    from wasiport.deps.graph import Remedy, SourceKind
    from wasiport.port.plan import Root, plan_port
    from wasiport.check.scan import scan_crate

    env = toolchain_env(request, dict(os.environ if request.env is None else request.env), progress)
    profile = request.profile
    consumer = (request.manifest_path or Path("Cargo.toml")).resolve()
    if consumer.is_dir():
        consumer = consumer / "Cargo.toml"
    if not consumer.is_file():
        raise UserError(f"{consumer}: no such Cargo.toml", hint="pass --manifest-path to the project's Cargo.toml")

    progress(f"resolving the dependency graph of {consumer}")
    graph = deps.analyze(consumer, profile, scan=lambda root, features: scan_crate(root, profile, features), env=env)
    result = PortResult(consumer.parent.name, consumer.parent)
    outcome = DepsOutcome(result)
    result.stages.append(StageResult("locate", True, f"{len(graph.packages)} packages for {graph.target}, {len(graph.needing_action)} need action"))

    # Crates with std::net sites get ported even when something else in them (threads) is
    # manual work: the sockets then work, and the rest is reported, never hidden.
    portable = [
        p for p in graph.needing_action
        if p.remedy is Remedy.PORTABLE or (p.remedy is Remedy.MANUAL and any(f.fix and f.fix.edits for f in p.findings))
    ]
    partly = {p.name for p in portable if p.remedy is Remedy.MANUAL}
    substitution_plan = plan_substitutions(graph, profile)
    for message in substitution_plan.messages:
        if message.package is None or not any(p.name == message.package and p.remedy is Remedy.PORTABLE for p in portable):
            outcome.messages.append(str(message))
    for package in graph.needing_action:
        if package.remedy is Remedy.MANUAL and package.name not in partly:
            outcome.packages.append(PackageOutcome(package.name, package.version, "manual", package.reason))

    # Plan every port before writing anything: a file that does not parse stops the run here.
    crates = []
    for package in portable:
        spec = str(package.root) if package.source in (SourceKind.WORKSPACE, SourceKind.PATH) else f"{package.name}@{package.version}"
        progress(f"locating {package.name} {package.version}")
        crate = locating.locate(spec, manifest_path=consumer, into=request.into, env=env, recipes={})
        roots = [Root(t.src_path, t.kind) for t in crate.targets if t.kind in ("lib", "bin")]
        plan = plan_port(crate.root, roots, profile, edition=crate.edition, rules_directory=request.rules_directory)
        if plan.problems:
            lines = "; ".join(f"{p.path}:{p.line}: {p.message}" for p in plan.problems)
            raise UserError(f"nothing was written: {crate.name} {crate.version}: {lines}")
        repo_root = crate.repo_root or vcs.require_repo(crate.root, allow_no_vcs=request.allow_no_vcs)
        vcs.recover_interrupted(repo_root)
        vcs.check_clean(repo_root, [crate.root], allow_dirty=request.allow_dirty)
        crates.append((package, crate, plan, repo_root))

    backups: list[FileBackup] = []
    with contextlib.ExitStack() as stack:
        try:
            for package, crate, plan, repo_root in crates:
                if plan.is_noop:
                    outcome.packages.append(PackageOutcome(crate.name, crate.version, "already ported", str(crate.root)))
                    continue
                txn = stack.enter_context(vcs.PortTransaction(repo_root, branch=request.branch, keep_on_error=request.keep_broken))
                for path, data in plan.contents.items():
                    txn.write(path, data)
                commit = txn.commit(commit_message(crate.name, crate.version, plan))
                action = "ported, manual work left" if crate.name in partly else "ported"
                left = f"; left: {len(plan.manual)} site(s) for manual work, e.g. {plan.manual[0].path}:{plan.manual[0].span.start_line}" if plan.manual else ""
                outcome.packages.append(PackageOutcome(crate.name, crate.version, action, f"{crate.root} ({commit[:12] if commit else 'no change'}){left}"))
                result.findings.extend(plan.findings)
                if crate.is_copy and crate.consumer_manifest is not None:
                    change: ConsumerChange = _plan_consumer(crate, profile)
                    backup = change.write()
                    if backup is not None:
                        backups.append(backup)
            result.stages.append(StageResult("git", True, f"{sum(p.action.startswith('ported') for p in outcome.packages)} package(s) ported"))

            for file_changes in substitution_plan.files:
                edit = file_changes.edit()
                if edit.conflicts:
                    raise UserError("; ".join(str(c) for c in edit.conflicts), hint="wasiport never overwrites your settings")
                if edit.changed:
                    path = file_changes.path
                    backups.append(FileBackup.of(path))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, edit.text.encode("utf-8"))
            for package in graph.needing_action:
                if package.remedy is Remedy.SUBSTITUTE and package.substitution is not None:
                    outcome.packages.append(PackageOutcome(package.name, package.version, "substituted", package.substitution.entry.label))
            result.stages.append(StageResult("manifest", True, f"{len(substitution_plan.files)} file(s) with substitutions", [str(f.path) for f in substitution_plan.files]))

            if request.build:
                # The project itself (a package or a virtual workspace) is what gets built.
                project = BuildSubject(name=consumer.parent.name, root=consumer.parent, consumer_manifest=consumer)
                single = ApplyOutcome(result)
                outcome.module = _build_and_verify(request, project, _EmptyPlan(), result, single, env, progress)
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


@dataclasses.dataclass(frozen=True)
class BuildSubject:
    """What `_build_and_verify` needs to know of the project it builds."""

    name: str
    root: Path
    consumer_manifest: Path
    lib_name: str | None = None


class _EmptyPlan:
    """The consumer itself is not rewritten by --deps; build errors map to no rule."""

    findings: list = []
