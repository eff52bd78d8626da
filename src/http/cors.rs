//! Cross-origin answers (`cors_allow_origin`, `cors_allow_headers`,
//! `cors_expose_headers`, `cors_max_age`; docs/operations.md "Extra headers
//! and CORS"), following the CORS protocol of the Fetch standard §3.2:
//! `Access-Control-Allow-Origin` on answers to GET/HEAD, and the preflight
//! (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) answered
//! 204 when the origin, the method (GET or HEAD) and every requested header
//! are allowed. A configured origin list echoes the request's origin and
//! adds `Vary: Origin` (the answer depends on it, RFC 9110 §12.5.5).

use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::HeaderMap;

/// Request headers a preflight may name by default: those a page uses to
/// fetch or resume files.
pub const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "cache-control",
    "x-requested-with",
];

/// Origins allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// `*`: any origin.
    Any,
    /// These origins (`scheme://host[:port]`, compared ASCII
    /// case-insensitively).
    List(Vec<String>),
}

/// Request headers a preflight may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowHeaders {
    /// `*`: any.
    Any,
    /// These, lowercase.
    List(Vec<String>),
}

/// The CORS keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `cors_allow_origin`.
    pub origins: Origins,
    /// `cors_allow_headers` (default [`DEFAULT_ALLOW_HEADERS`]).
    pub allow_headers: AllowHeaders,
    /// `cors_expose_headers`: response headers scripts may read.
    pub expose_headers: Option<HeaderValue>,
    /// `cors_max_age`: seconds a preflight answer may be reused.
    pub max_age: u64,
}

/// Why a preflight is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightRefusal {
    /// The origin is not in `cors_allow_origin`.
    Origin,
    /// The method asked for is not GET or HEAD.
    Method,
    /// This requested header is not in `cors_allow_headers`.
    Header(String),
}

impl std::fmt::Display for PreflightRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Origin => f.write_str("origin not allowed"),
            Self::Method => f.write_str("method not allowed (GET, HEAD only)"),
            Self::Header(h) => write!(f, "request header {h:?} not allowed"),
        }
    }
}

/// Whether a request is a CORS preflight (Fetch §3.2.2).
pub fn is_preflight(req: &HeaderMap) -> bool {
    req.contains_key(ORIGIN) && req.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for a request's `Origin`,
    /// `None` when the origin is absent or not allowed.
    fn allow_origin(&self, req: &HeaderMap) -> Option<HeaderValue> {
        match &self.origins {
            Origins::Any => Some(HeaderValue::from_static("*")),
            Origins::List(list) => {
                let origin = req.get(ORIGIN)?;
                let o = origin.to_str().ok()?;
                list.iter()
                    .any(|x| x.eq_ignore_ascii_case(o))
                    .then(|| origin.clone())
            }
        }
    }

    /// Adds the CORS headers of an answer to GET/HEAD.
    pub fn apply(&self, req: &HeaderMap, h: &mut HeaderMap) {
        if let Origins::List(_) = self.origins {
            super::cache_policy::add_vary(h, "Origin");
        }
        if !req.contains_key(ORIGIN) {
            return;
        }
        if let Some(v) = self.allow_origin(req) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            if let Some(e) = &self.expose_headers {
                h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
            }
        }
    }

    /// The headers of a 204 answer to a preflight, or why it is refused.
    pub fn preflight(
        &self,
        req: &HeaderMap,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, PreflightRefusal> {
        let origin = self.allow_origin(req).ok_or(PreflightRefusal::Origin)?;
        let method = req
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if method != b"GET" && method != b"HEAD" {
            return Err(PreflightRefusal::Method);
        }
        let mut out = vec![
            (ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD"),
            ),
        ];
        if let Some(asked) = req.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            let text = asked
                .to_str()
                .map_err(|_| PreflightRefusal::Header(String::new()))?;
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let lower = name.to_ascii_lowercase();
                let ok = match &self.allow_headers {
                    AllowHeaders::Any => true,
                    AllowHeaders::List(l) => l.contains(&lower),
                };
                if !ok {
                    return Err(PreflightRefusal::Header(lower));
                }
            }
            if !text.trim().is_empty() {
                out.push((ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
            }
        }
        out.push((ACCESS_CONTROL_MAX_AGE, HeaderValue::from(self.max_age)));
        let vary = match self.origins {
            Origins::Any => "Access-Control-Request-Headers",
            Origins::List(_) => "Origin, Access-Control-Request-Headers",
        };
        out.push((VARY, HeaderValue::from_static(vary)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn listed() -> Cors {
        Cors {
            origins: Origins::List(vec!["https://app.example.com".into()]),
            allow_headers: AllowHeaders::List(
                DEFAULT_ALLOW_HEADERS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            expose_headers: Some(HeaderValue::from_static("Content-Range, ETag")),
            max_age: 600,
        }
    }

    #[test]
    fn actual_answers_echo_listed_origins() {
        let c = listed();
        let mut h = HeaderMap::new();
        c.apply(&req(&[("origin", "https://APP.example.com")]), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://APP.example.com");
        assert_eq!(h["access-control-expose-headers"], "Content-Range, ETag");
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        c.apply(&req(&[("origin", "https://evil.example")]), &mut h);
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], "Origin");
        let any = Cors {
            origins: Origins::Any,
            ..listed()
        };
        let mut h = HeaderMap::new();
        any.apply(&req(&[("origin", "https://x")]), &mut h);
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(!h.contains_key("vary"));
        let mut h = HeaderMap::new();
        any.apply(&HeaderMap::new(), &mut h);
        assert!(h.is_empty(), "no Origin, no CORS headers");
    }

    #[test]
    fn preflight_checks_origin_method_and_headers() {
        let c = listed();
        let ok = c
            .preflight(&req(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range, If-None-Match"),
            ]))
            .unwrap();
        let get = |n: &str| ok.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(
            get("access-control-allow-origin").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(get("access-control-allow-methods").unwrap(), "GET, HEAD");
        assert_eq!(
            get("access-control-allow-headers").unwrap(),
            "range, If-None-Match"
        );
        assert_eq!(get("access-control-max-age").unwrap(), "600");
        assert!(is_preflight(&req(&[
            ("origin", "x"),
            ("access-control-request-method", "GET")
        ])));
        assert!(!is_preflight(&req(&[("origin", "x")])));
        assert_eq!(
            c.preflight(&req(&[
                ("origin", "https://other"),
                ("access-control-request-method", "GET")
            ])),
            Err(PreflightRefusal::Origin)
        );
        assert_eq!(
            c.preflight(&req(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT")
            ])),
            Err(PreflightRefusal::Method)
        );
        assert_eq!(
            c.preflight(&req(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization")
            ])),
            Err(PreflightRefusal::Header("authorization".into()))
        );
    }
}
