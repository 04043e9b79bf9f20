"""Valid Rust that tree-sitter-rust cannot read, and how a file is examined anyway.

tree-sitter-rust 0.24 rejects constructs rustc accepts: an attribute on a field of
a struct pattern (`S { a, #[cfg(x)] b }`), `type X;` and `safe fn` in `extern`
blocks, `auto trait`, raw keywords (`k#gen`), `~` or a lone `$` in macro bodies,
`x as T <= y`, a closure returning `..=end`, empty generic arguments (`Reader<>`)
and a few where-clauses. A file with such a construct must still be examined.

`read(data)` parses a file once; only when that parse has errors does it do more:

1. The file is lexed (comments, strings, character literals): a file whose
   delimiters do not balance, or with an unterminated comment or string, or a
   merge-conflict marker, is one rustc rejects as well. That is `broken`, the
   one hard diagnostic, as before; so is a file the parser finds a `;` short (the
   usual half-edited file), after step 2.
2. Around each error, the innermost item (or macro invocation) is a region the
   grammar could not read. Inside these regions only, the known constructs are
   masked: replaced by as many spaces as they have bytes (newlines kept), never
   inside a comment or a string, so every byte offset of the masked text is the
   file's own. The masked text is parsed again; masks that leave more errors than
   there were are dropped. `apply` never edits a masked construct.
3. What still does not parse is a `Gap`: its region (the innermost item around
   the error), where the parser failed, and what it found there. The rest of the
   tree is scanned as usual; the caller reports gaps that mention socket code
   and refuses to edit inside them.

A clean file costs nothing here: the first parse is the only one.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# -- lexing ------------------------------------------------------------------------------

# What is not code: comments, strings (also b"", c"", raw r#""#), character literals
# (`'x'`, `'\n'`, `'é'`; a lifetime `'a` is not one). `_NEXT` finds where one may
# begin (literal characters only, which re's search skips to quickly); the rest is
# matched from there.
_NEXT = rb"""/[/*]|["']"""
_STRING = rb'"(?:[^"\\]|\\.)*"'
_CHAR = rb"""'(?:\\(?:u\{[0-9A-Fa-f_]{1,8}\}|x[0-9A-Fa-f]{2}|[^\n])|[\x00-\x09\x0b-\x26\x28-\x5b\x5d-\x7f]|[\xc0-\xf7][\x80-\xbf]{1,3})'"""
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_BLOCK_COMMENT_MARK = rb"/\*|\*/"
_DELIMITERS_ONLY = bytes(range(256)).translate(None, b"()[]{}")  # every byte but the delimiters
_DELIMITERS = rb"[()\[\]{}]"
_PAIRS = rb"\(\)|\[\]|\{\}"
_CONFLICT_MARKER = rb"^(?:<{7}|>{7}|={7})(?: |$)"
_CLOSING = {ord(")"): ord("("), ord("]"): ord("["), ord("}"): ord("{")}
_SPACES = bytes(b"\n"[0] if i == 10 else 32 for i in range(256))  # blanks all but newlines


@lru_cache(maxsize=None)
def _regex(pattern: bytes, flags: int = re.S) -> "re.Pattern[bytes]":
    """A compiled pattern, compiled on first use: most runs of `check` never lex a file,
    and compiling every pattern here at import cost a one-file check milliseconds."""
    return re.compile(pattern, flags)


class Lexed(NamedTuple):
    """The file with comments and the insides of literals blanked (same length), and
    the first reason rustc's lexer would reject the file: (byte offset, message) or None."""

    code: bytes
    broken: tuple[int, str] | None


def lex(data: bytes) -> Lexed:
    """Blank comments and literal contents (quotes kept, newlines kept), and find what
    rustc's lexer rejects: an unterminated comment or string, unbalanced delimiters."""
    code = bytearray(data)
    broken: tuple[int, str] | None = None
    position = 0
    search, string, char = _regex(_NEXT).search, _regex(_STRING).match, _regex(_CHAR).match
    while broken is None:
        match = search(data, position)
        if match is None:
            break
        start = match.start()
        token = match.group()
        if token == b"//":
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            code[start:end] = data[start:end].translate(_SPACES)
        elif token == b"/*":
            end = _block_comment_end(data, start)
            if end < 0:
                broken, end = (start, "unterminated block comment"), len(data)
            code[start:end] = data[start:end].translate(_SPACES)
        elif token == b"'":
            literal = char(data, start)
            if literal is None:  # a lifetime or a label
                position = start + 1
                continue
            end = literal.end()
            code[start + 1 : end - 1] = data[start + 1 : end - 1].translate(_SPACES)
        else:
            hashes = _raw_hashes(data, start)
            if hashes is None:
                literal = string(data, start)
                close = literal.end() - 1 if literal is not None else -1
            else:
                close = data.find(b'"' + b"#" * hashes, start + 1)
            if close < 0:
                broken, close = (start, "unterminated string"), len(data)
            code[start + 1 : close] = data[start + 1 : close].translate(_SPACES)
            end = close + 1 + (hashes or 0)
        position = end
    code_bytes = bytes(code)
    if broken is None:
        broken = _unbalanced(code_bytes)
    if broken is None:
        marker = _regex(_CONFLICT_MARKER, re.M).search(code_bytes)
        if marker is not None:
            broken = (marker.start(), "merge-conflict marker")
    return Lexed(code_bytes, broken)


def _raw_hashes(data: bytes, quote: int) -> int | None:
    """How many `#` open the raw string whose `"` is at `quote` (`r"`: 0), or None
    when the quote does not open a raw string."""
    hashes_start = quote
    while hashes_start > 0 and data[hashes_start - 1] == 0x23:  # '#'
        hashes_start -= 1
    if hashes_start == 0 or data[hashes_start - 1] != 0x72:  # 'r'
        return None
    before = hashes_start - 1
    if before > 0 and data[before - 1] in b"bc":
        before -= 1
    if before > 0 and data[before - 1] in _NAME_CHARS:
        return None  # `bar"..."` opens no raw string
    return quote - hashes_start


def _blank(code: bytearray, start: int, end: int) -> None:
    if end > start:
        code[start:end] = bytes(code[start:end]).translate(_SPACES)


def _block_comment_end(data: bytes, start: int) -> int:
    """The end of the (nested) block comment opened at `start`, or -1."""
    depth = 0
    for mark in _regex(_BLOCK_COMMENT_MARK).finditer(data, start):
        depth += 1 if mark.group() == b"/*" else -1
        if depth == 0:
            return mark.end()
    return -1


def _unbalanced(code: bytes) -> tuple[int, str] | None:
    """The first delimiter that does not pair up. The pairs are taken out of the
    delimiters alone, innermost first (a pass per level of nesting, in C); only a
    file where something is left over is walked delimiter by delimiter."""
    delimiters = code.translate(None, _DELIMITERS_ONLY)
    while delimiters:
        fewer = _regex(_PAIRS).sub(b"", delimiters)
        if len(fewer) == len(delimiters):
            break
        delimiters = fewer
    if not delimiters:
        return None
    stack: list[tuple[int, int]] = []
    for match in _regex(_DELIMITERS).finditer(code):
        char = code[match.start()]
        opener = _CLOSING.get(char)
        if opener is None:
            stack.append((char, match.start()))
        elif not stack or stack[-1][0] != opener:
            return match.start(), f"unexpected closing delimiter `{chr(char)}`"
        else:
            stack.pop()
    if stack:
        char, at = stack[-1]
        return at, f"unclosed delimiter `{chr(char)}`"
    return None


# -- known constructs --------------------------------------------------------------------

_IDENT = rb"[A-Za-z_][A-Za-z0-9_]*"
_ATTRIBUTE = rb"\#\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
# Each pattern runs over the lexed code of a region; its group `m` is blanked.
KNOWN_CONSTRUCTS: tuple[tuple[str, bytes], ...] = (
        # `S { a, #[cfg(x)] b }` in a pattern (redis >= 0.32, ruma, sys-mount)
        ("attribute on a struct-pattern field", rb"[{,]\s*(?P<m>" + _ATTRIBUTE + rb")(?=\s*(?:ref\s+|mut\s+)*" + _IDENT + rb"\s*[,}:])"),
        # `pub type Foo;` in an `extern` block (web-sys, cxx-style bindings)
        ("`type X;` in an extern block", rb"(?P<m>(?<![A-Za-z0-9_])(?:pub(?:\s*\([^()]*\))?\s+)?type\s+" + _IDENT + rb"\s*;)"),
        # `unsafe extern "C" { pub safe fn f(); safe static X: u8; }` (edition 2024)
        ("`safe` item in an extern block", rb"(?<![A-Za-z0-9_])(?P<m>safe)(?=\s+(?:fn|static)\b)"),
        ("`auto trait`", rb"(?<![A-Za-z0-9_])(?P<m>auto)(?=\s+trait\b)"),
        ("raw keyword `k#`", rb"(?<![A-Za-z0-9_#])(?P<m>k\#)(?=[A-Za-z_])"),
        ("`~` in a macro body", rb"(?P<m>~)"),
        ("lone `$` in a macro body", rb"(?P<m>\$)(?![A-Za-z_(])"),
        # `curr as Tick <= tick`: `<=` after a cast is a comparison, not generic arguments
        ("cast before `<=`", rb"(?<![A-Za-z0-9_])(?P<m>as\s+" + _IDENT + rb"(?:::" + _IDENT + rb")*)(?=\s*<=)"),
        ("closure returning `..=end`", rb"\|\s*(?P<m>\.\.=)"),
        ("empty generic arguments `<>`", rb"(?P<m>::<\s*>|(?<=[A-Za-z0-9_])<\s*>)"),
        # Rust's whitespace beyond ASCII: U+200E, U+200F, U+2028, U+2029, U+0085
        ("Unicode whitespace", rb"(?P<m>\xe2\x80[\x8e\x8f\xa8\xa9]|\xc2\x85)"),
        # `pub trait Histogram:\n where ...` (no supertraits before `where`)
        ("empty supertrait list before `where`", rb"(?<!:)(?P<m>:)(?!:)(?=\s*where\b)"),
        # `trait T: A + B + {` (a trailing `+` in the supertraits)
        ("trailing `+` in supertraits", rb"\btrait\s[^{;]*?(?P<m>\+)(?=\s*(?:\{|where\b))"),
        # `struct S<T> where T: X;` (a unit struct with a where-clause)
        ("where-clause on a unit struct", rb"\bstruct\s+" + _IDENT + rb"[^{;(]*?(?P<m>\bwhere\b[^{;]*)(?=;)"),
)


_LOOKAHEAD = 256  # bytes after a region a construct's pattern may look at


class Mask(NamedTuple):
    """A known construct blanked before parsing: bytes [start, end) of the file."""

    start: int
    end: int
    construct: str


def known_constructs(code: bytes, regions: list[tuple[int, int]]) -> list[Mask]:
    """The known constructs inside `regions` of the lexed code, in file order, no two overlapping."""
    found: list[Mask] = []
    for start, end in regions:
        for name, pattern in KNOWN_CONSTRUCTS:
            # a little beyond the region: `safe` alone may be the error, `fn` follows it
            for match in _regex(pattern).finditer(code, start, min(len(code), end + _LOOKAHEAD)):
                if match.start("m") >= end:
                    break
                if match.end("m") > match.start("m"):
                    found.append(Mask(match.start("m"), match.end("m"), name))
    found.sort()
    kept: list[Mask] = []
    for mask in found:
        if not kept or mask.start >= kept[-1].end:
            kept.append(mask)
    return kept


def masked(data: bytes, masks: list[Mask]) -> bytes:
    """`data` with every mask blanked: same length, newlines kept."""
    out = bytearray(data)
    for mask in masks:
        _blank(out, mask.start, mask.end)
    return bytes(out)


# -- regions -----------------------------------------------------------------------------

ITEM_TYPES = frozenset(
    {
        "function_item", "function_signature_item", "struct_item", "enum_item", "union_item", "impl_item",
        "trait_item", "mod_item", "foreign_mod_item", "const_item", "static_item", "type_item", "use_declaration",
        "macro_definition", "macro_invocation", "extern_crate_declaration", "associated_type",
    }
)
_ITEM_LISTS = frozenset({"source_file", "declaration_list"})
# What ends the siblings an error in a list of items runs over: the parser is back on track.
_RESYNC_TYPES = ITEM_TYPES | {"}", "attribute_item", "inner_attribute_item", "line_comment", "block_comment"}


def error_nodes(root) -> list:
    """ERROR and MISSING nodes, outermost first, in order; `try!(..)` (Rust 2015, an
    ERROR to the grammar followed by a parenthesised expression that parses) is not one."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing or (node.is_error and node.text.strip() != b"try!"):
            found.append(node)
            continue
        if node.has_error:
            stack.extend(reversed(node.children))
    return found


def region_of(node) -> tuple[int, int]:
    """The innermost item (or macro invocation) around an error node; an
    error directly in a list of items extends over the siblings that follow it up to
    the next item (the parser resynchronised there)."""
    current = node
    while current.parent is not None:
        parent = current.parent
        if parent.type in ITEM_TYPES:
            return parent.start_byte, parent.end_byte
        if parent.type in _ITEM_LISTS:
            end = current.end_byte
            sibling = current.next_sibling
            while sibling is not None and sibling.type not in _RESYNC_TYPES:
                end = sibling.end_byte
                sibling = sibling.next_sibling
            return current.start_byte, end
        current = parent
    return node.start_byte, node.end_byte


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


# -- reading a file ----------------------------------------------------------------------


class Gap(NamedTuple):
    """A region the grammar could not read: the item around it, where the parser
    failed, and what it found there (as a short phrase)."""

    start: int
    end: int
    error_start: int
    error_end: int
    what: str


class Reading(NamedTuple):
    tree: object  # tree_sitter.Tree of the (masked) text
    masks: tuple[Mask, ...] = ()  # known constructs blanked before the tree was made
    gaps: tuple[Gap, ...] = ()
    broken: tuple[int, str] | None = None  # rustc rejects the file: (offset, why)
    code: bytes | None = None  # the lexed text (comments, literals blanked), when there were errors


def read(data: bytes, parse) -> Reading:
    """Parse `data` with `parse` (bytes -> tree); with errors, mask the known constructs
    around them and parse again; what still fails becomes gaps (see module docstring)."""
    tree = parse(data)
    if not tree.root_node.has_error:
        return Reading(tree)
    errors = error_nodes(tree.root_node)
    if not errors:
        return Reading(tree)
    lexed = lex(data)
    if lexed.broken is not None:
        return Reading(tree, broken=lexed.broken, code=lexed.code)
    masks = known_constructs(lexed.code, merged([region_of(n) for n in errors]))
    if masks:
        masked_tree = parse(masked(data, masks))
        masked_errors = error_nodes(masked_tree.root_node)
        if len(masked_errors) <= len(errors):
            tree, errors = masked_tree, masked_errors
        else:  # a look-alike was masked and made things worse: keep the text as it is
            masks = []
    # `let x = f()?` then `Ok(x)`: rustc says "expected `;`" too. (Other missing tokens
    # are also what valid Rust the grammar misreads gets: `[u128 { hi: 0 }; 4]` in ring.)
    missing = next((n for n in errors if n.is_missing and n.type == ";"), None)
    if missing is not None:
        return Reading(tree, tuple(masks), broken=(missing.start_byte, "expected `;`"), code=lexed.code)
    gaps = tuple(_gap(node, data) for node in errors)
    return Reading(tree, tuple(masks), _merged_gaps(gaps), None, lexed.code)


def _gap(node, data: bytes) -> Gap:
    start, end = region_of(node)
    if node.is_missing:
        what = f"expected `{node.type}`"
    else:
        text = data[node.start_byte : node.end_byte].decode("utf-8", "replace").strip()
        first = text.splitlines()[0][:40] if text else ""
        what = f"unexpected `{first}`" if first else "a syntax error"
    return Gap(start, end, node.start_byte, node.end_byte, what)


def _merged_gaps(gaps: tuple[Gap, ...]) -> tuple[Gap, ...]:
    """One gap per region (the first error in it names it); nested regions join the outer."""
    out: list[Gap] = []
    for gap in sorted(gaps, key=lambda g: (g.start, -g.end, g.error_start)):
        if out and gap.start < out[-1].end:
            last = out[-1]
            out[-1] = last._replace(end=max(last.end, gap.end))
        else:
            out.append(gap)
    return tuple(out)


# -- what the caller does with gaps -----------------------------------------------------


def mentions(code: bytes, start: int, end: int, names: frozenset[bytes] | set[bytes]) -> list[tuple[int, bytes]]:
    """(offset, name) of each whole-name occurrence of `names` in the lexed code[start:end]."""
    if not names:
        return []
    pattern = _names_pattern(tuple(sorted(names)))
    return [(m.start(), m.group()) for m in pattern.finditer(code, start, end)]


def _names_pattern(names: tuple[bytes, ...]) -> "re.Pattern[bytes]":
    alternatives = b"|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return _regex(rb"(?<![A-Za-z0-9_])(?:" + alternatives + rb")(?![A-Za-z0-9_])")


def overlaps(start: int, end: int, region_start: int, region_end: int) -> bool:
    """Whether [start, end) touches the inside of [region_start, region_end) (an
    insertion counts when strictly inside)."""
    if start == end:
        return region_start < start < region_end
    return start < region_end and region_start < end
