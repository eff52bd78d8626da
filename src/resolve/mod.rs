//! When a file is not local: decide between 404, the loop guard, a
//! redirect and a proxy (module-behaviour.md §8).

pub mod decision;
pub mod redirect;

pub use decision::{decide, Decision, Facts};
