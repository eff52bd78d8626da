//! The `Date` field value (RFC 9110 §6.6.1), formatted once per second per
//! thread rather than per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
const LEN: usize = 29;

thread_local! {
    static CACHED: RefCell<(u64, [u8; LEN])> = const { RefCell::new((u64::MAX, [b' '; LEN])) };
}

/// Appends the current date to `out`.
pub fn extend(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LEN {
                c.1.copy_from_slice(text.as_bytes());
                c.0 = secs;
            } else {
                out.extend_from_slice(text.as_bytes());
                return;
            }
        }
        out.extend_from_slice(&c.1);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_an_http_date_of_now() {
        let mut out = Vec::new();
        super::extend(&mut out);
        let t = httpdate::parse_http_date(std::str::from_utf8(&out).unwrap()).unwrap();
        let age = std::time::SystemTime::now().duration_since(t).unwrap();
        assert!(age.as_secs() <= 1);
        let mut again = Vec::new();
        super::extend(&mut again);
        assert_eq!(out.len(), again.len());
    }
}
