"""Where a crate's source comes from: the first stage of `wasiport apply`.

`locate(spec, ...)` turns what the user typed into a `Crate`:

* `PATH` (a crate directory or its Cargo.toml): the user's own source, ported in place.
* `NAME[@VERSION]` with a consumer manifest (`--manifest-path`, else the Cargo.toml in
  the current directory or above): a dependency of the consumer, found with
  `cargo metadata`. A registry or git dependency is copied to
  `<consumer>/wasiport/<name>-<version>/`; a path dependency is the user's, in place.
* a registry entry (a directory with `.cargo-checksum.json` or `.cargo-ok`): read-only
  source, copied.
* `--git URL [--rev REV]`: cloned; the crate is SPEC inside the clone (a workspace member).
* a `.crate` archive: unpacked with strict checks.
* a recipe name (`redis-rs`): the recipe maps it to the crate name (`redis`) and brings
  the repository, features to trim and notes (`load_recipes`).

Every copy is a git repository whose first commit is `upstream: <name> <version>`,
so the port is a reviewable diff on top of the pristine source; a copy that exists
already with that commit is reused. `--into DIR` puts copies in `DIR/<name>-<version>/`.

Cargo is found through `$CARGO` (what cargo itself exports to build scripts), else
`cargo` on PATH; the environment passed in reaches it unchanged, so a `CARGO_HOME` with
a directory source makes everything work offline.
"""
from __future__ import annotations

import dataclasses

import contextlib
import difflib
import enum
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import git

from wasiport import vcs
from wasiport.cargo.workspace import cargo_metadata, nearest_manifest, workspace_manifest
from wasiport.errors import UserError
from wasiport.tomlread import read_toml

COPIES_DIR = "wasiport"  # default parent of copied crates
CARGO_PACKAGE_FILES = (".cargo-checksum.json", ".cargo_vcs_info.json", ".cargo-ok")
# Never tracked files: build output must not make a copy look dirty to the clean-tree gate.
COPY_GIT_EXCLUDES = ("/target/", "/Cargo.lock")
_LIB_KINDS = {"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"}
_KIND_ORDER = {"lib": 0, "bin": 1, "example": 2, "test": 3, "bench": 4, "build": 5}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NETWORK_ERRORS = (
    "could not resolve host",
    "could not resolve hostname",
    "failed to connect",
    "couldn't connect",
    "connection refused",
    "network is unreachable",
    "connection timed out",
    "operation timed out",
    "temporary failure in name resolution",
    "name or service not known",
    "no route to host",
)


class Origin(str, enum.Enum):
    """How the crate's source was obtained; everything but PATH is wasiport's own copy."""

    PATH = "path"  # the user's source, ported in place
    DEPENDENCY = "dependency"  # copied from a consumer's registry or git dependency
    REGISTRY = "registry"  # copied from a registry directory entry
    GIT = "git"  # cloned with --git
    ARCHIVE = "archive"  # unpacked from a .crate file

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Recipe:
    """What a well-known name means (`wasiport apply redis-rs`): data from `recipes/*.toml`."""

    name: str  # the file's stem
    crate: str  # the package name on crates.io
    source_file: Path
    aliases: tuple[str, ...] = ()
    summary: str = ""
    repository: str | None = None
    tag_format: str | None = None  # e.g. "redis-{version}": the git tag of a release
    subdirectory: str | None = None  # the crate's directory inside the repository
    tested_versions: tuple[str, ...] = ()
    default_features: bool | None = None  # None: leave the consumer's choice alone
    features: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def tag_for(self, version: str) -> str | None:
        return self.tag_format.format(version=version) if self.tag_format else None


@dataclass(frozen=True)
class Target:
    """One cargo target of the crate."""

    name: str
    kind: str  # lib | bin | example | test | bench | build
    src_path: Path
    required_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Crate:
    name: str
    version: str
    root: Path
    manifest_path: Path
    lib_name: str | None
    edition: str
    origin: Origin
    source: str  # where it came from, for messages: a path, a URL and revision, an archive
    consumer_manifest: Path | None = None
    targets: tuple[Target, ...] = ()
    recipe: Recipe | None = None
    repo_root: Path | None = None  # None: an in-place crate outside version control
    upstream_commit: str | None = None  # the `upstream:` commit of a copy
    reused: bool = False  # an existing copy was reused
    package_source: str | None = None  # cargo's source id of a dependency (registry+..., git+...)

    @property
    def is_copy(self) -> bool:
        return self.origin is not Origin.PATH

    @property
    def lib_path(self) -> Path | None:
        return next((t.src_path for t in self.targets if t.kind == "lib"), None)

    @property
    def bin_paths(self) -> tuple[Path, ...]:
        return tuple(t.src_path for t in self.targets if t.kind == "bin")


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps for unpacking a .crate (crates.io itself caps uploads at 10 MiB compressed)."""

    max_members: int = 20_000
    max_member_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024


# --------------------------------------------------------------------------------------
# manifests


def _package_field(manifest: Path, package: Mapping[str, Any], key: str, default: str) -> str:
    """A `[package]` value, following `key.workspace = true` to `[workspace.package]`."""
    value = package.get(key, default)
    if isinstance(value, dict) and value.get("workspace") is True:
        workspace = workspace_manifest(manifest.parent)
        inherited = (workspace[1] if workspace else {}).get("workspace", {}).get("package", {}).get(key)
        if inherited is None:
            raise UserError(f"{manifest}: `{key}.workspace = true` but no workspace above it defines it")
        value = inherited
    if not isinstance(value, str):
        raise UserError(f"{manifest}: `package.{key}` must be a string")
    return value


@dataclass(frozen=True)
class _PackageInfo:
    name: str
    version: str
    edition: str
    data: Mapping[str, Any]


def read_package(manifest: Path) -> _PackageInfo:
    """Name, version and edition of the package a Cargo.toml describes."""
    data = read_toml(manifest)
    package = data.get("package")
    if not isinstance(package, dict):
        raise UserError(f"{manifest} has no [package] table")
    name = package.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise UserError(f"{manifest}: `package.name` is missing or not a crate name")
    return _PackageInfo(
        name=name,
        version=_package_field(manifest, package, "version", "0.0.0"),
        edition=_package_field(manifest, package, "edition", "2015"),
        data=data,
    )


def _workspace_members(manifest: Path, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, relative dir) of a workspace's members, from its `members` globs."""
    root = manifest.parent
    excluded = {str(e) for e in data.get("workspace", {}).get("exclude", [])}
    members = []
    for pattern in data.get("workspace", {}).get("members", []):
        for directory in sorted(root.glob(str(pattern))):
            relative = directory.relative_to(root).as_posix()
            if relative in excluded or not (directory / "Cargo.toml").is_file():
                continue
            with contextlib.suppress(UserError):
                members.append((read_package(directory / "Cargo.toml").name, relative))
    return members


# --------------------------------------------------------------------------------------
# targets


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


def _lib_name(targets: Iterable[Target]) -> str | None:
    return next((t.name for t in targets if t.kind == "lib"), None)


# --------------------------------------------------------------------------------------
# recipes

_RECIPE_FIELDS: dict[str, tuple[type, bool]] = {
    # key: (type, required); lists hold strings
    "crate": (str, True),
    "summary": (str, False),
    "aliases": (list, False),
    "repository": (str, False),
    "tag-format": (str, False),
    "subdirectory": (str, False),
    "tested-versions": (list, False),
    "default-features": (bool, False),
    "features": (list, False),
    "notes": (list, False),
}


def _recipe_value(path: Path, data: Mapping[str, Any], key: str) -> Any:
    expected, required = _RECIPE_FIELDS[key]
    if key not in data:
        if required:
            raise UserError(f"{path}: key `{key}` is required")
        return None
    value = data[key]
    if not isinstance(value, expected):
        raise UserError(f"{path}: key `{key}` must be a {expected.__name__}, not {type(value).__name__}")
    if isinstance(value, list):
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise UserError(f"{path}: key `{key}` must be a list of non-empty strings")
        return tuple(value)
    return value


def parse_recipe(path: Path) -> Recipe:
    """Read and validate one recipe file; errors name the file and the key."""
    data = read_toml(path)
    unknown = sorted(set(data) - set(_RECIPE_FIELDS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(_RECIPE_FIELDS), n=1)
        raise UserError(
            f"{path}: unknown key `{unknown[0]}`" + (f" (did you mean `{close[0]}`?)" if close else ""),
            hint=f"known keys: {', '.join(_RECIPE_FIELDS)}",
        )
    values = {key: _recipe_value(path, data, key) for key in _RECIPE_FIELDS}
    for key in ("crate",):
        if not _NAME_RE.match(values[key]):
            raise UserError(f"{path}: key `{key}` is not a crate name: {values[key]!r}")
    for alias in values["aliases"] or ():
        if not _NAME_RE.match(alias):
            raise UserError(f"{path}: key `aliases` holds {alias!r}, which is not a name")
    tag_format = values["tag-format"]
    if tag_format is not None:
        try:
            probe = tag_format.format(version="1.2.3")
        except (KeyError, IndexError, ValueError):
            raise UserError(f"{path}: key `tag-format` may only use the placeholder {{version}}") from None
        if "1.2.3" not in probe:
            raise UserError(f"{path}: key `tag-format` must contain {{version}}")
    subdirectory = values["subdirectory"]
    if subdirectory is not None:
        parts = PurePosixPath(subdirectory).parts
        if PurePosixPath(subdirectory).is_absolute() or ".." in parts or not parts:
            raise UserError(f"{path}: key `subdirectory` must be a relative path inside the repository")
    if not _NAME_RE.match(path.stem):
        raise UserError(f"{path}: a recipe's file name must be the name users type, e.g. redis-rs.toml")
    return Recipe(
        name=path.stem,
        crate=values["crate"],
        source_file=path,
        aliases=values["aliases"] or (),
        summary=values["summary"] or "",
        repository=values["repository"],
        tag_format=tag_format,
        subdirectory=subdirectory,
        tested_versions=values["tested-versions"] or (),
        default_features=values["default-features"],
        features=values["features"] or (),
        notes=values["notes"] or (),
    )


def load_recipes(rules_dir: Path, profile: str = "wasmedge") -> dict[str, Recipe]:
    """Every recipe of RULES_DIR/PROFILE/recipes/*.toml, keyed by its name and each alias."""
    directory = Path(rules_dir) / profile / "recipes"
    recipes: dict[str, Recipe] = {}
    if not directory.is_dir():
        return recipes
    for path in sorted(directory.glob("*.toml")):
        recipe = parse_recipe(path)
        for key in recipe.names:
            if key in recipes:
                raise UserError(f"{path}: recipe name `{key}` is already used by {recipes[key].source_file}")
            recipes[key] = recipe
    return recipes


def _recipe_for_crate(crate_name: str, recipes: Mapping[str, Recipe]) -> Recipe | None:
    return next((r for r in recipes.values() if r.crate == crate_name), None)


# --------------------------------------------------------------------------------------
# copies


def split_name_version(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.partition("@")
    if not _NAME_RE.match(name) or (version == "" and "@" in spec):
        raise UserError(f"`{spec}` is not a crate name (expected NAME or NAME@VERSION)")
    return name, version or None


def _reusable_copy(dest: Path, name: str, version: str) -> str | None:
    if not (dest / ".git").exists():
        return None
    try:
        return vcs.upstream_commit(dest, name, version)
    except UserError:
        return None


def _clear_stale_partials(parent: Path, final_name: str) -> None:
    """Remove half-made copies whose process is gone (the pid is part of the name)."""
    for leftover in parent.glob(f".{final_name}.partial-*"):
        pid = leftover.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(leftover, ignore_errors=True)
            except PermissionError:
                pass


def _make_user_writable(root: Path) -> None:
    """Registry sources are often read-only; a copy that is ported must be writable."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, stat.S_IMODE(os.stat(directory).st_mode) | stat.S_IRWXU)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IRUSR | stat.S_IWUSR)


def _new_partial_dir(dest: Path) -> Path:
    """A hidden sibling of DEST to build the copy in, named with our pid (see _clear_stale_partials).

    Made with mkdir, not mkdtemp, so that the finished copy gets the umask's permissions."""
    while True:
        candidate = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


@dataclass(frozen=True)
class _Copy:
    root: Path
    upstream_commit: str
    reused: bool


def _materialize_copy(dest: Path, name: str, version: str, fill: Callable[[Path], None], source: str) -> _Copy:
    """DEST as a git repository with one commit `upstream: NAME VERSION`, made by FILL; or reused.

    FILL writes the package files into an empty directory. The copy is built in a
    hidden sibling and renamed into place, so an interrupted copy never looks finished."""
    if dest.exists():
        commit = _reusable_copy(dest, name, version)
        if commit is None:
            raise UserError(
                f"{dest} already exists and is not wasiport's copy of {name} {version}",
                hint="remove it, or choose another place with --into",
            )
        return _Copy(dest, commit, reused=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_partials(dest.parent, dest.name)
    scratch = _new_partial_dir(dest)
    try:
        fill(scratch)
        _make_user_writable(scratch)
        message = f"{vcs.UPSTREAM_SUBJECT_PREFIX}{name} {version}\n\nCopied by wasiport from {source}.\n"
        commit = vcs.init_with_commit(scratch, message, include_ignored=True, exclude=COPY_GIT_EXCLUDES)
        os.rename(scratch, dest)
    except OSError as err:
        shutil.rmtree(scratch, ignore_errors=True)
        if dest.exists():  # another process finished the same copy first
            commit = _reusable_copy(dest, name, version)
            if commit is not None:
                return _Copy(dest, commit, reused=True)
        raise UserError(f"cannot copy {name} {version} to {dest}: {err}") from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return _Copy(dest, commit, reused=False)


def _copy_package_tree(source: Path) -> Callable[[Path], None]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        if Path(directory).resolve() != source.resolve():
            return set()
        return {name for name in names if name in {"target", ".git", *CARGO_PACKAGE_FILES}}

    def fill(scratch: Path) -> None:
        shutil.copytree(source, scratch, ignore=ignore, dirs_exist_ok=True, ignore_dangling_symlinks=True)

    return fill


def is_registry_entry(directory: Path) -> bool:
    """A crate unpacked by cargo or a distribution: not the user's source to edit in place."""
    return any((directory / marker).is_file() for marker in (".cargo-checksum.json", ".cargo-ok"))


# --------------------------------------------------------------------------------------
# .crate archives


def _archive_members(archive: tarfile.TarFile, limits: ArchiveLimits, label: str) -> tuple[str, list[tarfile.TarInfo]]:
    """Validate every member; return the single top-level directory and the members."""
    members: list[tarfile.TarInfo] = []
    total = 0
    tops: set[str] = set()
    for member in archive:
        members.append(member)
        if len(members) > limits.max_members:
            raise UserError(f"{label}: more than {limits.max_members} entries; refusing to unpack")
        name = member.name
        path = PurePosixPath(name)
        if name.startswith("/") or path.is_absolute() or re.match(r"^[A-Za-z]:", name):
            raise UserError(f"{label}: entry {name!r} has an absolute path; refusing to unpack")
        if ".." in path.parts:
            raise UserError(f"{label}: entry {name!r} escapes the archive with '..'; refusing to unpack")
        if member.issym() or member.islnk():
            raise UserError(f"{label}: entry {name!r} is a link; refusing to unpack")
        if not (member.isfile() or member.isdir()):
            raise UserError(f"{label}: entry {name!r} is a device, FIFO or other special file; refusing to unpack")
        if member.size > limits.max_member_bytes:
            raise UserError(f"{label}: entry {name!r} is larger than {limits.max_member_bytes} bytes")
        total += member.size
        if total > limits.max_total_bytes:
            raise UserError(f"{label}: unpacks to more than {limits.max_total_bytes} bytes; refusing to unpack")
        parts = [part for part in path.parts if part not in (".", "")]
        if parts:
            tops.add(parts[0])
    if len(tops) != 1:
        raise UserError(f"{label}: a .crate holds one directory `<name>-<version>/`, this holds {len(tops)}")
    return tops.pop(), members


def _open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UserError(f"{path}: not a gzip-compressed tar archive (.crate): {err}") from None


def _archive_manifest(archive: tarfile.TarFile, top: str, label: str) -> bytes:
    try:
        member = archive.getmember(f"{top}/Cargo.toml")
        handle = archive.extractfile(member)
    except KeyError:
        handle = None
    if handle is None:
        raise UserError(f"{label}: no {top}/Cargo.toml inside; not a crate archive")
    return handle.read()


def _unpack(archive_path: Path, top: str, members: list[tarfile.TarInfo], dest: Path) -> None:
    """Write validated members under DEST (without the top directory): plain files and dirs only."""
    dest = dest.resolve()
    with _open_archive(archive_path) as archive:
        by_name = {m.name: m for m in members}
        for member in archive:
            checked = by_name.get(member.name)
            if checked is None or checked.type != member.type:
                raise UserError(f"{archive_path}: changed while it was being read")
            parts = [p for p in PurePosixPath(member.name).parts if p not in (".", "")][1:]
            if not parts:
                continue
            target = dest.joinpath(*parts)
            if os.path.commonpath([dest, target.resolve()]) != str(dest):
                raise UserError(f"{archive_path}: entry {member.name!r} resolves outside the crate")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with open(target, "xb") as out:
                shutil.copyfileobj(source, out)
            # Keep the executable bit only: no setuid, no world-writable files from an archive.
            os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)


def _locate_archive(archive_path: Path, copies_parent: Path, limits: ArchiveLimits) -> tuple[_Copy, _PackageInfo]:
    label = str(archive_path)
    with _open_archive(archive_path) as archive:
        try:
            top, members = _archive_members(archive, limits, label)
            manifest_bytes = _archive_manifest(archive, top, label)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise UserError(f"{label}: damaged archive: {err}") from None
    with tempfile.TemporaryDirectory(prefix="wasiport-crate-") as scratch:
        probe = Path(scratch) / "Cargo.toml"
        probe.write_bytes(manifest_bytes)
        try:
            info = read_package(probe)
        except UserError as err:
            raise UserError(str(err.message).replace(str(probe), f"{label}:{top}/Cargo.toml")) from None
    copy = _materialize_copy(
        copies_parent / f"{info.name}-{info.version}",
        info.name,
        info.version,
        lambda scratch_dir: _unpack(archive_path, top, members, scratch_dir),
        label,
    )
    return copy, info


# --------------------------------------------------------------------------------------
# git clones


def _is_remote_url(url: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", url) and not url.startswith("file://")) or bool(
        re.match(r"^[^/\s]+@[^/\s]+:", url)
    )


def _clone(url: str, dest: Path, rev: str | None) -> None:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=20"}
    try:
        repo = git.Repo.clone_from(url, dest, env=env)
    except git.GitCommandError as err:
        stderr = str(err.stderr or "").lower()
        if _is_remote_url(url) and any(marker in stderr for marker in _NETWORK_ERRORS):
            raise UserError(
                f"cannot clone {url}: there is no network access to it from here; pass a local path "
                "to the crate (or a local clone) or a downloaded .crate archive instead",
            ) from None
        raise UserError(f"cannot clone {url}: {vcs.git_error_reason(err)}") from None
    if rev:
        # A tag or commit resolves as given; a branch exists only as origin/<branch> in a fresh clone.
        for candidate in (rev, f"origin/{rev}"):
            try:
                repo.git.checkout("--detach", "-q", candidate)
                return
            except git.GitCommandError:
                continue
        raise UserError(f"{url} has no revision `{rev}`")


def _find_package_dir(repo_dir: Path, crate_name: str | None, subdirectory: str | None, url: str) -> Path:
    """The crate directory inside a clone: SUBDIRECTORY, the root package, or a workspace member."""
    if subdirectory:
        candidate = repo_dir / subdirectory
        if (candidate / "Cargo.toml").is_file():
            return candidate
    root_manifest = repo_dir / "Cargo.toml"
    if not root_manifest.is_file():
        raise UserError(f"{url} has no Cargo.toml at its root")
    data = read_toml(root_manifest)
    if "package" in data and (crate_name is None or data["package"].get("name") == crate_name):
        return repo_dir
    members = _workspace_members(root_manifest, data)
    if crate_name is None:
        listed = ", ".join(f"{n} ({d})" for n, d in members)
        raise UserError(f"{url} is a workspace; name the crate to port, one of: {listed}")
    for name, directory in members:
        if name == crate_name:
            return repo_dir / directory
    listed = ", ".join(name for name, _ in members) or "none"
    raise UserError(f"{url} has no crate named {crate_name} (its crates: {listed})")


def _clone_origin(directory: Path) -> str | None:
    try:
        return git.Repo(directory).remotes.origin.url
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, AttributeError, ValueError):
        return None


# --------------------------------------------------------------------------------------
# locate


@dataclass(frozen=True)
class _Context:
    env: Mapping[str, str]
    cwd: Path
    recipes: Mapping[str, Recipe]
    consumer: Path | None
    into: Path | None
    limits: ArchiveLimits

    def copies_parent(self) -> Path:
        if self.into is not None:
            return self.into
        base = self.consumer.parent if self.consumer is not None else self.cwd
        return base / COPIES_DIR


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or os.sep in spec
        or spec.startswith((".", "~"))
        or spec.endswith((".crate", ".tar.gz", ".tgz", ".toml"))
    )


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".crate", ".tar.gz", ".tgz"))


def _finish(
    info: _PackageInfo,
    root: Path,
    origin: Origin,
    source: str,
    ctx: _Context,
    *,
    targets: tuple[Target, ...] | None = None,
    recipe: Recipe | None = None,
    copy: _Copy | None = None,
) -> Crate:
    manifest = root / "Cargo.toml"
    if targets is None:
        targets = crate_targets(manifest, ctx.env)
    repo_root = vcs.find_repo_root(root)
    upstream = copy.upstream_commit if copy else None
    if upstream is None and repo_root == root:
        # A copy made earlier and now used in place (e.g. through the consumer's [patch]).
        upstream = _reusable_copy(root, info.name, info.version)
    return Crate(
        name=info.name,
        version=info.version,
        root=root,
        manifest_path=manifest,
        lib_name=_lib_name(targets),
        edition=info.edition,
        origin=origin,
        source=source,
        consumer_manifest=ctx.consumer,
        targets=targets,
        recipe=recipe or _recipe_for_crate(info.name, ctx.recipes),
        repo_root=repo_root,
        upstream_commit=upstream,
        reused=copy.reused if copy else False,
    )


def _workspace_error(manifest: Path, data: Mapping[str, Any]) -> UserError:
    members = _workspace_members(manifest, data)
    listed = ", ".join(f"{name} ({directory}/)" for name, directory in members) or "none found"
    example = manifest.parent / members[0][1] if members else Path("path/to/member")
    return UserError(
        f"{manifest} is a workspace, not a crate; port one of its members: {listed}",
        hint=f"pass the member's directory, e.g. {example}",
    )


def _locate_path(path: Path, ctx: _Context, spec: str) -> Crate:
    if not path.exists():
        raise UserError(f"{spec}: no such file or directory")
    if path.is_file():
        if path.name != "Cargo.toml":
            raise UserError(f"{spec} is not a crate: expected a crate directory, its Cargo.toml or a .crate archive")
        path = path.parent
    root = path.resolve()
    manifest = root / "Cargo.toml"
    if not manifest.is_file():
        raise UserError(f"{root} is not a crate: it has no Cargo.toml")
    data = read_toml(manifest)
    if "package" not in data and "workspace" in data:
        raise _workspace_error(manifest, data)
    info = read_package(manifest)
    if is_registry_entry(root):
        copy = _materialize_copy(
            ctx.copies_parent() / f"{info.name}-{info.version}",
            info.name,
            info.version,
            _copy_package_tree(root),
            str(root),
        )
        return _finish(info, copy.root, Origin.REGISTRY, str(root), ctx, copy=copy)
    if ctx.into is not None:
        raise UserError(f"{root} is ported in place; --into is only for copied crates")
    return _finish(info, root, Origin.PATH, str(root), ctx)


def _renamed_dependency(
    metadata: Mapping[str, Any], key: str, members: set[str], by_id: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The package behind `KEY = { package = "...", ... }` in a workspace member's manifest.

    The resolve graph names each edge by the key as code spells it (dashes become
    underscores), which picks the exact package even when several versions share a name."""
    declared = any(
        dependency.get("rename") == key
        for package in by_id.values()
        if package["id"] in members
        for dependency in package.get("dependencies", [])
    )
    if not declared:
        return None
    code_name = key.replace("-", "_")
    for node in (metadata.get("resolve") or {}).get("nodes", []):
        if node["id"] in members:
            for edge in node.get("deps", []):
                if edge.get("name") == code_name and edge.get("pkg") in by_id:
                    return by_id[edge["pkg"]]
    return None


def _dependency_package(
    metadata: Mapping[str, Any], wanted: str, version: str | None, consumer: Path
) -> Mapping[str, Any]:
    packages = metadata.get("packages", [])
    by_id = {p["id"]: p for p in packages}
    members = set(metadata.get("workspace_members", []))
    renamed = _renamed_dependency(metadata, wanted, members, by_id)
    if renamed is not None:
        wanted, named = renamed["name"], [renamed]
    else:
        named = [p for p in packages if p["name"] == wanted]
    candidates = [p for p in named if version is None or p["version"] == version]
    if not candidates:
        if named:
            versions = ", ".join(sorted(p["version"] for p in named))
            raise UserError(f"{wanted} {version} is not in the dependency graph of {consumer} (it has {versions})")
        direct = sorted(
            {d.get("rename") or d["name"] for p in packages if p["id"] in members for d in p.get("dependencies", [])}
        )
        close = difflib.get_close_matches(wanted, direct, n=3)
        raise UserError(
            f"{wanted} is not a dependency of {consumer}",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + f"its direct dependencies: {', '.join(direct) or 'none'}",
        )
    if len(candidates) > 1:
        listed = ", ".join(f"{wanted}@{p['version']}" for p in sorted(candidates, key=lambda p: p["version"]))
        raise UserError(
            f"{consumer} depends on several versions of {wanted}: {listed}",
            hint=f"pick one, e.g. `wasiport apply {wanted}@{candidates[0]['version']}`",
        )
    return candidates[0]


def _locate_dependency(name: str, version: str | None, recipe: Recipe | None, ctx: _Context) -> Crate:
    assert ctx.consumer is not None
    metadata, _ = cargo_metadata(ctx.consumer, ctx.env)
    package = _dependency_package(metadata, recipe.crate if recipe else name, version, ctx.consumer)
    source_root = Path(package["manifest_path"]).parent
    info = _PackageInfo(package["name"], package["version"], package.get("edition", "2015"), {})
    if package.get("source") is None:  # a path dependency: the user's own source
        targets = targets_from_metadata(package)
        return _finish(info, source_root.resolve(), Origin.PATH, str(source_root), ctx, targets=targets, recipe=recipe)
    dest = ctx.copies_parent() / f"{info.name}-{info.version}"
    described = f"{info.name} {info.version} ({package['source']})"
    copy = _materialize_copy(dest, info.name, info.version, _copy_package_tree(source_root), described)
    targets = targets_from_metadata(package, moved_to=copy.root)
    crate = _finish(info, copy.root, Origin.DEPENDENCY, described, ctx, targets=targets, recipe=recipe, copy=copy)
    return dataclasses.replace(crate, package_source=package["source"])


def _locate_git(spec: str, url: str, rev: str | None, ctx: _Context) -> Crate:
    name, version = split_name_version(spec) if spec else (None, None)
    recipe = ctx.recipes.get(name) if name else None
    crate_name = recipe.crate if recipe else name
    if rev is None and recipe is not None and version is not None:
        rev = recipe.tag_for(version)
    parent = ctx.copies_parent()
    made_parent = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_partials(parent, "clone")
    scratch = Path(tempfile.mkdtemp(prefix=f".clone.partial-{os.getpid()}-", dir=parent))
    try:
        _clone(url, scratch / "repo", rev)
        package_dir = _find_package_dir(scratch / "repo", crate_name, recipe.subdirectory if recipe else None, url)
        info = read_package(package_dir / "Cargo.toml")
        if version is not None and info.version != version:
            raise UserError(
                f"{url} at {rev or 'its default branch'} holds {info.name} {info.version}, not {version}",
                hint="pass --rev with the tag or commit of that version",
            )
        relative = package_dir.relative_to(scratch / "repo")
        dest = parent / f"{info.name}-{info.version}"
        if dest.exists():
            if _clone_origin(dest) != url:
                raise UserError(
                    f"{dest} already exists and is not a clone of {url}",
                    hint="remove it, or choose another place with --into",
                )
            reused = True
        else:
            os.rename(scratch / "repo", dest)
            reused = False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if made_parent:
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when empty: a failed clone leaves nothing behind
    root = (dest / relative).resolve()
    source = f"{url}" + (f" at {rev}" if rev else "")
    return replace(_finish(info, root, Origin.GIT, source, ctx, recipe=recipe), reused=reused)


def locate(
    spec: str,
    *,
    manifest_path: Path | None = None,
    into: Path | None = None,
    git_url: str | None = None,
    rev: str | None = None,
    recipes: Mapping[str, Recipe] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    archive_limits: ArchiveLimits = ArchiveLimits(),
) -> Crate:
    """Find (and, for read-only sources, copy) the crate SPEC names. See the module docstring.

    ENV is the environment cargo runs in (default: this process's); CWD stands for the
    current directory (default: the real one)."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    consumer = Path(manifest_path).resolve() if manifest_path is not None else None
    if consumer is not None and consumer.is_dir():
        consumer = consumer / "Cargo.toml"
    if consumer is not None and not consumer.is_file():
        raise UserError(f"{manifest_path}: no such manifest")
    ctx = _Context(
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        recipes=recipes or {},
        consumer=consumer,
        into=Path(into).resolve() if into is not None else None,
        limits=archive_limits,
    )
    if git_url:
        return _locate_git(spec, git_url, rev, ctx)
    if rev:
        raise UserError("--rev goes with --git URL")

    as_path = Path(spec).expanduser()
    as_path = as_path if as_path.is_absolute() else cwd / as_path
    if _looks_like_path(spec) or (consumer is None and as_path.exists()):
        if _is_archive(as_path):
            copy, info = _locate_archive(as_path, ctx.copies_parent(), ctx.limits)
            return _finish(info, copy.root, Origin.ARCHIVE, str(as_path), ctx, copy=copy)
        return _locate_path(as_path, ctx, spec)

    name, version = split_name_version(spec)
    recipe = ctx.recipes.get(name)
    if ctx.consumer is None:
        found = nearest_manifest(cwd)
        if found is None:
            hint = "pass --manifest-path of a crate that depends on it, a path to the crate, or a .crate archive"
            if recipe is not None and recipe.repository:
                hint += f"; or a clone of {recipe.repository} with --git"
            raise UserError(
                f"`{spec}` is not a path, and there is no Cargo.toml here to find it as a dependency", hint=hint
            )
        ctx = _Context(ctx.env, ctx.cwd, ctx.recipes, found.resolve(), ctx.into, ctx.limits)
    return _locate_dependency(name, version, recipe, ctx)
