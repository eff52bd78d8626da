//! The referer allow-list (`valid_referers`; docs/operations.md "Referer
//! allow-list"), with nginx's `valid_referers` semantics
//! (ngx_http_referer_module): `none` admits requests without `Referer`,
//! `blocked` admits a `Referer` that does not start with `http://` or
//! `https://` (stripped by a firewall or proxy); other entries are server
//! names matched against the referer's host (lowercased, up to the first
//! `/` or `:`): exact, `*.example.com` (any subdomain), `.example.com` (the
//! domain and its subdomains), `www.example.*` (any last part), optionally
//! followed by a URI prefix (`example.com/pics/`); `~regex` is matched,
//! case-insensitively, against the referer after its scheme.

use std::fmt;

/// One server-name entry.
#[derive(Clone)]
enum Name {
    /// `host` and an optional URI prefix.
    Exact(String, Option<String>),
    /// `*.d` (`true`: `.d` also matches `d` itself) → the suffix `.d`.
    Suffix(String, bool),
    /// `h.*` → the prefix `h.`.
    Prefix(String),
    /// `~re`, with its source.
    Regex(regex_lite::Regex, String),
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.source() == other.source()
    }
}

impl Eq for Name {}

impl Name {
    fn source(&self) -> String {
        match self {
            Name::Exact(h, Some(p)) => format!("{h}{p}"),
            Name::Exact(h, None) => h.clone(),
            Name::Suffix(s, true) => s.clone(),
            Name::Suffix(s, false) => format!("*{s}"),
            Name::Prefix(p) => format!("{p}*"),
            Name::Regex(_, s) => format!("~{s}"),
        }
    }
}

/// A parsed `valid_referers` list.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ValidReferers {
    none: bool,
    blocked: bool,
    names: Vec<Name>,
}

impl fmt::Debug for ValidReferers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.names.iter().map(Name::source).collect();
        f.debug_struct("ValidReferers")
            .field("none", &self.none)
            .field("blocked", &self.blocked)
            .field("names", &names)
            .finish()
    }
}

/// Why an entry of `valid_referers` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefererError {
    /// A `~` entry that is not a regular expression.
    BadRegex(String),
    /// A wildcard somewhere else than a whole first or last label.
    BadWildcard(String),
}

impl fmt::Display for RefererError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRegex(e) => write!(f, "invalid regular expression: {e}"),
            Self::BadWildcard(n) => write!(
                f,
                "{n}: a wildcard must be a whole first (*.example.com) or last (www.example.*) label"
            ),
        }
    }
}

impl std::error::Error for RefererError {}

impl ValidReferers {
    /// Adds one entry (`none`, `blocked`, a server name or `~regex`).
    pub fn push(&mut self, entry: &str) -> Result<(), RefererError> {
        let name = match entry {
            "none" => {
                self.none = true;
                return Ok(());
            }
            "blocked" => {
                self.blocked = true;
                return Ok(());
            }
            // nginx's `server_names` (the host's own names) has no meaning
            // without virtual hosts; it is refused by the config.
            e if e.starts_with('~') => {
                let src = &e[1..];
                let re = regex_lite::RegexBuilder::new(src)
                    .case_insensitive(true)
                    .build()
                    .map_err(|err| RefererError::BadRegex(err.to_string()))?;
                Name::Regex(re, src.to_owned())
            }
            e => {
                let e = e.to_ascii_lowercase();
                let (host, uri) = match e.find('/') {
                    Some(i) => (e[..i].to_owned(), Some(e[i..].to_owned())),
                    None => (e.clone(), None),
                };
                let bad = || RefererError::BadWildcard(entry.to_owned());
                if let Some(rest) = host.strip_prefix("*.") {
                    if rest.contains('*') || uri.is_some() {
                        return Err(bad());
                    }
                    Name::Suffix(format!(".{rest}"), false)
                } else if let Some(stem) = host.strip_suffix(".*") {
                    if stem.contains('*') || stem.is_empty() || uri.is_some() {
                        return Err(bad());
                    }
                    Name::Prefix(format!("{stem}."))
                } else if host.contains('*') {
                    return Err(bad());
                } else if host.starts_with('.') && uri.is_none() {
                    Name::Suffix(host, true)
                } else {
                    Name::Exact(host, uri)
                }
            }
        };
        self.names.push(name);
        Ok(())
    }

    /// Whether a request with this `Referer` (absent: `None`) is admitted.
    pub fn admits(&self, referer: Option<&[u8]>) -> bool {
        let Some(r) = referer else {
            return self.none;
        };
        let rest = strip_scheme(r);
        let Some(rest) = rest else {
            return self.blocked;
        };
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b':')
            .unwrap_or(rest.len());
        let host = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let after_host = &rest[end..];
        let text = String::from_utf8_lossy(rest);
        self.names.iter().any(|n| match n {
            Name::Exact(h, None) => *h == host,
            Name::Exact(h, Some(uri)) => *h == host && after_host.starts_with(uri.as_bytes()),
            Name::Suffix(s, with_domain) => {
                (host.ends_with(s.as_str()) && host.len() > s.len())
                    || (*with_domain && host == s[1..])
            }
            Name::Prefix(p) => host.starts_with(p.as_str()) && host.len() > p.len(),
            Name::Regex(re, _) => re.is_match(&text),
        })
    }
}

/// The referer after `http://` or `https://` (ASCII case-insensitive);
/// nginx also requires at least a one-letter host and a dot (`http://i.ru`).
fn strip_scheme(r: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if r.len() >= scheme.len() + 4 && r[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&r[scheme.len()..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> ValidReferers {
        let mut v = ValidReferers::default();
        for e in entries {
            v.push(e).unwrap();
        }
        v
    }

    fn ok(v: &ValidReferers, r: &str) -> bool {
        v.admits(Some(r.as_bytes()))
    }

    #[test]
    fn none_and_blocked() {
        let v = list(&["none", "blocked"]);
        assert!(v.admits(None));
        assert!(ok(&v, "stripped-by-firewall"));
        assert!(ok(&v, ""));
        assert!(!ok(&v, "http://other.example/"));
        let strict = list(&["example.com"]);
        assert!(!strict.admits(None));
        assert!(!ok(&strict, "example.com"));
    }

    #[test]
    fn server_names_like_nginx() {
        let v = list(&["example.com", "*.cdn.example", ".example.org", "www.shop.*"]);
        assert!(ok(&v, "http://example.com/page"));
        assert!(ok(&v, "HTTPS://Example.COM:8443/x"));
        assert!(!ok(&v, "http://www.example.com/"));
        assert!(ok(&v, "http://a.b.cdn.example/"));
        assert!(!ok(&v, "http://cdn.example/"));
        assert!(ok(&v, "http://example.org/"));
        assert!(ok(&v, "http://img.example.org/"));
        assert!(!ok(&v, "http://badexample.org/"));
        assert!(ok(&v, "http://www.shop.co.uk/"));
        assert!(!ok(&v, "http://www.shop./"));
        assert!(!ok(&v, "http://example.com.evil.net/"));
    }

    #[test]
    fn uri_prefixes_and_regexes() {
        let v = list(&["example.com/gallery/", r"~\.google\."]);
        assert!(ok(&v, "http://example.com/gallery/1.html"));
        assert!(!ok(&v, "http://example.com/other/"));
        assert!(ok(&v, "https://www.GOOGLE.de/search?q=x"));
        assert!(!ok(&v, "https://google/"));
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut v = ValidReferers::default();
        assert!(matches!(v.push("~("), Err(RefererError::BadRegex(_))));
        assert!(matches!(
            v.push("a.*.com"),
            Err(RefererError::BadWildcard(_))
        ));
        assert!(matches!(v.push("*.a.*"), Err(RefererError::BadWildcard(_))));
        assert!(format!("{:?}", list(&["none", "*.a.b"])).contains("*.a.b"));
    }
}
