"""The substitutions proven: async programs on tokio_wasi, hyper_wasi and reqwest_wasi.

The corpus's async consumers (tokio-echo, hyper-hello, reqwest-get) depend on plain tokio, hyper
and reqwest, as users' programs do. `wasiport apply --deps --substitution rename` keeps those for
the native build and swaps in the `*_wasi` crates from crates.io for WasmEdge; each consumer is
then built both ways, its module's imports inspected, and the module run under `wasiport run`
against a real peer:

- the tokio echo server round-trips with the native tokio client, and the wasm client with a
  Python echo server (that one through `apply --run`);
- the hyper server answers GET and POST requests from Python's http.client and shuts down;
- the reqwest client GETs a file from Python's http.server.

Two toolchains: Debian's rustc 1.63 (`wasm32-wasi`), offline, from a vendored copy of crates.io
made at test time; and rustc 1.96 (`wasm32-wasip1`) straight from crates.io, when
`.ci/modern-toolchain` has assembled it.
"""
from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import git_repo, run_wasiport as wasiport
from tests.support.crates_io import newer_cargo, vendor_for_old_cargo
from tests.support.modern_cargo import ModernCargo
from tests.support.offline_cargo import OfflineCargo, toolchain_available
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "corpus" / "samples"
VENDOR_SET = Path(__file__).resolve().parent / "fixtures" / "substitutes" / "vendor-set"

pytestmark = [pytest.mark.cargo]


@pytest.fixture(scope="session")
def vendored_cargo(tmp_path_factory: pytest.TempPathFactory) -> OfflineCargo:
    """Debian's cargo 1.63, offline, on a copy of crates.io vendored for it at test time."""
    if not toolchain_available():
        pytest.skip("Debian's rustc/cargo with the wasm32-wasi std are not installed (.ci/run installs them)")
    if newer_cargo() is None:
        pytest.skip("no cargo that reads crates.io's index (rustup's or .ci/modern-toolchain's)")
    root = tmp_path_factory.mktemp("vendored-crates-io")
    project = root / "vendor-set"
    shutil.copytree(VENDOR_SET, project)
    source = vendor_for_old_cargo(project, root / "crates", cargo_home=root / "resolver-home")
    home = root / "cargo-home"
    home.mkdir()
    (home / "config.toml").write_text(source.config)
    target = root / "target"
    target.mkdir()
    return OfflineCargo(home=home, registry=source.directory, target_dir=target)


@pytest.fixture(params=["rustc-1.63-vendored", "rustc-1.96-crates-io"])
def toolchain(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """The environment wasiport (and cargo) run in, for one of the two toolchains."""
    cargo: OfflineCargo | ModernCargo = request.getfixturevalue(
        "vendored_cargo" if request.param.endswith("vendored") else "modern_cargo"
    )
    home = tmp_path / "home"
    home.mkdir()
    return cargo.env(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        WASIPORT_CACHE_DIR=str(tmp_path / "cache"),
    )


def consumer(tmp_path: Path, sample: str) -> Path:
    """A copy of a corpus sample under git, as a user's project is."""
    root = tmp_path / sample
    shutil.copytree(SAMPLES / sample, root, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return git_repo(root, "app")


def apply_rename(env: dict, project: Path, *extra: str) -> dict:
    done = wasiport(
        env, "apply", "--deps", "--substitution", "rename", "--manifest-path", str(project / "Cargo.toml"),
        "--format", "json", *extra,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def substitute(report: dict, name: str) -> dict:
    [package] = [p for p in report["packages"] if p["name"] == name]
    return package


def native_binary(env: dict, name: str) -> Path:
    binary = Path(env["CARGO_TARGET_DIR"]) / "debug" / name
    assert binary.is_file(), f"no native build of {name}"
    return binary


def inspect(env: dict, module: Path) -> dict:
    done = wasiport(env, "inspect", str(module), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


class Served:
    """A program started in the background whose first line says `listening on ADDR`."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.process.stdout.readline()
        assert first.startswith("listening on "), first + self.process.stderr.read()
        host, port = first.split()[-1].rsplit(":", 1)
        self.address = (host, int(port))

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        finally:
            self.process.kill()
        return self.process.returncode, out, err


@pytest.fixture
def python_echo_server() -> Iterator[int]:
    """A Python echo server on loopback (any number of connections); yields its port."""

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                self.request.sendall(data)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()


def test_tokio_echo_on_tokio_wasi_round_trips(toolchain: dict, tmp_path: Path, python_echo_server: int) -> None:
    project = consumer(tmp_path, "tokio-echo")
    report = apply_rename(toolchain, project, "--run", "client", f"127.0.0.1:{python_echo_server}", "20", "100")
    tokio = substitute(report, "tokio")
    assert tokio["action"] == "substituted" and "tokio_wasi" in tokio["detail"]
    assert tokio["proof"] == {"built": True, "inspected": True, "run": True}, tokio
    assert "20 round trips of 100 bytes" in report["run_output"]
    # the user's tokio is newer than the 1.25 that tokio_wasi follows: what that costs is listed,
    # from tokio's own changelog, and this program uses none of it
    [gap] = [g for g in report["version_gaps"] if g["crate"] == "tokio"]
    assert gap["tracks"] == "1.25.0" and gap["additions"] and gap["uses"] == []
    assert "the project's code names none of them" in gap["summary"]

    # the native program is the user's own tokio; the module links WasmEdge's sockets
    module = Path(report["module"])
    imports = set(inspect(toolchain, module)["wasmedge_imports"])
    assert {"sock_open", "sock_bind", "sock_listen", "sock_accept", "sock_connect"} <= imports
    native = native_binary(toolchain, "tokio-echo")

    # the module as the server, the native build as its client: several connections at once
    server = Served([sys.executable, "-m", "wasiport", "run", "--timeout", "120", str(module), "--", "serve", "127.0.0.1:0", "3"], toolchain)
    address = "{}:{}".format(*server.address)
    clients = [subprocess.Popen([str(native), "client", address, "50", str(size)], stdout=subprocess.PIPE, text=True) for size in (1, 1000, 70000)]
    outputs = [client.communicate(timeout=120)[0] for client in clients]
    code, _, err = server.finish()
    assert [c.returncode for c in clients] == [0, 0, 0], outputs
    assert outputs == ["50 round trips of 1 bytes\n", "50 round trips of 1000 bytes\n", "50 round trips of 70000 bytes\n"]
    assert code == 0, err
    assert sorted(int(line.split()[1]) for line in err.splitlines() if line.startswith("echoed")) == [50, 50_000, 3_500_000]


def test_hyper_server_on_hyper_wasi_answers_python(toolchain: dict, tmp_path: Path) -> None:
    project = consumer(tmp_path, "hyper-hello")
    report = apply_rename(toolchain, project)
    hyper, tokio = substitute(report, "hyper"), substitute(report, "tokio")
    assert "hyper_wasi" in hyper["detail"] and "tokio_wasi" in tokio["detail"]
    # a server needs a client: --run was not given, so the proof stops at inspection
    assert hyper["proof"] == {"built": True, "inspected": True, "run": None}, hyper
    module = Path(report["module"])
    assert {"sock_accept", "sock_listen"} <= set(inspect(toolchain, module)["wasmedge_imports"])

    server = Served([sys.executable, "-m", "wasiport", "run", "--timeout", "120", str(module), "--", f"127.0.0.1:{free_port()}"], toolchain)
    connection = http.client.HTTPConnection(*server.address, timeout=30)
    connection.request("GET", "/from/python")
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, b"Hello from /from/python\n")
    connection.request("POST", "/shout", body=b"keep-alive works")  # the same connection again
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, b"KEEP-ALIVE WORKS")
    connection.request("GET", "/shutdown")
    assert connection.getresponse().read() == b"bye\n"
    connection.close()
    code, _, err = server.finish()
    assert code == 0, err


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    """Python's http.server over a directory with one file; yields (port, the file's bytes)."""
    root = tmp_path / "www"
    root.mkdir()
    body = b"".join(b"line %04d of a file served by http.server\n" % i for i in range(500))
    (root / "data.txt").write_bytes(body)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1], body
        server.shutdown()


def test_reqwest_client_on_reqwest_wasi_gets_a_page(toolchain: dict, tmp_path: Path, http_files: tuple[int, bytes]) -> None:
    port, body = http_files
    project = consumer(tmp_path, "reqwest-get")
    url = f"http://127.0.0.1:{port}/data.txt"
    report = apply_rename(toolchain, project, "--run", url)
    reqwest = substitute(report, "reqwest")
    assert "reqwest_wasi" in reqwest["detail"]
    assert reqwest["proof"] == {"built": True, "inspected": True, "run": True}, reqwest
    module = Path(report["module"])
    assert "sock_connect" in inspect(toolchain, module)["wasmedge_imports"]

    got = wasiport(toolchain, "run", str(module), "--", url, timeout=120)
    assert got.returncode == 0, got.stderr
    head, _, rest = got.stdout.partition("\n")
    assert head == "status: 200" and rest == f"length: {len(body)}\n" + body.decode()
    # a missing page is an HTTP error, not a transport one
    missing = wasiport(toolchain, "run", str(module), "--", f"http://127.0.0.1:{port}/nothing-here", timeout=120)
    assert missing.returncode == 1 and missing.stdout.startswith("status: 404")
    # a closed port: the connect is refused inside the module
    refused = wasiport(toolchain, "run", str(module), "--", f"http://127.0.0.1:{free_port()}/", timeout=120)
    assert refused.returncode == 1 and "error sending request" in refused.stderr
