//! Response builders shared by the request path: small error bodies, the
//! headers every answer carries, and the response of a file's
//! [`Plan`] ([`planned`]).

use http::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, SERVER};
use http::{HeaderMap, Response, StatusCode};

use crate::body::{self, Body};
use crate::http::plan::{Plan, Served};

/// `Server` header value.
pub const SERVER_NAME: HeaderValue =
    HeaderValue::from_static(concat!("fdfs-httpd/", env!("CARGO_PKG_VERSION")));

/// A response with a one-line text body naming the status, e.g.
/// `404 Not Found`. Bodies are small and framed by Content-Length, so the
/// connection stays usable.
#[cold]
pub fn error(status: StatusCode) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut r = Response::new(body::full(text.clone()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(SERVER, SERVER_NAME);
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    r
}

/// 405 with `Allow: GET, HEAD`.
#[cold]
pub fn method_not_allowed() -> Response<Body> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// An empty response with the given status (304, 302).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(SERVER, SERVER_NAME);
    r
}

/// The response `plan` describes: `Server`, then the plan's headers; an
/// error text body for 412/416/400, none for 304. For 200/206, `body`
/// turns the plan's pieces into the body; it is not called for HEAD.
pub fn planned(
    plan: &Plan<'_>,
    head: bool,
    body: impl FnOnce(&Plan<'_>) -> Body,
) -> Response<Body> {
    let mut r = match plan.served() {
        Served::NotModified => empty(plan.status()),
        Served::Refused => error(plan.status()),
        Served::Full | Served::Partial => {
            let mut r = Response::new(if head { body::empty() } else { body(plan) });
            *r.status_mut() = plan.status();
            // Room for every header of a file answer: no regrowth.
            *r.headers_mut() = HeaderMap::with_capacity(12);
            r.headers_mut().insert(SERVER, SERVER_NAME);
            r
        }
    };
    plan.write_headers(r.headers_mut());
    r
}

/// Drops the body of a response to a HEAD request, keeping its headers
/// (Content-Length included).
pub fn strip_body_for_head(head: bool, r: Response<Body>) -> Response<Body> {
    if !head {
        return r;
    }
    let (parts, _) = r.into_parts();
    Response::from_parts(parts, body::empty())
}
