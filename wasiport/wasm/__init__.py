"""Reading what a build produced: a module's (or an rlib's) imports, names, and the verdict.

Public API::

    from wasiport import wasm
    verdict = wasm.inspect_file(Path("app.wasm")).verdict

Does the module link WasmEdge's `sock_*` functions, and is std's unsupported networking
still reachable (from the name section, demangled)?
"""
from wasiport.wasm.module import Inspection, Verdict, demangle, inspect_archive, inspect_file, inspect_module, parse_module, read_module

__all__ = ["Inspection", "Verdict", "demangle", "inspect_archive", "inspect_file", "inspect_module", "parse_module", "read_module"]
