//! `redisbench HOST:PORT COUNT`: SET one key, then time COUNT GETs of it
//! through redis-sample and print `gets=… seconds=… per_second=…`.

use std::env;
use std::process;
use std::time::Instant;

const KEY: &str = "wasiport:bench";
const VALUE: &str = "0123456789abcdef";

fn run(addr: &str, count: u64) -> redis_sample::RedisResult<f64> {
    let client = redis_sample::Client::open(&format!("redis://{}/", addr))?;
    let mut connection = client.get_connection()?;
    connection.set(KEY, VALUE)?;
    let started = Instant::now();
    for _ in 0..count {
        if connection.get(KEY)?.as_deref() != Some(VALUE) {
            eprintln!("redisbench: GET returned something else");
            process::exit(1);
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: redisbench HOST:PORT COUNT");
        process::exit(64);
    }
    let count: u64 = args[2].parse().unwrap_or_else(|_| process::exit(64));
    match run(&args[1], count) {
        Ok(seconds) => println!("gets={} seconds={:.6} per_second={:.1}", count, seconds, count as f64 / seconds),
        Err(error) => {
            eprintln!("redisbench: {}", error);
            process::exit(1);
        }
    }
}
