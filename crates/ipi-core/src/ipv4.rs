//! Strict conversion between dotted-quad IPv4 text and `u32`.
//!
//! The parser accepts exactly four decimal octets of one to three digits,
//! each at most 255, with no leading zeros (so `010.0.0.1`, which some
//! libraries read as octal, is refused rather than guessed) and no
//! surrounding whitespace. It works on bytes, so callers can hand it a slice
//! of a log line without first checking UTF-8.

use std::fmt::Write as _;

/// Parse dotted-quad text into the address as a big-endian `u32`
/// (`1.2.3.4` → `0x01020304`). `None` for anything else, IPv6 included.
#[inline]
pub fn parse(text: &[u8]) -> Option<u32> {
    if text.len() < 7 || text.len() > 15 {
        return None;
    }
    // One pass: `octet` is the octet being read, `digits` its length.
    let (mut addr, mut octet, mut digits, mut dots) = (0u32, 0u32, 0u32, 0u32);
    for &b in text {
        match b {
            b'0'..=b'9' => {
                // No leading zeros ("01"); then over 255 means over 3 digits too.
                if digits == 1 && octet == 0 {
                    return None;
                }
                octet = octet * 10 + u32::from(b - b'0');
                digits += 1;
                if octet > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && dots < 3 => {
                addr = (addr << 8) | octet;
                (octet, digits) = (0, 0);
                dots += 1;
            }
            _ => return None,
        }
    }
    (dots == 3 && digits > 0).then_some((addr << 8) | octet)
}

/// Format an address as dotted-quad text.
pub fn format(addr: u32) -> String {
    let mut out = String::with_capacity(15);
    push(&mut out, addr);
    out
}

/// Append an address as dotted-quad text to `out`, without allocating.
pub fn push(out: &mut String, addr: u32) {
    let [a, b, c, d] = addr.to_be_bytes();
    // Writing to a String cannot fail.
    let _ = write!(out, "{a}.{b}.{c}.{d}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn round_trips() {
        for addr in [0u32, 1, 0x7f00_0001, 0xc0a8_0102, u32::MAX, 0x0a00_00ff] {
            let text = format(addr);
            assert_eq!(parse(text.as_bytes()), Some(addr), "{text}");
            assert_eq!(text, Ipv4Addr::from(addr).to_string());
        }
    }

    #[test]
    fn refuses_what_is_not_a_dotted_quad() {
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.-4",
            "01.2.3.4",
            "1..2.3",
            " 1.2.3.4",
            "1.2.3.4 ",
            "::1",
            "2001:db8::1",
            "1.2.3.4a",
            "a.b.c.d",
            "1.2.3.",
            ".1.2.3",
            "1000.1.1.1",
            "1.2.3.4\n",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn agrees_with_std_on_every_short_string_over_a_small_alphabet() {
        // Exhaustive over strings of up to 8 bytes from "0 1 2 5 9 ." would
        // be large; sample the space deterministically instead.
        let alphabet = b"01259.";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 7 + (state % 9) as usize;
            let text: Vec<u8> =
                (0..len).map(|i| alphabet[((state >> (i * 3)) % 6) as usize]).collect();
            let ours = parse(&text);
            let std = std::str::from_utf8(&text)
                .ok()
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
                .map(u32::from);
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(&text));
        }
    }
}
