//! One `Socket` per WasmEdge socket descriptor, plus the C layouts the host
//! functions read and write (wasm32, little-endian).
//!
//! Items marked `cfg(not(wws_api_0_4))` appeared in 0.5; the 0.4.3 stand-in
//! (a build script sets `wws_api_0_4`) leaves them out.

#![cfg_attr(wws_api_0_4, allow(unused_imports))]

use std::convert::TryFrom;
use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::wasi::prelude::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::time::Duration;

/// Address family as numbered by WasmEdge 0.10 and later.
#[derive(Copy, Clone, Debug)]
#[repr(u8)]
pub enum AddressFamily {
    Unspec,
    Inet4,
    Inet6,
}

impl From<&SocketAddr> for AddressFamily {
    fn from(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => AddressFamily::Inet4,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        }
    }
}

impl AddressFamily {
    pub fn is_unspec(&self) -> bool {
        matches!(self, AddressFamily::Unspec)
    }

    pub fn is_v4(&self) -> bool {
        matches!(self, AddressFamily::Inet4)
    }

    pub fn is_v6(&self) -> bool {
        matches!(self, AddressFamily::Inet6)
    }
}

/// Socket type as numbered by WasmEdge 0.10 and later.
#[derive(Copy, Clone, Debug)]
#[repr(u8)]
pub enum SocketType {
    Any,
    Datagram,
    Stream,
}

/// `__wasi_address_t`: a pointer to address bytes and their length.
#[derive(Copy, Clone)]
#[repr(C)]
pub struct WasiAddress {
    pub buf: *const u8,
    pub size: usize,
}

unsafe impl Send for WasiAddress {}

/// Upstream numbers these by ordinal, not by WASI's flag bits; the default
/// hint (`AiPassive`, 0) therefore means "no flags" on the wire. Kept as is so
/// that hints are byte-identical to upstream's.
#[derive(Copy, Clone, Debug)]
#[repr(u16)]
pub enum AiFlags {
    AiPassive,
    AiCanonname,
    AiNumericHost,
    AiNumericServ,
    AiV4Mapped,
    AiAll,
    AiAddrConfig,
}

#[derive(Copy, Clone, Debug)]
#[repr(u8)]
pub enum AiProtocol {
    IPProtoIP,
    IPProtoTCP,
    IPProtoUDP,
}

/// `__wasi_sockaddr_t`: family, then a pointer to the Linux `sockaddr` bytes
/// from `sin_port` on (port big-endian, then the address).
#[derive(Debug, Clone)]
#[repr(C)]
pub struct WasiSockaddr {
    pub family: AddressFamily,
    pub sa_data_len: u32,
    pub sa_data: *mut u8,
}

/// Room for an IPv6 `sa_data` (port 2 + flowinfo 4 + address 16 + scope 4).
const SA_DATA_CAPACITY: usize = 26;
/// What the host expects to be told for an IPv4 `sa_data`.
const SA_DATA_V4_LEN: u32 = 14;

impl WasiSockaddr {
    pub fn new(family: AddressFamily, sa_data: &mut [u8]) -> WasiSockaddr {
        WasiSockaddr {
            family,
            sa_data_len: sa_data.len() as u32,
            sa_data: sa_data.as_mut_ptr(),
        }
    }
}

impl Default for WasiSockaddr {
    fn default() -> WasiSockaddr {
        WasiSockaddr {
            family: AddressFamily::Inet4,
            sa_data_len: SA_DATA_V4_LEN,
            sa_data: std::ptr::null_mut(),
        }
    }
}

/// `__wasi_addrinfo_t` (28 bytes; `packed(4)` keeps `ai_addrlen` at offset 8).
#[derive(Debug, Clone)]
#[repr(C, packed(4))]
pub struct WasiAddrinfo {
    pub ai_flags: AiFlags,
    pub ai_family: AddressFamily,
    pub ai_socktype: SocketType,
    pub ai_protocol: AiProtocol,
    pub ai_addrlen: u32,
    pub ai_addr: *mut WasiSockaddr,
    pub ai_canonname: *mut u8,
    pub ai_canonnamelen: u32,
    pub ai_next: *mut WasiAddrinfo,
}

impl WasiAddrinfo {
    /// The hint upstream uses: IPv4, stream, TCP, no flags.
    #[allow(clippy::should_implement_trait)]
    pub fn default() -> WasiAddrinfo {
        WasiAddrinfo {
            ai_flags: AiFlags::AiPassive,
            ai_family: AddressFamily::Inet4,
            ai_socktype: SocketType::Stream,
            ai_protocol: AiProtocol::IPProtoTCP,
            ai_addrlen: 0,
            ai_addr: std::ptr::null_mut(),
            ai_canonname: std::ptr::null_mut(),
            ai_canonnamelen: 0,
            ai_next: std::ptr::null_mut(),
        }
    }

    /// Resolve `node`/`service` with the host's `sock_getaddrinfo`.
    ///
    /// The host fills records the guest has allocated, so the caller owns the
    /// buffers (`sockaddr`, `sockbuff`, `ai_canonname`): they must outlive the
    /// returned records, whose pointers lead into them.
    pub fn get_addrinfo(
        node: &str,
        service: &str,
        hints: &WasiAddrinfo,
        max_reslen: usize,
        sockaddr: &mut Vec<WasiSockaddr>,
        sockbuff: &mut Vec<[u8; 26]>,
        ai_canonname: &mut Vec<String>,
    ) -> io::Result<Vec<WasiAddrinfo>> {
        let node = nul_terminated(node);
        let service = nul_terminated(service);

        // Size every buffer before taking pointers into them: growing a Vec
        // later would move it and leave the host writing into freed memory.
        sockbuff.clear();
        sockbuff.resize(max_reslen, [0u8; SA_DATA_CAPACITY]);
        ai_canonname.clear();
        ai_canonname.resize_with(max_reslen, String::new);
        sockaddr.clear();
        sockaddr.resize_with(max_reslen, WasiSockaddr::default);
        let mut records = vec![WasiAddrinfo::default(); max_reslen];

        for (slot, buffer) in sockaddr.iter_mut().zip(sockbuff.iter_mut()) {
            slot.sa_data = buffer.as_mut_ptr();
        }
        for i in 0..max_reslen {
            records[i].ai_addr = &mut sockaddr[i];
            records[i].ai_canonname = ai_canonname[i].as_mut_ptr();
        }
        for i in 1..max_reslen {
            let next: *mut WasiAddrinfo = &mut records[i];
            records[i - 1].ai_next = next;
        }

        let mut first = records.as_mut_ptr() as u32;
        let mut filled: u32 = 0;
        let code = unsafe {
            wasi_sock::sock_getaddrinfo(
                node.as_ptr(),
                node.len() as u32,
                service.as_ptr(),
                service.len() as u32,
                hints,
                &mut first,
                max_reslen as u32,
                &mut filled,
            )
        };
        check(code)?;
        records.truncate((filled as usize).min(max_reslen));
        Ok(records)
    }
}

/// WasmEdge reads the strings with their terminating NUL counted in the length.
fn nul_terminated(text: &str) -> String {
    let mut owned = text.to_string();
    if !owned.ends_with('\0') {
        owned.push('\0');
    }
    owned
}

/// A receive iovec (`__wasi_iovec_t`).
#[repr(C)]
pub struct IovecRead {
    pub buf: *mut u8,
    pub size: usize,
}

#[cfg(not(wws_api_0_4))]
impl From<libc::iovec> for IovecRead {
    fn from(value: libc::iovec) -> Self {
        IovecRead {
            buf: value.iov_base as *mut u8,
            size: value.iov_len,
        }
    }
}

/// A send iovec (`__wasi_ciovec_t`).
#[repr(C)]
pub struct IovecWrite {
    pub buf: *const u8,
    pub size: usize,
}

#[cfg(not(wws_api_0_4))]
impl From<libc::iovec> for IovecWrite {
    fn from(value: libc::iovec) -> Self {
        IovecWrite {
            buf: value.iov_base as *const u8,
            size: value.iov_len,
        }
    }
}

/// WasmEdge knows one option level.
#[derive(Copy, Clone, Debug)]
#[repr(u8)]
pub enum SocketOptLevel {
    SolSocket = 0,
}

#[cfg(not(wws_api_0_4))]
impl TryFrom<i32> for SocketOptLevel {
    type Error = io::Error;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(SocketOptLevel::SolSocket),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
}

/// `__wasi_sock_opt_so_e`.
#[derive(Copy, Clone, Debug)]
#[repr(u8)]
pub enum SocketOptName {
    SoReuseaddr = 0,
    SoType = 1,
    SoError = 2,
    SoDontroute = 3,
    SoBroadcast = 4,
    SoSndbuf = 5,
    SoRcvbuf = 6,
    SoKeepalive = 7,
    SoOobinline = 8,
    SoLinger = 9,
    SoRcvlowat = 10,
    SoRcvtimeo = 11,
    SoSndtimeo = 12,
    SoAcceptconn = 13,
    #[cfg(not(wws_api_0_4))]
    SoBindToDevice = 14,
}

#[cfg(not(wws_api_0_4))]
const ALL_OPTION_NAMES: [SocketOptName; 15] = [
    SocketOptName::SoReuseaddr,
    SocketOptName::SoType,
    SocketOptName::SoError,
    SocketOptName::SoDontroute,
    SocketOptName::SoBroadcast,
    SocketOptName::SoSndbuf,
    SocketOptName::SoRcvbuf,
    SocketOptName::SoKeepalive,
    SocketOptName::SoOobinline,
    SocketOptName::SoLinger,
    SocketOptName::SoRcvlowat,
    SocketOptName::SoRcvtimeo,
    SocketOptName::SoSndtimeo,
    SocketOptName::SoAcceptconn,
    SocketOptName::SoBindToDevice,
];

#[cfg(not(wws_api_0_4))]
impl TryFrom<i32> for SocketOptName {
    type Error = io::Error;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        ALL_OPTION_NAMES
            .iter()
            .copied()
            .find(|name| *name as i32 == value)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }
}

#[cfg(not(wws_api_0_4))]
/// `__WASI_RIFLAGS_RECV_PEEK`
pub const MSG_PEEK: u16 = 1;
#[cfg(not(wws_api_0_4))]
/// `__WASI_RIFLAGS_RECV_WAITALL`
pub const MSG_WAITALL: u16 = 2;
#[cfg(not(wws_api_0_4))]
/// `__WASI_ROFLAGS_RECV_DATA_TRUNCATED`
pub const MSG_TRUNC: u16 = 1;

/// WasmEdge's socket host functions. Every parameter lowers to an `i32`; the
/// parameter counts select the host variant (V1 `sock_accept` with 2,
/// V1 `sock_get{local,peer}addr` with 4, `sock_recv_from` V2 with 8 in 0.5
/// or V1 with 7 in 0.4).
mod wasi_sock {
    use super::{IovecRead, IovecWrite, WasiAddress, WasiAddrinfo};

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn sock_open(family: u8, kind: u8, new_fd: *mut u32) -> u32;
        pub fn sock_bind(fd: u32, addr: *mut WasiAddress, port: u32) -> u32;
        pub fn sock_listen(fd: u32, backlog: u32) -> u32;
        pub fn sock_accept(fd: u32, new_fd: *mut u32) -> u32;
        pub fn sock_connect(fd: u32, addr: *mut WasiAddress, port: u32) -> u32;
        pub fn sock_recv(
            fd: u32,
            iovs: *mut IovecRead,
            iovs_len: usize,
            flags: u16,
            received: *mut usize,
            oflags: *mut usize,
        ) -> u32;
        /// V2 (8 parameters), what 0.5 imports.
        #[cfg(not(wws_api_0_4))]
        pub fn sock_recv_from(
            fd: u32,
            iovs: *mut IovecRead,
            iovs_len: u32,
            addr: *mut u8,
            flags: u16,
            port: *mut u32,
            received: *mut usize,
            oflags: *mut usize,
        ) -> u32;
        /// V1 (7 parameters), what 0.4 imports.
        #[cfg(wws_api_0_4)]
        pub fn sock_recv_from(
            fd: u32,
            iovs: *mut IovecRead,
            iovs_len: u32,
            addr: *mut u8,
            flags: u16,
            received: *mut usize,
            oflags: *mut usize,
        ) -> u32;
        pub fn sock_send(
            fd: u32,
            iovs: *const IovecWrite,
            iovs_len: u32,
            flags: u16,
            sent: *mut u32,
        ) -> u32;
        pub fn sock_send_to(
            fd: u32,
            iovs: *const IovecWrite,
            iovs_len: u32,
            addr: *const u8,
            port: u32,
            flags: u16,
            sent: *mut u32,
        ) -> u32;
        pub fn sock_shutdown(fd: u32, how: u8) -> u32;
        pub fn sock_getpeeraddr(
            fd: u32,
            addr: *mut WasiAddress,
            addr_type: *mut u32,
            port: *mut u32,
        ) -> u32;
        pub fn sock_getlocaladdr(
            fd: u32,
            addr: *mut WasiAddress,
            addr_type: *mut u32,
            port: *mut u32,
        ) -> u32;
        pub fn sock_getsockopt(
            fd: u32,
            level: i32,
            name: i32,
            value: *mut i32,
            value_len: *mut u32,
        ) -> u32;
        pub fn sock_setsockopt(
            fd: u32,
            level: i32,
            name: i32,
            value: *const i32,
            value_len: u32,
        ) -> u32;
        pub fn sock_getaddrinfo(
            node: *const u8,
            node_len: u32,
            service: *const u8,
            service_len: u32,
            hints: *const WasiAddrinfo,
            res: *mut u32,
            max_len: u32,
            res_len: *mut u32,
        ) -> u32;
    }
}

/// Turn a WASI errno (0 = success) into a Result; wasi-libc errno numbers are
/// WASI's, so `io::Error` maps them to the right `ErrorKind`.
fn check(errno: u32) -> io::Result<()> {
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(errno as i32))
    }
}

/// The address bytes the V1 calls read: 4 octets for IPv4, 16 for IPv6, network order.
fn ip_bytes(addr: &SocketAddr) -> ([u8; 16], usize) {
    let mut bytes = [0u8; 16];
    match addr {
        SocketAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.ip().octets());
            (bytes, 4)
        }
        SocketAddr::V6(v6) => {
            bytes.copy_from_slice(&v6.ip().octets());
            (bytes, 16)
        }
    }
}

/// Decode what V1 `sock_get{local,peer}addr` wrote. Hosts from 0.12.1 on
/// report the type as 4/6; older ones as the family enum 1/2.
fn address_from_v1(bytes: &[u8; 16], addr_type: u32, port: u32) -> io::Result<SocketAddr> {
    let port = port as u16;
    match addr_type {
        4 | 1 => {
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        6 | 2 => Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(*bytes),
            port,
            0,
            0,
        ))),
        _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
    }
}

#[cfg(not(wws_api_0_4))]
/// Size of `__wasi_addr_storage_t`, the buffer V2 `sock_recv_from` fills.
const ADDR_STORAGE_LEN: usize = 128;

#[cfg(not(wws_api_0_4))]
/// Decode an address storage: family (u16 LE, WASI numbering) at 0, address
/// bytes from 2. Upstream takes the port as the low 16 bits of the `u32` the
/// host wrote; the stand-in does the same so both see identical values.
fn address_from_storage(storage: &[u8; ADDR_STORAGE_LEN], port: u32) -> io::Result<SocketAddr> {
    let family = u16::from_le_bytes([storage[0], storage[1]]);
    let port = port as u16;
    if family == AddressFamily::Inet4 as u16 {
        let ip = Ipv4Addr::new(storage[2], storage[3], storage[4], storage[5]);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    } else if family == AddressFamily::Inet6 as u16 {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&storage[2..18]);
        Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(octets),
            port,
            0,
            0,
        )))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sock_recv_from returned an unknown address family",
        ))
    }
}

#[cfg(not(wws_api_0_4))]
/// `None` means "no timeout", which the socket layer spells as a zero timeval.
fn timeval_from(duration: Option<Duration>) -> libc::timeval {
    match duration {
        Some(duration) => libc::timeval {
            tv_sec: duration.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_usec: duration.subsec_micros() as libc::suseconds_t,
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    }
}

#[cfg(not(wws_api_0_4))]
fn duration_from(value: libc::timeval) -> Option<Duration> {
    if value.tv_sec == 0 && value.tv_usec == 0 {
        None
    } else {
        Some(Duration::new(
            value.tv_sec as u64,
            value.tv_usec as u32 * 1000,
        ))
    }
}

fn last_os_error_if(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// A WasmEdge socket. Dropping it shuts the socket down and closes it.
#[derive(Debug)]
pub struct Socket {
    fd: RawFd,
}

/// What both API generations (0.4.3 and 0.5.4) offer.
impl Socket {
    pub fn new(addr_family: AddressFamily, sock_kind: SocketType) -> io::Result<Self> {
        let mut fd: u32 = 0;
        check(unsafe { wasi_sock::sock_open(addr_family as u8, sock_kind as u8, &mut fd) })?;
        Ok(Socket { fd: fd as RawFd })
    }

    fn raw(&self) -> u32 {
        self.fd as u32
    }

    /// Read an option into `value`; returns how many bytes the host wrote.
    fn getsockopt_into<T>(&self, name: SocketOptName, value: &mut T) -> io::Result<u32> {
        let mut len = mem::size_of::<T>() as u32;
        check(unsafe {
            wasi_sock::sock_getsockopt(
                self.raw(),
                SocketOptLevel::SolSocket as i32,
                name as i32,
                value as *mut T as *mut i32,
                &mut len,
            )
        })?;
        Ok(len)
    }

    fn getsockopt_int(&self, name: SocketOptName) -> io::Result<i32> {
        let mut value: i32 = 0;
        self.getsockopt_into(name, &mut value)?;
        Ok(value)
    }

    fn send_iovecs(&self, iovs: &[IovecWrite], flags: u16) -> io::Result<usize> {
        let mut sent: u32 = 0;
        check(unsafe {
            wasi_sock::sock_send(
                self.raw(),
                iovs.as_ptr(),
                iovs.len() as u32,
                flags,
                &mut sent,
            )
        })?;
        Ok(sent as usize)
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_iovecs(&[write_iovec(buf)], 0)
    }

    fn send_to_iovecs(
        &self,
        iovs: &[IovecWrite],
        addr: SocketAddr,
        flags: u16,
    ) -> io::Result<usize> {
        let (bytes, len) = ip_bytes(&addr);
        let address = WasiAddress {
            buf: bytes.as_ptr(),
            size: len,
        };
        let mut sent: u32 = 0;
        check(unsafe {
            wasi_sock::sock_send_to(
                self.raw(),
                iovs.as_ptr(),
                iovs.len() as u32,
                &address as *const WasiAddress as *const u8,
                addr.port() as u32,
                flags,
                &mut sent,
            )
        })?;
        Ok(sent as usize)
    }

    pub fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.send_to_iovecs(&[write_iovec(buf)], addr, 0)
    }

    /// Receive into `iovs`; returns (bytes received, output flags).
    fn recv_iovecs(&self, iovs: &mut [IovecRead], flags: u16) -> io::Result<(usize, usize)> {
        let mut received: usize = 0;
        let mut oflags: usize = 0;
        check(unsafe {
            wasi_sock::sock_recv(
                self.raw(),
                iovs.as_mut_ptr(),
                iovs.len(),
                flags,
                &mut received,
                &mut oflags,
            )
        })?;
        Ok((received, oflags))
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut iov = [read_iovec(buf.as_mut_ptr(), buf.len())];
        self.recv_iovecs(&mut iov, 0).map(|(received, _)| received)
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut iov = [read_iovec(buf.as_mut_ptr(), buf.len())];
        self.recv_from_iovecs(&mut iov, 0)
            .map(|(received, from, _)| (received, from))
    }

    /// Through wasi-libc's `fcntl`, i.e. `fd_fdstat_get`/`fd_fdstat_set_flags`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let status = last_os_error_if(unsafe { libc::fcntl(self.fd, libc::F_GETFL) })?;
        let wanted = if nonblocking {
            status | libc::O_NONBLOCK
        } else {
            status & !libc::O_NONBLOCK
        };
        if wanted != status {
            last_os_error_if(unsafe { libc::fcntl(self.fd, libc::F_SETFL, wanted) })?;
        }
        Ok(())
    }

    /// Upstream connects IPv4 addresses only.
    pub fn connect(&self, addrs: &SocketAddr) -> io::Result<()> {
        let v4 = match addrs {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => return Err(io::Error::from(io::ErrorKind::Unsupported)),
        };
        let octets = v4.ip().octets();
        let mut address = WasiAddress {
            buf: octets.as_ptr(),
            size: octets.len(),
        };
        check(unsafe { wasi_sock::sock_connect(self.raw(), &mut address, v4.port() as u32) })
    }

    pub fn bind(&self, addrs: &SocketAddr) -> io::Result<()> {
        let (bytes, len) = ip_bytes(addrs);
        let mut address = WasiAddress {
            buf: bytes.as_ptr(),
            size: len,
        };
        check(unsafe { wasi_sock::sock_bind(self.raw(), &mut address, addrs.port() as u32) })
    }

    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        check(unsafe { wasi_sock::sock_listen(self.raw(), backlog as u32) })
    }

    /// The host's V1 accept always yields a blocking socket; `nonblocking` is
    /// applied afterwards.
    pub fn accept(&self, nonblocking: bool) -> io::Result<Self> {
        let mut new_fd: u32 = 0;
        check(unsafe { wasi_sock::sock_accept(self.raw(), &mut new_fd) })?;
        let accepted = Socket {
            fd: new_fd as RawFd,
        };
        accepted.set_nonblocking(nonblocking)?;
        Ok(accepted)
    }

    pub fn get_local(&self) -> io::Result<SocketAddr> {
        self.query_address(wasi_sock::sock_getlocaladdr)
    }

    pub fn get_peer(&self) -> io::Result<SocketAddr> {
        self.query_address(wasi_sock::sock_getpeeraddr)
    }

    fn query_address(
        &self,
        host_call: unsafe extern "C" fn(u32, *mut WasiAddress, *mut u32, *mut u32) -> u32,
    ) -> io::Result<SocketAddr> {
        // V1 wants a buffer of exactly 4 or 16 bytes; 16 fits both families.
        let mut bytes = [0u8; 16];
        let mut address = WasiAddress {
            buf: bytes.as_mut_ptr(),
            size: bytes.len(),
        };
        let mut addr_type: u32 = 0;
        let mut port: u32 = 0;
        check(unsafe { host_call(self.raw(), &mut address, &mut addr_type, &mut port) })?;
        address_from_v1(&bytes, addr_type, port)
    }

    /// `Err` carries the pending socket error (SO_ERROR), if there is one.
    pub fn take_error(&self) -> io::Result<()> {
        match self.getsockopt_int(SocketOptName::SoError)? {
            0 => Ok(()),
            pending => Err(io::Error::from_raw_os_error(pending)),
        }
    }

    /// Pass `payload`'s bytes to the host as the option value (its size by value).
    pub fn setsockopt<T>(
        &self,
        level: SocketOptLevel,
        name: SocketOptName,
        payload: T,
    ) -> io::Result<()> {
        check(unsafe {
            wasi_sock::sock_setsockopt(
                self.raw(),
                level as i32,
                name as i32,
                &payload as *const T as *const i32,
                mem::size_of::<T>() as u32,
            )
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        // __wasi_sdflags_t: RD = 1, WR = 2.
        let flags: u8 = match how {
            Shutdown::Read => 1,
            Shutdown::Write => 2,
            Shutdown::Both => 3,
        };
        check(unsafe { wasi_sock::sock_shutdown(self.raw(), flags) })
    }
}

/// Receiving with the sender's address, V2 form (0.5): the host fills a
/// 128-byte address storage and writes the port separately.
#[cfg(not(wws_api_0_4))]
impl Socket {
    /// Returns (bytes, sender, output flags).
    fn recv_from_iovecs(
        &self,
        iovs: &mut [IovecRead],
        flags: u16,
    ) -> io::Result<(usize, SocketAddr, usize)> {
        let mut storage = [0u8; ADDR_STORAGE_LEN];
        let mut address = WasiAddress {
            buf: storage.as_mut_ptr(),
            size: ADDR_STORAGE_LEN,
        };
        let mut port: u32 = 0;
        let mut received: usize = 0;
        let mut oflags: usize = 0;
        check(unsafe {
            wasi_sock::sock_recv_from(
                self.raw(),
                iovs.as_mut_ptr(),
                iovs.len() as u32,
                &mut address as *mut WasiAddress as *mut u8,
                flags,
                &mut port,
                &mut received,
                &mut oflags,
            )
        })?;
        Ok((received, address_from_storage(&storage, port)?, oflags))
    }
}

/// Receiving with the sender's address, V1 form (0.4): a 16-byte buffer that
/// upstream decodes as family/port/address. WasmEdge writes only the raw
/// address there, so the sender comes out wrong, exactly as with upstream.
#[cfg(wws_api_0_4)]
impl Socket {
    fn recv_from_iovecs(
        &self,
        iovs: &mut [IovecRead],
        flags: u16,
    ) -> io::Result<(usize, SocketAddr, usize)> {
        let mut buffer = [0u8; 16];
        let mut address = WasiAddress {
            buf: buffer.as_mut_ptr(),
            size: buffer.len(),
        };
        let mut received: usize = 0;
        let mut oflags: usize = 0;
        check(unsafe {
            wasi_sock::sock_recv_from(
                self.raw(),
                iovs.as_mut_ptr(),
                iovs.len() as u32,
                &mut address as *mut WasiAddress as *mut u8,
                flags,
                &mut received,
                &mut oflags,
            )
        })?;
        Ok((received, address_from_v1_recv_buffer(&buffer), oflags))
    }
}

/// Upstream 0.4 reads a Linux-style `sockaddr_in` (family 2) and otherwise
/// gives up with `[::]:port`.
#[cfg(wws_api_0_4)]
fn address_from_v1_recv_buffer(buffer: &[u8; 16]) -> SocketAddr {
    let family = u16::from_le_bytes([buffer[0], buffer[1]]);
    let port = u16::from_le_bytes([buffer[2], buffer[3]]);
    if family == 2 {
        let ip = Ipv4Addr::new(buffer[4], buffer[5], buffer[6], buffer[7]);
        SocketAddr::V4(SocketAddrV4::new(ip, port))
    } else {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
    }
}

/// Added in 0.5: socket options read back, vectored and flagged I/O.
#[cfg(not(wws_api_0_4))]
impl Socket {
    pub fn device(&self) -> io::Result<Option<Vec<u8>>> {
        let mut name = [0u8; 16];
        let len = self.getsockopt_into(SocketOptName::SoBindToDevice, &mut name)? as usize;
        if len == 0 {
            return Ok(None);
        }
        let mut device = name[..len.min(name.len())].to_vec();
        if device.last() == Some(&0) {
            device.pop();
        }
        Ok(Some(device))
    }

    pub fn bind_device(&self, interface: Option<&[u8]>) -> io::Result<()> {
        let (value, len) = match interface {
            Some(name) => (name.as_ptr(), name.len()),
            None => (std::ptr::null(), 0),
        };
        check(unsafe {
            wasi_sock::sock_setsockopt(
                self.raw(),
                SocketOptLevel::SolSocket as i32,
                SocketOptName::SoBindToDevice as i32,
                value as *const i32,
                len as u32,
            )
        })
    }

    pub fn set_send_timeout(&self, duration: Option<Duration>) -> io::Result<()> {
        self.setsockopt(
            SocketOptLevel::SolSocket,
            SocketOptName::SoSndtimeo,
            timeval_from(duration),
        )
    }

    pub fn get_send_timeout(&self) -> io::Result<Option<Duration>> {
        let mut value = timeval_from(None);
        self.getsockopt_into(SocketOptName::SoSndtimeo, &mut value)?;
        Ok(duration_from(value))
    }

    pub fn set_recv_timeout(&self, duration: Option<Duration>) -> io::Result<()> {
        self.setsockopt(
            SocketOptLevel::SolSocket,
            SocketOptName::SoRcvtimeo,
            timeval_from(duration),
        )
    }

    pub fn get_recv_timeout(&self) -> io::Result<Option<Duration>> {
        let mut value = timeval_from(None);
        self.getsockopt_into(SocketOptName::SoRcvtimeo, &mut value)?;
        Ok(duration_from(value))
    }

    pub fn send_vectored(&self, bufs: &[io::IoSlice<'_>], flags: u16) -> io::Result<usize> {
        let iovs: Vec<IovecWrite> = bufs.iter().map(|b| write_iovec(b)).collect();
        self.send_iovecs(&iovs, flags)
    }

    pub fn send_to_vectored(
        &self,
        bufs: &[io::IoSlice<'_>],
        addr: SocketAddr,
        flags: u16,
    ) -> io::Result<usize> {
        let iovs: Vec<IovecWrite> = bufs.iter().map(|b| write_iovec(b)).collect();
        self.send_to_iovecs(&iovs, addr, flags)
    }

    pub fn recv_with_flags(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: u16,
    ) -> io::Result<(usize, usize)> {
        let mut iov = [read_iovec(buf.as_mut_ptr() as *mut u8, buf.len())];
        self.recv_iovecs(&mut iov, flags)
    }

    pub fn recv_vectored(&self, bufs: &mut [IovecRead], flags: u16) -> io::Result<(usize, usize)> {
        self.recv_iovecs(bufs, flags)
    }

    pub fn recv_from_with_flags(
        &self,
        buf: &mut [MaybeUninit<u8>],
        flags: u16,
    ) -> io::Result<(usize, SocketAddr, usize)> {
        let mut iov = [read_iovec(buf.as_mut_ptr() as *mut u8, buf.len())];
        self.recv_from_iovecs(&mut iov, flags)
    }

    pub fn recv_from_vectored(
        &self,
        bufs: &mut [IovecRead],
        flags: u16,
    ) -> io::Result<(usize, SocketAddr, usize)> {
        self.recv_from_iovecs(bufs, flags)
    }

    pub fn nonblocking(&self) -> io::Result<bool> {
        let status = last_os_error_if(unsafe { libc::fcntl(self.fd, libc::F_GETFL) })?;
        Ok(status & libc::O_NONBLOCK != 0)
    }

    pub fn is_listener(&self) -> io::Result<bool> {
        Ok(self.getsockopt_int(SocketOptName::SoAcceptconn)? != 0)
    }

    pub fn r#type(&self) -> io::Result<SocketType> {
        match self.getsockopt_int(SocketOptName::SoType)? {
            1 => Ok(SocketType::Datagram),
            2 => Ok(SocketType::Stream),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.getsockopt_int(SocketOptName::SoBroadcast)? != 0)
    }

    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.getsockopt_int(SocketOptName::SoKeepalive)? != 0)
    }

    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        Ok(self.getsockopt_int(SocketOptName::SoRcvbuf)? as usize)
    }

    pub fn send_buffer_size(&self) -> io::Result<usize> {
        Ok(self.getsockopt_int(SocketOptName::SoSndbuf)? as usize)
    }

    pub fn reuse_address(&self) -> io::Result<bool> {
        Ok(self.getsockopt_int(SocketOptName::SoReuseaddr)? != 0)
    }
}

fn write_iovec(buf: &[u8]) -> IovecWrite {
    IovecWrite {
        buf: buf.as_ptr(),
        size: buf.len(),
    }
}

fn read_iovec(buf: *mut u8, size: usize) -> IovecRead {
    IovecRead { buf, size }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // As upstream: shut down (errors such as "not connected" are
        // expected for listeners and UDP sockets), then close the descriptor.
        let _ = self.shutdown(Shutdown::Both);
        unsafe {
            libc::close(self.fd);
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl IntoRawFd for Socket {
    fn into_raw_fd(self) -> RawFd {
        let fd = self.fd;
        mem::forget(self);
        fd
    }
}

impl FromRawFd for Socket {
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        Socket { fd }
    }
}
