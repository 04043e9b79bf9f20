"""Reading and parsing one Rust file with tree-sitter.

Byte offsets are always offsets into the file as stored on disk: a UTF-8 BOM
is parsed as three spaces (so offsets stay file-exact and edits never touch
it), and CRLF line endings are kept and reused for inserted lines.
"""
from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

from wasiport.model import Problem, Span

BOM = b"\xef\xbb\xbf"
MAX_FILE_BYTES = 4 * 1024 * 1024  # larger files are generated code; parsing them is slow and pointless


@lru_cache(maxsize=1)
def language():
    import tree_sitter

    return tree_sitter.Language(_rust_grammar())


def _rust_grammar():
    """tree_sitter_rust's grammar, from its compiled binding.

    The package's `__init__` imports `importlib.resources` (for query files we do not
    use): ~20 ms, a sixth of a pre-commit run of `check one.rs`. The binding is loaded
    by itself when it can be found; otherwise the package is imported as usual."""
    import importlib.machinery
    import importlib.util

    try:
        spec = importlib.util.find_spec("tree_sitter_rust")  # finds, does not run, the package
        directories = list(spec.submodule_search_locations or []) if spec is not None else []
        for directory in directories:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                candidate = Path(directory, "_binding" + suffix)
                if candidate.is_file():
                    binding_spec = importlib.util.spec_from_file_location("tree_sitter_rust._binding", candidate)
                    module = importlib.util.module_from_spec(binding_spec)
                    binding_spec.loader.exec_module(module)
                    return module.language()
    except (ImportError, OSError, AttributeError):
        pass
    import tree_sitter_rust

    return tree_sitter_rust.language()


@lru_cache(maxsize=1)
def parser():
    import tree_sitter

    return tree_sitter.Parser(language())


class SourceFile:
    """A Rust file's bytes, its parse tree and a line index."""

    __slots__ = ("path", "data", "tree", "_line_starts")

    def __init__(self, path: str, data: bytes, tree: object = None) -> None:
        self.path = path
        self.data = data
        self.tree = tree  # tree_sitter.Tree, parsed lazily
        self._line_starts: list[int] = []

    def __repr__(self) -> str:
        return f"SourceFile(path={self.path!r}, {len(self.data)} bytes)"

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> "SourceFile":
        return cls(path=path, data=data)

    @property
    def newline(self) -> str:
        """The line ending to use for inserted lines: the file's own."""
        return "\r\n" if b"\r\n" in self.data[:65536] else "\n"

    def parse(self):
        if self.tree is None:
            self.tree = parse_bytes(self.data)
        return self.tree

    @property
    def root(self):
        return self.parse().root_node

    def text(self, node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # -- positions -------------------------------------------------------
    @property
    def line_starts(self) -> list[int]:
        if not self._line_starts:
            starts = [0]
            find = self.data.find
            pos = find(b"\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = find(b"\n", pos + 1)
            self._line_starts = starts
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and 1-based column in characters for a byte offset."""
        starts = self.line_starts
        index = bisect_right(starts, offset) - 1
        line_start = starts[index]
        prefix = self.data[line_start:offset]
        if index == 0 and prefix.startswith(BOM):
            prefix = prefix[len(BOM) :]
        return index + 1, len(prefix.decode("utf-8", "replace")) + 1

    def span(self, start: int, end: int) -> Span:
        start_line, start_col = self.line_col(start)
        end_line, end_col = self.line_col(end)
        return Span(start, end, start_line, start_col, end_line, end_col)


def parse_bytes(data: bytes):
    if data.startswith(BOM):
        data = b"   " + data[len(BOM) :]
    return parser().parse(data)


def check_readable(path: str, data: bytes) -> Problem | None:
    """A problem that stops us from examining the file at all, or None."""
    if len(data) > MAX_FILE_BYTES:
        return Problem(
            "wasiport/file-too-large",
            f"file is {len(data) // 1024} KiB, over the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit; not scanned",
            path,
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return Problem("wasiport/not-utf8", f"file is not valid UTF-8 (byte {err.start}); not scanned", path, line, 1)
    return None


def first_syntax_error(source: SourceFile) -> Problem | None:
    """The first ERROR or MISSING node, as a Problem, or None for a clean parse."""
    root = source.root
    if not root.has_error:
        return None
    node = _find_error(root)
    if node is None:  # only tolerated errors (see _find_error)
        return None
    line, col = source.line_col(node.start_byte)
    if node.is_missing:
        what = f"expected `{node.type}`"
    else:
        snippet = source.text(node).strip().splitlines()[0][:40] if source.text(node).strip() else ""
        what = f"unexpected `{snippet}`" if snippet else "syntax error"
    return Problem("wasiport/parse-error", f"file does not parse as Rust: {what}", source.path, line, col)


def _find_error(node):
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_missing:
            return current
        if current.is_error:
            # `try!(...)` (Rust 2015) is an ERROR to tree-sitter-rust but valid code; the
            # arguments after it still parse as a parenthesized expression.
            if current.text.strip() != b"try!":
                return current
            continue
        if current.has_error:
            stack.extend(reversed(current.children))
    return None


def read_source(path: Path, display: str) -> tuple[SourceFile | None, Problem | None]:
    try:
        data = path.read_bytes()
    except OSError as err:
        return None, Problem("wasiport/unreadable", f"cannot read file: {err.strerror}", display)
    problem = check_readable(display, data)
    if problem:
        return None, problem
    return SourceFile.from_bytes(display, data), None
