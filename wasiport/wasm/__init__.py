"""Reading what a build produced: a module's (or an rlib's) imports, names, and the verdict.

Public API::

    from wasiport import wasm
    verdict = wasm.inspect_file(Path("app.wasm")).verdict

Does the module link WasmEdge's `sock_*` functions, and is std's unsupported networking
still reachable (from the name section, demangled)? `binary` reads the format,
`demangle` Rust's symbol names, `inspect` gives the verdict.
"""
from wasiport.wasm.binary import WasmModule, parse_module, read_module
from wasiport.wasm.demangle import demangle
from wasiport.wasm.inspect import Inspection, Verdict, inspect_archive, inspect_file, inspect_module, inspection_to_json

__all__ = [
    "Inspection",
    "Verdict",
    "WasmModule",
    "demangle",
    "inspect_archive",
    "inspect_file",
    "inspect_module",
    "inspection_to_json",
    "parse_module",
    "read_module",
]
