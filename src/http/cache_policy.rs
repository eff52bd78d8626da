//! Caching headers (`cache_control`, `expires`, `cache_control_appender`,
//! `cache_control_error`; docs/operations.md "Caching headers"): which
//! `Cache-Control` and `Expires` an answer carries, from its status and the
//! kind of file it is.
//!
//! A normal, trunk or slave file never changes under its ID, so it may be
//! kept (`public, max-age=…, immutable`, RFC 9111 §5.2.2, RFC 8246); an
//! appender file changes (`no-cache` by default: stored, revalidated each
//! time). The same headers go on 200, 206 and 304 alike (RFC 9110 §15.4.5:
//! a 304 carries the `Cache-Control` and `Expires` a 200 would, RFC 9111
//! §4.3.4 updates the stored response from them). `expires` behaves like
//! nginx's directive: `Expires` = now + the time, and, unless
//! `cache_control` says otherwise, `Cache-Control: max-age=<seconds>`.

use http::header::{HeaderValue, CACHE_CONTROL, EXPIRES, VARY};
use http::{HeaderMap, StatusCode};

/// nginx's `expires max`: 10 years in `max-age`, the 2037 date in `Expires`.
const MAX_AGE_MAX: u64 = 315_360_000;
/// `Expires` of `expires max` (nginx).
const EXPIRES_MAX: &str = "Thu, 31 Dec 2037 23:55:55 GMT";
/// `Expires` of `expires epoch` (nginx).
const EXPIRES_EPOCH: &str = "Thu, 01 Jan 1970 00:00:01 GMT";

/// The `expires` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// `Expires` this many seconds from now, `max-age` the same.
    After(u64),
    /// nginx's `max`.
    Max,
    /// nginx's `epoch`: already expired, `Cache-Control: no-cache`.
    Epoch,
}

/// What the caching keys configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// `Cache-Control` of files that never change under their ID.
    pub file: Option<HeaderValue>,
    /// `expires` for the same answers.
    pub expires: Option<Expires>,
    /// `Cache-Control` of appender files (default `no-cache` once
    /// `file` or `expires` is set).
    pub appender: Option<HeaderValue>,
    /// `Cache-Control` of failed answers (4xx, 5xx, token failures).
    pub error: Option<HeaderValue>,
}

/// What an answer is, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// 200, 206 or 304 of a file that never changes under its ID.
    Immutable,
    /// 200, 206 or 304 of an appender file.
    Appender,
    /// A failed answer: 4xx, 5xx, or the token-fail file.
    Failed,
    /// Anything else (redirects, preflights): no caching headers.
    Other,
}

impl Answered {
    /// Classifies a status: `appender` = the ID names an appender file,
    /// `token_failed` = the answer is the anti-steal failure.
    pub fn of(status: StatusCode, appender: Option<bool>, token_failed: bool) -> Self {
        if token_failed || status.is_client_error() || status.is_server_error() {
            return Answered::Failed;
        }
        match (status.as_u16(), appender) {
            (200 | 206 | 304, Some(false)) => Answered::Immutable,
            (200 | 206 | 304, Some(true)) => Answered::Appender,
            _ => Answered::Other,
        }
    }
}

impl CachePolicy {
    /// Whether any caching key is set.
    pub fn is_set(&self) -> bool {
        self.file.is_some()
            || self.expires.is_some()
            || self.appender.is_some()
            || self.error.is_some()
    }

    /// Sets (replacing any relayed from a peer) the caching headers of an
    /// answer; `now`: Unix seconds, for `Expires`.
    pub fn apply(&self, answered: Answered, now: i64, h: &mut HeaderMap) {
        let (cc, expires) = match answered {
            Answered::Immutable => (
                self.file.clone().or_else(|| self.expires.map(max_age)),
                self.expires.map(|e| expires_at(e, now)),
            ),
            Answered::Appender => (
                self.appender
                    .clone()
                    .or_else(|| self.immutable_set().then(no_cache)),
                None,
            ),
            Answered::Failed => (self.error.clone(), None),
            Answered::Other => (None, None),
        };
        match cc {
            Some(v) => {
                h.insert(CACHE_CONTROL, v);
            }
            None if answered != Answered::Other => {
                h.remove(CACHE_CONTROL);
            }
            None => {}
        }
        match expires {
            Some(v) => {
                h.insert(EXPIRES, v);
            }
            None if answered != Answered::Other => {
                h.remove(EXPIRES);
            }
            None => {}
        }
    }

    fn immutable_set(&self) -> bool {
        self.file.is_some() || self.expires.is_some()
    }
}

/// Adds `token` to `Vary` (RFC 9110 §12.5.5) unless a `Vary` value lists
/// it already (a relayed answer of a peer with the same settings).
pub fn add_vary(h: &mut HeaderMap, token: &'static str) {
    let listed = h.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token) || t.trim() == "*")
        })
    });
    if !listed {
        h.append(VARY, HeaderValue::from_static(token));
    }
}

fn no_cache() -> HeaderValue {
    HeaderValue::from_static("no-cache")
}

/// `Cache-Control` that `expires` implies (nginx).
fn max_age(e: Expires) -> HeaderValue {
    match e {
        Expires::After(s) => {
            HeaderValue::from_str(&format!("max-age={s}")).unwrap_or_else(|_| no_cache())
        }
        Expires::Max => HeaderValue::from_static("max-age=315360000"),
        Expires::Epoch => no_cache(),
    }
}

fn expires_at(e: Expires, now: i64) -> HeaderValue {
    match e {
        Expires::After(s) => {
            let at = now.saturating_add(i64::try_from(s.min(MAX_AGE_MAX)).unwrap_or(0));
            crate::http::conditional::http_date(at)
        }
        Expires::Max => HeaderValue::from_static(EXPIRES_MAX),
        Expires::Epoch => HeaderValue::from_static(EXPIRES_EPOCH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    fn applied(p: &CachePolicy, a: Answered) -> (Option<String>, Option<String>) {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, hv("private"));
        p.apply(a, 1_000_000_000, &mut h);
        let s = |n| {
            h.get(n)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        (s(CACHE_CONTROL), s(EXPIRES))
    }

    #[test]
    fn classifies_answers() {
        let ok = StatusCode::OK;
        assert_eq!(Answered::of(ok, Some(false), false), Answered::Immutable);
        assert_eq!(
            Answered::of(StatusCode::NOT_MODIFIED, Some(true), false),
            Answered::Appender
        );
        assert_eq!(Answered::of(ok, Some(false), true), Answered::Failed);
        assert_eq!(
            Answered::of(StatusCode::NOT_FOUND, None, false),
            Answered::Failed
        );
        assert_eq!(
            Answered::of(StatusCode::FOUND, Some(false), false),
            Answered::Other
        );
        assert_eq!(Answered::of(ok, None, false), Answered::Other);
    }

    #[test]
    fn configured_values_replace_relayed_ones() {
        let p = CachePolicy {
            file: Some(hv("public, max-age=31536000, immutable")),
            ..Default::default()
        };
        assert_eq!(
            applied(&p, Answered::Immutable),
            (Some("public, max-age=31536000, immutable".into()), None)
        );
        assert_eq!(
            applied(&p, Answered::Appender),
            (Some("no-cache".into()), None)
        );
        assert_eq!(applied(&p, Answered::Failed), (None, None));
        assert_eq!(applied(&p, Answered::Other), (Some("private".into()), None));
    }

    #[test]
    fn expires_like_nginx() {
        let p = CachePolicy {
            expires: Some(Expires::After(30 * 86400)),
            ..Default::default()
        };
        assert_eq!(
            applied(&p, Answered::Immutable),
            (
                Some("max-age=2592000".into()),
                Some("Tue, 09 Oct 2001 01:46:40 GMT".into())
            )
        );
        let max = CachePolicy {
            expires: Some(Expires::Max),
            file: Some(hv("public, immutable")),
            ..Default::default()
        };
        assert_eq!(
            applied(&max, Answered::Immutable),
            (Some("public, immutable".into()), Some(EXPIRES_MAX.into()))
        );
        let epoch = CachePolicy {
            expires: Some(Expires::Epoch),
            ..Default::default()
        };
        assert_eq!(
            applied(&epoch, Answered::Immutable),
            (Some("no-cache".into()), Some(EXPIRES_EPOCH.into()))
        );
    }

    #[test]
    fn vary_tokens_are_added_once() {
        let mut h = HeaderMap::new();
        add_vary(&mut h, "Origin");
        add_vary(&mut h, "Accept-Encoding");
        add_vary(&mut h, "origin");
        let all: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(all, ["Origin", "Accept-Encoding"]);
        let mut relayed = HeaderMap::new();
        relayed.insert(VARY, hv("Accept-Encoding, Origin"));
        add_vary(&mut relayed, "Origin");
        assert_eq!(relayed.get_all(VARY).iter().count(), 1);
    }

    #[test]
    fn appender_and_error_values() {
        let p = CachePolicy {
            file: Some(hv("public, max-age=60")),
            appender: Some(hv("max-age=5")),
            error: Some(hv("no-store")),
            ..Default::default()
        };
        assert_eq!(
            applied(&p, Answered::Appender),
            (Some("max-age=5".into()), None)
        );
        assert_eq!(
            applied(&p, Answered::Failed),
            (Some("no-store".into()), None)
        );
        assert!(p.is_set());
        assert!(!CachePolicy::default().is_set());
    }
}
