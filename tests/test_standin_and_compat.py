"""The Rust side of a port, built with Debian's offline toolchain: the real
`wasmedge_wasi_socket` 0.5.4 and 0.4.3 from crates.io (vendored for rustc 1.63), the compat
templates that a port copies into a crate as `src/wasiport_net.rs`, and the corpus samples.

Builds prove the templates offer std's API (every std::net call site of the
`net-surface` sample compiles against them unchanged), the import sections
prove a port reaches WasmEdge's socket host functions, and the samples run
natively against real servers so that their output can be trusted when a
ported build is run.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.offline_cargo import OfflineCargo
from wasiport.port.plan import without_unsafe_regions
from wasiport.wasm import read_module

REPO = Path(__file__).resolve().parent.parent
COMPAT = REPO / "rules" / "wasmedge" / "compat"
SAMPLES = REPO / "corpus" / "samples"
DEGRADATIONS = tomllib.loads((COMPAT / "DEGRADATIONS.toml").read_text())

GATE = 'all(target_os = "wasi", not(target_env = "p2"))'
WASI = "wasi_snapshot_preview1"
WASM_TARGET = "wasm32-wasi" if Path("/usr/lib/rustlib/wasm32-wasi").is_dir() else "wasm32-wasip1"
SAMPLE_NAMES = ("redis-sample", "redis-consumer", "http-hello", "udp-ping", "tcp-echo", "net-surface")
RUN_TIMEOUT = 60


@dataclass(frozen=True)
class Api:
    """One wasmedge_wasi_socket API generation: its release and its template."""

    version: str  # key in DEGRADATIONS.toml
    requirement: str  # what a port writes into Cargo.toml
    template: Path
    recv_from_params: int  # sock_recv_from V2 (8) or V1 (7)


API_0_5 = Api("0.5", DEGRADATIONS["api"]["0.5"]["requirement"], COMPAT / "wasiport_net.rs", 8)
API_0_4 = Api("0.4", DEGRADATIONS["api"]["0.4"]["requirement"], COMPAT / "wasiport_net_0_4.rs", 7)
APIS = (API_0_5, API_0_4)


# ------------------------------------------------------------------ helpers


def cargo_build(offline: OfflineCargo, crate: Path, *, wasm: bool) -> subprocess.CompletedProcess[str]:
    args = ["/usr/bin/cargo", "build", "--quiet"] + (["--target", WASM_TARGET] if wasm else [])
    return subprocess.run(
        args, cwd=crate, env=offline.env(), capture_output=True, text=True, timeout=600
    )


def build_ok(offline: OfflineCargo, crate: Path, *, wasm: bool) -> None:
    result = cargo_build(offline, crate, wasm=wasm)
    assert result.returncode == 0, f"cargo build failed in {crate}:\n{result.stderr}"


def artefact(offline: OfflineCargo, binary: str, *, wasm: bool) -> Path:
    if wasm:
        return offline.target_dir / WASM_TARGET / "debug" / f"{binary}.wasm"
    return offline.target_dir / "debug" / binary


def socket_imports(wasm: Path) -> dict[str, int]:
    """WasmEdge-facing function imports of a module: name -> parameter count."""
    return {
        imp.name: len(imp.signature.params)
        for imp in read_module(wasm).imports
        if imp.module == WASI and imp.kind == "func" and imp.signature is not None
        and (imp.name.startswith("sock_") or imp.name.endswith("poll_oneoff"))
    }


def copy_crate(src: Path, dest_parent: Path) -> Path:
    dest = dest_parent / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return dest


def declare_compat_module(crate_root: Path) -> None:
    """Declare `mod wasiport_net;` under the gate, after the root's inner attributes and docs."""
    lines = crate_root.read_text().split("\n")
    first_item = next(
        i for i, line in enumerate(lines) if line.strip() and not line.startswith(("//!", "#!["))
    )
    lines[first_item:first_item] = [f"#[cfg({GATE})]", "mod wasiport_net;", ""]
    crate_root.write_text("\n".join(lines))


_STD_NET_USE = re.compile(r"^use std::net::(\{[^}]*\}|\w+);", re.MULTILINE)


def switch_std_net_imports(source: Path) -> int:
    """Gate each `use std::net::...;`: std natively, the compat module on WasmEdge."""

    def gated(match: re.Match[str]) -> str:
        items = match.group(1)
        compat_items = items.replace("{self,", "{self as net,", 1)
        return (
            f"#[cfg(not({GATE}))]\nuse std::net::{items};\n"
            f"#[cfg({GATE})]\nuse crate::wasiport_net::{compat_items};"
        )

    text, count = _STD_NET_USE.subn(gated, source.read_text())
    source.write_text(text)
    return count


def hand_port(crate: Path, api: Api) -> None:
    """What `wasiport apply` does, by hand: a gated dependency, the compat
    module copied in and declared under the gate, the std::net imports switched.
    Call sites stay as they are."""
    manifest = crate / "Cargo.toml"
    manifest.write_text(
        manifest.read_text()
        + "\n[target.'cfg(target_os = \"wasi\")'.dependencies]\n"
        + f'wasmedge_wasi_socket = "{api.requirement}"\n'
    )
    shutil.copy(api.template, crate / "src" / "wasiport_net.rs")
    root = crate / "src" / ("lib.rs" if (crate / "src" / "lib.rs").exists() else "main.rs")
    declare_compat_module(root)
    sources = [path for path in (crate / "src").rglob("*.rs") if path.name != "wasiport_net.rs"]
    switched = sum(switch_std_net_imports(path) for path in sources)
    assert switched, f"no `use std::net` line to switch in {crate}"


def without_unsafe_code(template_text: str) -> str:
    """The template as apply writes it into a crate that forbids unsafe code."""
    begin, end = DEGRADATIONS["unsafe-region"]
    lines = template_text.splitlines()
    assert (lines.count(begin), lines.count(end)) == (1, 1), "one unsafe region, marked on lines of its own"
    stripped = without_unsafe_regions(template_text)
    assert not re.search(r"\bunsafe\s*(\{|fn\b)|unsafe_code", stripped)
    return stripped


PROBE_MAIN = """\
{attributes}
#[cfg({gate})]
mod wasiport_net;

#[cfg(not({gate}))]
use std::net::{{self, TcpListener, TcpStream, ToSocketAddrs, UdpSocket}};
#[cfg({gate})]
use crate::wasiport_net::{{self as net, TcpListener, TcpStream, ToSocketAddrs, UdpSocket}};
use std::io::{{Read, Write}};
use std::time::Duration;

fn main() -> std::io::Result<()> {{
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut client = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    let (mut server, _peer) = listener.accept()?;
    client.set_read_timeout(Some(Duration::from_secs(1)))?;
    client.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf)?;
    client.shutdown(net::Shutdown::Both)?;
    let udp = UdpSocket::bind(("127.0.0.1", 0))?;
    udp.set_read_timeout(Some(Duration::from_secs(5)))?;
    udp.send_to(&buf, udp.local_addr()?)?;
    let (received, _from) = udp.recv_from(&mut buf)?;
    assert_eq!(&buf[..received], b"ping");
    let _ = "localhost:80".to_socket_addrs()?;
    Ok(())
}}
"""


def write_probe(
    parent: Path, name: str, *, edition: str, api: Api, attributes: str = "", template: str | None = None
) -> Path:
    """A small binary using the compat module as a port would (`template` overrides the api's)."""
    crate = parent / name
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "{edition}"\n\n'
        "[target.'cfg(target_os = \"wasi\")'.dependencies]\n"
        f'wasmedge_wasi_socket = "{api.requirement}"\n'
    )
    (crate / "src" / "main.rs").write_text(PROBE_MAIN.format(gate=GATE, attributes=attributes))
    module = template if template is not None else api.template.read_text()
    (crate / "src" / "wasiport_net.rs").write_text(module)
    return crate


# ------------------------------------------------------- the real socket crate


@pytest.mark.cargo
@pytest.mark.parametrize("version", ["0.5.4", "0.4.3"])
def test_the_real_socket_crate_builds_for_wasm_offline(offline_cargo: OfflineCargo, tmp_path: Path, version: str) -> None:
    """The releases from crates.io that a port for rustc 1.63 depends on, from the directory source."""
    crate = copy_crate(offline_cargo.registry / f"wasmedge_wasi_socket-{version}", tmp_path)
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())["package"]
    assert (manifest["name"], manifest["version"]) == ("wasmedge_wasi_socket", version)
    build_ok(offline_cargo, crate, wasm=True)


# ---------------------------------------------------------- compat templates


# The strictest lint settings crates commonly use; the module must not trip them.
STRICT_LINTS = {"2015": "#![deny(warnings)]", "2018": "#![deny(warnings, rust_2018_idioms)]"}
STRICT_LINTS["2021"] = STRICT_LINTS["2018"]


@pytest.mark.cargo
@pytest.mark.parametrize("api", APIS, ids=lambda api: api.version)
@pytest.mark.parametrize("edition", ["2015", "2018", "2021"])
def test_compat_template_builds_natively_and_imports_wasmedge_sockets(
    offline_cargo: OfflineCargo, tmp_path: Path, api: Api, edition: str
) -> None:
    name = f"probe-{api.version.replace('.', '-')}-e{edition}"
    crate = write_probe(tmp_path, name, edition=edition, api=api, attributes=STRICT_LINTS[edition])

    # Natively the module is cfg'd out and std does the work.
    build_ok(offline_cargo, crate, wasm=False)
    native = run_sample(artefact(offline_cargo, name, wasm=False))
    assert native.returncode == 0, native.stderr

    build_ok(offline_cargo, crate, wasm=True)
    imports = socket_imports(artefact(offline_cargo, name, wasm=True))
    needed = {"sock_open", "sock_connect", "sock_bind", "sock_listen", "sock_send", "sock_recv"}
    needed |= {"sock_send_to", "sock_getaddrinfo", "sock_setsockopt", "sock_getsockopt", "poll_oneoff"}
    assert needed <= set(imports), f"missing: {sorted(needed - set(imports))}"
    # The host variant WasmEdge binds depends on these parameter counts.
    assert imports["sock_accept"] == 2
    assert imports["sock_getlocaladdr"] == 4
    assert imports["sock_getpeeraddr"] == 4
    assert imports["sock_recv_from"] == api.recv_from_params


@pytest.mark.cargo
def test_each_template_needs_its_own_api(offline_cargo: OfflineCargo, tmp_path: Path) -> None:
    # The 0.5 template reads options through `as_ref()`, which 0.4.3 lacks.
    mismatched = Api("0.4", API_0_4.requirement, API_0_5.template, 7)
    crate = write_probe(tmp_path, "probe-mismatch", edition="2021", api=mismatched)
    result = cargo_build(offline_cargo, crate, wasm=True)
    assert result.returncode != 0
    assert "no method named `as_ref`" in result.stderr


@pytest.mark.cargo
@pytest.mark.parametrize("api", APIS, ids=lambda api: api.version)
def test_template_fits_crates_that_restrict_unsafe_code(
    offline_cargo: OfflineCargo, tmp_path: Path, api: Api
) -> None:
    suffix = api.version.replace(".", "-")
    # `deny` can be overridden by the region's own `allow(unsafe_code)`...
    denying = write_probe(
        tmp_path, f"probe-deny-{suffix}", edition="2021", api=api, attributes="#![deny(unsafe_code)]"
    )
    build_ok(offline_cargo, denying, wasm=True)
    # ...`forbid` cannot, so apply leaves the region out.
    forbidding = write_probe(
        tmp_path, f"probe-forbid-{suffix}", edition="2018", api=api,
        attributes="#![forbid(unsafe_code)]", template=without_unsafe_code(api.template.read_text()),
    )
    build_ok(offline_cargo, forbidding, wasm=True)
    assert "sock_connect" in socket_imports(artefact(offline_cargo, f"probe-forbid-{suffix}", wasm=True))


_IMPL_BLOCK = re.compile(r"^impl (\w+) \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_PUB_FN = re.compile(r"^    pub fn (\w+)\b(.*?)^    \}", re.MULTILINE | re.DOTALL)
# Entries for trait impls rather than inherent methods.
_TRAIT_ENTRIES = {"read", "write", "as_raw_fd", "into_raw_fd", "from_raw_fd", "as_fd"}


def inherent_methods(template: str) -> dict[str, str]:
    """`Type::method` -> body, for the std socket types' inherent `pub fn`s."""
    methods = {}
    for block in _IMPL_BLOCK.finditer(template):
        if block.group(1) in ("TcpStream", "TcpListener", "UdpSocket"):
            for method in _PUB_FN.finditer(block.group(2)):
                methods[f"{block.group(1)}::{method.group(1)}"] = method.group(2)
    return methods


@pytest.mark.parametrize("api", APIS, ids=lambda api: api.version)
def test_degradations_describe_every_template_method(api: Api) -> None:
    template = api.template.read_text()
    methods = inherent_methods(template)
    entries = {
        name: per_api[api.version]
        for name, per_api in DEGRADATIONS["method"].items()
        if name.split("::")[1] not in _TRAIT_ENTRIES and not name.startswith("ToSocketAddrs")
    }
    assert set(methods) == set(entries)
    for name, entry in entries.items():
        returns_unsupported = re.search(r"\bErr\(unsupported\(", methods[name]) is not None
        assert returns_unsupported == (entry["status"] == "unsupported"), name
        if entry.get("unsafe"):
            # Served from the unsafe region, with a safe fallback outside it.
            assert "peek_bytes" in methods[name], name
            assert "peek_bytes" in without_unsafe_code(template)
    statuses = {entry["status"] for per_api in DEGRADATIONS["method"].values() for entry in per_api.values()}
    assert statuses <= {"kept", "degraded", "unsupported"}


# ------------------------------------------------------------------ samples


@pytest.fixture(scope="module")
def sample_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the samples per module, so their native builds are made once."""
    parent = tmp_path_factory.mktemp("samples")
    for name in SAMPLE_NAMES:
        copy_crate(SAMPLES / name, parent)
    return parent


@pytest.mark.cargo
@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_sample_builds_natively(offline_cargo: OfflineCargo, sample_copies: Path, sample: str) -> None:
    build_ok(offline_cargo, sample_copies / sample, wasm=False)


@dataclass(frozen=True)
class Port:
    """A hand-ported sample: its wasm module (copied out of the shared target dir)."""

    api: Api
    module: Path


def build_port(offline: OfflineCargo, crate: Path, binary: str, api: Api, keep_in: Path) -> Port:
    """Build a hand-ported crate for wasm and natively; keep the module, since
    the next build of a crate with the same name overwrites the artefact."""
    build_ok(offline, crate, wasm=True)
    module = keep_in / f"{binary}-{api.version}.wasm"
    shutil.copy(artefact(offline, binary, wasm=True), module)
    # The port keeps the native build working.
    build_ok(offline, crate, wasm=False)
    return Port(api, module)


@pytest.fixture(scope="module")
def ported_redis_consumer(offline_cargo: OfflineCargo, tmp_path_factory: pytest.TempPathFactory) -> Port:
    parent = tmp_path_factory.mktemp("redis-port")
    library = copy_crate(SAMPLES / "redis-sample", parent)
    consumer = copy_crate(SAMPLES / "redis-consumer", parent)
    hand_port(library, API_0_5)
    return build_port(offline_cargo, consumer, "redis-consumer", API_0_5, parent)


@pytest.fixture(scope="module", params=APIS, ids=lambda api: api.version)
def ported_net_surface(
    request: pytest.FixtureRequest, offline_cargo: OfflineCargo, tmp_path_factory: pytest.TempPathFactory
) -> Port:
    api: Api = request.param
    parent = tmp_path_factory.mktemp(f"net-surface-{api.version}")
    crate = copy_crate(SAMPLES / "net-surface", parent)
    hand_port(crate, api)
    return build_port(offline_cargo, crate, "net-surface", api, parent)


@pytest.mark.cargo
def test_hand_ported_redis_consumer_imports_wasmedge_sockets(ported_redis_consumer: Port) -> None:
    imports = socket_imports(ported_redis_consumer.module)
    used = {"sock_open", "sock_connect", "sock_send", "sock_recv", "sock_shutdown", "sock_getaddrinfo"}
    assert used | {"sock_setsockopt"} <= set(imports)
    # connect_timeout's emulation polls for writability.
    assert "poll_oneoff" in imports


@pytest.mark.cargo
def test_every_std_net_call_site_compiles_against_the_template(ported_net_surface: Port) -> None:
    # net-surface calls every std::net socket method of Rust 1.63 through the
    # switched imports, so this build is the template's signature check.
    imports = socket_imports(ported_net_surface.module)
    assert imports["sock_recv_from"] == ported_net_surface.api.recv_from_params


# ----------------------------------------------- samples against real servers


@pytest.fixture(scope="module")
def native_samples(offline_cargo: OfflineCargo, sample_copies: Path) -> dict[str, Path]:
    """Native builds of the runnable samples (bins only; redis-sample is a library)."""
    binaries = {}
    for name in SAMPLE_NAMES:
        if name != "redis-sample":
            build_ok(offline_cargo, sample_copies / name, wasm=False)
            binaries[name] = artefact(offline_cargo, name, wasm=False)
    return binaries


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_port() -> Iterator[int]:
    server_binary = shutil.which("redis-server")
    if server_binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [server_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def redis_get(port: int, key: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode())
        reply = b""
        while not reply.endswith(b"\r\n") or reply.count(b"\r\n") < 2:
            chunk = conn.recv(4096)
            assert chunk, "redis closed the connection"
            reply += chunk
    header, body, _ = reply.split(b"\r\n", 2)
    assert header.startswith(b"$")
    return body


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A port whose listen queue is full, so further connects never complete."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def run_sample(
    binary: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


@pytest.mark.cargo
@pytest.mark.redis
def test_redis_consumer_sets_and_gets_natively(
    native_samples: dict[str, Path], redis_port: int, unresponsive_port: int
) -> None:
    consumer = native_samples["redis-consumer"]
    stored = run_sample(
        consumer, "sample:key", "sample value", env={"REDIS_ADDR": f"127.0.0.1:{redis_port}"}
    )
    assert (stored.returncode, stored.stdout) == (0, "sample value\n"), stored.stderr
    assert redis_get(redis_port, "sample:key") == b"sample value"

    by_name = {"REDIS_ADDR": f"localhost:{redis_port}", "REDIS_CONNECT_TIMEOUT_MS": "2000"}
    with_timeout = run_sample(consumer, "k2", "v2", env=by_name)
    assert (with_timeout.returncode, with_timeout.stdout) == (0, "v2\n"), with_timeout.stderr

    refused = run_sample(consumer, env={"REDIS_ADDR": f"127.0.0.1:{free_port()}"})
    assert refused.returncode == 1
    assert "io::ErrorKind::ConnectionRefused" in refused.stderr

    started = time.monotonic()
    stuck = {"REDIS_ADDR": f"127.0.0.1:{unresponsive_port}", "REDIS_CONNECT_TIMEOUT_MS": "300"}
    timed_out = run_sample(consumer, env=stuck)
    assert timed_out.returncode == 1
    assert "io::ErrorKind::TimedOut" in timed_out.stderr
    assert time.monotonic() - started < 10


def start_server(binary: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_listening_port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    assert match, f"unexpected first line {line!r}"
    return int(match.group(1))


@pytest.mark.cargo
def test_http_hello_serves_requests_natively(native_samples: dict[str, Path]) -> None:
    server = start_server(native_samples["http-hello"], "127.0.0.1:0", "2")
    try:
        port = read_listening_port(server)
        bodies = []
        for path in ("/first", "/second/page"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            response = connection.getresponse()
            bodies.append((response.status, response.read()))
            connection.close()
        assert bodies == [(200, b"Hello from /first\n"), (200, b"Hello from /second/page\n")]
        assert server.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        server.kill()
        server.communicate()


@pytest.fixture
def udp_echo_port() -> Iterator[int]:
    """A UDP server that answers each datagram with its upper-case copy."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, sender = server.recvfrom(1500)
            except (TimeoutError, OSError):
                continue
            server.sendto(data.upper(), sender)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.cargo
def test_udp_ping_gets_replies_and_times_out_natively(
    native_samples: dict[str, Path], udp_echo_port: int
) -> None:
    ping = native_samples["udp-ping"]
    replies = run_sample(ping, "localhost", str(udp_echo_port), "3", "2000", "127.0.0.1:0")
    expected = "reply 0: PING 0\nreply 1: PING 1\nreply 2: PING 2\n"
    assert (replies.returncode, replies.stdout) == (0, expected), replies.stderr

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        unanswered = run_sample(ping, "127.0.0.1", str(silent.getsockname()[1]), "1", "200")
    assert unanswered.returncode == 1
    assert re.search(r"io::ErrorKind::(WouldBlock|TimedOut)", unanswered.stderr)


@pytest.mark.cargo
def test_tcp_echo_echoes_each_connection_natively(native_samples: dict[str, Path]) -> None:
    server = start_server(native_samples["tcp-echo"], "127.0.0.1:0", "2")
    try:
        port = read_listening_port(server)
        for message in (b"first message", b"x" * 100_000):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(message)
                client.shutdown(socket.SHUT_WR)
                echoed = b""
                while chunk := client.recv(65536):
                    echoed += chunk
            assert echoed == message
        assert server.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        server.kill()
        server.communicate()


def parse_outcomes(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines())


@pytest.mark.cargo
def test_net_surface_checks_hold_for_std(native_samples: dict[str, Path]) -> None:
    # The sample is the oracle for ported runs, so std itself must pass it.
    result = run_sample(native_samples["net-surface"])
    assert result.returncode == 0, result.stderr
    outcomes = parse_outcomes(result.stdout)
    assert len(outcomes) > 60
    # Every inherent method the templates describe is called by the sample.
    inherent = {
        name
        for name in DEGRADATIONS["method"]
        if name.split("::")[1] not in _TRAIT_ENTRIES and not name.startswith("ToSocketAddrs")
    }
    assert inherent <= set(outcomes)
    # The IPv6 options (multicast, only_v6) do not apply to the sample's IPv4 sockets.
    failing = {name: got for name, got in outcomes.items() if got != "ok" and not name.endswith("_v6")}
    assert failing == {}


# ------------------------------------------- ported modules under `wasiport run`


@pytest.fixture(scope="module")
def wasm_runner(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a module with `wasiport run` (WasmEdge's socket host functions on wasmtime)."""
    cache = tmp_path_factory.mktemp("wasmtime-cache")

    def run(module: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "wasiport", "run", str(module), "--timeout", str(RUN_TIMEOUT)]
        command += [f"--env={key}={value}" for key, value in (env or {}).items()]
        result = subprocess.run(
            [*command, "--", *args],
            cwd=REPO,
            env={**os.environ, "XDG_CACHE_HOME": str(cache)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT + 30,
        )
        if result.returncode == 2 and "not implemented" in result.stderr:
            pytest.skip(f"`wasiport run` is not available: {result.stderr.strip()}")
        return result

    return run


# net-surface lines that are not named `Type::method` but exercise one.
_LINE_METHODS = (
    ("Read ", "TcpStream::read"),
    ("Write ", "TcpStream::write"),
    ("ToSocketAddrs ", "ToSocketAddrs::to_socket_addrs"),
)


def governing_status(line_name: str, api: Api) -> str:
    """The DEGRADATIONS status of the method a net-surface line exercises;
    lines about nothing WasmEdge changes (e.g. `Debug for TcpStream`) count as kept."""
    methods = DEGRADATIONS["method"]
    method = re.sub(r"\(.*\)$", "", line_name)
    for prefix, named in _LINE_METHODS:
        if line_name.startswith(prefix):
            method = named
    return methods[method][api.version]["status"] if method in methods else "kept"


@pytest.mark.cargo
def test_ported_net_surface_does_what_degradations_say(
    ported_net_surface: Port, wasm_runner: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    result = wasm_runner(ported_net_surface.module)
    assert result.returncode == 0, result.stderr
    outcomes = parse_outcomes(result.stdout)
    described = {
        name
        for name in DEGRADATIONS["method"]
        if name.split("::")[1] not in _TRAIT_ENTRIES and not name.startswith("ToSocketAddrs")
    }
    assert described <= set(outcomes)
    wanted = {"kept": "ok", "unsupported": "err Unsupported"}
    wrong = {}
    for name, outcome in outcomes.items():
        status = governing_status(name, ported_net_surface.api)
        if status in wanted and outcome != wanted[status]:
            wrong[name] = f"{status} but {outcome}"
    assert wrong == {}


@pytest.mark.cargo
@pytest.mark.redis
def test_ported_redis_consumer_talks_to_redis(
    ported_redis_consumer: Port,
    wasm_runner: Callable[..., subprocess.CompletedProcess[str]],
    redis_port: int,
    unresponsive_port: int,
) -> None:
    module = ported_redis_consumer.module
    by_ip = {"REDIS_ADDR": f"127.0.0.1:{redis_port}"}
    stored = wasm_runner(module, "wasm:key", "stored from wasm", env=by_ip)
    assert (stored.returncode, stored.stdout) == (0, "stored from wasm\n"), stored.stderr
    assert redis_get(redis_port, "wasm:key") == b"stored from wasm"

    # A host name (sock_getaddrinfo) and connect_timeout (non-blocking connect + poll).
    by_name = {"REDIS_ADDR": f"localhost:{redis_port}", "REDIS_CONNECT_TIMEOUT_MS": "2000"}
    resolved = wasm_runner(module, "wasm:other", "by name", env=by_name)
    assert (resolved.returncode, resolved.stdout) == (0, "by name\n"), resolved.stderr

    refused = wasm_runner(module, env={"REDIS_ADDR": f"127.0.0.1:{free_port()}"})
    assert refused.returncode == 1
    assert "io::ErrorKind::ConnectionRefused" in refused.stderr

    stuck = {"REDIS_ADDR": f"127.0.0.1:{unresponsive_port}", "REDIS_CONNECT_TIMEOUT_MS": "300"}
    timed_out = wasm_runner(module, env=stuck)
    assert timed_out.returncode == 1
    assert "io::ErrorKind::TimedOut" in timed_out.stderr
