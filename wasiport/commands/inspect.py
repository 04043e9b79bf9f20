"""`wasiport inspect FILE`: does a wasm module (or a wasm32 rlib) use WasmEdge's sockets?

Exit status: 0 when the file is ported or has no networking, 1 when it is not
ported (std's sockets, which fail on WASI at run time) or, with --runtime, when
an import would not link on that WasmEdge release; 2 on bad input.

`--format json` prints one object with stable keys; see
`wasiport.wasm.inspect.inspection_to_json` for the list (schema 1). With
--runtime it also has `runtime`: {name, problems: [{module, name, kind
("unknown import" | "incompatible import type"), imported, defined, message}]}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wasiport.wasm.inspect import Inspection

SHOWN_NAMES = 8  # std functions listed in text output unless --all


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect",
        help="does a .wasm module (or wasm32 .rlib) use WasmEdge's socket functions?",
        description=(
            "Read a wasm module's imports and function names (or an rlib's objects) and say "
            "whether it is ported to WasmEdge's sockets. Exit 0: ported or no networking; "
            "1: not ported; 2: bad input."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="a .wasm module or an .rlib built for wasm32")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--all", action="store_true", help="list every std function, socket crate function and object, not the first few")
    parser.add_argument(
        "--runtime",
        metavar="wasmedge-X.Y",
        help=(
            "also check that the module links on this WasmEdge release (wasmedge-0.10 .. wasmedge-0.14, or a release "
            "such as 0.10.0); exit 1 if an import would not (rules/wasmedge/runtimes/wasmedge.toml)"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wasiport.wasm.inspect import Verdict, inspect_file, inspection_to_json

    inspection = inspect_file(args.file)
    problems = runtime_problems(inspection, args.runtime) if args.runtime else None
    if args.format == "json":
        document = inspection_to_json(inspection)
        if problems is not None:
            document["runtime"] = {"name": problems[0], "problems": [_problem_json(p) for p in problems[1]]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(inspection, show_all=args.all))
        if problems is not None:
            sys.stdout.write(render_runtime(*problems))
    if problems is not None and problems[1]:
        return 1
    return 1 if inspection.verdict is Verdict.NOT_PORTED else 0


def runtime_problems(inspection: "Inspection", runtime: str) -> tuple[str, list]:
    """(the runtime's name, the imports that would not link on it)."""
    from wasiport.wasm.runtimes import check_inspection

    spec, problems = check_inspection(inspection, runtime)
    return spec.name, problems


def render_runtime(name: str, problems: list) -> str:
    if not problems:
        return f"Links on {name}: yes\n"
    lines = [f"Links on {name}: no ({len(problems)} import{'s' if len(problems) != 1 else ''} would fail)"]
    lines.extend(f"  {problem.message()}" for problem in problems)
    return "\n".join(lines) + "\n"


def _problem_json(problem) -> dict:
    return {
        "module": problem.module,
        "name": problem.name,
        "kind": problem.kind,
        "imported": problem.got,
        "defined": problem.expected or None,
        "message": problem.message(),
    }


def render_text(inspection: "Inspection", *, show_all: bool = False) -> str:
    """The verdict first, then the evidence: socket imports, std code, imports, notes."""
    from wasiport.wasm.inspect import plural

    lines = [f"{inspection.path}: {inspection.summary}", ""]
    if inspection.socket_imports:
        lines.append("Socket imports (wasi_snapshot_preview1):")
        for sock in inspection.socket_imports:
            kind = "WasmEdge extension" if sock.wasmedge_extension else "standard WASI preview1"
            params = f", {sock.params} params" if sock.params is not None else ""
            lines.append(f"  {sock.name:<18} {kind}{params}")
    else:
        lines.append("Socket imports: none")
    if inspection.std_net_functions:
        lines.append(f"std socket code ({plural(len(inspection.std_net_functions), 'function')}, fails on WASI):")
        lines.extend(_listed(inspection.std_net_functions, show_all))
    elif inspection.has_names:
        lines.append("std socket code: none")
    if inspection.socket_crate_functions:
        lines.append(f"wasmedge_wasi_socket code ({plural(len(inspection.socket_crate_functions), 'function')}):")
        lines.extend(_listed(inspection.socket_crate_functions, show_all))
    if inspection.objects:
        lines.append(f"Objects with networking ({len(inspection.objects)}):")
        for obj in inspection.objects[: None if show_all else SHOWN_NAMES]:
            parts = []
            if obj.socket_imports:
                parts.append("imports " + ", ".join(obj.socket_imports))
            if obj.socket_crate_functions:
                parts.append(plural(len(obj.socket_crate_functions), "socket crate function"))
            if obj.std_net_functions:
                parts.append(plural(len(obj.std_net_functions), "std socket function"))
            lines.append(f"  {obj.name}: {'; '.join(parts)}")
        if not show_all and len(inspection.objects) > SHOWN_NAMES:
            lines.append(f"  ... and {len(inspection.objects) - SHOWN_NAMES} more (--all)")
    grouped = inspection.imports_by_module()
    lines.append(f"Imports ({len(inspection.imports)}):" if grouped else "Imports: none")
    for module, imports in grouped.items():
        names = [i.name if i.kind == "func" else f"{i.name} ({i.kind})" for i in imports]
        lines.append(f"  {module}: {', '.join(names)}")
    if inspection.kind == "module":
        exports = ", ".join(e.name for e in inspection.exports) or "none"
        lines.append(f"Exports: {exports}")
    for note in inspection.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _listed(names: tuple[str, ...], show_all: bool) -> list[str]:
    shown = names if show_all else names[:SHOWN_NAMES]
    lines = [f"  {name}" for name in shown]
    if len(shown) < len(names):
        lines.append(f"  ... and {len(names) - len(shown)} more (--all)")
    return lines
