"""Performing a plugin's `proxy_http_call` against a real HTTP server.

The host function has already checked the destination against the network
allow-list and picked the address; this module sends the request (HTTP/1.1,
pseudo-headers `:method`, `:path`, `:authority` turned into the request
line and `Host`) and reads the whole response. A failure (refused, timed
out, not HTTP) is a response with no headers, as gateways report it to the
plugin.
"""
from __future__ import annotations

import http.client
from dataclasses import dataclass

from wasiport.runtime.proxywasm.abi import HeaderPairs
from wasiport.runtime.proxywasm.state import PendingCall

DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 16 << 20
# Set from the request line and body by http.client; a copy from the plugin's map would duplicate them.
NOT_FORWARDED = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})


@dataclass(frozen=True)
class CallResult:
    headers: HeaderPairs  # with ":status" first; empty when the call failed
    body: bytes
    error: str = ""


def perform(call: PendingCall) -> CallResult:
    pseudo = {key.lower(): value for key, value in call.headers if key.startswith(b":")}
    method = pseudo.get(b":method", b"GET").decode("latin-1")
    path = pseudo.get(b":path", b"/").decode("latin-1")
    authority = pseudo.get(b":authority")
    timeout = call.timeout_ms / 1000 if call.timeout_ms else DEFAULT_TIMEOUT_SECONDS
    connection = http.client.HTTPConnection(call.host, call.port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=authority is not None, skip_accept_encoding=True)
        if authority is not None:
            connection.putheader("Host", authority)
        for key, value in call.headers:
            if not key.startswith(b":") and key.lower() not in NOT_FORWARDED:
                connection.putheader(key.decode("latin-1"), value)
        if call.body:
            connection.putheader("Content-Length", str(len(call.body)))
        connection.endheaders(call.body or None)
        response = connection.getresponse()
        body = response.read(MAX_RESPONSE_BYTES)
        headers = [(b":status", str(response.status).encode())]
        headers += [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in response.getheaders()]
        return CallResult(headers, body)
    except (OSError, http.client.HTTPException, ValueError) as err:
        return CallResult([], b"", f"{type(err).__name__}: {err}")
    finally:
        connection.close()
