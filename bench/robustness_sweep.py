"""Robustness sweep: check, apply --dry-run and a real apply on every corpus crate with a finding.

    python bench/fetch_corpus.py                       # once: Debian's crates into bench/.corpus/
    nice python bench/robustness_sweep.py [--limit N] [--jobs 2] [--registry DIR]

It takes minutes (three to four wasiport processes per crate), so it is a benchmark, not a
test. For every crate of the corpus that `check` finds something in, on a copy under git
(the corpus itself is never written):

1. `wasiport check --format json` on the copy: its fixable findings;
2. `wasiport apply --dry-run --no-build`: the planned diff;
3. `wasiport apply --no-build`: the port commit; then `wasiport apply --no-build NESTED` for
   each nested package apply names in a note (a crate of its own, whose findings `check` of
   the directory reports too: they count as that package's, not the crate's);
4. `wasiport apply --no-build` again: must say "already ported" (or "nothing to port"), no new commit.

It reports:

- tracebacks (target 0): a Python traceback on stderr or exit 70 from any command;
- refusals by reason: apply saying no (exit 2), grouped by the kind of reason;
- check/apply disagreements (target 0): check calls something fixable and apply changes
  nothing, or apply changes code where check found nothing fixable; also a dry run whose
  files differ from those the real apply commits;
- idempotence failures (target 0): the second apply commits again, fails, or does not say
  that there is nothing left to do;
- bytes changed outside the edits (target 0): files that differ after apply but are not in
  its commit, a work tree that is not clean after it, or a transaction marker or backups
  left under `.git/wasiport/`.

The figures go to stdout (and `--json FILE`); bench/README.md has the last run's.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_REGISTRY = HERE / ".corpus" / "root" / "usr" / "share" / "cargo" / "registry"
PACKAGE_FILES = (".cargo-checksum.json", ".cargo_vcs_info.json", ".cargo-ok")  # they make a copy look like a registry entry
TIMEOUT = 900
GIT_IDENTITY = ("-c", "user.name=sweep", "-c", "user.email=sweep@localhost", "-c", "commit.gpgsign=false")

REFUSAL_KINDS = (
    ("parse error", re.compile(r"does not parse as Rust")),
    ("file over the size limit", re.compile(r"over the .* limit")),
    ("not UTF-8", re.compile(r"not valid UTF-8|not UTF-8")),
    ("overlapping rewrites", re.compile(r"rewrites overlap")),
    ("Cargo.toml conflict", re.compile(r"never overwrites|manifest-conflict|already has|conflict")),
    ("malformed Cargo.toml", re.compile(r"malformed TOML|no \[package\] table|must be a string|workspace = true")),
    ("no lib or bin target", re.compile(r"no library or binary target")),
    ("unreadable file", re.compile(r"cannot read file|symbolic link")),
)


# apply's note for a nested package with fixable findings (wasiport.port.plan)
NESTED_NOTE = re.compile(r"(\S+)/ is a package of its own \(\d+ fixable")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class CrateResult:
    crate: str
    fixable: int = 0  # check's fixable findings
    problems: int = 0  # check's problems (inputs not examined)
    tracebacks: list[str] = field(default_factory=list)  # the commands that showed one
    refusal: str | None = None  # apply's reason for saying no, when it did
    refusal_kind: str | None = None
    committed: bool = False
    dry_run_files: list[str] = field(default_factory=list)
    commit_files: list[str] = field(default_factory=list)
    disagreement: str | None = None
    nested: list[str] = field(default_factory=list)  # nested packages with fixable findings (apply's notes)
    idempotence: str | None = None
    outside_edits: list[str] = field(default_factory=list)
    seconds: float = 0.0


def wasiport(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasiport", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def crates_with_findings(registry: Path, env: dict, jobs: int) -> list[str]:
    """The corpus's crates (top-level folders) that `check` reports a finding in."""
    done = subprocess.run(
        [sys.executable, "-m", "wasiport", "check", "--format", "json", "--fail-on", "never", "--jobs", str(jobs), "."],
        cwd=registry, env=env, capture_output=True, text=True, timeout=3600,
    )
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"check over the corpus failed ({done.returncode}): {done.stderr[-2000:]}")
    document = json.loads(done.stdout)
    return sorted({finding["path"].split("/", 1)[0] for finding in document["findings"]})


def snapshot(root: Path) -> dict[str, bytes]:
    files = {}
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not (directory == str(root) and d == ".git")]
        for name in names:
            path = Path(directory, name)
            if not path.is_symlink():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def refusal_kind(message: str) -> str:
    for kind, pattern in REFUSAL_KINDS:
        if pattern.search(message):
            return kind
    return "other"


def diff_files(diff: str) -> list[str]:
    """The files a unified diff from `apply --dry-run` changes (b/ side)."""
    return sorted({line[6:].split("\t")[0] for line in diff.splitlines() if line.startswith("+++ b/")})


def traced(result: CrateResult, label: str, done: subprocess.CompletedProcess) -> None:
    if "Traceback (most recent call last)" in done.stderr or done.returncode == 70:
        result.tracebacks.append(f"{label}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")


def sweep_crate(registry: Path, name: str, scratch: Path, env: dict) -> CrateResult:
    started = time.perf_counter()
    result = CrateResult(name)
    copy = scratch / name
    shutil.copytree(registry / name, copy, symlinks=True)
    for package_file in PACKAGE_FILES:
        (copy / package_file).unlink(missing_ok=True)
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A", "--force")
    git(copy, "commit", "-q", "--no-verify", "-m", "upstream")
    try:
        checked = wasiport(["check", "--format", "json", "--fail-on", "never", "--no-cache", "."], copy, env)
        traced(result, "check", checked)
        check_report = json.loads(checked.stdout) if checked.stdout.strip() else {"findings": [], "summary": {}}
        result.problems = check_report["summary"].get("problems", 0)

        dry = wasiport(["apply", ".", "--dry-run", "--no-build", "-q"], copy, env)
        traced(result, "apply --dry-run", dry)
        before = snapshot(copy)
        real = wasiport(["apply", ".", "--no-build", "-q", "--format", "json"], copy, env)
        traced(result, "apply", real)
        if real.returncode == 2 or dry.returncode == 2:
            message = (real.stderr or dry.stderr).strip().splitlines()
            result.refusal = next((line for line in message if line.startswith("wasiport: error:")), message[0] if message else "")
            result.refusal_kind = refusal_kind(result.refusal)
            return result
        if real.returncode != 0 or dry.returncode != 0:
            return result
        result.dry_run_files = [f for f in diff_files(dry.stdout)]
        report = json.loads(real.stdout)
        result.committed = bool(report.get("commit"))
        # check of the directory also reports its nested packages (crates of their own, which
        # apply names in a note): their findings are apply's when applied to them, below
        result.nested = sorted({m.group(1) for note in report.get("notes", []) if (m := NESTED_NOTE.match(note))})
        in_nested = [f for f in check_report["findings"] if f.get("fixable") and any(f["path"].startswith(f"{n}/") for n in result.nested)]
        result.fixable = sum(1 for f in check_report["findings"] if f.get("fixable")) - len(in_nested)
        if result.committed:
            result.commit_files = sorted(git(copy, "diff", "--name-only", "HEAD~1", "HEAD").split())
        after = snapshot(copy)
        changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
        result.outside_edits = [path for path in changed if path not in result.commit_files]
        if git(copy, "status", "--porcelain=v1", "--untracked-files=all").strip():
            result.outside_edits.append("(work tree not clean after apply)")
        state = copy / ".git" / "wasiport"
        if (state / "transaction.json").exists() or (state / "backup").exists():
            result.outside_edits.append("(a transaction marker or backups left behind)")
        # check and apply: the same crate, the same answer
        code_changes = [path for path in result.commit_files if path.endswith(".rs") and not path.endswith("wasiport_net.rs")]
        if result.fixable and not result.committed:
            result.disagreement = f"check: {result.fixable} fixable; apply: nothing committed"
        elif code_changes and not result.fixable:
            result.disagreement = f"apply changed {', '.join(code_changes[:3])}; check: nothing fixable"
        elif result.committed and result.dry_run_files != result.commit_files:
            result.disagreement = f"dry run {result.dry_run_files} != commit {result.commit_files}"
        for package in result.nested:  # each nested package's fixable findings, ported by applying to it
            nested = wasiport(["apply", package, "--no-build", "-q", "--format", "json"], copy, env)
            traced(result, f"apply {package}", nested)
            if not result.disagreement and (nested.returncode != 0 or not json.loads(nested.stdout or "{}").get("commit")):
                result.disagreement = f"check: fixable findings in {package}/; apply {package}: nothing committed"
        head = git(copy, "rev-parse", "HEAD").strip()
        again = wasiport(["apply", ".", "--no-build", "-q"], copy, env)
        traced(result, "apply (again)", again)
        settled = "already ported" in again.stdout or "nothing to port" in again.stdout
        if again.returncode != 0 or git(copy, "rev-parse", "HEAD").strip() != head or not settled:
            result.idempotence = f"exit {again.returncode}: {(again.stderr.strip().splitlines() or [''])[-1][:160]}"
        return result
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError, ValueError) as err:
        result.tracebacks.append(f"sweep: {err.__class__.__name__}: {str(err)[:160]}")
        return result
    finally:
        result.seconds = round(time.perf_counter() - started, 2)
        shutil.rmtree(copy, ignore_errors=True)


def summarise(results: list[CrateResult], seconds: float, total_crates: int) -> dict:
    refusals = Counter(r.refusal_kind for r in results if r.refusal_kind)
    return {
        "crates with a finding": total_crates,
        "crates swept": len(results),
        "seconds": round(seconds, 1),
        "tracebacks": sum(bool(r.tracebacks) for r in results),
        "refusals": sum(refusals.values()),
        "refusals by reason": dict(refusals.most_common()),
        "ported (committed)": sum(r.committed for r in results),
        "already ported / nothing to change": sum(1 for r in results if not r.committed and not r.refusal and not r.tracebacks),
        "nested packages ported by applying to them": sum(len(r.nested) for r in results),
        "check/apply disagreements": sum(bool(r.disagreement) for r in results),
        "idempotence failures": sum(bool(r.idempotence) for r in results),
        "bytes changed outside the edits": sum(bool(r.outside_edits) for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="the crate tree (default: bench/.corpus/...)")
    parser.add_argument("--limit", type=int, help="sweep only the first N crates with a finding (by name)")
    parser.add_argument("--every", type=int, default=1, help="sweep every Nth crate with a finding (a spread-out subset)")
    parser.add_argument("--jobs", type=int, default=2, help="crates swept at once")
    parser.add_argument("--crates", nargs="+", metavar="NAME-VERSION", help="sweep only these crates (of those with a finding)")
    parser.add_argument("--json", type=Path, help="write every crate's result and the summary here")
    args = parser.parse_args(argv)
    if not args.registry.is_dir():
        raise SystemExit(f"{args.registry}: no corpus; run python bench/fetch_corpus.py first")
    with tempfile.TemporaryDirectory(prefix="wasiport-sweep-") as scratch_text:
        scratch = Path(scratch_text)
        home = scratch / "home"
        home.mkdir()
        env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(home), GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
                   GIT_CONFIG_NOSYSTEM="1", WASIPORT_CACHE_DIR=str(scratch / "cache"))
        env.pop("WASIPORT_DEBUG", None)
        started = time.perf_counter()
        log("checking the corpus for crates with a finding ...")
        names = crates_with_findings(args.registry, env, args.jobs)
        chosen = [n for n in names if args.crates is None or n in args.crates][:: max(args.every, 1)][: args.limit]
        log(f"{len(names)} crates with a finding; sweeping {len(chosen)}")
        work = scratch / "crates"
        work.mkdir()
        results: list[CrateResult] = []
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for number, result in enumerate(pool.map(lambda name: sweep_crate(args.registry, name, work, env), chosen), 1):
                results.append(result)
                flags = [f for f, bad in (("TRACEBACK", result.tracebacks), ("refused", result.refusal), ("DISAGREE", result.disagreement),
                                           ("NOT-IDEMPOTENT", result.idempotence), ("OUTSIDE", result.outside_edits)) if bad]
                log(f"[{number}/{len(chosen)}] {result.crate}: {'committed' if result.committed else 'no commit'} {' '.join(flags)}")
        summary = summarise(results, time.perf_counter() - started, len(names))
    print(json.dumps(summary, indent=2))
    for label, pick in (("tracebacks", lambda r: r.tracebacks), ("disagreements", lambda r: r.disagreement),
                        ("idempotence failures", lambda r: r.idempotence), ("outside the edits", lambda r: r.outside_edits),
                        ("refusals", lambda r: r.refusal)):
        bad = [(r.crate, pick(r)) for r in results if pick(r)]
        if bad:
            print(f"\n{label}:")
            for crate, what in bad:
                print(f"  {crate}: {what}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "crates": [asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
