//! Test guest for `wasiport run`, written the way a port looks: the socket
//! types come from `wasmedge_wasi_socket` on WASI and from `std::net` natively,
//! so the same client runs under `wasiport run` and as a native binary (the
//! benchmark compares the two).
//!
//! `netclient <command> [args...]` prints `key=value` lines for the tests.

use std::env;
use std::io::{self, Read, Write};
use std::process;
use std::time::{Duration, Instant};

#[cfg(not(target_os = "wasi"))]
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
#[cfg(target_os = "wasi")]
use wasmedge_wasi_socket::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

#[cfg(target_os = "wasi")]
fn listen(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr, false)
}

#[cfg(not(target_os = "wasi"))]
fn listen(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

#[cfg(target_os = "wasi")]
fn accept(listener: &TcpListener) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    listener.accept(false)
}

#[cfg(not(target_os = "wasi"))]
fn accept(listener: &TcpListener) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    listener.accept()
}

#[cfg(target_os = "wasi")]
fn set_read_timeout(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.as_ref().set_recv_timeout(Some(timeout))
}

#[cfg(not(target_os = "wasi"))]
fn set_read_timeout(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(timeout))
}

fn main() {
    let args: Vec<String> = env::args().collect();
    let command = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(2)..];
    let result = match command {
        "redis" => redis_set_get(arg(rest, 0), port(rest, 1), arg(rest, 2), arg(rest, 3)),
        "redis-bench" => redis_bench(arg(rest, 0), port(rest, 1), count(rest, 2)),
        "echo-server" => echo_server(),
        "connect" => connect_only(arg(rest, 0), port(rest, 1)),
        "read-timeout" => read_timeout(arg(rest, 0), port(rest, 1), count(rest, 2)),
        "read-all" => read_all(arg(rest, 0), port(rest, 1), arg(rest, 2)),
        "udp" => udp(arg(rest, 0), port(rest, 1), arg(rest, 2)),
        "resolve" => resolve(arg(rest, 0), port(rest, 1)),
        _ => {
            eprintln!("unknown command {:?}", command);
            process::exit(64);
        }
    };
    if let Err(error) = result {
        println!("error_kind={:?} error={}", error.kind(), error);
        process::exit(1);
    }
}

fn arg(args: &[String], index: usize) -> &str {
    match args.get(index) {
        Some(value) => value,
        None => {
            eprintln!("missing argument {}", index);
            process::exit(64);
        }
    }
}

fn port(args: &[String], index: usize) -> u16 {
    arg(args, index).parse().unwrap_or_else(|_| process::exit(64))
}

fn count(args: &[String], index: usize) -> u64 {
    arg(args, index).parse().unwrap_or_else(|_| process::exit(64))
}

fn say(line: String) {
    println!("{}", line);
    let _ = io::stdout().flush();
}

/// A RESP connection with its own read buffer.
struct Redis {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Redis {
    fn connect(host: &str, port: u16) -> io::Result<Redis> {
        let stream = TcpStream::connect((host, port))?;
        Ok(Redis { stream, buf: Vec::with_capacity(4096), start: 0 })
    }

    fn command(&mut self, parts: &[&[u8]]) -> io::Result<Option<Vec<u8>>> {
        let mut request = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            request.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            request.extend_from_slice(part);
            request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&request)?;
        self.reply()
    }

    fn reply(&mut self) -> io::Result<Option<Vec<u8>>> {
        let line = self.line()?;
        match line.first() {
            Some(b'+') | Some(b':') => Ok(Some(line[1..].to_vec())),
            Some(b'-') => Err(io::Error::new(io::ErrorKind::Other, String::from_utf8_lossy(&line[1..]).into_owned())),
            Some(b'$') => {
                let length: i64 = String::from_utf8_lossy(&line[1..]).parse().map_err(|_| bad_reply())?;
                if length < 0 {
                    return Ok(None);
                }
                let body = self.exact(length as usize + 2)?;
                Ok(Some(body[..length as usize].to_vec()))
            }
            _ => Err(bad_reply()),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buf[self.start..].windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[self.start..self.start + end].to_vec();
                self.start += end + 2;
                return Ok(line);
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, length: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.start < length {
            self.fill()?;
        }
        let data = self.buf[self.start..self.start + length].to_vec();
        self.start += length;
        Ok(data)
    }
}

fn bad_reply() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed RESP reply")
}

fn redis_set_get(host: &str, port: u16, key: &str, value: &str) -> io::Result<()> {
    let mut redis = Redis::connect(host, port)?;
    let set = redis.command(&[b"SET", key.as_bytes(), value.as_bytes()])?;
    println!("set={}", String::from_utf8_lossy(&set.unwrap_or_default()));
    match redis.command(&[b"GET", key.as_bytes()])? {
        Some(found) => println!("get={}", String::from_utf8_lossy(&found)),
        None => println!("get=(nil)"),
    }
    Ok(())
}

fn redis_bench(host: &str, port: u16, count: u64) -> io::Result<()> {
    let mut redis = Redis::connect(host, port)?;
    redis.command(&[b"SET", b"wasiport:bench", b"0123456789abcdef"])?;
    let started = Instant::now();
    for _ in 0..count {
        let value = redis.command(&[b"GET", b"wasiport:bench"])?;
        if value.as_deref() != Some(&b"0123456789abcdef"[..]) {
            return Err(bad_reply());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("gets={} seconds={:.6} per_second={:.1}", count, seconds, count as f64 / seconds);
    Ok(())
}

fn echo_server() -> io::Result<()> {
    let listener = listen("127.0.0.1:0")?;
    say(format!("listening port={}", listener.local_addr()?.port()));
    let (mut stream, peer) = accept(&listener)?;
    say(format!("peer={}", peer));
    let mut buf = [0u8; 4096];
    let mut echoed = 0usize;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
        echoed += n;
    }
    say(format!("echoed={}", echoed));
    Ok(())
}

fn connect_only(host: &str, port: u16) -> io::Result<()> {
    match TcpStream::connect((host, port)) {
        Ok(stream) => println!("connected local={}", stream.local_addr()?),
        Err(error) => println!("connect_kind={:?} raw_os_error={:?}", error.kind(), error.raw_os_error()),
    }
    Ok(())
}

fn read_timeout(host: &str, port: u16, millis: u64) -> io::Result<()> {
    let mut stream = TcpStream::connect((host, port))?;
    set_read_timeout(&stream, Duration::from_millis(millis))?;
    let started = Instant::now();
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(n) => println!("read={} waited_ms={}", n, started.elapsed().as_millis()),
        Err(error) => println!("read_kind={:?} waited_ms={}", error.kind(), started.elapsed().as_millis()),
    }
    Ok(())
}

fn read_all(host: &str, port: u16, request: &str) -> io::Result<()> {
    let mut stream = TcpStream::connect((host, port))?;
    stream.write_all(request.as_bytes())?;
    let mut total = 0usize;
    let mut buf = [0u8; 1024];
    let ending = loop {
        match stream.read(&mut buf) {
            Ok(0) => break "eof".to_string(),
            Ok(n) => total += n,
            Err(error) => break format!("{:?}", error.kind()),
        }
    };
    println!("received={} end={}", total, ending);
    Ok(())
}

fn udp(host: &str, port: u16, message: &str) -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let sent = socket.send_to(message.as_bytes(), (host, port))?;
    let mut buf = [0u8; 512];
    let (n, from) = socket.recv_from(&mut buf)?;
    println!(
        "sent={} reply={} from_ip={} from_port={}",
        sent,
        String::from_utf8_lossy(&buf[..n]),
        from.ip(),
        from.port()
    );
    Ok(())
}

fn resolve(name: &str, port: u16) -> io::Result<()> {
    let found: Vec<String> = (name, port).to_socket_addrs()?.map(|addr| addr.to_string()).collect();
    println!("resolved={}", found.join(","));
    Ok(())
}
