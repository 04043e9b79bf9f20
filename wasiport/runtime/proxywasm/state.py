"""The mutable state a proxy-wasm host keeps between calls: maps, buffers, properties, callouts.

Host functions read and change it; the lifecycle driver sets up what each
callback may see (the request headers during `proxy_on_request_headers`,
the body chunk during `proxy_on_request_body`, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from wasiport.runtime.proxywasm.abi import BufferType, HeaderPairs, MapType
from wasiport.runtime.proxywasm.model import LocalResponse, RunReport


@dataclass
class PendingCall:
    """A `proxy_http_call` waiting for the driver to perform it after the current callback."""

    token: int
    context_id: int
    host: str
    port: int
    headers: HeaderPairs
    body: bytes
    timeout_ms: int


class HeaderMap:
    """A header map in insertion order, names compared case-insensitively (as HTTP does)."""

    def __init__(self, pairs: HeaderPairs | None = None) -> None:
        self.pairs: HeaderPairs = list(pairs or [])

    def get(self, name: bytes) -> bytes | None:
        wanted = name.lower()
        values = [value for key, value in self.pairs if key.lower() == wanted]
        return b",".join(values) if values else None

    def add(self, name: bytes, value: bytes) -> None:
        self.pairs.append((name, value))

    def replace(self, name: bytes, value: bytes) -> None:
        wanted = name.lower()
        index = next((i for i, (key, _) in enumerate(self.pairs) if key.lower() == wanted), None)
        self.remove(name)
        if index is None:
            self.pairs.append((name, value))
        else:
            self.pairs.insert(min(index, len(self.pairs)), (name, value))

    def remove(self, name: bytes) -> None:
        wanted = name.lower()
        self.pairs = [(key, value) for key, value in self.pairs if key.lower() != wanted]

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass
class HostState:
    report: RunReport
    root_id: int = 1
    contexts: set[int] = field(default_factory=set)
    effective_context: int = 0
    maps: dict[MapType, HeaderMap] = field(default_factory=dict)  # the maps the current callback may see
    buffers: dict[BufferType, bytearray] = field(default_factory=dict)
    properties: dict[tuple[str, ...], bytes] = field(default_factory=dict)
    tick_period_ms: int = 0
    pending_calls: list[PendingCall] = field(default_factory=list)
    next_token: int = 1
    local_response: LocalResponse | None = None
    resumed: set[int] = field(default_factory=set)  # stream types continued with proxy_continue_stream
    closed: set[int] = field(default_factory=set)
    done_called: bool = False
    request_index: int | None = None

    def clear_stream(self) -> None:
        """Forget what belonged to the previous request."""
        self.maps.clear()
        for kind in (BufferType.HTTP_REQUEST_BODY, BufferType.HTTP_RESPONSE_BODY,
                     BufferType.HTTP_CALL_RESPONSE_BODY):
            self.buffers.pop(kind, None)
        self.local_response = None
        self.resumed.clear()
        self.closed.clear()
