"""Whole projects: the dependency graph for the wasm target, substitutions, their report.

Public API::

    from wasiport.deps import analyze, render_table
    report = analyze(Path("app/Cargo.toml"), profile)

`graph` resolves the graph with `cargo metadata` and decides a remedy per package
(portable, substitute, manual); `data` is the dependency knowledge (rules/wasmedge);
`report` renders it. Writing is apart from reading: `wasiport.deps.substitutions`
(`plan_substitutions`: manifest changes, with the tomlkit editor) and
`wasiport.deps.apply` (`apply --deps`: the port pipeline) are imported by the apply
command only, so that `check --deps` loads neither the editor nor the pipeline.
"""
from wasiport.deps.data import load_deps_data
from wasiport.deps.graph import GraphReport, PackageReport, Remedy, SourceKind, analyze, wasm_target
from wasiport.deps.report import as_findings, remedy_text, render_table, to_json

__all__ = [
    "GraphReport",
    "PackageReport",
    "Remedy",
    "SourceKind",
    "analyze",
    "as_findings",
    "load_deps_data",
    "remedy_text",
    "render_table",
    "to_json",
    "wasm_target",
]
