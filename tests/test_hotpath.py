"""The C host calls (wasiport/runtime/hotpath.c) in front of the Python ones.

Every test here runs twice (the `host_call_paths` fixture): with hotpath.c in front, then
with the Python host alone, and expects the same answer both times. The cases are the ones
where the two could drift apart: read-ahead bytes Python holds that the kernel no longer
has, an event array written over its own subscriptions, errors from the kernel, and a
machine without a C compiler. The whole host suite (test_runtime_abi, test_runtime_guests,
test_proxywasm_host) also runs both ways.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.support.cli import run_wasiport
from tests.support.wat import fd_subscription
from tests.test_runtime_abi import FD, IMPORTS, OPEN_TCP, run_wat
from wasiport.runtime import RunOutcome, RunStatus, hotpath
from wasiport.runtime.abi import Errno

pytestmark = pytest.mark.usefixtures("host_call_paths")

SET_FLAGS_IMPORT = (
    '(import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $setflags (param i32 i32) (result i32)))'
)
# Connect the socket at memory offset 0 to 127.0.0.1:PORT (memory map as in test_runtime_abi).
CONNECT = """
  (i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 4))
  (i32.store (i32.const 32) (i32.const 0x0100007F))
  (drop (call $connect {fd} (i32.const 16) (i32.const {port})))
"""


def recv_into(buffer: int, length: int, result_at: int) -> str:
    """sock_recv of up to `length` bytes at `buffer`; its errno stored at `result_at`, the count at 128."""
    return f"""
      (i32.store (i32.const 64) (i32.const {buffer})) (i32.store (i32.const 68) (i32.const {length}))
      (i32.store (i32.const {result_at})
        (call $recv {FD} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132)))
    """


def send_from(buffer: int, length: int, result_at: int) -> str:
    return f"""
      (i32.store (i32.const 64) (i32.const {buffer})) (i32.store (i32.const 68) (i32.const {length}))
      (i32.store (i32.const {result_at})
        (call $send {FD} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 136)))
    """


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Start a one-connection loopback server running `script(conn)`; returns its port."""
    servers: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(script: Callable[[socket.socket], None]) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    script(conn)
                except OSError:
                    pass  # the guest went away first: its exit is what the test checks

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return int(server.getsockname()[1])

    yield start
    for server in servers:
        server.close()
    for thread in threads:
        thread.join(timeout=10)


def guest_memory_dump(tmp_path: Path, body: str, *, imports: str = IMPORTS) -> tuple[RunOutcome, bytes]:
    """Run `body`, which writes what it found from offset 2048 on and exits 0; return those bytes.

    The guest writes the bytes to stdout with fd_write (2048.. as one iovec at 192)."""
    write_import = (
        '(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))'
    )
    dump = """
      (i32.store (i32.const 192) (i32.const 2048)) (i32.store (i32.const 196) (i32.const 512))
      (drop (call $write (i32.const 1) (i32.const 192) (i32.const 1) (i32.const 200)))
      (call $exit (i32.const 0))
    """
    outcome = run_wat(tmp_path, body + dump, imports=imports + write_import, timeout=30)
    assert outcome.status is RunStatus.EXITED and outcome.exit_code == 0, outcome.message
    return outcome, outcome.stdout


def _expect_c_in_front(host_call_paths: str, outcome: RunOutcome) -> None:
    if host_call_paths == "c-host-calls":
        assert outcome.host_calls_in_c is not None and outcome.host_calls_in_c > 0
    else:
        assert outcome.host_calls_in_c is None


def test_the_c_calls_are_built_here() -> None:
    """The machines that run these tests have a C compiler (cargo links with it), so the
    C side is really exercised: hotpath.c compiles and loads."""
    assert shutil.which("cc") is not None
    assert hotpath.compiled_library() is not None


def test_an_echo_exchange_is_answered_in_c(tmp_path: Path, peer, host_call_paths: str) -> None:
    """send 3000 bytes, wait until readable, recv them back in a 4096-byte buffer: the
    plain calls an echo server makes, answered by hotpath.c when it is in front."""
    def echo(conn: socket.socket) -> None:
        received = b""
        while len(received) < 3000:
            chunk = conn.recv(4096)
            if not chunk:
                return
            received += chunk
        conn.sendall(received)

    port = peer(echo)
    body = f"""
      {OPEN_TCP} {CONNECT.format(fd=FD, port=port)}
      (memory.fill (i32.const 4096) (i32.const 0x61) (i32.const 3000))
      {send_from(4096, 3000, 2048)}
      (i32.store (i32.const 2052) (i32.load (i32.const 136)))
      (i32.store (i32.const 2056) (i32.const 0))
      (block $done (loop $more
        {fd_subscription(256, 5, 1, FD)}
        (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
        {recv_into(8192, 4096, 2060)}
        (br_if $done (i32.ne (i32.load (i32.const 2060)) (i32.const 0)))
        (i32.store (i32.const 2056) (i32.add (i32.load (i32.const 2056)) (i32.load (i32.const 128))))
        (br_if $done (i32.eqz (i32.load (i32.const 128))))
        (br_if $more (i32.lt_u (i32.load (i32.const 2056)) (i32.const 3000)))))
    """
    outcome, dumped = guest_memory_dump(tmp_path, body)
    send_errno, sent, received, recv_errno = struct.unpack_from("<IIII", dumped)
    assert (send_errno, sent, received, recv_errno) == (0, 3000, 3000, 0)
    _expect_c_in_front(host_call_paths, outcome)


def test_read_ahead_bytes_come_before_the_kernels(tmp_path: Path, peer, host_call_paths: str) -> None:
    """Python reads ahead where it answers a small recv itself; C must then leave that socket
    to Python until the buffer is empty. Python answers a small recv in front of which C
    stands when C's recv is interrupted by a signal (EINTR: Python checks signals, retries):
    here the guest's 2-byte recv waits, a signal interrupts it, and Python's retry reads
    ahead all 8 bytes the peer then sends. The poll that follows reports the 6 it holds as
    readable, the next large recv gets them from Python, not the (empty) kernel queue, and
    once they are gone C answers again: the peer's next 2 bytes (one segment) arrive in order.
    With the Python host alone, the same signal and the same answers."""
    def two_messages(conn: socket.socket) -> None:
        time.sleep(0.2)  # the guest, connected, is now waiting in its recv
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
        time.sleep(0.1)
        conn.sendall(b"abcdefgh")
        conn.recv(1)  # the guest says: send the rest
        conn.sendall(b"XY")
        conn.recv(1)

    port = peer(two_messages)
    body = f"""
      {OPEN_TCP} {CONNECT.format(fd=FD, port=port)}
      {recv_into(2048, 2, 1000)}
      {fd_subscription(256, 5, 1, FD)}
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
      (i32.store (i32.const 2050) (i32.load (i32.const 640)))
      (i32.store (i32.const 2054) (i32.wrap_i64 (i64.load (i32.const 528))))
      {recv_into(2058, 2048, 1000)}
      (i32.store (i32.const 2064) (i32.load (i32.const 128)))
      {send_from(2048, 1, 1004)}
      {recv_into(2068, 2048, 1000)}
    """
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)  # interrupts, nothing else
    try:
        outcome, dumped = guest_memory_dump(tmp_path, body)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert dumped[0:2] == b"ab"
    nevents, readable = struct.unpack_from("<II", dumped, 2)
    assert nevents == 1 and readable == 6
    assert dumped[10:16] == b"cdefgh"
    assert struct.unpack_from("<I", dumped, 16)[0] == 6
    assert dumped[20:22] == b"XY"
    _expect_c_in_front(host_call_paths, outcome)


def test_events_written_over_their_own_subscriptions(tmp_path: Path, peer, host_call_paths: str) -> None:
    """poll_oneoff with the event array at the subscriptions' address: both events are right."""
    def greet(conn: socket.socket) -> None:
        conn.sendall(b"hello")
        conn.recv(1)

    port = peer(greet)
    body = f"""
      {OPEN_TCP} {CONNECT.format(fd=FD, port=port)}
      {fd_subscription(256, 7, 1, FD)}
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
      {fd_subscription(256, 11, 2, FD)}
      {fd_subscription(304, 12, 1, FD)}
      (i32.store (i32.const 2048) (call $poll (i32.const 256) (i32.const 256) (i32.const 2) (i32.const 2052)))
      (memory.copy (i32.const 2056) (i32.const 256) (i32.const 64))
    """
    _, dumped = guest_memory_dump(tmp_path, body)
    errno, nevents = struct.unpack_from("<II", dumped)
    assert (errno, nevents) == (0, 2)
    first = struct.unpack_from("<QHB5xQH6x", dumped, 8)
    second = struct.unpack_from("<QHB5xQH6x", dumped, 40)
    assert first[:3] == (11, 0, 2) and first[3] > 0 and first[4] == 0  # writable, with room to send
    assert second == (12, 0, 1, 5, 0)  # readable, 5 bytes, no hang-up


def test_kernel_errors_become_the_same_errnos(tmp_path: Path, peer, host_call_paths: str) -> None:
    """Non-blocking recv with nothing to read: AGAIN. The peer resets the connection: recv
    gets CONNRESET, and a send after it PIPE (no SIGPIPE kills the host)."""
    reset_now = threading.Event()

    def reset(conn: socket.socket) -> None:
        reset_now.wait(10)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    port = peer(reset)
    body = f"""
      {OPEN_TCP} {CONNECT.format(fd=FD, port=port)}
      (drop (call $setflags {FD} (i32.const 4)))
      {recv_into(4096, 2048, 2048)}
      (drop (call $setflags {FD} (i32.const 0)))
      {fd_subscription(256, 5, 1, FD)}
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
      {recv_into(4096, 2048, 2052)}
      {send_from(4096, 1, 2056)}
    """
    threading.Timer(0.3, reset_now.set).start()
    outcome, dumped = guest_memory_dump(tmp_path, body, imports=IMPORTS + SET_FLAGS_IMPORT)
    again, reset_errno, send_errno = struct.unpack_from("<III", dumped)
    assert again == Errno.AGAIN
    assert reset_errno == Errno.CONNRESET
    assert send_errno == Errno.PIPE
    _expect_c_in_front(host_call_paths, outcome)


def test_without_a_c_compiler_python_answers_everything(
    tmp_path: Path, peer, host_call_paths: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No compiler (or one that fails): the run is the same, only every call goes to Python."""
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("WASIPORT_CACHE_DIR", str(tmp_path / "cache"))
    hotpath.compiled_library.cache_clear()
    try:
        port = peer(lambda conn: conn.sendall(b"hi"))
        body = f"""
          {OPEN_TCP} {CONNECT.format(fd=FD, port=port)}
          {fd_subscription(256, 5, 1, FD)}
          (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
          {recv_into(2052, 2048, 2048)}
        """
        outcome, dumped = guest_memory_dump(tmp_path, body)
        assert dumped[:6] == b"\0\0\0\0hi"
        assert outcome.host_calls_in_c is None
        assert not (tmp_path / "cache" / "hotpath").exists() or not any((tmp_path / "cache" / "hotpath").glob("*.so"))
    finally:
        hotpath.compiled_library.cache_clear()


def test_verbose_says_whether_c_answered(tmp_path: Path, host_call_paths: str) -> None:
    """`wasiport -v run` tells how many calls C answered, or why the C host calls were off."""
    body = f"""
      {OPEN_TCP}
      {fd_subscription(256, 7, 2, FD)}
      (call $exit (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
    """
    module = tmp_path / "poll.wasm"
    module.write_bytes(wasmtime.wat2wasm(f'(module {IMPORTS} (memory (export "memory") 1) (func (export "_start") {body}))'))
    env = dict(os.environ, WASIPORT_CACHE_DIR=str(tmp_path / "cache"))
    done = run_wasiport(env, "-v", "run", str(module), timeout=120)
    assert done.returncode == 0, done.stderr
    if host_call_paths == "c-host-calls":
        assert "wasiport: host calls answered in C: 1" in done.stderr
    else:
        assert "host calls answered in C" not in done.stderr
    without = run_wasiport(dict(env, CC=str(tmp_path / "no-cc")), "-v", "run", str(module), timeout=120)
    assert without.returncode == 0, without.stderr
    if host_call_paths == "c-host-calls":
        assert f"wasiport: C host calls off: no C compiler ({tmp_path / 'no-cc'}) on PATH" in without.stderr
