//! FastDFS's base64 variant, strict (docs/file-id.md §3).
//!
//! Alphabet `A-Z a-z 0-9 - _` (RFC 4648 base64url), big-endian 6-bit
//! groups, no padding. Unlike libfastcommon's decoder, which skips unknown
//! characters and tolerates bad lengths, [`decode`] accepts only the exact
//! canonical encoding: exact length, alphabet only, and the unused low bits
//! of the last character must be zero (upstream's encoder always writes them
//! as zero, so any other value is a typo and names no file on disk).

/// Number of characters that encode `n` bytes without padding.
pub(crate) const fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(6)
}

/// The 6-bit value of an alphabet character, `None` for anything else.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// The alphabet character of a 6-bit value (only the low 6 bits are used).
fn symbol(v: u8) -> char {
    let v = v & 0x3F;
    let c = match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'-',
        _ => b'_',
    };
    char::from(c)
}

/// Encodes `bytes` without padding; the unused low bits of the last
/// character are zero.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    let mut acc: u16 = 0;
    let mut nbits: u32 = 0;
    for &b in bytes {
        acc = (acc << 8) | u16::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(symbol((acc >> nbits) as u8));
        }
        acc &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(symbol((acc << (6 - nbits)) as u8));
    }
    out
}

/// Decodes exactly `N` bytes from their canonical unpadded encoding, or
/// `None` if `s` has the wrong length, a character outside the alphabet, or
/// non-zero unused bits in its last character.
pub(crate) fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    let input = s.as_bytes();
    if input.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    let mut acc: u16 = 0;
    let mut nbits: u32 = 0;
    let mut written = 0usize;
    for &c in input {
        acc = (acc << 6) | u16::from(value(c)?);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            *out.get_mut(written)? = (acc >> nbits) as u8;
            written += 1;
            acc &= (1 << nbits) - 1;
        }
    }
    (acc == 0 && written == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(20), 27);
        assert_eq!(encoded_len(12), 16);
        assert_eq!(encoded_len(3), 4);
        assert_eq!(encoded_len(1), 2);
        assert_eq!(encoded_len(0), 0);
    }

    #[test]
    fn alphabet_maps_every_value_both_ways() {
        for v in 0u8..64 {
            let c = symbol(v);
            assert_eq!(value(c as u8), Some(v), "value {v} char {c}");
        }
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let ours: String = (0u8..64).map(symbol).collect();
        assert_eq!(ours, alphabet);
        for c in 0u8..=255 {
            if !alphabet.as_bytes().contains(&c) {
                assert_eq!(value(c), None, "byte {c:#x}");
            }
        }
    }

    #[test]
    fn spec_example_1_bytes() {
        let bytes: [u8; 20] = [
            0xac, 0x10, 0x02, 0x14, 0x5c, 0x80, 0x88, 0x60, 0x80, 0x50, 0xf3, 0x3d, 0x00, 0x00,
            0x02, 0x5c, 0x62, 0x61, 0x6e, 0x6b,
        ];
        assert_eq!(encode(&bytes), "rBACFFyAiGCAUPM9AAACXGJhbms");
        assert_eq!(decode::<20>("rBACFFyAiGCAUPM9AAACXGJhbms"), Some(bytes));
    }

    #[test]
    fn trunk16_example_7() {
        let bytes = decode::<12>("AAAAAQAgAAAAADIA");
        assert_eq!(bytes, Some([0, 0, 0, 1, 0, 0x20, 0, 0, 0, 0, 0x32, 0]));
    }

    #[test]
    fn round_trips_all_byte_values() {
        let mut bytes = [0u8; 20];
        for start in 0u8..=255 {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = start.wrapping_add((i as u8).wrapping_mul(37));
            }
            let s = encode(&bytes);
            assert_eq!(s.len(), 27);
            assert_eq!(decode::<20>(&s), Some(bytes));
        }
    }

    #[test]
    fn rejects_wrong_length() {
        let good = "rBACFFyAiGCAUPM9AAACXGJhbms";
        assert_eq!(decode::<20>(&good[..26]), None);
        assert_eq!(decode::<20>(&format!("{good}A")), None);
        assert_eq!(decode::<20>(""), None);
        assert_eq!(decode::<12>(good), None);
    }

    #[test]
    fn rejects_foreign_characters_at_every_position() {
        let good = "rBACFFyAiGCAUPM9AAACXGJhbms";
        for bad in ['!', '=', '.', '+', '/', ' ', '\0', '%'] {
            for i in 0..good.len() {
                let mut s = good.to_string();
                s.replace_range(i..i + 1, &bad.to_string());
                assert_eq!(decode::<20>(&s), None, "{s:?}");
            }
        }
    }

    #[test]
    fn rejects_multibyte_utf8() {
        // "é" is 2 bytes: replacing 2 chars keeps the byte length at 27.
        let good = "rBACFFyAiGCAUPM9AAACXGJhbms";
        for i in 0..good.len() - 1 {
            let s = format!("{}é{}", &good[..i], &good[i + 2..]);
            assert_eq!(s.len(), 27);
            assert_eq!(decode::<20>(&s), None, "{s:?}");
        }
    }

    #[test]
    fn unused_low_bits_must_be_zero() {
        // 27 chars carry 162 bits for 160: the last char's 2 low bits are unused.
        let good = "rBACFFyAiGCAUPM9AAACXGJhbms";
        let stem = &good[..26];
        let last = value(b's').unwrap_or(0);
        assert_eq!(last & 0b11, 0);
        for low in 1u8..4 {
            let s = format!("{stem}{}", symbol(last | low));
            assert_eq!(decode::<20>(&s), None, "{s}");
        }
    }
}
