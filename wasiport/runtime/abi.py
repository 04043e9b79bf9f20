"""WasmEdge's socket ABI as data: errno values, enums and struct layouts.

Everything here follows WasmEdge's host (`wasifunc.cpp`, `inode-linux.cpp`,
`thirdparty/wasi/api.hpp`): wasm32, little-endian, IP bytes in network order.
The structs are precompiled once so that the host functions only call
`unpack_from`/`pack_into` on the guest's memory.
"""
from __future__ import annotations

import enum
import errno as os_errno
import socket
import struct


class Errno(enum.IntEnum):
    """`__wasi_errno_t`, with WasmEdge's getaddrinfo extensions (77..87)."""

    SUCCESS = 0
    TOOBIG = 1  # E2BIG
    ACCES = 2
    ADDRINUSE = 3
    ADDRNOTAVAIL = 4
    AFNOSUPPORT = 5
    AGAIN = 6
    ALREADY = 7
    BADF = 8
    BADMSG = 9
    BUSY = 10
    CANCELED = 11
    CHILD = 12
    CONNABORTED = 13
    CONNREFUSED = 14
    CONNRESET = 15
    DEADLK = 16
    DESTADDRREQ = 17
    DOM = 18
    DQUOT = 19
    EXIST = 20
    FAULT = 21
    FBIG = 22
    HOSTUNREACH = 23
    IDRM = 24
    ILSEQ = 25
    INPROGRESS = 26
    INTR = 27
    INVAL = 28
    IO = 29
    ISCONN = 30
    ISDIR = 31
    LOOP = 32
    MFILE = 33
    MLINK = 34
    MSGSIZE = 35
    MULTIHOP = 36
    NAMETOOLONG = 37
    NETDOWN = 38
    NETRESET = 39
    NETUNREACH = 40
    NFILE = 41
    NOBUFS = 42
    NODEV = 43
    NOENT = 44
    NOEXEC = 45
    NOLCK = 46
    NOLINK = 47
    NOMEM = 48
    NOMSG = 49
    NOPROTOOPT = 50
    NOSPC = 51
    NOSYS = 52
    NOTCONN = 53
    NOTDIR = 54
    NOTEMPTY = 55
    NOTRECOVERABLE = 56
    NOTSOCK = 57
    NOTSUP = 58
    NOTTY = 59
    NXIO = 60
    OVERFLOW = 61
    OWNERDEAD = 62
    PERM = 63
    PIPE = 64
    PROTO = 65
    PROTONOSUPPORT = 66
    PROTOTYPE = 67
    RANGE = 68
    ROFS = 69
    SPIPE = 70
    SRCH = 71
    STALE = 72
    TIMEDOUT = 73
    TXTBSY = 74
    XDEV = 75
    NOTCAPABLE = 76
    AIADDRFAMILY = 77
    AIAGAIN = 78
    AIBADFLAG = 79
    AIFAIL = 80
    AIFAMILY = 81
    AIMEMORY = 82
    AINODATA = 83
    AINONAME = 84
    AISERVICE = 85
    AISOCKTYPE = 86
    AISYSTEM = 87


def _os_errno_table() -> dict[int, int]:
    """Host errno -> WASI errno, by name (E2BIG is the one name that differs)."""
    table: dict[int, int] = {os_errno.E2BIG: Errno.TOOBIG}
    for wasi in Errno:
        value = getattr(os_errno, "E" + wasi.name, None)
        if value is not None:
            table[value] = wasi
    table[os_errno.EWOULDBLOCK] = Errno.AGAIN
    table[os_errno.EOPNOTSUPP] = Errno.NOTSUP
    return table


def _eai_table() -> dict[int, int]:
    """getaddrinfo's EAI_* codes (negative on glibc) -> WasmEdge's AI* errnos."""
    names = {
        "EAI_ADDRFAMILY": Errno.AIADDRFAMILY,
        "EAI_AGAIN": Errno.AIAGAIN,
        "EAI_BADFLAGS": Errno.AIBADFLAG,
        "EAI_FAIL": Errno.AIFAIL,
        "EAI_FAMILY": Errno.AIFAMILY,
        "EAI_MEMORY": Errno.AIMEMORY,
        "EAI_NODATA": Errno.AINODATA,
        "EAI_NONAME": Errno.AINONAME,
        "EAI_SERVICE": Errno.AISERVICE,
        "EAI_SOCKTYPE": Errno.AISOCKTYPE,
        "EAI_SYSTEM": Errno.AISYSTEM,
    }
    return {getattr(socket, name): wasi for name, wasi in names.items() if hasattr(socket, name)}


ERRNO_FROM_OS: dict[int, int] = _os_errno_table()
ERRNO_FROM_EAI: dict[int, int] = _eai_table()


def errno_from_os(code: int | None) -> int:
    """The WASI errno a guest sees for a host errno (0 stays 0; IO when unknown)."""
    if code is None:
        return Errno.IO
    if code == 0:
        return Errno.SUCCESS
    return ERRNO_FROM_OS.get(code, Errno.IO)


def errno_from_gai(code: int | None) -> int:
    return ERRNO_FROM_EAI.get(code if code is not None else 0, Errno.AIFAIL)


# Address families and socket types as WasmEdge >= 0.10 numbers them.
AF_UNSPEC, AF_INET4, AF_INET6, AF_UNIX = 0, 1, 2, 3
SOCK_ANY, SOCK_DGRAM, SOCK_STREAM = 0, 1, 2
PROTO_IP, PROTO_TCP, PROTO_UDP = 0, 1, 2

HOST_FAMILY: dict[int, int] = {AF_INET4: socket.AF_INET, AF_INET6: socket.AF_INET6}
WASI_FAMILY: dict[int, int] = {socket.AF_INET: AF_INET4, socket.AF_INET6: AF_INET6}
HOST_SOCKTYPE = {SOCK_ANY: 0, SOCK_DGRAM: socket.SOCK_DGRAM, SOCK_STREAM: socket.SOCK_STREAM}
WASI_SOCKTYPE = {0: SOCK_ANY, socket.SOCK_DGRAM: SOCK_DGRAM, socket.SOCK_STREAM: SOCK_STREAM}
HOST_PROTOCOL = {PROTO_IP: 0, PROTO_TCP: socket.IPPROTO_TCP, PROTO_UDP: socket.IPPROTO_UDP}
WASI_PROTOCOL = {0: PROTO_IP, socket.IPPROTO_TCP: PROTO_TCP, socket.IPPROTO_UDP: PROTO_UDP}

# Socket option level (only SOL_SOCKET exists) and names.
SOL_SOCKET = 0
SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 0, 1, 2, 3, 4
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_LINGER = 5, 6, 7, 8, 9
SO_RCVLOWAT, SO_RCVTIMEO, SO_SNDTIMEO, SO_ACCEPTCONN = 10, 11, 12, 13
# WasmEdge's cast<__wasi_sock_opt_so_t> accepts 0..13; BINDTODEVICE (14) is INVAL.
HOST_SOCKOPT = {
    SO_REUSEADDR: socket.SO_REUSEADDR,
    SO_TYPE: socket.SO_TYPE,
    SO_ERROR: socket.SO_ERROR,
    SO_DONTROUTE: socket.SO_DONTROUTE,
    SO_BROADCAST: socket.SO_BROADCAST,
    SO_SNDBUF: socket.SO_SNDBUF,
    SO_RCVBUF: socket.SO_RCVBUF,
    SO_KEEPALIVE: socket.SO_KEEPALIVE,
    SO_OOBINLINE: socket.SO_OOBINLINE,
    SO_LINGER: socket.SO_LINGER,
    SO_RCVLOWAT: socket.SO_RCVLOWAT,
    SO_RCVTIMEO: socket.SO_RCVTIMEO,
    SO_SNDTIMEO: socket.SO_SNDTIMEO,
    SO_ACCEPTCONN: socket.SO_ACCEPTCONN,
}
TIMEOUT_OPTIONS = frozenset({SO_RCVTIMEO, SO_SNDTIMEO})

# Flag sets.
RIFLAGS_PEEK, RIFLAGS_WAITALL = 1, 2
ROFLAGS_DATA_TRUNCATED = 1
SDFLAGS_RD, SDFLAGS_WR = 1, 2
FDFLAGS_APPEND, FDFLAGS_DSYNC, FDFLAGS_NONBLOCK, FDFLAGS_RSYNC, FDFLAGS_SYNC = 1, 2, 4, 8, 16
FDFLAGS_ALL = 31
AIFLAGS_PASSIVE, AIFLAGS_CANONNAME, AIFLAGS_NUMERICHOST, AIFLAGS_NUMERICSERV = 1, 2, 4, 8
AIFLAGS_V4MAPPED, AIFLAGS_ALL, AIFLAGS_ADDRCONFIG = 16, 32, 64
AIFLAGS_MASK = 127
HOST_AIFLAGS = {
    AIFLAGS_PASSIVE: socket.AI_PASSIVE,
    AIFLAGS_CANONNAME: socket.AI_CANONNAME,
    AIFLAGS_NUMERICHOST: socket.AI_NUMERICHOST,
    AIFLAGS_NUMERICSERV: socket.AI_NUMERICSERV,
    AIFLAGS_V4MAPPED: socket.AI_V4MAPPED,
    AIFLAGS_ALL: socket.AI_ALL,
    AIFLAGS_ADDRCONFIG: socket.AI_ADDRCONFIG,
}

# poll_oneoff
EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE = 0, 1, 2
CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
SUBCLOCKFLAGS_ABSTIME = 1
EVENTRWFLAGS_HANGUP = 1

# fdstat
FILETYPE_SOCKET_DGRAM, FILETYPE_SOCKET_STREAM = 5, 6
RIGHTS_FD_READ = 1 << 1
RIGHTS_FD_FDSTAT_SET_FLAGS = 1 << 3
RIGHTS_FD_WRITE = 1 << 6
RIGHTS_POLL_FD_READWRITE = 1 << 27
RIGHTS_SOCK_SHUTDOWN = 1 << 28
RIGHTS_SOCK_OPEN = 1 << 29
RIGHTS_SOCK_CLOSE = 1 << 30
RIGHTS_SOCK_BIND = 1 << 31
RIGHTS_SOCK_RECV = 1 << 32
RIGHTS_SOCK_RECV_FROM = 1 << 33
RIGHTS_SOCK_SEND = 1 << 34
RIGHTS_SOCK_SEND_TO = 1 << 35
# What WasmEdge's VINode::sockAccept grants; sockOpen adds OPEN, CLOSE and BIND.
RIGHTS_ACCEPTED_SOCKET = (
    RIGHTS_SOCK_RECV | RIGHTS_SOCK_RECV_FROM | RIGHTS_SOCK_SEND | RIGHTS_SOCK_SEND_TO
    | RIGHTS_SOCK_SHUTDOWN | RIGHTS_POLL_FD_READWRITE | RIGHTS_FD_FDSTAT_SET_FLAGS
    | RIGHTS_FD_READ | RIGHTS_FD_WRITE
)
RIGHTS_OPENED_SOCKET = RIGHTS_ACCEPTED_SOCKET | RIGHTS_SOCK_OPEN | RIGHTS_SOCK_CLOSE | RIGHTS_SOCK_BIND

IOV_MAX = 1024  # WasmEdge's kIOVMax
ADDR_STORAGE_LEN = 128  # WasiAddrStorage: u16 family, then the address bytes

# Struct layouts (all little-endian, no implicit padding).
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
I32 = struct.Struct("<i")
PAIR_U32 = struct.Struct("<II")  # iovec / ciovec / __wasi_address_t: (pointer, length)
TIMEVAL = struct.Struct("<qq")  # wasm32 libc::timeval {i64 tv_sec, i64 tv_usec}
HOST_TIMEVAL = struct.Struct("@ll")  # the host kernel's struct timeval
SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")  # userdata, tag, fd|clock id, timeout, precision, flags
EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, nbytes, flags
FDSTAT = struct.Struct("<BxH4xQQ")  # filetype, flags, rights_base, rights_inheriting
ADDRINFO = struct.Struct("<HBBB3xIIIII")  # flags, family, socktype, protocol, addrlen, addr, canonname, canonname_len, next
SOCKADDR = struct.Struct("<B3xII")  # sa_family, sa_data_len, sa_data
assert SUBSCRIPTION.size == 48 and EVENT.size == 32 and FDSTAT.size == 24
assert ADDRINFO.size == 28 and SOCKADDR.size == 12
