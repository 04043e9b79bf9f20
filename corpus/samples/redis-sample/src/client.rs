//! Connection URLs and the `Client` that opens connections.

#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

use crate::connection::{connect, Connection};
use crate::types::{ErrorKind, RedisError, RedisResult};

const DEFAULT_PORT: u16 = 6379;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionAddr {
    Tcp(String, u16),
    #[cfg(unix)]
    Unix(PathBuf),
}

/// Database and credentials sent after connecting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisConnectionInfo {
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub addr: ConnectionAddr,
    pub redis: RedisConnectionInfo,
}

fn invalid(detail: &str) -> RedisError {
    RedisError::new(ErrorKind::InvalidClientConfig, detail)
}

/// `user:password@` before the host, if present.
fn split_credentials(authority: &str) -> (Option<String>, Option<String>, &str) {
    match authority.rfind('@') {
        None => (None, None, authority),
        Some(at) => {
            let (userinfo, host) = (&authority[..at], &authority[at + 1..]);
            let mut parts = userinfo.splitn(2, ':');
            let user = parts.next().filter(|u| !u.is_empty()).map(String::from);
            let password = parts.next().filter(|p| !p.is_empty()).map(String::from);
            (user, password, host)
        }
    }
}

/// `host`, `host:port`, or `[v6]:port`.
fn split_host_port(hostport: &str) -> RedisResult<(String, u16)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| invalid("unclosed '[' in host"))?;
        let port = match rest[end + 1..].strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| invalid("invalid port"))?,
            None => DEFAULT_PORT,
        };
        return Ok((rest[..end].to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Ok((
            host.to_string(),
            port.parse().map_err(|_| invalid("invalid port"))?,
        )),
        None => Ok((hostport.to_string(), DEFAULT_PORT)),
    }
}

/// `redis://[user:password@]host[:port][/db]`, or `unix:///path` on Unix.
pub fn parse_url(url: &str) -> RedisResult<ConnectionInfo> {
    if let Some(rest) = url.strip_prefix("redis://") {
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, ""),
        };
        let (username, password, hostport) = split_credentials(authority);
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let db = if path.is_empty() {
            0
        } else {
            path.parse()
                .map_err(|_| invalid("invalid database number"))?
        };
        return Ok(ConnectionInfo {
            addr: ConnectionAddr::Tcp(host, port),
            redis: RedisConnectionInfo {
                db,
                username,
                password,
            },
        });
    }
    #[cfg(unix)]
    {
        if let Some(path) = url.strip_prefix("unix://") {
            return Ok(ConnectionInfo {
                addr: ConnectionAddr::Unix(PathBuf::from(path)),
                redis: RedisConnectionInfo::default(),
            });
        }
    }
    Err(invalid("URL must start with redis://"))
}

/// Opens connections to one server.
#[derive(Debug, Clone)]
pub struct Client {
    info: ConnectionInfo,
}

impl Client {
    pub fn open(url: &str) -> RedisResult<Client> {
        Ok(Client {
            info: parse_url(url)?,
        })
    }

    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    pub fn get_connection(&self) -> RedisResult<Connection> {
        connect(&self.info, None)
    }

    /// Gives up on each address after `timeout`.
    pub fn get_connection_with_timeout(&self, timeout: Duration) -> RedisResult<Connection> {
        connect(&self.info, Some(timeout))
    }
}
