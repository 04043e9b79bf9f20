//! A small synchronous Redis client.
//!
//! Its connection layer has the shape of redis-rs 0.22 (`connection.rs`): a
//! `std::net` import with `self` and `ToSocketAddrs`, an `ActualConnection`
//! enum with a TCP arm and a Unix arm behind `cfg(unix)`, a connect path with
//! an optional `connect_timeout`, connection-level `set_read_timeout` /
//! `set_write_timeout` methods that forward to the stream, and
//! `net::Shutdown::Both` when a connection is closed.

mod client;
mod connection;
mod resp;
mod types;

pub use client::{Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
pub use connection::Connection;
pub use resp::{encode_command, parse_value};
pub use types::{ErrorKind, RedisError, RedisResult, Value};
