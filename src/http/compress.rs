//! Whether an answer is gzip-compressed (`gzip`, `gzip_types`,
//! `gzip_min_length`, `gzip_comp_level`; docs/operations.md "Compression"):
//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3), the types compressed
//! (nginx's `gzip_types`; `text/html` always, never types that are already
//! compressed), and the validator of the compressed variant: a distinct
//! strong ETag (`"<tag>-gzip"`, RFC 9110 §8.8.3: a different representation
//! needs a different strong tag). Only whole 200 answers to GET are
//! compressed, never a Range request (RFC 9110 §14: ranges address the
//! identity bytes) nor a HEAD.

use http::header::{HeaderValue, ACCEPT_ENCODING};
use http::HeaderMap;

/// Largest body compressed (in memory); larger answers go uncompressed.
pub const MAX_COMPRESSED_INPUT: u64 = 8 * 1024 * 1024;

/// Types that are compressed already: never gzipped, even with `gzip_types = *`.
const COMPRESSED: &[&str] = &[
    "image/",
    "video/",
    "audio/",
    "font/woff",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/pdf",
    "application/octet-stream",
];

/// The compression keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gzip {
    /// Media types compressed (lowercase, without parameters); `*` = any.
    pub types: Vec<String>,
    /// Smallest body compressed (nginx default 20).
    pub min_length: u64,
    /// 1 (fastest, nginx default) .. 9.
    pub level: u32,
}

impl Gzip {
    /// Whether answers of this `Content-Type` are compressible.
    pub fn compressible(&self, content_type: &str) -> bool {
        let mt = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mt.is_empty() || (COMPRESSED.iter().any(|c| mt.starts_with(c)) && mt != "image/svg+xml")
        {
            return false;
        }
        mt == "text/html" || self.types.iter().any(|t| t == "*" || *t == mt)
    }

    /// Whether a body of `len` bytes is compressed.
    pub fn worth(&self, len: u64) -> bool {
        len >= self.min_length && len <= MAX_COMPRESSED_INPUT
    }
}

/// Whether the request accepts gzip: `gzip` (or `x-gzip`, or `*`) listed
/// with a non-zero quality, and `gzip` not refused with `q=0`.
pub fn accepts_gzip(req: &HeaderMap) -> bool {
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for v in req.get_all(ACCEPT_ENCODING) {
        let Ok(text) = v.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q_zero = parts.any(|p| {
                let p = p.trim();
                p.len() >= 2
                    && p[..2].eq_ignore_ascii_case("q=")
                    && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            });
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(!q_zero && gzip != Some(false)),
                "*" => star = Some(!q_zero),
                _ => {}
            }
        }
    }
    gzip.or(star).unwrap_or(false)
}

/// The ETag of the gzip variant of a representation tagged `etag`.
pub fn gzip_etag(etag: &HeaderValue) -> Option<HeaderValue> {
    let s = etag.to_str().ok()?;
    let inner = s.strip_suffix('"')?;
    HeaderValue::from_str(&format!("{inner}-gzip\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ae(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn negotiation() {
        assert!(accepts_gzip(&ae("gzip, deflate, br")));
        assert!(accepts_gzip(&ae("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&ae("*")));
        assert!(!accepts_gzip(&ae("gzip;q=0")));
        assert!(!accepts_gzip(&ae("gzip;q=0.000, *")));
        assert!(!accepts_gzip(&ae("identity")));
        assert!(!accepts_gzip(&ae("*;q=0")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn types() {
        let g = Gzip {
            types: vec!["text/plain".into(), "application/json".into()],
            min_length: 20,
            level: 1,
        };
        assert!(g.compressible("text/plain; charset=utf-8"));
        assert!(g.compressible("Application/JSON"));
        assert!(g.compressible("text/html"));
        assert!(!g.compressible("text/css"));
        let any = Gzip {
            types: vec!["*".into()],
            ..g.clone()
        };
        assert!(any.compressible("text/css"));
        assert!(any.compressible("image/svg+xml"));
        assert!(!any.compressible("image/png"));
        assert!(!any.compressible("application/zip"));
        assert!(!any.compressible(""));
        assert!(g.worth(20) && !g.worth(19) && !g.worth(MAX_COMPRESSED_INPUT + 1));
    }

    #[test]
    fn variant_tags() {
        let t = gzip_etag(&HeaderValue::from_static("\"abc\"")).unwrap();
        assert_eq!(t, "\"abc-gzip\"");
        let w = gzip_etag(&HeaderValue::from_static("W/\"abc\"")).unwrap();
        assert_eq!(w, "W/\"abc-gzip\"");
        assert!(gzip_etag(&HeaderValue::from_static("bad")).is_none());
    }
}
