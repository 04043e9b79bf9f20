"""Benchmark `wasiport check` against ast-grep and ripgrep on Debian's Rust crates.

    pip install ast-grep-cli            # the `bench` extra; apt-get install ripgrep
    python bench/fetch_corpus.py        # once: ~1,500 librust-*-dev packages (bench/.corpus/)
    python bench/check_bench.py [--jobs N] [--against-git REV]

In one run, on one machine, over the same files (every .rs file of the corpus:
wasiport runs with --all-targets, ast-grep and rg see tests/ and examples/ too):

  (a) rg with an ASCII regex (the prefilter's `\\b(net|thread)\\b`): the text lower bound
  (b) ast-grep scan -j N with bench/astgrep_rules (our rule pack as far as syntax allows)
  (c) wasiport check, cold: empty cache, --jobs N
      (b) and (c) take turns, --cold-runs times each (default 2); the best time of each
      counts: on a shared host a single run of either varies by a quarter
  (d) wasiport check, warm: the same command again on the unchanged tree
  (e) pre-commit: `wasiport check one.rs` as a fresh process vs `ast-grep scan one.rs`,
      several files, each the median of a few runs
  Every wasiport run is the console script of an install in a virtual environment of
  its own (bench/.hook-venv, editable: this checkout), as a user or pre-commit installs
  it, so that start-up is wasiport's and not that of this interpreter's site-packages.
  (f) peak memory (largest process, getrusage of the children) at 25/50/100% of the crates
  (g) finding sets: wasiport vs ast-grep at (rule, file, line), differences by cause, and
      how many of our findings are inside macro invocations

It prints a table and the ratios against the targets, and writes JSON
(default bench/results/check_bench.json). `--against-git REV` also runs the
wasiport of another revision (git archive) cold on the corpus and checks that
both produce the same findings, byte for byte: how scanner optimisations are
shown not to change behaviour. A benchmark, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RULES = HERE / "astgrep_rules" / "sgconfig.yml"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

TEXT_REGEX = r"(?-u)\b(net|thread)\b"
# ast-grep and rg skip what .gitignore files say (bench/.corpus is gitignored): not here.
NO_IGNORE = ["--no-ignore", "vcs", "--no-ignore", "parent", "--no-ignore", "dot", "--no-ignore", "exclude", "--no-ignore", "global"]
METHOD_RULES = {
    "socket-timeouts", "set-nodelay", "try-clone", "ttl", "take-error", "peek", "listener-accept", "udp-recv-from", "udp-multicast",
}
TARGETS = {"cold_vs_astgrep": 8.0, "warm_vs_cold": 10.0, "precommit_vs_astgrep": 6.0, "memory_growth": 1.25}
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def find_astgrep() -> str:
    """The ast-grep binary itself: a pyenv shim (a shell script) would add its own start-up."""
    beside = Path(sys.executable).parent / "ast-grep"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ast-grep")
    if not found:
        raise SystemExit("ast-grep not found: pip install ast-grep-cli (the `bench` extra)")
    return found


class Runner:
    def __init__(self, registry: Path, jobs: int, cache_dir: Path, source: Path = REPO) -> None:
        self.registry = registry
        self.jobs = jobs
        self.cache_dir = cache_dir
        self.astgrep = find_astgrep()
        self.rg = shutil.which("rg")
        self.env = dict(os.environ, WASIPORT_CACHE_DIR=str(cache_dir), PYTHONPATH=str(source))
        self.venv: Path | None = None  # set to hook_venv(): every run of this checkout uses it

    def timed(self, argv: list[str], *, env=None, capture: bool = False) -> tuple[float, bytes]:
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=self.registry, env=env or self.env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started, proc.stdout or b""

    def wasiport(self, *args: str) -> list[str]:
        """`wasiport check` as a user runs it: the console script of its own install (the
        venv of hook_venv), not this interpreter, whose site-packages may hold `.pth`
        files that import modules at every start-up (tens of ms on some machines)."""
        if self.venv is not None:
            return self.hook(self.venv, *args)
        return [sys.executable, "-m", "wasiport", "check", "--fail-on", "never", *args]

    def other_revision(self, *args: str) -> list[str]:
        """`wasiport check` of another source tree, put first on PYTHONPATH by the caller."""
        return [sys.executable, "-m", "wasiport", "check", "--fail-on", "never", *args]

    def hook(self, venv: Path, *args: str) -> list[str]:
        """`wasiport check` as a pre-commit hook runs it: the console script of an install in
        a virtual environment of its own (pre-commit makes one per hook repository)."""
        return [str(venv / "bin" / "wasiport"), "check", "--fail-on", "never", *args]

    def astgrep_scan(self, *args: str) -> list[str]:
        return [self.astgrep, "scan", "-c", str(RULES), *NO_IGNORE, *args]

    def peak(self, argv: list[str], env=None) -> tuple[float, int]:
        """Wall time and the largest process's peak RSS (KiB) of one fresh run."""
        out = subprocess.run([sys.executable, "-c", _RUSAGE_WRAPPER, *argv], cwd=self.registry, env=env or self.env, capture_output=True, text=True).stdout.split()
        return float(out[0]), int(out[1])


def hook_venv(venv: Path = HERE / ".hook-venv") -> Path:
    """A virtual environment with wasiport installed (editable: it runs this checkout), made
    once. Its interpreter starts like a hook's: without the packages and `.pth` files of the
    Python that runs this script (on some machines those import modules at every start-up)."""
    stamp = venv / "installed-pyproject.toml"  # what the install was made from
    wanted = (REPO / "pyproject.toml").read_bytes()
    if not (venv / "bin" / "wasiport").exists():
        log(f"creating {venv} to run wasiport as installed ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not stamp.is_file() or stamp.read_bytes() != wanted:  # new: or its dependencies changed
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(REPO)], check=True)
        stamp.write_bytes(wanted)
    return venv


def median_time(runner: Runner, argv: list[str], repeat: int) -> float:
    return statistics.median(runner.timed(argv)[0] for _ in range(repeat))


# -- finding sets -----------------------------------------------------------------------

def norm(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def our_sites(document: dict) -> dict[tuple[str, str, int], int]:
    """(rule, file, line) -> byte offset of the site, for the .rs findings."""
    sites: dict[tuple[str, str, int], int] = {}
    for f in document["findings"]:
        if f["path"].endswith(".rs"):
            sites.setdefault((f["rule_id"].split("/", 1)[1], norm(f["path"]), f["span"]["start_line"]), f["span"]["start_byte"])
    return sites


def astgrep_sites(stream: bytes) -> dict[tuple[str, str, int], int]:
    sites: dict[tuple[str, str, int], int] = {}
    for line in stream.splitlines():
        if line.strip():
            match = json.loads(line)
            key = (match["ruleId"], norm(match["file"]), match["range"]["start"]["line"] + 1)
            sites.setdefault(key, match["range"]["byteOffset"]["start"])
    return sites


class Explainer:
    """Why a site is in one finding set and not the other, using wasiport's own parts."""

    def __init__(self, registry: Path) -> None:
        from wasiport.rust import syntax
        from wasiport.rust.cfg import WASI
        from wasiport.rust.source import parse_bytes

        self.registry = registry
        self.syntax, self.WASI, self.parse_bytes = syntax, WASI, parse_bytes
        self.files: dict[str, tuple] = {}
        self.module_memo: dict = {}

    def _file(self, path: str):
        if path not in self.files:
            data = (self.registry / path).read_bytes()
            tree = self.parse_bytes(data)
            starts = [0] + [m.end() for m in re.finditer(rb"\n", data)]
            self.files[path] = (data, tree, starts, self.syntax.CfgCache(data, self.WASI))
        return self.files[path]

    def node_at(self, path: str, offset: int):
        _, tree, _, _ = self._file(path)
        return tree.root_node.descendant_for_byte_range(offset, offset)

    def in_macro(self, path: str, offset: int) -> bool:
        """Whether the byte is inside a macro invocation's token tree (the whole file parsed)."""
        node = self.node_at(path, offset)
        return node.type == "token_tree" or any(a.type == "token_tree" for a in self.syntax.ancestors(node))

    def cfgd_out(self, path: str, offset: int) -> bool:
        from wasiport.rust.modtree import module_cfgd_out

        _, _, _, cfg = self._file(path)
        if cfg(self.node_at(path, offset)) is False:
            return True
        return module_cfgd_out(self.registry / path, self.module_memo)


def compare(ours: dict, theirs: dict, explainer: Explainer, our_document: dict) -> dict:
    common_rules = {rule for rule, _, _ in theirs} | {rule for rule, _, _ in ours}
    only_ours = sorted(ours.keys() - theirs.keys())
    only_theirs = sorted(theirs.keys() - ours.keys())
    both = ours.keys() & theirs.keys()
    problem_files = {norm(p["path"]) for p in our_document["problems"]}
    why_ours: Counter = Counter()
    for rule, path, line in only_ours:
        if explainer.in_macro(path, ours[(rule, path, line)]):
            why_ours["inside a macro invocation (re-parsed macro arguments)"] += 1
        elif rule in METHOD_RULES:
            why_ours["receiver type proven by inference (ast-grep's file-level approximation misses it)"] += 1
        else:
            why_ours["name resolution per scope (aliases, globs, module imports)"] += 1
    why_theirs: Counter = Counter()
    for rule, path, line in only_theirs:
        if path in problem_files:
            why_theirs["file not examined by wasiport (not UTF-8, too large)"] += 1
        elif explainer.cfgd_out(path, theirs[(rule, path, line)]):
            why_theirs["cfg'd out for wasm32-wasi (attribute or `#[cfg] mod`)"] += 1
        elif rule in METHOD_RULES:
            why_theirs["look-alike resolved by types (receiver not std's, or unknown where the rule skips unknowns)"] += 1
        else:
            why_theirs["name resolution per scope (a file-level import does not reach this scope, or the name is shadowed)"] += 1
    in_macros = sum(1 for site, offset in ours.items() if explainer.in_macro(site[1], offset))
    per_rule = {
        rule: {
            "both": sum(1 for s in both if s[0] == rule),
            "only_wasiport": sum(1 for s in only_ours if s[0] == rule),
            "only_astgrep": sum(1 for s in only_theirs if s[0] == rule),
        }
        for rule in sorted(common_rules)
    }
    return {
        "wasiport_sites": len(ours),
        "astgrep_sites": len(theirs),
        "both": len(both),
        "only_wasiport": len(only_ours),
        "only_astgrep": len(only_theirs),
        "only_wasiport_by_cause": dict(why_ours.most_common()),
        "only_astgrep_by_cause": dict(why_theirs.most_common()),
        "wasiport_sites_inside_macros": in_macros,
        "per_rule": per_rule,
        "examples_only_wasiport": [f"{p}:{l} {r}" for r, p, l in only_ours[:15]],
        "examples_only_astgrep": [f"{p}:{l} {r}" for r, p, l in only_theirs[:15]],
    }


def doc_comment_hits(runner: Runner) -> dict:
    """Lines a text search for std's socket API finds inside comments (doc examples)."""
    if not runner.rg:
        return {}
    regex = r"(?-u)\b(TcpStream|TcpListener|UdpSocket|ToSocketAddrs)\b"
    _, out = runner.timed([runner.rg, "--no-ignore", "-t", "rust", "-n", "--no-heading", "-o", regex, "."], capture=True)
    lines = set()
    for raw in out.decode("utf-8", "replace").splitlines():
        parts = raw.split(":", 2)
        if len(parts) == 3 and parts[1].isdigit():
            lines.add((norm(parts[0]), int(parts[1])))
    in_comments = 0
    for path, line in lines:
        text = (runner.registry / path).read_bytes().splitlines()[line - 1].lstrip()
        if text.startswith((b"//", b"/*", b"*")):
            in_comments += 1
    return {"rg_lines_naming_socket_types": len(lines), "of_which_comment_lines": in_comments}


# -- the run ---------------------------------------------------------------------------

def pick_precommit_files(document: dict, registry: Path, count: int) -> list[str]:
    """Files with findings of different sizes (a pre-commit hook sees changed files)."""
    paths = sorted({norm(f["path"]) for f in document["findings"] if f["path"].endswith(".rs")})
    by_size = sorted(paths, key=lambda p: (registry / p).stat().st_size)
    if len(by_size) <= count:
        return by_size
    step = (len(by_size) - 1) / (count - 1)
    return [by_size[round(i * step)] for i in range(count)]


def crate_subsets(registry: Path) -> dict[int, list[str]]:
    crates = sorted(p.name for p in registry.iterdir() if p.is_dir())
    return {pct: crates[: max(1, len(crates) * pct // 100)] for pct in (25, 50, 100)}


def against_git(runner: Runner, rev: str, current: bytes) -> dict:
    """Run another revision's wasiport cold on the corpus; compare the JSON outputs."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", scratch], input=archive, check=True)
        cache = Path(scratch) / "cache"
        env = dict(runner.env, PYTHONPATH=scratch, WASIPORT_CACHE_DIR=str(cache))
        seconds, out = runner.timed(runner.other_revision("--all-targets", "--jobs", str(runner.jobs), "--format", "json", "."), env=env, capture=True)
    before, after = json.loads(out), json.loads(current)
    return {
        "rev": rev,
        "seconds": round(seconds, 2),
        "identical_output": out == current,
        "identical_findings": before["findings"] == after["findings"],
        "identical_problems": before["problems"] == after["problems"],
        "findings": [len(before["findings"]), len(after["findings"])],
        "problems_only_before": [f"{p['path']}:{p.get('line')} {p['code']}" for p in before["problems"] if p not in after["problems"]],
        "problems_only_now": [f"{p['path']}:{p.get('line')} {p['code']}" for p in after["problems"] if p not in before["problems"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a crate tree (default: fetch Debian's into bench/.corpus)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="threads/processes for every tool (default: all cores)")
    parser.add_argument("--files", type=int, default=7, help="files for the pre-commit comparison (default: 7)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per file in the pre-commit comparison (default: 5)")
    parser.add_argument("--against-git", metavar="REV", help="also check that this revision's wasiport finds exactly the same")
    parser.add_argument("--skip-memory", action="store_true", help="skip (f), the three extra cold runs")
    parser.add_argument("--cold-runs", type=int, default=2, help="runs of (b) and (c), taking turns; the best of each counts (default: 2)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "check_bench.json")
    args = parser.parse_args(argv)

    if args.corpus is None:
        from fetch_corpus import fetch

        registry = fetch()
    else:
        registry = args.corpus.resolve()
    files = sum(1 for _ in registry.rglob("*.rs"))
    size = sum(p.stat().st_size for p in registry.rglob("*.rs"))
    log(f"corpus: {registry} ({files} .rs files, {size / 1e6:.0f} MB); jobs {args.jobs}")
    # As installed: byte-compiled (with PYTHONDONTWRITEBYTECODE set, every run would
    # otherwise compile the package's sources again, tens of milliseconds per process).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "wasiport")], stdout=subprocess.DEVNULL, check=False)
    cache_dir = Path(tempfile.mkdtemp(prefix="wasiport-bench-cache-"))
    runner = Runner(registry, args.jobs, cache_dir)
    runner.venv = hook_venv()
    jobs = str(args.jobs)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "corpus": {"path": str(registry), "rs_files": files, "megabytes": round(size / 1e6, 1)},
        "jobs": args.jobs,
    }

    # (a) rg, (b) ast-grep
    if runner.rg:
        rg_seconds = min(runner.timed([runner.rg, "-j", jobs, "--no-ignore", "-t", "rust", "-l", TEXT_REGEX, "."])[0] for _ in range(3))
        results["rg"] = {"seconds": round(rg_seconds, 3), "regex": TEXT_REGEX}
        log(f"rg: {rg_seconds:.2f} s")
    # (b) ast-grep and (c) wasiport cold, taking turns: the best of each counts
    command = runner.wasiport("--all-targets", "--jobs", jobs, "--format", "json", ".")
    ag_runs: list[float] = []
    cold_runs: list[float] = []
    for turn in range(max(1, args.cold_runs)):
        log(f"ast-grep scan ({turn + 1}) ...")
        seconds, ag_out = runner.timed(runner.astgrep_scan("-j", jobs, "--json=stream", "."), capture=True)
        ag_runs.append(seconds)
        log(f"ast-grep: {seconds:.2f} s")
        shutil.rmtree(cache_dir, ignore_errors=True)
        seconds, cold_out = runner.timed(command, capture=True)
        cold_runs.append(seconds)
        log(f"wasiport cold: {seconds:.2f} s")
    ag_seconds, cold = min(ag_runs), min(cold_runs)
    results["astgrep"] = {
        "seconds": round(ag_seconds, 2),
        "runs": [round(t, 2) for t in ag_runs],
        "version": subprocess.run([runner.astgrep, "--version"], capture_output=True, text=True).stdout.strip(),
    }

    # (d) warm, on the cache the last cold run left
    warm, warm_out = runner.timed(command, capture=True)
    warm2, _ = runner.timed(command)
    warm = min(warm, warm2)
    log(f"wasiport warm: {warm:.2f} s")
    document = json.loads(cold_out)
    results["wasiport"] = {
        "cold_seconds": round(cold, 2),
        "cold_runs": [round(t, 2) for t in cold_runs],
        "warm_seconds": round(warm, 3),
        "warm_output_identical": warm_out == cold_out,
        "findings": len(document["findings"]),
        "problems": len(document["problems"]),
    }

    # (e) pre-commit
    venv = hook_venv()
    python_start = median_time(runner, [str(venv / "bin" / "python"), "-c", "pass"], args.repeat)
    per_file = []
    for path in pick_precommit_files(document, registry, args.files):
        times = []
        runner.timed(runner.hook(venv, path))  # the hook has run before: its rule pack cache is there
        for _ in range(args.repeat):
            for stale in cache_dir.glob("scan-*.pickle"):
                stale.unlink()  # but the changed file's findings are not in the cache
            times.append(runner.timed(runner.hook(venv, path))[0])
        ours = statistics.median(times)
        theirs = median_time(runner, runner.astgrep_scan(path), args.repeat)
        per_file.append({"file": path, "bytes": (registry / path).stat().st_size, "wasiport": round(ours, 4), "astgrep": round(theirs, 4), "ratio": round(ours / theirs, 2)})
        log(f"pre-commit {path}: wasiport {ours * 1000:.0f} ms, ast-grep {theirs * 1000:.0f} ms")
    results["precommit"] = {
        "files": per_file,
        "median_wasiport": round(statistics.median(f["wasiport"] for f in per_file), 4),
        "median_astgrep": round(statistics.median(f["astgrep"] for f in per_file), 4),
        "median_ratio": round(statistics.median(f["wasiport"] / f["astgrep"] for f in per_file), 2),
        "python_startup": round(python_start, 4),
    }

    # (f) memory
    if not args.skip_memory:
        memory = {}
        for pct, crates in crate_subsets(registry).items():
            seconds, peak_kib = runner.peak(runner.wasiport("--all-targets", "--jobs", jobs, "--no-cache", "--format", "json", *crates))
            memory[pct] = {"crates": len(crates), "seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1)}
            log(f"memory at {pct}%: {peak_kib / 1024:.0f} MiB peak, {seconds:.1f} s")
        _, ag_peak = runner.peak(runner.astgrep_scan("-j", jobs, "--json=stream", "."))
        results["memory"] = memory
        results["astgrep"]["peak_rss_mib"] = round(ag_peak / 1024, 1)

    # (g) finding sets
    log("comparing finding sets ...")
    explainer = Explainer(registry)
    results["comparison"] = compare(our_sites(document), astgrep_sites(ag_out), explainer, document)
    results["comparison"]["text_search"] = doc_comment_hits(runner)

    if args.against_git:
        log(f"wasiport at {args.against_git}, cold ...")
        results["against_git"] = against_git(runner, args.against_git, cold_out)

    ratios = {
        "cold_vs_astgrep": ag_seconds / cold,
        "warm_vs_cold": cold / warm,
        # per file, wasiport's time over ast-grep's on that file; the median over the files
        "precommit_vs_astgrep": results["precommit"]["median_ratio"],
    }
    if "memory" in results:
        ratios["memory_growth"] = results["memory"][100]["peak_rss_mib"] / results["memory"][25]["peak_rss_mib"]
    results["ratios"] = {k: round(v, 2) for k, v in ratios.items()}
    results["targets_met"] = {
        "cold_vs_astgrep": ratios["cold_vs_astgrep"] >= TARGETS["cold_vs_astgrep"],
        "warm_vs_cold": ratios["warm_vs_cold"] >= TARGETS["warm_vs_cold"],
        "precommit_vs_astgrep": ratios["precommit_vs_astgrep"] <= TARGETS["precommit_vs_astgrep"],
        **({"memory_growth": ratios["memory_growth"] <= TARGETS["memory_growth"]} if "memory_growth" in ratios else {}),
    }
    shutil.rmtree(cache_dir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {args.out}")
    return 0


def print_table(r: dict) -> None:
    c = r["comparison"]
    print(f"\nwasiport check benchmark — {r['corpus']['rs_files']} .rs files ({r['corpus']['megabytes']} MB), {r['machine']['cpus']} cores, jobs {r['jobs']}")
    print(f"{'':34}{'seconds':>10}")
    if "rg" in r:
        print(f"{'rg (ASCII regex, text bound)':34}{r['rg']['seconds']:>10.2f}")

    def runs(times: list[float]) -> str:
        return "  best of " + ", ".join(f"{t:.2f}" for t in times) if len(times) > 1 else ""

    print(f"{'ast-grep scan -j N':34}{r['astgrep']['seconds']:>10.2f}{runs(r['astgrep'].get('runs', []))}")
    print(f"{'wasiport cold (--jobs N)':34}{r['wasiport']['cold_seconds']:>10.2f}{runs(r['wasiport'].get('cold_runs', []))}")
    print(f"{'wasiport warm (unchanged tree)':34}{r['wasiport']['warm_seconds']:>10.3f}")
    p = r["precommit"]
    print(
        f"{'pre-commit, one file (median)':34}{'':>10}  wasiport {p['median_wasiport'] * 1000:.0f} ms, ast-grep {p['median_astgrep'] * 1000:.0f} ms, "
        f"per-file ratio {p['median_ratio']:.1f}x (python start {p['python_startup'] * 1000:.0f} ms)"
    )
    if "memory" in r:
        mem = ", ".join(f"{pct}%: {m['peak_rss_mib']:.0f} MiB" for pct, m in r["memory"].items())
        print(f"{'peak RSS (largest process)':34}{'':>10}  {mem}; ast-grep {r['astgrep'].get('peak_rss_mib', 0):.0f} MiB")
    print("\nratio                             measured   target   met")
    signs = {"cold_vs_astgrep": ">=", "warm_vs_cold": ">=", "precommit_vs_astgrep": "<=", "memory_growth": "<="}
    for key, value in r["ratios"].items():
        print(f"{key:34}{value:>8.2f}   {signs[key]} {TARGETS[key]:<5}  {'yes' if r['targets_met'][key] else 'NO'}")
    print(f"\nfinding sites (rule, file, line): wasiport {c['wasiport_sites']}, ast-grep {c['astgrep_sites']}, both {c['both']}")
    print(f"  only wasiport {c['only_wasiport']}:")
    for cause, n in c["only_wasiport_by_cause"].items():
        print(f"    {n:5}  {cause}")
    print(f"  only ast-grep {c['only_astgrep']}:")
    for cause, n in c["only_astgrep_by_cause"].items():
        print(f"    {n:5}  {cause}")
    print(f"  wasiport findings inside macro invocations: {c['wasiport_sites_inside_macros']}")
    if c.get("text_search"):
        t = c["text_search"]
        print(f"  rg lines naming std socket types: {t['rg_lines_naming_socket_types']}, of which in comments: {t['of_which_comment_lines']}")
    if "against_git" in r:
        g = r["against_git"]
        print(f"\nsame findings as {g['rev']}: {g['identical_findings']} (byte-identical JSON: {g['identical_output']}; {g['findings']})")
        for line in g.get("problems_only_before", []):
            print(f"  problem only at {g['rev']}: {line}")
        for line in g.get("problems_only_now", []):
            print(f"  problem only now: {line}")


if __name__ == "__main__":
    sys.exit(main())
