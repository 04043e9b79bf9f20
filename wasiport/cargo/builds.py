"""Toolchains and cargo builds: the "build" layer of a port's proof.

- `find_toolchain` picks a cargo + rustc whose std is installed for a wasm32
  WASI target (`wasm32-wasip1` on Rust >= 1.78, `wasm32-wasi` up to 1.83) and
  explains, when there is none, what was tried and how to install one.
- `build` runs `cargo build` with JSON messages and returns structured
  diagnostics and the produced artifacts (`.wasm` modules, `.rlib`s).
- `map_diagnostics` traces compiler errors back to the edits a port made, so
  apply can say "error in code rewritten by rule X".
- `make_probe` writes a tiny bin crate that depends on a ported library by path:
  the library's own dev-dependencies and workspace need not resolve offline.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wasiport.cargo.process import run_query as _run_query
from wasiport.cargo.process import stream_cargo, wants_offline
from wasiport.cargo.workspace import workspace_root
from wasiport.errors import UserError
from wasiport.model import Edit, Finding, Profile
from wasiport.tomlread import read_toml

WASM_TARGETS: tuple[str, ...] = Profile().targets  # preferred first
SYSTEM_BIN_DIRS: tuple[Path, ...] = (Path("/usr/bin"),)
DEBIAN_INSTALL = "apt-get install rustc cargo libstd-rust-dev-wasm32 lld wasi-libc"


# ---------------------------------------------------------------------------
# Toolchains


@dataclass(frozen=True)
class Toolchain:
    """A cargo and rustc pair that can build for `wasm_target`."""

    cargo: Path
    rustc: Path
    version: str  # rustc's release, e.g. "1.63.0"
    wasm_target: str  # "wasm32-wasip1" or "wasm32-wasi"
    origin: str  # how it was found, for messages: "rustup toolchain deb", "$CARGO/$RUSTC", ...
    sysroot: Path | None = None
    rustup_toolchain: str | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return _version_tuple(self.version)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) set up to run this toolchain's cargo.

        RUSTC pins the compiler; RUSTUP_TOOLCHAIN makes any rustup proxy that a build
        script starts use the same toolchain."""
        env = dict(os.environ if base is None else base)
        env["RUSTC"] = str(self.rustc)
        env["CARGO"] = str(self.cargo)
        if self.rustup_toolchain:
            env["RUSTUP_TOOLCHAIN"] = self.rustup_toolchain
        else:
            env.pop("RUSTUP_TOOLCHAIN", None)
        return env

    def describe(self) -> str:
        return f"rustc {self.version} ({self.origin}), target {self.wasm_target}"


@dataclass(frozen=True)
class ToolchainAttempt:
    """A place `find_toolchain` looked, and why it did not use it."""

    origin: str
    rustc: str | None
    reason: str


@dataclass(frozen=True)
class _Candidate:
    origin: str
    cargo: Path | None
    rustc: Path | None
    rustup_toolchain: str | None = None
    missing: str = ""  # set when the candidate is known to be unusable before probing


def find_toolchain(
    requested: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    targets: Sequence[str] = WASM_TARGETS,
    cwd: Path | None = None,
    system_bins: Sequence[Path] = SYSTEM_BIN_DIRS,
) -> Toolchain:
    """The first toolchain with std for a wasm32 WASI target, in this order:

    `requested` (a rustup toolchain name, `+deb` or `deb`; when given, nothing else is
    tried), `$CARGO`/`$RUSTC`, the active rustup toolchain (as seen from `cwd`), the
    other installed rustup toolchains, then distribution packages in `system_bins`.
    Raises `UserError` listing every attempt and the commands that install one.
    """
    environ = dict(os.environ if env is None else env)
    attempts: list[ToolchainAttempt] = []
    seen: set[Path] = set()
    for candidate in _candidates(requested, environ, cwd, system_bins):
        if candidate.missing:
            attempts.append(ToolchainAttempt(candidate.origin, None, candidate.missing))
            continue
        assert candidate.rustc is not None and candidate.cargo is not None
        real = _realpath(candidate.rustc)
        if real in seen:
            continue
        seen.add(real)
        found = _probe_candidate(candidate, environ, targets)
        if isinstance(found, Toolchain):
            return found
        attempts.append(found)
    raise _no_toolchain_error(requested, attempts, targets, environ)


def _candidates(
    requested: str | None, env: Mapping[str, str], cwd: Path | None, system_bins: Sequence[Path]
) -> Iterable[_Candidate]:
    rustup = shutil.which("rustup", path=env.get("PATH", ""))
    if requested:
        name = requested.lstrip("+")
        if not rustup:
            yield _Candidate(f"rustup toolchain {name}", None, None, name, "rustup is not on PATH")
        else:
            yield _rustup_candidate(rustup, name, env, cwd, f"rustup toolchain {name} (requested)")
        return
    if env.get("CARGO") or env.get("RUSTC"):
        yield _env_candidate(env)
    if rustup:
        active = _rustup_active(rustup, env, cwd)
        installed = _rustup_toolchains(rustup, env, cwd)
        if active:
            yield _rustup_candidate(rustup, active, env, cwd, f"rustup toolchain {active} (active)")
        elif not installed:
            yield _Candidate(f"rustup ({rustup})", None, None, missing="no toolchains installed")
        for name in installed:
            if name != active:
                yield _rustup_candidate(rustup, name, env, cwd, f"rustup toolchain {name}")
    for directory in system_bins:
        cargo, rustc = directory / "cargo", directory / "rustc"
        if rustc.is_file() and cargo.is_file():
            yield _Candidate(f"system packages in {directory}", cargo, rustc)
        else:
            yield _Candidate(f"system packages in {directory}", None, None, missing="no cargo and rustc there")


def _env_candidate(env: Mapping[str, str]) -> _Candidate:
    path = env.get("PATH", "")
    cargo_text, rustc_text = env.get("CARGO"), env.get("RUSTC")
    rustc = _executable(rustc_text, path) if rustc_text else _sibling(cargo_text, "rustc", path)
    cargo = _executable(cargo_text, path) if cargo_text else _sibling(rustc_text, "cargo", path)
    shown = ", ".join(f"${k}={v}" for k, v in (("CARGO", cargo_text), ("RUSTC", rustc_text)) if v)
    origin = f"environment ({shown})"
    if rustc is None:
        return _Candidate(origin, cargo, None, missing=f"rustc not found ({rustc_text or 'next to $CARGO'})")
    if cargo is None:
        return _Candidate(origin, None, rustc, missing=f"cargo not found ({cargo_text or 'next to $RUSTC'})")
    return _Candidate(origin, cargo, rustc)


def _executable(text: str | None, path: str) -> Path | None:
    if not text:
        return None
    if os.sep in text:
        candidate = Path(text)
        return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None
    found = shutil.which(text, path=path)
    return Path(found) if found else None


def _sibling(text: str | None, name: str, path: str) -> Path | None:
    """`name` next to the tool `text` names, else `name` on PATH."""
    tool = _executable(text, path)
    if tool is not None and (tool.parent / name).is_file():
        return tool.parent / name
    return _executable(name, path)


def _rustup_active(rustup: str, env: Mapping[str, str], cwd: Path | None) -> str | None:
    code, out, _ = _run_query([rustup, "show", "active-toolchain"], env, cwd)
    words = out.split()
    return words[0] if code == 0 and words else None


def _rustup_toolchains(rustup: str, env: Mapping[str, str], cwd: Path | None) -> list[str]:
    code, out, _ = _run_query([rustup, "toolchain", "list"], env, cwd)
    if code != 0:
        return []
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    # Skip rustup's own remarks, e.g. "no installed toolchains" or "info: ...".
    return [line.split()[0] for line in lines if not line.lower().startswith(("no installed", "info:"))]


def _rustup_candidate(rustup: str, name: str, env: Mapping[str, str], cwd: Path | None, origin: str) -> _Candidate:
    paths: dict[str, Path] = {}
    for tool in ("rustc", "cargo"):
        code, out, err = _run_query([rustup, "which", tool, "--toolchain", name], env, cwd)
        if code != 0 or not out.strip():
            reason = _first_line(err) or f"`rustup which {tool}` failed"
            return _Candidate(origin, None, None, name, f"{tool} not available: {reason}")
        paths[tool] = Path(out.strip())
    return _Candidate(origin, paths["cargo"], paths["rustc"], name)


def _probe_candidate(
    candidate: _Candidate, env: Mapping[str, str], targets: Sequence[str]
) -> Toolchain | ToolchainAttempt:
    assert candidate.rustc is not None and candidate.cargo is not None
    rustc = str(candidate.rustc)
    query_env = dict(env)
    if candidate.rustup_toolchain:
        query_env["RUSTUP_TOOLCHAIN"] = candidate.rustup_toolchain

    def reject(reason: str, version: str = "") -> ToolchainAttempt:
        return ToolchainAttempt(candidate.origin, f"{rustc}{f' ({version})' if version else ''}", reason)

    if not os.access(candidate.cargo, os.X_OK):
        return reject(f"cargo is missing or not executable: {candidate.cargo}")
    code, out, err = _run_query([rustc, "-vV"], query_env)
    version = _release(out) if code == 0 else None
    if version is None:
        return reject(_first_line(err) or f"`{rustc} -vV` did not report a version")
    code, target_list, err = _run_query([rustc, "--print", "target-list"], query_env)
    if code != 0:
        return reject(_first_line(err) or "`rustc --print target-list` failed", version)
    code, sysroot_text, err = _run_query([rustc, "--print", "sysroot"], query_env)
    if code != 0 or not sysroot_text.strip():
        return reject(_first_line(err) or "`rustc --print sysroot` failed", version)
    sysroot = Path(sysroot_text.strip())
    choice = choose_wasm_target(set(target_list.split()), sysroot, targets)
    if isinstance(choice, str) and choice in targets:
        return Toolchain(
            cargo=candidate.cargo,
            rustc=candidate.rustc,
            version=version,
            wasm_target=choice,
            origin=candidate.origin,
            sysroot=sysroot,
            rustup_toolchain=candidate.rustup_toolchain,
        )
    return reject(choice, f"rustc {version}")


def choose_wasm_target(known: set[str], sysroot: Path, targets: Sequence[str] = WASM_TARGETS) -> str:
    """The first of `targets` that rustc knows and has std installed for; else why not (a sentence)."""
    known_targets = [t for t in targets if t in known]
    for target in known_targets:
        if has_std_for(sysroot, target):
            return target
    if not known_targets:
        return f"knows none of the targets {', '.join(targets)}"
    return f"has no std installed for {' or '.join(known_targets)} (looked in {sysroot}/lib/rustlib)"


def has_std_for(sysroot: Path, target: str) -> bool:
    lib = sysroot / "lib" / "rustlib" / target / "lib"
    return lib.is_dir() and any(p.name.startswith("libstd-") for p in lib.iterdir())


def _release(version_output: str) -> str | None:
    match = re.search(r"^release:\s*(\S+)", version_output, re.MULTILINE)
    if match:
        return match.group(1)
    match = re.match(r"rustc (\d+\.\d+\.\d+\S*)", version_output)
    return match.group(1) if match else None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3])


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _realpath(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def _no_toolchain_error(
    requested: str | None, attempts: Sequence[ToolchainAttempt], targets: Sequence[str], env: Mapping[str, str]
) -> UserError:
    wanted = " or ".join(targets)
    head = (
        f"rustup toolchain {requested.lstrip('+')} cannot build for {wanted}"
        if requested
        else f"no Rust toolchain that can build for {wanted} was found"
    )
    tried = "\n".join(
        f"  - {a.origin}{f' [{a.rustc}]' if a.rustc else ''}: {a.reason}" for a in attempts
    ) or "  - nothing: no cargo, rustc or rustup was found"
    rustup_cmd = f"rustup target add {targets[0]}"
    if requested:
        rustup_cmd += f" --toolchain {requested.lstrip('+')}"
        if any("is not installed" in a.reason for a in attempts):
            return UserError(
                f"rustup toolchain {requested.lstrip('+')} is not installed",
                hint="`rustup toolchain list` shows the installed ones; choose one with +NAME",
            )
    hint = (
        f"install a wasm32 std with `{rustup_cmd}` (rustup, Rust >= 1.78), or on Debian/Ubuntu "
        f"`{DEBIAN_INSTALL}` (Rust 1.63 with wasm32-wasi)"
    )
    if not shutil.which("rustup", path=env.get("PATH", "")) and not requested:
        hint += "; rustup is not on PATH"
    return UserError(f"{head}. Tried:\n{tried}", hint=hint)


# ---------------------------------------------------------------------------
# Builds


@dataclass(frozen=True)
class Diagnostic:
    """One compiler message, located at its primary span (in user code when a macro is involved)."""

    level: str  # error | warning | note | help | "error: internal compiler error"
    message: str
    rendered: str
    code: str | None = None  # E0308, unused_imports, ...
    file: str | None = None  # absolute path when it could be resolved
    line: int = 0  # 1-based
    column: int = 0  # 1-based, in characters
    end_line: int = 0
    end_column: int = 0
    byte_start: int = 0  # 0-based byte offsets into the file as compiled
    byte_end: int = 0
    label: str | None = None
    package: str = ""
    target: str = ""

    @property
    def is_error(self) -> bool:
        return self.level.startswith("error")

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.file else "(no location)"


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
        return _first_line(self.stderr) or f"cargo exited with status {self.returncode}"


_COMPILER_SUMMARY = re.compile(r"^aborting due to |^\d+ warnings? emitted$")


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


def package_name(package_id: str) -> str:
    """The package name in a cargo package id, old (`name 1.0 (source)`) or new (`source#name@1.0`) form."""
    if " " in package_id:
        return package_id.split(" ", 1)[0]
    fragment = package_id.rsplit("#", 1)[-1]
    if "@" in fragment:
        return fragment.split("@", 1)[0]
    if "#" in package_id:  # `path+file:///x/foo#1.0`: the name is the last path segment
        return package_id.rsplit("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return fragment


def parse_compiler_message(message: Mapping) -> Diagnostic | None:
    """A `compiler-message` line of cargo's JSON output as a Diagnostic (None for other
    lines and for rustc's closing summaries such as "aborting due to 2 previous errors")."""
    if message.get("reason") != "compiler-message":
        return None
    body = message.get("message") or {}
    level = str(body.get("level", ""))
    text = str(body.get("message", ""))
    spans = body.get("spans") or []
    if not spans and (level == "failure-note" or _COMPILER_SUMMARY.search(text)):
        return None
    manifest = message.get("manifest_path")
    package_dir = Path(manifest).parent if manifest else None
    span = _user_span(spans, package_dir)
    code = (body.get("code") or {}).get("code")
    diag = Diagnostic(
        level=level,
        message=text,
        rendered=str(body.get("rendered") or ""),
        code=code,
        package=package_name(str(message.get("package_id", ""))),
        target=str((message.get("target") or {}).get("name", "")),
    )
    if span is None:
        return diag
    return replace(
        diag,
        file=_resolve_source(str(span.get("file_name", "")), package_dir),
        line=int(span.get("line_start", 0)),
        column=int(span.get("column_start", 0)),
        end_line=int(span.get("line_end", 0)),
        end_column=int(span.get("column_end", 0)),
        byte_start=int(span.get("byte_start", 0)),
        byte_end=int(span.get("byte_end", 0)),
        label=span.get("label"),
    )


def _user_span(spans: Sequence[Mapping], package_dir: Path | None) -> Mapping | None:
    """The primary span, followed out of macro expansions until it is in the package's code."""
    span = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    for _ in range(64):  # expansion chains are short; the bound guards against cycles
        if span is None or not span.get("expansion"):
            return span
        if package_dir is not None and _inside(_resolve_source(str(span.get("file_name", "")), package_dir), package_dir):
            return span
        span = span["expansion"].get("span") or span
    return span


def _resolve_source(file_name: str, package_dir: Path | None) -> str:
    """rustc names workspace members' files relative to the workspace root, which is the
    package's directory or one of its parents; other files come absolute."""
    path = Path(file_name)
    if path.is_absolute() or package_dir is None:
        return file_name
    for base in (package_dir, *package_dir.parents):
        if (base / path).is_file():
            return str(base / path)
    return str(package_dir / path)


def _inside(file_name: str, directory: Path) -> bool:
    try:
        Path(file_name).resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


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


# ---------------------------------------------------------------------------
# Tracing diagnostics to a port's edits


@dataclass(frozen=True)
class Attribution:
    """Where a diagnostic sits relative to the port's rewrites.

    relation: "inside" (its span overlaps rewritten text), "same-line" (it shares a
    line with rewritten text) or "outside"."""

    diagnostic: Diagnostic
    relation: str
    edit: Edit | None = None
    rule_id: str | None = None

    @property
    def in_rewritten_code(self) -> bool:
        return self.relation != "outside"


@dataclass(frozen=True)
class _Rewritten:
    start: int  # byte range of the replacement in the rewritten file
    end: int
    first_line: int
    last_line: int
    edit: Edit
    rule_id: str | None


def edits_with_rules(findings: Iterable[Finding]) -> tuple[list[Edit], list[str]]:
    """The edits of the findings' fixes, each with the rule that made it (for map_diagnostics)."""
    edits: list[Edit] = []
    rules: list[str] = []
    for finding in findings:
        for edit in finding.fix.edits if finding.fix else ():
            edits.append(edit)
            rules.append(finding.rule_id)
    return edits, rules


def map_diagnostics(
    diagnostics: Iterable[Diagnostic],
    edits: Sequence[Edit],
    rule_ids: Sequence[str | None] | None = None,
    *,
    root: Path,
    sources: Mapping[str, bytes] | None = None,
) -> list[Attribution]:
    """Attribute each diagnostic to the edit (and rule) whose rewritten text it falls in.

    `edits` are byte ranges of the *original* files (as a port plans them, non-overlapping);
    diagnostics point into the *rewritten* files, so each edit's replacement is located
    by shifting it past the earlier edits of its file. `Edit.path` is taken relative to
    `root`. Line numbers come from the rewritten file: `sources[edit.path]` if given,
    else the file on disk."""
    if rule_ids is not None and len(rule_ids) != len(edits):
        raise ValueError("rule_ids must have one entry per edit")
    rules = list(rule_ids) if rule_ids is not None else [None] * len(edits)
    by_file: dict[Path, list[tuple[Edit, str | None]]] = {}
    for edit, rule in zip(edits, rules):
        by_file.setdefault(_edit_file(root, edit.path), []).append((edit, rule))
    regions: dict[Path, list[_Rewritten]] = {}
    for path, items in by_file.items():
        text = sources.get(items[0][0].path) if sources is not None else None
        if text is None:
            text = _read_bytes(path)
        regions[path] = rewritten_regions(items, text)
    return [_attribute(diag, regions) for diag in diagnostics]


def rewritten_regions(items: Sequence[tuple[Edit, str | None]], rewritten: bytes | str) -> list[_Rewritten]:
    """Where each edit's replacement landed in the rewritten text of one file."""
    data = rewritten.encode("utf-8") if isinstance(rewritten, str) else rewritten
    regions: list[_Rewritten] = []
    shift = 0
    for edit, rule in sorted(items, key=lambda item: (item[0].start, item[0].end)):
        size = len(edit.replacement.encode("utf-8"))
        start = edit.start + shift
        end = start + size
        shift += size - (edit.end - edit.start)
        first_line = data.count(b"\n", 0, start) + 1
        last_line = data.count(b"\n", 0, max(start, end - 1)) + 1
        regions.append(_Rewritten(start, end, first_line, last_line, edit, rule))
    return regions


def _attribute(diag: Diagnostic, regions: Mapping[Path, list[_Rewritten]]) -> Attribution:
    if not diag.file:
        return Attribution(diag, "outside")
    candidates = regions.get(_realpath(Path(diag.file)), [])
    inside = [r for r in candidates if _overlaps(diag.byte_start, diag.byte_end, r.start, r.end)]
    if inside:
        best = min(inside, key=lambda r: r.end - r.start)  # the tightest rewrite explains it best
        return Attribution(diag, "inside", best.edit, best.rule_id)
    last_line = max(diag.line, diag.end_line)
    same_line = [r for r in candidates if r.first_line <= last_line and diag.line <= r.last_line]
    if same_line:
        best = min(same_line, key=lambda r: (abs(r.start - diag.byte_start), r.end - r.start))
        return Attribution(diag, "same-line", best.edit, best.rule_id)
    return Attribution(diag, "outside")


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    if a_start == a_end or b_start == b_end:  # an empty range touches what surrounds it
        return max(a_start, b_start) <= min(a_end, b_end)
    return a_start < b_end and b_start < a_end


def _edit_file(root: Path, path: str) -> Path:
    candidate = Path(path)
    return _realpath(candidate if candidate.is_absolute() else root / candidate)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read rewritten file {path}: {err.strerror or err}") from None


# ---------------------------------------------------------------------------
# Probe crates


PROBE_PACKAGE = "wasiport-probe"


def make_probe(
    crate_dir: Path,
    crate_name: str,
    lib_name: str,
    *,
    features: Sequence[str] = (),
    no_default_features: bool = False,
    into: Path,
) -> Path:
    """Write a bin crate at `into` that depends on the crate at `crate_dir` by path and
    links its library. Returns the probe's manifest path.

    The probe is its own workspace, so only the library's normal dependencies must
    resolve; `[patch]` tables of the crate (and of its workspace root) are carried over,
    because cargo honours patches only in the root manifest of a build."""
    import tomlkit  # only needed here

    crate_dir = Path(crate_dir).resolve()
    manifest = crate_dir / "Cargo.toml"
    if not manifest.is_file():
        raise UserError(f"no Cargo.toml in {crate_dir}")
    extern_name = lib_name.replace("-", "_")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", extern_name):
        raise UserError(f"{lib_name!r} is not a Rust library name")

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Generated by wasiport: proves that the port builds and links as a dependency."))
    package = tomlkit.table()
    package.add("name", PROBE_PACKAGE)
    package.add("version", "0.0.0")
    package.add("edition", "2018")
    package.add("publish", False)
    doc.add("package", package)
    dependency = tomlkit.inline_table()
    dependency.add("path", str(crate_dir))
    if no_default_features:
        dependency.add("default-features", False)
    if features:
        dependency.add("features", list(features))
    dependencies = tomlkit.table()
    dependencies.add(crate_name, dependency)
    doc.add("dependencies", dependencies)
    patches = collect_patches(crate_dir)
    if patches:
        patch_table = tomlkit.table(is_super_table=True)
        for source, entries in patches.items():
            source_table = tomlkit.table()
            for name, spec in entries.items():
                inline = tomlkit.inline_table()
                inline.update(spec)
                source_table.add(name, inline)
            patch_table.add(source, source_table)
        doc.add("patch", patch_table)
    doc.add("workspace", tomlkit.table())

    into = Path(into)
    (into / "src").mkdir(parents=True, exist_ok=True)
    (into / "Cargo.toml").write_text(tomlkit.dumps(doc), encoding="utf-8")
    (into / "src" / "main.rs").write_text(
        "// Generated by wasiport: links the ported library into a program.\n"
        "#[allow(unused_extern_crates)]\n"
        f"extern crate {extern_name} as _;\n\n"
        "fn main() {}\n",
        encoding="utf-8",
    )
    lock = workspace_root(crate_dir) / "Cargo.lock"
    if lock.is_file() and not (into / "Cargo.lock").exists():
        # Same versions as the crate's own build: offline, only those may be available.
        shutil.copyfile(lock, into / "Cargo.lock")
    return into / "Cargo.toml"


def collect_patches(crate_dir: Path) -> dict[str, dict[str, dict]]:
    """`[patch.<source>]` entries of the crate's manifest and its workspace root, with
    relative `path`s made absolute (they are relative to the manifest that holds them)."""
    merged: dict[str, dict[str, dict]] = {}
    manifests = [crate_dir / "Cargo.toml"]
    root = workspace_root(crate_dir)
    if root != crate_dir:
        manifests.insert(0, root / "Cargo.toml")
    for manifest in manifests:
        patch = read_toml(manifest).get("patch") or {}
        for source, entries in patch.items():
            for name, spec in (entries or {}).items():
                spec = dict(spec) if isinstance(spec, dict) else {"version": spec}
                if "path" in spec and not Path(spec["path"]).is_absolute():
                    spec["path"] = str((manifest.parent / spec["path"]).resolve())
                merged.setdefault(source, {})[name] = spec
    return merged
