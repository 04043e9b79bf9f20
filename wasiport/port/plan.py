"""Planning a port: pure, it reads the crate and returns every change; it writes nothing.

`check`, `apply --dry-run` and `apply` share the per-file scan
(wasiport.check.filescan.scan_bytes): the findings a plan applies are the findings check
reports. A plan is:
- byte-range edits of the Rust files (from the findings' fixes),
- the compat module file and its `mod` declaration in each crate root whose
  module tree uses std's sockets,
- the socket crate under `[target.'cfg(<gate>)'.dependencies]` in Cargo.toml.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from wasiport.cargo.changes import plan_socket_dependency
from wasiport.cargo.manifest import edit_manifest
from wasiport.engine import transforms
from wasiport.engine.edits import OverlappingEdits, apply_edits
from wasiport.engine.context import ScanContext
from wasiport.errors import UserError
from wasiport.model import Edit, Finding, PortStatus, Problem, Profile
from wasiport.paths import rules_dir
from wasiport.rust.modtree import module_cfgd_out, module_tree
from wasiport.rust.source import MAX_FILE_BYTES, SourceFile
from wasiport.check.files import FileTask, crate_files, nested_packages
from wasiport.check.report import is_fixable
from wasiport.check.scan import scan_crate
from wasiport.check.filescan import scan_file
from wasiport.engine.pack import load_compat, load_rules


@dataclass(frozen=True)
class Root:
    """A crate target's root file (src/lib.rs, src/main.rs, src/bin/x.rs)."""

    path: Path
    kind: str  # lib | bin


@dataclass
class PortPlan:
    crate_root: Path
    profile: Profile
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # blocking: nothing may be written
    notes: list[str] = field(default_factory=list)
    originals: dict[Path, bytes] = field(default_factory=dict)  # files that change (absent: new file)
    contents: dict[Path, bytes] = field(default_factory=dict)  # their new contents
    edits: dict[Path, list[Edit]] = field(default_factory=dict)
    rules_applied: dict[str, int] = field(default_factory=dict)
    port_exists: bool = False  # a target root declares the compat module: an earlier port

    @property
    def is_noop(self) -> bool:
        return not self.contents

    @property
    def no_change(self) -> str:
        """Why a plan that changes nothing does: "already ported" only when a port exists."""
        return "already ported" if self.port_exists else "nothing to port"

    @property
    def degraded(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.DEGRADED]

    @property
    def manual(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.MANUAL]

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.crate_root).as_posix()
        except ValueError:
            return path.as_posix()

    def diff(self) -> str:
        chunks: list[str] = []
        for path in sorted(self.contents):
            old = self.originals.get(path)
            new = self.contents[path]
            rel = self.relative(path)
            old_lines = old.decode("utf-8", "replace").splitlines(keepends=True) if old is not None else []
            new_lines = new.decode("utf-8", "replace").splitlines(keepends=True)
            chunks.extend(
                difflib.unified_diff(old_lines, new_lines, f"a/{rel}" if old is not None else "/dev/null", f"b/{rel}")
            )
        text = "".join(chunks)
        return text if not text or text.endswith("\n") else text + "\n"


def compat_template(profile: Profile, directory: Path | None = None) -> str:
    base = (directory or rules_dir() / profile.name) / "compat"
    name = "wasiport_net_0_4.rs" if profile.socket_api == "0.4" else "wasiport_net.rs"
    path = base / name
    if not path.is_file():
        raise UserError(f"the rule pack has no compat module template {path}")
    return path.read_text(encoding="utf-8")


def plan_port(
    crate_root: Path,
    roots: list[Root],
    profile: Profile,
    *,
    edition: str = "2021",
    rules_directory: Path | None = None,
    max_file_bytes: int | None = None,
) -> PortPlan:
    crate_root = crate_root.resolve()
    plan = PortPlan(crate_root, profile)
    pack = load_rules(profile, directory=rules_directory, compile_queries=True)
    context = ScanContext(profile, load_compat(profile, rules_directory))
    owners = _module_owners(roots, plan)
    root_paths = {r.path.resolve() for r in roots}
    plan.port_exists = any(_declares_compat(r.path, profile) for r in roots)
    roots_with_edits: set[Path] = set()
    cfgd_out: dict[Path, bool] = {}
    for path in _files_of(crate_root, root_paths):
        report, _parsed, _stat = scan_file(FileTask(str(path), plan.relative(path), path in root_paths), pack.rules, context, for_edits=True, max_bytes=max_file_bytes or MAX_FILE_BYTES)
        if not report.findings and not report.problems:
            continue
        if path not in root_paths and module_cfgd_out(path, cfgd_out):
            continue  # its module is cfg'd out of the wasm build: check drops it too
        if report.problems:
            plan.problems.extend(report.problems)  # nothing may be written: the file is not what its findings describe
            continue
        _take_findings(plan, path, report.findings)
        if path in plan.edits:
            roots_with_edits.update(r.path.resolve() for r in owners.get(path) or _fallback_owners(roots))
    plan.notes.extend(_nested_package_notes(crate_root, profile))
    if plan.problems:
        return plan
    for path, edits in plan.edits.items():
        original = path.read_bytes()
        try:
            plan.originals[path] = original
            plan.contents[path] = apply_edits(original, [_rebase(e, path) for e in edits])
        except OverlappingEdits as err:
            raise UserError(f"{plan.relative(path)}: two rewrites overlap ({err}); please report this file") from None
    # Roots whose modules now use the compat module, and roots ported before (to refresh the module).
    compat_roots = [r for r in roots if r.path.resolve() in roots_with_edits or _declares_compat(r.path, profile)]
    if compat_roots:
        _plan_compat_module(plan, compat_roots, profile, edition, rules_directory)
        _plan_manifest(plan, crate_root / "Cargo.toml", profile)
    return plan


def _nested_package_notes(crate_root: Path, profile: Profile) -> list[str]:
    """Nested packages with findings `check` of this directory calls fixable: crates of their
    own, which this port leaves alone (as cargo builds the root package alone); say how to
    port each, so that "nothing to port" is not read as "check was wrong"."""
    notes = []
    for package in nested_packages(crate_root):
        fixable = sum(1 for f in scan_crate(package, profile) if is_fixable(f))
        if fixable:
            shown = Path(os.path.relpath(package)).as_posix()  # as the user would type it here
            notes.append(f"{shown}/ is a package of its own ({fixable} fixable finding(s)), not part of this port: `wasiport apply {shown}` ports it")
    return notes


def _files_of(crate_root: Path, root_paths: set[Path]) -> list[Path]:
    """The crate's files as check sees them (wasiport.check.files: not tests/, examples/,
    benches/, build.rs, nor nested packages), and its target roots wherever they are."""
    files = {Path(task.path) for task in crate_files(crate_root)}
    return sorted(files | root_paths)


def _module_owners(roots: list[Root], plan: PortPlan) -> dict[Path, list[Root]]:
    """The roots whose module tree reaches each file (a module shared by lib and bin has two)."""
    owners: dict[Path, list[Root]] = {}
    for root in roots:
        tree = module_tree(root.path)
        for missing in tree.missing:
            plan.notes.append(f"module file not found: {missing}")
        for path in tree.files:
            owners.setdefault(path, []).append(root)
    return owners


def _fallback_owners(roots: list[Root]) -> list[Root]:
    """Who declares the compat module for a file no root's `mod` items reach (included some
    other way): the library, else every binary."""
    libraries = [r for r in roots if r.kind == "lib"]
    return libraries or roots


def _take_findings(plan: PortPlan, path: Path, findings: list[Finding]) -> None:
    """A file's findings into the plan, and the edits of their fixes."""
    plan.findings.extend(findings)
    edits = [edit for f in findings if f.fix for edit in f.fix.edits]
    for finding in findings:
        if finding.fix and finding.fix.edits:
            plan.rules_applied[finding.rule_id] = plan.rules_applied.get(finding.rule_id, 0) + 1
    if edits:
        plan.edits[path] = edits


def _rebase(edit: Edit, path: Path) -> Edit:
    return Edit(str(path), edit.start, edit.end, edit.replacement)


def _declares_compat(root: Path, profile: Profile) -> bool:
    text = root.read_bytes()
    return f"mod {profile.compat_module};".encode() in text


def compat_location(crate_root: Path, root: Path) -> Path:
    """One compat file per crate: src/wasiport_net.rs, shared by lib and bin roots under src/."""
    source_dir = crate_root / "src"
    try:
        root.resolve().relative_to(source_dir.resolve())
        return source_dir / "wasiport_net.rs"
    except ValueError:
        return root.parent / "wasiport_net.rs"


_FORBIDS_UNSAFE = re.compile(rb"#!\[\s*forbid\s*\([^\]]*\bunsafe_code\b")


def without_unsafe_regions(template: str) -> str:
    """The template without its `// wasiport:unsafe-begin` ... `-end` regions (inclusive)."""
    kept: list[str] = []
    skipping = False
    for line in template.splitlines(keepends=True):
        if "// wasiport:unsafe-begin" in line:
            skipping = True
        elif "// wasiport:unsafe-end" in line:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "".join(kept)


def _without_unsafe(finding: Finding) -> Finding:
    """peek needs unsafe code in the compat module; without it, the call returns Unsupported."""
    if not finding.rule_id.endswith("/peek"):
        return finding
    note = "degraded: the crate forbids unsafe code, so the compat module's peek returns Unsupported"
    return finding._replace(port=PortStatus.DEGRADED, help=f"{finding.help} ({note})" if finding.help else note)


def _plan_compat_module(plan: PortPlan, roots: list[Root], profile: Profile, edition: str, rules_directory: Path | None) -> None:
    text = compat_template(profile, rules_directory)
    if any(_FORBIDS_UNSAFE.search(root.path.read_bytes()) for root in roots):
        # `#![forbid(unsafe_code)]` cannot be relaxed inside the crate: leave the unsafe parts out
        text = without_unsafe_regions(text)
        plan.notes.append("the crate forbids unsafe code: the compat module leaves out peek/peek_from and raw-fd conversions")
        plan.findings = [_without_unsafe(f) for f in plan.findings]
    template = text.encode("utf-8")
    for root in roots:
        target = compat_location(plan.crate_root, root.path).resolve()
        current = target.read_bytes() if target.is_file() else None
        if current != template and target not in plan.contents:
            if current is not None:
                plan.originals[target] = current
            plan.contents[target] = template
        root_path = root.path.resolve()
        if _declares_compat(root_path, profile) or (root_path in plan.contents and f"mod {profile.compat_module};".encode() in plan.contents[root_path]):
            continue
        base = plan.contents.get(root_path, root_path.read_bytes())
        source = SourceFile.from_bytes(str(root_path), base)
        relative = os.path.relpath(target, root_path.parent)
        path_attribute = None if relative == target.name else Path(relative).as_posix()
        edit = transforms.module_declaration(
            base, str(root_path), profile, source.newline, source.root, extern_crate=edition == "2015", path_attribute=path_attribute
        )
        if root_path not in plan.originals:
            plan.originals[root_path] = root_path.read_bytes()
        plan.contents[root_path] = apply_edits(base, [edit])


def _plan_manifest(plan: PortPlan, manifest: Path, profile: Profile) -> None:
    text = manifest.read_text(encoding="utf-8")
    edit = edit_manifest(text, plan_socket_dependency(profile), path_for_errors=plan.relative(manifest))
    if edit.conflicts:
        for conflict in edit.conflicts:
            plan.problems.append(Problem("wasiport/manifest-conflict", str(conflict), plan.relative(manifest)))
        return
    plan.notes.extend(edit.notes)
    if edit.changed:
        plan.originals[manifest.resolve()] = text.encode("utf-8")
        plan.contents[manifest.resolve()] = edit.text.encode("utf-8")
