"""Will a module link on a given WasmEdge release? The runtime table and the link check.

The table is data (`rules/wasmedge/runtimes/wasmedge.toml`, each fact with its source):
for each release line, the socket functions WasmEdge registers and their
forms (parameter counts). `link_problems` does what WasmEdge's instantiation
does with a module's imports: an import of a function the release lacks is
an "unknown import", one whose type matches none of the forms is an
"incompatible import type" (WasmEdge's own wording), so a module that would
not load where it is deployed is found before it is deployed.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wasiport.errors import UserError
from wasiport.paths import rules_dir
from wasiport.wasm.inspect import Inspection

WASI_MODULE = "wasi_snapshot_preview1"
TABLE_FILE = Path("wasmedge") / "runtimes" / "wasmedge.toml"
UNKNOWN_IMPORT = "unknown import"
INCOMPATIBLE_IMPORT = "incompatible import type"


@dataclass(frozen=True)
class RuntimeSpec:
    name: str  # "wasmedge-0.10"
    releases: tuple[str, ...]  # "0.10.0", "0.10.1"
    functions: dict[str, tuple[int, ...]]  # socket function -> the parameter counts it links with
    note: str = ""

    def forms(self, name: str) -> tuple[int, ...] | None:
        return self.functions.get(name)


@dataclass(frozen=True)
class ImportType:
    """A function import as the check needs it (wasm value types as text: "i32", "i64", ...)."""

    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]


@dataclass(frozen=True)
class LinkProblem:
    runtime: str
    module: str
    name: str
    kind: str  # UNKNOWN_IMPORT | INCOMPATIBLE_IMPORT
    got: str  # the import's type, "(i32 i32 i32) -> i32"
    expected: str  # what the runtime offers, "(i32 i32) -> i32", or "" for an unknown import

    def message(self) -> str:
        where = f'"{self.module}" function "{self.name}"'
        if self.kind == UNKNOWN_IMPORT:
            return f"{UNKNOWN_IMPORT}: {where}: {self.runtime} has no such function (the module imports {self.got})"
        return f"{INCOMPATIBLE_IMPORT}: {where}: the module imports {self.got}, {self.runtime} defines {self.expected}"


def load_runtimes(path: Path | None = None) -> dict[str, RuntimeSpec]:
    """The runtime table, validated (a malformed table is a UserError naming the entry)."""
    path = path or rules_dir() / TABLE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"cannot read the runtime table {path}: {err}") from None
    table: dict[str, RuntimeSpec] = {}
    for index, entry in enumerate(data.get("runtime", [])):
        spec = _runtime_entry(entry, f"{path}: runtime {index + 1}")
        table[spec.name] = spec
    return table


def _runtime_entry(entry: object, where: str) -> RuntimeSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise UserError(f"{where}: needs a name")
    functions = entry.get("functions", {})
    releases = entry.get("releases", [])
    if not isinstance(functions, dict) or not isinstance(releases, list):
        raise UserError(f"{where}: functions must be a table and releases a list")
    forms: dict[str, tuple[int, ...]] = {}
    for name, counts in functions.items():
        if not isinstance(counts, list) or not counts or not all(isinstance(n, int) and n >= 0 for n in counts):
            raise UserError(f"{where}: {name} must list its parameter counts, e.g. [2, 3]")
        forms[name] = tuple(counts)
    return RuntimeSpec(entry["name"], tuple(str(r) for r in releases), forms, str(entry.get("note", "")))


def find_runtime(text: str, table: dict[str, RuntimeSpec] | None = None) -> RuntimeSpec:
    """`wasmedge-0.10`, `0.10`, `wasmedge-0.10.0` or `0.10.0`: the table entry it names."""
    table = table if table is not None else load_runtimes()
    wanted = text.strip().lower().removeprefix("wasmedge-").removeprefix("wasmedge")
    for spec in table.values():
        line = spec.name.removeprefix("wasmedge-")
        if wanted in (line, spec.name) or wanted in spec.releases:
            return spec
    known = ", ".join(table)
    raise UserError(f"--runtime {text!r}: unknown runtime (known: {known}; a release such as 0.10.0 works too)")


def socket_function_names(table: dict[str, RuntimeSpec]) -> frozenset[str]:
    """Every function some release registers: the imports the check is about."""
    return frozenset(name for spec in table.values() for name in spec.functions)


def link_problems(imports: Iterable[ImportType], runtime: RuntimeSpec, checked: frozenset[str]) -> list[LinkProblem]:
    """The imports among `checked` (socket functions) that `runtime` would refuse to link."""
    problems = []
    for imp in imports:
        if imp.module != WASI_MODULE or imp.name not in checked:
            continue
        got = _render(imp.params, imp.results)
        forms = runtime.forms(imp.name)
        if forms is None:
            problems.append(LinkProblem(runtime.name, imp.module, imp.name, UNKNOWN_IMPORT, got, ""))
            continue
        fits = imp.results == ("i32",) and all(t == "i32" for t in imp.params) and len(imp.params) in forms
        if not fits:
            expected = " or ".join(_render(("i32",) * n, ("i32",)) for n in forms)
            problems.append(LinkProblem(runtime.name, imp.module, imp.name, INCOMPATIBLE_IMPORT, got, expected))
    return problems


def _render(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({' '.join(params)}) -> ({' '.join(results)})"


def check_inspection(inspection: Inspection, runtime: str) -> tuple[RuntimeSpec, list[LinkProblem]]:
    """The runtime `runtime` names, and the inspected module's imports that would not link on it."""
    if inspection.kind != "module":
        raise UserError(f"{inspection.path}: a runtime check needs a linked module (.wasm), not an archive")
    table = load_runtimes()
    spec = find_runtime(runtime, table)
    imports = [
        ImportType(i.module, i.name, i.signature.params, i.signature.results)
        for i in inspection.imports
        if i.kind == "func" and i.signature is not None
    ]
    return spec, link_problems(imports, spec, socket_function_names(table))
