//! `ActiveSupport::JSON`: the writer reproduces `ActiveSupport::JSON.encode` byte for byte; the reader is
//! `JSON.parse` (any JSON value at the top level, duplicate keys overwrite in place as Ruby's `Hash#[]=` does).

use std::fmt;
use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::value::{Hash, Value};

/// Serializes a value as `ActiveSupport::JSON.encode` does (with `escape_html_entities_in_json`, the default).
pub(crate) fn dump(value: &Value) -> Result<Vec<u8>> {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out, 0)?;
    Ok(out.into_bytes())
}

mod parse;

/// Parses JSON as `ActiveSupport::JSON.decode` does (`JSON.parse`: Integers of any size stay Integers).
pub(crate) fn load(bytes: &[u8]) -> Result<Value> {
    parse::parse(bytes)
}

const MAX_DEPTH: usize = 128;

fn write_value(value: &Value, out: &mut String, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::serializer("json", "value nested too deeply"));
    }
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Integer(i) => {
            // fmt::Write on a String cannot fail.
            let _ = write!(out, "{i}");
        }
        Value::BigInteger(b) => out.push_str(&b.to_string()),
        Value::Float(f) => {
            if f.is_finite() {
                out.push_str(&ruby_float_to_s(*f));
            } else {
                out.push_str("null");
            }
        }
        Value::String(s) | Value::Symbol(s) => write_str(s, out),
        Value::RubyString(r) => match std::str::from_utf8(&r.bytes) {
            Ok(s) => write_str(s, out),
            Err(_) => {
                return Err(Error::serializer(
                    "json",
                    "a binary string is not valid UTF-8 and has no JSON form",
                ))
            }
        },
        Value::Array(items) => write_array(items.iter(), out, depth)?,
        Value::Hash(h) => write_hash(h, out, depth)?,
        Value::Time(t) => write_str(&t.xmlschema(3), out),
        Value::Regexp { source, options } => {
            let src = String::from_utf8_lossy(&source.bytes);
            let flag = |bit: u8, c: char| if options & bit != 0 { Some(c) } else { None };
            let on: String =
                [flag(4, 'm'), flag(1, 'i'), flag(2, 'x')].into_iter().flatten().collect();
            let off: String = [(4, 'm'), (1, 'i'), (2, 'x')]
                .iter()
                .filter(|(b, _)| options & b == 0)
                .map(|(_, c)| *c)
                .collect();
            let off = if off.is_empty() { String::new() } else { format!("-{off}") };
            write_str(&format!("(?{on}{off}:{src})"), out);
        }
        Value::Object(obj) if obj.class == "Set" => {
            // Set#as_json is Enumerable#as_json: the members, which Ruby keeps as the keys of @hash.
            match obj.fields.iter().find(|(k, _)| k == "@hash").and_then(|(_, v)| v.as_hash()) {
                Some(h) => write_array(h.entries.iter().map(|(k, _)| k), out, depth)?,
                None => out.push_str("[]"),
            }
        }
        Value::Object(obj) => {
            // Object#as_json: instance_values, i.e. the ivars without their "@".
            out.push('{');
            for (i, (name, v)) in obj.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(name.strip_prefix('@').unwrap_or(name), out);
                out.push(':');
                write_value(v, out, depth + 1)?;
            }
            out.push('}');
        }
        Value::Struct(obj) => {
            out.push('{');
            for (i, (name, v)) in obj.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(name, out);
                out.push(':');
                write_value(v, out, depth + 1)?;
            }
            out.push('}');
        }
        Value::UserClass { value, .. } => write_value(value, out, depth + 1)?,
        Value::UserDefined { class, data, .. } if class == "BigDecimal" => {
            // BigDecimal#as_json is its to_s; _dump is "<precision>:<to_s>".
            let text = String::from_utf8_lossy(data);
            write_str(text.split_once(':').map_or(&*text, |(_, s)| s), out);
        }
        Value::UserMarshal { class, value } if class == "ActiveSupport::TimeWithZone" => {
            // marshal_dump is [utc_time, zone_name, local_time]; without a zone database the instant is written in UTC.
            match value.as_array().and_then(|a| a.first()) {
                Some(Value::Time(t)) => write_str(&t.xmlschema(3), out),
                _ => {
                    return Err(Error::serializer("json", "unreadable ActiveSupport::TimeWithZone"))
                }
            }
        }
        Value::ClassRef(name) | Value::ModuleRef(name) => write_str(name, out),
        Value::UserDefined { class, .. } | Value::UserMarshal { class, .. } => {
            return Err(Error::serializer(
                "json",
                format!("{class} has no JSON form known to this codec"),
            ));
        }
    }
    Ok(())
}

fn write_array<'a>(
    items: impl Iterator<Item = &'a Value>,
    out: &mut String,
    depth: usize,
) -> Result<()> {
    out.push('[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(v, out, depth + 1)?;
    }
    out.push(']');
    Ok(())
}

fn write_hash(h: &Hash, out: &mut String, depth: usize) -> Result<()> {
    out.push('{');
    for (i, (k, v)) in h.entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Hash#as_json stringifies keys with to_s.
        match k {
            Value::String(s) | Value::Symbol(s) => write_str(s, out),
            Value::RubyString(_) => write_str(k.as_key_str().unwrap_or_default(), out),
            Value::Integer(i) => write_str(&i.to_string(), out),
            Value::BigInteger(b) => write_str(&b.to_string(), out),
            Value::Float(f) => write_str(&ruby_float_to_s(*f), out),
            Value::Nil => write_str("", out),
            Value::Bool(b) => write_str(if *b { "true" } else { "false" }, out),
            _ => return Err(Error::serializer("json", "a Hash key of this type has no JSON form")),
        }
        out.push(':');
        write_value(v, out, depth + 1)?;
    }
    out.push('}');
    Ok(())
}

/// Writes a JSON string with the JSON gem's escapes plus ActiveSupport's `< > & U+2028 U+2029`.
///
/// Scans bytes rather than chars: everything that needs escaping is ASCII except U+2028/U+2029, whose UTF-8 form
/// starts with `E2 80`, so runs of ordinary text are copied whole.
pub(crate) fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (escaped, len): (&str, usize) = match b {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'<' => ("\\u003c", 1),
            b'>' => ("\\u003e", 1),
            b'&' => ("\\u0026", 1),
            0x08 => ("\\b", 1),
            0x0c => ("\\f", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            0x00..=0x1f => ("", 1),
            0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa8) => {
                ("\\u2028", 3)
            }
            0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa9) => {
                ("\\u2029", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            out.push_str(escaped);
        }
        i += len;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `Float#to_s`: the shortest digits that round-trip, in decimal notation when the decimal exponent is in
/// -3..=15 (Ruby's `decpt < -3 || decpt > DBL_DIG`), otherwise as `d.ddde+XX` (at least two exponent digits).
pub(crate) fn ruby_float_to_s(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e6", "-5e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    // decpt is the position of the decimal point relative to the digit string (Ruby's flo_to_s).
    let decpt = exp + 1;
    let ndigits = digits.len() as i32;
    if (-3..=15).contains(&decpt) {
        if decpt <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
        } else if decpt >= ndigits {
            format!("{sign}{digits}{}.0", "0".repeat((decpt - ndigits) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let e = decpt - 1;
        let esign = if e < 0 { '-' } else { '+' };
        format!("{sign}{first}.{rest}e{esign}{:02}", e.unsigned_abs())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::integer(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut hash = Hash::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if hash.entries.iter().any(|(k, _)| matches!(k, Value::String(s) if *s == key)) {
                hash.insert(key, value);
            } else {
                hash.entries.push((Value::String(key), value));
            }
        }
        Ok(Value::Hash(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        String::from_utf8(dump(v).unwrap()).unwrap()
    }

    #[test]
    fn escapes_like_active_support() {
        // Verified against Rails 6.1.7.10 (spec §6.2).
        let mut h = Hash::new();
        h.insert(
            "a",
            Value::String("\u{1}\u{8}\u{c}\n\r\t\"\\/<>&\u{2028}\u{2029}é😀\u{7f}".into()),
        );
        assert_eq!(enc(&Value::Hash(h)), "{\"a\":\"\\u0001\\b\\f\\n\\r\\t\\\"\\\\/\\u003c\\u003e\\u0026\\u2028\\u2029é😀\u{7f}\"}");
    }

    #[test]
    fn floats_like_ruby() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1.0e20, "1.0e+20"),
            (1.5e-7, "1.5e-07"),
            (-2.5e-7, "-2.5e-07"),
            (100.0, "100.0"),
            (1e15, "1.0e+15"),
            (1e14, "100000000000000.0"),
            (123_456_789_012_345.0, "123456789012345.0"),
            (1_234_567_890_123_456.0, "1.234567890123456e+15"),
            (0.001234, "0.001234"),
            (1e16, "1.0e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1.0e-05"),
            (123_456_789.123, "123456789.123"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5.0e-324"),
        ] {
            assert_eq!(ruby_float_to_s(f), s, "{f:e}");
        }
        assert_eq!(enc(&Value::Float(f64::NAN)), "null");
    }

    #[test]
    fn parses_any_top_level_value_and_keeps_order() {
        assert_eq!(load(b"42").unwrap(), Value::Integer(42));
        assert_eq!(
            load(b"18446744073709551615").unwrap(),
            Value::integer(18_446_744_073_709_551_615)
        );
        let v = load(br#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(enc(&v), r#"{"b":3,"a":2}"#);
        assert!(load(b"{").is_err());
        assert!(load(b"NaN").is_err());
        assert!(load(b"").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(load(deep.as_bytes()).is_err());
    }

    #[test]
    fn round_trip_of_spec_payload() {
        let p = r#"{"session_id":"0123456789abcdef0123456789abcdef","_csrf_token":"3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=","user_id":42,"flash":{"discard":[],"flashes":{"notice":"Signed in \u003cok\u003e \u0026 done"}}}"#;
        assert_eq!(enc(&load(p.as_bytes()).unwrap()), p);
    }

    #[test]
    fn ruby_only_values_as_active_support_writes_them() {
        let t = crate::value::RubyTime::utc(1_704_164_645, 678_000_000);
        let mut h = Hash::new();
        h.insert("sym", Value::Symbol("hello".into()));
        h.insert("time", Value::Time(t));
        h.insert_value(Value::Integer(1), Value::Nil);
        assert_eq!(
            enc(&Value::Hash(h)),
            r#"{"sym":"hello","time":"2024-01-02T03:04:05.678Z","1":null}"#
        );
    }
}
