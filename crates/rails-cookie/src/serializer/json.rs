//! `ActiveSupport::JSON`: the writer reproduces `ActiveSupport::JSON.encode` byte for byte; the reader is
//! `JSON.parse` (any JSON value at the top level, duplicate keys overwrite in place as Ruby's `Hash#[]=` does).

use std::fmt;
use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::value::{Hash, Packed, RubyTime, Value};

/// What `ActiveSupport::JSON.encode` escapes beyond the JSON gem's own escapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Escapes {
    /// `active_support.escape_html_entities_in_json` (true in every version): `<`, `>`, `&` as `\u003c` …
    pub(crate) html_entities: bool,
    /// `active_support.escape_js_separators_in_json` (true until `load_defaults 8.1`): U+2028, U+2029 as `\u2028` …
    pub(crate) js_separators: bool,
}

impl Escapes {
    /// Rails 4.2 – 8.0, and 8.1 with `escape_js_separators_in_json = true`.
    pub(crate) const ALL: Escapes = Escapes { html_entities: true, js_separators: true };
}

/// Serializes a value as `ActiveSupport::JSON.encode` does with the defaults before 8.1.
pub(crate) fn dump(value: &Value) -> Result<Vec<u8>> {
    dump_with(value, Escapes::ALL)
}

/// Serializes a value as `ActiveSupport::JSON.encode` does with these escape settings.
pub(crate) fn dump_with(value: &Value, escapes: Escapes) -> Result<Vec<u8>> {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out, 0, escapes)?;
    Ok(out.into_bytes())
}

mod parse;

/// Parses JSON as `ActiveSupport::JSON.decode` does (`JSON.parse`: Integers of any size stay Integers).
pub(crate) fn load(bytes: &[u8]) -> Result<Value> {
    parse::parse(bytes)
}

const MAX_DEPTH: usize = 128;

fn write_value(value: &Value, out: &mut String, depth: usize, esc: Escapes) -> Result<()> {
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
        Value::String(s) | Value::Symbol(s) => write_str_with(s, out, esc),
        Value::RubyString(r) => match std::str::from_utf8(&r.bytes) {
            Ok(s) => write_str_with(s, out, esc),
            Err(_) => {
                return Err(Error::serializer(
                    "json",
                    "a binary string is not valid UTF-8 and has no JSON form",
                ))
            }
        },
        Value::Array(items) => write_array(items.iter(), out, depth, esc)?,
        Value::Hash(h) => write_hash(h, out, depth, esc)?,
        Value::Time(t) => write_time(t, out, esc)?,
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
            write_str_with(&format!("(?{on}{off}:{src})"), out, esc);
        }
        Value::Object(obj) if obj.class == "Set" => {
            // Set#as_json is Enumerable#as_json: the members, which Ruby keeps as the keys of @hash.
            match obj.fields.iter().find(|(k, _)| k == "@hash").and_then(|(_, v)| v.as_hash()) {
                Some(h) => write_array(h.entries.iter().map(|(k, _)| k), out, depth, esc)?,
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
                write_str_with(name.strip_prefix('@').unwrap_or(name), out, esc);
                out.push(':');
                write_value(v, out, depth + 1, esc)?;
            }
            out.push('}');
        }
        Value::Struct(obj) => {
            out.push('{');
            for (i, (name, v)) in obj.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str_with(name, out, esc);
                out.push(':');
                write_value(v, out, depth + 1, esc)?;
            }
            out.push('}');
        }
        Value::UserClass { value, .. } => write_value(value, out, depth + 1, esc)?,
        Value::UserDefined { class, data, .. } if class == "BigDecimal" => {
            let text = String::from_utf8_lossy(data);
            match bigdecimal_as_json(&text) {
                Ok(Some(plain)) => write_str_with(&plain, out, esc),
                Ok(None) => out.push_str("null"),
                Err(()) => {
                    return Err(Error::serializer(
                        "json",
                        format!("unreadable BigDecimal dump {text:?}"),
                    ))
                }
            }
        }
        Value::UserMarshal { class, value } if class == "ActiveSupport::TimeWithZone" => {
            // marshal_dump is [utc_time, zone_name, local_time]; without a zone database the instant is written in UTC.
            match value.as_array().and_then(|a| a.first()) {
                Some(Value::Time(t)) => write_time(t, out, esc)?,
                _ => {
                    return Err(Error::serializer("json", "unreadable ActiveSupport::TimeWithZone"))
                }
            }
        }
        Value::Packed(p) => write_packed(p, out, depth, esc)?,
        Value::ClassRef(name) | Value::ModuleRef(name) => write_str_with(name, out, esc),
        Value::UserDefined { class, .. } | Value::UserMarshal { class, .. } => {
            return Err(Error::serializer(
                "json",
                format!("{class} has no JSON form known to this codec"),
            ));
        }
    }
    Ok(())
}

/// `Time#as_json` (and TimeWithZone's, DateTime's): `xmlschema(3)`. A time without an ISO 8601 form (a year beyond
/// ±9999) is an error, never an empty string.
fn write_time(t: &RubyTime, out: &mut String, esc: Escapes) -> Result<()> {
    if t.local().is_none() {
        return Err(Error::serializer(
            "json",
            "a Time outside the years -9999..=9999 has no JSON form",
        ));
    }
    write_str_with(&t.xmlschema(3), out, esc);
    Ok(())
}

/// `BigDecimal#as_json` from its `_dump` (`"18:0.314159e1"`): for a finite value ActiveSupport's `to_s`, which is
/// `to_s("F")` — plain notation (`"3.14159"`, `"100.0"`, `"0.00000000000000000001"`); `None` (JSON `null`, as
/// `finite? ? to_s : nil` gives) for NaN and the infinities; `Err` for a dump no BigDecimal writes.
fn bigdecimal_as_json(dump: &str) -> std::result::Result<Option<String>, ()> {
    let text = dump.split_once(':').map_or(dump, |(_, s)| s);
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    if matches!(rest, "NaN" | "Infinity") {
        return Ok(None);
    }
    finite_bigdecimal(sign, rest).map(Some).ok_or(())
}

fn finite_bigdecimal(sign: &str, rest: &str) -> Option<String> {
    // "0.<digits>e<exponent>": value = 0.digits × 10^exponent.
    let (mantissa, exp) = rest.split_once(['e', 'E']).unwrap_or((rest, "0"));
    let digits = mantissa.strip_prefix("0.")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp: i64 = exp.parse().ok()?;
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        return Some(format!("{sign}0.0"));
    }
    let n = i64::try_from(digits.len()).ok()?;
    // A dump comes from a cookie: bound the zeros a hostile exponent could ask for.
    if !(-4096..=4096).contains(&exp) {
        return None;
    }
    Some(if exp <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat(usize::try_from(-exp).ok()?))
    } else if exp >= n {
        format!("{sign}{digits}{}.0", "0".repeat(usize::try_from(exp - n).ok()?))
    } else {
        let (int, frac) = digits.split_at(usize::try_from(exp).ok()?);
        format!("{sign}{int}.{frac}")
    })
}

/// `as_json` of the MessagePack extension values, for a MessagePack session rewritten as JSON.
fn write_packed(p: &Packed, out: &mut String, depth: usize, esc: Escapes) -> Result<()> {
    let int = |v: &Value| v.as_i64();
    let no_form =
        || Error::serializer("json", format!("{} has no JSON form known to this codec", p.class()));
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::RubyString(r) => String::from_utf8(r.bytes.clone()).ok(),
            _ => None,
        }
    };
    match (p.class(), p.fields()) {
        // Date#as_json: strftime("%Y-%m-%d").
        ("Date", [jd]) => {
            let date = int(jd)
                .and_then(|jd| i32::try_from(jd).ok())
                .and_then(|jd| time::Date::from_julian_day(jd).ok())
                .ok_or_else(no_form)?;
            write_str_with(
                &format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()),
                out,
                esc,
            );
        }
        // DateTime#as_json: xmlschema(3) at its own offset.
        ("DateTime", [jd, h, m, sec, rest @ ..]) => {
            let (frac, offset) = match rest {
                [Value::Integer(0), Value::Integer(0)] => ((0, 1), (0, 1)),
                [Value::Integer(0), Value::Integer(n), Value::Integer(d)] => ((0, 1), (*n, *d)),
                [Value::Integer(n), Value::Integer(d), Value::Integer(0)] => ((*n, *d), (0, 1)),
                [Value::Integer(n), Value::Integer(d), Value::Integer(on), Value::Integer(od)] => {
                    ((*n, *d), (*on, *od))
                }
                _ => return Err(no_form()),
            };
            let (jd, h, m, sec) = (int(jd), int(h), int(m), int(sec));
            let (Some(jd), Some(h), Some(m), Some(sec)) = (jd, h, m, sec) else {
                return Err(no_form());
            };
            // Checked: the fields come from a cookie and may be any Integers.
            let ratio =
                |(n, d): (i64, i64), unit: i64| n.checked_mul(unit).and_then(|x| x.checked_div(d));
            let offset =
                ratio(offset, 86_400).and_then(|o| i32::try_from(o).ok()).ok_or_else(no_form)?;
            let nanos = ratio(frac, 1_000_000_000)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n < 1_000_000_000)
                .ok_or_else(no_form)?;
            let local = jd
                .checked_sub(2_440_588)
                .and_then(|d| d.checked_mul(86_400))
                .and_then(|s| s.checked_add(h.checked_mul(3600)?))
                .and_then(|s| s.checked_add(m.checked_mul(60)?))
                .and_then(|s| s.checked_add(sec))
                .and_then(|s| s.checked_sub(i64::from(offset)))
                .ok_or_else(no_form)?;
            write_time(&RubyTime::with_offset(local, nanos, offset), out, esc)?;
        }
        // The instant, written in UTC: the zone's own offset would need a time zone database.
        ("ActiveSupport::TimeWithZone", [sec, nsec, _, _]) => {
            let (Some(sec), Some(nsec)) = (int(sec), int(nsec).and_then(|n| u32::try_from(n).ok()))
            else {
                return Err(no_form());
            };
            write_time(&RubyTime::utc(sec, nsec), out, esc)?;
        }
        // Set and other Enumerables: their members.
        ("Set", [Value::Array(items)]) => write_array(items.iter(), out, depth, esc)?,
        ("BigDecimal", [d]) => {
            let d = text(d).ok_or_else(no_form)?;
            match bigdecimal_as_json(&d).map_err(|()| no_form())? {
                Some(plain) => write_str_with(&plain, out, esc),
                None => out.push_str("null"),
            }
        }
        // Duration#as_json is to_i.
        ("ActiveSupport::Duration", [Value::Integer(i), _]) => {
            let _ = write!(out, "{i}");
        }
        ("ActiveSupport::Duration", [Value::Float(f), _]) if f.is_finite() => {
            let _ = write!(out, "{}", f.trunc() as i64);
        }
        // Rational has no as_json of its own: the JSON gem writes its to_s.
        ("Rational", [Value::Integer(0)]) => write_str_with("0/1", out, esc),
        ("Rational", [Value::Integer(n), Value::Integer(d)]) => {
            write_str_with(&format!("{n}/{d}"), out, esc)
        }
        // Range#as_json is to_s.
        ("Range", [b, e, Value::Bool(exclusive)]) => {
            let part = |v: &Value| -> Option<String> {
                match v {
                    Value::Nil => Some(String::new()),
                    Value::Integer(i) => Some(i.to_string()),
                    Value::Float(f) => Some(ruby_float_to_s(*f)),
                    other => text(other),
                }
            };
            let (Some(b), Some(e)) = (part(b), part(e)) else { return Err(no_form()) };
            write_str_with(&format!("{b}{}{e}", if *exclusive { "..." } else { ".." }), out, esc);
        }
        // URI, Pathname and Regexp are packed as their to_s, which is their as_json; IPAddr#as_json is to_s, the
        // address without the prefix length that 7.2+ packs.
        ("URI::Generic" | "Pathname" | "Regexp" | "ActiveSupport::SafeBuffer", [s]) => {
            write_str_with(&text(s).ok_or_else(no_form)?, out, esc)
        }
        ("IPAddr", [s]) => {
            let s = text(s).ok_or_else(no_form)?;
            write_str_with(s.split_once('/').map_or(&*s, |(a, _)| a), out, esc);
        }
        _ => return Err(no_form()),
    }
    Ok(())
}

fn write_array<'a>(
    items: impl Iterator<Item = &'a Value>,
    out: &mut String,
    depth: usize,
    esc: Escapes,
) -> Result<()> {
    out.push('[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(v, out, depth + 1, esc)?;
    }
    out.push(']');
    Ok(())
}

fn write_hash(h: &Hash, out: &mut String, depth: usize, esc: Escapes) -> Result<()> {
    out.push('{');
    for (i, (k, v)) in h.entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Hash#as_json stringifies keys with to_s.
        match k {
            Value::String(s) | Value::Symbol(s) => write_str_with(s, out, esc),
            Value::RubyString(_) => write_str_with(k.as_key_str().unwrap_or_default(), out, esc),
            Value::Integer(i) => write_str_with(&i.to_string(), out, esc),
            Value::BigInteger(b) => write_str_with(&b.to_string(), out, esc),
            Value::Float(f) => write_str_with(&ruby_float_to_s(*f), out, esc),
            Value::Nil => write_str_with("", out, esc),
            Value::Bool(b) => write_str_with(if *b { "true" } else { "false" }, out, esc),
            _ => return Err(Error::serializer("json", "a Hash key of this type has no JSON form")),
        }
        out.push(':');
        write_value(v, out, depth + 1, esc)?;
    }
    out.push('}');
    Ok(())
}

/// Writes a JSON string with the JSON gem's escapes plus the ActiveSupport escapes that are on.
///
/// Scans bytes rather than chars: everything that needs escaping is ASCII except U+2028/U+2029, whose UTF-8 form
/// starts with `E2 80`, so runs of ordinary text are copied whole.
pub(crate) fn write_str_with(s: &str, out: &mut String, esc: Escapes) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (escaped, len): (&str, usize) = match b {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'<' if esc.html_entities => ("\\u003c", 1),
            b'>' if esc.html_entities => ("\\u003e", 1),
            b'&' if esc.html_entities => ("\\u0026", 1),
            0x08 => ("\\b", 1),
            0x0c => ("\\f", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            0x00..=0x1f => ("", 1),
            0xe2 if esc.js_separators
                && bytes.get(i + 1) == Some(&0x80)
                && bytes.get(i + 2) == Some(&0xa8) =>
            {
                ("\\u2028", 3)
            }
            0xe2 if esc.js_separators
                && bytes.get(i + 1) == Some(&0x80)
                && bytes.get(i + 2) == Some(&0xa9) =>
            {
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
    fn packed_values_from_message_pack_as_active_support_writes_them_in_json() {
        let packed =
            |class: &str, fields: Vec<Value>| Value::Packed(Packed::new(class, fields).unwrap());
        // Values ActiveSupport::JSON wrote for the same Ruby objects (rails_7_2_json/ruby_values, Rails 7.2.2.2).
        assert_eq!(enc(&packed("Date", vec![2_460_370.into()])), r#""2024-02-29""#);
        let dt = packed(
            "DateTime",
            vec![
                2_460_312.into(),
                3.into(),
                4.into(),
                5.into(),
                1.into(),
                4.into(),
                1.into(),
                24.into(),
            ],
        );
        assert_eq!(enc(&dt), r#""2024-01-02T03:04:05.250+01:00""#);
        assert_eq!(enc(&packed("Rational", vec![1.into(), 3.into()])), r#""1/3""#);
        assert_eq!(enc(&packed("Range", vec![1.into(), 3.into(), false.into()])), r#""1..3""#);
        assert_eq!(enc(&packed("BigDecimal", vec!["18:0.314159e1".into()])), r#""3.14159""#);
        assert_eq!(
            enc(&packed("BigDecimal", vec!["9:0.1e-19".into()])),
            r#""0.00000000000000000001""#
        );
        for (dump, json) in [("9:0.1e3", "100.0"), ("9:-0.15e1", "-1.5"), ("9:0.0", "0.0")] {
            assert_eq!(bigdecimal_as_json(dump), Ok(Some(json.to_owned())), "{dump}");
        }
        // BigDecimal#as_json is `finite? ? to_s : nil`.
        assert_eq!(enc(&packed("BigDecimal", vec!["9:NaN".into()])), "null");
        assert_eq!(enc(&packed("BigDecimal", vec!["9:-Infinity".into()])), "null");
        assert_eq!(bigdecimal_as_json("9:0.1e999999999"), Err(()));
        assert_eq!(bigdecimal_as_json("9:1.5"), Err(()));
        let duration = Value::Array(vec![
            Value::Nil,
            Value::Nil,
            Value::Nil,
            1.into(),
            3.into(),
            Value::Nil,
            Value::Nil,
        ]);
        assert_eq!(enc(&packed("ActiveSupport::Duration", vec![97_200.into(), duration])), "97200");
        // Fields no Ruby object could have are an error, never a panic or a wrong string.
        let huge = packed(
            "DateTime",
            vec![i64::MAX.into(), 0.into(), 0.into(), 0.into(), 0.into(), 0.into()],
        );
        assert!(dump(&huge).is_err());
        let twz = packed(
            "ActiveSupport::TimeWithZone",
            vec![i64::MAX.into(), 0.into(), 0.into(), "UTC".into()],
        );
        assert!(dump(&twz).is_err());
        assert!(dump(&packed("Complex", vec![1.into(), 2.into()])).is_err());
    }

    #[test]
    fn rails_8_1_leaves_js_separators_raw() {
        // load_defaults 8.1: escape_js_separators_in_json = false; escape_html_entities_in_json still escapes <>&.
        let mut h = Hash::new();
        h.insert("a", Value::String("<>&\u{2028}\u{2029}/".into()));
        let v = Value::Hash(h);
        let esc = Escapes { html_entities: true, js_separators: false };
        assert_eq!(
            String::from_utf8(dump_with(&v, esc).unwrap()).unwrap(),
            "{\"a\":\"\\u003c\\u003e\\u0026\u{2028}\u{2029}/\"}"
        );
        let esc = Escapes { html_entities: false, js_separators: true };
        assert_eq!(
            String::from_utf8(dump_with(&v, esc).unwrap()).unwrap(),
            "{\"a\":\"<>&\\u2028\\u2029/\"}"
        );
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
