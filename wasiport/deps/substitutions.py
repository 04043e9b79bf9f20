"""Substitutions: a graph report turned into Cargo.toml and `.cargo/config.toml` changes,
plus what the user must know (substitutes' caveats, crates to port, manual blockers).

"rename" swaps direct dependencies for the `*_wasi` crates (`tokio = { package =
"tokio_wasi", .. }`) under the port's gate; "patch" puts same-name forks in the
workspace root's `[patch.crates-io]` and their `--cfg` flags in `.cargo/config.toml`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo.changes import AddPatch, AddRustCfgs, Change, DependencySpec, DepTable, MoveDependency, SetDependency
from wasiport.cargo.manifest import FileChanges
from wasiport.deps.data import Remedy
from wasiport.deps.graph import GraphReport, PackageReport, SourceKind
from wasiport.model import Profile, Severity


@dataclass(frozen=True)
class Message:
    severity: Severity
    text: str
    package: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.text}"


@dataclass(frozen=True)
class SubstitutionPlan:
    files: tuple[FileChanges, ...]  # Cargo.toml files and .cargo/config.toml
    messages: tuple[Message, ...]

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.severity is Severity.ERROR)


def _rename_changes(package: PackageReport, profile: Profile) -> tuple[dict[Path, list[Change]], list[Message]]:
    assert package.substitution is not None
    entry = package.substitution.entry
    changes: dict[Path, list[Change]] = {}
    messages = []
    for requirement in package.required_by:
        if not requirement.dependent_is_member:
            continue
        if requirement.target is not None:
            messages.append(
                Message(
                    Severity.ERROR,
                    f"{requirement.dependent_manifest}: {requirement.key} is declared under "
                    f"[target.{requirement.target}]; replace it with {entry.package} by hand",
                    package.name,
                )
            )
            continue
        kept = tuple(f for f in requirement.features if f not in package.substitution.missing_features)
        spec = DependencySpec(
            package=entry.package,
            version=entry.version,
            default_features=None if requirement.uses_default_features else False,
            features=kept,
            optional=True if requirement.optional else None,
        )
        changes.setdefault(requirement.dependent_manifest, []).extend(
            [
                MoveDependency(requirement.key, DepTable(), DepTable.not_gated(profile.gate)),
                SetDependency(DepTable.gated(profile.gate), requirement.key, spec),
            ]
        )
    return changes, messages


def _port_hint(package: PackageReport) -> str:
    """How the user gets a portable crate ported: in place if it is theirs, else a patched copy."""
    if package.source in (SourceKind.WORKSPACE, SourceKind.PATH):
        return f"port it in place with `wasiport apply {package.root}`"
    if package.source is SourceKind.GIT and package.source_url:
        repository = package.source_url.removeprefix("git+").split("?", 1)[0].split("#", 1)[0]
        table = f"[patch.'{repository}']"
    else:
        table = "[patch.crates-io]"
    return f"port a copy with `wasiport apply {package.name}` and add it to {table}"


def plan_substitutions(report: GraphReport, profile: Profile) -> SubstitutionPlan:
    """Manifest and config changes for every substitution in the report, plus what the user
    must know: substitutes' caveats, crates to port with `wasiport apply`, manual blockers."""
    per_file: dict[Path, list[Change]] = {}
    messages: list[Message] = []
    cfgs: list[str] = []
    root_manifest = report.workspace_root / "Cargo.toml"
    for package in report.packages:
        if not package.needs_action:
            continue
        if package.remedy is Remedy.SUBSTITUTE and package.substitution is not None:
            entry = package.substitution.entry
            if entry.generation == "rename":
                changes, notes = _rename_changes(package, profile)
                for path, file_changes in changes.items():
                    per_file.setdefault(path, []).extend(file_changes)
                messages.extend(notes)
            else:
                per_file.setdefault(root_manifest, []).append(
                    AddPatch(package.name, DependencySpec(git=entry.git, branch=entry.branch))
                )
                cfgs.extend(c for c in entry.cfgs if c not in cfgs)
            summary = f"{package.name} {package.version} ({package.chain}): {package.reason}"
            messages.append(Message(Severity.NOTE, summary, package.name))
            messages.extend(
                Message(Severity.WARNING, f"{package.name}: {w}", package.name) for w in package.substitution.warnings
            )
            if entry.notes:
                messages.append(Message(Severity.NOTE, f"{package.name}: {entry.notes}", package.name))
        elif package.remedy is Remedy.PORTABLE:
            messages.append(
                Message(
                    Severity.WARNING,
                    f"{package.name} {package.version} ({package.chain}): {package.reason}; {_port_hint(package)}",
                    package.name,
                )
            )
        elif package.remedy is Remedy.MANUAL:
            messages.append(
                Message(
                    Severity.ERROR,
                    f"{package.name} {package.version} ({package.chain}): {package.reason}",
                    package.name,
                )
            )
    if cfgs:
        per_file.setdefault(report.workspace_root / ".cargo" / "config.toml", []).append(
            AddRustCfgs(f"cfg({profile.gate})", tuple(cfgs))
        )
    if any(isinstance(c, AddPatch) for c in per_file.get(root_manifest, [])):
        messages.append(
            Message(
                Severity.NOTE,
                "if Cargo.lock already pins the patched crates, run `cargo update -p <crate>` "
                "so that cargo takes the forks",
            )
        )
    files = tuple(FileChanges(path, tuple(changes)) for path, changes in per_file.items())
    return SubstitutionPlan(files=files, messages=tuple(messages))
