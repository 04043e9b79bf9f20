"""`wasiport apply`: the port pipeline, locate → plan → git → manifest → build → verify → run.

Public API::

    from wasiport.port import ApplyRequest, apply
    outcome = apply(ApplyRequest(crate="redis-rs", manifest_path=Path("Cargo.toml")))

`plan` is pure (findings, byte-range edits, Cargo.toml changes; nothing written);
`locate` finds a crate's sources (path, cargo metadata, registry, git, .crate, recipes).
"""
from wasiport.port.pipeline import ApplyOutcome, ApplyRequest, ConsumerChange, PortFailed, Progress, apply, commit_message, toolchain_env
from wasiport.port.sources import locate
from wasiport.port.plan import Root, plan_port

__all__ = [
    "ApplyOutcome",
    "ApplyRequest",
    "ConsumerChange",
    "PortFailed",
    "Progress",
    "Root",
    "apply",
    "commit_message",
    "locate",
    "plan_port",
    "toolchain_env",
]
