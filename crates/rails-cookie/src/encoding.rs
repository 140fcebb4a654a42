//! Byte-level encodings Rails uses around cookies: strict base64, lowercase hex, and Rack's form escaping.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{Error, Result};

/// Appends `Base64.strict_encode64(bytes)` to `out`.
pub(crate) fn b64_encode_into(bytes: &[u8], out: &mut String) {
    STANDARD.encode_string(bytes, out);
}

/// `Base64.strict_decode64`: the standard alphabet, `=` padding required, no whitespace, zero trailing bits.
pub(crate) fn b64_decode(text: &[u8]) -> Result<Vec<u8>> {
    STANDARD.decode(text).map_err(|_| Error::Malformed("invalid base64"))
}

/// Like [`b64_decode`], appending to `out`.
pub(crate) fn b64_decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<()> {
    STANDARD.decode_vec(text, out).map_err(|_| Error::Malformed("invalid base64"))
}

pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Lowercase hex, as Ruby's `OpenSSL::HMAC.hexdigest`, into `out` (which must be twice as long as `bytes`).
pub(crate) fn hex_lower_slice(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_LOWER[usize::from(b >> 4)];
        pair[1] = HEX_LOWER[usize::from(b & 15)];
    }
}

/// Escapes a cookie value as Rack's `URI.encode_www_form_component`: `A–Z a–z 0–9 * - . _` stay, space becomes
/// `+`, every other byte `%XX` (uppercase hex).
///
/// ```
/// assert_eq!(rails_cookie::escape("a+b/c==--d"), "a%2Bb%2Fc%3D%3D--d");
/// ```
#[must_use]
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 8);
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// Unescapes a cookie value as Rack's `URI.decode_www_form_component`: `+` becomes a space and `%XX` a byte. Like
/// Rack, a value with a malformed `%` escape (or one that decodes to invalid UTF-8) is kept as it is.
///
/// ```
/// assert_eq!(rails_cookie::unescape("a%2Bb%2Fc%3D%3D--d"), "a+b/c==--d");
/// assert_eq!(rails_cookie::unescape("100%"), "100%");
/// ```
#[must_use]
pub fn unescape(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => return Cow::Borrowed(value),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_base64_rejects_what_ruby_rejects() {
        assert_eq!(b64_decode(b"AA==").unwrap(), [0]);
        for bad in [&b"AB=="[..], b"AA=", b"AA", b"A A=", b"AA==\n", b"-_==", b"AA==AA=="] {
            assert!(b64_decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn escape_matches_rack() {
        assert_eq!(escape("Az09*-._ ~!/+="), "Az09*-._+%7E%21%2F%2B%3D");
        assert_eq!(escape("é"), "%C3%A9");
    }

    #[test]
    fn unescape_matches_rack() {
        assert_eq!(unescape("a+b"), "a b");
        assert_eq!(unescape("%zz"), "%zz");
        assert_eq!(unescape("%C3%A9"), "é");
        assert_eq!(unescape("%FF"), "%FF");
    }

    #[test]
    fn hex_lower() {
        let mut out = [0u8; 6];
        hex_lower_slice(&[0, 0xab, 0xff], &mut out);
        assert_eq!(&out, b"00abff");
    }
}
