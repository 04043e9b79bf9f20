"""Rules are data: TOML files under `rules/<pack>/`, validated into `Rule` values.

A rule file holds `[[rule]]` tables:

    [[rule]]
    id = "connect-timeout"            # the full id is "<pack>/<id>"
    severity = "error"                # error | warning | note
    message = "`{type}::{name}` ..."  # {capture} and {type}/{path}/{items} placeholders
    help = "what apply does"
    port = "kept"                     # kept | degraded | manual
    compat-method = "TcpStream::connect_timeout"   # optional: port status from the compat data
    transform = "gate-use"            # optional: a named transform (engine/transforms.py TRANSFORMS)
    keywords = ["connect_timeout"]    # optional (default: the words of the query's predicates):
                                      # every match contains one; the rule runs only on code
                                      # (not `//` comment lines) around them. Words derived
                                      # from `#eq?`/`#any-of?` must occur as whole names;
                                      # given ones may be part of a longer name
    prefilter = 'connect_timeout'     # optional: a regex (Python `re`) the file must match, too;
                                      # or a list of them, one must match (each with a literal
                                      # start is fast: `re` scans for that literal)
    query = '''(tree-sitter query)'''
    report = "site"                   # the capture whose span is reported (default: the first capture)
    [rule.where.<capture>]            # semantic constraints (engine/constraints.py CONSTRAINTS)
    resolves-to = ["std::net::TcpStream"]
    [[rule.examples]]                 # invalid: must be found where marked; valid: must not;
    invalid = '''                     # before/after: the fix
    let s = TcpStream::connect_timeout(a, t);
            ^^^^^^^^^^^^^^^^^^^^^^^^^^
    '''

A line of only `^` (and spaces) in an `invalid` example marks where a finding must be:
the carets stand under the finding's first line, from its first column to its last
(to the end of that line when the finding goes on). The marker lines are taken out
before the example is scanned; every finding must be marked, every mark found.

Loading validates a rule against the rule language's tables (constraints and
transforms: names, value types, what each needs, and the placeholders `{name}` each
binds for messages) and never executes anything from a rule file: TOML is parsed
with tomllib and queries are compiled by tree-sitter.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from wasiport.errors import UserError
from wasiport.model import PortStatus, Record, Severity

RULE_KEYS = {
    "id", "severity", "message", "help", "port", "compat-method", "transform", "keywords", "prefilter", "query",
    "report", "where", "examples", "description",
}
EXAMPLE_KEYS = {"invalid", "valid", "before", "after", "note"}
SKIPPED_DATA_FILES = re.compile(r"^(substitutions|deps-.*|recipes?)\.toml$")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Patterns for loading only, compiled (by `re`'s cache) at first use: a run served from the
# pack cache never loads a rule, and each compile costs a pre-commit run ~0.5 ms.
PLACEHOLDER = r"\{([a-z_]+)\}"  # as the matcher fills them
MARK_LINE = r"^[ \t]*\^+[ \t]*$"


def language() -> tuple[dict, dict]:
    """The rule language's tables: (constraints, transforms) by name.

    Imported at the first validation, not with this module (a measured cost rule, see
    wasiport/model.py): a run served from the pack cache unpickles Rules without
    validating them, and the tables' modules bring the name resolver with them."""
    from wasiport.engine.constraints import CONSTRAINTS
    from wasiport.engine.transforms import TRANSFORMS

    return CONSTRAINTS, TRANSFORMS


class RuleError(UserError):
    """A malformed rule pack: names the file, the rule and the problem."""


class Mark(NamedTuple):
    """Where an `invalid` example's finding must be: its first line, and the columns it
    covers there (1-based, end exclusive, as Span counts them)."""

    line: int
    start_col: int
    end_col: int


class Example(NamedTuple):
    kind: str  # invalid | valid | fix
    code: str  # without its marker lines
    after: str = ""
    marks: tuple[Mark, ...] = ()


class Rule(NamedTuple):
    id: str  # full id, "<pack>/<name>"
    severity: Severity
    message: str
    help: str
    port: PortStatus
    query_text: str
    source_file: str
    description: str = ""
    compat_method: str | None = None
    transform: str | None = None
    keywords: tuple[str, ...] = ()
    # Derived from `#eq?`/`#any-of?` predicates: a match spells a keyword as a whole name,
    # so `accept` in `accepts` does not make a file worth parsing. Given keywords are
    # substrings (`multicast` in `join_multicast_v4`).
    keywords_are_names: bool = False
    prefilter: tuple[str, ...] = ()  # regexes over the file's bytes, one must match (before parsing)
    report: str | None = None
    where: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    examples: tuple[Example, ...] = ()

    def constraints(self) -> dict[str, dict[str, object]]:
        return {capture: dict(items) for capture, items in self.where}

    @property
    def short_id(self) -> str:
        return self.id.split("/", 1)[-1]

    @property
    def keyword_bytes(self) -> tuple[bytes, ...]:
        """`keywords` as bytes: tested against every file a large scan reads (kept per keyword tuple)."""
        found = _KEYWORD_BYTES.get(self.keywords)
        if found is None:
            found = _KEYWORD_BYTES[self.keywords] = tuple(k.encode() for k in self.keywords)
        return found


_KEYWORD_BYTES: dict[tuple[str, ...], tuple[bytes, ...]] = {}


class RulePack(Record):
    __slots__ = ("name", "directory", "rules")

    def __init__(self, name: str, directory: Path, rules: list[Rule] | None = None) -> None:
        self.name = name
        self.directory = directory
        self.rules: list[Rule] = [] if rules is None else rules

    def by_id(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id or rule.short_id == rule_id:
                return rule
        return None


def load_pack(directory: Path, *, compile_queries: bool = True) -> RulePack:
    """Load and validate a pack. `compile_queries=False` defers tree-sitter query
    compilation (and the checks that need it) to first use: the fast path for
    scanning a few files from a pre-commit hook."""
    if not directory.is_dir():
        raise RuleError(f"rule pack {directory} does not exist")
    pack = RulePack(directory.name, directory)
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        if SKIPPED_DATA_FILES.match(path.name):
            continue
        for rule in load_rule_file(path, pack.name, compile_queries=compile_queries):
            if rule.id in seen:
                raise RuleError(f"{path}: rule {rule.id!r} is also defined in {seen[rule.id]}")
            seen[rule.id] = str(path)
            pack.rules.append(rule)
    if not pack.rules:
        raise RuleError(f"rule pack {directory} has no rules")
    return pack


def load_rule_file(path: Path, pack: str, *, compile_queries: bool = True) -> list[Rule]:
    import tomllib  # here: a pre-commit run loads the parsed pack from the cache

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise RuleError(f"{path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RuleError(f"{path}: cannot read rule file: {err}") from None
    unknown = set(document) - {"rule"}
    if unknown:
        raise RuleError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (a rule file holds [[rule]] tables)")
    tables = document.get("rule")
    if not isinstance(tables, list) or not tables:
        raise RuleError(f"{path}: no [[rule]] tables")
    return [_rule_from_table(path, pack, table, index, compile_queries) for index, table in enumerate(tables)]


def _fail(path: Path, rule_id: str, problem: str) -> RuleError:
    return RuleError(f"{path}: rule {rule_id!r}: {problem}")


def _rule_from_table(path: Path, pack: str, table: dict, index: int, compile_queries: bool = True) -> Rule:
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not ID_PATTERN.match(rule_id):
        raise RuleError(f"{path}: rule #{index + 1}: `id` must be a lowercase name like \"connect-timeout\"")
    unknown = set(table) - RULE_KEYS
    if unknown:
        raise _fail(path, rule_id, f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("severity", "message", "query"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise _fail(path, rule_id, f"`{key}` is required and must be a non-empty string")
    try:
        severity = Severity.parse(table["severity"])
    except ValueError as err:
        raise _fail(path, rule_id, str(err)) from None
    try:
        port = PortStatus(table.get("port", "manual"))
    except ValueError:
        raise _fail(path, rule_id, f"`port` must be kept, degraded or manual, not {table.get('port')!r}") from None
    transform = table.get("transform")
    transforms = language()[1]
    if transform is not None and transform not in transforms:
        raise _fail(path, rule_id, f"unknown transform {transform!r} (known: {', '.join(sorted(transforms))})")
    query_text = table["query"]
    captures = query_captures(query_text, path, rule_id) if compile_queries else None
    report = table.get("report")
    if report is not None and captures is not None and report not in captures:
        raise _fail(path, rule_id, f"`report` names capture @{report}, which the query does not define")
    where = _parse_where(path, rule_id, table.get("where", {}), captures)
    _check_transform_needs(path, rule_id, transform, where)
    texts = {key: table[key] for key in ("message", "help", "compat-method") if isinstance(table.get(key), str)}
    _check_placeholders(path, rule_id, texts, where, captures)
    keywords = table.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise _fail(path, rule_id, "`keywords` must be a list of non-empty strings")
    prefilter = table.get("prefilter", [])
    prefilters = [prefilter] if isinstance(prefilter, str) else prefilter
    if not isinstance(prefilters, list) or not all(isinstance(p, str) and p for p in prefilters) or "prefilter" in table and not prefilters:
        raise _fail(path, rule_id, "`prefilter` must be a non-empty regular expression or a list of them")
    for text in prefilters:
        try:
            re.compile(text.encode())
        except re.error as err:
            raise _fail(path, rule_id, f"`prefilter` is not a valid regular expression: {text!r}: {err}") from None
    examples = _parse_examples(path, rule_id, table.get("examples", []))
    if not any(e.kind == "invalid" for e in examples):
        raise _fail(path, rule_id, "needs at least one `invalid` example (code the rule must find)")
    compat_method = table.get("compat-method")
    if compat_method is not None and not isinstance(compat_method, str):
        raise _fail(path, rule_id, "`compat-method` must be a string like \"TcpStream::set_read_timeout\"")
    derived = _derived_keywords(query_text)
    return Rule(
        id=f"{pack}/{rule_id}",
        severity=severity,
        message=table["message"].strip(),
        help=str(table.get("help", "")).strip(),
        description=str(table.get("description", "")).strip(),
        port=port,
        query_text=query_text,
        source_file=str(path),
        compat_method=compat_method,
        transform=transform,
        keywords=tuple(keywords) or derived[0],
        keywords_are_names=not keywords and derived[1],
        prefilter=tuple(prefilters),
        report=report,
        where=where,
        examples=examples,
    )


def _parse_where(path: Path, rule_id: str, where: object, captures: set[str] | None):
    if not isinstance(where, dict):
        raise _fail(path, rule_id, "`where` must be a table of captures")
    parsed = []
    for capture, constraints in where.items():
        if captures is not None and capture not in captures:
            raise _fail(path, rule_id, f"`where.{capture}`: the query has no capture @{capture}")
        if not isinstance(constraints, dict):
            raise _fail(path, rule_id, f"`where.{capture}` must be a table")
        items = []
        for name, value in constraints.items():
            spec = language()[0].get(name)
            if spec is None:
                raise _fail(path, rule_id, f"`where.{capture}`: unknown constraint {name!r} (known: {', '.join(sorted(language()[0]))})")
            if not isinstance(value, spec.value_type):
                raise _fail(path, rule_id, f"`where.{capture}.{name}` must be a {spec.value_type.__name__}")
            missing = [needed for needed in spec.needs if needed not in constraints]
            if missing:
                raise _fail(path, rule_id, f"`where.{capture}.{name}` needs {' and '.join(missing)} on the same capture")
            if spec.validate is not None:
                try:
                    spec.validate(value)
                except ValueError as err:
                    raise _fail(path, rule_id, f"`where.{capture}.{name}`: {err}") from None
            items.append((name, tuple(value) if isinstance(value, list) else value))
        parsed.append((capture, tuple(items)))
    return tuple(parsed)


def _check_transform_needs(path: Path, rule_id: str, transform: str | None, where: tuple) -> None:
    """`gate-use` switches the items an `imports` constraint found: without one it would do nothing."""
    if transform is None:
        return
    present = {name for _capture, items in where for name, _value in items}
    for needed in language()[1][transform].needs:
        if needed not in present:
            raise _fail(path, rule_id, f"transform {transform!r} needs a `{needed}` constraint in `where` (it works on what that one finds)")


def bound_names(where: tuple) -> set[str]:
    """The placeholders the rule's constraints fill."""
    constraints = language()[0]
    return {bound for _capture, items in where for name, _value in items for bound in constraints[name].binds}


def _check_placeholders(path: Path, rule_id: str, texts: dict[str, str], where: tuple, captures: set[str] | None) -> None:
    """Every `{name}` in message, help and compat-method is a capture of the query or a value a
    constraint binds; captures are checked once the query is compiled (validate_lazily_compiled)."""
    bound = bound_names(where)
    for key, text in texts.items():
        for name in re.findall(PLACEHOLDER, text):
            if name in bound or captures is None:
                continue
            if name not in captures:
                raise _fail(path, rule_id, f"`{key}` has placeholder {{{name}}}, which is neither a capture of the query nor bound by a constraint ({_known(bound, captures)})")


def _known(bound: set[str], captures: set[str]) -> str:
    names = sorted(bound | captures)
    return "known: " + ", ".join(names) if names else "the rule binds none"


def _parse_examples(path: Path, rule_id: str, examples: object) -> tuple[Example, ...]:
    if not isinstance(examples, list):
        raise _fail(path, rule_id, "`examples` must be an array of tables ([[rule.examples]])")
    parsed = []
    for i, example in enumerate(examples):
        if not isinstance(example, dict) or set(example) - EXAMPLE_KEYS:
            raise _fail(path, rule_id, f"example #{i + 1}: keys must be among {', '.join(sorted(EXAMPLE_KEYS))}")
        if "invalid" in example:
            code, marks = split_marks(str(example["invalid"]))
            if not marks:
                raise _fail(path, rule_id, f"example #{i + 1}: an `invalid` example marks where its finding is (a line of `^` under it)")
            parsed.append(Example("invalid", code, marks=marks))
        if "valid" in example:
            if split_marks(str(example["valid"]))[1]:
                raise _fail(path, rule_id, f"example #{i + 1}: a `valid` example has nothing to mark (a line of `^` marks an `invalid` one's finding)")
            parsed.append(Example("valid", example["valid"]))
        if "before" in example or "after" in example:
            if not ("before" in example and "after" in example):
                raise _fail(path, rule_id, f"example #{i + 1}: `before` and `after` go together")
            parsed.append(Example("fix", example["before"], example["after"]))
    return tuple(parsed)


def split_marks(text: str) -> tuple[str, tuple[Mark, ...]]:
    """An example without its marker lines, and the marks they make (see the module docstring)."""
    kept: list[str] = []
    marks: list[Mark] = []
    for line in text.splitlines(keepends=True):
        content = line.rstrip("\r\n")
        if kept and re.match(MARK_LINE, content):
            start = len(content) - len(content.lstrip(" \t")) + 1
            end = len(content.rstrip(" \t")) + 1
            marks.append(Mark(len(kept), start, end))
            continue
        kept.append(line)
    return "".join(kept), tuple(marks)


_STRING_IN_PREDICATE = re.compile(r'#(eq|any-of|match)\?\s+@\w+((?:\s+"[^"]*")+)')


def derive_keywords(query_text: str) -> tuple[str, ...]:
    """Literal names the query's predicates compare with: cheap prefilter words."""
    return _derived_keywords(query_text)[0]


def _derived_keywords(query_text: str) -> tuple[tuple[str, ...], bool]:
    """derive_keywords, and whether they are whole names: taken only from `#eq?` and
    `#any-of?` predicates, whose capture's text *is* the word (a `#match?` regex may
    match it inside a longer name)."""
    words: list[str] = []
    whole = True
    for predicate, group in _STRING_IN_PREDICATE.findall(query_text):
        for literal in re.findall(r'"([^"]*)"', group):
            plain = re.sub(r"[\^\$\\()|?*+]", "", literal)
            if plain and re.fullmatch(r"\w+", plain):
                words.append(plain)
                whole = whole and predicate != "match"
    return tuple(dict.fromkeys(words)), whole and bool(words)


@lru_cache(maxsize=None)
def compile_query(query_text: str):
    # Imported here (a cost rule, wasiport/model.py): only a file that is parsed pays for tree-sitter.
    import tree_sitter

    from wasiport.rust.source import language

    return tree_sitter.Query(language(), query_text)


def compile_query_or_error(query_text: str, path: Path, rule_id: str):
    try:
        return compile_query(query_text)
    except Exception as err:  # tree-sitter raises QueryError (a subclass of Exception)
        raise _fail(path, rule_id, f"query does not compile: {err}") from None


def capture_names(query) -> list[str]:
    return [query.capture_name(i) for i in range(query.capture_count)]


def query_captures(query_text: str, path: Path | str, rule_id: str) -> set[str]:
    return set(capture_names(compile_query_or_error(query_text, Path(path), rule_id)))


def rule_error(rule: Rule, problem: str) -> RuleError:
    """The error `validate_lazily_compiled` raises for this rule."""
    return _fail(Path(rule.source_file), rule.short_id, problem)


def validate_lazily_compiled(rule: Rule):
    """Compile a rule's query at first use and run the checks that need its captures."""
    query = compile_query_or_error(rule.query_text, Path(rule.source_file), rule.short_id)
    captures = set(capture_names(query))
    for capture, _ in rule.where:
        if capture not in captures:
            raise _fail(Path(rule.source_file), rule.short_id, f"`where.{capture}`: the query has no capture @{capture}")
    if rule.report is not None and rule.report not in captures:
        raise _fail(Path(rule.source_file), rule.short_id, f"`report` names capture @{rule.report}, which the query does not define")
    texts = {"message": rule.message, "help": rule.help, "compat-method": rule.compat_method or ""}
    _check_placeholders(Path(rule.source_file), rule.short_id, texts, rule.where, captures)
    return query
