"""Fetch the `check` benchmark's corpus: every `librust-*-dev` package Debian has.

    python bench/fetch_corpus.py [--cache DIR] [--limit N] [--jobs N]

Debian ships each crate's sources in a `librust-<crate>-dev` package under
`usr/share/cargo/registry/<crate>-<version>/`. This script asks apt for the
explicit list of those packages (`apt-cache pkgnames`, real packages only,
then `apt-cache show` for their versions), downloads the .debs with
`apt-get download` into `<cache>/debs/` and unpacks each with `dpkg-deb -x`
into `<cache>/root/` (nothing is installed). It prints the crate tree,
`<cache>/root/usr/share/cargo/registry`, on stdout; progress goes to stderr.

Idempotent and resumable: a .deb already downloaded is not fetched again and
one already unpacked (a stamp file per .deb) is not unpacked again, so an
interrupted run just continues. Run `apt-get update` once first.

Default cache: `bench/.corpus/` (gitignored). Everything else the benchmark
needs is in bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".corpus"
REGISTRY = Path("usr/share/cargo/registry")
BATCH = 100  # packages per `apt-get download` call


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def list_packages() -> list[tuple[str, str, str]]:
    """(package, version, architecture) of every real `librust-*-dev` package apt knows.

    `apt-cache pkgnames` lists real packages only (virtual names such as
    `librust-ureq-2+tls-dev` need --all-names), less the empty feature
    packages (`librust-ureq+tls-dev`); `apt-cache show` gives the
    candidate version that `apt-get download` fetches."""
    names = subprocess.run(["apt-cache", "pkgnames", "librust-"], check=True, capture_output=True, text=True).stdout.split()
    # `librust-foo+feature-dev` packages are empty feature metapackages: no sources.
    names = sorted(n for n in names if n.endswith("-dev") and "+" not in n)
    if not names:
        raise SystemExit("apt knows no librust-*-dev package: run `apt-get update` first")
    packages: dict[str, tuple[str, str, str]] = {}
    for start in range(0, len(names), 400):
        chunk = names[start : start + 400]
        out = subprocess.run(["apt-cache", "show", "--no-all-versions", *chunk], capture_output=True, text=True).stdout
        for stanza in out.split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.M))
            if "Package" in fields and "Version" in fields:
                packages.setdefault(fields["Package"], (fields["Package"], fields["Version"], fields.get("Architecture", "all")))
    return sorted(packages.values())


def deb_name(package: str, version: str, arch: str) -> str:
    """The file name `apt-get download` writes (an epoch's colon is escaped as %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def download(packages: list[tuple[str, str, str]], debs: Path) -> list[str]:
    """Download the packages whose .deb is not there yet; returns the names that failed."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not (debs / deb_name(*p)).is_file()]
    log(f"fetch: {len(packages) - len(missing)} of {len(packages)} packages already downloaded")
    failed: list[str] = []
    done = 0
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        specs = [f"{name}={version}" for name, version, _ in batch]
        proc = subprocess.run(["apt-get", "download", "-q", *specs], cwd=debs, capture_output=True, text=True)
        if proc.returncode != 0:
            # One bad package fails the batch: retry one by one to find it.
            for spec, package in zip(specs, batch):
                if (debs / deb_name(*package)).is_file():
                    continue
                single = subprocess.run(["apt-get", "download", "-q", spec], cwd=debs, capture_output=True, text=True)
                if single.returncode != 0:
                    failed.append(package[0])
                    log(f"fetch: cannot download {spec}: {single.stderr.strip().splitlines()[-1:] or ''}")
        done += len(batch)
        log(f"fetch: downloaded {done}/{len(missing)}")
    return failed


def _unpack_one(deb: Path, root: Path, stamps: Path) -> str | None:
    stamp = stamps / (deb.name + ".done")
    if stamp.is_file():
        return None
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"{deb.name}: {proc.stderr.strip()}"
    stamp.touch()
    return None


def unpack(packages: list[tuple[str, str, str]], debs: Path, root: Path, jobs: int) -> list[str]:
    stamps = root.parent / "unpacked"
    stamps.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    files = [debs / deb_name(*p) for p in packages if (debs / deb_name(*p)).is_file()]
    todo = [f for f in files if not (stamps / (f.name + ".done")).is_file()]
    log(f"unpack: {len(files) - len(todo)} of {len(files)} packages already unpacked")
    errors: list[str] = []
    with ThreadPoolExecutor(jobs) as pool:
        for index, error in enumerate(pool.map(lambda deb: _unpack_one(deb, root, stamps), todo), 1):
            if error:
                errors.append(error)
                log(f"unpack: {error}")
            if index % 200 == 0 or index == len(todo):
                log(f"unpack: {index}/{len(todo)}")
    return errors


def corpus_stats(registry: Path) -> tuple[int, int, int]:
    crates = files = size = 0
    for entry in os.scandir(registry):
        if entry.is_dir():
            crates += 1
    for dirpath, _dirs, names in os.walk(registry):
        for name in names:
            if name.endswith(".rs"):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name))
    return crates, files, size


def fetch(cache: Path = DEFAULT_CACHE, limit: int | None = None, jobs: int = 4) -> Path:
    """Make sure the corpus is there; returns the crate tree (…/usr/share/cargo/registry)."""
    started = time.monotonic()
    packages = list_packages()
    log(f"apt: {len(packages)} librust-*-dev packages")
    if limit:
        packages = packages[:limit]
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "packages.txt").write_text("".join(f"{n} {v} {a}\n" for n, v, a in packages))
    failed = download(packages, cache / "debs")
    errors = unpack(packages, cache / "debs", cache / "root", jobs)
    registry = cache / "root" / REGISTRY
    crates, files, size = corpus_stats(registry)
    log(
        f"corpus: {crates} crate dirs, {files} .rs files, {size / 1e6:.0f} MB of Rust in {registry} "
        f"({len(failed)} packages not downloaded, {len(errors)} not unpacked; {time.monotonic() - started:.0f} s)"
    )
    return registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache directory (default: bench/.corpus)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N packages (for a quick try)")
    parser.add_argument("--jobs", type=int, default=4, help="parallel dpkg-deb processes (default: 4)")
    args = parser.parse_args(argv)
    print(fetch(args.cache.resolve(), args.limit, args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
