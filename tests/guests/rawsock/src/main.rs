//! Test guest for `wasiport run` that talks to WasmEdge's socket ABI directly.
//!
//! `rawsock <command> [args...]`; every command prints `key=value` lines that
//! the tests parse, and exits non-zero (with `error=<errno>`) when a call that
//! should succeed fails.

mod wasi;

use std::env;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process;
use std::time::{Duration, Instant};

const SO_REUSEADDR: u32 = 0;
const SO_TYPE: u32 = 1;
const SO_ERROR: u32 = 2;
const SO_BROADCAST: u32 = 4;
const SO_KEEPALIVE: u32 = 7;
const SO_RCVTIMEO: u32 = 11;
const SO_BINDTODEVICE: u32 = 14;

fn main() {
    let args: Vec<String> = env::args().collect();
    let command = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(2)..];
    match command {
        "echo-server" => echo_server(number(rest, 0) as usize),
        "client" => client(ip(rest, 0), number(rest, 1) as u16, text(rest, 2)),
        "connect" => connect_only(ip(rest, 0), number(rest, 1) as u16),
        "udp-echo" => udp_echo(number(rest, 0) as u16),
        "sockopts" => sockopts(),
        "resolve" => resolve(text(rest, 0), text(rest, 1), number(rest, 2) as u8),
        "poll" => poll_read(ip(rest, 0), number(rest, 1) as u16, number(rest, 2)),
        "nonblock" => nonblock(ip(rest, 0), number(rest, 1) as u16),
        "reactor" => reactor(number(rest, 0) as usize),
        "connect-nb" => connect_nonblocking(ip(rest, 0), number(rest, 1) as u16),
        "byte-reader" => byte_reader(ip(rest, 0), number(rest, 1) as u16),
        "fdstat" => fdstat_of(number(rest, 0) as u32),
        "block-recv" => block_recv(ip(rest, 0), number(rest, 1) as u16),
        "sleep" => sleep(number(rest, 0)),
        "spin" => spin(),
        "exit" => process::exit(number(rest, 0) as i32),
        "trap" => panic!("guest panic requested by the test"),
        _ => {
            eprintln!("unknown command {:?}", command);
            process::exit(64);
        }
    }
}

fn text(args: &[String], index: usize) -> &str {
    args.get(index).map(String::as_str).unwrap_or_else(|| usage(index))
}

fn number(args: &[String], index: usize) -> u64 {
    text(args, index).parse().unwrap_or_else(|_| usage(index))
}

fn ip(args: &[String], index: usize) -> [u8; 4] {
    let parsed: Ipv4Addr = text(args, index).parse().unwrap_or_else(|_| usage(index));
    parsed.octets()
}

fn usage(index: usize) -> ! {
    eprintln!("missing or bad argument {}", index);
    process::exit(64);
}

/// Unwrap a host call that must succeed; report its errno and stop otherwise.
fn must<T>(what: &str, result: Result<T, wasi::Errno>) -> T {
    result.unwrap_or_else(|errno| {
        println!("{}_error={}", what, errno);
        process::exit(1);
    })
}

fn show(what: &str, addr: (u16, [u8; 16], u32)) {
    let (family, ip, port) = addr;
    let ip = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
    println!("{}={}:{} family={}", what, ip, port, family);
}

fn say(line: String) {
    println!("{}", line);
    let _ = std::io::stdout().flush();
}

fn echo_server(connections: usize) {
    let listener = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("reuseaddr", wasi::set_opt(listener, wasi::SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes()));
    must("bind", wasi::bind(listener, [127, 0, 0, 1], 0));
    must("listen", wasi::listen(listener, 16));
    let (_, _, port) = must("local", wasi::local_addr(listener));
    say(format!("listening port={}", port));
    for _ in 0..connections {
        let stream = must("accept", wasi::accept(listener, 0));
        show("peer", must("peer", wasi::peer_addr(stream)));
        let mut echoed = 0usize;
        let mut head = [0u8; 3];
        let mut tail = [0u8; 4096];
        loop {
            let n = must("recv", wasi::recv_two(stream, &mut head, &mut tail));
            if n == 0 {
                break;
            }
            let first = n.min(head.len());
            let mut sent = 0;
            while sent < n {
                let done = if sent < first {
                    wasi::send_two(stream, &head[sent..first], &tail[..n - first])
                } else {
                    wasi::send(stream, &tail[sent - first..n - first])
                };
                sent += must("send", done);
            }
            echoed += n;
        }
        must("close", wasi::close(stream));
        say(format!("closed echoed={}", echoed));
    }
    must("close", wasi::close(listener));
}

fn client(ip: [u8; 4], port: u16, message: &str) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("connect", wasi::connect(fd, ip, port));
    show("local", must("local", wasi::local_addr(fd)));
    show("peer", must("peer", wasi::peer_addr(fd)));
    let mut sent = 0;
    while sent < message.len() {
        sent += must("send", wasi::send(fd, &message.as_bytes()[sent..]));
    }
    must("shutdown", wasi::shutdown(fd, wasi::SHUT_WR));
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = must("recv", wasi::recv(fd, &mut buf));
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    println!("reply={}", String::from_utf8_lossy(&reply));
}

fn connect_only(ip: [u8; 4], port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    let errno = wasi::connect(fd, ip, port).err().unwrap_or(0);
    let kind = std::io::Error::from_raw_os_error(errno as i32).kind();
    println!("connect_errno={} kind={:?}", errno, kind);
}

fn udp_echo(reply_port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::DGRAM));
    must("bind", wasi::bind(fd, [127, 0, 0, 1], 0));
    let (_, _, port) = must("local", wasi::local_addr(fd));
    say(format!("listening port={}", port));
    let mut buf = [0u8; 8];
    let (n, from, oflags) = must("recv_from", wasi::recv_from_v1(fd, &mut buf));
    say(format!(
        "received={} from={} truncated={}",
        String::from_utf8_lossy(&buf[..n]),
        Ipv4Addr::from(from),
        oflags
    ));
    let sent = must("send_to", wasi::send_to(fd, &buf[..n], [127, 0, 0, 1], reply_port));
    say(format!("sent={}", sent));
}

fn int_opt(fd: u32, name: u32) -> String {
    match wasi::get_opt(fd, wasi::SOL_SOCKET, name, 4) {
        Ok(bytes) if bytes.len() == 4 => {
            i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]).to_string()
        }
        Ok(bytes) => format!("size{}", bytes.len()),
        Err(errno) => format!("errno{}", errno),
    }
}

fn errno_of(result: Result<(), wasi::Errno>) -> u32 {
    result.err().unwrap_or(0)
}

fn sockopts() {
    let stream = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    let dgram = must("open", wasi::open(wasi::INET4, wasi::DGRAM));
    println!("stream_type={} dgram_type={}", int_opt(stream, SO_TYPE), int_opt(dgram, SO_TYPE));
    println!("reuseaddr_before={}", int_opt(stream, SO_REUSEADDR));
    must("set", wasi::set_opt(stream, wasi::SOL_SOCKET, SO_REUSEADDR, &1i32.to_le_bytes()));
    println!("reuseaddr_after={}", int_opt(stream, SO_REUSEADDR));
    must("set", wasi::set_opt(stream, wasi::SOL_SOCKET, SO_KEEPALIVE, &1i32.to_le_bytes()));
    println!("keepalive={}", int_opt(stream, SO_KEEPALIVE));
    must("set", wasi::set_opt(dgram, wasi::SOL_SOCKET, SO_BROADCAST, &1i32.to_le_bytes()));
    println!("broadcast={}", int_opt(dgram, SO_BROADCAST));
    println!("so_error={}", int_opt(stream, SO_ERROR));
    // wasm32 libc::timeval: { i64 tv_sec, i64 tv_usec }
    let mut timeval = [0u8; 16];
    timeval[0..8].copy_from_slice(&2i64.to_le_bytes());
    timeval[8..16].copy_from_slice(&250_000i64.to_le_bytes());
    must("set", wasi::set_opt(stream, wasi::SOL_SOCKET, SO_RCVTIMEO, &timeval));
    let back = must("get", wasi::get_opt(stream, wasi::SOL_SOCKET, SO_RCVTIMEO, 16));
    let mut sec = [0u8; 8];
    let mut usec = [0u8; 8];
    sec.copy_from_slice(&back[0..8]);
    usec.copy_from_slice(&back[8..16]);
    println!(
        "rcvtimeo={}.{:06} size={}",
        i64::from_le_bytes(sec),
        i64::from_le_bytes(usec),
        back.len()
    );
    println!(
        "bad_level={} bad_name={} bindtodevice={}",
        errno_of(wasi::set_opt(stream, 6, SO_KEEPALIVE, &1i32.to_le_bytes())),
        errno_of(wasi::set_opt(stream, wasi::SOL_SOCKET, 99, &1i32.to_le_bytes())),
        errno_of(wasi::set_opt(stream, wasi::SOL_SOCKET, SO_BINDTODEVICE, b"lo\0")),
    );
}

fn resolve(node: &str, service: &str, family: u8) {
    match wasi::getaddrinfo(node, service, family) {
        Err(errno) => println!("resolve_errno={}", errno),
        Ok(found) => {
            println!("count={}", found.len());
            for record in found {
                let data = &record.sa_data;
                let port = u16::from_be_bytes([data[0], data[1]]);
                let address = if record.family == 1 {
                    Ipv4Addr::new(data[2], data[3], data[4], data[5]).to_string()
                } else {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&data[6..22]);
                    std::net::Ipv6Addr::from(octets).to_string()
                };
                println!(
                    "addr={} port={} family={} socktype={} protocol={} addrlen={} sa_len={}",
                    address,
                    port,
                    record.family,
                    record.socktype,
                    record.protocol,
                    record.addrlen,
                    data.len()
                );
            }
        }
    }
}

fn poll_read(ip: [u8; 4], port: u16, timeout_ms: u64) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("connect", wasi::connect(fd, ip, port));
    say("connected=1".to_string());
    let started = Instant::now();
    let subs = [
        wasi::fd_read_subscription(7, fd),
        wasi::clock_subscription(9, timeout_ms * 1_000_000),
    ];
    let ready = must("poll", wasi::poll(&subs));
    let waited = started.elapsed().as_millis();
    for event in &ready {
        println!(
            "event userdata={} type={} error={} nbytes={} hangup={}",
            event.userdata, event.kind, event.error, event.nbytes, event.flags
        );
    }
    println!("events={} waited_ms={}", ready.len(), waited);
    if ready.iter().any(|event| event.userdata == 7) {
        let mut buf = [0u8; 256];
        let n = must("recv", wasi::recv(fd, &mut buf));
        println!("data={}", String::from_utf8_lossy(&buf[..n]));
    }
}

fn nonblock(ip: [u8; 4], port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("connect", wasi::connect(fd, ip, port));
    let (filetype, flags, rights) = must("fdstat", wasi::fdstat(fd));
    println!("filetype={} flags={} rights={:#x}", filetype, flags, rights);
    must("setflags", wasi::set_fdflags(fd, wasi::FDFLAGS_NONBLOCK));
    let (_, flags, _) = must("fdstat", wasi::fdstat(fd));
    let mut buf = [0u8; 64];
    let early = wasi::recv(fd, &mut buf).err().unwrap_or(0);
    println!("nonblocking_flags={} early_recv_errno={}", flags, early);
    say("waiting=1".to_string());
    let ready = must("poll", wasi::poll(&[wasi::fd_read_subscription(1, fd)]));
    let n = must("recv", wasi::recv(fd, &mut buf));
    println!("events={} data={}", ready.len(), String::from_utf8_lossy(&buf[..n]));
    must("setflags", wasi::set_fdflags(fd, 0));
    let (_, flags, _) = must("fdstat", wasi::fdstat(fd));
    println!("blocking_flags={} close={}", flags, errno_of(wasi::close(fd)));
    println!("after_close_fdstat={}", wasi::fdstat(fd).err().unwrap_or(0));
}

/// An echo server run the way mio_wasi drives sockets: a non-blocking listener (set through
/// fd_fdstat_set_flags, as libc's fcntl does), accepts in non-blocking mode until AGAIN, every
/// descriptor in one level-triggered poll_oneoff with a clock timeout, reads until AGAIN.
/// Serves `connections` connections, then prints what it saw.
fn reactor(connections: usize) {
    const TIMER: u64 = u64::MAX;
    const LISTENER: u64 = u64::MAX - 1;
    let listener = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("bind", wasi::bind(listener, [127, 0, 0, 1], 0));
    must("listen", wasi::listen(listener, 128));
    must("setflags", wasi::set_fdflags(listener, wasi::FDFLAGS_NONBLOCK));
    let (_, _, port) = must("local", wasi::local_addr(listener));
    say(format!("listening port={}", port));
    let (mut open, mut accepted, mut accept_again, mut read_again) = (Vec::new(), 0usize, 0usize, 0usize);
    let (mut timeouts, mut most_subscriptions, mut echoed) = (0usize, 0usize, 0usize);
    let mut buf = [0u8; 4096];
    while accepted < connections || !open.is_empty() {
        let mut subs = vec![wasi::clock_subscription(TIMER, 100_000_000)];
        if accepted < connections {
            subs.push(wasi::fd_read_subscription(LISTENER, listener));
        }
        subs.extend(open.iter().map(|&fd| wasi::fd_read_subscription(fd as u64, fd)));
        most_subscriptions = most_subscriptions.max(subs.len());
        for event in must("poll", wasi::poll(&subs)) {
            if event.error != 0 {
                say(format!("event_error={} userdata={}", event.error, event.userdata));
                process::exit(1);
            }
            match event.userdata {
                TIMER => {
                    timeouts += 1;
                    if timeouts == 1 {
                        say("idle timeouts=1".to_string());
                    }
                }
                LISTENER => loop {
                    match wasi::accept(listener, wasi::FDFLAGS_NONBLOCK) {
                        Ok(fd) => {
                            open.push(fd);
                            accepted += 1;
                        }
                        Err(wasi::AGAIN) => {
                            accept_again += 1;
                            break;
                        }
                        Err(errno) => must("accept", Err(errno)),
                    }
                },
                fd => {
                    let fd = fd as u32;
                    loop {
                        match wasi::recv(fd, &mut buf) {
                            Ok(0) => {
                                must("close", wasi::close(fd));
                                open.retain(|&other| other != fd);
                                break;
                            }
                            Ok(n) => {
                                send_all(fd, &buf[..n]);
                                echoed += n;
                            }
                            Err(wasi::AGAIN) => {
                                read_again += 1;
                                break;
                            }
                            Err(errno) => must("recv", Err(errno)),
                        }
                    }
                }
            }
        }
    }
    let (_, flags, _) = must("fdstat", wasi::fdstat(listener));
    println!(
        "accepted={} echoed={} accept_again={} read_again={} most_subscriptions={} listener_flags={}",
        accepted, echoed, accept_again, read_again, most_subscriptions, flags
    );
}

/// Send on a non-blocking socket: wait for room with a write subscription when it is full.
fn send_all(fd: u32, mut data: &[u8]) {
    while !data.is_empty() {
        match wasi::send(fd, data) {
            Ok(n) => data = &data[n..],
            Err(wasi::AGAIN) => {
                must("poll", wasi::poll(&[wasi::fd_write_subscription(1, fd)]));
            }
            Err(errno) => must("send", Err(errno)),
        }
    }
}

/// A non-blocking connect, as mio_wasi's TcpStream::connect makes it: INPROGRESS, then a write
/// subscription (with a timeout) says when it is done, and SO_ERROR says how it went.
fn connect_nonblocking(ip: [u8; 4], port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("setflags", wasi::set_fdflags(fd, wasi::FDFLAGS_NONBLOCK));
    let connect_errno = errno_of(wasi::connect(fd, ip, port));
    let ready = must("poll", wasi::poll(&[
        wasi::fd_write_subscription(1, fd),
        wasi::clock_subscription(2, 5_000_000_000),
    ]));
    let writable = ready.iter().any(|event| event.userdata == 1 && event.error == 0);
    let error = must("so_error", wasi::get_opt(fd, wasi::SOL_SOCKET, SO_ERROR, 4));
    let so_error = u32::from_le_bytes([error[0], error[1], error[2], error[3]]);
    println!("connect_errno={} writable={} so_error={}", connect_errno, writable, so_error);
    if so_error == 0 {
        send_all(fd, b"ping");
        let mut reply = [0u8; 4];
        must("setflags", wasi::set_fdflags(fd, 0));
        let n = must("recv", wasi::recv(fd, &mut reply));
        println!("reply={}", String::from_utf8_lossy(&reply[..n]));
    }
    must("close", wasi::close(fd));
}

/// Small reads, a peek and polls on one connection: what a byte-at-a-time
/// parser does, which the host serves from its read-ahead buffer.
fn byte_reader(ip: [u8; 4], port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("connect", wasi::connect(fd, ip, port));
    let mut first = [0u8; 1];
    let n = must("recv", wasi::recv(fd, &mut first));
    println!("first={}", String::from_utf8_lossy(&first[..n]));
    let started = Instant::now();
    let ready = must("poll", wasi::poll(&[
        wasi::fd_read_subscription(1, fd),
        wasi::clock_subscription(2, 5_000_000_000),
    ]));
    for event in &ready {
        println!("ready userdata={} nbytes={} waited_ms={}", event.userdata, event.nbytes, started.elapsed().as_millis());
    }
    let mut peeked = [0u8; 4];
    let n = must("peek", wasi::recv_flags(fd, &mut peeked, wasi::RIFLAGS_PEEK));
    println!("peeked={}", String::from_utf8_lossy(&peeked[..n]));
    let mut head = [0u8; 3];
    let mut tail = [0u8; 100];
    let n = must("recv", wasi::recv_two(fd, &mut head, &mut tail));
    let mut rest = head[..n.min(3)].to_vec();
    if n > 3 {
        rest.extend_from_slice(&tail[..n - 3]);
    }
    println!("rest={}", String::from_utf8_lossy(&rest));
    let ready = must("poll", wasi::poll(&[
        wasi::fd_read_subscription(1, fd),
        wasi::clock_subscription(2, 200_000_000),
    ]));
    let fired: Vec<String> = ready.iter().map(|event| event.userdata.to_string()).collect();
    println!("then_ready={}", fired.join(","));
}

fn fdstat_of(fd: u32) {
    match wasi::fdstat(fd) {
        Ok((filetype, flags, rights)) => {
            println!("filetype={} flags={} rights={:#x}", filetype, flags, rights)
        }
        Err(errno) => println!("fdstat_errno={}", errno),
    }
}

fn block_recv(ip: [u8; 4], port: u16) {
    let fd = must("open", wasi::open(wasi::INET4, wasi::STREAM));
    must("connect", wasi::connect(fd, ip, port));
    say("connected=1".to_string());
    let mut buf = [0u8; 16];
    let n = must("recv", wasi::recv(fd, &mut buf));
    println!("received={}", n);
}

fn sleep(millis: u64) {
    say("sleeping=1".to_string());
    std::thread::sleep(Duration::from_millis(millis));
    println!("slept=1");
}

fn spin() {
    say("spinning=1".to_string());
    let mut counter: u64 = 0;
    loop {
        // A volatile read keeps the optimiser from proving the loop useless.
        counter = unsafe { std::ptr::read_volatile(&counter) }.wrapping_add(1);
    }
}
