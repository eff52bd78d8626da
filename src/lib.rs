//! fdfs-httpd: serves FastDFS files over HTTP from a storage node's store
//! paths, as a drop-in replacement for nginx + fastdfs-nginx-module.
//!
//! # Layout
//! - [`cli`], [`demo`]: the command line and the `--demo` store.
//! - [`config`]: the module's own files (`mod_fastdfs.conf`, `http.conf`,
//!   `mime.types`, `storage_ids.conf`) read with libfastcommon's INI rules.
//! - [`server`]: listeners, connections, graceful shutdown; [`h1`]: plain
//!   HTTP/1.1 connections served without hyper (`sendfile`, `writev`).
//! - [`handler`]: the request path, top to bottom, in the module's order.
//! - [`fileid`]: pure URL → [`fileid::FileId`] parsing, the encoded-name
//!   codec and an encoder for tests and the demo.
//! - [`http`]: small pure pieces of HTTP semantics (query, Range,
//!   conditional requests, Content-Disposition, multipart, FLV).
//! - [`antisteal`]: anti-steal token check and signing.
//! - [`store`]: finding a file on local disk (plain file or trunk slot) and
//!   the open-file cache.
//! - [`serve`]: building the response for a local file; [`body`]: streamed
//!   file bodies; [`response`]: shared response builders.
//! - [`resolve`]: what to do when a file is not local (404, redirect, proxy).
//! - [`proto`]: the FastDFS tracker/storage wire protocol.
//! - [`state`], [`net`], [`logging`], [`signals`]: shared state, local
//!   addresses, the error log, process signals.
//! - [`limits`], [`access_log`], [`metrics`], [`admin`], [`sdnotify`]:
//!   per-client limits and idle timeout, the access log, Prometheus
//!   metrics, the admin listener, systemd notification.
//! - [`tls`]: rustls server/client configurations; [`reload`]: SIGHUP and
//!   file-watch reloads.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod antisteal;
pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod fileid;
pub mod h1;
pub mod handler;
pub mod http;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod process;
pub mod proto;
pub mod resolve;
pub mod response;
pub mod serve;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod tls;
pub mod validators;
