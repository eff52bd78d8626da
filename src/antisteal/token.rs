//! The FastDFS anti-steal token (docs/module-behaviour.md §4, docs/config-keys.md
//! §2, docs/file-id.md §9).
//!
//! `token` = lowercase hex MD5 of
//! `remote filename without group ‖ secret ‖ decimal(ts)`, where the remote
//! filename is e.g. `M00/00/00/x.jpg` (no group, no query) and `ts` is the
//! `ts` parameter read with C `atoi` (`123abc` → 123; the decimal of the
//! parsed value is hashed, not the raw text).
//!
//! Checks, in the module's order ([`check_token`]):
//! 1. `token` or `ts` absent → [`TokenFailure::Missing`];
//! 2. token length ≠ 32 → [`TokenFailure::Malformed`];
//! 3. `ts == 0` never expires; optionally refused ([`TokenFailure::TsZero`]);
//! 4. `now − ts > ttl` → [`TokenFailure::Expired`]; a future `ts` is accepted
//!    unless `max_future_skew` is set ([`TokenFailure::FutureTs`]);
//! 5. `len(remote) + len(secret) + 12 > 320` → [`TokenFailure::Malformed`]
//!    (the module's buffer limit);
//! 6. any difference from the expected token, including uppercase hex →
//!    [`TokenFailure::Mismatch`]; compared in constant time.
//!
//! One divergence: C stores `atoi` in an `int`, so a `ts` beyond 32 bits
//! wraps there; here it saturates at the `i64` bounds.

use std::fmt;

use ::http::StatusCode;
use md5::{Digest, Md5};

/// The module's token buffer: `len(id) + len(secret) + 12` must not exceed it.
const MAX_SIGNED_LEN: usize = 320;

/// Length of a token: 16 bytes of MD5 as hex.
const TOKEN_LEN: usize = 32;

/// Settings of the token check (`http.anti_steal.*`).
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy<'a> {
    /// `http.anti_steal.secret_key`.
    pub secret: &'a str,
    /// `http.anti_steal.token_ttl`, seconds a token stays valid after `ts`.
    pub ttl: u64,
    /// Refuse `ts=0` (the module accepts it forever).
    pub reject_ts_zero: bool,
    /// Refuse a `ts` more than this many seconds in the future (the module
    /// accepts any future `ts`).
    pub max_future_skew: Option<u64>,
}

/// Why a token check failed. `Display` names the reason only, never the
/// secret or the expected token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    /// `token` or `ts` parameter absent.
    Missing,
    /// Token not 32 characters, or file ID plus secret too long to sign.
    Malformed,
    /// `now − ts > ttl`.
    Expired,
    /// `ts` further in the future than `max_future_skew`.
    FutureTs,
    /// `ts` is 0 and `reject_ts_zero` is set.
    TsZero,
    /// The token differs from the expected one.
    Mismatch,
}

impl TokenFailure {
    /// The status without a configured fail file (`token_check_fail`); with
    /// one, the handler answers 200 with that file instead.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenFailure::Missing => "token or ts parameter missing",
            TokenFailure::Malformed => "malformed token",
            TokenFailure::Expired => "token expired",
            TokenFailure::FutureTs => "token timestamp too far in the future",
            TokenFailure::TsZero => "token timestamp 0 refused",
            TokenFailure::Mismatch => "token mismatch",
        })
    }
}

impl std::error::Error for TokenFailure {}

/// Checks the `token`/`ts` parameters for `remote` (the filename without
/// group, e.g. `M00/00/00/x.jpg`) at unix time `now`.
pub fn check_token(
    token: Option<&str>,
    ts: Option<&str>,
    remote: &str,
    policy: &TokenPolicy,
    now: i64,
) -> Result<(), TokenFailure> {
    let (Some(token), Some(ts)) = (token, ts) else {
        return Err(TokenFailure::Missing);
    };
    if token.len() != TOKEN_LEN {
        return Err(TokenFailure::Malformed);
    }
    let ts = atoi(ts);
    if ts == 0 {
        if policy.reject_ts_zero {
            return Err(TokenFailure::TsZero);
        }
    } else {
        let age = i128::from(now) - i128::from(ts);
        if age > i128::from(policy.ttl) {
            return Err(TokenFailure::Expired);
        }
        if let Some(skew) = policy.max_future_skew {
            if -age > i128::from(skew) {
                return Err(TokenFailure::FutureTs);
            }
        }
    }
    if remote
        .len()
        .saturating_add(policy.secret.len())
        .saturating_add(12)
        > MAX_SIGNED_LEN
    {
        return Err(TokenFailure::Malformed);
    }
    let expected = sign(remote, policy.secret, ts);
    if constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(TokenFailure::Mismatch)
    }
}

/// The token for `remote` (filename without group), `secret` and `ts`:
/// lowercase hex MD5 of `remote ‖ secret ‖ decimal(ts)`.
pub fn sign(remote: &str, secret: &str, ts: i64) -> String {
    let mut md5 = Md5::new();
    md5.update(remote.as_bytes());
    md5.update(secret.as_bytes());
    md5.update(ts.to_string().as_bytes());
    md5.finalize()
        .iter()
        .fold(String::with_capacity(TOKEN_LEN), |mut out, b| {
            out.push_str(&format!("{b:02x}"));
            out
        })
}

/// C `atoi`: leading whitespace, optional sign, leading digits, the rest
/// ignored; no digits → 0. Saturates at the `i64` bounds.
pub fn atoi(s: &str) -> i64 {
    crate::http::cnum::strtoll_prefix(s).value
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "FastDFS1234567890";
    const REMOTE: &str = "M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf";
    const NOW: i64 = 1_700_000_100;

    fn policy() -> TokenPolicy<'static> {
        TokenPolicy {
            secret: SECRET,
            ttl: 900,
            reject_ts_zero: false,
            max_future_skew: None,
        }
    }

    fn check(token: &str, ts: &str, p: &TokenPolicy) -> Result<(), TokenFailure> {
        check_token(Some(token), Some(ts), REMOTE, p, NOW)
    }

    #[test]
    fn worked_example() {
        assert_eq!(
            sign(REMOTE, SECRET, 1_700_000_000),
            "1b7a9eedf07d26c0b2e1523d35dad1bb"
        );
        assert_eq!(
            check("1b7a9eedf07d26c0b2e1523d35dad1bb", "1700000000", &policy()),
            Ok(())
        );
    }

    // The [observed] matrix of docs/module-behaviour.md §4 (secret, ttl 900).
    #[test]
    fn observed_matrix() {
        let p = policy();
        // Token over the ID without group → file.
        let ts = NOW.to_string();
        assert_eq!(check(&sign(REMOTE, SECRET, NOW), &ts, &p), Ok(()));
        // Over group1/M00/... → fail.
        let with_group = sign(&format!("group1/{REMOTE}"), SECRET, NOW);
        assert_eq!(check(&with_group, &ts, &p), Err(TokenFailure::Mismatch));
        // ts=0 with matching token → file.
        assert_eq!(check(&sign(REMOTE, SECRET, 0), "0", &p), Ok(()));
        // ts 1000 s old → fail.
        let old = NOW - 1000;
        assert_eq!(
            check(&sign(REMOTE, SECRET, old), &old.to_string(), &p),
            Err(TokenFailure::Expired)
        );
        // ts far in the future → file.
        let future = NOW + 10 * 365 * 86400;
        assert_eq!(
            check(&sign(REMOTE, SECRET, future), &future.to_string(), &p),
            Ok(())
        );
        // Uppercase token → fail.
        let upper = sign(REMOTE, SECRET, NOW).to_uppercase();
        assert_eq!(check(&upper, &ts, &p), Err(TokenFailure::Mismatch));
        // token=&ts= → fail.
        assert_eq!(check("", "", &p), Err(TokenFailure::Malformed));
    }

    #[test]
    fn missing_parameters() {
        let p = policy();
        assert_eq!(
            check_token(None, Some("1"), REMOTE, &p, NOW),
            Err(TokenFailure::Missing)
        );
        assert_eq!(
            check_token(
                Some("1b7a9eedf07d26c0b2e1523d35dad1bb"),
                None,
                REMOTE,
                &p,
                NOW
            ),
            Err(TokenFailure::Missing)
        );
        assert_eq!(
            check_token(None, None, REMOTE, &p, NOW),
            Err(TokenFailure::Missing)
        );
    }

    #[test]
    fn token_length_must_be_32() {
        let p = policy();
        let good = sign(REMOTE, SECRET, NOW);
        let ts = NOW.to_string();
        assert_eq!(check(&good[..31], &ts, &p), Err(TokenFailure::Malformed));
        assert_eq!(
            check(&format!("{good}0"), &ts, &p),
            Err(TokenFailure::Malformed)
        );
        // Length is checked before expiry, as in C.
        assert_eq!(check("x", "1", &p), Err(TokenFailure::Malformed));
        // 32 bytes of non-ASCII of the right byte length: mismatch, no panic.
        assert_eq!(check(&"é".repeat(16), &ts, &p), Err(TokenFailure::Mismatch));
    }

    #[test]
    fn ttl_boundary() {
        let p = policy();
        let edge = NOW - 900;
        assert_eq!(
            check(&sign(REMOTE, SECRET, edge), &edge.to_string(), &p),
            Ok(())
        );
        let past = NOW - 901;
        assert_eq!(
            check(&sign(REMOTE, SECRET, past), &past.to_string(), &p),
            Err(TokenFailure::Expired)
        );
        // Expiry is decided before the signature.
        assert_eq!(
            check("00000000000000000000000000000000", &past.to_string(), &p),
            Err(TokenFailure::Expired)
        );
    }

    #[test]
    fn ts_zero_options() {
        let mut p = policy();
        let t0 = sign(REMOTE, SECRET, 0);
        assert_eq!(
            check_token(Some(&t0), Some("0"), REMOTE, &p, i64::MAX),
            Ok(())
        );
        p.reject_ts_zero = true;
        assert_eq!(check(&t0, "0", &p), Err(TokenFailure::TsZero));
        // Junk ts is atoi 0.
        assert_eq!(check(&t0, "abc", &p), Err(TokenFailure::TsZero));
        p.reject_ts_zero = false;
        assert_eq!(check(&t0, "abc", &p), Ok(()));
        assert_eq!(check(&t0, "", &p), Ok(()));
    }

    #[test]
    fn future_skew_option() {
        let mut p = policy();
        p.max_future_skew = Some(60);
        let near = NOW + 60;
        assert_eq!(
            check(&sign(REMOTE, SECRET, near), &near.to_string(), &p),
            Ok(())
        );
        let far = NOW + 61;
        assert_eq!(
            check(&sign(REMOTE, SECRET, far), &far.to_string(), &p),
            Err(TokenFailure::FutureTs)
        );
    }

    #[test]
    fn ts_is_hashed_as_parsed() {
        let p = policy();
        // "1700000050abc" → 1700000050; the token is over "1700000050".
        let t = sign(REMOTE, SECRET, 1_700_000_050);
        assert_eq!(check(&t, "1700000050abc", &p), Ok(()));
        assert_eq!(check(&t, " +1700000050", &p), Ok(()));
        assert_eq!(check(&t, "01700000050", &p), Ok(()));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let p = policy();
        let t = sign(REMOTE, SECRET, i64::MIN);
        assert_eq!(
            check_token(
                Some(&t),
                Some("-99999999999999999999"),
                REMOTE,
                &p,
                i64::MAX
            ),
            Err(TokenFailure::Expired)
        );
        let t = sign(REMOTE, SECRET, i64::MAX);
        assert_eq!(
            check_token(Some(&t), Some("99999999999999999999"), REMOTE, &p, i64::MIN),
            Ok(())
        );
        let mut p2 = p;
        p2.max_future_skew = Some(u64::MAX);
        p2.ttl = u64::MAX;
        assert_eq!(
            check_token(
                Some(&t),
                Some("99999999999999999999"),
                REMOTE,
                &p2,
                i64::MIN
            ),
            Ok(())
        );
    }

    #[test]
    fn signing_length_limit() {
        let long_secret = "s".repeat(320 - REMOTE.len() - 12);
        let p = TokenPolicy {
            secret: &long_secret,
            ..policy()
        };
        let ts = NOW.to_string();
        assert_eq!(check(&sign(REMOTE, &long_secret, NOW), &ts, &p), Ok(()));
        let too_long = format!("{long_secret}s");
        let p = TokenPolicy {
            secret: &too_long,
            ..policy()
        };
        assert_eq!(
            check(&sign(REMOTE, &too_long, NOW), &ts, &p),
            Err(TokenFailure::Malformed)
        );
    }

    #[test]
    fn wrong_secret_or_file_mismatch() {
        let p = policy();
        let ts = NOW.to_string();
        assert_eq!(
            check(&sign(REMOTE, "other", NOW), &ts, &p),
            Err(TokenFailure::Mismatch)
        );
        assert_eq!(
            check_token(
                Some(&sign(REMOTE, SECRET, NOW)),
                Some(&ts),
                "M00/00/00/other.jpg",
                &p,
                NOW
            ),
            Err(TokenFailure::Mismatch)
        );
        assert_eq!(
            check(&sign(REMOTE, SECRET, NOW - 1), &ts, &p),
            Err(TokenFailure::Mismatch)
        );
    }

    #[test]
    fn atoi_like_c() {
        for (s, want) in [
            ("123", 123),
            ("123abc", 123),
            ("abc", 0),
            ("", 0),
            ("  42", 42),
            ("\t\n\x0b\x0c\r7", 7),
            ("-17", -17),
            ("+17", 17),
            ("- 1", 0),
            ("+-1", 0),
            ("1 2", 1),
            ("0x1A", 0),
            ("9223372036854775807", i64::MAX),
            ("9223372036854775808", i64::MAX),
            ("99999999999999999999999", i64::MAX),
            ("-9223372036854775808", i64::MIN),
            ("-99999999999999999999999", i64::MIN),
            ("１２", 0),
        ] {
            assert_eq!(atoi(s), want, "{s:?}");
        }
    }

    #[test]
    fn display_never_leaks_the_secret() {
        for f in [
            TokenFailure::Missing,
            TokenFailure::Malformed,
            TokenFailure::Expired,
            TokenFailure::FutureTs,
            TokenFailure::TsZero,
            TokenFailure::Mismatch,
        ] {
            let text = f.to_string();
            assert!(!text.is_empty());
            assert!(!text.contains(SECRET));
            assert_eq!(f.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
