"""`wasiport check`: which files make a crate, the per-file scan, the scan cache, the reports.

Public API::

    from wasiport.check import scan_paths, render_text, exit_code
    report = scan_paths([Path("my-crate")], profile, jobs=2)

- files.py: which files make a crate's wasm build (`in_wasm_build`, `crate_files`, the walk);
- filescan.py: THE per-file scan (`scan_file`, `scan_bytes`), also what `apply` plans with;
- scan.py: a tree's scan, sequencing the walk, the executor (executor.py), the cache
  (cache.py) and the garbage collector's pace (gcpace.py);
- manifests.py: Cargo.toml checks; report.py: text, JSON, SARIF, GitHub output.

The check path is measured for start-up cost (see wasiport/model.py): modules here import
only what a one-file check needs; Cargo.toml checks load their TOML reader on first use.
"""
from wasiport.check.manifests import key_span
from wasiport.check.report import exit_code, render, render_github, render_json, render_sarif, render_text
from wasiport.check.files import FileTask, crate_files, discover, display_path, in_wasm_build
from wasiport.check.filescan import PREFILTER, is_generated, scan_bytes, scan_file
from wasiport.check.scan import drop_cfgd_out_modules, scan_crate, scan_paths
from wasiport.engine.pack import load_compat, load_rules

__all__ = [
    "FileTask",
    "PREFILTER",
    "crate_files",
    "discover",
    "display_path",
    "drop_cfgd_out_modules",
    "exit_code",
    "in_wasm_build",
    "is_generated",
    "key_span",
    "load_compat",
    "load_rules",
    "render",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "scan_bytes",
    "scan_crate",
    "scan_file",
    "scan_paths",
]
