//! How a request was answered: the access log's `served` field and the
//! metrics label.

use std::net::IpAddr;

/// How a request was answered (access log `served` field and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Served from local disk (200/206/304/416...).
    Local,
    /// Answered 304 from the ID's validators before touching the disk.
    NotModified,
    /// Proxied from this peer.
    Proxy(IpAddr),
    /// Redirected (302).
    Redirect,
    /// 404 after the not-local rules.
    NotFound,
    /// Anti-steal token check failed.
    TokenFail,
    /// Refused before lookup (bad URL, bad Range, bad method, loop guard...).
    Refused,
    /// Local I/O error.
    Error,
    /// A CORS preflight answered (204, or 403 when refused).
    Preflight,
    /// Refused by `valid_referers` or `allow`/`deny` (403).
    Denied,
    /// An upload API request of this application (upload, append).
    Upload(String),
    /// An upload API delete of this application.
    Delete(String),
}

impl Outcome {
    /// Metrics label: [`Outcome::label`] without the peer.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Local => "local",
            Outcome::NotModified => "not_modified",
            Outcome::Proxy(_) => "proxy",
            Outcome::Redirect => "redirect",
            Outcome::NotFound => "not_found",
            Outcome::TokenFail => "token_fail",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Preflight => "preflight",
            Outcome::Denied => "denied",
            Outcome::Upload(_) => "upload",
            Outcome::Delete(_) => "delete",
        }
    }

    /// Short label for logs and metrics (`local`, `proxy:<peer>`, ...).
    pub fn label(&self) -> String {
        match self {
            Outcome::Local => "local".into(),
            Outcome::NotModified => "not_modified".into(),
            Outcome::Proxy(ip) => format!("proxy:{ip}"),
            Outcome::Redirect => "redirect".into(),
            Outcome::NotFound => "not_found".into(),
            Outcome::TokenFail => "token_fail".into(),
            Outcome::Refused => "refused".into(),
            Outcome::Error => "error".into(),
            Outcome::Preflight => "preflight".into(),
            Outcome::Denied => "denied".into(),
            Outcome::Upload(app) => format!("upload:{app}"),
            Outcome::Delete(app) => format!("delete:{app}"),
        }
    }
}
