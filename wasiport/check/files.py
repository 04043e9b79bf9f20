"""Which files make a crate's wasm build: the rule, and the walk that applies it to a tree.

The rule (`in_wasm_build`, from three one-step rules the walk applies per
directory): a package's `.rs` files are in its wasm build, except

- files below its `tests/`, `examples/` and `benches/` (they run natively),
- its `build.rs` (it runs on the host),
- files of a nested package (a directory below it with its own `Cargo.toml` is
  another crate),
- files in `target/`, VCS folders, `node_modules/` and hidden folders.

`--all-targets` keeps the first two. Modules cfg'd out for the wasm target are the
other half of the answer (`wasiport.rust.modtree.module_cfgd_out`): that needs the
sources, this needs only names. `check`, `apply` and `check --deps` all take their
files from here.

The walk is measured speed machinery (one `os.scandir` per directory, strings rather
than Path objects, no `resolve()` per file: it stats every path component, which
made discovery cost seconds on a large tree).
"""
from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from wasiport.errors import UserError
from wasiport.rust.modtree import ROOT_NAMES, looks_like_crate_root

NON_PORT_DIRS = {"tests", "examples", "benches"}  # crate dirs that never run in the wasm build
PRUNED_DIRS = {"target", ".git", ".hg", ".svn", "node_modules"}


class FileTask(NamedTuple):  # one per file of the tree: a tuple is small, and quick to make from the cache's
    path: str  # absolute
    display: str
    is_crate_root: bool
    crate: str = ""  # the directory of the package it belongs to ("" for files given by name)


# -- the rule -------------------------------------------------------------------------------


def walked_into(name: str) -> bool:
    """Whether a directory of this name can hold sources at all (not `target/`, `.git/`, ...)."""
    return name not in PRUNED_DIRS and not name.startswith(".")


def subdirectory_in_build(name: str, parent_is_package: bool, *, all_targets: bool = False) -> bool:
    """Whether a subdirectory's files can be in the wasm build, given its parent's are."""
    return all_targets or not (parent_is_package and name in NON_PORT_DIRS)


def file_in_build(name: str, directory_is_package: bool, *, all_targets: bool = False) -> bool:
    """Whether a file of a directory whose files are in the wasm build is one of them."""
    if not name.endswith(".rs"):
        return False
    return all_targets or not (directory_is_package and name == "build.rs")


def in_wasm_build(relative: str, nested_packages: Collection[str] = (), *, all_targets: bool = False) -> bool:
    """Whether the file at `relative` ('/'-separated, below a package's directory) is part of
    that package's wasm build. `nested_packages`: the directories below the package (relative
    to it) that hold a Cargo.toml of their own; their files belong to those crates."""
    *directories, name = relative.split("/")
    is_package, walked = True, ""
    for directory in directories:
        if not walked_into(directory) or not subdirectory_in_build(directory, is_package, all_targets=all_targets):
            return False
        walked = f"{walked}/{directory}" if walked else directory
        if walked in nested_packages:
            return False
        is_package = False
    return file_in_build(name, is_package, all_targets=all_targets)


# -- the walk --------------------------------------------------------------------------------


def discover(paths: Iterable[Path], *, all_targets: bool = False, nested_crates: bool = True) -> list[FileTask]:
    """The .rs files to scan under `paths`, sorted by display path; explicit files are always scanned."""
    tasks = [t for batch in walk(paths, [], {}, all_targets=all_targets, nested_crates=nested_crates) for t in batch]
    return sorted(tasks, key=lambda t: t.display)


def crate_files(crate_root: Path, *, all_targets: bool = False) -> list[FileTask]:
    """The .rs files of one package's wasm build by name (not its nested packages), for
    `apply` and `check --deps`; their cfg'd-out modules are for the caller to drop."""
    return discover([crate_root], all_targets=all_targets, nested_crates=False)


def nested_packages(crate_root: Path) -> list[Path]:
    """The packages below a package's directory (each a crate of its own, not its files):
    `check` of the directory reports their findings, `apply` of it leaves them alone, so
    apply names them (`wasiport.port.plan`)."""
    manifests: list[str] = []
    for _batch in walk([crate_root], manifests, {}, nested_crates=False):
        pass
    root = crate_root.resolve()
    return sorted({Path(m).parent.resolve() for m in manifests} - {root})


def walk(
    paths: Iterable[Path],
    manifests: list[str],
    manifest_displays: dict[str, str],
    *,
    all_targets: bool = False,
    nested_crates: bool = True,
    directories: list | None = None,
) -> Iterator[list[FileTask]]:
    """The files to scan, the Cargo.toml files under `paths` (before the [package]
    check), each file's crate directory, and the manifests' display paths.

    One walk serves both: it visits every directory `walked_into` allows for Cargo.toml
    files, and takes .rs files where the rule above says (and not in nested packages
    unless `nested_crates`: then each nested package is a crate of its own).
    `directories`, when given, receives (directory, mtime) of every directory listed:
    the walk's result stays right while none of them changes (ScanCache.discovered).

    The files come in batches, one per subtree of a given directory's entries (per
    crate, in a registry or workspace), as soon as that subtree is walked: the scan
    of the first crates starts while the walk goes on. `manifests` and
    `manifest_displays` are filled in as the walk finds them."""
    paths = list(paths)
    # Paths already taken, when roots overlap (one walk never meets a path twice: it
    # does not follow directory symlinks); a set of every path would cost memory.
    taken: set[str] | None = set() if _overlapping(paths) else None
    cwd = str(Path.cwd())
    for given in paths:
        if not given.exists():
            if given.is_symlink():
                raise UserError(f"{given}: a symbolic link that leads nowhere (or in a loop)")
            raise UserError(f"{given}: no such file or directory")
        if given.is_file():
            if given.suffix != ".rs" and given.name != "Cargo.toml":
                raise UserError(f"{given}: not a Rust source file (.rs) or crate directory")
            if given.suffix == ".rs":
                absolute = given.resolve()
                if taken is None or str(absolute) not in taken:
                    if taken is not None:
                        taken.add(str(absolute))
                    yield [FileTask(str(absolute), display_path(given, Path(cwd)), looks_like_crate_root(absolute))]
            else:
                manifests.append(str(given))
            continue
        yield from _walk_directory(given, cwd, taken, manifests, manifest_displays, all_targets, nested_crates, directories)


def _walk_directory(
    given: Path,
    cwd: str,
    taken: set[str] | None,
    manifests: list[str],
    manifest_displays: dict[str, str],
    all_targets: bool,
    nested_crates: bool,
    directories: list | None,
) -> Iterator[list[FileTask]]:
    """`walk` below one given directory, depth first, in batches per top-level entry."""
    here = _GivenDirectory(given, cwd, taken, all_targets)
    # (directory, its path relative to root, whether its .rs files can be in the build, crate dir)
    stack: list[tuple[str, str, bool, str]] = [(str(given.resolve()), "", True, "")]
    batch: list[FileTask] = []
    subtree = ""  # the entry of the given directory whose subtree is being walked
    while stack:
        directory, relative, in_build, crate = stack.pop()
        top = relative.split("/", 1)[0]
        if top != subtree:  # depth first: the previous entry's subtree is complete
            if batch:
                yield batch
                batch = []
            subtree = top
        listed = _list_directory(directory, directories)
        if listed is None:
            continue  # os.walk skips unreadable directories too
        subdirs, files = listed
        manifest_entry = next((f for f in files if f.name == "Cargo.toml"), None)
        is_package = manifest_entry is not None
        if manifest_entry is not None:
            manifest, display = here.manifest(directory, relative, manifest_entry)
            manifests.append(manifest)
            if display is not None:
                manifest_displays[manifest] = display
        if is_package and relative and not nested_crates:
            continue  # another package: none of its files are this one's, nor below it
        if is_package:
            crate = directory
        if in_build:
            batch.extend(here.files(directory, relative, files, is_package, crate))
        for name in subdirs:
            sub_in_build = in_build and subdirectory_in_build(name, is_package, all_targets=all_targets)
            stack.append((directory + "/" + name if directory != "/" else "/" + name, relative + "/" + name if relative else name, sub_in_build, crate))
    if batch:
        yield batch


class _GivenDirectory:
    """Paths and display paths below one directory given to `walk`, made from strings:
    no `resolve()` per file (it stats every path component)."""

    def __init__(self, given: Path, cwd: str, taken: set[str] | None, all_targets: bool) -> None:
        self.given_text = os.fspath(given)
        # What `Path(given_text, relative, name).as_posix()` starts with (Path normalises).
        base = Path(self.given_text).as_posix()
        self.given_prefix = "" if base == "." else base if base.endswith("/") else base + "/"
        self.cwd = cwd
        self.cwd_prefix = cwd.rstrip("/") + "/"
        self.taken = taken
        self.all_targets = all_targets

    def manifest(self, directory: str, relative: str, entry: os.DirEntry) -> tuple[str, str | None]:
        """A Cargo.toml's path as given, and its display path (None for a symlink)."""
        manifest_path = Path(os.path.join(self.given_text, relative, "Cargo.toml") if relative else os.path.join(self.given_text, "Cargo.toml"))
        if entry.is_symlink():
            return str(manifest_path), None
        real = directory.rstrip("/") + "/Cargo.toml"
        return str(manifest_path), real[len(self.cwd_prefix) :] if real.startswith(self.cwd_prefix) else manifest_path.as_posix()

    def files(self, directory: str, relative: str, files: list[os.DirEntry], is_package: bool, crate: str) -> list[FileTask]:
        """The tasks for a directory's files that are in the build."""
        tasks = []
        # whether a file here is a crate root (`looks_like_crate_root`), worked out per directory
        in_src, in_bin = directory.endswith("/src"), directory.endswith("/src/bin")
        for entry in files:
            name = entry.name
            if not file_in_build(name, is_package, all_targets=self.all_targets):
                continue
            path = directory + "/" + name if directory != "/" else "/" + name
            if self.taken is not None:
                if path in self.taken:
                    continue
                self.taken.add(path)
            if entry.is_symlink():
                display = display_path(Path(self.given_text, relative, name), Path(self.cwd))
            elif path.startswith(self.cwd_prefix):
                display = path[len(self.cwd_prefix) :]
            else:
                display = self.given_prefix + (relative + "/" + name if relative else name)
            tasks.append(FileTask(path, display, in_bin or (in_src and name in ROOT_NAMES), crate))
        return tasks


def _list_directory(directory: str, directories: list | None) -> tuple[list[str], list[os.DirEntry]] | None:
    """(subdirectories to walk into, files) of a directory, or None if it cannot be listed.
    Directory symlinks are not followed (a loop would never end)."""
    try:
        if directories is not None:  # before listing it: a later change shows
            directories.append((directory, os.stat(directory).st_mtime_ns))
        entries = list(os.scandir(directory))
    except OSError:
        return None
    subdirs: list[str] = []
    files: list[os.DirEntry] = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()  # follows symlinks, as os.walk's classification does
        except OSError:
            is_dir = False
        if is_dir:
            if walked_into(entry.name) and not entry.is_symlink():
                subdirs.append(entry.name)
        else:
            files.append(entry)
    return subdirs, files


def _overlapping(paths: list[Path]) -> bool:
    """Whether one of `paths` is another, or inside another."""
    roots = sorted(str(p.resolve()).rstrip("/") + "/" for p in paths if p.exists())
    return any(later.startswith(earlier) for earlier, later in zip(roots, roots[1:]))


def resolved(path: Path) -> Path:
    """PATH resolved, or made absolute when a symlink loop stops that (the walk reports it)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.absolute()


def display_path(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd).as_posix()
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symlink loop (reading it is a problem)
        return path.as_posix()


# `[package]` as TOML allows it: spaces inside the brackets, a quoted key, indentation.
_PACKAGE_HEADER = re.compile(rb"""^[ \t]*\[[ \t]*(?:package|"package"|'package')[ \t]*\]""", re.M)


def has_package_table(data: bytes) -> bool:
    """Whether Cargo.toml bytes have a [package] table header (quickly, without parsing)."""
    return _PACKAGE_HEADER.search(data) is not None
