//! Test stand-in for `wasmedge_wasi_socket` 0.5.4.
//!
//! The public paths, type names and method signatures follow the upstream
//! crate's 0.5.4 release, and every socket call goes through the same WasmEdge
//! host imports (module `wasi_snapshot_preview1`) with the same argument
//! layouts, so a module built against this crate imports exactly what a module
//! built against upstream imports. See README.md for what is covered.
//!
//! The same sources also build the 0.4.3 stand-in: its build script sets
//! `cfg(wws_api_0_4)`, which leaves out what 0.5 added and switches
//! `sock_recv_from` to the 7-parameter V1 import that 0.4 used.

#[cfg(not(target_os = "wasi"))]
compile_error!(
    "wasmedge_wasi_socket only builds for a WASI target (target_os = \"wasi\"), \
     e.g. `cargo build --target wasm32-wasi`; depend on it under \
     [target.'cfg(target_os = \"wasi\")'.dependencies]"
);

// 0.4's WasmEdge 0.9 numbering is not modelled here.
#[cfg(feature = "wasmedge_0_9")]
compile_error!("the wasmedge_wasi_socket stand-in does not model the `wasmedge_0_9` feature");

#[cfg(target_os = "wasi")]
mod addrs;
#[cfg(target_os = "wasi")]
mod net;
#[cfg(target_os = "wasi")]
pub mod poll;
#[cfg(target_os = "wasi")]
pub mod socket;
#[cfg(all(target_os = "wasi", feature = "wasi_poll"))]
pub mod wasi_poll;
#[cfg(all(target_os = "wasi", not(feature = "wasi_poll")))]
mod wasi_poll;

#[cfg(all(target_os = "wasi", not(wws_api_0_4)))]
pub use addrs::nslookup_with_host;
#[cfg(target_os = "wasi")]
pub use addrs::{nslookup, ToSocketAddrs};
#[cfg(target_os = "wasi")]
pub use net::{Incoming, TcpListener, TcpStream, UdpSocket};
/// 0.4 re-exported this at the root; 0.5 keeps it in `socket` only.
#[cfg(all(target_os = "wasi", wws_api_0_4))]
pub use socket::WasiAddrinfo;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
