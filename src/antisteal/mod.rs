//! Anti-steal protection: the FastDFS token check and signing
//! (docs/module-behaviour.md §4, docs/config-keys.md §2).

pub mod token;

pub use token::{atoi, check_token, sign, TokenFailure, TokenPolicy};
