//! `tokio-echo serve ADDR [CONNECTIONS]`: accept CONNECTIONS connections (default 1) on ADDR,
//! echo each one in its own task until the client closes its side, and exit when all are done.
//! Prints `listening on <addr>` first, so a caller that passed port 0 learns the port.
//!
//! `tokio-echo client ADDR [ROUNDS [SIZE]]`: send SIZE bytes (default 64) ROUNDS times (default 1),
//! read each echo back in full, check it, and print `<rounds> round trips of <size> bytes`.
//!
//! Both run on tokio's current-thread runtime, as a WASI build must: there are no threads.

use std::env;
use std::io;
use std::process;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echo until end of stream; returns how many bytes went back.
async fn echo(mut stream: TcpStream) -> io::Result<usize> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let received = stream.read(&mut buf).await?;
        if received == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..received]).await?;
        total += received;
    }
}

async fn serve(addr: &str, connections: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (stream, peer) = listener.accept().await?;
        tasks.push(tokio::spawn(async move {
            match echo(stream).await {
                Ok(echoed) => eprintln!("echoed {} bytes to {}", echoed, peer),
                Err(error) => eprintln!("connection from {}: {}", peer, error),
            }
        }));
    }
    // Stop listening before waiting for the tasks. Besides being tidy, this matters on tokio_wasi:
    // its runtime cannot interrupt its own wait for socket events (WASI has no wake-up
    // descriptor), so a task that finishes cannot wake `main` while `main` still waits on an
    // open listener; with nothing else to wait on, the runtime's wait returns at once.
    drop(listener);
    for task in tasks {
        task.await.map_err(|error| io::Error::new(io::ErrorKind::Other, error.to_string()))?;
    }
    Ok(())
}

async fn client(addr: &str, rounds: usize, size: usize) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let message: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut reply = vec![0u8; size];
    for _ in 0..rounds {
        stream.write_all(&message).await?;
        stream.read_exact(&mut reply).await?;
        if reply != message {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the echo differs from what was sent"));
        }
    }
    stream.shutdown().await?;
    println!("{} round trips of {} bytes", rounds, size);
    Ok(())
}

fn number(args: &[String], index: usize, default: usize, what: &str) -> usize {
    match args.get(index).map(|n| n.parse::<usize>()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(_)) => usage(&format!("{} must be a number", what)),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("tokio-echo: {}\nusage: tokio-echo serve ADDR [CONNECTIONS] | client ADDR [ROUNDS [SIZE]]", problem);
    process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let addr = match args.get(1) {
        Some(addr) => addr.clone(),
        None => usage("an ADDR is needed"),
    };
    let outcome = match args.first().map(String::as_str) {
        Some("serve") => serve(&addr, number(&args, 2, 1, "CONNECTIONS")).await,
        Some("client") => client(&addr, number(&args, 2, 1, "ROUNDS"), number(&args, 3, 64, "SIZE")).await,
        _ => usage("the first argument is `serve` or `client`"),
    };
    if let Err(error) = outcome {
        eprintln!("tokio-echo: {} (io::ErrorKind::{:?})", error, error.kind());
        process::exit(1);
    }
}
