"""Recipes: what a well-known name means (`wasiport apply redis-rs`), as data in
`rules/<profile>/recipes/*.toml`: the crate's package name, its repository and release
tags, features to trim, notes for the user."""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wasiport.errors import UserError
from wasiport.tomlread import read_toml
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a crate (package) name


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
        if not NAME_RE.match(values[key]):
            raise UserError(f"{path}: key `{key}` is not a crate name: {values[key]!r}")
    for alias in values["aliases"] or ():
        if not NAME_RE.match(alias):
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
    if not NAME_RE.match(path.stem):
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


def recipe_for_crate(crate_name: str, recipes: Mapping[str, Recipe]) -> Recipe | None:
    return next((r for r in recipes.values() if r.crate == crate_name), None)
