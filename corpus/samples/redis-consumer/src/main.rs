//! `redis-consumer [KEY [VALUE]]`: SET KEY VALUE, then GET KEY and print the value.
//!
//! The server comes from `REDIS_ADDR` (`host:port`, default 127.0.0.1:6379).
//! With `REDIS_CONNECT_TIMEOUT_MS` set, the connection gives up after that
//! long. On failure the error and its `io::ErrorKind` go to stderr and the
//! exit status is 1.

use std::env;
use std::process;
use std::time::Duration;

use redis_sample::{Client, RedisResult};

const DEFAULT_ADDR: &str = "127.0.0.1:6379";
const DEFAULT_KEY: &str = "wasiport:greeting";
const DEFAULT_VALUE: &str = "hello from redis-consumer";
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn connect_timeout() -> Option<Duration> {
    let millis = env::var("REDIS_CONNECT_TIMEOUT_MS").ok()?;
    millis.trim().parse().ok().map(Duration::from_millis)
}

fn set_then_get(addr: &str, key: &str, value: &str) -> RedisResult<Option<String>> {
    let client = Client::open(&format!("redis://{}/", addr))?;
    let mut connection = match connect_timeout() {
        Some(timeout) => client.get_connection_with_timeout(timeout)?,
        None => client.get_connection()?,
    };
    connection.set_read_timeout(Some(READ_TIMEOUT))?;
    connection.set_write_timeout(Some(READ_TIMEOUT))?;
    connection.set(key, value)?;
    let stored = connection.get(key)?;
    connection.close()?;
    Ok(stored)
}

fn main() {
    let addr = env::var("REDIS_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_string());
    let args: Vec<String> = env::args().skip(1).collect();
    let key = args.first().map(String::as_str).unwrap_or(DEFAULT_KEY);
    let value = args.get(1).map(String::as_str).unwrap_or(DEFAULT_VALUE);

    match set_then_get(&addr, key, value) {
        Ok(Some(stored)) => println!("{}", stored),
        Ok(None) => {
            eprintln!("redis-consumer: {} vanished between SET and GET", key);
            process::exit(1);
        }
        Err(error) => {
            match error.io_error_kind() {
                Some(kind) => eprintln!("redis-consumer: {} (io::ErrorKind::{:?})", error, kind),
                None => eprintln!("redis-consumer: {}", error),
            }
            process::exit(1);
        }
    }
}
