"""`wasiport check`: which files make a crate, the per-file scan, the scan cache, the reports.

Public API::

    from wasiport.check import scan_paths, render_text, exit_code
    report = scan_paths([Path("my-crate")], profile, jobs=2)

The check path is measured for start-up cost (see wasiport/model.py): modules here import
only what a one-file check needs; Cargo.toml checks load their TOML reader on first use.
"""
from wasiport.check.manifests import key_span
from wasiport.check.report import exit_code, render, render_github, render_json, render_sarif, render_text
from wasiport.check.scan import (
    PREFILTER,
    discover,
    display_path,
    is_generated,
    load_compat,
    load_rules,
    scan_crate,
    scan_paths,
)

__all__ = [
    "PREFILTER",
    "discover",
    "display_path",
    "exit_code",
    "is_generated",
    "key_span",
    "load_compat",
    "load_rules",
    "render",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "scan_crate",
    "scan_paths",
]
