"""The version gap a substitute leaves, read from the upstream crate's changelog, and the proof
record of a substitute. The changelogs here are written for the tests in the two shapes real
crates use (tokio's `# 1.2.3 (date)` with `### Added`, reqwest's `## v0.1.2` with "Add …" items);
the end-to-end tests run the same code on the real tokio package (tests/test_substitutes.py)."""
from __future__ import annotations

from pathlib import Path

from wasiport.cargo.versions import Version
from wasiport.deps.data import SubstituteEntry
from wasiport.deps.gap import api_needles, changelog_additions, quoted_names, version_gap
from wasiport.deps.proof import prove_substitute

SECTIONED = """# 2.3.0 (May 1st, 2026)

### Added

- sync: add `Bell::ring_twice` ([#30])
- io: add `copy_both_ways_with_sizes` ([#31])
- io: implement `Read` for `Pipe` ([#32])
- sync: add `len` and `is_empty` to `Queue` ([#33])
- net: add `Tunnel` ([#34])

### Fixed

- time: `Clock::now` no longer panics ([#35])

[#30]: https://example.test/30
[#35]: https://example.test/35

# 2.2.0 (March 1st, 2026)

### Added

- sync: add `Queue::{push_front,pop_back}` ([#20])

# 2.1.0 (January 1st, 2026)

### Added

- rt: add `Runtime::spin` ([#10])
"""

FLAT = """## v0.5.4

- Add `Client::retry_policy()` for retries.
- Fix a panic in `Url::join`.

## v0.5.3

- Add `proxy_from_environment_variables` helper.

## v0.5.2

- Add `Old::thing()`.
"""


def entry(**fields) -> SubstituteEntry:
    base = dict(crate="tokio", generation="rename", version="1.25", tracks=Version.parse("1.25.0"), package="tokio_wasi")
    base.update(fields)
    return SubstituteEntry(**base)


def test_added_entries_between_the_two_versions_only() -> None:
    found = changelog_additions(SECTIONED, Version.parse("2.1.0"), Version.parse("2.3.0"))
    assert [(str(a.version), a.names) for a in found] == [
        ("2.3.0", ("Bell::ring_twice",)),
        ("2.3.0", ("copy_both_ways_with_sizes",)),
        ("2.3.0", ("Read", "Pipe")),
        ("2.3.0", ("len", "is_empty", "Queue")),
        ("2.3.0", ("Tunnel",)),
        ("2.2.0", ("Queue::push_front", "Queue::pop_back")),
    ]
    # link definitions and other sections are not entries
    assert all("example.test" not in a.text and "Clock::now" not in a.text for a in found)


def test_a_flat_changelog_counts_the_items_that_add_something() -> None:
    found = changelog_additions(FLAT, Version.parse("0.5.2"), Version.parse("0.5.4"))
    assert [(str(a.version), a.names) for a in found] == [
        ("0.5.4", ("Client::retry_policy",)),
        ("0.5.3", ("proxy_from_environment_variables",)),
    ]


def test_only_names_that_are_api_of_their_own_are_looked_for() -> None:
    additions = {a.text.split("(")[0].strip(): a for a in changelog_additions(SECTIONED, Version.parse("2.1.0"), Version.parse("2.3.0"))}
    needles = {text: api_needles(a, "tokio") for text, a in additions.items()}
    assert needles["sync: add `Bell::ring_twice`"] == (("Bell::ring_twice", ("Bell", "ring_twice")),)
    assert needles["io: add `copy_both_ways_with_sizes`"] == (("copy_both_ways_with_sizes", ("copy_both_ways_with_sizes",)),)
    assert needles["io: implement `Read` for `Pipe`"] == ()  # existing types, a new impl
    assert needles["sync: add `len` and `is_empty` to `Queue`"] == (("Queue::len", ("Queue", "len")), ("Queue::is_empty", ("Queue", "is_empty")))
    assert needles["net: add `Tunnel`"] == (("Tunnel", ("Tunnel",)),)
    assert quoted_names("add `tokio::sync::Bell::{a, b}` and `Other::call(x)`") == ("tokio::sync::Bell::a", "tokio::sync::Bell::b", "Other::call")


def test_the_gap_names_what_the_project_uses_and_where(tmp_path: Path) -> None:
    crate = tmp_path / "upstream"
    crate.mkdir()
    (crate / "CHANGELOG.md").write_text(SECTIONED)
    code = tmp_path / "main.rs"
    code.write_text("use upstream::sync::Bell;\n\nfn main() {\n    Bell::new().ring_twice();\n    let v = vec![1].is_empty();\n}\n")
    gap = version_gap("upstream", Version.parse("2.3.0"), crate, Version.parse("2.1.0"), "upstream_wasi 2.1", [code])
    assert gap is not None and len(gap.additions) == 6
    assert [(u.name, str(u.addition.version), u.line) for u in gap.uses] == [("Bell::ring_twice", "2.3.0", 4)]
    sentence = gap.describe()
    assert sentence.startswith("upstream 2.3.0 (native build) is newer than upstream_wasi 2.1, which follows upstream 2.1.0")
    assert "6 API addition(s) of 2.2.0–2.3.0" in sentence and f"`Bell::ring_twice` (2.3.0) at {code}:4" in sentence
    # Vec::is_empty is not the Queue method added upstream
    assert "is_empty" not in sentence.split("uses", 1)[1]


def test_no_gap_when_the_substitute_is_not_behind_and_a_note_without_changelog(tmp_path: Path) -> None:
    assert version_gap("x", Version.parse("1.25.0"), tmp_path, Version.parse("1.25.0"), "x_wasi", []) is None
    silent = version_gap("x", Version.parse("1.26.0"), tmp_path, Version.parse("1.25.0"), "x_wasi 1.25", [])
    assert silent is not None and silent.additions is None
    assert "ships no changelog" in silent.describe()


def test_proof_of_a_substitute_that_was_not_built_or_run() -> None:
    proof = prove_substitute(entry(), native_packages={"tokio"}, wasm_packages={"tokio"}, module=None, run_exit_code=None)
    assert proof.as_dict() == {"built": False, "inspected": False, "run": None}
    assert "tokio_wasi is not in the wasm build" in proof.detail and "not run" in proof.detail
    failed = prove_substitute(entry(), native_packages={"tokio"}, wasm_packages={"tokio_wasi"}, module=None, run_exit_code=3)
    assert failed.as_dict() == {"built": True, "inspected": False, "run": False}
    assert "run failed (exit 3)" in failed.detail
