//! WasmEdge's socket host functions, declared by hand, plus thin wrappers that
//! turn their errno results into `Result<_, u32>`.
//!
//! Where WasmEdge has two variants of a function this guest imports the one
//! WasmEdge calls V2 (3-argument `sock_accept`, `sock_getlocaladdr`,
//! `sock_getpeeraddr`) and the 7-argument V1 `sock_recv_from`, so that together
//! with the `netclient` guest (built on the `wasmedge_wasi_socket` stand-in)
//! every variant is exercised. All parameters are `u32`: on wasm32 `u8`, `u16`,
//! `usize` and pointers all lower to `i32`.

pub const INET4: u32 = 1;
pub const STREAM: u32 = 2;
pub const DGRAM: u32 = 1;
pub const SOL_SOCKET: u32 = 0;
pub const EVENTTYPE_CLOCK: u8 = 0;
pub const EVENTTYPE_FD_READ: u8 = 1;
pub const EVENTTYPE_FD_WRITE: u8 = 2;
pub const AGAIN: u32 = 6;
pub const INPROGRESS: u32 = 26;
pub const FDFLAGS_NONBLOCK: u32 = 4;
pub const SHUT_WR: u32 = 2;

/// `__wasi_address_t`: where the address bytes are and how many there are.
#[repr(C)]
pub struct Address {
    pub buf: *mut u8,
    pub len: u32,
}

#[repr(C)]
pub struct Iovec {
    pub buf: *mut u8,
    pub len: u32,
}

/// A 48-byte `subscription`, built field by field.
#[repr(C, align(8))]
pub struct Subscription(pub [u8; 48]);

/// A 32-byte `event`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Event(pub [u8; 32]);

/// `fdstat`: filetype u8 @0, flags u16 @2, rights u64 @8 and @16.
#[repr(C, align(8))]
pub struct FdStat(pub [u8; 24]);

/// `__wasi_addrinfo_t` (28 bytes, 4-aligned).
#[repr(C, align(4))]
pub struct AddrInfo(pub [u8; 28]);

/// `__wasi_sockaddr_t`: family u8 @0, sa_data_len u32 @4, sa_data ptr @8.
#[repr(C, align(4))]
pub struct SockAddr(pub [u8; 12]);

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn sock_open(family: u32, kind: u32, fd: *mut u32) -> u32;
    fn sock_bind(fd: u32, addr: *const Address, port: u32) -> u32;
    fn sock_listen(fd: u32, backlog: u32) -> u32;
    fn sock_accept(fd: u32, fdflags: u32, new_fd: *mut u32) -> u32;
    fn sock_connect(fd: u32, addr: *const Address, port: u32) -> u32;
    fn sock_recv(
        fd: u32,
        iovs: *const Iovec,
        iovs_len: u32,
        flags: u32,
        received: *mut u32,
        oflags: *mut u16,
    ) -> u32;
    fn sock_recv_from(
        fd: u32,
        iovs: *const Iovec,
        iovs_len: u32,
        addr: *const Address,
        flags: u32,
        received: *mut u32,
        oflags: *mut u16,
    ) -> u32;
    fn sock_send(fd: u32, iovs: *const Iovec, iovs_len: u32, flags: u32, sent: *mut u32) -> u32;
    fn sock_send_to(
        fd: u32,
        iovs: *const Iovec,
        iovs_len: u32,
        addr: *const Address,
        port: u32,
        flags: u32,
        sent: *mut u32,
    ) -> u32;
    fn sock_shutdown(fd: u32, how: u32) -> u32;
    fn sock_getlocaladdr(fd: u32, addr: *const Address, port: *mut u32) -> u32;
    fn sock_getpeeraddr(fd: u32, addr: *const Address, port: *mut u32) -> u32;
    fn sock_getsockopt(fd: u32, level: u32, name: u32, flag: *mut u8, size: *mut u32) -> u32;
    fn sock_setsockopt(fd: u32, level: u32, name: u32, flag: *const u8, size: u32) -> u32;
    fn sock_getaddrinfo(
        node: *const u8,
        node_len: u32,
        service: *const u8,
        service_len: u32,
        hints: *const AddrInfo,
        res: *mut u32,
        max_len: u32,
        res_len: *mut u32,
    ) -> u32;
    fn poll_oneoff(subs: *const Subscription, events: *mut Event, n: u32, nevents: *mut u32)
        -> u32;
    fn fd_fdstat_get(fd: u32, stat: *mut FdStat) -> u32;
    fn fd_fdstat_set_flags(fd: u32, flags: u32) -> u32;
    fn fd_close(fd: u32) -> u32;
}

pub type Errno = u32;

fn check(errno: u32) -> Result<(), Errno> {
    if errno == 0 {
        Ok(())
    } else {
        Err(errno)
    }
}

pub fn open(family: u32, kind: u32) -> Result<u32, Errno> {
    let mut fd = 0u32;
    check(unsafe { sock_open(family, kind, &mut fd) })?;
    Ok(fd)
}

pub fn bind(fd: u32, ip: [u8; 4], port: u16) -> Result<(), Errno> {
    let mut bytes = ip;
    let addr = Address { buf: bytes.as_mut_ptr(), len: 4 };
    check(unsafe { sock_bind(fd, &addr, port as u32) })
}

pub fn listen(fd: u32, backlog: u32) -> Result<(), Errno> {
    check(unsafe { sock_listen(fd, backlog) })
}

pub fn accept(fd: u32, fdflags: u32) -> Result<u32, Errno> {
    let mut new_fd = 0u32;
    check(unsafe { sock_accept(fd, fdflags, &mut new_fd) })?;
    Ok(new_fd)
}

pub fn connect(fd: u32, ip: [u8; 4], port: u16) -> Result<(), Errno> {
    let mut bytes = ip;
    let addr = Address { buf: bytes.as_mut_ptr(), len: 4 };
    check(unsafe { sock_connect(fd, &addr, port as u32) })
}

pub const RIFLAGS_PEEK: u32 = 1;

pub fn recv(fd: u32, buf: &mut [u8]) -> Result<usize, Errno> {
    recv_flags(fd, buf, 0)
}

pub fn recv_flags(fd: u32, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
    let iov = Iovec { buf: buf.as_mut_ptr(), len: buf.len() as u32 };
    let mut received = 0u32;
    let mut oflags = 0u16;
    check(unsafe { sock_recv(fd, &iov, 1, flags, &mut received, &mut oflags) })?;
    Ok(received as usize)
}

/// Scatter into two buffers, to exercise the multi-iovec path.
pub fn recv_two(fd: u32, first: &mut [u8], second: &mut [u8]) -> Result<usize, Errno> {
    let iovs = [
        Iovec { buf: first.as_mut_ptr(), len: first.len() as u32 },
        Iovec { buf: second.as_mut_ptr(), len: second.len() as u32 },
    ];
    let mut received = 0u32;
    let mut oflags = 0u16;
    check(unsafe { sock_recv(fd, iovs.as_ptr(), 2, 0, &mut received, &mut oflags) })?;
    Ok(received as usize)
}

/// V1 `sock_recv_from`: the host writes the sender's IP bytes, nothing else.
pub fn recv_from_v1(fd: u32, buf: &mut [u8]) -> Result<(usize, [u8; 4], u16), Errno> {
    let iov = Iovec { buf: buf.as_mut_ptr(), len: buf.len() as u32 };
    let mut ip = [0u8; 4];
    let addr = Address { buf: ip.as_mut_ptr(), len: 4 };
    let mut received = 0u32;
    let mut oflags = 0u16;
    check(unsafe { sock_recv_from(fd, &iov, 1, &addr, 0, &mut received, &mut oflags) })?;
    Ok((received as usize, ip, oflags))
}

pub fn send(fd: u32, data: &[u8]) -> Result<usize, Errno> {
    let iov = Iovec { buf: data.as_ptr() as *mut u8, len: data.len() as u32 };
    let mut sent = 0u32;
    check(unsafe { sock_send(fd, &iov, 1, 0, &mut sent) })?;
    Ok(sent as usize)
}

/// Gather from two buffers.
pub fn send_two(fd: u32, first: &[u8], second: &[u8]) -> Result<usize, Errno> {
    let iovs = [
        Iovec { buf: first.as_ptr() as *mut u8, len: first.len() as u32 },
        Iovec { buf: second.as_ptr() as *mut u8, len: second.len() as u32 },
    ];
    let mut sent = 0u32;
    check(unsafe { sock_send(fd, iovs.as_ptr(), 2, 0, &mut sent) })?;
    Ok(sent as usize)
}

pub fn send_to(fd: u32, data: &[u8], ip: [u8; 4], port: u16) -> Result<usize, Errno> {
    let iov = Iovec { buf: data.as_ptr() as *mut u8, len: data.len() as u32 };
    let mut bytes = ip;
    let addr = Address { buf: bytes.as_mut_ptr(), len: 4 };
    let mut sent = 0u32;
    check(unsafe { sock_send_to(fd, &iov, 1, &addr, port as u32, 0, &mut sent) })?;
    Ok(sent as usize)
}

pub fn shutdown(fd: u32, how: u32) -> Result<(), Errno> {
    check(unsafe { sock_shutdown(fd, how) })
}

/// V2 address query: a 128-byte storage (family u16 @0, address from @2) and a u32 port.
fn query_addr(
    fd: u32,
    call: unsafe extern "C" fn(u32, *const Address, *mut u32) -> u32,
) -> Result<(u16, [u8; 16], u32), Errno> {
    let mut storage = [0u8; 128];
    let addr = Address { buf: storage.as_mut_ptr(), len: 128 };
    let mut port = 0u32;
    check(unsafe { call(fd, &addr, &mut port) })?;
    let family = u16::from_le_bytes([storage[0], storage[1]]);
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&storage[2..18]);
    Ok((family, ip, port))
}

pub fn local_addr(fd: u32) -> Result<(u16, [u8; 16], u32), Errno> {
    query_addr(fd, sock_getlocaladdr)
}

pub fn peer_addr(fd: u32) -> Result<(u16, [u8; 16], u32), Errno> {
    query_addr(fd, sock_getpeeraddr)
}

pub fn set_opt(fd: u32, level: u32, name: u32, value: &[u8]) -> Result<(), Errno> {
    check(unsafe { sock_setsockopt(fd, level, name, value.as_ptr(), value.len() as u32) })
}

/// Returns the bytes the host wrote (it also writes back their count).
pub fn get_opt(fd: u32, level: u32, name: u32, capacity: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; capacity];
    let mut size = capacity as u32;
    check(unsafe { sock_getsockopt(fd, level, name, buf.as_mut_ptr(), &mut size) })?;
    buf.truncate(size as usize);
    Ok(buf)
}

pub struct Resolved {
    pub family: u8,
    pub socktype: u8,
    pub protocol: u8,
    pub addrlen: u32,
    pub sa_data: Vec<u8>,
}

/// `sock_getaddrinfo` with pre-allocated records, the way wasmedge_wasi_socket does it.
pub fn getaddrinfo(node: &str, service: &str, family: u8) -> Result<Vec<Resolved>, Errno> {
    const RECORDS: usize = 10;
    let mut node_bytes = node.as_bytes().to_vec();
    node_bytes.push(0);
    let mut service_bytes = service.as_bytes().to_vec();
    service_bytes.push(0);
    let mut hints = AddrInfo([0u8; 28]);
    hints.0[2] = family;
    let mut sa_data = vec![[0u8; 26]; RECORDS];
    let mut sockaddrs: Vec<SockAddr> = Vec::with_capacity(RECORDS);
    for data in sa_data.iter_mut() {
        let mut raw = [0u8; 12];
        raw[4..8].copy_from_slice(&26u32.to_le_bytes());
        raw[8..12].copy_from_slice(&(data.as_mut_ptr() as u32).to_le_bytes());
        sockaddrs.push(SockAddr(raw));
    }
    let mut records: Vec<AddrInfo> = Vec::with_capacity(RECORDS);
    for sockaddr in sockaddrs.iter() {
        let mut raw = [0u8; 28];
        raw[8..12].copy_from_slice(&16u32.to_le_bytes());
        raw[12..16].copy_from_slice(&(sockaddr as *const SockAddr as u32).to_le_bytes());
        records.push(AddrInfo(raw));
    }
    // Chain the records through ai_next now that their addresses are fixed.
    let base = records.as_ptr() as u32;
    for (index, record) in records.iter_mut().enumerate() {
        let next = if index + 1 < RECORDS { base + 28 * (index as u32 + 1) } else { 0 };
        record.0[24..28].copy_from_slice(&next.to_le_bytes());
    }
    let mut first = base;
    let mut count = 0u32;
    check(unsafe {
        sock_getaddrinfo(
            node_bytes.as_ptr(),
            node_bytes.len() as u32,
            service_bytes.as_ptr(),
            service_bytes.len() as u32,
            &hints,
            &mut first,
            RECORDS as u32,
            &mut count,
        )
    })?;
    let mut found = Vec::new();
    for index in 0..count as usize {
        let record = &records[index].0;
        let sockaddr = &sockaddrs[index].0;
        let data_len = u32::from_le_bytes([sockaddr[4], sockaddr[5], sockaddr[6], sockaddr[7]]);
        let data_len = (data_len as usize).min(26);
        found.push(Resolved {
            family: record[2],
            socktype: record[3],
            protocol: record[4],
            addrlen: u32::from_le_bytes([record[8], record[9], record[10], record[11]]),
            sa_data: sa_data[index][..data_len].to_vec(),
        });
    }
    Ok(found)
}

pub fn fd_read_subscription(userdata: u64, fd: u32) -> Subscription {
    fd_subscription(userdata, EVENTTYPE_FD_READ, fd)
}

pub fn fd_write_subscription(userdata: u64, fd: u32) -> Subscription {
    fd_subscription(userdata, EVENTTYPE_FD_WRITE, fd)
}

fn fd_subscription(userdata: u64, kind: u8, fd: u32) -> Subscription {
    let mut raw = [0u8; 48];
    raw[0..8].copy_from_slice(&userdata.to_le_bytes());
    raw[8] = kind;
    raw[16..20].copy_from_slice(&fd.to_le_bytes());
    Subscription(raw)
}

/// A relative timeout on the monotonic clock.
pub fn clock_subscription(userdata: u64, timeout_ns: u64) -> Subscription {
    let mut raw = [0u8; 48];
    raw[0..8].copy_from_slice(&userdata.to_le_bytes());
    raw[8] = EVENTTYPE_CLOCK;
    raw[16..20].copy_from_slice(&1u32.to_le_bytes());
    raw[24..32].copy_from_slice(&timeout_ns.to_le_bytes());
    Subscription(raw)
}

pub struct Ready {
    pub userdata: u64,
    pub error: u16,
    pub kind: u8,
    pub nbytes: u64,
    pub flags: u16,
}

pub fn poll(subs: &[Subscription]) -> Result<Vec<Ready>, Errno> {
    let mut events = vec![Event([0u8; 32]); subs.len()];
    let mut count = 0u32;
    check(unsafe { poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len() as u32, &mut count) })?;
    Ok(events[..count as usize]
        .iter()
        .map(|event| {
            let raw = &event.0;
            let mut userdata = [0u8; 8];
            userdata.copy_from_slice(&raw[0..8]);
            let mut nbytes = [0u8; 8];
            nbytes.copy_from_slice(&raw[16..24]);
            Ready {
                userdata: u64::from_le_bytes(userdata),
                error: u16::from_le_bytes([raw[8], raw[9]]),
                kind: raw[10],
                nbytes: u64::from_le_bytes(nbytes),
                flags: u16::from_le_bytes([raw[24], raw[25]]),
            }
        })
        .collect())
}

/// (filetype, flags, rights_base)
pub fn fdstat(fd: u32) -> Result<(u8, u16, u64), Errno> {
    let mut stat = FdStat([0u8; 24]);
    check(unsafe { fd_fdstat_get(fd, &mut stat) })?;
    let raw = &stat.0;
    let mut rights = [0u8; 8];
    rights.copy_from_slice(&raw[8..16]);
    Ok((raw[0], u16::from_le_bytes([raw[2], raw[3]]), u64::from_le_bytes(rights)))
}

pub fn set_fdflags(fd: u32, flags: u32) -> Result<(), Errno> {
    check(unsafe { fd_fdstat_set_flags(fd, flags) })
}

pub fn close(fd: u32) -> Result<(), Errno> {
    check(unsafe { fd_close(fd) })
}
