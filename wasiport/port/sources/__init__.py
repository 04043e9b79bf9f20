"""Where a crate's source comes from: the first stage of `wasiport apply`.

Public API::

    from wasiport.port.sources import locate
    crate = locate("redis@0.23", manifest_path=Path("app/Cargo.toml"))

`resolve` turns what the user typed into a `Crate` (a path, a consumer's dependency, a
registry entry, a git clone, a `.crate` archive, a recipe name); `crate` is what it
finds and what a Cargo.toml says; `targets` its cargo targets; `copies` wasiport's own
git-tracked copies and unpacked archives; `clones` crates from git. Recipes (what a
well-known name means) are `wasiport.port.recipes`.
"""
from wasiport.port.recipes import Recipe, load_recipes, parse_recipe
from wasiport.port.sources.copies import is_registry_entry, split_name_version
from wasiport.port.sources.crate import ArchiveLimits, Crate, Origin, Target, read_package
from wasiport.port.sources.resolve import locate
from wasiport.port.sources.targets import crate_targets, discover_targets, targets_from_metadata

__all__ = [
    "ArchiveLimits",
    "Crate",
    "Origin",
    "Recipe",
    "Target",
    "crate_targets",
    "discover_targets",
    "is_registry_entry",
    "load_recipes",
    "locate",
    "parse_recipe",
    "read_package",
    "split_name_version",
    "targets_from_metadata",
]
