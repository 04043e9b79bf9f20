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
invalid = "fn f(s: S) { s.set_nodelay(true); }"
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
        (lambda t: t.replace('invalid = ', 'valid = '), "needs at least one `invalid` example"),
        (lambda t: t.replace('[[rule]]', '[[rules]]'), "unknown top-level key(s) rules"),
        (lambda t: t + "\nthis is = not toml", "not valid TOML"),
        (lambda t: t.replace('query =', 'transform = "explode"\nquery ='), "unknown transform 'explode'"),
    ],
)
def test_malformed_rules_name_file_rule_and_problem(tmp_path, edit, expected):
    pack = write_pack(tmp_path, edit(GOOD_RULE))
    with pytest.raises(RuleError) as raised:
        load_pack(pack)
    message = str(raised.value)
    assert "bad.toml" in message
    assert expected in message


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
