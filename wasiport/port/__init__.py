"""`wasiport apply`: the port pipeline, locate → plan → git → manifest → build → verify → run.

Public API::

    from wasiport.port import ApplyRequest, apply
    outcome = apply(ApplyRequest(spec="redis-rs", manifest_path=Path("Cargo.toml")))

`request` is what the user asked; `sources` finds a crate's sources (path, cargo
metadata, registry, git, .crate, `recipes`); `plan` is pure (findings, byte-range edits,
Cargo.toml changes; nothing written); `stages` are the steps shared by `apply` and
`apply --deps` (locate_crate, clean_repo, plan_crate, commit, take_port); `consumer` plans the
consumer's `[patch]`; `wasiport.port.prove.prove` builds and inspects and returns a
`Proof` (not re-exported here: the name would hide its module); `pipeline` strings them
together.
"""
from wasiport.port.consumer import ConsumerChange, plan_consumer
from wasiport.port.pipeline import apply
from wasiport.port.plan import PortPlan, Root, plan_port
from wasiport.port.prove import BuildSubject, Proof, consumer_subject, probe_subject, subject_for
from wasiport.port.request import ApplyOutcome, ApplyRequest, PortFailed, Progress
from wasiport.port.sources import Crate, locate
from wasiport.port.stages import clean_repo, commit, commit_message, locate_crate, plan_crate, take_port, toolchain_env_and_profile

__all__ = [
    "ApplyOutcome",
    "ApplyRequest",
    "BuildSubject",
    "ConsumerChange",
    "Crate",
    "PortFailed",
    "PortPlan",
    "Progress",
    "Proof",
    "Root",
    "apply",
    "clean_repo",
    "commit",
    "commit_message",
    "consumer_subject",
    "locate",
    "locate_crate",
    "plan_crate",
    "plan_consumer",
    "plan_port",
    "probe_subject",
    "subject_for",
    "take_port",
    "toolchain_env_and_profile",
]
