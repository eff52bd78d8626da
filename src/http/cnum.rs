//! C's decimal integer prefix parsing (`strtoll` base 10, which `atoi`
//! also follows), shared by the places where the module's C parsing shows
//! in its answers: anti-steal `ts` (`atoi`) and FLV `start`/`end`
//! (`strtoll` with an end check).

/// A parsed decimal prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The value, saturated at the `i64` bounds like `strtoll`.
    pub value: i64,
    /// Whether any digit was read (without one, C consumes nothing).
    pub has_digits: bool,
    /// Bytes consumed: leading C whitespace, sign and digits.
    pub consumed: usize,
}

/// Leading C whitespace, optional sign, then decimal digits.
pub fn strtoll_prefix(s: &str) -> Prefix {
    let bytes = s.as_bytes();
    let ws = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    let rest = bytes.get(ws..).unwrap_or_default();
    let (negative, sign, digits) = match rest.split_first() {
        Some((b'-', d)) => (true, 1, d),
        Some((b'+', d)) => (false, 1, d),
        _ => (false, 0, rest),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let magnitude = digits[..n].iter().fold(0i128, |acc, &d| {
        (acc * 10 + i128::from(d - b'0')).min(i128::from(i64::MAX) + 1)
    });
    let value = if negative { -magnitude } else { magnitude };
    Prefix {
        value: value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        has_digits: n > 0,
        consumed: if n > 0 { ws + sign + n } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = strtoll_prefix("  -12ab");
        assert_eq!((p.value, p.has_digits, p.consumed), (-12, true, 5));
        let p = strtoll_prefix("abc");
        assert_eq!((p.value, p.has_digits, p.consumed), (0, false, 0));
        assert_eq!(strtoll_prefix("99999999999999999999999").value, i64::MAX);
        assert_eq!(strtoll_prefix("-99999999999999999999999").value, i64::MIN);
        assert_eq!(strtoll_prefix("+7").consumed, 2);
    }
}
