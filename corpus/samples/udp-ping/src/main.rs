//! `udp-ping HOST PORT [COUNT [TIMEOUT_MS [BIND]]]`: send COUNT datagrams
//! `ping <n>` (default 3) to HOST:PORT from a socket bound to BIND (default
//! 0.0.0.0:0) and print each reply as `reply <n>: <text>`.
//!
//! A reply that does not arrive within TIMEOUT_MS (default 2000) ends the
//! run with exit status 1 and the `io::ErrorKind` on stderr.

use std::env;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process;
use std::time::Duration;

const DEFAULT_COUNT: u32 = 3;
const DEFAULT_TIMEOUT_MS: u64 = 2000;
const DEFAULT_BIND: &str = "0.0.0.0:0";

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} has no address", host)))
}

fn ping(bind: &str, target: SocketAddr, count: u32, timeout: Duration) -> io::Result<()> {
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 1500];
    for n in 0..count {
        let message = format!("ping {}", n);
        socket.send_to(message.as_bytes(), target)?;
        let (len, from) = socket.recv_from(&mut buf)?;
        println!("reply {}: {}", n, String::from_utf8_lossy(&buf[..len]));
        eprintln!("({} bytes from {})", len, from.ip());
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(text: Option<&String>, default: T, what: &str) -> T {
    match text {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("udp-ping: {} must be a number", what);
            process::exit(2);
        }),
    }
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: udp-ping HOST PORT [COUNT [TIMEOUT_MS [BIND]]]");
        process::exit(2);
    }
    let port: u16 = parse(args.get(1), 0, "PORT");
    let count = parse(args.get(2), DEFAULT_COUNT, "COUNT");
    let timeout = Duration::from_millis(parse(args.get(3), DEFAULT_TIMEOUT_MS, "TIMEOUT_MS"));
    let bind = args.get(4).map(String::as_str).unwrap_or(DEFAULT_BIND);

    let result = resolve(&args[0], port).and_then(|target| ping(bind, target, count, timeout));
    if let Err(error) = result {
        eprintln!("udp-ping: {} (io::ErrorKind::{:?})", error, error.kind());
        process::exit(1);
    }
}
