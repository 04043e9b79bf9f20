"""Everything that speaks Cargo: toolchains and builds, Cargo.toml changes, Cargo's versions.

Public API::

    from wasiport.cargo import find_toolchain, build, edit_manifest, cargo_metadata

`build` finds a toolchain and its wasm target, runs cargo with JSON diagnostics and maps
them back to rewritten code; `manifest` plans and applies Cargo.toml changes with tomlkit
(and proves their meaning by re-reading its own output); `versions` holds Cargo's version
requirements and `[target]` table rules, shared by check and apply.
"""
from wasiport.cargo.builds import BuildResult, Diagnostic, Toolchain, build, find_toolchain, make_probe, map_diagnostics
from wasiport.cargo.manifest import (
    AddPatch,
    AddRustCfgs,
    Change,
    DependencySpec,
    DepTable,
    FileChanges,
    MoveDependency,
    SetDependency,
    apply_changes,
    cargo_metadata,
    edit_manifest,
    plan_consumer_patch,
    plan_socket_dependency,
    verify_patch_used,
)
from wasiport.cargo.versions import Version, VersionReq, target_applies_to_wasm

__all__ = [
    "AddPatch",
    "AddRustCfgs",
    "BuildResult",
    "Change",
    "DepTable",
    "DependencySpec",
    "Diagnostic",
    "FileChanges",
    "MoveDependency",
    "SetDependency",
    "Toolchain",
    "Version",
    "VersionReq",
    "apply_changes",
    "build",
    "cargo_metadata",
    "edit_manifest",
    "find_toolchain",
    "make_probe",
    "map_diagnostics",
    "plan_consumer_patch",
    "plan_socket_dependency",
    "target_applies_to_wasm",
    "verify_patch_used",
]
