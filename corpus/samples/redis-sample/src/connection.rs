//! Sockets: how a connection is opened, configured, used and closed.

use std::io::{self, Write};
use std::net::{self, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::client::{ConnectionAddr, ConnectionInfo};
use crate::resp::{encode_command, parse_value};
use crate::types::{ErrorKind, RedisError, RedisResult, Value};

pub(crate) struct TcpConnection {
    reader: TcpStream,
    open: bool,
}

#[cfg(unix)]
pub(crate) struct UnixConnection {
    sock: UnixStream,
    open: bool,
}

pub(crate) enum ActualConnection {
    Tcp(TcpConnection),
    #[cfg(unix)]
    Unix(UnixConnection),
}

/// `connect_timeout` takes one resolved address, so try each in turn.
fn connect_tcp(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let addr = (host, port);
    match timeout {
        None => TcpStream::connect(addr),
        Some(timeout) => {
            let mut last_error = None;
            for resolved in addr.to_socket_addrs()? {
                match TcpStream::connect_timeout(&resolved, timeout) {
                    Ok(stream) => return Ok(stream),
                    Err(error) => last_error = Some(error),
                }
            }
            Err(last_error.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
            }))
        }
    }
}

impl ActualConnection {
    pub(crate) fn new(
        addr: &ConnectionAddr,
        timeout: Option<Duration>,
    ) -> RedisResult<ActualConnection> {
        Ok(match *addr {
            ConnectionAddr::Tcp(ref host, port) => ActualConnection::Tcp(TcpConnection {
                reader: connect_tcp(host, port, timeout)?,
                open: true,
            }),
            #[cfg(unix)]
            ConnectionAddr::Unix(ref path) => ActualConnection::Unix(UnixConnection {
                sock: UnixStream::connect(path)?,
                open: true,
            }),
        })
    }

    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) -> RedisResult<()> {
        let (result, open) = match *self {
            ActualConnection::Tcp(ref mut connection) => {
                (connection.reader.write_all(bytes), &mut connection.open)
            }
            #[cfg(unix)]
            ActualConnection::Unix(ref mut connection) => {
                (connection.sock.write_all(bytes), &mut connection.open)
            }
        };
        result.map_err(|error| {
            let error = RedisError::from(error);
            if error.is_connection_dropped() {
                *open = false;
            }
            error
        })
    }

    pub(crate) fn read_response(&mut self) -> RedisResult<Value> {
        let (result, open) = match *self {
            ActualConnection::Tcp(TcpConnection {
                ref mut reader,
                ref mut open,
            }) => (parse_value(reader), open),
            #[cfg(unix)]
            ActualConnection::Unix(UnixConnection {
                ref mut sock,
                ref mut open,
            }) => (parse_value(sock), open),
        };
        if let Err(ref error) = result {
            if error.is_connection_dropped() {
                *open = false;
            }
        }
        result
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        match *self {
            ActualConnection::Tcp(TcpConnection { ref reader, .. }) => {
                reader.set_write_timeout(dur)?;
            }
            #[cfg(unix)]
            ActualConnection::Unix(UnixConnection { ref sock, .. }) => {
                sock.set_write_timeout(dur)?;
            }
        }
        Ok(())
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        match *self {
            ActualConnection::Tcp(TcpConnection { ref reader, .. }) => {
                reader.set_read_timeout(dur)?;
            }
            #[cfg(unix)]
            ActualConnection::Unix(UnixConnection { ref sock, .. }) => {
                sock.set_read_timeout(dur)?;
            }
        }
        Ok(())
    }

    pub(crate) fn is_open(&self) -> bool {
        match *self {
            ActualConnection::Tcp(TcpConnection { open, .. }) => open,
            #[cfg(unix)]
            ActualConnection::Unix(UnixConnection { open, .. }) => open,
        }
    }

    /// Shut the socket down; the server sees the connection end at once.
    pub(crate) fn close(&mut self) {
        match *self {
            ActualConnection::Tcp(ref mut connection) => {
                let _ = connection.reader.shutdown(net::Shutdown::Both);
                connection.open = false;
            }
            #[cfg(unix)]
            ActualConnection::Unix(ref mut connection) => {
                let _ = connection.sock.shutdown(net::Shutdown::Both);
                connection.open = false;
            }
        }
    }
}

/// A connection with the database selected and credentials sent.
pub struct Connection {
    con: ActualConnection,
    db: i64,
}

pub(crate) fn connect(info: &ConnectionInfo, timeout: Option<Duration>) -> RedisResult<Connection> {
    let mut connection = Connection {
        con: ActualConnection::new(&info.addr, timeout)?,
        db: info.redis.db,
    };
    if let Some(ref password) = info.redis.password {
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(ref username) = info.redis.username {
            auth.push(username.as_bytes());
        }
        auth.push(password.as_bytes());
        connection.req_command(&auth)?;
    }
    if info.redis.db != 0 {
        let db = info.redis.db.to_string();
        connection.req_command(&[b"SELECT", db.as_bytes()])?;
    }
    Ok(connection)
}

fn unexpected(value: Value) -> RedisError {
    RedisError::new(
        ErrorKind::TypeError,
        format!("unexpected reply {:?}", value),
    )
}

impl Connection {
    /// Send one command and read its reply.
    pub fn req_command(&mut self, args: &[&[u8]]) -> RedisResult<Value> {
        self.con.send_bytes(&encode_command(args))?;
        self.con.read_response()
    }

    pub fn set_read_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.con.set_read_timeout(dur)
    }

    pub fn set_write_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        self.con.set_write_timeout(dur)
    }

    pub fn is_open(&self) -> bool {
        self.con.is_open()
    }

    pub fn get_db(&self) -> i64 {
        self.db
    }

    pub fn ping(&mut self) -> RedisResult<String> {
        match self.req_command(&[b"PING"])? {
            Value::Status(status) => Ok(status),
            Value::Okay => Ok("OK".to_string()),
            other => Err(unexpected(other)),
        }
    }

    pub fn set(&mut self, key: &str, value: &str) -> RedisResult<()> {
        match self.req_command(&[b"SET", key.as_bytes(), value.as_bytes()])? {
            Value::Okay => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub fn get(&mut self, key: &str) -> RedisResult<Option<String>> {
        match self.req_command(&[b"GET", key.as_bytes()])? {
            Value::Nil => Ok(None),
            Value::Data(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            other => Err(unexpected(other)),
        }
    }

    /// How many keys were removed.
    pub fn del(&mut self, key: &str) -> RedisResult<i64> {
        match self.req_command(&[b"DEL", key.as_bytes()])? {
            Value::Int(removed) => Ok(removed),
            other => Err(unexpected(other)),
        }
    }

    /// Say goodbye (QUIT) and shut the socket down.
    pub fn close(mut self) -> RedisResult<()> {
        let reply = self.req_command(&[b"QUIT"]);
        self.con.close();
        reply.map(|_| ())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.con.is_open() {
            self.con.close();
        }
    }
}
