//! `TcpStream`, `TcpListener` and `UdpSocket` with upstream's shapes: they
//! look like std's, but `bind`/`accept` on a listener take a `nonblocking`
//! flag, and there is no `connect_timeout`, `try_clone` or `set_nodelay`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::wasi::prelude::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use crate::addrs::ToSocketAddrs;
use crate::socket::{AddressFamily, Socket, SocketOptLevel, SocketOptName, SocketType};

/// Try `attempt` on each resolved address and return the first success, or
/// the last error (`default_error` if there was no address at all).
fn first_success<A, T, F>(addrs: A, default_error: io::ErrorKind, mut attempt: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(&SocketAddr) -> io::Result<T>,
{
    let mut last_error = io::Error::from(default_error);
    for addr in addrs.to_socket_addrs()? {
        match attempt(&addr) {
            Ok(value) => return Ok(value),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

#[derive(Debug)]
pub struct TcpStream {
    s: Socket,
}

impl TcpStream {
    /// Connect to the first address that accepts (IPv4 only, as upstream).
    pub fn connect<A: ToSocketAddrs>(addrs: A) -> io::Result<TcpStream> {
        first_success(addrs, io::ErrorKind::ConnectionRefused, |addr| {
            let s = Socket::new(AddressFamily::from(addr), SocketType::Stream)?;
            s.connect(addr)?;
            Ok(TcpStream { s })
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_peer()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_local()
    }

    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.s.set_nonblocking(nonblocking)
    }

    pub fn new(s: Socket) -> Self {
        TcpStream { s }
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsRef<Socket> for TcpStream {
    fn as_ref(&self) -> &Socket {
        &self.s
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsMut<Socket> for TcpStream {
    fn as_mut(&mut self) -> &mut Socket {
        &mut self.s
    }
}

impl From<Socket> for TcpStream {
    fn from(s: Socket) -> Self {
        TcpStream { s }
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.recv(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.recv(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.send(buf)
    }

    /// Sockets have no user-space buffer to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.s.as_raw_fd()
    }
}

impl IntoRawFd for TcpStream {
    fn into_raw_fd(self) -> RawFd {
        self.s.into_raw_fd()
    }
}

impl FromRawFd for TcpStream {
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        TcpStream {
            s: Socket::from_raw_fd(fd),
        }
    }
}

#[derive(Debug)]
pub struct TcpListener {
    s: Socket,
    /// The address bound (or the error reading it back), as upstream exposes it.
    pub address: io::Result<SocketAddr>,
    pub port: Option<u16>,
}

/// Upstream's listen backlog.
const LISTEN_BACKLOG: i32 = 128;

impl TcpListener {
    /// Bind with SO_REUSEADDR, listen, then apply `nonblocking`.
    pub fn bind<A: ToSocketAddrs>(addrs: A, nonblocking: bool) -> io::Result<TcpListener> {
        first_success(addrs, io::ErrorKind::Other, |addr| {
            let s = Socket::new(AddressFamily::from(addr), SocketType::Stream)?;
            s.setsockopt(SocketOptLevel::SolSocket, SocketOptName::SoReuseaddr, 1i32)?;
            s.bind(addr)?;
            s.listen(LISTEN_BACKLOG)?;
            s.set_nonblocking(nonblocking)?;
            Ok(TcpListener {
                s,
                address: Ok(*addr),
                port: Some(addr.port()),
            })
        })
    }

    /// Accept a connection; the new stream is non-blocking if `nonblocking`.
    pub fn accept(&self, nonblocking: bool) -> io::Result<(TcpStream, SocketAddr)> {
        let stream = TcpStream {
            s: self.s.accept(nonblocking)?,
        };
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.get_local()
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsRef<Socket> for TcpListener {
    fn as_ref(&self) -> &Socket {
        &self.s
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsMut<Socket> for TcpListener {
    fn as_mut(&mut self) -> &mut Socket {
        &mut self.s
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.s.as_raw_fd()
    }
}

impl IntoRawFd for TcpListener {
    fn into_raw_fd(self) -> RawFd {
        self.s.into_raw_fd()
    }
}

impl FromRawFd for TcpListener {
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        let s = Socket::from_raw_fd(fd);
        let address = s.get_local();
        let port = address.as_ref().ok().map(SocketAddr::port);
        TcpListener { s, address, port }
    }
}

/// Blocking accepts, forever.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept(false).map(|(stream, _)| stream))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[derive(Debug)]
pub struct UdpSocket {
    s: Socket,
}

impl UdpSocket {
    pub fn bind<A: ToSocketAddrs>(addrs: A) -> io::Result<UdpSocket> {
        first_success(addrs, io::ErrorKind::Other, |addr| {
            let s = Socket::new(AddressFamily::from(addr), SocketType::Datagram)?;
            s.bind(addr)?;
            Ok(UdpSocket { s })
        })
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.s.recv_from(buf)
    }

    /// Sends to the first address `addr` resolves to.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let target = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "No address."))?;
        self.s.send_to(buf, target)
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsRef<Socket> for UdpSocket {
    fn as_ref(&self) -> &Socket {
        &self.s
    }
}

/// Since 0.5.
#[cfg(not(wws_api_0_4))]
impl AsMut<Socket> for UdpSocket {
    fn as_mut(&mut self) -> &mut Socket {
        &mut self.s
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.s.as_raw_fd()
    }
}
