"""Every rule's embedded examples, one test each (the same check as `wasiport rules test`)."""
from __future__ import annotations

import pytest

from wasiport.engine.matcher import ScanContext
from wasiport.engine.ruletest import run_example
from wasiport.model import Profile
from wasiport.engine.pack import load_compat, load_rules

PROFILE = Profile()
PACK = load_rules(PROFILE, compile_queries=True)
CONTEXT = ScanContext(PROFILE, load_compat(PROFILE))
CASES = [(rule, index, example) for rule in PACK.rules for index, example in enumerate(rule.examples)]


@pytest.mark.parametrize(
    "rule,index,example",
    CASES,
    ids=[f"{rule.short_id}-{index + 1}-{example.kind}" for rule, index, example in CASES],
)
def test_rule_example(rule, index, example):
    result = run_example(rule, index, example, CONTEXT)
    assert result.ok, result.detail


def test_every_rule_has_found_and_not_found_examples():
    for rule in PACK.rules:
        kinds = {example.kind for example in rule.examples}
        assert "invalid" in kinds and "valid" in kinds, rule.id


def test_transform_rules_have_fix_examples():
    for rule in PACK.rules:
        if rule.transform:
            assert any(example.kind == "fix" for example in rule.examples), rule.id
