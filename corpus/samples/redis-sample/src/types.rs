//! Values, errors and the result type.

use std::error::Error;
use std::fmt;
use std::io;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    Data(Vec<u8>),
    Bulk(Vec<Value>),
    Status(String),
    Okay,
}

/// What went wrong, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server replied with an error (`-ERR ...`).
    ResponseError,
    /// The reply could not be parsed.
    ParseError,
    /// The connection URL or arguments are invalid.
    InvalidClientConfig,
    /// A reply had a type the caller did not expect.
    TypeError,
    /// Reading from or writing to the socket failed.
    IoError,
}

#[derive(Debug)]
pub struct RedisError {
    kind: ErrorKind,
    detail: String,
    io: Option<io::Error>,
}

impl RedisError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> RedisError {
        RedisError {
            kind,
            detail: detail.into(),
            io: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `io::ErrorKind` when the failure came from the socket.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        self.io.as_ref().map(io::Error::kind)
    }

    /// Errors after which the connection is unusable.
    pub fn is_connection_dropped(&self) -> bool {
        matches!(
            self.io_error_kind(),
            Some(io::ErrorKind::BrokenPipe)
                | Some(io::ErrorKind::ConnectionReset)
                | Some(io::ErrorKind::ConnectionAborted)
                | Some(io::ErrorKind::UnexpectedEof)
        )
    }
}

impl From<io::Error> for RedisError {
    fn from(error: io::Error) -> RedisError {
        RedisError {
            kind: ErrorKind::IoError,
            detail: error.to_string(),
            io: Some(error),
        }
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl Error for RedisError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.io.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}

pub type RedisResult<T> = Result<T, RedisError>;
