//! Who is calling (docs/upload.md §3): `app_id` + `app_key` (form fields
//! or the `X-Fdfs-App-Id` / `X-Fdfs-App-Key` headers), or an HMAC-SHA256
//! signature (`X-Fdfs-App-Id`, `X-Fdfs-Timestamp`, `X-Fdfs-Signature`) over
//! [`string_to_sign`]. Keys are compared in constant time and never
//! appear in an error.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{UploadApp, UploadConfig};

/// Header naming the application.
pub const APP_ID: &str = "x-fdfs-app-id";
/// Header carrying the key (the key method).
pub const APP_KEY: &str = "x-fdfs-app-key";
/// Header carrying the signing time (unix seconds).
pub const TIMESTAMP: &str = "x-fdfs-timestamp";
/// Header carrying the signature (lowercase hex).
pub const SIGNATURE: &str = "x-fdfs-signature";
/// Largest accepted distance between the timestamp and now, seconds.
pub const MAX_SKEW: u64 = 300;

/// Why a request is not authenticated (401) or not allowed (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials at all.
    Missing,
    /// An `app_id` no application has.
    UnknownApp,
    /// The key does not match.
    WrongKey,
    /// The application accepts signatures only.
    KeyNotAccepted,
    /// The signature does not match.
    BadSignature,
    /// The timestamp is not a number.
    BadTimestamp,
    /// The timestamp is more than 300 s away from now.
    Expired,
    /// The client's address is outside the application's networks (403).
    Network,
}

impl AuthError {
    /// The message of the JSON error answer.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "credentials required: app_id and app_key, or a signature",
            AuthError::UnknownApp | AuthError::WrongKey => "unknown app_id or wrong app_key",
            AuthError::KeyNotAccepted => "this application must sign its requests",
            AuthError::BadSignature => "signature does not match",
            AuthError::BadTimestamp => "X-Fdfs-Timestamp is not a unix time",
            AuthError::Expired => "X-Fdfs-Timestamp is more than 300 s from the server's time",
            AuthError::Network => "client address not allowed for this application",
        }
    }
}

/// Credentials as presented, before checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// `app_id`.
    pub app_id: Option<String>,
    /// `app_key`.
    pub app_key: Option<String>,
    /// `X-Fdfs-Timestamp`.
    pub timestamp: Option<String>,
    /// `X-Fdfs-Signature`.
    pub signature: Option<String>,
}

impl Presented {
    /// The credentials in the request's headers.
    pub fn from_headers(h: &HeaderMap) -> Presented {
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
        };
        Presented {
            app_id: get(APP_ID),
            app_key: get(APP_KEY),
            timestamp: get(TIMESTAMP),
            signature: get(SIGNATURE),
        }
    }

    /// Whether anything was presented.
    pub fn is_empty(&self) -> bool {
        self.app_id.is_none() && self.app_key.is_none() && self.signature.is_none()
    }
}

/// What is signed: `METHOD \n path \n timestamp \n content-length`, the
/// path as sent (without the query), the length as decimal, empty when the
/// request has no `Content-Length`.
pub fn string_to_sign(method: &str, path: &str, timestamp: &str, len: Option<u64>) -> String {
    let len = len.map(|n| n.to_string()).unwrap_or_default();
    format!("{method}\n{path}\n{timestamp}\n{len}")
}

/// The signature of `msg` with `key`, lowercase hex.
pub fn sign(key: &[u8], msg: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(msg.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

/// The request being authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method.
    pub method: &'a str,
    /// Path as sent.
    pub path: &'a str,
    /// `Content-Length`, if any.
    pub len: Option<u64>,
    /// Unix time now.
    pub now: u64,
    /// The client's address.
    pub client: IpAddr,
}

/// Checks `p` against the configured applications.
pub fn check<'c>(
    cfg: &'c UploadConfig,
    p: &Presented,
    req: Request<'_>,
) -> Result<&'c UploadApp, AuthError> {
    let id = p.app_id.as_deref().ok_or(AuthError::Missing)?;
    let app = cfg.app(id).ok_or(AuthError::UnknownApp)?;
    if let Some(sig) = &p.signature {
        let ts = p.timestamp.as_deref().ok_or(AuthError::BadTimestamp)?;
        let t: u64 = ts.parse().map_err(|_| AuthError::BadTimestamp)?;
        if t.abs_diff(req.now) > MAX_SKEW {
            return Err(AuthError::Expired);
        }
        let given = unhex(&sig.to_ascii_lowercase()).ok_or(AuthError::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(app.key.expose())
            .map_err(|_| AuthError::BadSignature)?;
        mac.update(string_to_sign(req.method, req.path, ts, req.len).as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| AuthError::BadSignature)?;
    } else {
        let key = p.app_key.as_deref().ok_or(AuthError::Missing)?;
        if !bool::from(key.as_bytes().ct_eq(app.key.expose())) {
            return Err(AuthError::WrongKey);
        }
        if !app.key_auth {
            return Err(AuthError::KeyNotAccepted);
        }
    }
    if !app.networks.is_empty() && !app.networks.iter().any(|n| n.contains(req.client)) {
        return Err(AuthError::Network);
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AppKey, Cidr};
    use std::time::Duration;

    fn cfg() -> UploadConfig {
        let app = |id: &str, key_auth, networks: Vec<Cidr>| UploadApp {
            id: id.into(),
            key: AppKey::new(b"0123456789abcdef"),
            upload: true,
            delete: false,
            max_size: 10,
            extensions: vec![],
            group: None,
            networks,
            key_auth,
        };
        UploadConfig {
            prefix: "/api".into(),
            public_base_url: None,
            max_concurrent: 1,
            stall_timeout: Duration::from_secs(1),
            temp_dir: None,
            apps: vec![
                app("shop", true, vec![]),
                app("signed", false, vec!["10.0.0.0/8".parse().unwrap()]),
            ],
        }
    }

    fn req(client: &str) -> Request<'static> {
        Request {
            method: "PUT",
            path: "/api/upload/a.txt",
            len: Some(5),
            now: 1_800_000_000,
            client: client.parse().unwrap(),
        }
    }

    fn keyed(id: &str, key: &str) -> Presented {
        Presented {
            app_id: Some(id.into()),
            app_key: Some(key.into()),
            ..Presented::default()
        }
    }

    fn signed(id: &str, ts: u64, key: &[u8]) -> Presented {
        let msg = string_to_sign("PUT", "/api/upload/a.txt", &ts.to_string(), Some(5));
        Presented {
            app_id: Some(id.into()),
            timestamp: Some(ts.to_string()),
            signature: Some(sign(key, &msg)),
            ..Presented::default()
        }
    }

    #[test]
    fn keys_and_signatures() {
        let c = cfg();
        let r = req("10.1.2.3");
        assert_eq!(
            check(&c, &keyed("shop", "0123456789abcdef"), r).map(|a| a.id.as_str()),
            Ok("shop")
        );
        assert_eq!(
            check(&c, &keyed("shop", "0123456789abcdeF"), r).err(),
            Some(AuthError::WrongKey)
        );
        assert_eq!(
            check(&c, &keyed("shop", ""), r).err(),
            Some(AuthError::WrongKey)
        );
        assert_eq!(
            check(&c, &keyed("nope", "0123456789abcdef"), r).err(),
            Some(AuthError::UnknownApp)
        );
        assert_eq!(
            check(&c, &Presented::default(), r).err(),
            Some(AuthError::Missing)
        );
        assert_eq!(
            check(&c, &keyed("signed", "0123456789abcdef"), r).err(),
            Some(AuthError::KeyNotAccepted)
        );
        let now = r.now;
        assert!(check(&c, &signed("signed", now - 299, b"0123456789abcdef"), r).is_ok());
        assert_eq!(
            check(&c, &signed("signed", now - 301, b"0123456789abcdef"), r).err(),
            Some(AuthError::Expired)
        );
        assert_eq!(
            check(&c, &signed("signed", now + 301, b"0123456789abcdef"), r).err(),
            Some(AuthError::Expired)
        );
        assert_eq!(
            check(&c, &signed("signed", now, b"0123456789abcdeX"), r).err(),
            Some(AuthError::BadSignature)
        );
        let mut other_len = req("10.1.2.3");
        other_len.len = Some(6);
        assert_eq!(
            check(&c, &signed("signed", now, b"0123456789abcdef"), other_len).err(),
            Some(AuthError::BadSignature)
        );
        assert_eq!(
            check(
                &c,
                &signed("signed", now, b"0123456789abcdef"),
                req("192.168.1.1")
            )
            .err(),
            Some(AuthError::Network)
        );
        let mut garbage = signed("signed", now, b"0123456789abcdef");
        garbage.signature = Some("zz".into());
        assert_eq!(check(&c, &garbage, r).err(), Some(AuthError::BadSignature));
        garbage.timestamp = Some("soon".into());
        assert_eq!(check(&c, &garbage, r).err(), Some(AuthError::BadTimestamp));
    }

    /// The documented example (docs/upload.md §3).
    #[test]
    fn documented_signature() {
        let msg = string_to_sign("PUT", "/api/upload/hello.txt", "1800000000", Some(6));
        assert_eq!(msg, "PUT\n/api/upload/hello.txt\n1800000000\n6");
        assert_eq!(sign(b"0123456789abcdef0123", &msg).len(), 64);
    }
}
