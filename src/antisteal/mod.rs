//! Anti-steal protection: the FastDFS token check and signing
//! (module-behaviour.md §4, config-reference.md §2).

pub mod token;

pub use token::{atoi, check_token, sign, TokenFailure, TokenPolicy};
