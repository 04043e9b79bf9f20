"""The WASI descriptor functions that socket descriptors need, and proc_exit.

`fd_close`, `fd_fdstat_get`, `fd_fdstat_set_flags` and `poll_oneoff` act on
guest sockets here and are passed to wasmtime's own implementation (through
`WasiBridge`) for every other descriptor, so stdio and preopened files keep
wasmtime's behaviour.

Pointer checks follow WasmEdge for every descriptor: a misaligned fdstat or
poll pointer traps (wasmtime traps too), an out-of-bounds one returns FAULT
(wasmtime would trap).

`poll_oneoff` is level-triggered, as WasmEdge's is. With socket subscriptions
it waits in `select.poll`; clock-only calls (sleeps) wait in Python too, so
that `--timeout` can cut them short; calls on other descriptors only go to
wasmtime unchanged. A call that mixes sockets with wasmtime descriptors (say
stdin) checks the latter without blocking every 10 ms while it waits on the
sockets. A reactor passes the same subscriptions call after call: a call on
guest sockets only (and clocks) is prepared once (`SocketPollPlan`: decoded,
registered in a `select.poll` kept for the next identical call) and answered
with the same events, in the same order, as the general path. When such a
call only repeats a "writable" answer the guest did nothing with (mio_wasi
asks for writability of every connection every time), it first waits up to
SPIN_PAUSE for anything else to happen, so that an idle reactor sleeps
instead of spinning (`_pause_if_spinning`).
"""
from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass, field

from wasiport.runtime import abi
from wasiport.runtime.abi import Errno
from wasiport.runtime.bridge import WasiBridge
from wasiport.runtime.hostcall import GuestExit, GuestTrap
from wasiport.runtime.memory import GuestMemory
from wasiport.runtime.sockets import MSG_NOSIGNAL, GuestSocket, SocketHost

_MIXED_SLICE = 0.010  # how often a mixed poll re-checks wasmtime's descriptors
SPIN_PAUSE = 0.010  # the longest a repeated, unanswered "writable" poll waits for news (_pause_if_spinning)
_READ_MASK = select.POLLIN | select.POLLPRI
_WRITE_MASK = select.POLLOUT
_TROUBLE = select.POLLHUP | select.POLLERR
_READ_OR_TROUBLE = _READ_MASK | _TROUBLE
_WRITE_OR_TROUBLE = _WRITE_MASK | _TROUBLE
# What hotpath.c's poll_oneoff and send use, from the same definitions as this module.
HOTPATH_MASKS = {"read": _READ_MASK, "write": _WRITE_MASK, "trouble": _TROUBLE, "nosignal": MSG_NOSIGNAL}
_FD_READ = abi.EVENTTYPE_FD_READ
_FD_WRITE = abi.EVENTTYPE_FD_WRITE
_SUBSCRIPTION_SIZE = abi.SUBSCRIPTION.size
_EVENT_SIZE = abi.EVENT.size
_INT = struct.Struct("i")
_INT_ZERO = bytes(_INT.size)


class Interrupt:
    """Set by the watchdog (--timeout, cancel); wakes waits in Python (Event) and in poll (pipe)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""  # "timeout" or "cancelled" once fired
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)

    @property
    def fired(self) -> bool:
        return self.event.is_set()

    @property
    def wakeup_fd(self) -> int:
        return self._read_fd

    def fire(self, reason: str = "timeout") -> None:
        self.reason = reason
        self.event.set()
        try:
            os.write(self._write_fd, b"!")
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass(frozen=True)
class Subscription:
    userdata: int
    tag: int
    fd: int  # the clock id for clock subscriptions
    timeout: int
    flags: int


def _event(userdata: int, error: int, tag: int, nbytes: int = 0, flags: int = 0) -> tuple[int, int, int, int, int]:
    return (userdata, error, tag, nbytes, flags)


class DescriptorOps:
    """fd_close, fd_fdstat_get, fd_fdstat_set_flags, poll_oneoff and proc_exit."""

    def __init__(self, memory: GuestMemory, sockets: SocketHost, bridge: WasiBridge, interrupt: Interrupt) -> None:
        self.memory = memory
        self.sockets = sockets
        self.bridge = bridge
        self.interrupt = interrupt
        self._plan: SocketPollPlan | None = None  # the last socket-only poll, prepared
        # What the last planned poll answered, when it was only "writable" (see _pause_if_spinning).
        # (plan, counters.activity, counters.polls, the userdata answered)
        self._writable_answer: tuple[SocketPollPlan, int, int, frozenset[int]] | None = None

    def proc_exit(self, code: int) -> int:
        # Shadowed because wasmtime rejects codes >= 126; WasmEdge passes any u32 on.
        raise GuestExit(code)

    def fd_close(self, fd: int) -> int:
        if self.sockets.close(fd):
            return 0
        return self.bridge.fd_close(fd)

    def fd_fdstat_get(self, fd: int, stat_ptr: int) -> int:
        if stat_ptr & 7:
            raise GuestTrap(f"fd_fdstat_get: fdstat pointer {stat_ptr:#x} is not 8-byte aligned")
        if not self.memory.covers(stat_ptr + abi.FDSTAT.size):
            return Errno.FAULT
        sock = self.sockets.sockets.get(fd)
        if sock is None:
            errno, data = self.bridge.fdstat(fd)
            if errno == 0:
                self.memory.write(stat_ptr, data)
            return errno
        filetype = abi.FILETYPE_SOCKET_STREAM if sock.stream else abi.FILETYPE_SOCKET_DGRAM
        flags = 0 if sock.getblocking() else abi.FDFLAGS_NONBLOCK
        abi.FDSTAT.pack_into(self.memory.view, stat_ptr, filetype, flags, sock.rights, sock.rights)
        return 0

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        sock = self.sockets.sockets.get(fd)
        if sock is None:
            return self.bridge.set_flags(fd, flags)
        if flags & ~abi.FDFLAGS_ALL:
            return Errno.INVAL
        if flags & (abi.FDFLAGS_DSYNC | abi.FDFLAGS_RSYNC | abi.FDFLAGS_SYNC):
            return Errno.NOTCAPABLE  # a socket has no FD_DATASYNC/FD_SYNC rights
        sock.setblocking(not flags & abi.FDFLAGS_NONBLOCK)
        return 0

    # -- poll_oneoff ------------------------------------------------------------

    def poll_oneoff(self, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int) -> int:
        if in_ptr & 7 or out_ptr & 7 or nevents_ptr & 3:
            raise GuestTrap("poll_oneoff: subscription, event or count pointer is misaligned")
        self.sockets.counters.polls += 1
        memory = self.memory
        end = max(in_ptr + _SUBSCRIPTION_SIZE * count, out_ptr + _EVENT_SIZE * count, nevents_ptr + 4)
        if end > memory.size and not memory.covers(end):
            return Errno.FAULT
        raw = memory.read(in_ptr, _SUBSCRIPTION_SIZE * count)
        plan = self._plan
        if plan is None or plan.raw != raw or plan.generation != self.sockets.generation:
            plan = self._plan = _plan_socket_poll(raw, self.sockets, self.interrupt.wakeup_fd)
        if plan is not None:
            events = self._wait_planned(plan)
            self._remember_writable_answer(plan, events)
        else:
            subscriptions = [Subscription(*fields) for fields in _unpack_subscriptions(raw)]
            socket_fds = self.sockets.sockets
            uses_sockets = any(sub.tag != abi.EVENTTYPE_CLOCK and sub.fd in socket_fds for sub in subscriptions)
            if not uses_sockets and not _python_clocks_only(subscriptions):
                return self._forward(raw, count, out_ptr, nevents_ptr)
            events = self._wait(subscriptions)
        view = memory.view
        pack_event = abi.EVENT.pack_into
        for index, event in enumerate(events):
            pack_event(view, out_ptr + index * _EVENT_SIZE, *event)
        abi.U32.pack_into(view, nevents_ptr, len(events))
        return 0

    def _wait_planned(self, plan: SocketPollPlan) -> list[tuple[int, int, int, int, int]]:
        """`_wait` for a prepared set of socket subscriptions (and clocks): the same events in
        the same order, without decoding the subscriptions or building a poller again."""
        ready: list[tuple[int, int, int, int, int]] = []
        skip_read: set[int] = set()
        for fileno, sock, sub in plan.readers:
            if sock.ahead_end > sock.ahead_pos:
                # Read-ahead bytes are readable now, whatever the kernel says.
                ready.append(_event(sub.userdata, 0, sub.tag, _readable_bytes(sock)))
                skip_read.add(fileno)
        deadlines: list[tuple[float, Subscription]] = []
        earliest = None
        if plan.clocks:
            for sub in plan.clocks:
                deadline = self._deadline(sub)
                assert deadline is not None  # the plan holds only valid clocks
                deadlines.append((deadline, sub))
            earliest = min(deadline for deadline, _ in deadlines)
        if not ready:
            self._pause_if_spinning(plan, earliest)
        watched = plan.watched
        while True:
            if ready:
                wait_ms: float | None = 0
            elif earliest is None:
                wait_ms = None
            else:
                wait_ms = max(0.0, earliest - time.monotonic()) * 1000
            results = plan.poller.poll(wait_ms)
            if self.interrupt.fired:
                raise GuestTrap(f"interrupted ({self.interrupt.reason})")
            for fileno, revents in results:
                entry = watched.get(fileno)
                if entry is None:
                    continue
                sock, subs = entry
                if revents & select.POLLNVAL:
                    ready.extend(
                        _event(sub.userdata, Errno.BADF, sub.tag)
                        for sub in subs
                        if not (sub.tag == _FD_READ and fileno in skip_read)
                    )
                    continue
                hangup = abi.EVENTRWFLAGS_HANGUP if revents & select.POLLHUP else 0
                for sub in subs:
                    # _socket_event, inlined: the hot path of every reactor
                    if sub.tag == _FD_READ:
                        if fileno not in skip_read and revents & _READ_OR_TROUBLE:
                            ready.append((sub.userdata, 0, _FD_READ, _readable_bytes(sock), hangup))
                    elif revents & _WRITE_OR_TROUBLE:
                        ready.append((sub.userdata, 0, _FD_WRITE, _writable_bytes(sock), hangup))
            if deadlines:
                now = time.monotonic()
                ready.extend(_event(sub.userdata, 0, sub.tag) for deadline, sub in deadlines if deadline <= now)
            if ready:
                return ready

    def _forward(self, raw: bytes, count: int, out_ptr: int, nevents_ptr: int) -> int:
        errno, events = self.bridge.poll(raw, count)
        self.memory.write(out_ptr, events)
        abi.U32.pack_into(self.memory.view, nevents_ptr, len(events) // abi.EVENT.size)
        return errno

    def _wait(self, subscriptions: list[Subscription]) -> list[tuple[int, int, int, int, int]]:
        ready: list[tuple[int, int, int, int, int]] = []
        deadlines: list[tuple[float, Subscription]] = []
        watched: dict[int, tuple[GuestSocket, list[Subscription]]] = {}  # host fileno -> (socket, subscriptions)
        foreign: list[Subscription] = []
        seen: set[tuple[int, int]] = set()
        for sub in subscriptions:
            if sub.tag == abi.EVENTTYPE_CLOCK:
                deadline = self._deadline(sub)
                if deadline is None:
                    ready.append(_event(sub.userdata, Errno.INVAL, sub.tag))
                else:
                    deadlines.append((deadline, sub))
            elif sub.tag not in (abi.EVENTTYPE_FD_READ, abi.EVENTTYPE_FD_WRITE):
                ready.append(_event(sub.userdata, Errno.INVAL, sub.tag))
            elif (sub.fd, sub.tag) in seen:
                ready.append(_event(sub.userdata, Errno.EXIST, sub.tag))  # as WasmEdge's poller
            else:
                seen.add((sub.fd, sub.tag))
                sock = self.sockets.sockets.get(sub.fd)
                if sock is not None:
                    if sub.tag == abi.EVENTTYPE_FD_READ and sock.buffered:
                        # Read-ahead bytes are readable now, whatever the kernel says.
                        ready.append(_event(sub.userdata, 0, sub.tag, _readable_bytes(sock)))
                    else:
                        watched.setdefault(sock.fileno(), (sock, []))[1].append(sub)
                elif self.bridge.exists(sub.fd):
                    foreign.append(sub)
                else:
                    ready.append(_event(sub.userdata, Errno.BADF, sub.tag))
        poller = select.poll()
        for fileno, (_, subs) in watched.items():
            mask = 0
            for sub in subs:
                mask |= _READ_MASK if sub.tag == abi.EVENTTYPE_FD_READ else _WRITE_MASK
            poller.register(fileno, mask)
        poller.register(self.interrupt.wakeup_fd, select.POLLIN)
        earliest = min((deadline for deadline, _ in deadlines), default=None)
        while True:
            if ready:
                wait_ms: float | None = 0
            elif earliest is None:
                wait_ms = None if not foreign else _MIXED_SLICE * 1000
            else:
                wait_ms = max(0.0, earliest - time.monotonic()) * 1000
                if foreign:
                    wait_ms = min(wait_ms, _MIXED_SLICE * 1000)
            if watched or foreign:
                results = poller.poll(wait_ms)
            else:  # clocks only: a sleep the watchdog can end
                self.interrupt.event.wait(None if wait_ms is None else wait_ms / 1000)
                results = []
            if self.interrupt.fired:
                raise GuestTrap(f"interrupted ({self.interrupt.reason})")
            for fileno, revents in results:
                if fileno not in watched:
                    continue
                watched_socket, subs = watched[fileno]
                for sub in subs:
                    event = _socket_event(sub, watched_socket, revents)
                    if event is not None:
                        ready.append(event)
            if foreign:
                ready.extend(self._foreign_ready(foreign))
            now = time.monotonic()
            ready.extend(_event(sub.userdata, 0, sub.tag) for deadline, sub in deadlines if deadline <= now)
            if ready:
                return ready

    def _remember_writable_answer(self, plan: SocketPollPlan, events: list[tuple[int, int, int, int, int]]) -> None:
        """Keep (plan, socket calls so far, the userdata answered) when every event was a plain
        FD_WRITE (no error, no hang-up); forget it otherwise."""
        for _, error, tag, _, flags in events:
            if tag != _FD_WRITE or error or flags:
                self._writable_answer = None
                return
        counters = self.sockets.counters
        self._writable_answer = (plan, counters.activity, counters.polls, frozenset(event[0] for event in events))

    def _pause_if_spinning(self, plan: SocketPollPlan, earliest: float | None) -> None:
        """Wait up to SPIN_PAUSE for something new when the guest asks the same question again
        having done nothing with the last answer.

        mio_wasi subscribes every connection for writing in every call, and a connected socket
        is nearly always writable, so a level-triggered poll returns at once and an idle reactor
        spins, taking a core from its peers. When the previous call answered only "writable",
        with the same subscriptions, and the guest made no socket call since, the answer now
        would be the same unless a read subscription, a socket not writable then, a hang-up
        or error, or a clock comes due. This waits for one of those, at most SPIN_PAUSE (and
        never past the earliest clock), then the poll runs as always: the events are what a
        level-triggered poll reports at the moment it returns, only later."""
        remembered = self._writable_answer
        if remembered is None or remembered[0] is not plan:
            return
        counters = self.sockets.counters
        if remembered[1] != counters.activity or remembered[2] != counters.polls - 1:
            return  # the guest acted, or the C poll_oneoff answered in between
        if not plan.writers_told_apart:
            return  # an event's userdata would not say which socket was writable
        answered = remembered[3]
        pause = plan.pausers.get(answered)
        if pause is None:
            if len(plan.pausers) >= 16:  # many connections can answer in many combinations
                plan.pausers.clear()
            pause = plan.pausers[answered] = select.poll()
            for fileno, (_, subs) in plan.watched.items():
                mask = 0  # POLLHUP and POLLERR are reported even so
                for sub in subs:
                    if sub.tag == abi.EVENTTYPE_FD_READ:
                        mask |= _READ_MASK
                    elif sub.userdata not in answered:
                        mask |= _WRITE_MASK
                pause.register(fileno, mask)
            pause.register(self.interrupt.wakeup_fd, select.POLLIN)
        wait = SPIN_PAUSE if earliest is None else min(SPIN_PAUSE, max(0.0, earliest - time.monotonic()))
        pause.poll(wait * 1000)

    def _deadline(self, sub: Subscription) -> float | None:
        """When a clock subscription fires, on Python's monotonic clock; None for bad input."""
        if sub.flags & ~abi.SUBCLOCKFLAGS_ABSTIME:
            return None
        now = time.monotonic()
        if not sub.flags & abi.SUBCLOCKFLAGS_ABSTIME:
            if sub.fd not in (abi.CLOCK_REALTIME, abi.CLOCK_MONOTONIC):
                return None
            return now + sub.timeout / 1e9
        if sub.fd == abi.CLOCK_REALTIME:
            return now + (sub.timeout - time.time_ns()) / 1e9
        if sub.fd == abi.CLOCK_MONOTONIC:
            # The guest's monotonic clock is wasmtime's, whose epoch differs from Python's.
            return now + (sub.timeout - self.bridge.monotonic_now()) / 1e9
        return None

    def _foreign_ready(self, foreign: list[Subscription]) -> list[tuple[int, int, int, int, int]]:
        """Ask wasmtime, without blocking, which of its descriptors are ready."""
        marker = max(sub.userdata for sub in foreign) + 1 & 0xFFFFFFFFFFFFFFFF
        raw = b"".join(abi.SUBSCRIPTION.pack(s.userdata, s.tag, s.fd, s.timeout, 0, s.flags) for s in foreign)
        raw += abi.SUBSCRIPTION.pack(marker, abi.EVENTTYPE_CLOCK, abi.CLOCK_MONOTONIC, 0, 0, 0)
        _, events = self.bridge.poll(raw, len(foreign) + 1)
        found = [abi.EVENT.unpack_from(events, offset) for offset in range(0, len(events), abi.EVENT.size)]
        return [event for event in found if not (event[0] == marker and event[2] == abi.EVENTTYPE_CLOCK)]


@dataclass
class SocketPollPlan:
    """A poll_oneoff call on guest sockets only (plus clocks), prepared once and reused.

    A reactor (mio_wasi) passes the same subscriptions call after call; decoding them and
    registering every socket in a new `select.poll` cost more than the wait itself. A plan
    is keyed by the subscriptions' exact bytes and the socket table's generation, so it is
    used only for the same request on the same, still open, sockets."""

    raw: bytes
    generation: int
    poller: select.poll
    watched: dict[int, tuple[GuestSocket, list[Subscription]]]  # host fileno -> (socket, subscriptions), in order
    readers: list[tuple[int, GuestSocket, Subscription]]  # the FD_READ subscriptions, in order
    clocks: list[Subscription]
    writers_told_apart: bool  # no two FD_WRITE subscriptions share a userdata
    pausers: dict[frozenset[int], select.poll] = field(default_factory=dict)  # see _pause_if_spinning


def _plan_socket_poll(raw: bytes, sockets: SocketHost, wakeup_fd: int) -> SocketPollPlan | None:
    """A plan when every subscription is FD_READ/FD_WRITE on a distinct (socket, event) pair
    or a valid relative/absolute clock, with at least one socket; None otherwise (errors,
    duplicates, wasmtime's descriptors and clock-only sleeps take the general path)."""
    subscriptions = [Subscription(*fields) for fields in _unpack_subscriptions(raw)]
    table = sockets.sockets
    watched: dict[int, tuple[GuestSocket, list[Subscription]]] = {}
    readers: list[tuple[int, GuestSocket, Subscription]] = []
    clocks: list[Subscription] = []
    seen: set[tuple[int, int]] = set()
    for sub in subscriptions:
        if sub.tag == abi.EVENTTYPE_CLOCK:
            if not _valid_clock(sub):
                return None
            clocks.append(sub)
            continue
        if sub.tag not in (abi.EVENTTYPE_FD_READ, abi.EVENTTYPE_FD_WRITE) or (sub.fd, sub.tag) in seen:
            return None
        sock = table.get(sub.fd)
        if sock is None:
            return None
        seen.add((sub.fd, sub.tag))
        fileno = sock.fileno()
        watched.setdefault(fileno, (sock, []))[1].append(sub)
        if sub.tag == abi.EVENTTYPE_FD_READ:
            readers.append((fileno, sock, sub))
    if not watched:
        return None
    poller = select.poll()
    for fileno, (sock, subs) in watched.items():
        mask = 0
        for sub in subs:
            mask |= _READ_MASK if sub.tag == abi.EVENTTYPE_FD_READ else _WRITE_MASK
        poller.register(fileno, mask)
    poller.register(wakeup_fd, select.POLLIN)
    writers = [sub.userdata for sub in subscriptions if sub.tag == abi.EVENTTYPE_FD_WRITE]
    told_apart = len(set(writers)) == len(writers)
    return SocketPollPlan(raw, sockets.generation, poller, watched, readers, clocks, told_apart)


def _valid_clock(sub: Subscription) -> bool:
    """The clocks `DescriptorOps._deadline` accepts."""
    if sub.flags & ~abi.SUBCLOCKFLAGS_ABSTIME:
        return False
    return sub.fd in (abi.CLOCK_REALTIME, abi.CLOCK_MONOTONIC)


def _unpack_subscriptions(raw: bytes) -> list[tuple[int, int, int, int, int]]:
    return [
        (userdata, tag, fd, timeout, flags)
        for userdata, tag, fd, timeout, _precision, flags in abi.SUBSCRIPTION.iter_unpack(raw)
    ]


def _python_clocks_only(subscriptions: list[Subscription]) -> bool:
    """Clock-only polls (sleeps) run in Python so that a timeout can interrupt them."""
    return bool(subscriptions) and all(
        sub.tag == abi.EVENTTYPE_CLOCK and sub.fd in (abi.CLOCK_REALTIME, abi.CLOCK_MONOTONIC)
        for sub in subscriptions
    )


def _socket_event(sub: Subscription, sock: GuestSocket, revents: int) -> tuple[int, int, int, int, int] | None:
    """The event for a ready socket, with nbytes and HANGUP as WasmEdge's poller reports them."""
    if revents & select.POLLNVAL:
        return _event(sub.userdata, Errno.BADF, sub.tag)
    hangup = abi.EVENTRWFLAGS_HANGUP if revents & select.POLLHUP else 0
    if sub.tag == abi.EVENTTYPE_FD_READ:
        if not revents & (_READ_MASK | _TROUBLE):
            return None
        return _event(sub.userdata, 0, sub.tag, _readable_bytes(sock), hangup)
    if not revents & (_WRITE_MASK | _TROUBLE):
        return None
    return _event(sub.userdata, 0, sub.tag, _writable_bytes(sock), hangup)


def _ioctl_int(sock: GuestSocket, request: int) -> int:
    return _INT.unpack(fcntl.ioctl(sock.fileno(), request, _INT_ZERO))[0]


def _readable_bytes(sock: GuestSocket) -> int:
    """Bytes ready to read: read-ahead plus the kernel's queue (FIONREAD); 1 when the kernel will not say."""
    try:
        return sock.buffered + max(_ioctl_int(sock, termios.FIONREAD), 0)
    except OSError:
        return sock.buffered or 1


def _writable_bytes(sock: GuestSocket) -> int:
    """Room in the send buffer: SO_SNDBUF minus what is queued (TIOCOUTQ), as WasmEdge computes it."""
    try:
        return max(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - _ioctl_int(sock, termios.TIOCOUTQ), 0)
    except OSError:
        return 1
