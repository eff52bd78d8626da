//! Query-string parsing exactly like libfastcommon's `http_parse_query`
//! (docs/module-behaviour.md §3).
//!
//! The caller splits the URL at the first `?` and passes what follows.
//! Rules:
//! - pairs are separated by `&`; at most [`MAX_PAIRS`] pairs are kept;
//! - a pair without `=` is skipped and does not count towards the limit;
//! - a pair with an empty key (`=x`) is skipped and does not count either;
//! - the key ends at the first `=`; the value is everything after it
//!   (it may contain more `=`);
//! - values are decoded: `%XX` (either hex case) → byte, `+` → space; an
//!   invalid or truncated escape is kept literally (`%zz`, `%4`);
//! - keys are not decoded;
//! - lookup is exact and case-sensitive; the first occurrence wins.
//!
//! One difference from C: a decoded `%00` stays in the value instead of
//! ending the C string.

/// Number of pairs libfastcommon keeps (`HTTPD_MAX_PARAMS`).
pub const MAX_PAIRS: usize = 32;

/// One kept `key=value` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    /// The raw key (never decoded).
    key: String,
    /// The decoded value bytes (may be invalid UTF-8).
    value: Vec<u8>,
    /// `value` as lossy UTF-8, kept so that [`Query::get`] can lend a `&str`.
    text: String,
}

/// The parsed parameters of a request's query string, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<Pair>,
}

impl Query {
    /// Parses the query string (the text after the first `?`, without it).
    pub fn parse(raw: &str) -> Query {
        let mut pairs = Vec::new();
        for segment in raw.split('&') {
            if pairs.len() >= MAX_PAIRS {
                break;
            }
            let Some((key, value)) = segment.split_once('=') else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            let value = url_decode(value.as_bytes());
            let text = String::from_utf8_lossy(&value).into_owned();
            pairs.push(Pair {
                key: key.to_owned(),
                value,
                text,
            });
        }
        Query { pairs }
    }

    fn find(&self, key: &str) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.key == key)
    }

    /// The decoded value of the first pair named `key`, as lossy UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|p| p.text.as_str())
    }

    /// The decoded value bytes of the first pair named `key`.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.find(key).map(|p| p.value.as_slice())
    }

    /// Whether a pair named `key` was kept (with any value, even empty).
    pub fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Number of kept pairs (the module's `param_count`).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair was kept.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// libfastcommon `urldecode_ex`: `%XX` → byte, `+` → space, anything else
/// (including a bad or truncated escape) copied as is.
fn url_decode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        match b {
            b'%' => {
                let hi = src.get(i + 1).copied().and_then(hex_value);
                let lo = src.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_query_has_no_pairs() {
        let q = Query::parse("");
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        assert_eq!(q.get("a"), None);
    }

    #[test]
    fn simple_pairs() {
        let q = Query::parse("a=1&filename=z.bin&y=2");
        assert_eq!(q.len(), 3);
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("filename"), Some("z.bin"));
        assert_eq!(q.get("y"), Some("2"));
        assert_eq!(q.get("b"), None);
    }

    #[test]
    fn pair_without_equals_is_skipped_and_not_counted() {
        let q = Query::parse("abc");
        assert!(q.is_empty());
        assert!(!q.has("abc"));
        let q = Query::parse("redirect&a=1");
        assert_eq!(q.len(), 1);
        assert!(!q.has("redirect"));
        assert_eq!(q.get("a"), Some("1"));
    }

    #[test]
    fn empty_key_is_skipped() {
        let q = Query::parse("=x&b=2");
        assert_eq!(q.len(), 1);
        assert_eq!(q.get(""), None);
        assert_eq!(q.get("b"), Some("2"));
    }

    #[test]
    fn empty_value_is_kept() {
        let q = Query::parse("token=&ts=");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get("token"), Some(""));
        assert_eq!(q.get("ts"), Some(""));
        assert!(q.has("token"));
    }

    #[test]
    fn value_may_contain_equals() {
        let q = Query::parse("a=b=c");
        assert_eq!(q.get("a"), Some("b=c"));
    }

    #[test]
    fn empty_segments_are_ignored() {
        let q = Query::parse("&&a=1&&b=2&");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("b"), Some("2"));
    }

    #[test]
    fn first_occurrence_wins() {
        let q = Query::parse("a=1&a=2");
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn lookup_is_case_sensitive() {
        let q = Query::parse("Token=x");
        assert_eq!(q.get("token"), None);
        assert_eq!(q.get("Token"), Some("x"));
    }

    #[test]
    fn at_most_32_pairs_are_kept() {
        let raw: Vec<String> = (0..40).map(|i| format!("k{i}=v{i}")).collect();
        let q = Query::parse(&raw.join("&"));
        assert_eq!(q.len(), MAX_PAIRS);
        assert_eq!(q.get("k31"), Some("v31"));
        assert_eq!(q.get("k32"), None);
    }

    #[test]
    fn skipped_pairs_do_not_count_towards_the_limit() {
        let mut raw: Vec<String> = (0..10).map(|i| format!("junk{i}")).collect();
        raw.extend((0..10).map(|i| format!("=empty{i}")));
        raw.extend((0..32).map(|i| format!("k{i}=v")));
        raw.push("last=1".into());
        let q = Query::parse(&raw.join("&"));
        assert_eq!(q.len(), 32);
        assert!(q.has("k31"));
        assert!(!q.has("last"));
    }

    #[test]
    fn values_are_percent_and_plus_decoded() {
        let q = Query::parse("filename=my%20report.txt&b=a+b&c=%E4%B8%AD%E6%96%87.txt");
        assert_eq!(q.get("filename"), Some("my report.txt"));
        assert_eq!(q.get("b"), Some("a b"));
        assert_eq!(q.get("c"), Some("中文.txt"));
    }

    #[test]
    fn hex_escapes_accept_both_cases() {
        let q = Query::parse("a=%2f%2F%aB");
        assert_eq!(q.get_bytes("a"), Some(&b"//\xab"[..]));
    }

    #[test]
    fn encoded_plus_and_percent() {
        let q = Query::parse("a=%2B%25");
        assert_eq!(q.get("a"), Some("+%"));
    }

    #[test]
    fn invalid_escapes_are_kept_literally() {
        for (raw, want) in [
            ("a=%zz", "%zz"),
            ("a=%4", "%4"),
            ("a=%", "%"),
            ("a=100%", "100%"),
            ("a=%g1", "%g1"),
            ("a=%1g", "%1g"),
            ("a=%%41", "%A"),
        ] {
            assert_eq!(Query::parse(raw).get("a"), Some(want), "{raw}");
        }
    }

    #[test]
    fn keys_are_not_decoded() {
        let q = Query::parse("file%6eame=x&a+b=y");
        assert_eq!(q.get("filename"), None);
        assert_eq!(q.get("file%6eame"), Some("x"));
        assert_eq!(q.get("a+b"), Some("y"));
    }

    #[test]
    fn invalid_utf8_value_is_lossy_in_get_and_exact_in_get_bytes() {
        let q = Query::parse("f=%FF%FEa");
        assert_eq!(q.get_bytes("f"), Some(&b"\xff\xfea"[..]));
        assert_eq!(q.get("f"), Some("\u{fffd}\u{fffd}a"));
    }

    #[test]
    fn decoded_nul_is_kept() {
        let q = Query::parse("a=x%00y");
        assert_eq!(q.get_bytes("a"), Some(&b"x\0y"[..]));
    }

    #[test]
    fn token_and_ts_example() {
        let q = Query::parse("token=1b7a9eedf07d26c0b2e1523d35dad1bb&ts=1700000000");
        assert_eq!(q.get("token"), Some("1b7a9eedf07d26c0b2e1523d35dad1bb"));
        assert_eq!(q.get("ts"), Some("1700000000"));
    }

    #[test]
    fn second_question_mark_is_part_of_a_value() {
        let q = Query::parse("abc?redirect=1");
        assert_eq!(q.get("abc?redirect"), Some("1"));
    }
}
