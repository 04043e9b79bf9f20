"""Benchmark `wasiport run` on tokio_wasi: echo round trips per second, guest vs native server.

    python bench/run_echo.py [--round-trips 5000] [--rounds 5] [--connections 1,8]

The server is corpus/samples/tokio-echo (tokio's current-thread runtime, one task per
connection), made to build on `tokio_wasi` by `wasiport apply --deps --substitution rename` in a
scratch copy, and built in release mode twice from the same source: natively (on the user's
tokio) and for wasm32-wasi (on tokio_wasi, mio_wasi and wasmedge_wasi_socket). The crates come
from crates.io, vendored for Debian's rustc 1.63 at the start (tests/support/crates_io.py).

Each round starts the server three ways (the native binary; the module under `wasiport run`,
whose sock_recv, sock_send and poll_oneoff are answered in C where they can be; the same with
the Python host alone, WASIPORT_HOTPATH=0), in reverse order every other round. The native
build of the same sample is the client: C connections at once, each sending 64 bytes and reading them back N times. The rate is
C x N round trips over the clients' wall time, measured once every client is connected (the
server's start-up is not part of it). A benchmark, not a test: it asserts nothing and prints
numbers.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.crates_io import newer_cargo, vendor_for_old_cargo
from tests.support.offline_cargo import DEBIAN_CARGO, OfflineCargo, toolchain_available

WASM_TARGET = "wasm32-wasi"
MESSAGE_SIZE = 64


def vendored_cargo(scratch: Path) -> OfflineCargo:
    project = scratch / "vendor-set"
    shutil.copytree(REPO / "tests" / "fixtures" / "substitutes" / "vendor-set", project)
    source = vendor_for_old_cargo(project, scratch / "crates", cargo_home=scratch / "resolver-home")
    home = scratch / "cargo-home"
    home.mkdir()
    (home / "config.toml").write_text(source.config)
    (scratch / "target").mkdir()
    return OfflineCargo(home=home, registry=source.directory, target_dir=scratch / "target")


def build_echo(cargo: OfflineCargo, scratch: Path) -> tuple[Path, Path]:
    """Substitute tokio in a copy of tokio-echo, build it both ways: (native binary, module)."""
    app = scratch / "tokio-echo"
    shutil.copytree(REPO / "corpus" / "samples" / "tokio-echo", app, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    env = cargo.env(HOME=str(scratch), GIT_CONFIG_NOSYSTEM="1")
    apply = subprocess.run(
        [sys.executable, "-m", "wasiport", "apply", "--deps", "--substitution", "rename", "--manifest-path",
         str(app / "Cargo.toml"), "--allow-no-vcs", "--no-build", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    if apply.returncode != 0:
        raise SystemExit(f"wasiport apply --deps failed:\n{apply.stdout}{apply.stderr}")
    for extra in ([], ["--target", WASM_TARGET]):
        built = subprocess.run([str(DEBIAN_CARGO), "build", "--release", "--quiet", *extra], cwd=app, env=env,
                               capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise SystemExit(f"building tokio-echo failed:\n{built.stderr}")
    return cargo.target_dir / "release" / "tokio-echo", cargo.target_dir / WASM_TARGET / "release" / "tokio-echo.wasm"


def start_server(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = server.stdout.readline() if server.stdout else ""
    if not first.startswith("listening on "):
        server.kill()
        raise SystemExit(f"the server did not start: {first!r}")
    return server, first.split()[-1]


def echo_rate(server_argv: list[str], env: dict[str, str], client: Path, connections: int, round_trips: int) -> float:
    """Round trips per second of `connections` native clients against one server run."""
    server, address = start_server([*server_argv, "serve", "127.0.0.1:0", str(connections)], env)
    try:
        started = time.perf_counter()
        clients = [
            subprocess.Popen([str(client), "client", address, str(round_trips), str(MESSAGE_SIZE)],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(connections)
        ]
        outputs = [c.communicate(timeout=600)[0] for c in clients]
        elapsed = time.perf_counter() - started
        if any(c.returncode != 0 for c in clients) or not all("round trips" in out for out in outputs):
            raise SystemExit(f"a client failed: {outputs}")
        if server.wait(timeout=60) != 0:
            raise SystemExit("the server failed")
    finally:
        server.kill()
    return connections * round_trips / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=5000, help="round trips per connection per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating native/guest measurements")
    parser.add_argument("--connections", default="1,8", help="comma-separated numbers of concurrent connections")
    args = parser.parse_args()
    if not toolchain_available() or newer_cargo() is None:
        print("needs Debian's rustc/cargo with the wasm32-wasi std, and a cargo that reads crates.io", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wasiport-bench-echo-") as scratch_name:
        scratch = Path(scratch_name)
        print("vendoring crates.io for rustc 1.63 and building tokio-echo natively and on tokio_wasi ...", flush=True)
        native, module = build_echo(vendored_cargo(scratch), scratch)
        env = dict(os.environ, WASIPORT_CACHE_DIR=str(scratch / "wasiport-cache"), PYTHONPATH=str(REPO))
        guest = [sys.executable, "-m", "wasiport", "run", str(module), "--"]
        servers = {
            "native": [str(native)],
            "wasiport run": guest,
            # the same run with every host call answered in Python (no C compiler, or WASIPORT_HOTPATH=0)
            "Python only": ["env", "WASIPORT_HOTPATH=0", *guest],
        }
        echo_rate(guest, env, native, 1, 200)  # warm wasmtime's compilation cache and compile hotpath.c
        for connections in (int(c) for c in args.connections.split(",")):
            rates: dict[str, list[float]] = {name: [] for name in servers}
            for index in range(args.rounds):
                order = list(servers) if index % 2 == 0 else list(reversed(servers))  # no order favoured
                for name in order:
                    rates[name].append(echo_rate(servers[name], env, native, connections, args.round_trips))
            print(f"tokio-echo server, {connections} connection(s) x {args.round_trips} round trips of "
                  f"{MESSAGE_SIZE} bytes x {args.rounds} rounds, round trips/s")
            for name, found in rates.items():
                print(f"  {name:13s} best {max(found):8.0f}  median {statistics.median(found):8.0f}"
                      f"   (rounds: {', '.join(f'{r:.0f}' for r in found)})")
            host = rates["native"]
            for name in ("wasiport run", "Python only"):
                found = rates[name]
                print(f"  ratio {name}/native: best {max(found) / max(host):.2f}, median "
                      f"{statistics.median(found) / statistics.median(host):.2f}  (target >= 0.50)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
