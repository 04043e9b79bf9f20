//! A small, level-triggered `poll` over sockets and absolute (real-time) deadlines.

use std::io;
use std::os::wasi::prelude::{AsRawFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wasi_poll as raw;

/// What to wait for. A deadline is an absolute wall-clock time.
#[derive(Clone)]
pub enum Subscription {
    Timeout {
        userdata: u64,
        timeout: SystemTime,
    },
    IO {
        userdata: u64,
        fd: RawFd,
        read_event: bool,
        write_event: bool,
    },
    TimeoutIO {
        userdata: u64,
        fd: RawFd,
        read_event: bool,
        write_event: bool,
        timeout: SystemTime,
    },
}

impl Subscription {
    pub fn timeout(userdata: u64, timeout: SystemTime) -> Self {
        Subscription::Timeout { userdata, timeout }
    }

    /// Readiness of `fd`, optionally bounded by a deadline.
    pub fn io<F: AsRawFd>(
        userdata: u64,
        fd: &F,
        read_event: bool,
        write_event: bool,
        timeout: Option<SystemTime>,
    ) -> Self {
        let fd = fd.as_raw_fd();
        match timeout {
            Some(timeout) => Subscription::TimeoutIO {
                userdata,
                fd,
                read_event,
                write_event,
                timeout,
            },
            None => Subscription::IO {
                userdata,
                fd,
                read_event,
                write_event,
            },
        }
    }
}

pub enum EventType {
    Timeout,
    Error(io::Error),
    Read,
    Write,
}

pub struct Event {
    pub event_type: EventType,
    pub userdata: u64,
}

fn clock_subscription(userdata: u64, deadline: SystemTime) -> raw::Subscription {
    // A deadline before the epoch cannot be expressed; it has passed anyway.
    let nanos = deadline
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0);
    raw::Subscription {
        userdata,
        u: raw::SubscriptionU {
            tag: raw::EVENTTYPE_CLOCK,
            u: raw::SubscriptionUU {
                clock: raw::SubscriptionClock {
                    id: raw::CLOCKID_REALTIME,
                    timeout: nanos,
                    precision: 0,
                    flags: raw::SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME,
                },
            },
        },
    }
}

fn fd_subscription(userdata: u64, fd: RawFd, tag: raw::Eventtype) -> raw::Subscription {
    let target = raw::SubscriptionFdReadwrite {
        file_descriptor: fd as raw::Fd,
    };
    let u = if tag == raw::EVENTTYPE_FD_READ {
        raw::SubscriptionUU { fd_read: target }
    } else {
        raw::SubscriptionUU { fd_write: target }
    };
    raw::Subscription {
        userdata,
        u: raw::SubscriptionU { tag, u },
    }
}

/// One high-level subscription becomes up to three raw ones (read, write, clock).
fn lower(subscription: &Subscription, out: &mut Vec<raw::Subscription>) {
    let (userdata, fd, read, write, deadline) = match *subscription {
        Subscription::Timeout { userdata, timeout } => {
            out.push(clock_subscription(userdata, timeout));
            return;
        }
        Subscription::IO {
            userdata,
            fd,
            read_event,
            write_event,
        } => (userdata, fd, read_event, write_event, None),
        Subscription::TimeoutIO {
            userdata,
            fd,
            read_event,
            write_event,
            timeout,
        } => (userdata, fd, read_event, write_event, Some(timeout)),
    };
    if read {
        out.push(fd_subscription(userdata, fd, raw::EVENTTYPE_FD_READ));
    }
    if write {
        out.push(fd_subscription(userdata, fd, raw::EVENTTYPE_FD_WRITE));
    }
    if let Some(deadline) = deadline {
        out.push(clock_subscription(userdata, deadline));
    }
}

fn raise(event: &raw::Event) -> Option<Event> {
    let userdata = event.userdata;
    let event_type = match event.type_ {
        raw::EVENTTYPE_CLOCK => EventType::Timeout,
        raw::EVENTTYPE_FD_READ | raw::EVENTTYPE_FD_WRITE if event.error != 0 => {
            EventType::Error(io::Error::from_raw_os_error(event.error as i32))
        }
        raw::EVENTTYPE_FD_READ => EventType::Read,
        raw::EVENTTYPE_FD_WRITE
            if event.fd_readwrite.flags & raw::EVENTRWFLAGS_FD_READWRITE_HANGUP != 0 =>
        {
            EventType::Error(io::Error::new(io::ErrorKind::NotConnected, "POLLHUP"))
        }
        raw::EVENTTYPE_FD_WRITE => EventType::Write,
        _ => return None,
    };
    Some(Event {
        event_type,
        userdata,
    })
}

/// Block until at least one subscription is ready; returns the ready ones.
pub fn poll(subs: &[Subscription]) -> io::Result<Vec<Event>> {
    let mut lowered = Vec::with_capacity(subs.len() * 3);
    for subscription in subs {
        lower(subscription, &mut lowered);
    }
    let mut events = vec![raw::Event::empty(); lowered.len()];
    let ready = unsafe { raw::poll(lowered.as_ptr(), events.as_mut_ptr(), lowered.len())? };
    Ok(events[..ready.min(events.len())]
        .iter()
        .filter_map(raise)
        .collect())
}
