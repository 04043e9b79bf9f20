"""A malformed rule pack is an error naming the file, the rule and the problem."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wasiport.engine.rules import RuleError, derive_keywords, load_pack

GOOD_RULE = '''
[[rule]]
id = "nodelay"
severity = "error"
message = "nodelay"
query = """(call_expression function: (field_expression field: (field_identifier) @name) (#eq? @name "set_nodelay")) @site"""
[[rule.examples]]
invalid = """
fn f(s: S) { s.set_nodelay(true); }
             ^^^^^^^^^^^^^^^^^^^
"""
'''


def write_pack(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    pack = tmp_path / "pack"
    pack.mkdir(exist_ok=True)
    (pack / name).write_text(text)
    return pack


def test_a_good_rule_loads(tmp_path):
    pack = load_pack(write_pack(tmp_path, GOOD_RULE))
    assert [r.id for r in pack.rules] == ["pack/nodelay"]
    assert pack.rules[0].keywords == ("set_nodelay",)


@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda t: t.replace('(field_identifier) @name)', '(no_such_node) @name)'), "query does not compile"),
        (lambda t: t.replace('severity = "error"', 'severity = "fatal"'), "unknown severity 'fatal'"),
        (lambda t: t.replace('message = "nodelay"\n', ''), "`message` is required"),
        (lambda t: t.replace('id = "nodelay"', 'id = "Bad Id"'), "`id` must be a lowercase name"),
        (lambda t: t + '[rule.where.nothere]\nresolves-to = ["std::net::TcpStream"]\n', "the query has no capture @nothere"),
        (lambda t: t + '[rule.where.site]\nmagic = true\n', "unknown constraint 'magic'"),
        (lambda t: t.replace('invalid = ', 'valid = ').replace("^^^^^^^^^^^^^^^^^^^\n", ""), "needs at least one `invalid` example"),
        (lambda t: t.replace('[[rule]]', '[[rules]]'), "unknown top-level key(s) rules"),
        (lambda t: t + "\nthis is = not toml", "not valid TOML"),
        (lambda t: t.replace('query =', 'transform = "explode"\nquery ='), "unknown transform 'explode'"),
        (lambda t: t.replace('query =', 'transform = "gate-use"\nquery ='), "transform 'gate-use' needs a `imports` constraint"),
        (lambda t: t + '[rule.where.site]\nunknown = "skip"\n', "`where.site.unknown` needs type-is on the same capture"),
        (lambda t: t + '[rule.where.site]\ntype-is = ["std::net::TcpStream"]\nunknown = "loud"\n', "unknown severity 'loud'"),
        (lambda t: t + '[rule.where.site]\nqualified = "yes"\n', "`where.site.qualified` must be a bool"),
        (lambda t: t.replace('message = "nodelay"', 'message = "{nmae} is unsupported"'), "placeholder {nmae}, which is neither a capture"),
        (lambda t: t.replace('message = "nodelay"', 'message = "nodelay"\nhelp = "set {path}"'), "`help` has placeholder {path}"),
        (lambda t: t.replace('             ^^^^^^^^^^^^^^^^^^^\n', ''), "an `invalid` example marks where its finding is"),
        (lambda t: t + '[[rule.examples]]\nvalid = """\nfn f() {}\n^^\n"""\n', "a `valid` example has nothing to mark"),
    ],
)
def test_malformed_rules_name_file_rule_and_problem(tmp_path, edit, expected):
    pack = write_pack(tmp_path, edit(GOOD_RULE))
    with pytest.raises(RuleError) as raised:
        load_pack(pack)
    message = str(raised.value)
    assert "bad.toml" in message
    assert expected in message


def test_placeholders_a_constraint_binds_or_the_query_captures_are_accepted(tmp_path):
    text = GOOD_RULE.replace('message = "nodelay"', 'message = "`{name}` on {type}"').replace(
        "[[rule.examples]]", '[rule.where.site]\ntype-is = ["std::net::TcpStream"]\n[[rule.examples]]', 1
    )
    rule = load_pack(write_pack(tmp_path, text)).rules[0]
    assert rule.message == "`{name}` on {type}"


def test_a_lazily_compiled_rule_checks_its_capture_placeholders_at_first_use(tmp_path):
    from wasiport.engine.rules import validate_lazily_compiled

    text = GOOD_RULE.replace('message = "nodelay"', 'message = "{nmae}"')
    rule = load_pack(write_pack(tmp_path, text), compile_queries=False).rules[0]
    with pytest.raises(RuleError, match=r"placeholder \{nmae\}"):
        validate_lazily_compiled(rule)


def test_every_constraint_and_transform_is_registered_once_with_its_function():
    from wasiport.engine.constraints import CONSTRAINTS
    from wasiport.engine.transforms import TRANSFORMS

    for spec in CONSTRAINTS.values():
        assert spec.check is not None or spec.needs, spec.name  # a modifier names what it modifies
        assert all(needed in CONSTRAINTS for needed in spec.needs), spec.name
        assert spec.doc
    for spec in TRANSFORMS.values():
        assert callable(spec.edits) and all(needed in CONSTRAINTS for needed in spec.needs), spec.name


@pytest.mark.parametrize(
    ("text", "code", "marks"),
    [
        ("a;\n^\n", "a;\n", [(1, 1, 2)]),
        ("fn f() {\n    x.y();\n    ^^^^^^^\n}\n", "fn f() {\n    x.y();\n}\n", [(2, 5, 12)]),
        ("a; b;\n^^\n   ^^\n", "a; b;\n", [(1, 1, 3), (1, 4, 6)]),
        ("^^\nx;\n", "^^\nx;\n", []),  # a first line has nothing above it to mark
        ("x ^ y;\n", "x ^ y;\n", []),
    ],
)
def test_marker_lines(text, code, marks):
    from wasiport.engine.rules import split_marks

    stripped, found = split_marks(text)
    assert stripped == code
    assert [tuple(m) for m in found] == marks


def test_an_invalid_example_found_elsewhere_than_marked_fails(tmp_path):
    from wasiport.engine.context import ScanContext
    from wasiport.engine.ruletest import run_example
    from wasiport.model import Profile

    text = GOOD_RULE.replace("             ^^^^^^^^^^^^^^^^^^^", "               ^^^^^^^^^^^^^^^^^")
    rule = load_pack(write_pack(tmp_path, text)).rules[0]
    result = run_example(rule, 0, rule.examples[0], ScanContext(Profile()))
    assert not result.ok
    assert "found elsewhere than marked" in result.detail
    assert "<- found, not marked" in result.detail and "<- marked, not found" in result.detail
    good = load_pack(write_pack(tmp_path, GOOD_RULE)).rules[0]
    assert run_example(good, 0, good.examples[0], ScanContext(Profile())).ok


def test_query_error_names_the_rule(tmp_path):
    pack = write_pack(tmp_path, GOOD_RULE.replace('(field_identifier) @name)', '(no_such_node) @name)'))
    with pytest.raises(RuleError, match=r"rule 'nodelay': query does not compile"):
        load_pack(pack)


def test_duplicate_ids_across_files(tmp_path):
    pack = write_pack(tmp_path, GOOD_RULE, "a.toml")
    write_pack(tmp_path, GOOD_RULE, "b.toml")
    with pytest.raises(RuleError, match="also defined in"):
        load_pack(pack)


def test_keywords_come_from_query_predicates():
    query = '(call_expression (#any-of? @name "set_read_timeout" "read_timeout") (#eq? @x "accept"))'
    assert derive_keywords(query) == ("set_read_timeout", "read_timeout", "accept")


def test_malformed_pack_is_exit_code_2_with_one_sentence(tmp_path):
    pack = write_pack(tmp_path, GOOD_RULE.replace('severity = "error"', 'severity = "fatal"'))
    source = tmp_path / "x.rs"
    source.write_text("use std::net::TcpStream;\n")
    proc = subprocess.run(
        [sys.executable, "-m", "wasiport", "check", "--no-cache", "--rules", str(pack), str(source)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "bad.toml" in proc.stderr and "unknown severity" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_loading_a_rule_never_runs_code(tmp_path):
    # TOML with strings that would be code in other formats stays inert data.
    marker = tmp_path / "pwned"
    text = GOOD_RULE.replace('message = "nodelay"', f'message = "__import__(\'os\').system(\'touch {marker}\')"')
    pack = load_pack(write_pack(tmp_path, text))
    assert "__import__" in pack.rules[0].message
    assert not marker.exists()


def test_the_rule_language_reference_lists_every_constraint_and_transform():
    from wasiport.engine.constraints import CONSTRAINTS
    from wasiport.engine.transforms import TRANSFORMS

    reference = (Path(__file__).resolve().parents[2] / "rules" / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in reference.splitlines() if line.startswith("| `")}
    assert set(CONSTRAINTS) | set(TRANSFORMS) == rows
