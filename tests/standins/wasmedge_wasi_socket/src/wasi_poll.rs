//! WASI preview1 `poll_oneoff` structures (wasm32 layout) and the raw call.
//!
//! Public only with the `wasi_poll` feature, as upstream, for mio/tokio forks
//! that drive their own event loop.

// Without the feature only part of the ABI is used; the rest stays for parity.
#![cfg_attr(not(feature = "wasi_poll"), allow(dead_code))]

pub type Fd = u32;
pub type Filesize = u64;
pub type Timestamp = u64;
pub type Errno = u16;
pub type Clockid = u32;
pub type Userdata = u64;
pub type Eventtype = u8;
pub type Eventrwflags = u16;
pub type Subclockflags = u16;

pub const CLOCKID_REALTIME: Clockid = 0;
pub const CLOCKID_MONOTONIC: Clockid = 1;
pub const CLOCKID_PROCESS_CPUTIME_ID: Clockid = 2;
pub const CLOCKID_THREAD_CPUTIME_ID: Clockid = 3;

pub const EVENTTYPE_CLOCK: Eventtype = 0;
pub const EVENTTYPE_FD_READ: Eventtype = 1;
pub const EVENTTYPE_FD_WRITE: Eventtype = 2;

/// The peer of this socket has closed or disconnected.
pub const EVENTRWFLAGS_FD_READWRITE_HANGUP: Eventrwflags = 1;

/// The clock timeout is an absolute time, not a delay.
pub const SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME: Subclockflags = 1;

/// 16 bytes: `nbytes` at 0, `flags` at 8.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct EventFdReadwrite {
    pub nbytes: Filesize,
    pub flags: Eventrwflags,
}

/// 32 bytes: userdata 0, error 8, type 10, fd_readwrite 16.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct Event {
    pub userdata: Userdata,
    pub error: Errno,
    pub type_: Eventtype,
    pub fd_readwrite: EventFdReadwrite,
}

impl Event {
    pub fn empty() -> Self {
        Event {
            userdata: 0,
            error: 0,
            type_: 0,
            fd_readwrite: EventFdReadwrite {
                nbytes: 0,
                flags: 0,
            },
        }
    }
}

/// 32 bytes: id 0, timeout 8, precision 16, flags 24.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct SubscriptionClock {
    pub id: Clockid,
    pub timeout: Timestamp,
    pub precision: Timestamp,
    pub flags: Subclockflags,
}

#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct SubscriptionFdReadwrite {
    pub file_descriptor: Fd,
}

#[repr(C)]
#[derive(Copy, Clone)]
pub union SubscriptionUU {
    pub clock: SubscriptionClock,
    pub fd_read: SubscriptionFdReadwrite,
    pub fd_write: SubscriptionFdReadwrite,
}

/// Tag at 0, union at 8 (the union is 8-aligned).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct SubscriptionU {
    pub tag: u8,
    pub u: SubscriptionUU,
}

/// 48 bytes: userdata 0, tag 8, union 16.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct Subscription {
    pub userdata: Userdata,
    pub u: SubscriptionU,
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    #[cfg(not(feature = "epoll"))]
    pub fn poll_oneoff(subscriptions: i32, events: i32, count: i32, ready: i32) -> i32;
    /// WasmEdge's edge-triggered variant, same signature.
    #[cfg(feature = "epoll")]
    pub fn epoll_oneoff(subscriptions: i32, events: i32, count: i32, ready: i32) -> i32;
}

/// Wait for `nsubscriptions` subscriptions; returns how many events were written to `out`.
///
/// # Safety
/// `in_` must point to `nsubscriptions` subscriptions and `out` to room for as many events.
pub unsafe fn poll(
    in_: *const Subscription,
    out: *mut Event,
    nsubscriptions: usize,
) -> std::io::Result<usize> {
    let mut ready: usize = 0;
    let args = (
        in_ as i32,
        out as i32,
        nsubscriptions as i32,
        &mut ready as *mut usize as i32,
    );
    #[cfg(not(feature = "epoll"))]
    let errno = poll_oneoff(args.0, args.1, args.2, args.3);
    #[cfg(feature = "epoll")]
    let errno = epoll_oneoff(args.0, args.1, args.2, args.3);
    if errno == 0 {
        Ok(ready)
    } else {
        Err(std::io::Error::from_raw_os_error(errno))
    }
}
