"""The proxy-wasm host functions (module `env`), on the guest's memory.

Every function takes its i32 arguments as unsigned ints and returns a
proxy-wasm `Status`. Guest input is never trusted: a pointer or size that
leaves linear memory gives INVALID_MEMORY_ACCESS, an unknown enum
BAD_ARGUMENT, a malformed header map SERIALIZATION_FAILURE, and a plugin
without an allocator INTERNAL_FAILURE where the host would have to hand it
bytes. Nothing a guest passes can raise in the host.

Results that the host hands over (buffers, maps, property values) are
allocated inside the guest through its `proxy_on_memory_allocate` export
(or `malloc`), then the pointer and length are written to the guest's
out-pointers, as the spec says.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import wasmtime

from wasiport.runtime.hostcall import GuestTrap
from wasiport.runtime.memory import GuestMemory
from wasiport.runtime.policy import NetworkPolicy, PolicyDecision
from wasiport.runtime.proxywasm.abi import (
    U32,
    U64,
    BufferType,
    LogLevel,
    MapFormatError,
    MapType,
    Status,
    StreamType,
    parse_map,
    serialize_map,
    split_property_path,
)
from wasiport.runtime.proxywasm.model import HostProfile, LocalResponse, LogRecord
from wasiport.runtime.proxywasm.state import HeaderMap, HostState, PendingCall

_OK = Status.OK
_BAD = Status.BAD_ARGUMENT
_MEM = Status.INVALID_MEMORY_ACCESS
_NOT_FOUND = Status.NOT_FOUND

# (name, number of i32 parameters); every one returns an i32 status.
HOST_FUNCTIONS: dict[str, int] = {
    "proxy_log": 3,
    "proxy_get_log_level": 1,
    "proxy_get_current_time_nanoseconds": 1,
    "proxy_set_tick_period_milliseconds": 1,
    "proxy_get_buffer_bytes": 5,
    "proxy_set_buffer_bytes": 5,
    "proxy_get_buffer_status": 3,
    "proxy_get_header_map_pairs": 3,
    "proxy_set_header_map_pairs": 3,
    "proxy_get_header_map_value": 5,
    "proxy_add_header_map_value": 5,
    "proxy_replace_header_map_value": 5,
    "proxy_remove_header_map_value": 3,
    "proxy_get_header_map_size": 2,
    "proxy_get_property": 4,
    "proxy_set_property": 4,
    "proxy_send_local_response": 8,
    "proxy_continue_stream": 1,
    "proxy_close_stream": 1,
    "proxy_done": 0,
    "proxy_set_effective_context": 1,
    "proxy_http_call": 10,
}

LogSink = Callable[[LogRecord], None]


def stderr_log_sink(record: LogRecord) -> None:
    print(record.render(), file=sys.stderr, flush=True)


@dataclass
class GuestAllocator:
    """The guest's allocator export, callable from inside a host function."""

    store: wasmtime.Store | None = None
    function: wasmtime.Func | None = None

    def allocate(self, size: int) -> int | None:
        """A guest pointer to `size` fresh bytes; None when the guest has no allocator."""
        if self.function is None or self.store is None:
            return None
        try:
            pointer = self.function(self.store, size)
        except wasmtime.Trap as trap:  # the guest's own failure, not the host's
            raise GuestTrap(f"the plugin's allocator trapped: {str(trap).strip()}") from None
        return int(pointer or 0) & 0xFFFFFFFF


class ProxyWasmHost:
    """proxy-wasm's `env` functions for one plugin instance."""

    def __init__(
        self,
        memory: GuestMemory,
        state: HostState,
        profile: HostProfile,
        policy: NetworkPolicy,
        on_denied: Callable[[PolicyDecision], None],
        log_sink: LogSink = stderr_log_sink,
        log_level: LogLevel = LogLevel.TRACE,
    ) -> None:
        self.memory = memory
        self.state = state
        self.profile = profile
        self.policy = policy
        self.on_denied = on_denied
        self.log_sink = log_sink
        self.log_level = log_level
        self.allocator = GuestAllocator()

    # -- memory helpers -------------------------------------------------------

    def _read(self, pointer: int, length: int) -> bytes | None:
        if not self.memory.covers(pointer + length):
            return None
        return self.memory.read(pointer, length)

    def _writable(self, *pointers: int) -> bool:
        return all(self.memory.covers(pointer + 4) for pointer in pointers)

    def _write_u32(self, pointer: int, value: int) -> None:
        self.memory.write(pointer, U32.pack(value & 0xFFFFFFFF))

    def _give(self, data: bytes, data_ptr_ptr: int, size_ptr: int) -> int:
        """Copy `data` into a fresh guest allocation and write its pointer and size out."""
        if not self._writable(data_ptr_ptr, size_ptr):
            return _MEM
        if not data:
            self._write_u32(data_ptr_ptr, 0)
            self._write_u32(size_ptr, 0)
            return _OK
        pointer = self.allocator.allocate(len(data))
        if pointer is None:
            return Status.INTERNAL_FAILURE
        if pointer == 0 or not self.memory.covers(pointer + len(data)):
            return _MEM
        self.memory.write(pointer, data)
        # The allocator may have grown memory; the out-pointers are still inside it.
        self._write_u32(data_ptr_ptr, pointer)
        self._write_u32(size_ptr, len(data))
        return _OK

    def _map(self, map_type: int) -> HeaderMap | int:
        """The map the current callback may see, or the status to answer."""
        if map_type not in MapType._value2member_map_:
            return _BAD
        found = self.state.maps.get(MapType(map_type))
        return _NOT_FOUND if found is None else found

    # -- logging, time, ticks ----------------------------------------------------

    def proxy_log(self, level: int, message_ptr: int, message_size: int) -> int:
        if level not in LogLevel._value2member_map_:
            return _BAD
        raw = self._read(message_ptr, message_size)
        if raw is None:
            return _MEM
        state = self.state
        record = LogRecord(LogLevel(level), state.effective_context, raw.decode("utf-8", "replace"), state.request_index)
        state.report.logs.append(record)
        self.log_sink(record)
        return _OK

    def proxy_get_log_level(self, level_ptr: int) -> int:
        if not self._writable(level_ptr):
            return _MEM
        self._write_u32(level_ptr, int(self.log_level))
        return _OK

    def proxy_get_current_time_nanoseconds(self, time_ptr: int) -> int:
        if not self.memory.covers(time_ptr + 8):
            return _MEM
        self.memory.write(time_ptr, U64.pack(time.time_ns()))
        return _OK

    def proxy_set_tick_period_milliseconds(self, period: int) -> int:
        if self.profile is HostProfile.APISIX:
            # wasm-nginx-module has no timers: the call fails, and the Rust SDK panics on it.
            return self.answer_unimplemented("proxy_set_tick_period_milliseconds")
        self.state.tick_period_ms = period
        self.state.report.tick_period_ms = period
        return _OK

    # -- buffers --------------------------------------------------------------------

    def _buffer_to_read(self, buffer_type: int, *out_pointers: int) -> bytearray | int:
        """The buffer a get call reads, or the status to answer: unknown type, then
        unwritable out-pointers, then a buffer the current callback does not have."""
        if buffer_type not in BufferType._value2member_map_:
            return _BAD
        if not self._writable(*out_pointers):
            return _MEM
        buffer = self.state.buffers.get(BufferType(buffer_type))
        return _NOT_FOUND if buffer is None else buffer

    def proxy_get_buffer_bytes(self, buffer_type: int, start: int, max_size: int, data_ptr_ptr: int, size_ptr: int) -> int:
        buffer = self._buffer_to_read(buffer_type, data_ptr_ptr, size_ptr)
        if isinstance(buffer, int):
            return buffer
        if start > len(buffer):
            return _BAD
        return self._give(bytes(buffer[start : start + max_size]), data_ptr_ptr, size_ptr)

    def proxy_set_buffer_bytes(self, buffer_type: int, start: int, size: int, data_ptr: int, data_size: int) -> int:
        if buffer_type not in (BufferType.HTTP_REQUEST_BODY, BufferType.HTTP_RESPONSE_BODY):
            return _BAD if buffer_type not in BufferType._value2member_map_ else _NOT_FOUND
        data = self._read(data_ptr, data_size)
        if data is None:
            return _MEM
        buffer = self.state.buffers.get(BufferType(buffer_type))
        if buffer is None:
            return _NOT_FOUND
        if start > len(buffer):
            return _BAD
        buffer[start : start + size] = data
        return _OK

    def proxy_get_buffer_status(self, buffer_type: int, length_ptr: int, flags_ptr: int) -> int:
        buffer = self._buffer_to_read(buffer_type, length_ptr, flags_ptr)
        if isinstance(buffer, int):
            return buffer
        self._write_u32(length_ptr, len(buffer))
        self._write_u32(flags_ptr, 0)
        return _OK

    # -- header maps -------------------------------------------------------------

    def proxy_get_header_map_pairs(self, map_type: int, data_ptr_ptr: int, size_ptr: int) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        return self._give(serialize_map(found.pairs), data_ptr_ptr, size_ptr)

    def proxy_set_header_map_pairs(self, map_type: int, data_ptr: int, data_size: int) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        raw = self._read(data_ptr, data_size)
        if raw is None:
            return _MEM
        try:
            found.pairs = parse_map(raw)
        except MapFormatError:
            return Status.SERIALIZATION_FAILURE
        return _OK

    def proxy_get_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr_ptr: int, size_ptr: int) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        key = self._read(key_ptr, key_size)
        if key is None or not self._writable(value_ptr_ptr, size_ptr):
            return _MEM
        value = found.get(key)
        if value is None:
            return _NOT_FOUND
        return self._give(value, value_ptr_ptr, size_ptr)

    def proxy_add_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        return self._change_map(map_type, key_ptr, key_size, value_ptr, value_size, HeaderMap.add)

    def proxy_replace_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        return self._change_map(map_type, key_ptr, key_size, value_ptr, value_size, HeaderMap.replace)

    def _change_map(
        self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int,
        change: Callable[[HeaderMap, bytes, bytes], None],
    ) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        key = self._read(key_ptr, key_size)
        value = self._read(value_ptr, value_size)
        if key is None or value is None:
            return _MEM
        change(found, key.lower(), value)
        return _OK

    def proxy_remove_header_map_value(self, map_type: int, key_ptr: int, key_size: int) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        key = self._read(key_ptr, key_size)
        if key is None:
            return _MEM
        found.remove(key)
        return _OK

    def proxy_get_header_map_size(self, map_type: int, size_ptr: int) -> int:
        found = self._map(map_type)
        if isinstance(found, int):
            return found
        if not self._writable(size_ptr):
            return _MEM
        self._write_u32(size_ptr, len(serialize_map(found.pairs)))
        return _OK

    # -- properties ----------------------------------------------------------------

    def proxy_get_property(self, path_ptr: int, path_size: int, value_ptr_ptr: int, size_ptr: int) -> int:
        raw = self._read(path_ptr, path_size)
        if raw is None or not self._writable(value_ptr_ptr, size_ptr):
            return _MEM
        value = self.property_value(split_property_path(raw))
        if value is None:
            return _NOT_FOUND
        return self._give(value, value_ptr_ptr, size_ptr)

    def proxy_set_property(self, path_ptr: int, path_size: int, value_ptr: int, value_size: int) -> int:
        raw = self._read(path_ptr, path_size)
        value = self._read(value_ptr, value_size)
        if raw is None or value is None:
            return _MEM
        self.state.properties[split_property_path(raw)] = value
        return _OK

    def property_value(self, path: tuple[str, ...]) -> bytes | None:
        """A property set by the plugin or the driver; in the APISIX profile also nginx variables."""
        state = self.state
        if path in state.properties:
            return state.properties[path]
        if self.profile is HostProfile.APISIX and len(path) == 1:
            return self._nginx_variable(path[0])
        return None

    def _nginx_variable(self, name: str) -> bytes | None:
        """The nginx variables a plugin reads most ($http_NAME, $arg_NAME), from the request."""
        headers = self.state.maps.get(MapType.HTTP_REQUEST_HEADERS)
        if name.startswith("http_") and headers is not None:
            return headers.get(name[5:].replace("_", "-").encode())
        if name.startswith("arg_"):
            query = self.state.properties.get(("request", "query"), b"").decode("latin-1")
            for part in query.split("&"):
                key, _, value = part.partition("=")
                if key == name[4:]:
                    return value.encode("latin-1")
        return None

    # -- streams and local responses ---------------------------------------------

    def proxy_send_local_response(
        self, status: int, details_ptr: int, details_size: int, body_ptr: int, body_size: int,
        headers_ptr: int, headers_size: int, grpc_status: int,
    ) -> int:
        details = self._read(details_ptr, details_size)
        body = self._read(body_ptr, body_size)
        raw_headers = self._read(headers_ptr, headers_size)
        if details is None or body is None or raw_headers is None:
            return _MEM
        if not 100 <= status <= 999:
            return _BAD
        try:
            headers = parse_map(raw_headers)
        except MapFormatError:
            return Status.SERIALIZATION_FAILURE
        self.state.local_response = LocalResponse(status, details.decode("utf-8", "replace"), body, headers)
        return _OK

    def proxy_continue_stream(self, stream_type: int) -> int:
        if stream_type not in StreamType._value2member_map_:
            return _BAD
        self.state.resumed.add(stream_type)
        return _OK

    def proxy_close_stream(self, stream_type: int) -> int:
        if stream_type not in StreamType._value2member_map_:
            return _BAD
        self.state.closed.add(stream_type)
        return _OK

    def proxy_done(self) -> int:
        self.state.done_called = True
        return _OK

    def proxy_set_effective_context(self, context_id: int) -> int:
        if context_id not in self.state.contexts:
            return _BAD
        self.state.effective_context = context_id
        return _OK

    # -- callouts -------------------------------------------------------------------

    def proxy_http_call(
        self, upstream_ptr: int, upstream_size: int, headers_ptr: int, headers_size: int,
        body_ptr: int, body_size: int, trailers_ptr: int, trailers_size: int, timeout_ms: int, token_ptr: int,
    ) -> int:
        upstream = self._read(upstream_ptr, upstream_size)
        raw_headers = self._read(headers_ptr, headers_size)
        body = self._read(body_ptr, body_size)
        trailers = self._read(trailers_ptr, trailers_size)
        if upstream is None or raw_headers is None or body is None or trailers is None or not self._writable(token_ptr):
            return _MEM
        try:
            headers = parse_map(raw_headers)
            parse_map(trailers)
        except MapFormatError:
            return Status.SERIALIZATION_FAILURE
        names = {key.lower() for key, _ in headers}
        address = parse_upstream(upstream.decode("utf-8", "replace"))
        if address is None or not {b":method", b":path"} <= names:
            return _BAD
        host, port = address
        allowed = self.allowed_address(host, port)
        if isinstance(allowed, Status):
            return allowed
        state = self.state
        token = state.next_token
        state.next_token += 1
        state.report.http_calls += 1
        state.pending_calls.append(PendingCall(token, state.effective_context, allowed, port, headers, body, timeout_ms))
        self._write_u32(token_ptr, token)
        return _OK

    def allowed_address(self, host: str, port: int, action: str = "http_call") -> str | Status:
        """The first address of `host` the allow-list lets the plugin reach (the socket
        functions' list); a denial is reported as theirs are."""
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return _BAD
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        for ip in addresses:
            if self.policy.allows(ip, port):
                return str(ip)
        self.on_denied(PolicyDecision(action, str(addresses[0]) if addresses else host, port))
        return Status.INTERNAL_FAILURE

    # -- everything else -----------------------------------------------------------

    def answer_unimplemented(self, name: str) -> int:
        unimplemented = self.state.report.unimplemented
        if name not in unimplemented:
            unimplemented.append(name)
        return Status.UNIMPLEMENTED


def parse_upstream(text: str) -> tuple[str, int] | None:
    """`host:port`, `[v6]:port` or `http://host:port`: where a `proxy_http_call` goes."""
    text = text.removeprefix("http://").rstrip("/")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, "80"
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)
