//! fdfs-httpd: serves FastDFS files over HTTP from a storage node's store
//! paths, as a drop-in replacement for nginx + fastdfs-nginx-module.
//!
//! # Layout
//! - [`config`]: the module's own files (`mod_fastdfs.conf`, `http.conf`,
//!   `mime.types`, `storage_ids.conf`) read with libfastcommon's INI rules.
//! - [`fileid`]: pure URL → [`fileid::FileId`] parsing, the 20-byte encoded
//!   name codec and an encoder for tests and the demo.
//! - [`http`]: small pure pieces of HTTP semantics (query, Range, conditional
//!   requests, Content-Disposition, multipart, FLV).
//! - [`antisteal`]: anti-steal token check and signing.
//! - [`store`]: finding a file on local disk (plain file or trunk slot).
//! - [`resolve`]: what to do when a file is not local (404, redirect, proxy).
//! - [`proto`]: the FastDFS tracker/storage wire protocol.
//! - [`server`]: listeners, connections, shutdown; [`handler`]: the request
//!   path, top to bottom.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod antisteal;
pub mod config;
pub mod fileid;
pub mod http;
pub mod proto;
pub mod resolve;
pub mod store;
