"""What `apply --deps` proved of each substitute: built, inspected, run.

"Substituted" only says a manifest was edited. The proof is in the artefacts:

- built: the wasm build compiled the substitute's package (cargo reported its rlib), and the
  native build did not (the user's own crate stays there);
- inspected: the verified module holds the substitute's code — functions under its library name
  (a `*_wasi` crate keeps the upstream one, `tokio::…`) — next to WasmEdge's socket imports,
  which the verify stage has already required;
- run: the module ran under `wasiport run` (`--run ARGS`) and exited 0; not run without `--run`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from wasiport.deps.data import SubstituteEntry
from wasiport.wasm import demangle, read_module


class SubstituteProof(NamedTuple):
    built: bool
    inspected: bool
    run: bool | None  # None: not run (no --run)
    detail: str

    def as_dict(self) -> dict[str, bool | None]:
        return {"built": self.built, "inspected": self.inspected, "run": self.run}


def substitute_package(entry: SubstituteEntry) -> str:
    """The package cargo builds for the substitute (a fork keeps the upstream name)."""
    return entry.package or entry.crate


def library_functions(module: Path, library: str) -> int:
    """How many of the module's named functions belong to `library` (`tokio::…`, `<tokio::…`)."""
    pattern = re.compile(rf"(?:^|[<&\s(]){re.escape(library)}::")
    names = read_module(module).function_names.values()
    return sum(1 for name in names if pattern.search(demangle(name)))


def prove_substitute(
    entry: SubstituteEntry,
    *,
    native_packages: Iterable[str],
    wasm_packages: Iterable[str],
    module: Path | None,
    run_exit_code: int | None,
) -> SubstituteProof:
    """The proof for one substitute, from the two builds' packages, the module and the run."""
    package = substitute_package(entry)
    native, wasm = set(native_packages), set(wasm_packages)
    built = package in wasm and (entry.generation == "patch" or package not in native)
    notes = [f"built ({package} in the wasm build{'' if package in native else ', not in the native one'})" if built else f"not built ({package} is not in the wasm build)"]
    functions = library_functions(module, entry.crate.replace("-", "_")) if module is not None and built else 0
    inspected = functions > 0
    if module is None:
        notes.append("not inspected (no program was built)")
    else:
        notes.append(f"inspected ({functions} function(s) of `{entry.crate.replace('-', '_')}` in {module.name})" if inspected else f"not inspected (no `{entry.crate}` code in {module.name})")
    run = None if run_exit_code is None else run_exit_code == 0
    notes.append("not run (pass --run ARGS)" if run is None else ("run (exit 0)" if run else f"run failed (exit {run_exit_code})"))
    return SubstituteProof(built, inspected, run, ", ".join(notes))
