"""One module per subcommand.

Each module defines `register(subparsers)` and keeps its imports of heavy
modules (tree-sitter, wasmtime, GitPython) inside the function that runs the
command, so that `wasiport check one.rs` from a pre-commit hook starts fast.
"""

COMMANDS = ("check", "apply", "run", "inspect", "rules")
