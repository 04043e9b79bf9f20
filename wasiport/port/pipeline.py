"""`wasiport apply`: the whole pipeline, one stage after another.

    locate -> plan (rules) -> git (one commit) -> manifest (consumer [patch]) -> build -> verify -> run

Each stage returns a value; this module strings them together and records a
`StageResult` per stage in the `PortResult`. It never prints: progress goes
to the `progress` callback, the outcome to the caller.

Safety follows `cargo fix`: a dirty crate is refused, the port is written all
at once and committed on its own branch, and a port whose build (or
verification) fails is rolled back unless the user asks to keep it.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wasiport.cargo import (
    ExcludeFromWorkspace,
    build,
    edits_with_rules,
    find_toolchain,
    map_diagnostics,
    offline_hint,
    plan_consumer_patch,
    verify_patch_used,
)
from wasiport.cargo.manifest import edit_manifest
from wasiport.cargo.probe import make_probe
from wasiport.errors import UserError
from wasiport.fsutil import FileBackup, atomic_write
from wasiport.model import Finding, PortResult, Profile, StageResult
from wasiport.paths import cache_dir, rules_dir
from wasiport.tomlread import parse_toml

Progress = Callable[[str], None]


@dataclass
class ApplyRequest:
    spec: str
    profile: Profile = field(default_factory=Profile)
    manifest_path: Path | None = None
    into: Path | None = None
    git_url: str | None = None
    rev: str | None = None
    branch: str = "wasiport/wasmedge"
    allow_dirty: bool = False
    allow_no_vcs: bool = False
    keep_broken: bool = False
    dry_run: bool = False
    build: bool = True
    toolchain: str | None = None
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    export_patches: Path | None = None
    from_patches: Path | None = None
    run_args: list[str] | None = None  # --run: run the consumer's module with these arguments
    run_allow: tuple[str, ...] = ()
    run_env: tuple[tuple[str, str], ...] = ()  # --env KEY=VALUE pairs for --run
    rules_directory: Path | None = None
    env: dict[str, str] | None = None


@dataclass
class ApplyOutcome:
    result: PortResult
    diff: str = ""  # --dry-run: the unified diff of every change
    module: Path | None = None  # the verified .wasm (consumer's program), if any
    run_exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    build_diagnostics: list[str] = field(default_factory=list)


class PortFailed(UserError):
    """The port was written but did not build or verify; it was rolled back (or kept)."""

    exit_code = 1
    result: PortResult | None = None


def apply(request: ApplyRequest, progress: Progress = lambda line: None) -> ApplyOutcome:
    from wasiport.port import sources as locating
    from wasiport import vcs
    from wasiport.port.plan import Root, plan_port

    env = toolchain_env(request, dict(os.environ if request.env is None else request.env), progress)
    profile = request.profile
    pack_dir = request.rules_directory or rules_dir()

    # -- locate -------------------------------------------------------------------------
    progress(f"locating {request.spec}")
    recipes = locating.load_recipes(pack_dir.parent if request.rules_directory else rules_dir(), profile.name)
    crate = locating.locate(
        request.spec,
        manifest_path=request.manifest_path,
        into=request.into,
        git_url=request.git_url,
        rev=request.rev,
        recipes=recipes,
        env=env,
    )
    result = PortResult(crate.name, crate.root)
    outcome = ApplyOutcome(result)
    where = f"{crate.name} {crate.version} at {crate.root}"
    result.stages.append(StageResult("locate", True, f"{where} ({crate.origin}: {crate.source})"))
    if crate.recipe is not None and crate.recipe.notes:
        outcome.notes.extend(crate.recipe.notes)

    # -- git: a repository to commit into, and a clean tree ------------------------------
    repo_root = crate.repo_root
    if repo_root is None:
        if request.dry_run:
            repo_root = None
        else:
            repo_root = vcs.require_repo(crate.root, allow_no_vcs=request.allow_no_vcs)
    if repo_root is not None and not request.dry_run:
        recovered = vcs.recover_interrupted(repo_root)
        if recovered is not None:
            outcome.notes.append(f"an interrupted earlier run was undone ({recovered})")
        vcs.check_clean(repo_root, [crate.root], allow_dirty=request.allow_dirty)
        if request.from_patches is not None:
            progress(f"applying the patch series in {request.from_patches}")
            applied = vcs.apply_series(repo_root, request.from_patches, branch=request.branch)
            outcome.notes.append(f"re-applied {len(applied)} patch(es) from {request.from_patches}" if applied else "the patch series is already applied")

    # -- plan -----------------------------------------------------------------------------
    progress("planning the port")
    roots = [Root(t.src_path, t.kind) for t in crate.targets if t.kind in ("lib", "bin")]
    if not roots:
        raise UserError(f"{crate.name} has no library or binary target to port")
    plan = plan_port(crate.root, roots, profile, edition=crate.edition, rules_directory=request.rules_directory)
    result.findings = plan.findings
    if plan.problems:
        lines = [f"{p.path}:{p.line}:{p.col}: {p.message}" if p.line else f"{p.path}: {p.message}" for p in plan.problems]
        raise UserError("nothing was written: " + "; ".join(lines))
    outcome.notes.extend(plan.notes)
    # A copied dependency reaches the consumer through [patch]; a path dependency is already the port.
    consumer_change = _plan_consumer(crate, profile) if crate.consumer_manifest is not None and crate.is_copy else None
    if request.dry_run:
        outcome.diff = plan.diff() + (consumer_change.diff() if consumer_change else "")
        result.already_ported = plan.is_noop
        result.stages.append(StageResult("plan", True, _plan_summary(plan), _finding_lines(plan.findings, crate.root)))
        return outcome
    result.stages.append(StageResult("plan", True, _plan_summary(plan), _finding_lines(plan.findings, crate.root)))

    assert repo_root is not None
    with vcs.PortTransaction(repo_root, branch=request.branch, keep_on_error=request.keep_broken) as txn:
        # -- git: one commit with every file -------------------------------------------------
        if plan.is_noop:
            result.already_ported = True
            result.stages.append(StageResult("git", True, "already ported: nothing to commit"))
        else:
            for path, data in plan.contents.items():
                txn.write(path, data)
            result.commit = txn.commit(commit_message(crate.name, crate.version, plan))
            result.stages.append(StageResult("git", True, f"committed {result.commit[:12] if result.commit else '(no change)'} on branch {request.branch}", sorted(txn.changed_paths)))

        # -- manifest: the consumer takes the port through [patch.crates-io] -----------------
        consumer_backup: FileBackup | None = None
        try:
            if consumer_change is not None:
                consumer_backup = consumer_change.write()
                check = consumer_change.verify(env)
                result.stages.append(StageResult("manifest", True, consumer_change.summary(), check))

            # -- build and verify ---------------------------------------------------------------
            if request.build:
                module = _build_and_verify(request, crate, plan, result, outcome, env, progress)
                outcome.module = module
            else:
                result.stages.append(StageResult("build", True, "skipped (--no-build): nothing was confirmed"))
        except PortFailed as failure:
            failure.result = result
            if consumer_backup is not None and not request.keep_broken:
                consumer_backup.restore()
            if not request.keep_broken and result.commit:
                txn.rollback()
                result.stages.append(StageResult("git", True, f"rolled back: {crate.root} is as it was before"))
            raise

    # -- export and run (after the transaction is final) -------------------------------------
    if request.export_patches is not None:
        base = crate.upstream_commit or _first_parent_before_branch(repo_root, request.branch)
        written = vcs.export_patches(repo_root, base, request.export_patches, crate_name=crate.name, crate_version=crate.version)
        result.stages.append(StageResult("export", True, f"{len(written)} patch(es) in {request.export_patches}", [str(p) for p in written]))
    if request.run_args is not None:
        outcome.run_exit_code = _run_module(request, outcome, result, progress)
    return outcome


def toolchain_env(request: ApplyRequest, env: dict[str, str], progress: Progress) -> dict[str, str]:
    """One toolchain's cargo for everything: `cargo metadata` in locate and the patch check
    must be the cargo that builds, or a newer cargo writes a Cargo.lock the older one cannot
    read. Without a wasm-capable toolchain, --no-build and --dry-run still work with the
    cargo on PATH."""
    cwd = request.manifest_path.parent if request.manifest_path else Path.cwd()
    try:
        toolchain = find_toolchain(request.toolchain, env, cwd=cwd.resolve())
    except UserError:
        if request.build and not request.dry_run:
            raise
        return env
    progress(f"toolchain: {toolchain.describe()}")
    return toolchain.env(env)


# -- planning helpers -----------------------------------------------------------------------


def _plan_summary(plan) -> str:
    if plan.is_noop:
        return f"already ported: {len(plan.findings)} remaining finding(s), no change"
    files = len(plan.contents)
    rules = ", ".join(f"{rule} ×{count}" for rule, count in sorted(plan.rules_applied.items()))
    return f"{files} file(s) to change; rules: {rules or 'compat module only'}"


def _finding_lines(findings: list[Finding], root: Path) -> list[str]:
    return [f"{f.path}:{f.span.start_line}:{f.span.start_col}: [{f.port}] {f.rule_id}: {f.message}" for f in findings]


def commit_message(name: str, version: str, plan) -> str:
    lines = [f"wasiport: port {name} {version} to WasmEdge sockets", ""]
    lines.append("std::net's sockets are switched to wasmedge_wasi_socket under")
    lines.append(f"cfg({plan.profile.gate}); native builds are unchanged.")
    lines.append("")
    lines.append("Rules applied:")
    counts = Counter(f.rule_id for f in plan.findings)
    for rule, count in sorted(counts.items()):
        lines.append(f"- {rule} ({count} site{'s' if count != 1 else ''})")
    if plan.degraded:
        lines.append("")
        lines.append("Degraded (behaviour differs on WasmEdge):")
        for finding in plan.degraded:
            lines.append(f"- {finding.path}:{finding.span.start_line}: {finding.message}")
    if plan.manual:
        lines.append("")
        lines.append("Left for manual work:")
        for finding in plan.manual:
            lines.append(f"- {finding.path}:{finding.span.start_line}: {finding.message}")
    return "\n".join(lines) + "\n"


# -- the consumer's manifest ---------------------------------------------------------------------


@dataclass
class ConsumerChange:
    manifest: Path
    crate_name: str
    original: str
    text: str

    def diff(self) -> str:
        import difflib

        if self.original == self.text:
            return ""
        name = self.manifest.name
        return "".join(difflib.unified_diff(self.original.splitlines(True), self.text.splitlines(True), f"a/{name} (consumer)", f"b/{name} (consumer)"))

    def write(self) -> FileBackup | None:
        if self.original == self.text:
            return None
        backup = FileBackup(self.manifest, self.original.encode("utf-8"))
        atomic_write(self.manifest, self.text.encode("utf-8"))
        return backup

    def verify(self, env: dict[str, str]) -> list[str]:
        check = verify_patch_used(self.manifest, [self.crate_name], env)
        check.raise_if_unused()
        return [f"[patch.crates-io] {self.crate_name} is used by cargo's resolution of {self.manifest}"]

    def summary(self) -> str:
        if self.original == self.text:
            return f"{self.manifest} already takes the port through [patch.crates-io]"
        return f"{self.manifest}: [patch.crates-io] {self.crate_name} points at the port (not committed)"


def _plan_consumer(crate, profile: Profile) -> ConsumerChange:
    consumer = crate.consumer_manifest
    text = consumer.read_text(encoding="utf-8")
    changes = plan_consumer_patch(consumer, crate.name, crate.root, patch_registry(crate.package_source))
    changes += _workspace_exclusion(consumer, crate.root, text)
    edit = edit_manifest(text, changes, path_for_errors=str(consumer))
    if edit.conflicts:
        raise UserError("; ".join(str(c) for c in edit.conflicts), hint="wasiport never overwrites your settings: adjust them by hand")
    return ConsumerChange(consumer, crate.name, text, edit.text)


def patch_registry(source: str | None) -> str:
    """The `[patch.<key>]` that replaces a package from cargo's source id."""
    if not source or "crates.io-index" in source or source.startswith("sparse+https://index.crates.io"):
        return "crates-io"
    kind, _, url = source.partition("+")
    url = url.split("?", 1)[0].split("#", 1)[0]
    return url if kind in ("git", "registry", "sparse") else "crates-io"


def _workspace_exclusion(consumer: Path, copy_root: Path, text: str) -> list:
    """A copy under a workspace root's folder would become a member: exclude its folder."""
    if "workspace" not in parse_toml(text, path_for_errors=str(consumer)):
        return []
    try:
        relative = copy_root.resolve().relative_to(consumer.parent.resolve())
    except ValueError:
        return []
    return [ExcludeFromWorkspace(relative.parts[0])]


def _first_parent_before_branch(repo_root: Path, branch: str) -> str:
    import git

    repo = git.Repo(repo_root)
    commits = list(repo.iter_commits(branch, max_count=200))
    for commit in commits:
        if not commit.message.startswith("wasiport: "):
            return commit.hexsha
    return commits[-1].hexsha


# -- build and verify ----------------------------------------------------------------------------


def _build_and_verify(request: ApplyRequest, crate, plan, result: PortResult, outcome: ApplyOutcome, env, progress: Progress) -> Path | None:
    from wasiport import wasm

    toolchain = find_toolchain(request.toolchain, env, cwd=crate.root)
    if crate.consumer_manifest is not None:
        manifest = crate.consumer_manifest
        subject = f"consumer {manifest.parent.name}"
    else:
        into = probe_dir(crate.root, crate.name)
        manifest = make_probe(
            crate.root, crate.name, crate.lib_name or crate.name, features=request.features,
            no_default_features=request.no_default_features, into=into,
        )
        subject = f"probe crate depending on {crate.name}"
    features = request.features if crate.consumer_manifest is not None else ()
    builds_done: list = []
    for target in (None, toolchain.wasm_target):
        label = target or "native"
        progress(f"building the {subject} ({label})")
        built = build(
            manifest, toolchain, target=target, features=features,
            no_default_features=request.no_default_features and crate.consumer_manifest is not None,
            env=toolchain.env(env), progress=lambda line: progress(f"  {line}"),
        )
        builds_done.append(built)
        if not built.ok:
            edits, rule_ids = edits_with_rules(plan.findings)
            attributions = map_diagnostics(built.errors, edits, rule_ids, root=crate.root)
            details = [d.rendered.rstrip() for d in built.errors[:10]] or [built.stderr[-4000:]]
            for attribution in attributions:
                if attribution.relation != "outside" and attribution.rule_id:
                    details.append(f"note: the error at {attribution.diagnostic.location} is in code rewritten by {attribution.rule_id}")
            outcome.build_diagnostics = details
            result.stages.append(StageResult("build", False, f"{label} build failed: {built.failure_summary()}", details))
            hint = offline_hint(built.stderr)
            raise PortFailed(
                f"the port does not build ({label}): {built.failure_summary()}"
                + ("" if request.keep_broken else "; the port was rolled back (pass --keep-broken to keep it)"),
                hint=hint,
            )
    result.stages.append(StageResult("build", True, f"the {subject} builds natively and for {toolchain.wasm_target}"))

    wasm_build = builds_done[-1]
    # A consumer's program shows the sockets it links; a probe links nothing of the
    # library, so the library's own compiled code (its rlib) is the evidence there.
    modules = list(wasm_build.wasm_modules) if crate.consumer_manifest is not None else []
    if modules:
        # A project may build several programs (a workspace's members): none may still use
        # std's sockets, and one that links WasmEdge's is the evidence.
        inspections = [(module, wasm.inspect_file(module)) for module in modules]
        ranked = sorted(inspections, key=lambda pair: (pair[1].verdict is not wasm.Verdict.NOT_PORTED, pair[1].verdict is not wasm.Verdict.PORTED))
        evidence, inspection = ranked[0]
    else:
        rlib = wasm_build.rlib_of(crate.name)
        if rlib is None:
            result.stages.append(StageResult("verify", False, "no module or library was produced to inspect"))
            raise PortFailed("the build produced nothing to inspect")
        inspection = wasm.inspect_file(rlib)
        evidence = rlib
    lines = [inspection.summary]
    if inspection.wasmedge_imports:
        lines.append("imports: " + ", ".join(inspection.wasmedge_imports))
    if inspection.std_net_entry_points:
        lines.append("std::net still reachable: " + ", ".join(inspection.std_net_entry_points[:8]))
    if inspection.verdict is not wasm.Verdict.PORTED or inspection.std_net_entry_points:
        result.stages.append(StageResult("verify", False, f"{evidence.name}: {inspection.verdict.value}", lines))
        raise PortFailed(
            f"the build is green but {evidence.name} is {inspection.verdict.value}: it does not use WasmEdge's sockets"
            + ("" if request.keep_broken else "; the port was rolled back (pass --keep-broken to keep it)")
        )
    result.stages.append(StageResult("verify", True, f"{evidence.name} links to WasmEdge's socket functions", lines))
    return evidence if evidence.suffix == ".wasm" else None


def probe_dir(crate_root: Path, name: str) -> Path:
    """Where the probe crate lives: outside the crate (whose tree must stay clean), stable
    per crate so that cargo's build cache is reused on the next run."""
    import hashlib

    base = cache_dir()
    key = hashlib.sha256(str(crate_root.resolve()).encode()).hexdigest()[:16]
    return base / "probes" / f"{name}-{key}"


# -- run ---------------------------------------------------------------------------------------------


def _run_module(request: ApplyRequest, outcome: ApplyOutcome, result: PortResult, progress: Progress) -> int:
    if outcome.module is None:
        raise UserError("--run needs a program to run: pass --manifest-path of a consumer with a binary target (and do not pass --no-build)")
    from wasiport.runtime import RunConfig, run_module

    progress(f"running {outcome.module.name} {' '.join(request.run_args or [])}".rstrip())
    config = RunConfig(args=tuple(request.run_args or ()), env=request.run_env, allow=tuple(request.run_allow))
    run = run_module(outcome.module, config)
    summary = f"{outcome.module.name} exited with status {run.exit_code}"
    details = [run.message] if run.message else []
    details += [f"denied by the network policy: {decision}" for decision in run.denied]
    result.stages.append(StageResult("run", run.exit_code == 0, summary, details))
    return run.exit_code
