"""Toolchains: a cargo and rustc pair that can build for a wasm32 WASI target.

`find_toolchain` picks a cargo + rustc whose std is installed for a wasm32 WASI target
(`wasm32-wasip1` on Rust >= 1.78, `wasm32-wasi` up to 1.83) and explains, when there is
none, what was tried and how to install one. rustc and rustup are asked through the
process gateway (`wasiport.cargo.process`).
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wasiport.cargo.process import ask_rustc, rustc_program
from wasiport.cargo.process import run_query as _run_query
from wasiport.errors import UserError
from wasiport.model import Profile

WASM_TARGETS: tuple[str, ...] = Profile().targets  # preferred first
SYSTEM_BIN_DIRS: tuple[Path, ...] = (Path("/usr/bin"),)
DEBIAN_INSTALL = "apt-get install rustc cargo libstd-rust-dev-wasm32 lld wasi-libc"
# What to do about a rustc that knows no WASI preview 1 target.
TARGET_FIX = (
    "use Rust 1.78 or newer with `rustup target add wasm32-wasip1` "
    f"(or Debian's Rust 1.63 with wasm32-wasi: `{DEBIAN_INSTALL}`)"
)


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
    """The first of `targets` that rustc knows and has std installed for; else why not (a sentence).

    THE target choice (builds, `check --deps`, `apply --deps`): modern first, so
    `wasm32-wasip1` wherever it exists and `wasm32-wasi` only for a toolchain that lacks it
    (or whose only wasm32 std is wasm32-wasi's)."""
    known_targets = [t for t in targets if t in known]
    for target in known_targets:
        if has_std_for(sysroot, target):
            return target
    if not known_targets:
        return unknown_targets_reason(targets)
    return f"has no std installed for {' or '.join(known_targets)} (looked in {sysroot}/lib/rustlib)"


def unknown_targets_reason(targets: Sequence[str] = WASM_TARGETS) -> str:
    names = f"{targets[0]} nor {targets[1]}" if len(targets) == 2 else ", ".join(targets)
    return f"knows {'neither' if len(targets) == 2 else 'none of the targets'} {names}"


def metadata_wasm_target(env: Mapping[str, str] | None, targets: Sequence[str] = WASM_TARGETS) -> str:
    """The target `cargo metadata --filter-platform` resolves for, with the rustc of `env`:
    `choose_wasm_target`'s, or, where no std is installed (resolving needs none), the first of
    `targets` rustc knows. Raises UserError in one sentence when rustc knows none of them."""
    environ = os.environ if env is None else env
    rustc = rustc_program(environ)
    known = set(ask_rustc(["--print", "target-list"], environ).split())
    code, sysroot, _ = _run_query([rustc, "--print", "sysroot"], environ)
    choice = choose_wasm_target(known, Path(sysroot.strip() or "/nonexistent"), targets)
    if choice in targets:
        return choice
    known_targets = [t for t in targets if t in known]
    if known_targets:
        return known_targets[0]
    code, version_text, _ = _run_query([rustc, "-vV"], environ)
    version = _release(version_text) if code == 0 else None
    raise UserError(
        f"{rustc}{f' (rustc {version})' if version else ''} {unknown_targets_reason(targets)}: {TARGET_FIX}"
    )


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
    if len(attempts) == 1 and attempts[0].reason.startswith(unknown_targets_reason(targets)):
        # One compiler, and it is too old (or too foreign) for WASI: say so and how to fix it.
        only = attempts[0]
        return UserError(f"{only.origin} [{only.rustc}] {only.reason}: {TARGET_FIX}")
    return UserError(f"{head}. Tried:\n{tried}", hint=hint)
