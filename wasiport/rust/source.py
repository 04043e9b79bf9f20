"""Reading and parsing one Rust file with tree-sitter.

Byte offsets are always offsets into the file as stored on disk: a UTF-8 BOM
is parsed as three spaces (so offsets stay file-exact and edits never touch
it), and CRLF line endings are kept and reused for inserted lines. Valid Rust
the grammar cannot read is masked or left as gaps (see gaps.py); only a file
rustc would reject as well is a parse error (`first_syntax_error`).
"""
from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

from wasiport.model import Edit, Finding, PortStatus, Problem, Severity, Span
from wasiport.rust import gaps

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

    __slots__ = ("path", "data", "tree", "reading", "_line_starts")

    def __init__(self, path: str, data: bytes, tree: object = None) -> None:
        self.path = path
        self.data = data
        self.tree = tree  # tree_sitter.Tree, parsed lazily (of the masked text: see gaps.py)
        self.reading: gaps.Reading | None = None  # how it was parsed: masks, gaps, breakage
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
            self.reading = read_rust(self.data)
            self.tree = self.reading.tree
        return self.tree

    @property
    def gaps(self) -> tuple[gaps.Gap, ...]:
        """Regions of valid-looking Rust the grammar could not read (empty for most files)."""
        self.parse()
        return self.reading.gaps if self.reading is not None else ()

    @property
    def masks(self) -> tuple[gaps.Mask, ...]:
        """Known constructs the grammar cannot read, blanked before parsing."""
        self.parse()
        return self.reading.masks if self.reading is not None else ()

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
    """The grammar's tree of `data` as it is (snippets; files go through `read_rust`)."""
    if data.startswith(BOM):
        data = b"   " + data[len(BOM) :]
    return parser().parse(data)


def read_rust(data: bytes) -> gaps.Reading:
    """A file's tree, with the known constructs the grammar cannot read masked and what
    it still cannot read as gaps: the one way a whole file is parsed (see gaps.py)."""
    return gaps.read(data, parse_bytes)


def _size_text(size: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def check_readable(path: str, data: bytes, limit: int = MAX_FILE_BYTES) -> Problem | None:
    """A problem that stops us from examining the file at all, or None; LIMIT is the size cap."""
    if len(data) > limit:
        return Problem(
            "wasiport/file-too-large",
            f"file is {len(data) // 1024} KiB, over the {_size_text(limit)} limit; not scanned",
            path,
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return Problem("wasiport/not-utf8", f"file is not valid UTF-8 (byte {err.start}); not scanned", path, line, 1)
    return None


def first_syntax_error(source: SourceFile) -> Problem | None:
    """A Problem when rustc would reject the file too (unbalanced delimiters, an
    unterminated comment or string, a merge-conflict marker, a missing `;`), or None. What else the
    grammar cannot read is not an error: masked, or left as gaps (`source.gaps`)."""
    source.parse()
    reading = source.reading
    if reading is None or reading.broken is None:
        return None
    offset, why = reading.broken
    line, col = source.line_col(offset)
    return Problem("wasiport/parse-error", f"file does not parse as Rust: {why}", source.path, line, col)


NOT_EXAMINED = "wasiport/not-examined"
UNREAD_EDIT = "wasiport/edit-in-unread-region"


def gap_findings(source: SourceFile, names: frozenset[bytes] | set[bytes]) -> list[Finding]:
    """A warning for each gap (see gaps.py) whose code mentions one of `names` (the
    rules' keywords): the socket code there may be missed, or found from a partial
    parse, and apply will not edit it. Gaps that mention none of them say nothing."""
    found: list[Finding] = []
    reading = source.reading
    if reading is None or not reading.gaps or reading.code is None:
        return found
    for gap in reading.gaps:
        hits = gaps.mentions(reading.code, gap.start, gap.end, names)
        if not hits:
            continue
        lines: dict[str, list[int]] = {}
        for offset, name in hits:
            numbers = lines.setdefault(name.decode(), [])
            line = source.line_col(offset)[0]
            if line not in numbers:
                numbers.append(line)
        listed = ", ".join(
            f"`{name}` ({'line' if len(numbers) == 1 else 'lines'} {', '.join(map(str, numbers[:5]))}{', ...' if len(numbers) > 5 else ''})"
            for name, numbers in lines.items()
        )
        error_line, error_col = source.line_col(gap.error_start)
        first_line, last_line = source.line_col(gap.start)[0], source.line_col(max(gap.end - 1, gap.start))[0]
        first, name = hits[0]
        found.append(
            Finding(
                NOT_EXAMINED,
                Severity.WARNING,
                f"not examined: grammar gap at {error_line}:{error_col} ({gap.what}); {_describe_region(source, gap)}"
                f" (lines {first_line}-{last_line}) mentions {listed}",
                source.path,
                source.span(first, first + len(name)),
                help="tree-sitter's Rust grammar cannot read this region: its socket code may be missed or found "
                "from a partial parse, and `wasiport apply` will not edit inside it; check it by hand",
                port=PortStatus.MANUAL,
                sure=False,
            )
        )
    return found


def _describe_region(source: SourceFile, gap: gaps.Gap) -> str:
    """`fn name`, `impl ...`, or "the code" for a gap's region."""
    node = source.root.descendant_for_byte_range(gap.start, gap.end)
    while node is not None and (node.start_byte != gap.start or node.end_byte != gap.end) and node.parent is not None:
        if node.start_byte <= gap.start and node.end_byte >= gap.end:
            break
        node = node.parent
    if node is None or node.type not in gaps.ITEM_TYPES:
        return "the code there"
    keyword = _REGION_KEYWORDS.get(node.type, node.type.replace("_", " "))
    name = node.child_by_field_name("name") or node.child_by_field_name("type") or node.child_by_field_name("macro")
    return f"`{keyword} {source.text(name)}`" if name is not None else f"this {keyword}"


_REGION_KEYWORDS = {
    "function_item": "fn", "function_signature_item": "fn", "struct_item": "struct", "enum_item": "enum",
    "union_item": "union", "impl_item": "impl", "trait_item": "trait", "mod_item": "mod",
    "foreign_mod_item": "extern block", "const_item": "const", "static_item": "static", "type_item": "type",
    "macro_definition": "macro_rules!", "macro_invocation": "macro", "use_declaration": "use",
}


def unread_edit_problem(source: SourceFile, edits: list[Edit]) -> Problem | None:
    """Why an edit cannot be made, as a Problem: it would land inside a gap (text the
    grammar could not read) or on a masked construct; None when every edit is clear."""
    reading = source.reading
    if reading is None or not (reading.gaps or reading.masks):
        return None
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        for gap in reading.gaps:
            if gaps.overlaps(edit.start, edit.end, gap.start, gap.end):
                line, col = source.line_col(edit.start)
                error_line, error_col = source.line_col(gap.error_start)
                first_line, last_line = source.line_col(gap.start)[0], source.line_col(max(gap.end - 1, gap.start))[0]
                return Problem(
                    UNREAD_EDIT,
                    f"an edit would land inside {_describe_region(source, gap)} (lines {first_line}-{last_line}), which the Rust "
                    f"grammar could not read (grammar gap at {error_line}:{error_col}: {gap.what}); port this site by hand",
                    source.path,
                    line,
                    col,
                )
        for mask in reading.masks:
            if gaps.overlaps(edit.start, edit.end, mask.start, mask.end):
                line, col = source.line_col(edit.start)
                return Problem(UNREAD_EDIT, f"an edit would change a construct the Rust grammar cannot read ({mask.construct}); port this site by hand", source.path, line, col)
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
