//! The API's answers (docs/upload.md §5): JSON bodies, errors as
//! `{"error": code, "message": text}` with their status.

use http::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, SERVER};
use http::{Response, StatusCode};

use crate::body::{self, Body};
use crate::response::SERVER_NAME;

/// A refused or failed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// `Retry-After` seconds (503 when busy).
    pub retry_after: Option<u64>,
    /// `Allow` (405).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413 with code `too_large`.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the file is larger than this application's limit of {limit} bytes"),
        )
    }

    /// The response.
    pub fn response(&self) -> Response<Body> {
        let doc = serde_json::json!({"error": self.code, "message": self.message});
        let mut r = json(self.status, &doc);
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(a) = self.allow {
            r.headers_mut().insert(ALLOW, HeaderValue::from_static(a));
        }
        r
    }
}

/// A JSON response.
pub fn json(status: StatusCode, doc: &serde_json::Value) -> Response<Body> {
    let mut text = doc.to_string();
    text.push('\n');
    let mut r = Response::new(body::full(text.clone()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(SERVER, SERVER_NAME);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape() {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many \"uploads\"",
        );
        e.retry_after = Some(1);
        let r = e.response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
