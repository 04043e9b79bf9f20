//! The sources are shared with the 0.5.4 stand-in (`src` links to them); this
//! cfg selects 0.4.3's API: no `AsRef<Socket>`, no option getters or flagged
//! receives, and the 7-parameter `sock_recv_from`.

fn main() {
    println!("cargo:rustc-cfg=wws_api_0_4");
}
