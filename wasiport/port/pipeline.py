"""`wasiport apply`: the whole pipeline, one stage after another.

    locate -> plan (rules) -> git (one commit) -> manifest (consumer [patch]) -> build -> verify -> run

Each stage (`wasiport.port.stages`, `wasiport.port.prove`) returns a value; this module
strings them together and records a `StageResult` per stage in the `PortResult`. It
never prints: progress goes to the `progress` callback, the outcome to the caller.

Safety follows `cargo fix`: a dirty crate is refused, the port is written all
at once and committed on its own branch, and a port whose build (or
verification) fails is rolled back unless the user asks to keep it.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from wasiport import vcs
from wasiport.cargo import find_toolchain
from wasiport.fsutil import FileBackup
from wasiport.model import PortResult, StageResult
from wasiport.port.consumer import plan_consumer, takes_port_by_patch
from wasiport.port.prove import check_runtime, prove, subject_for
from wasiport.port.request import ApplyOutcome, ApplyRequest, PortFailed, Progress
from wasiport.port.run import run_port
from wasiport.port.stages import (
    base_env,
    clean_repo,
    commit,
    export_series,
    locate_crate,
    located,
    plan_crate,
    planned,
    take_port,
    refuse_dirty_edits,
    toolchain_env_and_profile,
)


def apply(request: ApplyRequest, progress: Progress = lambda line: None) -> ApplyOutcome:
    """Port one crate. Every write happens under the writer locks of the consumer project
    and the crate's repository (`vcs.lock`), held until the port is final."""
    with contextlib.ExitStack() as locks:
        return _apply(request, progress, locks)


def _apply(request: ApplyRequest, progress: Progress, locks: contextlib.ExitStack) -> ApplyOutcome:
    env, profile = toolchain_env_and_profile(request, base_env(request), progress)
    scratch = Path(locks.enter_context(tempfile.TemporaryDirectory(prefix="wasiport-dry-run-"))) if request.dry_run else None
    crate = locate_crate(request, env, progress, scratch)
    result = PortResult(crate.name, crate.root)
    outcome = ApplyOutcome(result)
    result.stages.append(located(crate))
    if crate.recipe is not None:
        outcome.notes.extend(crate.recipe.notes)

    if not request.dry_run:
        # The consumer's lock first, then the crate's: the order every writer takes them in.
        if takes_port_by_patch(crate):
            locks.enter_context(vcs.project_lock(crate.consumer_manifest, wait=request.wait))
        repo = clean_repo(
            crate, allow_no_vcs=request.allow_no_vcs, allow_dirty=request.allow_dirty, progress=progress,
            from_patches=request.from_patches, branch=request.branch, locks=locks, wait=request.wait,
        )
        outcome.notes.extend(repo.notes)

    progress("planning the port")
    port_plan = plan_crate(crate, profile, request.rules_directory, request.max_file_bytes)
    if not request.dry_run:
        refuse_dirty_edits(repo, port_plan)
    result.findings = port_plan.findings
    outcome.notes.extend(port_plan.notes)
    consumer_change = plan_consumer(crate, profile) if takes_port_by_patch(crate) else None
    result.stages.append(planned(port_plan))
    if request.dry_run:
        outcome.diff = port_plan.diff() + (consumer_change.diff() if consumer_change else "")
        result.already_ported, result.nothing_to_port = port_plan.is_noop and port_plan.port_exists, port_plan.is_noop and not port_plan.port_exists
        return outcome

    with vcs.PortTransaction(repo.root, branch=request.branch, keep_on_error=request.keep_broken) as txn:
        if port_plan.is_noop:
            result.already_ported, result.nothing_to_port = port_plan.port_exists, not port_plan.port_exists
            result.stages.append(StageResult("git", True, f"{port_plan.no_change}: nothing to commit"))
        else:
            result.commit = commit(txn, crate, port_plan)
            committed = result.commit[:12] if result.commit else "(no change)"
            result.stages.append(StageResult("git", True, f"committed {committed} on branch {request.branch}", sorted(txn.changed_paths)))

        consumer_backup: FileBackup | None = None
        try:
            if consumer_change is not None:
                taken = take_port(consumer_change, env)
                consumer_backup = taken.backup
                result.stages.append(StageResult("manifest", True, consumer_change.summary(), taken.confirmation))
            if request.build:
                toolchain = find_toolchain(request.toolchain, env, cwd=crate.root)
                subject = subject_for(crate, features=request.features, no_default_features=request.no_default_features)
                proof = prove(subject, toolchain, env, progress, rewrites=port_plan.findings, root=crate.root)
                result.stages.extend(proof.stages())
                outcome.build_diagnostics = proof.build_details
                failure = proof.failure(keep_broken=request.keep_broken)
                if failure is not None:
                    raise failure
                outcome.module = proof.module
                if request.runtime is not None and proof.module is not None:
                    linked, failure = check_runtime(
                        proof, request.runtime, socket_version=request.profile.socket_version, keep_broken=request.keep_broken
                    )
                    result.stages.append(linked)
                    if failure is not None:
                        raise failure
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
        result.stages.append(export_series(crate, repo.root, request))
    if request.run_args is not None:
        outcome.run_exit_code, ran = run_port(outcome.module, request, progress)
        result.stages.append(ran)
    return outcome
