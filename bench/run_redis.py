"""Benchmark `wasiport run`: Redis GET round trips per second, guest vs native.

    python bench/run_redis.py [--gets 10000] [--rounds 7]

Clients, each built twice from the same source (for wasm32-wasi and natively):

* `redis-sample`: corpus/samples/redis-sample (a redis-rs-shaped std::net
  client library), ported by `wasiport apply` in a scratch copy, driven by
  tests/guests/redisbench (SET once, then GET in a loop);
* `netclient`: tests/guests/netclient, a client ported by hand the way
  wasiport ports code (`wasmedge_wasi_socket` on WASI, `std::net` natively).

It starts a redis-server on a free loopback port and runs each client's GET
loop natively and under `run_module`, alternating, in the same run. The
clients time their own loops, so start-up is not part of the rate. Then it
measures start-up: compile (or cache lookup), instantiation, and the time from
instantiation to the guest's first socket call, without wasmtime's
compilation cache, with a cold cache and with a warm one.

Needs Debian's rustc/cargo with the wasm32-wasi std and redis-server (as CI).
A benchmark, not a test: it asserts nothing and prints numbers.
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.guests.build import GUESTS, WASM_TARGET, build_guest
from tests.support.offline_cargo import DEBIAN_CARGO, OfflineCargo, make_offline_cargo, toolchain_available
from wasiport.runtime import RunConfig, run_module


@dataclass(frozen=True)
class Client:
    name: str
    wasm: Path
    native: Path
    arguments: Callable[[int, int], list[str]]  # (redis port, GET count) -> argv[1:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("redis-server did not start")


def netclient(cargo: OfflineCargo) -> Client:
    return Client(
        "netclient (hand-ported guest)",
        build_guest(cargo, "netclient"),
        build_guest(cargo, "netclient", native=True),
        lambda port, gets: ["redis-bench", "127.0.0.1", str(port), str(gets)],
    )


def redis_sample(cargo: OfflineCargo, scratch: Path) -> Client:
    """Port a copy of corpus/samples/redis-sample with `wasiport apply`, then build the bench consumer."""
    shutil.copytree(REPO / "corpus" / "samples" / "redis-sample", scratch / "redis-sample",
                    ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    shutil.copytree(GUESTS / "redisbench", scratch / "redisbench", ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    identity = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    env = cargo.env(HOME=str(scratch), GIT_CONFIG_NOSYSTEM="1", **identity)
    consumer = scratch / "redisbench"
    apply = subprocess.run(
        [sys.executable, "-m", "wasiport", "apply", "redis-sample", "--manifest-path", str(consumer / "Cargo.toml"),
         "--allow-no-vcs", "--no-build", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    if apply.returncode != 0:
        raise RuntimeError(f"wasiport apply failed:\n{apply.stdout}{apply.stderr}")
    for extra in (["--target", WASM_TARGET], []):
        built = subprocess.run([str(DEBIAN_CARGO), "build", "--release", "--quiet", *extra], cwd=consumer, env=env,
                               capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise RuntimeError(f"building the ported consumer failed:\n{built.stderr}")
    return Client(
        "redis-sample (ported by wasiport apply)",
        cargo.target_dir / WASM_TARGET / "release" / "redisbench.wasm",
        cargo.target_dir / "release" / "redisbench",
        lambda port, gets: [f"127.0.0.1:{port}", str(gets)],
    )


def rate(output: str) -> float:
    found = re.search(r"per_second=([\d.]+)", output)
    if not found:
        raise SystemExit(f"the client printed no rate:\n{output}")
    return float(found.group(1))


def native_rate(client: Client, port: int, gets: int) -> float:
    done = subprocess.run([str(client.native), *client.arguments(port, gets)], capture_output=True, text=True, check=True)
    return rate(done.stdout)


def guest_rate(client: Client, port: int, gets: int, cache: Path, *, fast: bool = True) -> float:
    outcome = run_module(
        client.wasm,
        RunConfig(args=tuple(client.arguments(port, gets)), capture_output=True, cache_dir=cache, fast_host_calls=fast),
    )
    if outcome.exit_code != 0:
        raise SystemExit(f"guest failed ({outcome.status.value}): {outcome.message}\n{outcome.stderr.decode()}")
    return rate(outcome.stdout.decode())


def startup(client: Client, port: int, cache: Path | None) -> tuple[float, float, float]:
    """(load s, instantiate s, instantiate -> first socket call s) for a 1-GET run."""
    outcome = run_module(
        client.wasm, RunConfig(args=tuple(client.arguments(port, 1)), capture_output=True, cache_dir=cache)
    )
    timings = outcome.timings
    return timings.load, timings.instantiate, timings.to_first_socket_call or float("nan")


def measure(client: Client, port: int, gets: int, rounds: int, cache: Path) -> None:
    guest_rate(client, port, 1000, cache)  # warm the cache, the connection path and redis
    native_rate(client, port, 1000)
    natives, guests = [], []
    for _ in range(rounds):
        natives.append(native_rate(client, port, gets))
        guests.append(guest_rate(client, port, gets, cache))
    slow = guest_rate(client, port, max(gets // 10, 100), cache, fast=False)
    # Other load on the machine only ever slows a round down, so the best round
    # is the steadiest estimate; the median is shown too.
    print(f"{client.name}: {gets} GETs x {rounds} rounds, GET/s")
    print(f"  native        best {max(natives):8.0f}  median {statistics.median(natives):8.0f}"
          f"   (rounds: {', '.join(f'{r:.0f}' for r in natives)})")
    print(f"  wasiport run  best {max(guests):8.0f}  median {statistics.median(guests):8.0f}"
          f"   (rounds: {', '.join(f'{r:.0f}' for r in guests)})")
    print(f"  ratio guest/native: best {max(guests) / max(natives):.2f}, median "
          f"{statistics.median(guests) / statistics.median(natives):.2f}  (target >= 0.50)")
    print(f"  public wasmtime-py API: {slow:.0f} GET/s (host calls through Linker.define_func, for comparison)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gets", type=int, default=10000, help="GET round trips per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="alternating native/guest measurements")
    args = parser.parse_args()
    if not toolchain_available() or shutil.which("redis-server") is None:
        print("needs Debian's rustc/cargo with wasm32-wasi std and redis-server", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="wasiport-bench-") as scratch_name:
        scratch = Path(scratch_name)
        cargo = make_offline_cargo(scratch / "cargo")
        clients = []
        try:
            clients.append(redis_sample(cargo, scratch))
        except RuntimeError as err:
            print(f"redis-sample skipped: {err}", file=sys.stderr)
        clients.append(netclient(cargo))
        port = free_port()
        server = start_redis(port)
        try:
            print(f"redis-server on 127.0.0.1:{port}")
            for client in clients:
                measure(client, port, args.gets, args.rounds, scratch / "wasmtime-cache")
            first = clients[0]
            no_cache = startup(first, port, None)
            cold = startup(first, port, scratch / "cold-cache")
            warm = startup(first, port, scratch / "cold-cache")
        finally:
            server.terminate()
            server.wait(10)

    print(f"start-up of {first.name}, ms: load = read + compile or cache lookup")
    print("                         load   instantiate   instantiate -> first socket call")
    for label, (load, instantiate, first_call) in (
        ("no compilation cache", no_cache),
        ("cold cache", cold),
        ("warm cache", warm),
    ):
        print(f"  {label:20s} {load * 1000:7.1f}   {instantiate * 1000:11.2f}   {first_call * 1000:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
