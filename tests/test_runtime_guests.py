"""`wasiport run` with real Rust guests, real sockets and a real redis-server.

Two guests (tests/guests/): `rawsock` calls WasmEdge's host functions by hand
(3-argument accept and address calls, 7-argument recv_from), `netclient` is
ported code on the `wasmedge_wasi_socket` stand-in (2-argument accept,
4-argument address calls, 8-argument recv_from). Every test talks to a real
peer: a Python socket, or redis-server.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.guests.build import build_guest
from wasiport.runtime import EXIT_TIMEOUT, EXIT_TRAP, PolicyDecision, RunConfig, RunOutcome, RunStatus, run_module
from wasiport.runtime.abi import Errno

pytestmark = [pytest.mark.cargo, pytest.mark.usefixtures("host_call_paths")]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def rawsock(offline_cargo) -> Path:
    return build_guest(offline_cargo, "rawsock")


@pytest.fixture(scope="session")
def netclient(offline_cargo) -> Path:
    return build_guest(offline_cargo, "netclient")


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmtime-cache")


@pytest.fixture
def run_guest(compile_cache: Path) -> Callable[..., RunOutcome]:
    def run(wasm: Path, *args: str, **config) -> RunOutcome:
        config.setdefault("timeout", 60)
        return run_module(wasm, RunConfig(args=args, capture_output=True, cache_dir=compile_cache, **config))

    return run


def fields(outcome: RunOutcome) -> dict[str, str]:
    """The guest's key=value output (later keys win)."""
    return dict(re.findall(r"(\w+)=(\S*)", outcome.stdout.decode()))


class GuestInBackground:
    """A guest server run in a thread; `wait_for` reads its output as it appears."""

    def __init__(self, wasm: Path, args: tuple[str, ...], cache: Path, **config) -> None:
        self._output = b""
        self._changed = threading.Condition()
        self.outcome: RunOutcome | None = None
        config.setdefault("timeout", 60)
        run_config = RunConfig(args=args, capture_output=True, cache_dir=cache, on_stdout=self._feed, **config)
        self._thread = threading.Thread(target=self._run, args=(wasm, run_config), daemon=True)
        self._thread.start()

    def _run(self, wasm: Path, config: RunConfig) -> None:
        try:
            self.outcome = run_module(wasm, config)
        finally:
            with self._changed:
                self._changed.notify_all()

    def _feed(self, data: bytes) -> None:
        with self._changed:
            self._output += data
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = re.search(pattern, self._output.decode())
                if found:
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0 and self._thread.is_alive(), f"guest never printed {pattern!r}: {self._output!r}"
                self._changed.wait(remaining)

    def finish(self, timeout: float = 30) -> RunOutcome:
        self._thread.join(timeout)
        assert self.outcome is not None, "guest did not finish"
        return self.outcome


@contextlib.contextmanager
def tcp_peer(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-connection Python TCP server on loopback; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
            with conn:
                handle(conn)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        thread.join(10)
        server.close()
    if errors:
        raise errors[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- redis ---------------------------------------------------------------------------


def resp_command(port: int, *parts: bytes) -> bytes:
    """One RESP command over a fresh Python connection: the independent check."""
    request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        reply = b""
        while not _complete_reply(reply):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def _complete_reply(reply: bytes) -> bool:
    head, sep, rest = reply.partition(b"\r\n")
    if not sep:
        return False
    if not head.startswith(b"$") or head == b"$-1":
        return True
    return len(rest) >= int(head[1:]) + 2


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (see .ci/run)")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if resp_command(port, b"PING") == b"+PONG\r\n":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.redis
def test_guest_sets_and_gets_through_a_real_redis(netclient: Path, run_guest, redis_port: int) -> None:
    outcome = run_guest(netclient, "redis", "127.0.0.1", str(redis_port), "wasiport:key", "from-the-guest")
    assert outcome.exit_code == 0, outcome.stdout
    assert fields(outcome) == {"set": "OK", "get": "from-the-guest"}
    assert resp_command(redis_port, b"GET", b"wasiport:key") == b"$14\r\nfrom-the-guest\r\n"


@pytest.mark.redis
def test_guest_resolves_localhost_for_redis(netclient: Path, run_guest, redis_port: int) -> None:
    resp_command(redis_port, b"SET", b"wasiport:named", b"by-name")
    outcome = run_guest(netclient, "redis", "localhost", str(redis_port), "wasiport:named2", "v2")
    assert fields(outcome)["get"] == "v2"
    assert outcome.timings.to_first_socket_call is not None


# -- TCP servers in the guest --------------------------------------------------------


def test_guest_echo_server_serves_a_python_client(netclient: Path, compile_cache: Path) -> None:
    guest = GuestInBackground(netclient, ("echo-server",), compile_cache)
    port = int(guest.wait_for(r"listening port=(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"ping over wasmedge sockets")
        assert client.recv(100) == b"ping over wasmedge sockets"
        client_port = client.getsockname()[1]
        client.shutdown(socket.SHUT_WR)
        assert client.recv(100) == b""
    outcome = guest.finish()
    assert outcome.exit_code == 0
    assert fields(outcome)["peer"] == f"127.0.0.1:{client_port}"  # from 4-argument sock_getpeeraddr
    assert fields(outcome)["echoed"] == "26"


def test_raw_echo_server_with_v2_calls_and_scatter_gather(rawsock: Path, compile_cache: Path) -> None:
    guest = GuestInBackground(rawsock, ("echo-server", "2"), compile_cache)
    port = int(guest.wait_for(r"listening port=(\d+)").group(1))
    payloads = [b"hi", bytes(range(256)) * 400]  # shorter and longer than the 3-byte first iovec
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            echoed = b""
            while chunk := client.recv(65536):
                echoed += chunk
            assert echoed == payload
    outcome = guest.finish()
    assert outcome.exit_code == 0
    assert re.findall(r"closed echoed=(\d+)", outcome.stdout.decode()) == ["2", str(len(payloads[1]))]
    assert "family=1" in outcome.stdout.decode()  # V2 storage carries the WASI family


def test_raw_client_reports_v2_addresses_and_half_closes(rawsock: Path, run_guest) -> None:
    def upper_echo(conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(1024):
            data += chunk
        conn.sendall(data.upper())

    with tcp_peer(upper_echo) as port:
        outcome = run_guest(rawsock, "client", "127.0.0.1", str(port), "shout")
    out = fields(outcome)
    assert out["reply"] == "SHOUT"
    assert out["peer"] == f"127.0.0.1:{port}"
    assert out["local"].startswith("127.0.0.1:")


# -- UDP -----------------------------------------------------------------------------------


def test_udp_round_trip_through_the_crate(netclient: Path, run_guest) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(20)
        port = peer.getsockname()[1]

        def echo() -> None:
            data, sender = peer.recvfrom(512)
            peer.sendto(data[::-1], sender)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        outcome = run_guest(netclient, "udp", "127.0.0.1", str(port), "datagram")
        thread.join(10)
    out = fields(outcome)
    assert (out["sent"], out["reply"], out["from_ip"]) == ("8", "margatad", "127.0.0.1")
    # WasmEdge writes sin_port verbatim (network order) into the u32 the crate
    # reads: the crate sees the port byte-swapped, on WasmEdge and here alike.
    assert int(out["from_port"]) == struct.unpack("<H", struct.pack(">H", port))[0]


def test_udp_v1_recv_from_gives_the_sender_ip_and_send_to_replies(rawsock: Path, compile_cache: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(20)
        guest = GuestInBackground(rawsock, ("udp-echo", str(peer.getsockname()[1])), compile_cache)
        port = int(guest.wait_for(r"listening port=(\d+)").group(1))
        peer.sendto(b"0123456789", ("127.0.0.1", port))  # longer than the guest's 8-byte buffer
        reply, sender = peer.recvfrom(64)
    outcome = guest.finish()
    assert reply == b"01234567" and sender == ("127.0.0.1", port)
    assert fields(outcome)["from"] == "127.0.0.1"
    assert fields(outcome)["truncated"] == "1"  # ROFLAGS_DATA_TRUNCATED


# -- errors that reach the guest ---------------------------------------------------------


def test_connection_refused_is_connection_refused(netclient: Path, rawsock: Path, run_guest) -> None:
    port = free_port()
    assert fields(run_guest(netclient, "connect", "127.0.0.1", str(port)))["connect_kind"] == "ConnectionRefused"
    raw = fields(run_guest(rawsock, "connect", "127.0.0.1", str(port)))
    assert (raw["connect_errno"], raw["kind"]) == (str(Errno.CONNREFUSED.value), "ConnectionRefused")


def test_server_closing_mid_reply_ends_the_read(netclient: Path, run_guest) -> None:
    def half_reply(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"x" * 1000)  # then close without finishing

    with tcp_peer(half_reply) as port:
        outcome = run_guest(netclient, "read-all", "127.0.0.1", str(port), "GET")
    assert fields(outcome) == {"received": "1000", "end": "eof"}


def test_server_resetting_mid_reply_is_connection_reset(netclient: Path, run_guest) -> None:
    def reset(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"y" * 10)
        time.sleep(0.3)  # let the guest read what was sent
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with tcp_peer(reset) as port:
        outcome = run_guest(netclient, "read-all", "127.0.0.1", str(port), "GET")
    assert fields(outcome)["end"] == "ConnectionReset"


def test_read_timeout_fires(netclient: Path, run_guest) -> None:
    silent = threading.Event()
    with tcp_peer(lambda conn: silent.wait(10)) as port:
        outcome = run_guest(netclient, "read-timeout", "127.0.0.1", str(port), "300")
        silent.set()
    out = fields(outcome)
    assert out["read_kind"] == "WouldBlock"  # SO_RCVTIMEO surfaces as EAGAIN
    assert 250 <= int(out["waited_ms"]) < 5000


def test_denied_connect_is_permission_denied_and_logged(netclient: Path, rawsock: Path, run_guest) -> None:
    logged: list[PolicyDecision] = []
    outcome = run_guest(netclient, "connect", "192.0.2.1", "80", on_denied=logged.append)
    assert fields(outcome)["connect_kind"] == "PermissionDenied"
    assert [(d.action, d.host, d.port) for d in logged] == [("connect", "192.0.2.1", 80)]
    assert outcome.denied == logged
    # A rule for another port does not open this one.
    other = run_guest(rawsock, "connect", "192.0.2.1", "80", allow=("192.0.2.1:81",), on_denied=lambda d: None)
    assert fields(other)["connect_errno"] == str(Errno.ACCES.value)


def test_resolution_goes_through_the_policy(rawsock: Path, netclient: Path, run_guest) -> None:
    local = run_guest(rawsock, "resolve", "localhost", "6379", "1")
    assert "addr=127.0.0.1 port=6379 family=1 socktype=" in local.stdout.decode()
    assert "addrlen=16 sa_len=14" in local.stdout.decode()
    denied = run_guest(rawsock, "resolve", "192.0.2.9", "80", "0", on_denied=lambda d: None)
    assert fields(denied)["resolve_errno"] == str(Errno.AINONAME.value)
    assert [d.action for d in denied.denied] == ["resolve"]
    allowed = run_guest(rawsock, "resolve", "192.0.2.9", "80", "0", allow=("192.0.2.9:*",))
    assert "addr=192.0.2.9 port=80" in allowed.stdout.decode()
    crate = run_guest(netclient, "resolve", "localhost", "8080")
    assert "127.0.0.1:8080" in fields(crate)["resolved"].split(",")


# -- poll, non-blocking sockets, fdstat, options --------------------------------------------


def test_poll_reports_a_readable_socket(rawsock: Path, run_guest) -> None:
    def late_data(conn: socket.socket) -> None:
        time.sleep(0.2)
        conn.sendall(b"late")
        conn.recv(1)  # hold the connection until the guest is done

    with tcp_peer(late_data) as port:
        outcome = run_guest(rawsock, "poll", "127.0.0.1", str(port), "10000")
    text = outcome.stdout.decode()
    assert "event userdata=7 type=1 error=0 nbytes=4 hangup=0" in text
    assert "userdata=9" not in text  # the 10 s clock did not fire
    assert fields(outcome)["data"] == "late"


def test_poll_clock_fires_when_nothing_arrives(rawsock: Path, run_guest) -> None:
    done = threading.Event()
    with tcp_peer(lambda conn: done.wait(10)) as port:
        outcome = run_guest(rawsock, "poll", "127.0.0.1", str(port), "200")
        done.set()
    text = outcome.stdout.decode()
    assert "event userdata=9 type=0 error=0" in text and "userdata=7" not in text
    assert 150 <= int(fields(outcome)["waited_ms"]) < 5000


def test_nonblocking_socket_through_fdstat_and_poll(rawsock: Path, compile_cache: Path) -> None:
    connected = threading.Event()
    go = threading.Event()

    def later(conn: socket.socket) -> None:
        connected.set()
        go.wait(20)
        conn.sendall(b"now")
        conn.recv(1)

    with tcp_peer(later) as port:
        guest = GuestInBackground(rawsock, ("nonblock", "127.0.0.1", str(port)), compile_cache)
        guest.wait_for(r"waiting=1")
        go.set()
        outcome = guest.finish()
    out = fields(outcome)
    assert (out["filetype"], out["flags"]) == ("6", "0")  # SOCKET_STREAM, blocking
    assert int(out["rights"], 16) & (1 << 32)  # SOCK_RECV, as WasmEdge grants
    assert (out["nonblocking_flags"], out["early_recv_errno"]) == ("4", str(Errno.AGAIN.value))
    assert (out["events"], out["data"]) == ("1", "now")
    assert (out["blocking_flags"], out["close"]) == ("0", "0")
    assert out["after_close_fdstat"] == str(Errno.BADF.value)


def test_reactor_serves_many_connections_from_one_poll(rawsock: Path, compile_cache: Path) -> None:
    """mio_wasi's pattern: a non-blocking listener, accepts until AGAIN, every socket and a
    timeout in one poll_oneoff; 40 Python clients are connected at the same time."""
    clients = 40
    guest = GuestInBackground(rawsock, ("reactor", str(clients)), compile_cache)
    port = int(guest.wait_for(r"listening port=(\d+)").group(1))
    guest.wait_for(r"idle timeouts=1")  # nothing connected yet: the clock subscription fired
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(clients)]
    replies = []
    for index, conn in enumerate(connections):
        message = f"message {index:02d} ".encode() * 50
        conn.sendall(message)
        received = b""
        while len(received) < len(message):
            received += conn.recv(65536)
        replies.append(received == message)
    for conn in connections:
        conn.close()
    out = fields(guest.finish())
    assert all(replies)
    assert (out["accepted"], out["echoed"]) == (str(clients), str(sum(len(f"message {i:02d} ") * 50 for i in range(clients))))
    assert int(out["most_subscriptions"]) >= clients + 1  # every connection in one call, plus the clock
    assert int(out["accept_again"]) >= 1 and int(out["read_again"]) >= 1
    assert out["listener_flags"] == "4"  # NONBLOCK, as fd_fdstat_set_flags left it


def test_nonblocking_connect_is_in_progress_then_writable(rawsock: Path, run_guest) -> None:
    with tcp_peer(lambda conn: conn.sendall(conn.recv(4))) as port:
        out = fields(run_guest(rawsock, "connect-nb", "127.0.0.1", str(port)))
    assert (out["connect_errno"], out["writable"], out["so_error"]) == (str(Errno.INPROGRESS.value), "true", "0")
    assert out["reply"] == "ping"
    # a closed port: the connect still starts, and SO_ERROR says it was refused (as a WASI errno)
    out = fields(run_guest(rawsock, "connect-nb", "127.0.0.1", str(free_port())))
    assert out["connect_errno"] in (str(Errno.INPROGRESS.value), str(Errno.CONNREFUSED.value))
    assert out["so_error"] in ("0", str(Errno.CONNREFUSED.value))
    assert out["connect_errno"] == str(Errno.CONNREFUSED.value) or out["so_error"] == str(Errno.CONNREFUSED.value)


def test_socket_options_round_trip(rawsock: Path, run_guest) -> None:
    out = fields(run_guest(rawsock, "sockopts"))
    assert (out["stream_type"], out["dgram_type"]) == ("2", "1")  # WASI socket types, not Linux's
    assert (out["reuseaddr_before"], out["reuseaddr_after"]) == ("0", "1")
    assert (out["keepalive"], out["broadcast"], out["so_error"]) == ("1", "1", "0")
    seconds, micros = out["rcvtimeo"].split(".")
    assert seconds == "2" and 250_000 <= int(micros) < 260_000  # the kernel rounds to its tick
    assert out["size"] == "16"  # a wasm32 timeval
    assert out["bad_level"] == out["bad_name"] == out["bindtodevice"] == str(Errno.INVAL.value)


def test_stdout_fdstat_is_forwarded_to_wasmtime(rawsock: Path, run_guest) -> None:
    out = fields(run_guest(rawsock, "fdstat", "1"))
    # wasmtime's own answer for its stdout stream (test_runtime_abi compares the bytes
    # with an unshadowed run): not a socket, writable.
    assert out["filetype"] not in ("5", "6")
    assert int(out["rights"], 16) & (1 << 6)  # FD_WRITE
    assert fields(run_guest(rawsock, "fdstat", "77"))["fdstat_errno"] == str(Errno.BADF.value)


# -- exits, traps, timeouts --------------------------------------------------------------------


def test_exit_codes_and_traps(rawsock: Path, run_guest) -> None:
    assert run_guest(rawsock, "exit", "3").exit_code == 3
    assert run_guest(rawsock, "exit", "200").exit_code == 200
    trapped = run_guest(rawsock, "trap")
    assert (trapped.status, trapped.exit_code) == (RunStatus.TRAPPED, EXIT_TRAP)
    assert "rawsock::main" in trapped.message and "unreachable" in trapped.message
    assert b"guest panic requested by the test" in trapped.stderr


@pytest.mark.parametrize("args", [("spin",), ("sleep", "60000")], ids=["spinning", "sleeping"])
def test_timeout_stops_a_running_or_sleeping_guest(rawsock: Path, run_guest, args: tuple[str, ...]) -> None:
    started = time.monotonic()
    outcome = run_guest(rawsock, *args, timeout=1.0)
    assert (outcome.status, outcome.exit_code) == (RunStatus.TIMED_OUT, EXIT_TIMEOUT)
    assert time.monotonic() - started < 15


def test_timeout_wakes_a_guest_blocked_in_recv(rawsock: Path, run_guest) -> None:
    hold = threading.Event()
    with tcp_peer(lambda conn: hold.wait(20)) as port:
        started = time.monotonic()
        outcome = run_guest(rawsock, "block-recv", "127.0.0.1", str(port), timeout=1.0)
        hold.set()
    assert (outcome.status, outcome.exit_code) == (RunStatus.TIMED_OUT, EXIT_TIMEOUT)
    assert time.monotonic() - started < 15


# -- the command line ----------------------------------------------------------------------------


def wasiport(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wasiport", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def test_cli_exit_status_trap_timeout_and_policy(rawsock: Path, tmp_path: Path) -> None:
    cache = ["--no-cache"]
    exited = wasiport(str(rawsock), *cache, "--", "exit", "42")
    assert exited.returncode == 42
    trapped = wasiport(str(rawsock), *cache, "--", "trap")
    assert trapped.returncode == EXIT_TRAP and "wasm backtrace" in trapped.stderr
    timed_out = wasiport("--timeout", "1", str(rawsock), *cache, "--", "spin")
    assert timed_out.returncode == EXIT_TIMEOUT and "--timeout 1" in timed_out.stderr
    denied = wasiport(str(rawsock), *cache, "--", "connect", "192.0.2.1", "80")
    assert denied.returncode == 0 and "denied connect to 192.0.2.1:80" in denied.stderr
    assert f"connect_errno={Errno.ACCES.value}" in denied.stdout
    bad_allow = wasiport(str(rawsock), "--allow", "nohost", "--", "exit", "0")
    assert bad_allow.returncode == 2 and "--allow" in bad_allow.stderr


def test_small_reads_peek_and_poll_agree_with_the_read_ahead(rawsock: Path, run_guest) -> None:
    # The first 1-byte recv pulls the whole message into the host's read-ahead
    # buffer; poll must still report the socket readable, peek must not
    # consume, and a scatter recv must get the rest in order.
    done = threading.Event()

    def talk(conn: socket.socket) -> None:
        conn.sendall(b"hello world")
        done.wait(20)

    with tcp_peer(talk) as port:
        outcome = run_guest(rawsock, "byte-reader", "127.0.0.1", str(port))
        done.set()
    out = fields(outcome)
    assert out["first"] == "h"
    assert outcome.stdout.decode().count("ready userdata=") == 1
    assert (out["userdata"], out["nbytes"]) == ("1", "10")  # readable at once, from the buffer
    assert int(out["waited_ms"]) < 1000
    assert out["peeked"] == "ello"
    assert outcome.stdout.decode().count("rest=ello world\n") == 1
    assert out["then_ready"] == "2"  # nothing left: only the clock fires


def test_cli_ctrl_c_stops_a_spinning_guest(rawsock: Path) -> None:
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "wasiport", "run", str(rawsock), "--no-cache", "--", "spin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        # A default SIGINT disposition, whatever the test runner's shell did.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"spinning=1\n"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130 and b"interrupted" in stderr
