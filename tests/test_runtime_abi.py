"""`wasiport run` against hand-written WAT: bad guest input, exits, traps, variants.

Each module's `_start` makes one or a few host calls and exits with the errno
it got (proc_exit), so every check reads the errno straight from the exit code.
These need no Rust toolchain; the Rust guests are in test_runtime_guests.py.
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import wasmtime

from tests.support.wat import clock_subscription, fd_subscription
from wasiport.errors import UserError
from wasiport.runtime import EXIT_TIMEOUT, EXIT_TRAP, RunConfig, RunOutcome, RunStatus, run_module
from wasiport.runtime.abi import Errno
from wasiport.runtime.linking import ImportSignature, plan_host_functions
from wasiport.runtime.policy import PolicyError, build_policy, parse_allow
from wasiport.runtime.sockets import SOCKET_FD_BASE

# Each test runs twice: with the C host calls in front (hotpath.c), then with Python alone.
pytestmark = pytest.mark.usefixtures("host_call_paths")

IMPORTS = """
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "sock_open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_connect" (func $connect (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_setsockopt" (func $setsockopt (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_getlocaladdr" (func $local (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_getaddrinfo"
    (func $getaddrinfo (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
"""

# Memory map used by the snippets: 0 = new fd, 16 = address struct,
# 32 = address bytes, 64 = iovec, 128 = out values, 1024.. = data.
OPEN_TCP = "(drop (call $open (i32.const 1) (i32.const 2) (i32.const 0)))"
FD = "(i32.load (i32.const 0))"


def run_wat(tmp_path: Path, body: str, *, imports: str = IMPORTS, data: str = "", **config) -> RunOutcome:
    wat = f'(module {imports} (memory (export "memory") 1) {data} (func (export "_start") {body}))'
    path = tmp_path / "guest.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return run_module(path, RunConfig(capture_output=True, **config))


def errno_of(tmp_path: Path, body: str, **config) -> int:
    """Run `body`, which must end by calling $exit with an errno."""
    outcome = run_wat(tmp_path, body, **config)
    assert outcome.status is RunStatus.EXITED, outcome.message
    return outcome.exit_code


# -- wild pointers, misalignment, bad enums, unknown descriptors -----------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("(call $open (i32.const 1) (i32.const 2) (i32.const 0xFFFFFFF0))", Errno.FAULT),
        ("(call $open (i32.const 1) (i32.const 2) (i32.const 65534))", Errno.ADDRNOTAVAIL),  # misaligned
        ("(call $open (i32.const 1) (i32.const 2) (i32.const 65536))", Errno.FAULT),  # just past the end
        ("(call $open (i32.const 9) (i32.const 2) (i32.const 0))", Errno.INVAL),  # no such family
        ("(call $open (i32.const 1) (i32.const 7) (i32.const 0))", Errno.INVAL),  # no such socket type
        ("(call $open (i32.const 3) (i32.const 2) (i32.const 0))", Errno.NOSYS),  # AF_UNIX is not allowed
        ("(call $open (i32.const 1) (i32.const 2) (i32.const 0))", Errno.SUCCESS),
    ],
)
def test_sock_open_checks_pointers_and_enums(tmp_path: Path, call: str, expected: int) -> None:
    assert errno_of(tmp_path, f"(call $exit {call})") == expected


def test_new_socket_descriptors_come_from_the_disjoint_range(tmp_path: Path) -> None:
    body = f"{OPEN_TCP} (call $exit (i32.eq {FD} (i32.const {SOCKET_FD_BASE})))"
    assert errno_of(tmp_path, body) == 1


def test_unknown_descriptor_is_badf_and_stdout_is_notsock(tmp_path: Path) -> None:
    iovec = "(i32.store (i32.const 64) (i32.const 1024)) (i32.store (i32.const 68) (i32.const 16))"
    recv = "(call $recv (i32.const {fd}) (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132))"
    assert errno_of(tmp_path, f"{iovec} (call $exit {recv.format(fd=424242)})") == Errno.BADF
    assert errno_of(tmp_path, f"{iovec} (call $exit {recv.format(fd=1)})") == Errno.NOTSOCK


def test_memory_is_checked_before_the_descriptor_as_in_wasmedge(tmp_path: Path) -> None:
    # A wild iovec on an unknown fd: WasmEdge validates memory first, so FAULT, not BADF.
    wild = "(i32.store (i32.const 64) (i32.const 0x7FFFFFF0)) (i32.store (i32.const 68) (i32.const 16))"
    call = "(call $recv (i32.const 424242) (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132))"
    assert errno_of(tmp_path, f"{wild} (call $exit {call})") == Errno.FAULT


@pytest.mark.parametrize(
    ("setup", "call", "expected"),
    [
        # iovec array itself outside memory
        ("", "(call $recv {fd} (i32.const 65532) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132))", Errno.FAULT),
        # iovec pointing past the end
        (
            "(i32.store (i32.const 64) (i32.const 65000)) (i32.store (i32.const 68) (i32.const 1000))",
            "(call $recv {fd} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132))",
            Errno.FAULT,
        ),
        # misaligned out-pointers
        ("", "(call $recv {fd} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 129) (i32.const 132))", Errno.ADDRNOTAVAIL),
        ("", "(call $recv {fd} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 133))", Errno.ADDRNOTAVAIL),
        # bad flags and too many iovecs
        ("", "(call $recv {fd} (i32.const 64) (i32.const 1) (i32.const 8) (i32.const 128) (i32.const 132))", Errno.INVAL),
        ("", "(call $recv {fd} (i32.const 64) (i32.const 2000) (i32.const 0) (i32.const 128) (i32.const 132))", Errno.INVAL),
        ("", "(call $send {fd} (i32.const 64) (i32.const 1) (i32.const 1) (i32.const 128))", Errno.INVAL),
        ("", "(call $shutdown {fd} (i32.const 4))", Errno.INVAL),
        ("", "(call $setsockopt {fd} (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 4))", Errno.INVAL),
        ("", "(call $setsockopt {fd} (i32.const 0) (i32.const 0) (i32.const 65534) (i32.const 4))", Errno.FAULT),
        # connect: address struct outside memory, then a 5-byte address
        ("", "(call $connect {fd} (i32.const 65532) (i32.const 80))", Errno.FAULT),
        (
            "(i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 5))",
            "(call $connect {fd} (i32.const 16) (i32.const 80))",
            Errno.INVAL,
        ),
        # V1 getlocaladdr wants a 4- or 16-byte buffer
        (
            "(i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 8))",
            "(call $local {fd} (i32.const 16) (i32.const 128) (i32.const 132))",
            Errno.INVAL,
        ),
        # a socket that is not connected has no data to receive
        (
            "(i32.store (i32.const 64) (i32.const 1024)) (i32.store (i32.const 68) (i32.const 16))",
            "(call $recv {fd} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 132))",
            Errno.NOTCONN,
        ),
    ],
)
def test_bad_input_on_a_real_socket_gets_an_errno(tmp_path: Path, setup: str, call: str, expected: int) -> None:
    body = f"{OPEN_TCP} {setup} (call $exit {call.format(fd=FD)})"
    assert errno_of(tmp_path, body) == expected


@pytest.mark.parametrize(
    ("setup", "max_len", "expected"),
    [
        ("", 0, Errno.AINONAME),  # empty node and service
        ("(i32.store8 (i32.const 1024) (i32.const 0x61))", 0, Errno.AIMEMORY),  # no room for a result
        ("(i32.store8 (i32.const 1024) (i32.const 0x61)) (i32.store16 (i32.const 256) (i32.const 0x100))", 1, Errno.AIBADFLAG),
        ("(i32.store8 (i32.const 1024) (i32.const 0x61)) (i32.store8 (i32.const 258) (i32.const 9))", 1, Errno.AIFAMILY),
    ],
)
def test_getaddrinfo_validates_its_hints(tmp_path: Path, setup: str, max_len: int, expected: int) -> None:
    node_len = 1 if setup else 0
    call = (
        f"(call $getaddrinfo (i32.const 1024) (i32.const {node_len}) (i32.const 1040) (i32.const 0)"
        f" (i32.const 256) (i32.const 300) (i32.const {max_len}) (i32.const 304))"
    )
    assert errno_of(tmp_path, f"{setup} (call $exit {call})") == expected


def test_misaligned_fdstat_and_poll_pointers_trap_as_in_both_runtimes(tmp_path: Path) -> None:
    fdstat = run_wat(tmp_path, "(call $exit (call $fdstat (i32.const 1) (i32.const 4)))")
    assert fdstat.status is RunStatus.TRAPPED and fdstat.exit_code == EXIT_TRAP
    assert "not 8-byte aligned" in fdstat.message
    poll = run_wat(tmp_path, "(call $exit (call $poll (i32.const 4) (i32.const 512) (i32.const 1) (i32.const 600)))")
    assert poll.status is RunStatus.TRAPPED and "misaligned" in poll.message


def test_poll_without_subscriptions_is_inval_and_a_huge_count_is_fault(tmp_path: Path) -> None:
    # mio_wasi polls with nothing registered when a tokio_wasi runtime has no sockets left, and
    # relies on INVAL (not a wait forever) to return from its park.
    assert errno_of(tmp_path, "(call $exit (call $poll (i32.const 512) (i32.const 1024) (i32.const 0) (i32.const 2048)))") == Errno.INVAL
    assert errno_of(tmp_path, "(call $exit (call $poll (i32.const 512) (i32.const 1024) (i32.const 0x7FFFFFFF) (i32.const 2048)))") == Errno.FAULT


def test_poll_on_an_unknown_descriptor_next_to_a_socket_is_an_event_error(tmp_path: Path) -> None:
    """A reactor that polls a descriptor it already closed gets BADF in that event at once,
    first, with whatever the socket beside it reports: no wait, no trap."""
    subscriptions = (
        "(i64.store (i32.const 512) (i64.const 1)) (i32.store8 (i32.const 520) (i32.const 1))"
        f" (i32.store (i32.const 528) {FD})"  # FD_READ on the (silent) socket
        " (i64.store (i32.const 560) (i64.const 2)) (i32.store8 (i32.const 568) (i32.const 1))"
        " (i32.store (i32.const 576) (i32.const 0x70000000))"  # FD_READ on no descriptor
    )
    body = (
        f"{OPEN_TCP} {subscriptions}"
        " (drop (call $poll (i32.const 512) (i32.const 1024) (i32.const 2) (i32.const 2048)))"
        # exit with 100 * events + 10 * (userdata of the first) + its error
        " (call $exit (i32.add (i32.mul (i32.load (i32.const 2048)) (i32.const 100))"
        " (i32.add (i32.mul (i32.wrap_i64 (i64.load (i32.const 1024))) (i32.const 10)) (i32.load16_u (i32.const 1032)))))"
    )
    code = errno_of(tmp_path, body)
    # an unconnected TCP socket reports a hang-up on Linux, so it may come second
    assert code % 100 == 20 + Errno.BADF and code // 100 in (1, 2)


def test_fdstat_out_of_bounds_is_fault(tmp_path: Path) -> None:
    assert errno_of(tmp_path, "(call $exit (call $fdstat (i32.const 1) (i32.const 65528)))") == Errno.FAULT


def test_buffers_in_memory_grown_at_run_time_are_usable(tmp_path: Path) -> None:
    # The host caches the memory size; an address beyond the original size
    # must work once the guest has grown its memory.
    body = (
        "(drop (memory.grow (i32.const 4)))"
        "(call $exit (call $open (i32.const 1) (i32.const 2) (i32.const 200000)))"
    )
    assert errno_of(tmp_path, body) == Errno.SUCCESS


# -- forwarding to wasmtime's WASI for descriptors that are not sockets ------------


STDOUT_FDSTAT = """
  (drop (call $fdstat (i32.const 1) (i32.const 512)))
  (i32.store (i32.const 600) (i32.const 512))
  (i32.store (i32.const 604) (i32.const 24))
  (drop (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 608)))
  (call $exit (call $fdstat (i32.const 99) (i32.const 512)))
"""
WRITE_IMPORT = '(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))'


def test_fdstat_of_other_descriptors_is_wasmtimes_own(tmp_path: Path) -> None:
    # With socket imports fd_fdstat_get is shadowed and forwarded through the
    # bridge; without them it is wasmtime's. Both must print the same bytes.
    shadowed = run_wat(tmp_path, STDOUT_FDSTAT, imports=IMPORTS + WRITE_IMPORT)
    plain_imports = "\n".join(
        line for line in (IMPORTS + WRITE_IMPORT).splitlines() if '"sock_' not in line and "(func $getaddrinfo" not in line
    )
    plain = run_wat(tmp_path, STDOUT_FDSTAT, imports=plain_imports)
    assert len(shadowed.stdout) == 24
    assert shadowed.stdout == plain.stdout
    assert shadowed.exit_code == plain.exit_code == Errno.BADF


# -- exits, traps and timeouts ----------------------------------------------------------


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (3, 3), (125, 125), (200, 200), (256, 0)])
def test_proc_exit_code_becomes_the_exit_code(tmp_path: Path, code: int, expected: int) -> None:
    # wasmtime alone rejects codes >= 126; WasmEdge passes any u32 on (mod 256 in a shell).
    outcome = run_wat(tmp_path, f"(call $exit (i32.const {code}))")
    assert (outcome.status, outcome.exit_code) == (RunStatus.EXITED, expected)


def test_returning_from_start_exits_zero(tmp_path: Path) -> None:
    assert run_wat(tmp_path, "(nop)").exit_code == 0


def test_trap_reports_the_wasm_backtrace(tmp_path: Path) -> None:
    body = "(call $deep)"
    data = '(func $deep (call $deeper)) (func $deeper unreachable)'
    outcome = run_wat(tmp_path, body, data=data)
    assert outcome.status is RunStatus.TRAPPED and outcome.exit_code == EXIT_TRAP
    assert "wasm backtrace" in outcome.message and "deeper" in outcome.message
    assert "unreachable" in outcome.message


def test_timeout_stops_a_spinning_guest(tmp_path: Path) -> None:
    outcome = run_wat(tmp_path, "(loop $forever (br $forever))", timeout=0.5)
    assert (outcome.status, outcome.exit_code) == (RunStatus.TIMED_OUT, EXIT_TIMEOUT)
    assert "--timeout 0.5" in outcome.message
    assert outcome.timings.total < 10


def test_calling_an_import_nobody_provides_traps_with_its_name(tmp_path: Path) -> None:
    imports = IMPORTS + '(import "wasi_snapshot_preview1" "epoll_oneoff" (func $epoll (param i32 i32 i32 i32) (result i32)))'
    quiet = run_wat(tmp_path, "(call $exit (i32.const 5))", imports=imports)
    assert quiet.exit_code == 5 and quiet.unsupported_imports == ["wasi_snapshot_preview1.epoll_oneoff"]
    called = run_wat(tmp_path, "(drop (call $epoll (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))", imports=imports)
    assert called.status is RunStatus.TRAPPED and "epoll_oneoff" in called.message


def test_host_calls_work_through_the_public_wasmtime_api_too(tmp_path: Path) -> None:
    body = f"{OPEN_TCP} (call $exit (call $shutdown {FD} (i32.const 4)))"
    assert errno_of(tmp_path, body, fast_host_calls=False) == Errno.INVAL
    exits = run_wat(tmp_path, "(call $exit (i32.const 201))", fast_host_calls=False)
    assert exits.exit_code == 201


def test_modules_that_cannot_run_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        run_module(tmp_path / "missing.wasm")
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"not wasm")
    with pytest.raises(UserError, match="not a WebAssembly module"):
        run_module(garbage)
    reactor = tmp_path / "reactor.wasm"
    reactor.write_bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_initialize")))'))
    with pytest.raises(UserError, match="no _start"):
        run_module(reactor)
    bad_variant = tmp_path / "bad.wasm"
    bad_variant.write_bytes(
        wasmtime.wat2wasm(
            '(module (import "wasi_snapshot_preview1" "sock_accept" (func (param i32) (result i32)))'
            ' (memory (export "memory") 1) (func (export "_start")))'
        )
    )
    with pytest.raises(UserError, match="sock_accept"):
        run_module(bad_variant)


# -- variant selection and policy, as data --------------------------------------------


def _sig(name: str, nparams: int, results: tuple[str, ...] = ("i32",)) -> ImportSignature:
    return ImportSignature("wasi_snapshot_preview1", name, ("i32",) * nparams, results)


def test_variants_follow_the_import_types() -> None:
    planned = plan_host_functions(
        [_sig("sock_accept", 2), _sig("sock_recv_from", 8), _sig("sock_getpeeraddr", 4), _sig("sock_getlocaladdr", 3)]
    )
    assert {f.name: f.method for f in planned} == {
        "sock_accept": "sock_accept_v1",
        "sock_recv_from": "sock_recv_from_v2",
        "sock_getpeeraddr": "sock_getpeeraddr_v1",
        "sock_getlocaladdr": "sock_getlocaladdr_v2",
    }


def test_descriptor_functions_are_shadowed_only_for_socket_users() -> None:
    common = [_sig("fd_close", 1), _sig("poll_oneoff", 4), _sig("proc_exit", 1, ())]
    without = {f.name for f in plan_host_functions(common)}
    with_sockets = {f.name for f in plan_host_functions([*common, _sig("sock_open", 3)])}
    assert without == {"proc_exit"}
    assert with_sockets == {"proc_exit", "fd_close", "poll_oneoff", "sock_open"}


def test_policy_defaults_to_loopback_and_parses_allow_rules() -> None:
    import ipaddress

    ip = ipaddress.ip_address
    policy = build_policy(["192.0.2.7:6379", "10.0.0.0/8:*", "[2001:db8::1]:443", "*:53"])
    assert policy.allows(ip("127.0.0.1"), 1) and policy.allows(ip("::1"), 80)
    assert policy.allows(ip("::ffff:127.0.0.1"), 80)  # mapped loopback
    assert policy.allows(ip("192.0.2.7"), 6379) and not policy.allows(ip("192.0.2.7"), 6380)
    assert policy.allows_host(ip("192.0.2.7"))  # resolution only needs the host
    assert policy.allows(ip("10.9.8.7"), 1) and not policy.allows(ip("11.0.0.1"), 1)
    assert policy.allows(ip("2001:db8::1"), 443)
    assert policy.allows(ip("198.51.100.1"), 53) and not policy.allows(ip("198.51.100.1"), 54)
    assert not build_policy().allows(ip("0.0.0.0"), 8080)  # binding every interface needs a rule
    assert parse_allow("localhost:*")  # names resolve when the policy is built
    for bad in ("nohost", "1.2.3.4:99999", "::1:80", "[::1]80"):
        with pytest.raises(PolicyError):
            parse_allow(bad)


def test_errno_mapping_from_host_errors() -> None:
    import errno

    from wasiport.runtime.abi import errno_from_gai, errno_from_os

    assert errno_from_os(errno.ECONNREFUSED) == Errno.CONNREFUSED
    assert errno_from_os(errno.EAGAIN) == errno_from_os(errno.EWOULDBLOCK) == Errno.AGAIN
    assert errno_from_os(errno.E2BIG) == Errno.TOOBIG
    assert errno_from_os(errno.ECONNRESET) == Errno.CONNRESET
    assert errno_from_os(0) == Errno.SUCCESS
    assert errno_from_os(None) == errno_from_os(99999) == Errno.IO
    assert errno_from_gai(socket.EAI_NONAME) == Errno.AINONAME


# -- arguments, environment and directories ---------------------------------------------

WASI_CONTEXT_IMPORTS = """
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
"""


def test_args_env_and_dirs_reach_the_guest(tmp_path: Path) -> None:
    def count(call: str, **config) -> int:
        body = f"(drop (call {call} (i32.const 0) (i32.const 8))) (call $exit (i32.load (i32.const 0)))"
        return errno_of(tmp_path, body, imports=WASI_CONTEXT_IMPORTS, **config)

    assert count("$args", args=("a", "b")) == 3  # the program name, then the arguments
    assert count("$environ", env=(("A", "1"), ("B", "2"))) == 2
    prestat = "(call $exit (call $prestat (i32.const 3) (i32.const 0)))"
    assert errno_of(tmp_path, prestat, imports=WASI_CONTEXT_IMPORTS, dirs=((str(tmp_path), "/data"),)) == 0
    assert errno_of(tmp_path, prestat, imports=WASI_CONTEXT_IMPORTS) == Errno.BADF
    with pytest.raises(UserError, match="no such directory"):
        run_wat(tmp_path, "(nop)", imports=WASI_CONTEXT_IMPORTS, dirs=((str(tmp_path / "nope"), "/x"),))


def test_command_line_options_and_guest_arguments() -> None:
    from wasiport.cli import build_parser
    from wasiport.commands.run import _guest_args, parse_dir, parse_env

    parser = build_parser()
    before = parser.parse_args(["run", "--timeout", "2", "--allow", "10.0.0.1:80", "m.wasm", "--", "--flag", "x"])
    assert (_guest_args(before), before.timeout, before.allow) == (["--flag", "x"], 2.0, ["10.0.0.1:80"])
    after = parser.parse_args(["run", "m.wasm", "--env", "K=V", "--no-cache", "--", "exit", "3"])
    assert (_guest_args(after), after.env, after.no_cache) == (["exit", "3"], ["K=V"], True)
    plain = parser.parse_args(["run", "m.wasm", "exit", "3"])
    assert _guest_args(plain) == ["exit", "3"]
    assert parse_env("K=a=b") == ("K", "a=b")
    assert parse_dir("/srv") == ("/srv", "/srv") and parse_dir("/srv:/data") == ("/srv", "/data")
    with pytest.raises(UserError):
        parse_env("novalue")


def test_poll_mixing_a_socket_with_wasmtimes_stdin(tmp_path: Path) -> None:
    # The socket stays silent; stdin (empty, owned by wasmtime) is readable at
    # once. The poll must return wasmtime's stdin event and not the socket.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    body = f"""
      {OPEN_TCP}
      (i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 4))
      (i32.store (i32.const 32) (i32.const 0x0100007F))
      (drop (call $connect {FD} (i32.const 16) (i32.const {port})))
      (i64.store (i32.const 256) (i64.const 1)) (i32.store8 (i32.const 264) (i32.const 1))
      (i32.store (i32.const 272) {FD})
      (i64.store (i32.const 304) (i64.const 2)) (i32.store8 (i32.const 312) (i32.const 1))
      (i32.store (i32.const 320) (i32.const 0))
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 2) (i32.const 640)))
      (call $exit (i32.add (i32.mul (i32.load (i32.const 640)) (i32.const 100)) (i32.load (i32.const 512))))
    """
    try:
        assert errno_of(tmp_path, body) == 102  # one event, for userdata 2
    finally:
        server.close()


def test_cancel_event_stops_the_guest(tmp_path: Path) -> None:

    from wasiport.runtime import EXIT_CANCELLED

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    outcome = run_wat(tmp_path, "(loop $forever (br $forever))", cancel=cancel)
    assert (outcome.status, outcome.exit_code) == (RunStatus.CANCELLED, EXIT_CANCELLED)


# -- poll_oneoff called again and again with the same subscriptions (a reactor's loop) --------

CLOSE_IMPORT = '(import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))'


def test_the_same_poll_after_its_socket_closed_reports_badf(tmp_path: Path) -> None:
    """The host prepares a repeated socket poll once; closing the socket must not leave the
    old preparation in use: the identical second call fails with BADF (wasmtime answers it,
    as the descriptor is no socket any more) instead of reporting the closed socket ready."""
    body = f"""
      {OPEN_TCP}
      {fd_subscription(256, 7, 2, FD)}
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
      (i32.store (i32.const 644) (i32.add (i32.mul (i32.load (i32.const 640)) (i32.const 10))
        (i32.load16_u (i32.const 520))))
      (drop (call $close {FD}))
      (i32.store (i32.const 640) (i32.const 0))
      (i32.store (i32.const 648) (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 640)))
      (call $exit (i32.add (i32.mul (i32.load (i32.const 644)) (i32.const 100))
        (i32.add (i32.mul (i32.load (i32.const 648)) (i32.const 10)) (i32.load (i32.const 640)))))
    """
    code = errno_of(tmp_path, body, imports=IMPORTS + CLOSE_IMPORT)
    # first call: one event, no error (an unconnected TCP socket is writable, with a hang-up, on
    # Linux); second call: BADF as the call's result and no event. (Exit codes are modulo 256.)
    assert code == (1000 + Errno.BADF * 10) % 256


def test_the_same_poll_again_sees_data_that_arrived_in_between(tmp_path: Path) -> None:
    """First call: only the 10 ms clock fires. The guest sends a byte, the peer answers, and the
    identical second call reports the socket readable with the byte count (the clock is 10 s)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            if conn.recv(1):
                conn.sendall(b"yz")


    peer = threading.Thread(target=answer, daemon=True)
    peer.start()
    subscriptions = fd_subscription(256, 5, 1, FD) + clock_subscription(304, 9, 10_000_000)
    body = f"""
      {OPEN_TCP}
      (i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 4))
      (i32.store (i32.const 32) (i32.const 0x0100007F))
      (drop (call $connect {FD} (i32.const 16) (i32.const {port})))
      {subscriptions}
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 2) (i32.const 640)))
      (i32.store (i32.const 644) (i32.wrap_i64 (i64.load (i32.const 512))))
      (i64.store (i32.const 328) (i64.const 10000000000))
      (i32.store (i32.const 64) (i32.const 1024)) (i32.store (i32.const 68) (i32.const 1))
      (drop (call $send {FD} (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 128)))
      (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 2) (i32.const 640)))
      (call $exit (i32.add (i32.mul (i32.load (i32.const 644)) (i32.const 20))
        (i32.add (i32.mul (i32.wrap_i64 (i64.load (i32.const 512))) (i32.const 2))
                 (i32.wrap_i64 (i64.load (i32.const 528))))))
    """
    try:
        code = errno_of(tmp_path, body)
    finally:
        server.close()
    # first: the clock (userdata 9); second: the socket (userdata 5) with 1 or 2 bytes ready
    assert code in (9 * 20 + 5 * 2 + 1, 9 * 20 + 5 * 2 + 2)


def test_a_reactor_re_asking_about_a_writable_socket_still_hears_of_new_data(tmp_path: Path) -> None:
    """mio_wasi's loop: read + write subscriptions on a connected socket, polled again and again
    without any socket call in between. The host may hold such a repeated "writable" answer back
    while nothing changes (so an idle reactor does not spin), but every answer is still the
    level-triggered truth, and data that arrives ends the wait: the loop sees the socket readable
    with the peer's 3 bytes, beside its writability."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send_later() -> None:
        conn, _ = server.accept()
        with conn:
            time.sleep(0.05)
            conn.sendall(b"abc")
            try:
                conn.recv(1)  # until the guest exits
            except OSError:
                pass


    peer = threading.Thread(target=send_later, daemon=True)
    peer.start()
    subscriptions = fd_subscription(256, 5, 1, FD) + fd_subscription(304, 5, 2, FD)
    readable_at = "(i32.or (i32.eq (i32.load8_u (i32.const 522)) (i32.const 1)) (i32.and" \
        " (i32.eq (i32.load (i32.const 640)) (i32.const 2)) (i32.eq (i32.load8_u (i32.const 554)) (i32.const 1))))"
    body = f"""
      (local $polls i32)
      {OPEN_TCP}
      (i32.store (i32.const 16) (i32.const 32)) (i32.store (i32.const 20) (i32.const 4))
      (i32.store (i32.const 32) (i32.const 0x0100007F))
      (drop (call $connect {FD} (i32.const 16) (i32.const {port})))
      {subscriptions}
      (loop $again
        (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 2) (i32.const 640)))
        (local.set $polls (i32.add (local.get $polls) (i32.const 1)))
        (if (i32.eq (local.get $polls) (i32.const 100000000)) (then (call $exit (i32.const 1))))
        (br_if $again (i32.eqz {readable_at})))
      (call $exit (i32.add (i32.const 100) (i32.add (i32.load (i32.const 640))
        (i32.wrap_i64 (select (i64.load (i32.const 528)) (i64.load (i32.const 560))
          (i32.eq (i32.load8_u (i32.const 522)) (i32.const 1)))))))
    """
    try:
        code = errno_of(tmp_path, body)
    finally:
        server.close()
    assert code == 100 + 2 + 3  # two events (readable, writable), 3 bytes readable
