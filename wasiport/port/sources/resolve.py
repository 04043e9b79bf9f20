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

import contextlib
import dataclasses
import difflib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wasiport import vcs
from wasiport.cargo.changes import PORTS_SOURCE_ID
from wasiport.cargo.workspace import cargo_metadata, nearest_manifest
from wasiport.errors import UserError
from wasiport.port.recipes import Recipe, recipe_for_crate
from wasiport.port.sources.clones import clone_origin, clone_repository, find_package_dir
from wasiport.port.sources.copies import (
    Copy,
    clear_stale_partials,
    copy_package_tree,
    is_registry_entry,
    locate_archive,
    materialize_copy,
    reusable_copy,
    split_name_version,
)
from wasiport.port.sources.crate import ArchiveLimits, COPIES_DIR, Crate, Origin, PackageInfo, Target, read_package, workspace_members
from wasiport.port.sources.targets import crate_targets, library_name, targets_from_metadata
from wasiport.tomlread import read_toml


@dataclass(frozen=True)
class _Context:
    env: Mapping[str, str]
    cwd: Path
    recipes: Mapping[str, Recipe]
    consumer: Path | None
    into: Path | None
    limits: ArchiveLimits
    scratch: Path | None = None  # a dry run's folder for new copies: it writes nothing of the user's

    def copies_parent(self) -> Path:
        if self.into is not None:
            return self.into
        base = self.consumer.parent if self.consumer is not None else self.cwd
        return base / COPIES_DIR

    def new_copies_parent(self) -> Path:
        """Where a copy that does not exist yet is made: the copies folder, or a dry run's scratch."""
        return self.scratch if self.scratch is not None else self.copies_parent()

    def copy_destination(self, name: str, version: str) -> Path:
        """The copy of NAME-VERSION: the one already in the copies folder, else a new one."""
        existing = self.copies_parent() / f"{name}-{version}"
        return existing if existing.exists() else self.new_copies_parent() / f"{name}-{version}"


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
    info: PackageInfo,
    root: Path,
    origin: Origin,
    source: str,
    ctx: _Context,
    *,
    targets: tuple[Target, ...] | None = None,
    recipe: Recipe | None = None,
    copy: Copy | None = None,
) -> Crate:
    manifest = root / "Cargo.toml"
    if targets is None:
        targets = crate_targets(manifest, ctx.env)
    repo_root = vcs.find_repo_root(root)
    upstream = copy.upstream_commit if copy else None
    if upstream is None and repo_root == root:
        # A copy made earlier and now used in place (e.g. through the consumer's [patch]).
        upstream = reusable_copy(root, info.name, info.version)
    return Crate(
        name=info.name,
        version=info.version,
        root=root,
        manifest_path=manifest,
        lib_name=library_name(targets),
        edition=info.edition,
        origin=origin,
        source=source,
        consumer_manifest=ctx.consumer,
        targets=targets,
        recipe=recipe or recipe_for_crate(info.name, ctx.recipes),
        repo_root=repo_root,
        upstream_commit=upstream,
        reused=copy.reused if copy else False,
    )


def _workspace_error(manifest: Path, data: Mapping[str, Any]) -> UserError:
    members = workspace_members(manifest, data)
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
        copy = materialize_copy(
            ctx.copy_destination(info.name, info.version),
            info.name,
            info.version,
            copy_package_tree(root),
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
    info = PackageInfo(package["name"], package["version"], package.get("edition", "2015"), {})
    if package.get("source") is None:  # a path dependency: the user's own source
        targets = targets_from_metadata(package)
        return _finish(info, source_root.resolve(), Origin.PATH, str(source_root), ctx, targets=targets, recipe=recipe)
    dest = ctx.copy_destination(info.name, info.version)
    if package["source"] == PORTS_SOURCE_ID:  # ported before: the port itself, wherever it is
        dest = source_root.resolve()
    described = f"{info.name} {info.version} ({package['source']})"
    copy = materialize_copy(dest, info.name, info.version, copy_package_tree(source_root), described)
    targets = targets_from_metadata(package, moved_to=copy.root)
    crate = _finish(info, copy.root, Origin.DEPENDENCY, described, ctx, targets=targets, recipe=recipe, copy=copy)
    return dataclasses.replace(crate, package_source=package["source"])


def _locate_git(spec: str, url: str, rev: str | None, ctx: _Context) -> Crate:
    name, version = split_name_version(spec) if spec else (None, None)
    recipe = ctx.recipes.get(name) if name else None
    crate_name = recipe.crate if recipe else name
    if rev is None and recipe is not None and version is not None:
        rev = recipe.tag_for(version)
    parent = ctx.new_copies_parent()
    made_parent = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    clear_stale_partials(parent, "clone")
    scratch = Path(tempfile.mkdtemp(prefix=f".clone.partial-{os.getpid()}-", dir=parent))
    try:
        clone_repository(url, scratch / "repo", rev)
        package_dir = find_package_dir(scratch / "repo", crate_name, recipe.subdirectory if recipe else None, url)
        info = read_package(package_dir / "Cargo.toml")
        if version is not None and info.version != version:
            raise UserError(
                f"{url} at {rev or 'its default branch'} holds {info.name} {info.version}, not {version}",
                hint="pass --rev with the tag or commit of that version",
            )
        relative = package_dir.relative_to(scratch / "repo")
        dest = parent / f"{info.name}-{info.version}"
        if dest.exists():
            if clone_origin(dest) != url:
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
    scratch: Path | None = None,
) -> Crate:
    """Find (and, for read-only sources, copy) the crate SPEC names. See the module docstring.

    ENV is the environment cargo runs in (default: this process's); CWD stands for the
    current directory (default: the real one). With SCRATCH (a dry run), a crate that needs a
    new copy is copied there, not into the copies folder."""
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
        scratch=scratch,
    )
    if git_url:
        return _locate_git(spec, git_url, rev, ctx)
    if rev:
        raise UserError("--rev goes with --git URL")

    as_path = Path(spec).expanduser()
    as_path = as_path if as_path.is_absolute() else cwd / as_path
    if _looks_like_path(spec) or (consumer is None and as_path.exists()):
        if _is_archive(as_path):
            copy, info = locate_archive(as_path, ctx.new_copies_parent(), ctx.limits)
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
        ctx = dataclasses.replace(ctx, consumer=found.resolve())
    return _locate_dependency(name, version, recipe, ctx)
