//! fdfs-httpd: serves FastDFS files over HTTP from a storage node's store
//! paths, as a drop-in replacement for nginx + fastdfs-nginx-module.
//!
//! # Layout
//! From the top down; each layer imports only from the layers below.
//! - [`cli`], [`demo`], [`doctor`]: the command line, the `--demo` store
//!   and `fdfs-httpd doctor`.
//! - [`process`]: the runtime, signals, systemd notification, reloads and
//!   the config watcher.
//! - [`transport`]: bind, accept, drain, the hand-off to hyper; [`h1`]: plain
//!   HTTP/1.1 connections served without hyper (`sendfile`, `writev`);
//!   [`admin`]: the admin listener.
//! - [`service`]: around every request: client address, rate limit,
//!   `allow`/`deny`, the access-log line and metrics; [`paced`]: bodies
//!   held to `limit_rate` on hyper connections.
//! - [`handler`]: the request path, top to bottom, in the module's order;
//!   [`directives`]: the nginx.conf directives around the module applied
//!   to a request and its answer; [`upload`]: the upload API under
//!   `upload.prefix` (docs/upload.md).
//! - [`resolve`]: what to do when a file is not local (404, redirect,
//!   proxy), given a [`resolve::Context`]; [`client`]: the plain-HTTP peer
//!   client (pool, exchange, relayed body).
//! - [`serve`]: building the response for a local file; [`body`]: streamed
//!   file bodies; [`response`]: shared response builders.
//! - [`store`]: finding a file on local disk (plain file or trunk slot) and
//!   the open-file cache; [`antisteal`]: anti-steal token check and signing.
//! - [`state`]: the configuration snapshot and caches shared by every
//!   connection; [`access_log`]: access-log lines and their writer;
//!   [`limits`]: per-client limits and idle timeout; [`metrics`]:
//!   Prometheus metrics; [`upload_stats`]: upload API counters and slots;
//!   [`tls`]: rustls configurations; [`logging`]: the error log.
//! - Pure leaves: [`fileid`] (URL → [`fileid::FileId`], the encoded-name
//!   codec, an encoder for tests and the demo), [`http`] (query, Range,
//!   conditional requests, Content-Disposition, multipart, FLV, the plan of
//!   how a file is answered), [`wire`] (the HTTP/1.1 codec both roles
//!   share: framing, heads, chunked, `Connection` tokens), [`proto`]
//!   (the FastDFS tracker/storage wire protocol), [`config`] (the module's
//!   own files read with libfastcommon's INI rules), [`outcome`] (how a
//!   request was answered), [`clock`], [`validators`] (what a file ID says
//!   about its ETag and Last-Modified), [`net`] (local addresses, `bind`),
//!   [`pace`] (the download-rate pacer), [`access_rules`] (first-match
//!   `allow`/`deny`), [`status`] (the status page's data, problem rules and HTML),
//!   [`socket_body`] (a request body still on the client's socket, read or
//!   spliced to a storage).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod access_rules;
pub mod admin;
pub mod antisteal;
pub mod body;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directives;
pub mod doctor;
pub mod fileid;
pub mod h1;
pub mod handler;
pub mod http;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod pace;
pub mod paced;
pub mod process;
pub mod proto;
pub mod resolve;
pub mod response;
pub mod serve;
pub mod service;
pub mod socket_body;
pub mod state;
pub mod status;
pub mod store;
pub mod tls;
pub mod transport;
pub mod upload;
pub mod upload_stats;
pub mod validators;
pub mod wire;
pub mod worker;
