//! `http-hello [ADDR [REQUESTS]]`: serve REQUESTS requests (default 1) on ADDR
//! (default 127.0.0.1:8080), one connection at a time, then exit.
//!
//! Prints `listening on <addr>` first, so a caller that passed port 0 learns
//! the port. Each response is `Hello from <path>`.

use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process;
use std::time::Duration;

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The request target of `GET /path HTTP/1.1`.
fn request_path(request_line: &str) -> Option<&str> {
    let mut parts = request_line.split_whitespace();
    let _method = parts.next()?;
    parts.next()
}

fn respond(mut writer: &TcpStream, status: &str, body: &str) -> io::Result<()> {
    write!(
        writer,
        "HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status,
        body.len(),
        body
    )?;
    writer.flush()
}

/// Read the request head through a clone of the stream, answer through the original.
fn handle(stream: TcpStream, peer: Option<SocketAddr>) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);

    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
    }

    match request_path(&request_line) {
        Some(path) => {
            respond(&stream, "200 OK", &format!("Hello from {}\n", path))?;
            match peer {
                Some(peer) => eprintln!("served {} to {}", path, peer),
                None => eprintln!("served {}", path),
            }
        }
        None => respond(&stream, "400 Bad Request", "bad request\n")?,
    }
    stream.shutdown(std::net::Shutdown::Write)
}

fn serve(addr: &str, requests: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    if requests == 0 {
        return Ok(());
    }
    // The first connection through accept(), which also names the peer...
    let (stream, peer) = listener.accept()?;
    handle(stream, Some(peer))?;
    // ...the rest through incoming().
    for stream in listener.incoming().take(requests - 1) {
        handle(stream?, None)?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let addr = args.first().map(String::as_str).unwrap_or(DEFAULT_ADDR);
    let requests = match args.get(1).map(|n| n.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("http-hello: REQUESTS must be a number");
            process::exit(2);
        }
    };
    if let Err(error) = serve(addr, requests) {
        eprintln!("http-hello: {} (io::ErrorKind::{:?})", error, error.kind());
        process::exit(1);
    }
}
