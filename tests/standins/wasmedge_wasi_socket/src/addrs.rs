//! The crate's own `ToSocketAddrs` (std's cannot resolve names on WASI) and
//! name lookup through the host's `sock_getaddrinfo`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::{iter, option, slice, vec};

use crate::socket::{AddressFamily, WasiAddrinfo, WasiSockaddr};

/// How many records `nslookup` lets the host fill.
const MAX_LOOKUP_RESULTS: usize = 10;

/// Resolve `node` for `service`.
///
/// Upstream 0.5.4 switches to DNS over TCP when `DNS_SERVER` is set; that path
/// needs `rand` and `dns-parser`, which this stand-in leaves out, so it always
/// asks the host.
pub fn nslookup(node: &str, service: &str) -> io::Result<Vec<SocketAddr>> {
    nslookup_with_host(node, service)
}

/// Resolve through `sock_getaddrinfo`. IPv6 answers are skipped, as upstream does.
pub fn nslookup_with_host(node: &str, service: &str) -> io::Result<Vec<SocketAddr>> {
    let mut sockaddrs: Vec<WasiSockaddr> = Vec::new();
    let mut sockbuffs: Vec<[u8; 26]> = Vec::new();
    let mut canonnames: Vec<String> = Vec::new();
    let records = WasiAddrinfo::get_addrinfo(
        node,
        service,
        &WasiAddrinfo::default(),
        MAX_LOOKUP_RESULTS,
        &mut sockaddrs,
        &mut sockbuffs,
        &mut canonnames,
    )?;
    let found = records
        .iter()
        .zip(sockaddrs.iter().zip(sockbuffs.iter()))
        .filter(|(record, _)| {
            let addrlen = record.ai_addrlen;
            addrlen != 0
        })
        .filter_map(|(_, (sockaddr, data))| ipv4_from_sa_data(sockaddr.family, data))
        .collect();
    Ok(found)
}

/// `sa_data` holds the Linux `sockaddr_in` from `sin_port` on: port (big-endian), address.
fn ipv4_from_sa_data(family: AddressFamily, data: &[u8; 26]) -> Option<SocketAddr> {
    if !family.is_v4() {
        return None;
    }
    let port = u16::from_be_bytes([data[0], data[1]]);
    let ip = Ipv4Addr::new(data[2], data[3], data[4], data[5]);
    Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// Resolve `host`, then put `port` on every answer.
fn lookup_host_port(host: &str, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    let mut found = nslookup(host, "http")?;
    for addr in found.iter_mut() {
        addr.set_port(port);
    }
    Ok(found.into_iter())
}

/// Same shape as `std::net::ToSocketAddrs`, but names resolve through WasmEdge.
pub trait ToSocketAddrs {
    type Iter: Iterator<Item = SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

impl ToSocketAddrs for SocketAddr {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(*self).into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(SocketAddr::V4(*self)).into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(SocketAddr::V6(*self)).into_iter())
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(SocketAddr::new(self.0, self.1)).into_iter())
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV4::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV6::new(self.0, self.1, 0, 0).to_socket_addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;

    /// IP literals are parsed; anything else is looked up.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)].into_iter()),
            Err(_) => lookup_host_port(host, port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

/// `"ip:port"` or `"host:port"` (exactly one colon when it is not an IP literal).
impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        let parts: Vec<&str> = self.split(':').collect();
        if parts.len() != 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid socket address",
            ));
        }
        let port: u16 = parts[1]
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
        lookup_host_port(parts[0], port)
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = iter::Cloned<slice::Iter<'a, SocketAddr>>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}
