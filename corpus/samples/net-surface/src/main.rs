//! `net-surface`: call each `std::net` socket method of Rust 1.63 once, over
//! loopback, in one thread, and print one line per call:
//!
//! ```text
//! TcpStream::peek: ok
//! UdpSocket::join_multicast_v4: err Unsupported
//! TcpStream::read_timeout: mismatch Some(1s)
//! ```
//!
//! `ok` means the call behaved as std documents it (the value read back is
//! the one set, the expected error kind came back, ...). Setup failures
//! (no loopback listener, no connection) end the run with exit status 1;
//! individual calls never do.

use std::fmt::Debug;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{
    Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket,
};
use std::os::raw::c_int;
use std::process;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};
#[cfg(target_os = "wasi")]
use std::os::wasi::io::{AsRawFd, FromRawFd, IntoRawFd};

const TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn report(name: &str, outcome: &str) {
    println!("{}: {}", name, outcome);
}

/// Print `ok` or `err <kind>`; hand the value on when there is one.
fn ok<T>(name: &str, result: io::Result<T>) -> Option<T> {
    match result {
        Ok(value) => {
            report(name, "ok");
            Some(value)
        }
        Err(error) => {
            report(name, &format!("err {:?}", error.kind()));
            None
        }
    }
}

/// `ok` when the call returns `want`.
fn equals<T: PartialEq + Debug>(name: &str, result: io::Result<T>, want: T) {
    match result {
        Ok(ref value) if *value == want => report(name, "ok"),
        Ok(value) => report(name, &format!("mismatch {:?}", value)),
        Err(error) => report(name, &format!("err {:?}", error.kind())),
    }
}

/// `ok` when the call fails with one of `kinds`.
fn fails_with<T: Debug>(name: &str, result: io::Result<T>, kinds: &[ErrorKind]) {
    match result {
        Err(ref error) if kinds.contains(&error.kind()) => report(name, "ok"),
        Err(error) => report(name, &format!("err {:?}", error.kind())),
        Ok(value) => report(name, &format!("mismatch Ok({:?})", value)),
    }
}

/// A blocking read that has nothing to read ends with one of these.
const TIMED_OUT: [ErrorKind; 2] = [ErrorKind::WouldBlock, ErrorKind::TimedOut];

fn setup<T>(what: &str, result: io::Result<T>) -> T {
    result.unwrap_or_else(|error| {
        eprintln!("net-surface: setup failed: {}: {}", what, error);
        process::exit(1);
    })
}

/// A loopback port nobody listens on (a listener that was just closed).
fn closed_port() -> SocketAddr {
    let listener = setup(
        "bind a throwaway listener",
        TcpListener::bind("127.0.0.1:0"),
    );
    setup("read its address", listener.local_addr())
}

fn read_exactly(mut reader: impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf)?;
    Ok(buf)
}

fn listener_calls() -> (TcpListener, SocketAddr) {
    let listener = setup("TcpListener::bind", TcpListener::bind("127.0.0.1:0"));
    report("TcpListener::bind", "ok");
    let addr = setup("TcpListener::local_addr", listener.local_addr());
    report(
        "TcpListener::local_addr",
        if addr.port() != 0 {
            "ok"
        } else {
            "mismatch port 0"
        },
    );

    equals(
        "TcpListener::take_error",
        listener.take_error().map(|e| e.is_none()),
        true,
    );
    equals(
        "TcpListener::ttl",
        listener.set_ttl(100).and_then(|_| listener.ttl()),
        100,
    );
    ok("TcpListener::set_ttl", listener.set_ttl(64));
    if ok(
        "TcpListener::set_nonblocking",
        listener.set_nonblocking(true),
    )
    .is_some()
    {
        fails_with(
            "TcpListener::accept(nonblocking)",
            listener.accept(),
            &[ErrorKind::WouldBlock],
        );
        setup(
            "make the listener blocking again",
            listener.set_nonblocking(false),
        );
    }
    equals(
        "TcpListener::try_clone",
        listener.try_clone().and_then(|clone| clone.local_addr()),
        addr,
    );
    deprecated_listener_calls(&listener);
    (listener, addr)
}

/// Deprecated in std but still callable; they concern IPv6 sockets.
#[allow(deprecated)]
fn deprecated_listener_calls(listener: &TcpListener) {
    ok("TcpListener::set_only_v6", listener.set_only_v6(false));
    ok("TcpListener::only_v6", listener.only_v6());
}

fn stream_calls(listener: &TcpListener, addr: SocketAddr) {
    let client = setup("TcpStream::connect", TcpStream::connect(addr));
    report("TcpStream::connect", "ok");
    let (server, peer) = setup("TcpListener::accept", listener.accept());
    equals("TcpListener::accept", client.local_addr(), peer);
    equals("TcpStream::peer_addr", client.peer_addr(), addr);
    equals("TcpStream::local_addr", server.local_addr(), addr);

    equals(
        "TcpStream::set_read_timeout",
        server
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|_| server.read_timeout()),
        Some(TIMEOUT),
    );
    equals(
        "TcpStream::read_timeout",
        server.read_timeout(),
        Some(TIMEOUT),
    );
    fails_with(
        "TcpStream::set_read_timeout(zero)",
        server.set_read_timeout(Some(Duration::ZERO)),
        &[ErrorKind::InvalidInput],
    );
    equals(
        "TcpStream::set_write_timeout",
        client
            .set_write_timeout(Some(TIMEOUT))
            .and_then(|_| client.write_timeout()),
        Some(TIMEOUT),
    );
    equals(
        "TcpStream::write_timeout",
        client.write_timeout(),
        Some(TIMEOUT),
    );
    equals(
        "TcpStream::nodelay",
        client.set_nodelay(true).and_then(|_| client.nodelay()),
        true,
    );
    ok("TcpStream::set_nodelay", client.set_nodelay(false));
    equals(
        "TcpStream::ttl",
        client.set_ttl(100).and_then(|_| client.ttl()),
        100,
    );
    ok("TcpStream::set_ttl", client.set_ttl(64));
    equals(
        "TcpStream::take_error",
        client.take_error().map(|e| e.is_none()),
        true,
    );

    equals("Write for TcpStream", (&client).write_all(b"hello"), ());
    let mut peeked = [0u8; 5];
    equals(
        "TcpStream::peek",
        server.peek(&mut peeked).map(|n| peeked[..n].to_vec()),
        b"hello".to_vec(),
    );
    equals(
        "Read for TcpStream",
        read_exactly(&server, 5),
        b"hello".to_vec(),
    );
    let mut nothing = [0u8; 1];
    fails_with(
        "TcpStream::read(timeout)",
        (&server).read(&mut nothing),
        &TIMED_OUT,
    );

    if let Some(clone) = ok("TcpStream::try_clone", server.try_clone()) {
        equals(
            "Write for &TcpStream (clone)",
            (&clone).write_all(b"bye"),
            (),
        );
        drop(clone);
        equals(
            "Read for &TcpStream",
            read_exactly(&client, 3),
            b"bye".to_vec(),
        );
    }

    if ok("TcpStream::set_nonblocking", client.set_nonblocking(true)).is_some() {
        fails_with(
            "TcpStream::read(nonblocking)",
            (&client).read(&mut nothing),
            &[ErrorKind::WouldBlock],
        );
        setup(
            "make the stream blocking again",
            client.set_nonblocking(false),
        );
    }

    let debug = format!("{:?}", client);
    report(
        "Debug for TcpStream",
        if debug.contains("TcpStream") {
            "ok"
        } else {
            "mismatch"
        },
    );
    equals("TcpStream::as_raw_fd", Ok(client.as_raw_fd() >= 0), true);
    let fd: c_int = client.into_raw_fd();
    // SAFETY: `fd` came from `into_raw_fd` just above and nothing else owns it.
    let client = unsafe { TcpStream::from_raw_fd(fd) };
    equals("TcpStream::from_raw_fd", client.peer_addr(), addr);

    equals("TcpStream::shutdown", client.shutdown(Shutdown::Write), ());
    equals("Read after peer shutdown", (&server).read(&mut nothing), 0);
}

fn connect_calls(listener: &TcpListener, addr: SocketAddr) {
    let refused = closed_port();
    fails_with(
        "TcpStream::connect(refused)",
        TcpStream::connect(refused),
        &[ErrorKind::ConnectionRefused],
    );
    if ok(
        "TcpStream::connect_timeout",
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT),
    )
    .is_some()
    {
        setup("accept the connect_timeout connection", listener.accept());
    }
    fails_with(
        "TcpStream::connect_timeout(refused)",
        TcpStream::connect_timeout(&refused, CONNECT_TIMEOUT),
        &[ErrorKind::ConnectionRefused],
    );
    fails_with(
        "TcpStream::connect_timeout(zero)",
        TcpStream::connect_timeout(&addr, Duration::ZERO),
        &[ErrorKind::InvalidInput],
    );
    if ok(
        "TcpStream::connect(str)",
        TcpStream::connect(format!("127.0.0.1:{}", addr.port())),
    )
    .is_some()
    {
        let next = listener.incoming().next();
        ok(
            "TcpListener::incoming",
            next.unwrap_or_else(|| Err(ErrorKind::UnexpectedEof.into())),
        );
    }
}

fn udp_calls() {
    let a = setup("UdpSocket::bind", UdpSocket::bind("127.0.0.1:0"));
    let b = setup("UdpSocket::bind", UdpSocket::bind("127.0.0.1:0"));
    report("UdpSocket::bind", "ok");
    let a_addr = setup("UdpSocket::local_addr", a.local_addr());
    let b_addr = setup("UdpSocket::local_addr", b.local_addr());
    report("UdpSocket::local_addr", "ok");

    let mut buf = [0u8; 64];
    equals("UdpSocket::send_to", a.send_to(b"one", b_addr), 3);
    // The sender's IP is compared; WasmEdge's byte order for the sender's
    // port is an open question, reported on a line of its own.
    equals(
        "UdpSocket::peek_from",
        b.peek_from(&mut buf)
            .map(|(n, from)| (buf[..n].to_vec(), from.ip())),
        (b"one".to_vec(), a_addr.ip()),
    );
    match b.recv_from(&mut buf) {
        Ok((n, from)) => {
            equals(
                "UdpSocket::recv_from",
                Ok((buf[..n].to_vec(), from.ip())),
                (b"one".to_vec(), a_addr.ip()),
            );
            equals(
                "UdpSocket::recv_from(sender port)",
                Ok(from.port()),
                a_addr.port(),
            );
        }
        Err(error) => report("UdpSocket::recv_from", &format!("err {:?}", error.kind())),
    }

    equals(
        "UdpSocket::set_read_timeout",
        b.set_read_timeout(Some(TIMEOUT))
            .and_then(|_| b.read_timeout()),
        Some(TIMEOUT),
    );
    equals("UdpSocket::read_timeout", b.read_timeout(), Some(TIMEOUT));
    fails_with(
        "UdpSocket::recv_from(timeout)",
        b.recv_from(&mut buf),
        &TIMED_OUT,
    );
    equals(
        "UdpSocket::set_write_timeout",
        a.set_write_timeout(Some(TIMEOUT))
            .and_then(|_| a.write_timeout()),
        Some(TIMEOUT),
    );
    equals("UdpSocket::write_timeout", a.write_timeout(), Some(TIMEOUT));

    equals("UdpSocket::connect", a.connect(b_addr), ());
    equals("UdpSocket::peer_addr", a.peer_addr(), b_addr);
    equals("UdpSocket::send", a.send(b"two"), 3);
    equals(
        "UdpSocket::peek",
        b.peek(&mut buf).map(|n| buf[..n].to_vec()),
        b"two".to_vec(),
    );
    equals(
        "UdpSocket::recv",
        b.recv(&mut buf).map(|n| buf[..n].to_vec()),
        b"two".to_vec(),
    );

    equals(
        "UdpSocket::broadcast",
        a.set_broadcast(true).and_then(|_| a.broadcast()),
        true,
    );
    ok("UdpSocket::set_broadcast", a.set_broadcast(false));
    equals("UdpSocket::ttl", a.set_ttl(100).and_then(|_| a.ttl()), 100);
    ok("UdpSocket::set_ttl", a.set_ttl(64));
    equals(
        "UdpSocket::take_error",
        a.take_error().map(|e| e.is_none()),
        true,
    );
    equals(
        "UdpSocket::try_clone",
        a.try_clone().and_then(|clone| clone.local_addr()),
        a_addr,
    );
    if ok("UdpSocket::set_nonblocking", b.set_nonblocking(true)).is_some() {
        fails_with(
            "UdpSocket::recv(nonblocking)",
            b.recv(&mut buf),
            &[ErrorKind::WouldBlock],
        );
    }

    // Multicast: std supports it; WasmEdge has no IP-level options.
    let group = Ipv4Addr::new(224, 0, 0, 123);
    ok(
        "UdpSocket::set_multicast_loop_v4",
        a.set_multicast_loop_v4(true),
    );
    ok("UdpSocket::multicast_loop_v4", a.multicast_loop_v4());
    ok("UdpSocket::set_multicast_ttl_v4", a.set_multicast_ttl_v4(1));
    ok("UdpSocket::multicast_ttl_v4", a.multicast_ttl_v4());
    ok(
        "UdpSocket::set_multicast_loop_v6",
        a.set_multicast_loop_v6(true),
    );
    ok("UdpSocket::multicast_loop_v6", a.multicast_loop_v6());
    ok(
        "UdpSocket::join_multicast_v4",
        a.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST),
    );
    ok(
        "UdpSocket::leave_multicast_v4",
        a.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST),
    );
    let group_v6 = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x123);
    ok(
        "UdpSocket::join_multicast_v6",
        a.join_multicast_v6(&group_v6, 0),
    );
    ok(
        "UdpSocket::leave_multicast_v6",
        a.leave_multicast_v6(&group_v6, 0),
    );
}

fn resolver_calls(addr: SocketAddr) {
    let port = addr.port();
    equals(
        "ToSocketAddrs for (&str, u16)",
        ("localhost", port)
            .to_socket_addrs()
            .map(|mut found| found.any(|a| a == SocketAddr::from((Ipv4Addr::LOCALHOST, port)))),
        true,
    );
    equals(
        "ToSocketAddrs for str",
        format!("127.0.0.1:{}", port)
            .to_socket_addrs()
            .map(|mut found| found.next()),
        Some(addr),
    );
}

fn main() {
    let (listener, addr) = listener_calls();
    stream_calls(&listener, addr);
    connect_calls(&listener, addr);
    udp_calls();
    resolver_calls(addr);
}
