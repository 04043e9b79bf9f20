"""The proof of a port: build it natively and for the wasm target, then read what the wasm
build links. `prove` only builds and inspects: it returns a `Proof` value, and the
pipeline decides what to record and whether to roll back.

What gets built is a `BuildSubject`: the consumer's project (its program's module is
the evidence) or, for a library with no consumer, a probe crate that links it (the
library's own compiled code, its rlib, is the evidence: a probe links nothing of it).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo import Attribution, BuildResult, Toolchain, build, edits_with_rules, map_diagnostics, offline_hint
from wasiport.cargo.patchcheck import rebuild_ports
from wasiport.cargo.probe import make_probe
from wasiport.model import Finding, StageResult
from wasiport.paths import cache_dir
from wasiport.port.request import PortFailed, Progress
from wasiport.port.sources import Crate
from wasiport.wasm import Inspection, Verdict, inspect_file
from wasiport.wasm.runtimes import LinkProblem, check_inspection

MAX_SHOWN_ERRORS = 10
MAX_SHOWN_STDERR = 4000
ROLLBACK_NOTE = "; the port was rolled back (pass --keep-broken to keep it)"


@dataclass(frozen=True)
class BuildSubject:
    """What is built to prove a port, and where the evidence is."""

    manifest: Path
    description: str  # for progress and messages: "consumer app", "probe crate depending on x"
    package: str  # whose rlib is the evidence when no program is linked
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    links_program: bool = True  # a consumer's program shows the sockets it links; a probe's does not


def consumer_subject(manifest: Path, package: str, *, features: Sequence[str] = (), no_default_features: bool = False) -> BuildSubject:
    """The consumer's project (a package or a virtual workspace), built with the user's features."""
    return BuildSubject(manifest, f"consumer {manifest.parent.name}", package, tuple(features), no_default_features)


def probe_subject(crate: Crate, *, features: Sequence[str] = (), no_default_features: bool = False) -> BuildSubject:
    """A probe crate that links the library (written to the cache, outside the crate's tree)."""
    manifest = make_probe(
        crate.root, crate.name, crate.lib_name or crate.name, features=features,
        no_default_features=no_default_features, into=probe_dir(crate.root, crate.name),
    )
    return BuildSubject(manifest, f"probe crate depending on {crate.name}", crate.name, links_program=False)


def subject_for(crate: Crate, *, features: Sequence[str] = (), no_default_features: bool = False) -> BuildSubject:
    """The consumer when the crate has one, else a probe."""
    if crate.consumer_manifest is not None:
        return consumer_subject(crate.consumer_manifest, crate.name, features=features, no_default_features=no_default_features)
    return probe_subject(crate, features=features, no_default_features=no_default_features)


def probe_dir(crate_root: Path, name: str) -> Path:
    """Where the probe crate lives: outside the crate (whose tree must stay clean), stable
    per crate so that cargo's build cache is reused on the next run."""
    key = hashlib.sha256(str(crate_root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "probes" / f"{name}-{key}"


@dataclass(frozen=True)
class BuildStep:
    label: str  # "native" or the wasm target
    result: BuildResult


@dataclass(frozen=True)
class Proof:
    """The builds (in order, up to the first that failed), and what the wasm build links."""

    subject: BuildSubject
    wasm_target: str
    steps: tuple[BuildStep, ...]
    attributions: tuple[Attribution, ...] = ()  # the failed build's errors, traced to the port's rewrites
    evidence: Path | None = None  # the module or rlib inspected
    inspection: Inspection | None = None

    @property
    def failed_step(self) -> BuildStep | None:
        return next((step for step in self.steps if not step.result.ok), None)

    @property
    def verified(self) -> bool:
        return (
            self.failed_step is None
            and self.inspection is not None
            and self.inspection.verdict is Verdict.PORTED
            and not self.inspection.std_net_entry_points
        )

    @property
    def module(self) -> Path | None:
        """The verified program (a .wasm), if the evidence is one."""
        return self.evidence if self.verified and self.evidence is not None and self.evidence.suffix == ".wasm" else None

    @property
    def build_details(self) -> list[str]:
        """The failed build's errors as rustc rendered them, and which rule rewrote the code they are in."""
        failed = self.failed_step
        if failed is None:
            return []
        built = failed.result
        details = [d.rendered.rstrip() for d in built.errors[:MAX_SHOWN_ERRORS]] or [built.stderr[-MAX_SHOWN_STDERR:]]
        for attribution in self.attributions:
            if attribution.relation != "outside" and attribution.rule_id:
                details.append(f"note: the error at {attribution.diagnostic.location} is in code rewritten by {attribution.rule_id}")
        return details

    def stages(self) -> list[StageResult]:
        """The build and verify stages as apply reports them."""
        failed = self.failed_step
        if failed is not None:
            return [StageResult("build", False, f"{failed.label} build failed: {failed.result.failure_summary()}", self.build_details)]
        built = StageResult("build", True, f"the {self.subject.description} builds natively and for {self.wasm_target}")
        if self.inspection is None or self.evidence is None:
            return [built, StageResult("verify", False, "no module or library was produced to inspect")]
        lines = self._inspection_lines()
        if not self.verified:
            return [built, StageResult("verify", False, f"{self.evidence.name}: {self.inspection.verdict.value}", lines)]
        return [built, StageResult("verify", True, f"{self.evidence.name} links to WasmEdge's socket functions", lines)]

    def failure(self, *, keep_broken: bool) -> PortFailed | None:
        """The error that stops the run (the port is rolled back unless kept); None for a proven port."""
        rollback = "" if keep_broken else ROLLBACK_NOTE
        failed = self.failed_step
        if failed is not None:
            return PortFailed(
                f"the port does not build ({failed.label}): {failed.result.failure_summary()}{rollback}",
                hint=offline_hint(failed.result.stderr),
            )
        if self.inspection is None or self.evidence is None:
            return PortFailed("the build produced nothing to inspect")
        if not self.verified:
            return PortFailed(
                f"the build is green but {self.evidence.name} is {self.inspection.verdict.value}: "
                f"it does not use WasmEdge's sockets{rollback}"
            )
        return None

    def _inspection_lines(self) -> list[str]:
        assert self.inspection is not None
        lines = [self.inspection.summary]
        if self.inspection.wasmedge_imports:
            lines.append("imports: " + ", ".join(self.inspection.wasmedge_imports))
        if self.inspection.std_net_entry_points:
            lines.append("std::net still reachable: " + ", ".join(self.inspection.std_net_entry_points[:8]))
        return lines


def check_runtime(proof: Proof, runtime: str, *, socket_version: str, keep_broken: bool) -> tuple[StageResult, PortFailed | None]:
    """`apply --runtime`: does the proven module link on that WasmEdge release? The verify
    stage that says so, and the error that rolls the port back when it does not (with the
    configuration that would link, when there is one)."""
    assert proof.module is not None and proof.inspection is not None
    spec, problems = check_inspection(proof.inspection, runtime)
    name = proof.module.name
    if not problems:
        return StageResult("verify", True, f"{name} links on {spec.name}"), None
    stage = StageResult("verify", False, f"{name} would not load on {spec.name}", [p.message() for p in problems])
    failure = PortFailed(
        f"{name} would not load on {spec.name}: {problems[0].message()}" + ("" if keep_broken else ROLLBACK_NOTE),
        hint=_runtime_hint(problems, socket_version),
    )
    return stage, failure


def _runtime_hint(problems: Sequence[LinkProblem], socket_version: str) -> str:
    """What configuration would link, when there is one."""
    names = {problem.name for problem in problems}
    if names == {"sock_recv_from"} and not socket_version.lstrip("^~=").startswith("0.4"):
        return ("UDP recv_from: wasmedge_wasi_socket 0.5 imports the 8-argument form (WasmEdge >= 0.12); "
                "--socket-version 0.4.3 imports the 7-argument form older releases have (its peer address is unreliable there)")
    if "sock_accept" in names:
        return "a 3-argument sock_accept comes from std's TcpListener::accept (WasmEdge >= 0.12): port the crate that calls it"
    return "no socket crate configuration links there: deploy on a newer WasmEdge"


def prove(
    subject: BuildSubject,
    toolchain: Toolchain,
    env: Mapping[str, str],
    progress: Progress,
    *,
    rewrites: Sequence[Finding] = (),
    root: Path | None = None,
) -> Proof:
    """Build `subject` natively, then for the toolchain's wasm target, and inspect the wasm
    build. A failed build stops there; its errors are traced to `rewrites` (the port's
    findings, their edits relative to `root`)."""
    steps: list[BuildStep] = []
    if subject.links_program:  # a consumer: its ports come from the ports registry
        rebuild_ports(subject.manifest, (None, toolchain.wasm_target), toolchain.env(env))
    for target in (None, toolchain.wasm_target):
        label = target or "native"
        progress(f"building the {subject.description} ({label})")
        built = build(
            subject.manifest, toolchain, target=target, features=subject.features,
            no_default_features=subject.no_default_features,
            env=toolchain.env(env), progress=lambda line: progress(f"  {line}"),
        )
        steps.append(BuildStep(label, built))
        if not built.ok:
            edits, rule_ids = edits_with_rules(rewrites)
            attributions = map_diagnostics(built.errors, edits, rule_ids, root=root or subject.manifest.parent)
            return Proof(subject, toolchain.wasm_target, tuple(steps), tuple(attributions))
    evidence, inspection = _inspect(subject, steps[-1].result)
    return Proof(subject, toolchain.wasm_target, tuple(steps), evidence=evidence, inspection=inspection)


def _inspect(subject: BuildSubject, wasm_build: BuildResult) -> tuple[Path | None, Inspection | None]:
    modules = list(wasm_build.wasm_modules) if subject.links_program else []
    if modules:
        # A project may build several programs (a workspace's members): none may still use
        # std's sockets, and one that links WasmEdge's is the evidence.
        inspections = [(module, inspect_file(module)) for module in modules]
        ranked = sorted(inspections, key=lambda pair: (pair[1].verdict is not Verdict.NOT_PORTED, pair[1].verdict is not Verdict.PORTED))
        return ranked[0]
    rlib = wasm_build.rlib_of(subject.package)
    if rlib is None:
        return None, None
    return rlib, inspect_file(rlib)
