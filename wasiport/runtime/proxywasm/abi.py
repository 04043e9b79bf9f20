"""The proxy-wasm ABI 0.2.1 as data: status codes, enums, and the header-map wire format.

Numbers follow the proxy-wasm spec (ABI v0.2.1) and what the Rust SDK sends
and expects. A serialized header map is little-endian: a u32 pair count,
then a (u32 key length, u32 value length) per pair, then each key and each
value followed by one NUL byte, in pair order.
"""
from __future__ import annotations

import enum
import struct

ABI_MARKER_PREFIX = "proxy_abi_version_"
SUPPORTED_ABI_MARKERS = ("proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0")
ENV_MODULE = "env"


class Status(enum.IntEnum):
    OK = 0
    NOT_FOUND = 1
    BAD_ARGUMENT = 2
    SERIALIZATION_FAILURE = 3
    PARSE_FAILURE = 4
    INVALID_MEMORY_ACCESS = 6
    EMPTY = 7
    CAS_MISMATCH = 8
    INTERNAL_FAILURE = 10
    UNIMPLEMENTED = 12


class LogLevel(enum.IntEnum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


class BufferType(enum.IntEnum):
    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    DOWNSTREAM_DATA = 2
    UPSTREAM_DATA = 3
    HTTP_CALL_RESPONSE_BODY = 4
    GRPC_RECEIVE_BUFFER = 5
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7
    CALL_DATA = 8


class MapType(enum.IntEnum):
    HTTP_REQUEST_HEADERS = 0
    HTTP_REQUEST_TRAILERS = 1
    HTTP_RESPONSE_HEADERS = 2
    HTTP_RESPONSE_TRAILERS = 3
    GRPC_RECEIVE_INITIAL_METADATA = 4
    GRPC_RECEIVE_TRAILING_METADATA = 5
    HTTP_CALL_RESPONSE_HEADERS = 6
    HTTP_CALL_RESPONSE_TRAILERS = 7


class Action(enum.IntEnum):
    CONTINUE = 0
    PAUSE = 1


class StreamType(enum.IntEnum):
    HTTP_REQUEST = 0
    HTTP_RESPONSE = 1
    DOWNSTREAM = 2
    UPSTREAM = 3


U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
PAIR_U32 = struct.Struct("<II")

HeaderPairs = list[tuple[bytes, bytes]]


def serialize_map(pairs: HeaderPairs) -> bytes:
    """The wire form of a header map (the empty map is a zero count: 4 bytes)."""
    sizes = b"".join(PAIR_U32.pack(len(key), len(value)) for key, value in pairs)
    data = b"".join(key + b"\0" + value + b"\0" for key, value in pairs)
    return U32.pack(len(pairs)) + sizes + data


class MapFormatError(ValueError):
    """Serialized header-map bytes that do not add up."""


def parse_map(raw: bytes) -> HeaderPairs:
    """Read a serialized header map; an empty buffer is the empty map.

    Checks every length against the buffer, so a guest's absurd counts or
    sizes give MapFormatError (the caller answers BAD_ARGUMENT), never an
    IndexError or a huge allocation."""
    if not raw:
        return []
    if len(raw) < 4:
        raise MapFormatError("shorter than its count")
    (count,) = U32.unpack_from(raw, 0)
    data_at = 4 + 8 * count
    if data_at > len(raw):
        raise MapFormatError(f"{count} pairs do not fit in {len(raw)} bytes")
    pairs: HeaderPairs = []
    cursor = data_at
    for index in range(count):
        key_len, value_len = PAIR_U32.unpack_from(raw, 4 + 8 * index)
        key, cursor = _field(raw, cursor, key_len)
        value, cursor = _field(raw, cursor, value_len)
        pairs.append((key, value))
    return pairs


def _field(raw: bytes, cursor: int, length: int) -> tuple[bytes, int]:
    end = cursor + length
    if end + 1 > len(raw):
        raise MapFormatError("a key or value runs past the end")
    return raw[cursor:end], end + 1


def split_property_path(raw: bytes) -> tuple[str, ...]:
    """A property path as the SDKs send it: segments separated by NUL bytes."""
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0"))
