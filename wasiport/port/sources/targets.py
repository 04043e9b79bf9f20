"""A crate's cargo targets: from `cargo metadata --no-deps` when cargo can read the crate,
else discovered the way cargo does (src/lib.rs, src/main.rs, src/bin/*, `[[bin]]` ...)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wasiport.cargo.workspace import cargo_metadata
from wasiport.errors import UserError
from wasiport.port.sources.crate import Target, read_package

_LIB_KINDS = {"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"}
_KIND_ORDER = {"lib": 0, "bin": 1, "example": 2, "test": 3, "bench": 4, "build": 5}


def _sorted_targets(targets: Iterable[Target]) -> tuple[Target, ...]:
    return tuple(sorted(targets, key=lambda t: (_KIND_ORDER.get(t.kind, 9), t.name, str(t.src_path))))


def targets_from_metadata(package: Mapping[str, Any], *, moved_to: Path | None = None) -> tuple[Target, ...]:
    """The targets of one `cargo metadata` package; with MOVED_TO, paths rebased onto a copy."""
    source_root = Path(package["manifest_path"]).parent
    targets = []
    for entry in package.get("targets", []):
        kinds = set(entry.get("kind", []))
        kind = "lib" if kinds & _LIB_KINDS else "build" if "custom-build" in kinds else sorted(kinds)[0]
        path = Path(entry["src_path"])
        if moved_to is not None:
            with contextlib.suppress(ValueError):
                path = moved_to / path.relative_to(source_root)
        targets.append(Target(entry["name"], kind, path, tuple(entry.get("required-features", []))))
    return _sorted_targets(targets)


def _auto_targets(root: Path, directory: str, kind: str) -> list[Target]:
    """Cargo's auto-discovery: DIRECTORY/*.rs and DIRECTORY/*/main.rs."""
    base = root / directory
    if not base.is_dir():
        return []
    found = [Target(p.stem, kind, p) for p in base.glob("*.rs") if p.is_file()]
    found += [Target(p.parent.name, kind, p) for p in base.glob("*/main.rs") if p.is_file()]
    return found


def _explicit_targets(root: Path, entries: Any, kind: str, directory: str, manifest: Path) -> list[Target]:
    if not isinstance(entries, list):
        raise UserError(f"{manifest}: `[[{kind}]]` must be an array of tables")
    found = []
    for entry in entries:
        name = entry.get("name")
        if not isinstance(name, str):
            raise UserError(f"{manifest}: a `[[{kind}]]` target has no name")
        if "path" in entry:
            path = root / entry["path"]
        else:
            single, nested = root / directory / f"{name}.rs", root / directory / name / "main.rs"
            path = nested if nested.is_file() and not single.is_file() else single
        found.append(Target(name, kind, path, tuple(entry.get("required-features", []))))
    return found


def discover_targets(manifest: Path) -> tuple[Target, ...]:
    """Targets from Cargo.toml and cargo's conventions, offline (when `cargo metadata` cannot run)."""
    info = read_package(manifest)
    root = manifest.parent
    data, package = info.data, info.data["package"]
    targets: list[Target] = []

    lib = data.get("lib", {})
    lib_path = root / lib.get("path", "src/lib.rs")
    if "lib" in data or lib_path.is_file():
        lib_name = lib.get("name", info.name.replace("-", "_"))
        targets.append(Target(lib_name, "lib", lib_path, tuple(lib.get("required-features", []))))

    kinds = (("bin", "bin", "src/bin"), ("example", "example", "examples"), ("test", "test", "tests"),
             ("bench", "bench", "benches"))
    for key, kind, directory in kinds:
        explicit = _explicit_targets(root, data.get(key, []), kind, directory, manifest)
        # Edition 2015 switches auto-discovery off for a kind that lists targets by hand.
        auto_default = not (info.edition == "2015" and explicit)
        auto = package.get(f"auto{key}s" if key != "bench" else "autobenches", auto_default)
        discovered = _auto_targets(root, directory, kind) if auto else []
        if kind == "bin" and auto and (root / "src/main.rs").is_file():
            discovered.append(Target(info.name, "bin", root / "src/main.rs"))
        names = {t.name for t in explicit}
        paths = {t.src_path for t in explicit}
        targets += explicit
        targets += [t for t in discovered if t.name not in names and t.src_path not in paths]

    build = package.get("build", True)
    if isinstance(build, str):
        targets.append(Target("build-script-build", "build", root / build))
    elif build is not False and (root / "build.rs").is_file():
        targets.append(Target("build-script-build", "build", root / "build.rs"))
    return _sorted_targets(targets)


def crate_targets(manifest: Path, env: Mapping[str, str]) -> tuple[Target, ...]:
    """`cargo metadata --no-deps` when cargo can read the crate, else `discover_targets`."""
    try:
        metadata, _ = cargo_metadata(manifest, env, no_deps=True)
    except UserError:
        return discover_targets(manifest)
    wanted = manifest.resolve()
    for package in metadata.get("packages", []):
        if Path(package["manifest_path"]).resolve() == wanted:
            return targets_from_metadata(package)
    return discover_targets(manifest)


def library_name(targets: Iterable[Target]) -> str | None:
    return next((t.name for t in targets if t.kind == "lib"), None)
