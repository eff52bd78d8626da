//! Plain HTTP/1.1 connections, served without hyper.
//!
//! Nearly every request a storage node sees is a keep-alive `GET`/`HEAD`
//! of a file. This path parses such a head ([`crate::wire::request`],
//! httparse), runs
//! the same request path as every other connection, encodes the head as
//! hyper would ([`crate::wire::response`]) and sends file ranges with
//! `sendfile` ([`send`]): a fraction of the per-request work of a general HTTP stack
//! (docs/benchmark.md). Anything else — a request body, `CONNECT`, an h2c
//! preface, malformed or oversized input — is handed with the bytes read so
//! far to hyper, which serves the rest of that connection.
//! TLS connections always use hyper.

pub mod conn;
pub mod send;
mod throttle;
mod write;

pub use conn::{serve, Ended, Shutdown};
