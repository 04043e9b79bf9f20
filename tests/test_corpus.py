"""Every rule change is run against the corpus: samples we wrote and real crates from Debian.

`python3 tests/test_corpus.py --update` rewrites corpus/expected/*.txt from the current rules.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
REGISTRY = Path("/usr/share/cargo/registry")


def entries() -> list[tuple[str, Path, str | None]]:
    document = tomllib.loads((CORPUS / "corpus.toml").read_text())
    found = [(name, CORPUS / spec["path"], None) for name, spec in document.get("sample", {}).items()]
    found += [(name, REGISTRY / spec["dir"], spec["debian-package"]) for name, spec in document.get("real", {}).items()]
    return found


def render(root: Path) -> str:
    from wasiport.check.scan import scan_paths

    result = scan_paths([root], use_cache=False, jobs=1)
    lines = []
    for finding in sorted(result.findings, key=lambda f: (f.path, f.span.start_line, f.span.start_col, f.rule_id)):
        relative = Path(finding.path).resolve().relative_to(root.resolve()).as_posix()
        lines.append(f"{relative}:{finding.span.start_line}:{finding.span.start_col} {finding.rule_id} {finding.severity} {finding.port}")
    for problem in result.problems:
        relative = Path(problem.path).resolve().relative_to(root.resolve()).as_posix()
        lines.append(f"{relative}:{problem.line}:{problem.col} {problem.code} problem")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name,root,package", entries(), ids=[e[0] for e in entries()])
def test_corpus_findings_match_the_recorded_ones(name, root, package):
    if not root.is_dir():
        pytest.skip(f"{root} is not installed ({package}; .ci/run installs it)")
    expected = (CORPUS / "expected" / f"{name}.txt").read_text()
    assert render(root) == expected, f"findings on {name} changed; if intended, run `python3 tests/test_corpus.py --update` and review the diff"


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python3 tests/test_corpus.py --update")
    sys.path.insert(0, str(REPO))
    for name, root, package in entries():
        if not root.is_dir():
            print(f"skipped {name}: {root} is not installed ({package})")
            continue
        (CORPUS / "expected" / f"{name}.txt").write_text(render(root))
        print(f"updated corpus/expected/{name}.txt")
