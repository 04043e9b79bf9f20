"""wasiport: port Rust crates that open sockets to WasmEdge's WASI socket API."""

__version__ = "0.1.0"
