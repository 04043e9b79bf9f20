"""WasmEdge's socket host functions (`sock_*`), implemented on Python sockets.

Each method takes the call's i32 arguments as unsigned ints and returns the
WASI errno, checking its input in the order WasmEdge does (`wasifunc.cpp`):
misaligned out-pointers give ADDRNOTAVAIL, out-of-bounds memory FAULT, bad
enums INVAL, and only then is the descriptor looked up (BADF, or NOTSOCK for
a descriptor wasmtime owns). OS errors become WASI errnos (`abi.errno_from_os`).

Socket descriptors come from a range disjoint from wasmtime's fd table
(`SOCKET_FD_BASE` upwards), so a number alone tells whose descriptor it is.

`sock_send` and `sock_recv` are the hot path of every client: with one iovec
they read it with one `unpack_from`, hand `socket.send`/`recv_into` a slice
of the guest memory view (no copies) and write the count back in place;
small reads on stream sockets go through a read-ahead buffer (GuestSocket).
"""
from __future__ import annotations

import errno as os_errno
import ipaddress
import socket
import time
from collections.abc import Callable

from wasiport.runtime import abi
from wasiport.runtime.abi import Errno
from wasiport.runtime.bridge import WasiBridge
from wasiport.runtime.hotpath import Counters, HotPath
from wasiport.runtime.memory import GuestMemory
from wasiport.runtime.policy import IPAddress, NetworkPolicy, PolicyDecision

# Socket descriptors start here. wasmtime numbers its own descriptors upwards
# from 0 (stdio, preopens, opened files); it would need 16 million of them to
# reach this range.
SOCKET_FD_BASE = 1 << 24
_FD_LIMIT = (1 << 31) - 1  # Rust's RawFd is an i32

# Plain ints: socket's MsgFlag members make every `&` an enum call, which costs
# more than the recv itself on the hot path.
MSG_NOSIGNAL = int(getattr(socket, "MSG_NOSIGNAL", 0))
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0))
_MSG_PEEK = int(socket.MSG_PEEK)
_MSG_WAITALL = int(socket.MSG_WAITALL)
# riflags (PEEK=1, WAITALL=2) -> host recv flags, indexed by the riflags value.
_RECV_FLAGS = (0, _MSG_PEEK, _MSG_WAITALL, _MSG_PEEK | _MSG_WAITALL)
# WasmEdge maps sdflags RD, WR, RD|WR to SHUT_*; 0 falls through to SHUT_RD (value 0).
_SHUTDOWN_HOW = {0: socket.SHUT_RD, 1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}

_FAULT = Errno.FAULT
_INVAL = Errno.INVAL
_ADDRNOTAVAIL = Errno.ADDRNOTAVAIL
_IOV_MAX = abi.IOV_MAX
_PAIR = abi.PAIR_U32
_U16 = abi.U16
_U32 = abi.U32


class GuestSocket(socket.socket):
    """A host socket owned by the guest, with what fdstat reports about it.

    Stream sockets keep a small read-ahead buffer: clients that parse replies
    a byte at a time (as unbuffered `read_exact(&mut [u8; 1])` loops do) would
    otherwise pay a system call plus a host call per byte. A small recv reads
    what the kernel has (up to READ_AHEAD bytes) and later small recvs are
    served from here; the bytes and their order are the kernel's. poll_oneoff
    counts buffered bytes as readable (see `buffered`). With the C host calls
    in front (hotpath.py) small reads are one recv each in C, which costs less;
    Python reads ahead only for the calls C hands over (an interrupted recv),
    and C leaves the socket alone until the buffer is empty again."""

    __slots__ = ("ahead", "ahead_end", "ahead_pos", "told_empty", "rights", "stream")

    def __init__(self, family: int, kind: int, proto: int = 0, fileno: int | None = None, *, rights: int) -> None:
        super().__init__(family, kind, proto, fileno)
        self.stream = kind == socket.SOCK_STREAM
        self.rights = rights
        self.ahead: memoryview | None = None
        self.ahead_pos = 0
        self.ahead_end = 0
        self.told_empty = True  # what hotpath.c was last told: nothing read ahead

    @property
    def buffered(self) -> int:
        return self.ahead_end - self.ahead_pos


READ_AHEAD = 16384  # bytes read at once when the guest asks for a few
READ_AHEAD_BELOW = 1024  # requests smaller than this go through the read-ahead buffer


def _wrap(host: socket.socket, rights: int) -> GuestSocket:
    """Re-home an accepted socket (which Python creates as a plain socket)."""
    return GuestSocket(host.family, host.type, host.proto, host.detach(), rights=rights)


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


class SocketHost:
    """The guest's sockets and the `sock_*` host functions that act on them."""

    def __init__(
        self,
        memory: GuestMemory,
        policy: NetworkPolicy,
        bridge: WasiBridge,
        on_denied: Callable[[PolicyDecision], None],
    ) -> None:
        self.memory = memory
        self.policy = policy
        self.bridge = bridge
        self.on_denied = on_denied
        self.sockets: dict[int, GuestSocket] = {}
        self.denied: list[PolicyDecision] = []
        self.first_socket_call: float | None = None  # perf_counter() of the first sock_open/getaddrinfo
        # Bumped whenever a descriptor is added or removed, so that what poll_oneoff prepared
        # for a set of subscriptions is never used after one of its sockets went away.
        self.generation = 0
        # counters.activity counts the calls that move data or change a connection (recv, send,
        # accept, connect, shutdown): poll_oneoff tells a reactor that re-asks without acting from
        # one that acted. Shared with the C host calls when there are some (`hot`).
        self.counters = Counters()
        self.hot: HotPath | None = None
        self._next_fd = SOCKET_FD_BASE

    # -- descriptor table -------------------------------------------------

    def register(self, sock: GuestSocket) -> int:
        fd = self._next_fd
        while fd in self.sockets:
            fd += 1
        if fd > _FD_LIMIT:
            sock.close()
            raise OSError(os_errno.EMFILE, "too many guest sockets")
        self._next_fd = fd + 1
        self.sockets[fd] = sock
        self.generation += 1
        if self.hot is not None:
            self.hot.set_socket(fd, sock)
        return fd

    def close(self, fd: int) -> bool:
        """Close a guest socket; False when `fd` is not one."""
        sock = self.sockets.pop(fd, None)
        if sock is None:
            return False
        self.generation += 1
        if self.hot is not None:
            self.hot.forget_socket(fd)
        sock.close()
        return True

    def close_all(self) -> None:
        for fd in list(self.sockets):
            self.close(fd)

    def shutdown_all(self) -> None:
        """Wake every blocked call (used by --timeout from the watchdog thread)."""
        for sock in list(self.sockets.values()):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def not_a_socket(self, fd: int) -> int:
        """The errno for a sock_* call on a descriptor that is not a guest socket."""
        return Errno.NOTSOCK if self.bridge.exists(fd) else Errno.BADF

    # -- helpers ----------------------------------------------------------

    def _deny(self, action: str, ip: IPAddress, port: int | None) -> int:
        decision = PolicyDecision(action, str(ip), port)
        self.denied.append(decision)
        self.on_denied(decision)
        return Errno.ACCES

    def _address_slot(self, address_ptr: int) -> tuple[int, int, int]:
        """Read a `__wasi_address_t`: (errno, buf, buf_len); FAULT when any part is outside memory."""
        memory = self.memory
        if not memory.covers(address_ptr + 8):
            return _FAULT, 0, 0
        buf, length = _PAIR.unpack_from(memory.view, address_ptr)
        if not memory.covers(buf + length):
            return _FAULT, 0, 0
        return 0, buf, length

    def _iovec_ranges(self, iovs: int, count: int) -> list[tuple[int, int]] | None:
        """(pointer, length) of each iovec, or None when one is outside memory."""
        memory = self.memory
        ranges = list(_PAIR.iter_unpack(memory.view[iovs : iovs + 8 * count]))
        for buf, length in ranges:
            if not memory.covers(buf + length):
                return None
        return ranges

    def _ip_from(self, sock: GuestSocket, raw: bytes) -> tuple[int, IPAddress | None]:
        """The IP address in a 4- or 16-byte buffer, checked against the socket's family."""
        ip = ipaddress.ip_address(raw)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        if sock.family != family:
            return Errno.AFNOSUPPORT, None
        return 0, ip

    # -- sock_open / bind / listen / accept / connect -----------------------

    def sock_open(self, family: int, kind: int, fd_ptr: int) -> int:
        if self.first_socket_call is None:
            self.first_socket_call = time.perf_counter()
        if fd_ptr & 3:
            return _ADDRNOTAVAIL
        if not self.memory.covers(fd_ptr + 4):
            return _FAULT
        if family not in (abi.AF_INET4, abi.AF_INET6, abi.AF_UNIX):
            return _INVAL
        if family == abi.AF_UNIX:
            return Errno.NOSYS  # WasmEdge without --allow-af-unix
        if kind not in (abi.SOCK_DGRAM, abi.SOCK_STREAM):
            return _INVAL
        try:
            sock = GuestSocket(abi.HOST_FAMILY[family], abi.HOST_SOCKTYPE[kind], rights=abi.RIGHTS_OPENED_SOCKET)
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        try:
            fd = self.register(sock)
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        _U32.pack_into(self.memory.view, fd_ptr, fd)
        return 0

    def _bind_or_connect(self, action: str, fd: int, address_ptr: int, port: int) -> int:
        self.counters.activity += 1
        if address_ptr & 3:
            return _ADDRNOTAVAIL
        errno, buf, length = self._address_slot(address_ptr)
        if errno:
            return errno
        if length not in (4, 16):
            return _INVAL
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        errno, ip = self._ip_from(sock, self.memory.read(buf, length))
        if ip is None:
            return errno
        port &= 0xFFFF
        if not self.policy.allows(ip, port):
            return self._deny(action, ip, port)
        try:
            if action == "bind":
                sock.bind((str(ip), port))
            else:
                sock.connect((str(ip), port))
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        return 0

    def sock_bind(self, fd: int, address_ptr: int, port: int) -> int:
        return self._bind_or_connect("bind", fd, address_ptr, port)

    def sock_connect(self, fd: int, address_ptr: int, port: int) -> int:
        return self._bind_or_connect("connect", fd, address_ptr, port)

    def sock_listen(self, fd: int, backlog: int) -> int:
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        try:
            sock.listen(max(_signed(backlog), 0))
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        return 0

    def sock_accept_v1(self, fd: int, new_fd_ptr: int) -> int:
        """The 2-argument form (wasmedge_wasi_socket): the new socket is always blocking."""
        return self._accept(fd, 0, new_fd_ptr)

    def sock_accept_v2(self, fd: int, fdflags: int, new_fd_ptr: int) -> int:
        """The 3-argument form (also WASI preview1's): fdflags NONBLOCK applies to the new socket."""
        return self._accept(fd, fdflags, new_fd_ptr)

    def _accept(self, fd: int, fdflags: int, new_fd_ptr: int) -> int:
        self.counters.activity += 1
        if new_fd_ptr & 3:
            return _ADDRNOTAVAIL
        if not self.memory.covers(new_fd_ptr + 4):
            return _FAULT
        if fdflags & ~abi.FDFLAGS_ALL:
            return _INVAL
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        try:
            host, _ = sock.accept()
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        accepted = _wrap(host, abi.RIGHTS_ACCEPTED_SOCKET)
        accepted.setblocking(not fdflags & abi.FDFLAGS_NONBLOCK)
        try:
            new_fd = self.register(accepted)
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        _U32.pack_into(self.memory.view, new_fd_ptr, new_fd)
        return 0

    # -- data: the hot path -------------------------------------------------

    def sock_recv(self, fd: int, iovs: int, iovs_len: int, riflags: int, len_ptr: int, oflags_ptr: int) -> int:
        self.counters.activity += 1
        if (iovs | len_ptr) & 3 or oflags_ptr & 1:
            return _ADDRNOTAVAIL
        if riflags & ~3 or iovs_len > _IOV_MAX:
            return _INVAL
        memory = self.memory
        size = memory.size
        if (
            iovs + 8 * iovs_len > size or len_ptr + 4 > size or oflags_ptr + 2 > size
        ) and not memory.covers(max(iovs + 8 * iovs_len, len_ptr + 4, oflags_ptr + 2)):
            return _FAULT
        sock = self.sockets.get(fd)
        flags = _RECV_FLAGS[riflags]
        oflags = 0
        if iovs_len == 1:
            buf, length = _PAIR.unpack_from(memory.view, iovs)
            if buf + length > memory.size and not memory.covers(buf + length):
                return _FAULT
            if sock is None:
                return self.not_a_socket(fd)
            view = memory.view
            try:
                if not sock.stream:
                    received, _, msg_flags, _ = sock.recvmsg_into([view[buf : buf + length]], 0, flags)
                    oflags = abi.ROFLAGS_DATA_TRUNCATED if msg_flags & _MSG_TRUNC else 0
                elif sock.ahead_end > sock.ahead_pos and not flags:
                    # The common case of a byte-at-a-time reader, inlined.
                    position = sock.ahead_pos
                    received = min(length, sock.ahead_end - position)
                    view[buf : buf + received] = sock.ahead[position : position + received]  # type: ignore[index]
                    sock.ahead_pos = position + received
                elif sock.ahead_end > sock.ahead_pos or (0 < length < READ_AHEAD_BELOW and not flags):
                    received = _recv_ahead(sock, view, [(buf, length)], flags)
                else:
                    received = sock.recv_into(view[buf : buf + length], length, flags)
            except OSError as exc:
                return abi.errno_from_os(exc.errno)
        else:
            ranges = self._iovec_ranges(iovs, iovs_len)
            if ranges is None:
                return _FAULT
            if sock is None:
                return self.not_a_socket(fd)
            view = memory.view
            try:
                if sock.stream and sock.ahead_end > sock.ahead_pos:
                    received = _recv_ahead(sock, view, ranges, flags)
                else:
                    received, _, msg_flags, _ = sock.recvmsg_into([view[b : b + n] for b, n in ranges], 0, flags)
                    if not sock.stream and msg_flags & _MSG_TRUNC:
                        oflags = abi.ROFLAGS_DATA_TRUNCATED
            except OSError as exc:
                return abi.errno_from_os(exc.errno)
        if self.hot is not None and sock.stream and sock.told_empty != (sock.ahead_end == sock.ahead_pos):
            self.hot.set_socket(fd, sock)  # read-ahead bytes keep the C calls off this socket
        _U32.pack_into(view, len_ptr, received)
        _U16.pack_into(view, oflags_ptr, oflags)
        return 0

    def sock_send(self, fd: int, iovs: int, iovs_len: int, siflags: int, len_ptr: int) -> int:
        self.counters.activity += 1
        if (iovs | len_ptr) & 3:
            return _ADDRNOTAVAIL
        if siflags or iovs_len > _IOV_MAX:
            return _INVAL  # WasmEdge defines no send flags
        memory = self.memory
        size = memory.size
        if (iovs + 8 * iovs_len > size or len_ptr + 4 > size) and not memory.covers(
            max(iovs + 8 * iovs_len, len_ptr + 4)
        ):
            return _FAULT
        sock = self.sockets.get(fd)
        if iovs_len == 1:
            buf, length = _PAIR.unpack_from(memory.view, iovs)
            if buf + length > memory.size and not memory.covers(buf + length):
                return _FAULT
            if sock is None:
                return self.not_a_socket(fd)
            view = memory.view
            try:
                sent = sock.send(view[buf : buf + length], MSG_NOSIGNAL)
            except OSError as exc:
                return abi.errno_from_os(exc.errno)
        else:
            ranges = self._iovec_ranges(iovs, iovs_len)
            if ranges is None:
                return _FAULT
            if sock is None:
                return self.not_a_socket(fd)
            view = memory.view
            try:
                sent = sock.sendmsg([view[b : b + n] for b, n in ranges], (), MSG_NOSIGNAL)
            except OSError as exc:
                return abi.errno_from_os(exc.errno)
        _U32.pack_into(view, len_ptr, sent)
        return 0

    # -- datagrams ----------------------------------------------------------

    def sock_recv_from_v1(
        self, fd: int, iovs: int, iovs_len: int, address_ptr: int, riflags: int, len_ptr: int, oflags_ptr: int
    ) -> int:
        """7 arguments: the host writes only the sender's IP bytes (no family, no port)."""
        if address_ptr & 3 or (iovs | len_ptr) & 3 or oflags_ptr & 1:
            return _ADDRNOTAVAIL
        errno, addr_buf, addr_len = self._address_slot(address_ptr)
        if errno:
            return errno
        return self._recv_from(fd, iovs, iovs_len, riflags, len_ptr, oflags_ptr, addr_buf, addr_len, None, None)

    def sock_recv_from_v2(
        self,
        fd: int,
        iovs: int,
        iovs_len: int,
        address_ptr: int,
        riflags: int,
        port_ptr: int,
        len_ptr: int,
        oflags_ptr: int,
    ) -> int:
        """8 arguments: a 4/16-byte address or a 128-byte storage, plus the port.

        WasmEdge stores the raw `sin_port` (network byte order) as a u16 at
        `port_ptr`; wasmedge_wasi_socket reads it as the low half of a u32, so
        a guest sees the port byte-swapped, exactly as on WasmEdge."""
        if (iovs | address_ptr | len_ptr) & 3 or (port_ptr | oflags_ptr) & 1:
            return _ADDRNOTAVAIL
        errno, addr_buf, addr_len = self._address_slot(address_ptr)
        if errno:
            return errno
        if addr_len not in (4, 16, abi.ADDR_STORAGE_LEN):
            return _INVAL
        if riflags & ~3 or iovs_len > abi.IOV_MAX:
            return _INVAL
        if not self.memory.covers(port_ptr + 2):
            return _FAULT
        storage = addr_buf if addr_len == abi.ADDR_STORAGE_LEN else None
        if storage is not None:
            addr_buf, addr_len = storage + 2, abi.ADDR_STORAGE_LEN - 2
        return self._recv_from(fd, iovs, iovs_len, riflags, len_ptr, oflags_ptr, addr_buf, addr_len, port_ptr, storage)

    def _recv_from(
        self,
        fd: int,
        iovs: int,
        iovs_len: int,
        riflags: int,
        len_ptr: int,
        oflags_ptr: int,
        addr_buf: int,
        addr_len: int,
        port_ptr: int | None,
        storage: int | None,
    ) -> int:
        self.counters.activity += 1
        if riflags & ~3 or iovs_len > abi.IOV_MAX:
            return _INVAL
        memory = self.memory
        if not memory.covers(max(iovs + 8 * iovs_len, len_ptr + 4, oflags_ptr + 2)):
            return _FAULT
        ranges = self._iovec_ranges(iovs, iovs_len)
        if ranges is None:
            return _FAULT
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        view = memory.view
        try:
            if sock.stream and sock.ahead_end > sock.ahead_pos:
                received = _recv_ahead(sock, view, ranges, _RECV_FLAGS[riflags])
                msg_flags, sender = 0, sock.getpeername()
            else:
                received, _, msg_flags, sender = sock.recvmsg_into(
                    [view[b : b + n] for b, n in ranges], 0, _RECV_FLAGS[riflags]
                )
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        if isinstance(sender, tuple) and sender:
            family = socket.AF_INET6 if len(sender) == 4 else socket.AF_INET
            packed = socket.inet_pton(family, sender[0].split("%")[0])
            if addr_len >= len(packed):
                view[addr_buf : addr_buf + len(packed)] = packed
            if port_ptr is not None:
                # Network byte order, as WasmEdge copies sin_port verbatim.
                view[port_ptr : port_ptr + 2] = sender[1].to_bytes(2, "big")
            if storage is not None:
                _U16.pack_into(view, storage, abi.WASI_FAMILY[family])
        if self.hot is not None and sock.stream and sock.told_empty != (sock.ahead_end == sock.ahead_pos):
            self.hot.set_socket(fd, sock)
        _U32.pack_into(view, len_ptr, received)
        _U16.pack_into(view, oflags_ptr, abi.ROFLAGS_DATA_TRUNCATED if msg_flags & _MSG_TRUNC else 0)
        return 0

    def sock_send_to(
        self, fd: int, iovs: int, iovs_len: int, address_ptr: int, port: int, siflags: int, len_ptr: int
    ) -> int:
        self.counters.activity += 1
        if address_ptr & 3 or (iovs | len_ptr) & 3:
            return _ADDRNOTAVAIL
        errno, addr_buf, addr_len = self._address_slot(address_ptr)
        if errno:
            return errno
        if addr_len not in (4, 16):
            return _INVAL
        if siflags or iovs_len > abi.IOV_MAX:
            return _INVAL
        memory = self.memory
        if not memory.covers(max(iovs + 8 * iovs_len, len_ptr + 4)):
            return _FAULT
        ranges = self._iovec_ranges(iovs, iovs_len)
        if ranges is None:
            return _FAULT
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        errno, ip = self._ip_from(sock, memory.read(addr_buf, addr_len))
        if ip is None:
            return errno
        port &= 0xFFFF
        if not self.policy.allows(ip, port):
            return self._deny("send_to", ip, port)
        view = memory.view
        try:
            sent = sock.sendmsg([view[b : b + n] for b, n in ranges], (), MSG_NOSIGNAL, (str(ip), port))
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        _U32.pack_into(view, len_ptr, sent)
        return 0

    def sock_shutdown(self, fd: int, how: int) -> int:
        self.counters.activity += 1
        if how & ~(abi.SDFLAGS_RD | abi.SDFLAGS_WR):
            return _INVAL
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        try:
            sock.shutdown(_SHUTDOWN_HOW[how])
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        return 0

    # -- addresses ----------------------------------------------------------

    def _query_address(self, fd: int, peer: bool) -> tuple[int, tuple | None, int]:
        """(errno, address tuple, host family) from getpeername/getsockname."""
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd), None, 0
        try:
            address = sock.getpeername() if peer else sock.getsockname()
        except OSError as exc:
            return abi.errno_from_os(exc.errno), None, 0
        return 0, address, sock.family

    def _address_v1(self, fd: int, address_ptr: int, type_ptr: int, port_ptr: int, peer: bool) -> int:
        """4 arguments: raw IP bytes into a 4/16-byte buffer, type 4 or 6, u32 port."""
        if (address_ptr | type_ptr | port_ptr) & 3:
            return _ADDRNOTAVAIL
        errno, buf, length = self._address_slot(address_ptr)
        if errno:
            return errno
        if length not in (4, 16):
            return _INVAL
        if not self.memory.covers(max(type_ptr, port_ptr) + 4):
            return _FAULT
        errno, address, family = self._query_address(fd, peer)
        if address is None:
            return errno
        packed = socket.inet_pton(family, address[0].split("%")[0])
        if length < len(packed):
            return Errno.NOMEM
        view = self.memory.view
        view[buf : buf + len(packed)] = packed
        # WasmEdge writes the literal 4 or 6 here (kept for old guests), not the family enum.
        _U32.pack_into(view, type_ptr, 4 if family == socket.AF_INET else 6)
        _U32.pack_into(view, port_ptr, address[1])
        return 0

    def _address_v2(self, fd: int, address_ptr: int, port_ptr: int, peer: bool) -> int:
        """3 arguments: a 128-byte storage (u16 family, address bytes) and a u32 port."""
        if (address_ptr | port_ptr) & 3:
            return _ADDRNOTAVAIL
        errno, buf, length = self._address_slot(address_ptr)
        if errno:
            return errno
        if not self.memory.covers(port_ptr + 4):
            return _FAULT
        if length != abi.ADDR_STORAGE_LEN:
            return _INVAL
        errno, address, family = self._query_address(fd, peer)
        if address is None:
            return errno
        packed = socket.inet_pton(family, address[0].split("%")[0])
        view = self.memory.view
        _U16.pack_into(view, buf, abi.WASI_FAMILY[family])
        view[buf + 2 : buf + 2 + len(packed)] = packed
        _U32.pack_into(view, port_ptr, address[1])
        return 0

    def sock_getlocaladdr_v1(self, fd: int, address_ptr: int, type_ptr: int, port_ptr: int) -> int:
        return self._address_v1(fd, address_ptr, type_ptr, port_ptr, peer=False)

    def sock_getpeeraddr_v1(self, fd: int, address_ptr: int, type_ptr: int, port_ptr: int) -> int:
        return self._address_v1(fd, address_ptr, type_ptr, port_ptr, peer=True)

    def sock_getlocaladdr_v2(self, fd: int, address_ptr: int, port_ptr: int) -> int:
        return self._address_v2(fd, address_ptr, port_ptr, peer=False)

    def sock_getpeeraddr_v2(self, fd: int, address_ptr: int, port_ptr: int) -> int:
        return self._address_v2(fd, address_ptr, port_ptr, peer=True)

    # -- options --------------------------------------------------------------

    def sock_getsockopt(self, fd: int, level: int, name: int, flag_ptr: int, size_ptr: int) -> int:
        if size_ptr & 3:
            return _ADDRNOTAVAIL
        if level != abi.SOL_SOCKET or name not in abi.HOST_SOCKOPT:
            return _INVAL
        memory = self.memory
        if not memory.covers(size_ptr + 4):
            return _FAULT
        (size,) = _U32.unpack_from(memory.view, size_ptr)
        if not memory.covers(flag_ptr + size):
            return _FAULT
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        if size == 0:  # Linux copies nothing and succeeds
            _U32.pack_into(memory.view, size_ptr, 0)
            return 0
        try:
            value = sock.getsockopt(socket.SOL_SOCKET, abi.HOST_SOCKOPT[name], min(size, 1024))
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        value = _option_to_guest(name, value)[:size]
        view = memory.view
        view[flag_ptr : flag_ptr + len(value)] = value
        _U32.pack_into(view, size_ptr, len(value))
        return 0

    def sock_setsockopt(self, fd: int, level: int, name: int, flag_ptr: int, size: int) -> int:
        if level != abi.SOL_SOCKET or name not in abi.HOST_SOCKOPT:
            return _INVAL
        if not self.memory.covers(flag_ptr + size):
            return _FAULT
        sock = self.sockets.get(fd)
        if sock is None:
            return self.not_a_socket(fd)
        value = _option_to_host(name, self.memory.read(flag_ptr, size))
        try:
            sock.setsockopt(socket.SOL_SOCKET, abi.HOST_SOCKOPT[name], value)
        except OSError as exc:
            return abi.errno_from_os(exc.errno)
        return 0

    # -- name resolution --------------------------------------------------------

    def sock_getaddrinfo(
        self,
        node_ptr: int,
        node_len: int,
        service_ptr: int,
        service_len: int,
        hints_ptr: int,
        res_ptr: int,
        max_len: int,
        res_len_ptr: int,
    ) -> int:
        if self.first_socket_call is None:
            self.first_socket_call = time.perf_counter()
        if (hints_ptr | res_ptr | res_len_ptr) & 3:
            return _ADDRNOTAVAIL
        memory = self.memory
        if not (
            memory.covers(node_ptr + node_len)
            and memory.covers(service_ptr + service_len)
            and memory.covers(hints_ptr + abi.ADDRINFO.size)
            and memory.covers(res_ptr + 4)
            and memory.covers(res_len_ptr + 4)
        ):
            return _FAULT
        node = memory.read(node_ptr, node_len)
        service = memory.read(service_ptr, service_len)
        if not node and not service:
            return Errno.AINONAME
        if max_len < 1:
            return Errno.AIMEMORY
        hint_flags, family, kind, protocol, *_ = abi.ADDRINFO.unpack_from(memory.view, hints_ptr)
        error = _check_hints(hint_flags, family, kind, protocol, node)
        if error:
            return error
        try:
            found = socket.getaddrinfo(
                _c_string(node),
                _c_string(service),
                abi.HOST_FAMILY.get(family, socket.AF_UNSPEC),
                abi.HOST_SOCKTYPE[kind],
                abi.HOST_PROTOCOL[protocol],
                _host_ai_flags(hint_flags),
            )
        except socket.gaierror as exc:
            return abi.errno_from_gai(exc.errno)
        except UnicodeError:
            return Errno.AINONAME
        usable = [info for info in found if self.policy.allows_host(ipaddress.ip_address(str(info[4][0]).split("%")[0]))]
        if found and not usable:
            decision = PolicyDecision("resolve", _c_string(node) or "", None)
            self.denied.append(decision)
            self.on_denied(decision)
            return Errno.AINONAME
        return self._write_addrinfo(usable[:max_len], hint_flags, res_ptr, res_len_ptr)

    def _write_addrinfo(self, infos: list[tuple], hint_flags: int, res_ptr: int, res_len_ptr: int) -> int:
        """Fill the guest's pre-allocated records, walking them through ai_next.

        Only as many records as there are results are walked (WasmEdge checks
        all `max_len` of them first): a guest-controlled length must not make
        the host loop for long."""
        memory = self.memory
        (record,) = _U32.unpack_from(memory.view, res_ptr)
        for family, kind, protocol, canonname, sockaddr in infos:
            if not memory.covers(record + abi.ADDRINFO.size):
                return _FAULT
            _, _, _, _, _, ai_addr, canon_ptr, canon_len, ai_next = abi.ADDRINFO.unpack_from(memory.view, record)
            if not memory.covers(ai_addr + abi.SOCKADDR.size) or not memory.covers(canon_ptr + canon_len):
                return _FAULT
            _, data_len, data_ptr = abi.SOCKADDR.unpack_from(memory.view, ai_addr)
            if not memory.covers(data_ptr + data_len):
                return _FAULT
            sa_data = _sa_data(family, sockaddr)
            view = memory.view
            name = canonname.encode("utf-8", "replace") if canonname else b""
            if name:
                copied = (name + b"\0")[:canon_len]
                view[canon_ptr : canon_ptr + len(copied)] = copied
            abi.ADDRINFO.pack_into(
                view,
                record,
                hint_flags,
                abi.WASI_FAMILY[family],
                abi.WASI_SOCKTYPE.get(kind, abi.SOCK_ANY),
                abi.WASI_PROTOCOL.get(protocol, abi.PROTO_IP),
                16 if family == socket.AF_INET else 28,  # the Linux sockaddr size
                ai_addr,
                canon_ptr,
                len(name),
                ai_next,
            )
            # Never write past the buffer the guest declared; report the full size as WasmEdge does.
            view[data_ptr : data_ptr + min(len(sa_data), data_len)] = sa_data[:data_len]
            abi.SOCKADDR.pack_into(view, ai_addr, abi.WASI_FAMILY[family], len(sa_data), data_ptr)
            record = ai_next
        _U32.pack_into(memory.view, res_len_ptr, len(infos))
        return 0


def _recv_ahead(sock: GuestSocket, view: memoryview, ranges: list[tuple[int, int]], flags: int) -> int:
    """Receive into guest buffers through the socket's read-ahead buffer.

    Buffered bytes come first; only when there are none does it ask the
    kernel, for up to READ_AHEAD bytes (blocking, timing out and failing
    exactly as a direct recv would). MSG_PEEK leaves the bytes buffered;
    MSG_WAITALL tops the last buffer up straight from the kernel."""
    if sock.ahead_end == sock.ahead_pos:
        if sock.ahead is None:
            sock.ahead = memoryview(bytearray(READ_AHEAD))
        # Both fields change only after the kernel answered: a recv that times out or fails
        # must leave the buffer empty, not make its old bytes readable again.
        filled = sock.recv_into(sock.ahead, READ_AHEAD, flags & ~(_MSG_WAITALL | _MSG_PEEK))
        sock.ahead_pos, sock.ahead_end = 0, filled
    ahead = sock.ahead
    assert ahead is not None
    position, received = sock.ahead_pos, 0
    for buf, length in ranges:
        take = min(length, sock.ahead_end - position)
        view[buf : buf + take] = ahead[position : position + take]
        position += take
        received += take
        if take < length:
            if flags & _MSG_WAITALL and not flags & _MSG_PEEK:
                try:
                    received += sock.recv_into(view[buf + take : buf + length], length - take, _MSG_WAITALL)
                except OSError:
                    pass  # the bytes already copied are the answer
            break
    if not flags & _MSG_PEEK:
        sock.ahead_pos = position
    return received


def _option_to_guest(name: int, value: bytes) -> bytes:
    """Translate what getsockopt returned into what a WasmEdge guest expects."""
    if name == abi.SO_ERROR and len(value) == 4:
        return abi.I32.pack(abi.errno_from_os(abi.I32.unpack(value)[0]))
    if name == abi.SO_TYPE and len(value) == 4:
        return abi.I32.pack(abi.WASI_SOCKTYPE.get(abi.I32.unpack(value)[0], abi.SOCK_ANY))
    if name in abi.TIMEOUT_OPTIONS and len(value) == abi.HOST_TIMEVAL.size:
        return abi.TIMEVAL.pack(*abi.HOST_TIMEVAL.unpack(value))
    return value


def _option_to_host(name: int, value: bytes) -> bytes:
    """The guest's wasm32 timeval is {i64, i64}; decode it rather than trusting the host layout."""
    if name in abi.TIMEOUT_OPTIONS and len(value) == abi.TIMEVAL.size:
        seconds, micros = abi.TIMEVAL.unpack(value)
        try:
            return abi.HOST_TIMEVAL.pack(seconds, micros)
        except Exception:  # out of the host's range; let the kernel reject it
            return value
    return value


def _check_hints(flags: int, family: int, kind: int, protocol: int, node: bytes) -> int:
    if flags & ~abi.AIFLAGS_MASK:
        return Errno.AIBADFLAG
    if flags & abi.AIFLAGS_CANONNAME and not node:
        return Errno.AIBADFLAG
    if family not in (abi.AF_UNSPEC, abi.AF_INET4, abi.AF_INET6):
        return Errno.AIFAMILY
    if protocol not in abi.HOST_PROTOCOL or kind not in abi.HOST_SOCKTYPE:
        return Errno.NOSYS
    return 0


def _host_ai_flags(flags: int) -> int:
    return sum(host for wasi, host in abi.HOST_AIFLAGS.items() if flags & wasi)


def _c_string(raw: bytes) -> str | None:
    """What C's getaddrinfo sees: the bytes up to the first NUL (guests often count the NUL)."""
    text = raw.split(b"\0", 1)[0]
    return text.decode("utf-8", "replace") if raw else None


def _sa_data(family: int, sockaddr: tuple) -> bytes:
    """Linux `sockaddr` bytes from `sin_port` on: 14 bytes for IPv4, 26 for IPv6."""
    if family == socket.AF_INET:
        return sockaddr[1].to_bytes(2, "big") + socket.inet_pton(socket.AF_INET, sockaddr[0]) + bytes(8)
    host, port, flowinfo, scope_id = sockaddr
    return (
        port.to_bytes(2, "big")
        + flowinfo.to_bytes(4, "big")
        + socket.inet_pton(socket.AF_INET6, host.split("%")[0])
        + scope_id.to_bytes(4, "little")
    )
