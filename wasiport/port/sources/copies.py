"""wasiport's own copies of a crate: a git repository whose first commit is the pristine
source (`upstream: <name> <version>`), made all at once (a partial directory renamed into
place) and reused when it exists already; `.crate` archives unpacked with strict checks."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wasiport import vcs
from wasiport.errors import UserError
from wasiport.port.recipes import NAME_RE
from wasiport.port.sources.crate import ArchiveLimits, PackageInfo, read_package

CARGO_PACKAGE_FILES = (".cargo-checksum.json", ".cargo_vcs_info.json", ".cargo-ok")
# Never tracked files: build output must not make a copy look dirty to the clean-tree gate.
COPY_GIT_EXCLUDES = ("/target/", "/Cargo.lock")


def split_name_version(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.partition("@")
    if not NAME_RE.match(name) or (version == "" and "@" in spec):
        raise UserError(f"`{spec}` is not a crate name (expected NAME or NAME@VERSION)")
    return name, version or None


def reusable_copy(dest: Path, name: str, version: str) -> str | None:
    if not (dest / ".git").exists():
        return None
    try:
        return vcs.upstream_commit(dest, name, version)
    except UserError:
        return None


def clear_stale_partials(parent: Path, final_name: str) -> None:
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
    """A hidden sibling of DEST to build the copy in, named with our pid (see clear_stale_partials).

    Made with mkdir, not mkdtemp, so that the finished copy gets the umask's permissions."""
    while True:
        candidate = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


@dataclass(frozen=True)
class Copy:
    root: Path
    upstream_commit: str
    reused: bool


def materialize_copy(dest: Path, name: str, version: str, fill: Callable[[Path], None], source: str) -> Copy:
    """DEST as a git repository with one commit `upstream: NAME VERSION`, made by FILL; or reused.

    FILL writes the package files into an empty directory. The copy is built in a
    hidden sibling and renamed into place, so an interrupted copy never looks finished."""
    if dest.exists():
        commit = reusable_copy(dest, name, version)
        if commit is None:
            raise UserError(
                f"{dest} already exists and is not wasiport's copy of {name} {version}",
                hint="remove it, or choose another place with --into",
            )
        return Copy(dest, commit, reused=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_partials(dest.parent, dest.name)
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
            commit = reusable_copy(dest, name, version)
            if commit is not None:
                return Copy(dest, commit, reused=True)
        raise UserError(f"cannot copy {name} {version} to {dest}: {err}") from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Copy(dest, commit, reused=False)


def copy_package_tree(source: Path) -> Callable[[Path], None]:
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


def locate_archive(archive_path: Path, copies_parent: Path, limits: ArchiveLimits) -> tuple[Copy, PackageInfo]:
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
    copy = materialize_copy(
        copies_parent / f"{info.name}-{info.version}",
        info.name,
        info.version,
        lambda scratch_dir: _unpack(archive_path, top, members, scratch_dir),
        label,
    )
    return copy, info
