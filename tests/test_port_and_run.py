"""The proof of a port: `wasiport apply` the corpus samples, then run the modules under
`wasiport run` against real servers and real clients.

- a Redis-style client SETs and GETs through a real redis-server (checked with redis-cli);
- a ported HTTP server (TcpListener) answers a real Python client;
- a ported UDP client talks to a Python UDP echo server;
- the ported client against a server that is down sees ConnectionRefused.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli import ci_like_env, git_repo, run_wasiport as wasiport
from tests.support.offline_cargo import OfflineCargo, add_crate
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "corpus" / "samples"

pytestmark = [pytest.mark.cargo]




@pytest.fixture(scope="module")
def registry(offline_cargo: OfflineCargo) -> OfflineCargo:
    add_crate(offline_cargo.registry, SAMPLES / "redis-sample")
    return offline_cargo


@pytest.fixture
def env(registry: OfflineCargo, tmp_path: Path) -> dict:
    return ci_like_env(registry, tmp_path)




def ported_sample(tmp_path: Path, env: dict, sample: str) -> Path:
    """Copy a sample binary crate, put it under git, port it in place; the built .wasm."""
    crate = tmp_path / sample
    shutil.copytree(SAMPLES / sample, crate, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    git_repo(crate)
    # A binary crate is its own consumer: build it directly.
    done = wasiport(env, "apply", str(crate), "--manifest-path", str(crate / "Cargo.toml"), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["module"], report
    return Path(report["module"])


def test_ported_redis_client_sets_and_gets_through_a_real_server(tmp_path, env, redis_server):
    app = tmp_path / "app"
    shutil.copytree(SAMPLES / "redis-consumer", app, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    manifest = app / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('redis-sample = { path = "../redis-sample" }', 'redis-sample = "0.1"'))
    git_repo(app, "app")
    address = f"127.0.0.1:{redis_server.port}"
    done = wasiport(env, "apply", "redis-sample", "--manifest-path", str(manifest), "--env", f"REDIS_ADDR={address}", "--run", "wasiport:key", "stored-by-wasm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run: ok" in done.stdout and "stored-by-wasm" in done.stdout
    # the value is really in Redis, written by the module
    assert redis_server.cli("GET", "wasiport:key") == "stored-by-wasm"

    module = Path(env["CARGO_TARGET_DIR"]) / "wasm32-wasi" / "debug" / "redis-consumer.wasm"
    # the same module against a server that is down: the guest sees ConnectionRefused
    closed = free_port()
    down = wasiport(env, "run", "--env", f"REDIS_ADDR=127.0.0.1:{closed}", str(module), "--", "k", "v")
    assert down.returncode != 0
    assert "ConnectionRefused" in down.stderr


def test_ported_http_server_answers_a_real_client(tmp_path, env):
    module = ported_sample(tmp_path, env, "http-hello")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wasiport", "run", "--timeout", "60", str(module), "--", f"127.0.0.1:{port}", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert "listening on" in server.stdout.readline()
        bodies = []
        for path in ("/first", "/second"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                response = b""
                while chunk := client.recv(4096):
                    response += chunk
            bodies.append(response.decode())
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    assert bodies[0].startswith("HTTP/1.1 200") and bodies[0].rstrip().endswith("Hello from /first")
    assert bodies[1].rstrip().endswith("Hello from /second")


def test_ported_udp_client_talks_to_a_real_udp_server(tmp_path, env):
    module = ported_sample(tmp_path, env, "udp-ping")
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def echo() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = server.recvfrom(1500)
            except OSError:
                continue
            server.sendto(b"pong: " + data, peer)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        done = wasiport(env, "run", str(module), "--", "127.0.0.1", str(port), "3", "2000", "127.0.0.1:0", timeout=120)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["reply 0: pong: ping 0", "reply 1: pong: ping 1", "reply 2: pong: ping 2"]


def test_udp_read_timeout_set_by_the_guest_fires(tmp_path, env):
    module = ported_sample(tmp_path, env, "udp-ping")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        started = time.monotonic()
        done = wasiport(env, "run", str(module), "--", "127.0.0.1", str(silent.getsockname()[1]), "1", "300", "127.0.0.1:0", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert done.returncode == 1
    assert "WouldBlock" in done.stderr or "TimedOut" in done.stderr
    assert elapsed < 30  # it did not hang
