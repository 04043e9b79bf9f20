"""The redis crate that cargo resolves today (1.x), fetched from crates.io at test time.

redis >= 0.32 writes `#[cfg(feature = "cache-aio")]` on a field of a struct pattern in a
parameter of `check_connection_setup` (src/connection.rs), which tree-sitter-rust 0.24
cannot read: `check` must examine the file in full and `apply` must plan its port.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wasiport.model import Profile
from wasiport.port import Root, plan_port
from wasiport.rust.source import SourceFile

INDEX = "https://index.crates.io/re/di/redis"
DOWNLOAD = "https://static.crates.io/crates/redis/redis-{version}.crate"
pytestmark = pytest.mark.network


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "wasiport-tests"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def _newest_1x(index: bytes) -> str:
    releases = [json.loads(line) for line in index.decode().splitlines() if line.strip()]
    versions = [r["vers"] for r in releases if not r["yanked"] and re.fullmatch(r"1\.\d+\.\d+", r["vers"])]
    return max(versions, key=lambda v: tuple(map(int, v.split("."))))


@pytest.fixture(scope="module")
def redis_crate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        version = _newest_1x(_get(INDEX))
        archive = _get(DOWNLOAD.format(version=version))
    except (urllib.error.URLError, OSError) as err:
        pytest.skip(f"crates.io is not reachable: {err}")
    destination = tmp_path_factory.mktemp("redis")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(destination, filter="data")
    return destination / f"redis-{version}"


def line_with(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def test_check_examines_current_redis_in_full(redis_crate: Path):
    done = subprocess.run(
        [sys.executable, "-m", "wasiport", "check", "--no-cache", "--format", "json", str(redis_crate)],
        capture_output=True, text=True, cwd=redis_crate,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["problems"] == []  # no parse error: the grammar gap is masked
    found = {(f["path"], f["span"]["start_line"], f["rule_id"]) for f in report["findings"]}
    assert not any(rule == "wasiport/not-examined" for _, _, rule in found)
    connection, tcp = redis_crate / "src" / "connection.rs", redis_crate / "src" / "io" / "tcp.rs"
    assert {
        ("src/connection.rs", line_with(connection, "use std::net::"), "wasmedge/std-net-import"),
        ("src/connection.rs", line_with(connection, "TcpStream::connect_timeout("), "wasmedge/connect-timeout"),
        ("src/io/tcp.rs", line_with(tcp, "net::TcpStream"), "wasmedge/std-net-import"),
        ("src/io/tcp.rs", line_with(tcp, "socket.set_nodelay("), "wasmedge/set-nodelay"),
    } <= found


def test_the_port_of_current_redis_is_planned_byte_exactly(redis_crate: Path):
    connection, tcp = redis_crate / "src" / "connection.rs", redis_crate / "src" / "io" / "tcp.rs"
    source = SourceFile.from_bytes("src/connection.rs", connection.read_bytes())
    assert source.gaps == () and "attribute on a struct-pattern field" in {m.construct for m in source.masks}

    plan = plan_port(redis_crate, [Root(redis_crate / "src" / "lib.rs", "lib")], Profile())
    assert plan.problems == []
    # `TcpStream::connect(addr)` and `stream_with_settings(socket: TcpStream, ..)` name the
    # gated import: both files' imports are rewritten, the rest of each file is its own
    for path, import_text in ((connection, "use std::net::"), (tcp, "net::TcpStream")):
        old, new = path.read_text(), plan.contents[path].decode()
        assert "wasiport_net::" in new
        import_line = old.splitlines()[line_with(path, import_text) - 1]
        untouched = [line for line in old.splitlines() if line != import_line and "std::net::" not in line]
        new_lines = set(new.splitlines())
        assert all(line in new_lines for line in untouched)
    ported = plan.contents[connection].decode()
    assert "TcpStream::connect(" in ported and "TcpStream::connect_timeout(" in ported
    assert '#[cfg(feature = "cache-aio")]\n        cache_cmd_idx,' in ported
