//! Small pure pieces of HTTP semantics, one module per concern, none of them
//! doing I/O (docs/module-behaviour.md §3, §7, §10, §11, §12; RFC 9110 §13, §14;
//! RFC 6266).
//!
//! - [`query`]: libfastcommon's query-string parser (§3).
//! - [`range`]: the `Range` header and its resolution against a size (§11).
//! - [`multipart`]: `multipart/byteranges` framing, byte-exact (§11.4).
//! - [`conditional`]: validators (ETag, Last-Modified) and precondition
//!   evaluation (§7, RFC 9110 §13).
//! - [`disposition`]: `Content-Disposition` from the `filename` parameter
//!   (§10, RFC 6266).
//! - [`flv`]: FLV pseudo-streaming with `start`/`end` (§12).
//! - [`plan`]: how a file is answered, from these pieces (§7, §10–§13):
//!   status, headers and body pieces, for local and fetched files alike.
//! - [`cnum`]: C's decimal prefix parsing (`atoi`/`strtoll`).
//! - [`cache_policy`], [`cors`], [`referer`], [`compress`]: the decisions
//!   of the nginx.conf directives around the module (caching headers,
//!   CORS, `valid_referers`, gzip; docs/operations.md).

pub mod cache_policy;
pub mod cnum;
pub mod compress;
pub mod conditional;
pub mod cors;
pub mod disposition;
pub mod flv;
pub mod multipart;
pub mod plan;
pub mod query;
pub mod range;
pub mod referer;
