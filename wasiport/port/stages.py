"""The stages of a port, each a public function with typed inputs, shared by `apply`
(one crate) and `apply --deps` (a whole graph):

    toolchain_env_and_profile -> locate_crate -> clean_repo -> plan_crate -> commit -> take_port
    -> prove (wasiport.port.prove) -> export_series -> run (wasiport.port.run)

Each returns a value; the pipelines record `StageResult`s and decide what to undo.
"""
from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from wasiport import vcs
from wasiport.cargo import find_toolchain
from wasiport.errors import UserError
from wasiport.faults import crash_point
from wasiport.model import Finding, Problem, Profile, StageResult
from wasiport.paths import rules_dir
from wasiport.port.consumer import ConsumerBackup, ConsumerChange
from wasiport.port.plan import PortPlan, Root, plan_port
from wasiport.port.recipes import load_recipes
from wasiport.port.request import ApplyRequest, Progress
from wasiport.port.socketcrate import profile_for_toolchain
from wasiport.port.sources import Crate, locate


def base_env(request: ApplyRequest) -> dict[str, str]:
    """The environment cargo and rustc run in: the request's, else this process's."""
    return dict(os.environ if request.env is None else request.env)


def toolchain_env_and_profile(request: ApplyRequest, env: dict[str, str], progress: Progress) -> tuple[dict[str, str], Profile]:
    """One toolchain's cargo for everything, and the request's profile for that toolchain.

    `cargo metadata` in locate and the patch check must be the cargo that builds, or a newer
    cargo writes a Cargo.lock the older one cannot read. The socket crate requirement the port
    writes is one this toolchain's rustc can build (`socketcrate`). Without a wasm-capable
    toolchain, --no-build and --dry-run still work with the cargo on PATH (and the requirement
    is the rule pack's, uncapped)."""
    cwd = request.manifest_path.parent if request.manifest_path else Path.cwd()
    try:
        toolchain = find_toolchain(request.toolchain, env, cwd=cwd.resolve())
    except UserError:
        if request.build and not request.dry_run:
            raise
        return env, profile_for_toolchain(request.profile, None, request.rules_directory)
    progress(f"toolchain: {toolchain.describe()}")
    profile = profile_for_toolchain(request.profile, toolchain.version_tuple, request.rules_directory)
    return toolchain.env(env), profile


def locate_crate(request: ApplyRequest, env: Mapping[str, str], progress: Progress, scratch: Path | None = None) -> Crate:
    """The crate `request.spec` names, with the profile's recipes for well-known names; a dry
    run passes SCRATCH, where a crate that needs a new copy is copied."""
    progress(f"locating {request.spec}")
    recipes_root = request.rules_directory.parent if request.rules_directory else rules_dir()
    return locate(
        request.spec,
        manifest_path=request.manifest_path,
        into=request.into,
        git_url=request.git_url,
        rev=request.rev,
        recipes=load_recipes(recipes_root, request.profile.name),
        env=env,
        scratch=scratch,
    )


def located(crate: Crate) -> StageResult:
    return StageResult("locate", True, f"{crate.name} {crate.version} at {crate.root} ({crate.origin}: {crate.source})")


@dataclass(frozen=True)
class CleanRepo:
    """The repository a port commits into, and what was done to make it ready."""

    root: Path
    notes: tuple[str, ...] = ()
    dirty: tuple[vcs.DirtyFile, ...] = ()  # --allow-dirty: the uncommitted work the port must not take


def clean_repo(
    crate: Crate,
    *,
    allow_no_vcs: bool,
    allow_dirty: bool,
    progress: Progress,
    from_patches: Path | None = None,
    branch: str = vcs.DEFAULT_BRANCH,
    locks: contextlib.ExitStack | None = None,
    wait: float | None = None,
) -> CleanRepo:
    """The crate's repository, locked for writing (held by LOCKS until the port is final, see
    `vcs.lock`), with an interrupted earlier run undone and its tree clean (`cargo fix`'s
    rule); `from_patches` re-applies an exported series first."""
    root = crate.repo_root or vcs.require_repo(crate.root, allow_no_vcs=allow_no_vcs)
    notes: list[str] = []
    held = locks.enter_context(vcs.repository_lock(root, wait=wait)) if locks is not None else None
    crash_point("locked")
    recovered = vcs.recover_interrupted(root)
    if recovered is not None:
        notes.append(f"an interrupted earlier run was undone: {recovered.describe()}")
    elif held is not None and held.previous is not None:
        notes.append(f"an earlier run ({held.previous.describe()}) was killed while it held the lock; it left nothing half done")
    dirty = vcs.check_clean(root, [crate.root], allow_dirty=allow_dirty)
    if from_patches is not None:
        progress(f"applying the patch series in {from_patches}")
        applied = vcs.apply_series(root, from_patches, branch=branch)
        notes.append(f"re-applied {len(applied)} patch(es) from {from_patches}" if applied else "the patch series is already applied")
    return CleanRepo(root, tuple(notes), tuple(dirty))


def refuse_dirty_edits(repo: CleanRepo, port_plan: PortPlan) -> None:
    """--allow-dirty: the port may not edit a file that holds the user's uncommitted work."""
    if repo.dirty:
        vcs.refuse_dirty_edits(repo.root, repo.dirty, port_plan.contents)


def plan_crate(crate: Crate, profile: Profile, rules_directory: Path | None, max_file_bytes: int | None = None) -> PortPlan:
    """The port of the crate's library and binaries, planned in memory; a file that does not
    parse (or a manifest conflict) stops here, before anything is written."""
    roots = [Root(t.src_path, t.kind) for t in crate.targets if t.kind in ("lib", "bin")]
    if not roots:
        raise UserError(f"{crate.name} has no library or binary target to port")
    port_plan = plan_port(crate.root, roots, profile, edition=crate.edition, rules_directory=rules_directory, max_file_bytes=max_file_bytes)
    if port_plan.problems:
        lines = [f"{p.path}:{p.line}:{p.col}: {p.message}" if p.line else f"{p.path}: {p.message}" for p in port_plan.problems]
        raise UserError(f"nothing was written: {crate.name} {crate.version}: " + "; ".join(lines), hint=problem_hint(port_plan.problems))
    return port_plan


def problem_hint(problems: list[Problem]) -> str:
    """How to get past the problems that stop a port, where the user can."""
    if any(p.code == "wasiport/file-too-large" for p in problems):
        return "a file over the size limit is usually generated code; to port it anyway, raise the limit with --max-file-size (e.g. --max-file-size 16M)"
    return ""


def planned(port_plan: PortPlan) -> StageResult:
    return StageResult("plan", True, plan_summary(port_plan), finding_lines(port_plan.findings))


def plan_summary(port_plan: PortPlan) -> str:
    if port_plan.is_noop:
        return f"{port_plan.no_change}: {len(port_plan.findings)} remaining finding(s), no change"
    files = len(port_plan.contents)
    rules = ", ".join(f"{rule} ×{count}" for rule, count in sorted(port_plan.rules_applied.items()))
    return f"{files} file(s) to change; rules: {rules or 'compat module only'}"


def finding_lines(findings: list[Finding]) -> list[str]:
    return [f"{f.path}:{f.span.start_line}:{f.span.start_col}: [{f.port}] {f.rule_id}: {f.message}" for f in findings]


def commit(txn: vcs.PortTransaction, crate: Crate, port_plan: PortPlan) -> str | None:
    """Every planned file written in the transaction, and one commit of them."""
    for path, data in port_plan.contents.items():
        txn.write(path, data)
    return txn.commit(commit_message(crate.name, crate.version, port_plan))


def commit_message(name: str, version: str, port_plan: PortPlan) -> str:
    lines = [f"wasiport: port {name} {version} to WasmEdge sockets", ""]
    lines.append("std::net's sockets are switched to wasmedge_wasi_socket under")
    lines.append(f"cfg({port_plan.profile.gate}); native builds are unchanged.")
    lines.append("")
    lines.append("Rules applied:")
    counts = Counter(f.rule_id for f in port_plan.findings)
    for rule, count in sorted(counts.items()):
        lines.append(f"- {rule} ({count} site{'s' if count != 1 else ''})")
    if port_plan.degraded:
        lines.append("")
        lines.append("Degraded (behaviour differs on WasmEdge):")
        for finding in port_plan.degraded:
            lines.append(f"- {finding.path}:{finding.span.start_line}: {finding.message}")
    if port_plan.manual:
        lines.append("")
        lines.append("Left for manual work:")
        for finding in port_plan.manual:
            lines.append(f"- {finding.path}:{finding.span.start_line}: {finding.message}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TakenPort:
    """The consumer's manifest now takes the port: how to undo it, and cargo's confirmation."""

    backup: ConsumerBackup | None  # None: the manifest already took it
    confirmation: list[str]


def take_port(change: ConsumerChange, env: dict[str, str]) -> TakenPort:
    """Write the consumer's `[patch]` and make cargo confirm that it takes it; a patch cargo
    does not use is an error, and the manifest is as it was."""
    backup = change.write()
    crash_point("manifest")
    try:
        confirmation = change.verify(env)
    except BaseException:
        if backup is not None:
            backup.restore()
        raise
    return TakenPort(backup, confirmation)


def export_series(crate: Crate, repo_root: Path, request: ApplyRequest) -> StageResult:
    """The port as a `git format-patch` series in `request.export_patches`."""
    assert request.export_patches is not None
    base = crate.upstream_commit or first_parent_before_branch(repo_root, request.branch)
    written = vcs.export_patches(repo_root, base, request.export_patches, crate_name=crate.name, crate_version=crate.version)
    return StageResult("export", True, f"{len(written)} patch(es) in {request.export_patches}", [str(p) for p in written])


def first_parent_before_branch(repo_root: Path, branch: str) -> str:
    repo = git.Repo(repo_root)
    commits = list(repo.iter_commits(branch, max_count=200))
    for commit_ in commits:
        if not commit_.message.startswith("wasiport: "):
            return commit_.hexsha
    return commits[-1].hexsha
