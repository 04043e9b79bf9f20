"""Builds: `cargo build` with JSON messages, read into structured diagnostics and the
artifacts it produced (`.wasm` modules, `.rlib`s). The "build" layer of a port's proof.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo.diagnostics import Diagnostic, package_name, parse_compiler_message
from wasiport.cargo.process import first_line, stream_cargo, wants_offline
from wasiport.cargo.toolchain import Toolchain
from wasiport.errors import UserError


@dataclass(frozen=True)
class Artifact:
    """One compiled target of one package."""

    package: str
    target: str
    kinds: tuple[str, ...]  # lib, rlib, bin, cdylib, proc-macro, custom-build, ...
    files: tuple[Path, ...]
    executable: Path | None
    fresh: bool

    @property
    def wasm(self) -> Path | None:
        for path in ((self.executable,) if self.executable else ()) + self.files:
            if path.suffix == ".wasm":
                return path
        return None

    @property
    def rlib(self) -> Path | None:
        return next((p for p in self.files if p.suffix == ".rlib"), None)


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    command: tuple[str, ...]
    target: str | None
    returncode: int
    diagnostics: tuple[Diagnostic, ...]
    artifacts: tuple[Artifact, ...]
    stderr: str
    timed_out: bool = False

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.level == "warning")

    @property
    def wasm_modules(self) -> tuple[Path, ...]:
        """The linked modules: programs (bin) and wasm libraries (cdylib)."""
        return tuple(a.wasm for a in self.artifacts if a.wasm is not None)

    @property
    def rlibs(self) -> tuple[Path, ...]:
        return tuple(a.rlib for a in self.artifacts if a.rlib is not None)

    def rlib_of(self, package: str) -> Path | None:
        return next((a.rlib for a in self.artifacts if a.package == package and a.rlib), None)

    def failure_summary(self) -> str:
        """One line for a failed build: its first error, or cargo's own complaint."""
        if self.timed_out:
            return "cargo was stopped: the build ran past its time limit"
        if self.errors:
            first = self.errors[0]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"{first.location}: {first.message}{more}"
        for line in self.stderr.splitlines():
            if line.lstrip().startswith("error"):
                return line.strip()
        return first_line(self.stderr) or f"cargo exited with status {self.returncode}"


def cargo_command(
    manifest_path: Path,
    toolchain: Toolchain,
    *,
    target: str | None,
    features: Sequence[str] = (),
    no_default_features: bool = False,
    release: bool = False,
    target_dir: Path | None = None,
    offline: bool = False,
    color: bool = False,
) -> list[str]:
    fmt = "json-diagnostic-rendered-ansi" if color else "json"
    argv = [str(toolchain.cargo), "build", "--manifest-path", str(manifest_path), f"--message-format={fmt}"]
    if target:
        argv += ["--target", target]
    if features:
        argv += ["--features", ",".join(features)]
    if no_default_features:
        argv.append("--no-default-features")
    if release:
        argv.append("--release")
    if target_dir is not None:
        argv += ["--target-dir", str(target_dir)]
    if offline:
        argv.append("--offline")
    return argv


def build(
    manifest_path: Path,
    toolchain: Toolchain,
    *,
    target: str | None,
    features: Sequence[str] = (),
    no_default_features: bool = False,
    release: bool = False,
    env: Mapping[str, str] | None = None,
    target_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    offline: bool | None = None,
    color: bool = False,
    timeout: float | None = None,
) -> BuildResult:
    """Run `cargo build` for `target` (None: the host) and collect what it said and made.

    `progress` gets cargo's status lines ("Compiling foo v1.0") as they come. `offline`
    None means "as the environment says" (CARGO_NET_OFFLINE). A build that runs past
    `timeout` seconds is killed and reported as failed."""
    manifest_path = Path(manifest_path).resolve()
    if not manifest_path.is_file():
        raise UserError(f"no Cargo.toml at {manifest_path}")
    run_env = toolchain.env(env)
    if not color:
        run_env["CARGO_TERM_COLOR"] = "never"
    argv = cargo_command(
        manifest_path,
        toolchain,
        target=target,
        features=features,
        no_default_features=no_default_features,
        release=release,
        target_dir=target_dir,
        offline=wants_offline(run_env) if offline is None else offline,
        color=color,
    )
    run = stream_cargo(argv, manifest_path.parent, run_env, progress, timeout)
    diagnostics = tuple(d for m in run.messages if (d := parse_compiler_message(m)) is not None)
    artifacts = tuple(a for m in run.messages if (a := parse_artifact(m)) is not None)
    finished = next((m.get("success") for m in run.messages if m.get("reason") == "build-finished"), None)
    return BuildResult(
        ok=run.returncode == 0 and finished is not False,
        command=tuple(argv),
        target=target,
        returncode=run.returncode,
        diagnostics=diagnostics,
        artifacts=artifacts,
        stderr=run.stderr,
        timed_out=run.timed_out,
    )


def parse_artifact(message: Mapping) -> Artifact | None:
    if message.get("reason") != "compiler-artifact":
        return None
    target = message.get("target") or {}
    executable = message.get("executable")
    return Artifact(
        package=package_name(str(message.get("package_id", ""))),
        target=str(target.get("name", "")),
        kinds=tuple(target.get("kind") or ()),
        files=tuple(Path(f) for f in message.get("filenames") or ()),
        executable=Path(executable) if executable else None,
        fresh=bool(message.get("fresh")),
    )
