"""How much of Debian's Rust tree-sitter-rust reads, before and after wasiport's gap handling.

    python bench/grammar_gaps.py [--corpus DIR] [--out FILE]

For every `.rs` file of the corpus (bench/fetch_corpus.py; files over the scanner's
size limit are left out, as `check` leaves them out), it parses the bytes as they
are and then as `check` and `apply` read a file (`wasiport.rust.source.read_rust`):

- clean: the grammar reads the file as it is;
- in full after masking: it has errors, every one a known construct (gaps.py), so
  the masked text parses cleanly and the file is examined in full;
- with gaps: what is left unread after masking, per file, with the first thing the
  parser stumbled on, and whether a gap mentions a rule keyword (only those are
  reported by `check`);
- broken: what rustc rejects as well (unbalanced delimiters, unterminated literals,
  a missing `;`...): a parse error, as before.

It also times the extra work on the files with errors (lexing, masking, the second
parse) against their first parse. Prints a summary; writes JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from wasiport.check import load_rules  # noqa: E402
from wasiport.model import Profile  # noqa: E402
from wasiport.rust import gaps  # noqa: E402
from wasiport.rust.source import MAX_FILE_BYTES, parse_bytes, read_rust  # noqa: E402

DEFAULT_CORPUS = HERE / ".corpus" / "root" / "usr" / "share" / "cargo" / "registry"


def rule_keywords() -> frozenset[bytes]:
    rules = load_rules(Profile()).rules
    return frozenset(k.encode() for rule in rules for k in rule.keywords) | {b"net", b"TcpStream", b"TcpListener", b"UdpSocket"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "grammar_gaps.json")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"{args.corpus}: no corpus (run bench/fetch_corpus.py)")
    keywords = rule_keywords()
    counts: Counter[str] = Counter()
    constructs: Counter[str] = Counter()
    gap_files: list[dict] = []
    broken_files: list[dict] = []
    first_parse = extra = 0.0
    for directory, _, names in sorted(os.walk(args.corpus)):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = Path(directory, name)
            data = path.read_bytes()
            relative = path.relative_to(args.corpus).as_posix()
            if len(data) > MAX_FILE_BYTES:
                counts["over the size limit"] += 1
                continue
            counts["files"] += 1
            started = time.perf_counter()
            tree = parse_bytes(data)
            parsed = time.perf_counter()
            if not tree.root_node.has_error:
                counts["clean"] += 1
                continue
            reading = read_rust(data)
            done = time.perf_counter()
            first_parse += parsed - started
            extra += done - parsed
            counts["with errors"] += 1
            for construct in {m.construct for m in reading.masks}:
                constructs[construct] += 1
            if reading.broken is not None:
                counts["broken"] += 1
                broken_files.append({"file": relative, "why": reading.broken[1]})
            elif reading.gaps:
                counts["with gaps"] += 1
                mentions = any(gaps.mentions(reading.code, g.start, g.end, keywords) for g in reading.gaps)
                counts["with gaps that mention a rule keyword"] += mentions
                gap_files.append({"file": relative, "gaps": [g.what for g in reading.gaps], "mentions_keywords": mentions})
            elif reading.masks:
                counts["in full after masking"] += 1
            else:
                counts["tolerated errors only (`try!`)"] += 1
    result = {
        "counts": dict(counts),
        "constructs": dict(constructs.most_common()),
        "gap_files": gap_files,
        "broken_files": broken_files,
        "seconds": {"first parse of files with errors": round(first_parse, 2), "read_rust on them": round(extra, 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in counts.items():
        print(f"{key:>40}: {value}")
    print("masked constructs (files):")
    for key, value in constructs.most_common():
        print(f"{value:>8}  {key}")
    print(f"files with errors: first parse {first_parse:.2f} s, read_rust {extra:.2f} s")
    for entry in gap_files:
        print(f"gap: {entry['file']}: {'; '.join(entry['gaps'][:2])}{' (mentions a rule keyword)' if entry['mentions_keywords'] else ''}")
    for entry in broken_files:
        print(f"broken: {entry['file']}: {entry['why']}")


if __name__ == "__main__":
    main()
