//! `JSON.parse` as Ruby's `json` gem does it for `ActiveSupport::JSON.decode`, into [`Value`].
//!
//! Written by hand rather than on serde_json because Ruby Integers have no size limit: serde_json turns an integer
//! literal beyond 64 bits into an `f64` before any visitor sees its digits (its `arbitrary_precision` feature would
//! change every serde_json user in the workspace), so a session holding `18446744073709551617` would come back to
//! Rails as a Float. Here every integer literal stays an Integer of any size, and every literal with a fraction or
//! an exponent is a Float, exactly as Ruby reads them.
//!
//! Ruby's rules kept: any value at the top level, surrounded by whitespace; `-0` is the Integer 0; a float too large
//! for `f64` is `Infinity` (Ruby's `strtod`); `NaN`/`Infinity` literals, leading zeros and raw control characters
//! in strings are refused; nesting deeper than 100 (`JSON.parse`'s `max_nesting`) is refused; a duplicate key
//! overwrites the earlier value in place (`Hash#[]=`).
//!
//! Stricter than Ruby's parser on purpose, where only hand-made JSON goes: Ruby's also takes `/* */` and `//`
//! comments, unknown escapes (`"\x"` as `"x"`), lone surrogate escapes and invalid UTF-8, none of which
//! `ActiveSupport::JSON.encode` ever writes (it raises on invalid UTF-8). A session is authenticated data Rails
//! wrote, so these are refused with an error rather than read into strings that are not Unicode.

use num_bigint::BigInt;

use crate::error::{Error, Result};
use crate::value::{Hash, Value};

/// `JSON.parse`'s default `max_nesting`.
const MAX_NESTING: usize = 100;

pub(crate) fn parse(bytes: &[u8]) -> Result<Value> {
    let mut p = Parser { bytes, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(p.error("unexpected data after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::serializer("json", format!("invalid JSON at byte {}: {what}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Nil),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn nest(&self, depth: usize) -> Result<()> {
        if depth > MAX_NESTING {
            return Err(self.error("nesting of 101 is too deep (max_nesting 100)"));
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.nest(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.nest(depth)?;
        self.pos += 1;
        let mut hash = Hash::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Hash(hash));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            // Hash#[]=: a repeated key keeps its first position and takes the last value.
            match hash.entries.iter_mut().find(|(k, _)| matches!(k, Value::String(s) if *s == key))
            {
                Some(slot) => slot.1 = value,
                None => hash.entries.push((Value::String(key), value)),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Hash(hash));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.digits() {
            0 => return Err(self.error("a number needs digits")),
            n if n > 1 && self.bytes[int_start] == b'0' => {
                return Err(self.error("a number cannot start with 0"))
            }
            _ => {}
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("a fraction needs digits"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("an exponent needs digits"));
            }
            float = true;
        }
        // Only ASCII digits, signs, '.', 'e' were consumed.
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|_| self.error("number is not ASCII"))?;
        if float {
            // Rust's parser rounds correctly, as strtod does; out-of-range magnitudes become ±inf / ±0 as in Ruby.
            return text.parse::<f64>().map(Value::Float).map_err(|_| self.error("bad float"));
        }
        if self.pos - int_start <= 18 {
            // Up to 18 digits always fit in i64.
            return text.parse::<i64>().map(Value::Integer).map_err(|_| self.error("bad integer"));
        }
        let big: BigInt = text.parse().map_err(|_| self.error("bad integer"))?;
        Ok(match i64::try_from(&big) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::BigInteger(big),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits =
            self.bytes.get(self.pos..self.pos + 4).ok_or_else(|| self.error("short \\u escape"))?;
        let mut n = 0u32;
        for &d in digits {
            let v = crate::encoding::hex_val(d).ok_or_else(|| self.error("bad \\u escape"))?;
            n = n << 4 | u32::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<String> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes, the whole run is copied once.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let s = std::str::from_utf8(&self.bytes[start..self.pos])
                        .map_err(|_| self.error("string is not UTF-8"))?;
                    self.pos += 1;
                    return Ok(s.to_owned());
                }
                Some(b'\\') => break,
                Some(0x00..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
        let mut out: Vec<u8> = self.bytes[start..self.pos].to_vec();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    let simple = match esc {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return Err(self.error("unknown escape")),
                    };
                    out.push(simple);
                }
                Some(0x00..=0x1f) => return Err(self.error("control character in a string")),
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error("lone surrogate escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.error("bad \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn integers_keep_every_digit_as_ruby_does() {
        assert_eq!(
            ok("18446744073709551617"),
            Value::BigInteger("18446744073709551617".parse().unwrap())
        );
        assert_eq!(
            ok("-18446744073709551617"),
            Value::BigInteger("-18446744073709551617".parse().unwrap())
        );
        assert_eq!(ok("9223372036854775807"), Value::Integer(i64::MAX));
        assert_eq!(ok("-9223372036854775808"), Value::Integer(i64::MIN));
        assert_eq!(ok("9223372036854775808"), Value::BigInteger(BigInt::from(1u64 << 63)));
        assert_eq!(
            ok("123456789012345678901234567890"),
            Value::BigInteger("123456789012345678901234567890".parse().unwrap())
        );
        assert_eq!(ok("-0"), Value::Integer(0));
        assert_eq!(ok(" 42 "), Value::Integer(42));
    }

    #[test]
    fn floats_as_ruby_reads_them() {
        assert_eq!(ok("1.0"), Value::Float(1.0));
        assert_eq!(ok("1E5"), Value::Float(100_000.0));
        assert_eq!(ok("1e-7"), Value::Float(1e-7));
        assert!(matches!(ok("-0.0"), Value::Float(f) if f == 0.0 && f.is_sign_negative()));
        assert_eq!(ok("1e400"), Value::Float(f64::INFINITY));
        assert_eq!(ok("18446744073709551617.0"), Value::Float(18_446_744_073_709_551_617.0));
        assert_eq!(ok("0.30000000000000004"), Value::Float(0.1 + 0.2));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            ok(r#""a\"\\\/\b\f\n\r\t\u00e9\u2028\ud83d\ude00""#),
            Value::String("a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{2028}\u{1f600}".into())
        );
        assert_eq!(ok("\"é 😀\""), Value::String("é 😀".into()));
    }

    /// Ruby refuses all of these too, except the escapes, comments and invalid UTF-8 at the end of the list, which
    /// Ruby's parser takes and Rails never writes (see the module docs).
    #[test]
    fn refused_inputs() {
        for bad in [
            "",
            " ",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "NaN",
            "Infinity",
            "-Infinity",
            "nul",
            "tru",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "[1 2]",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"a\u{1}b\"",
            "[1]x",
            "{\"a\" 1}",
            "\u{feff}1",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} was accepted");
        }
        assert!(parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn nesting_limit_is_ruby_max_nesting() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(parse(deep(100).as_bytes()).is_ok());
        assert!(parse(deep(101).as_bytes()).is_err());
        let objs = |n: usize| "{\"a\":".repeat(n) + "1" + &"}".repeat(n);
        assert!(parse(objs(100).as_bytes()).is_ok());
        assert!(parse(objs(101).as_bytes()).is_err());
    }

    #[test]
    fn duplicate_keys_overwrite_in_place() {
        let Value::Hash(h) = ok(r#"{"b":1,"a":2,"b":3}"#) else { panic!() };
        assert_eq!(
            h.entries,
            vec![
                (Value::String("b".into()), Value::Integer(3)),
                (Value::String("a".into()), Value::Integer(2))
            ]
        );
    }
}
