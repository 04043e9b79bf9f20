"""Everything that speaks Cargo: running it, toolchains and builds, Cargo.toml changes,
Cargo's versions.

Public API::

    from wasiport.cargo import find_toolchain, build, cargo_metadata, SetDependency
    from wasiport.cargo.manifest import edit_manifest   # the editor (tomlkit)
    from wasiport.cargo.probe import make_probe          # writes a crate (tomlkit)

- `process`: the one gateway for cargo and rustc ($CARGO/$RUSTC, timeouts, one error
  format, the offline hint); `workspace`: the upward walk to Cargo.toml files, the
  workspace root, `cargo metadata`.
- `toolchain`: a cargo + rustc that can build for a wasm32 WASI target; `build`: cargo
  builds with JSON messages; `diagnostics`: compiler messages, traced back to a port's
  edits; `probe`: a bin crate that links a ported library.
- `changes`: the change algebra (frozen dataclasses) and the plans a port makes;
  `manifest`: the editor that applies changes keeping the file's formatting;
  `patchcheck`: did cargo take a `[patch]`; `versions`: version requirements and
  `[target]` tables.

This façade names what reading a project needs. The editor and the probe writer load
tomlkit, so they are imported from their modules by the code that writes (`port`,
`deps.substitutions`), and `check --deps` never loads them.
"""
from wasiport.cargo.build import Artifact, BuildResult, build
from wasiport.cargo.changes import (
    AddPatch,
    AddRustCfgs,
    Change,
    Conflict,
    DependencySpec,
    DepTable,
    EnableFeatures,
    ExcludeFromWorkspace,
    ManifestEdit,
    MoveDependency,
    SetDependency,
    plan_consumer_patch,
    plan_socket_dependency,
    plan_wasm_rustflags,
)
from wasiport.cargo.diagnostics import Attribution, Diagnostic, edits_with_rules, map_diagnostics
from wasiport.cargo.patchcheck import PatchCheck, verify_patch_used
from wasiport.cargo.process import cargo_program, offline_hint, run_cargo
from wasiport.cargo.toolchain import Toolchain, find_toolchain
from wasiport.cargo.versions import Version, VersionReq, target_applies_to_wasm
from wasiport.cargo.workspace import cargo_metadata, manifests_above, nearest_manifest, workspace_root

__all__ = [
    "AddPatch",
    "AddRustCfgs",
    "Artifact",
    "Attribution",
    "BuildResult",
    "Change",
    "Conflict",
    "DepTable",
    "DependencySpec",
    "Diagnostic",
    "EnableFeatures",
    "ExcludeFromWorkspace",
    "ManifestEdit",
    "MoveDependency",
    "PatchCheck",
    "SetDependency",
    "Toolchain",
    "Version",
    "VersionReq",
    "build",
    "cargo_metadata",
    "cargo_program",
    "edits_with_rules",
    "find_toolchain",
    "manifests_above",
    "map_diagnostics",
    "nearest_manifest",
    "offline_hint",
    "plan_consumer_patch",
    "plan_socket_dependency",
    "plan_wasm_rustflags",
    "run_cargo",
    "target_applies_to_wasm",
    "verify_patch_used",
    "workspace_root",
]
