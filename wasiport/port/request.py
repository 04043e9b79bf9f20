"""What the user asked `apply` for, and what it reports back.

`ApplyRequest` is the whole command line of `wasiport apply` as data; `ApplyOutcome`
what a run produced beside its `PortResult`; `PortFailed` the error of a port that was
written but did not build or verify.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wasiport.errors import UserError
from wasiport.model import PortResult, Profile

Progress = Callable[[str], None]


@dataclass
class ApplyRequest:
    spec: str
    profile: Profile = field(default_factory=Profile)
    manifest_path: Path | None = None
    into: Path | None = None
    git_url: str | None = None
    rev: str | None = None
    branch: str = "wasiport/wasmedge"
    allow_dirty: bool = False
    allow_no_vcs: bool = False
    keep_broken: bool = False
    dry_run: bool = False
    build: bool = True
    toolchain: str | None = None
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    export_patches: Path | None = None
    from_patches: Path | None = None
    run_args: list[str] | None = None  # --run: run the consumer's module with these arguments
    run_allow: tuple[str, ...] = ()
    run_env: tuple[tuple[str, str], ...] = ()  # --env KEY=VALUE pairs for --run
    rules_directory: Path | None = None
    env: dict[str, str] | None = None
    runtime: str | None = None  # --runtime wasmedge-X.Y: the module must link on that release (and --run runs as it would)
    wait: float | None = None  # seconds to wait for another wasiport's writer lock (None: the default)
    max_file_bytes: int | None = None  # --max-file-size: port files larger than the usual limit


@dataclass
class ApplyOutcome:
    result: PortResult
    diff: str = ""  # --dry-run: the unified diff of every change
    module: Path | None = None  # the verified .wasm (consumer's program), if any
    run_exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    build_diagnostics: list[str] = field(default_factory=list)


class PortFailed(UserError):
    """The port was written but did not build or verify; it was rolled back (or kept)."""

    exit_code = 1
    result: PortResult | None = None
