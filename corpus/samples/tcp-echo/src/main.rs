//! `tcp-echo [ADDR [CONNECTIONS]]`: accept CONNECTIONS connections (default 1)
//! on ADDR (default 127.0.0.1:7007) one after another, echo each until the
//! client closes its side, then exit.
//!
//! Prints `listening on <addr>` first, so a caller that passed port 0 learns the port.

use std::env;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process;

const DEFAULT_ADDR: &str = "127.0.0.1:7007";

/// Echo until end of stream; returns how many bytes went back.
fn echo(mut stream: TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let received = stream.read(&mut buf)?;
        if received == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..received])?;
        total += received;
    }
}

fn serve(addr: &str, connections: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for _ in 0..connections {
        let (stream, peer) = listener.accept()?;
        let echoed = echo(stream)?;
        eprintln!("echoed {} bytes to {}", echoed, peer);
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let addr = args.first().map(String::as_str).unwrap_or(DEFAULT_ADDR);
    let connections = match args.get(1).map(|n| n.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("tcp-echo: CONNECTIONS must be a number");
            process::exit(2);
        }
    };
    if let Err(error) = serve(addr, connections) {
        eprintln!("tcp-echo: {} (io::ErrorKind::{:?})", error, error.kind());
        process::exit(1);
    }
}
