//! Tagged JSON: a lossless JSON form of [`Value`] (see `docs/tagged-json.md`), and the plain serde conversions.
//!
//! Plain JSON values stay plain; Ruby-only values become objects whose first key names the kind (`"$symbol"`,
//! `"$time"`, …). `railbridge cookie` prints and reads this form, and the test suite's Ruby side speaks it too.

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use num_bigint::BigInt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value as Json};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::value::{Encoding, Hash, Object, RString, RubyTime, Value};

const MAX_DEPTH: usize = 128;

impl Value {
    /// The tagged JSON form: lossless for every value.
    ///
    /// ```
    /// use rails_cookie::{Hash, Value};
    /// let mut h = Hash::new();
    /// h.insert("user_id", 42.into());
    /// h.insert("role", Value::Symbol("admin".into()));
    /// assert_eq!(Value::Hash(h).to_tagged_json().to_string(), r#"{"user_id":42,"role":{"$symbol":"admin"}}"#);
    /// ```
    #[must_use]
    pub fn to_tagged_json(&self) -> Json {
        match self {
            Value::Nil => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Integer(i) => Json::from(*i),
            Value::BigInteger(b) => match u64::try_from(b) {
                Ok(u) => Json::from(u),
                Err(_) => tag("$integer", Json::String(b.to_string())),
            },
            Value::Float(f) => match Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => tag(
                    "$float",
                    Json::String(
                        if f.is_nan() {
                            "NaN"
                        } else if *f > 0.0 {
                            "Infinity"
                        } else {
                            "-Infinity"
                        }
                        .into(),
                    ),
                ),
            },
            Value::String(s) => Json::String(s.clone()),
            Value::RubyString(r) => rstring_json(r),
            Value::Symbol(s) => tag("$symbol", Json::String(s.clone())),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_tagged_json).collect()),
            Value::Hash(h) => {
                let plain = h.default.is_none()
                    && h.entries.iter().all(|(k, _)| matches!(k, Value::String(_)))
                    && !matches!(h.entries.first(), Some((Value::String(k), _)) if k.starts_with('$'));
                if plain {
                    let mut map = Map::new();
                    for (k, v) in &h.entries {
                        if let Value::String(k) = k {
                            map.insert(k.clone(), v.to_tagged_json());
                        }
                    }
                    Json::Object(map)
                } else {
                    let pairs = h
                        .entries
                        .iter()
                        .map(|(k, v)| Json::Array(vec![k.to_tagged_json(), v.to_tagged_json()]))
                        .collect();
                    let mut map = Map::new();
                    map.insert("$hash".into(), Json::Array(pairs));
                    if let Some(d) = &h.default {
                        map.insert("$default".into(), d.to_tagged_json());
                    }
                    Json::Object(map)
                }
            }
            Value::Time(t) => {
                let mut map = Map::new();
                map.insert("$time".into(), Json::String(t.xmlschema(9)));
                if let (false, Some(zone)) = (t.is_utc, &t.zone) {
                    map.insert("$zone".into(), Json::String(zone.clone()));
                }
                Json::Object(map)
            }
            Value::Regexp { source, options } => {
                let mut map = Map::new();
                map.insert(
                    "$regexp".into(),
                    Json::String(String::from_utf8_lossy(&source.bytes).into_owned()),
                );
                map.insert("$options".into(), Json::from(*options));
                Json::Object(map)
            }
            Value::Object(o) => class_and_fields("$object", "$ivars", o),
            Value::Struct(o) => class_and_fields("$struct", "$members", o),
            Value::UserClass { class, value } => {
                let mut map = Map::new();
                map.insert("$class".into(), Json::String(class.clone()));
                map.insert("$value".into(), value.to_tagged_json());
                Json::Object(map)
            }
            Value::UserDefined { class, data, ivars } => {
                let mut map = Map::new();
                map.insert("$user_defined".into(), Json::String(class.clone()));
                map.insert("$bytes".into(), Json::String(STANDARD.encode(data)));
                if !ivars.is_empty() {
                    map.insert("$ivars".into(), fields_json(ivars));
                }
                Json::Object(map)
            }
            Value::UserMarshal { class, value } => {
                let mut map = Map::new();
                map.insert("$user_marshal".into(), Json::String(class.clone()));
                map.insert("$value".into(), value.to_tagged_json());
                Json::Object(map)
            }
            Value::Packed(p) => {
                let mut map = Map::new();
                map.insert("$packed".into(), Json::String(p.class().into()));
                map.insert(
                    "$fields".into(),
                    Json::Array(p.fields().iter().map(Value::to_tagged_json).collect()),
                );
                Json::Object(map)
            }
            Value::ClassRef(name) => tag("$class_ref", Json::String(name.clone())),
            Value::ModuleRef(name) => tag("$module_ref", Json::String(name.clone())),
        }
    }

    /// Reads the tagged JSON form. Unknown `$` tags and extra keys in a tag object are errors.
    pub fn from_tagged_json(json: &Json) -> Result<Value> {
        from_tagged(json, 0)
    }

    /// Reads tagged JSON text. Unlike going through `serde_json::Value`, an integer literal of any size stays an
    /// Integer (`18446744073709551617` is not rounded to a Float), as Ruby reads it.
    ///
    /// ```
    /// use rails_cookie::Value;
    /// let v = Value::from_tagged_json_str(r#"{"huge": 18446744073709551617, "s": {"$symbol": "a"}}"#)?;
    /// assert_eq!(v.to_tagged_json_string(), r#"{"huge":18446744073709551617,"s":{"$symbol":"a"}}"#);
    /// # Ok::<(), rails_cookie::Error>(())
    /// ```
    pub fn from_tagged_json_str(text: &str) -> Result<Value> {
        let plain = crate::serializer::json::load(text.as_bytes())?;
        from_tagged(&plain_json(&plain), 0)
    }

    /// The tagged JSON form as text, with Integers of any size written as JSON numbers (the `serde_json` form of
    /// [`Value::to_tagged_json`] has to tag those beyond 64 bits as `{"$integer": "…"}`).
    #[must_use]
    pub fn to_tagged_json_string(&self) -> String {
        let mut out = String::new();
        write_json_with_big_integers(&self.to_tagged_json(), &mut out);
        out
    }

    /// Converts to a serde type through the JSON form Rails' `as_json` would give (symbols as strings, times as
    /// ISO 8601 strings, objects as hashes of their instance variables).
    ///
    /// ```
    /// use rails_cookie::Value;
    /// let key = Value::Array(vec![Value::Array(vec![1.into()]), "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de".into()]);
    /// let (ids, salt): (Vec<i64>, String) = key.deserialize_into()?;
    /// assert_eq!((ids, salt.len()), (vec![1], 29));
    /// # Ok::<(), rails_cookie::Error>(())
    /// ```
    pub fn deserialize_into<T: DeserializeOwned>(&self) -> Result<T> {
        let bytes = crate::serializer::json::dump(self)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::serializer("json", e))
    }

    /// Builds a value from any serde type, as a JSON session would hold it.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::serializer("json", e))?;
        crate::serializer::json::load(&bytes)
    }
}

/// A plain value as `serde_json` holds it, Integers beyond 64 bits as their `$integer` tag (the only values a JSON
/// parse yields that `serde_json::Value` cannot hold).
fn plain_json(v: &Value) -> Json {
    match v {
        Value::Array(items) => Json::Array(items.iter().map(plain_json).collect()),
        Value::Hash(h) => Json::Object(
            h.entries
                .iter()
                .map(|(k, v)| (k.as_key_str().unwrap_or_default().to_owned(), plain_json(v)))
                .collect(),
        ),
        other => other.to_tagged_json(),
    }
}

/// Writes tagged JSON (as [`Value::to_tagged_json`] makes it) as text, with each `{"$integer": "digits"}` tag that
/// stands for a value written as the bare number. Only value positions are rewritten: a Hash whose first key starts
/// with `$` is always written in the `$hash` form, so there such an object is always the tag; the name maps of
/// `$members` and `$ivars` are not values and are written as they are (their values are).
pub fn write_json_with_big_integers(json: &Json, out: &mut String) {
    write_tagged_text(json, out, true);
}

fn write_tagged_text(json: &Json, out: &mut String, value_position: bool) {
    match json {
        Json::Object(map) => {
            if value_position && map.len() == 1 {
                if let Some(Json::String(digits)) = map.get("$integer") {
                    let body = digits.strip_prefix('-').unwrap_or(digits);
                    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
                        out.push_str(digits);
                        return;
                    }
                }
            }
            // The maps under these keys hold names, not values (their members' values are values again).
            let name_map = |k: &str| value_position && matches!(k, "$members" | "$ivars");
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push(':');
                match v {
                    Json::Object(names) if name_map(k) => {
                        out.push('{');
                        for (j, (name, field)) in names.iter().enumerate() {
                            if j > 0 {
                                out.push(',');
                            }
                            out.push_str(&Json::String(name.clone()).to_string());
                            out.push(':');
                            write_tagged_text(field, out, true);
                        }
                        out.push('}');
                    }
                    _ => write_tagged_text(v, out, true),
                }
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_tagged_text(v, out, true);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

fn tag(name: &str, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(name.into(), value);
    Json::Object(map)
}

fn rstring_json(r: &RString) -> Json {
    let mut map = Map::new();
    match std::str::from_utf8(&r.bytes) {
        Ok(s) if r.encoding != Encoding::Binary => {
            map.insert("$string".into(), Json::String(s.into()));
        }
        _ => {
            map.insert("$bytes".into(), Json::String(STANDARD.encode(&r.bytes)));
        }
    }
    map.insert("$encoding".into(), Json::String(r.encoding.name().into()));
    if !r.ivars.is_empty() {
        map.insert("$ivars".into(), fields_json(&r.ivars));
    }
    Json::Object(map)
}

fn fields_json(fields: &[(String, Value)]) -> Json {
    Json::Object(fields.iter().map(|(k, v)| (k.clone(), v.to_tagged_json())).collect())
}

fn class_and_fields(tag_name: &str, fields_name: &str, o: &Object) -> Json {
    let mut map = Map::new();
    map.insert(tag_name.into(), Json::String(o.class.clone()));
    map.insert(fields_name.into(), fields_json(&o.fields));
    Json::Object(map)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::TaggedJson(msg.into())
}

fn from_tagged(json: &Json, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply"));
    }
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Integer(i)
            } else if let Some(u) = n.as_u64() {
                Value::integer(i128::from(u))
            } else {
                Value::Float(n.as_f64().ok_or_else(|| bad("unrepresentable number"))?)
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            Value::Array(items.iter().map(|v| from_tagged(v, depth + 1)).collect::<Result<_>>()?)
        }
        Json::Object(map) => match map.keys().next() {
            Some(first) if first.starts_with('$') => from_tag(first, map, depth)?,
            _ => {
                let mut h = Hash::new();
                for (k, v) in map {
                    h.entries.push((Value::String(k.clone()), from_tagged(v, depth + 1)?));
                }
                Value::Hash(h)
            }
        },
    })
}

fn from_tag(first: &str, map: &Map<String, Json>, depth: usize) -> Result<Value> {
    let allowed: &[&str] = match first {
        "$integer" | "$float" | "$symbol" | "$class_ref" | "$module_ref" => &[],
        "$string" | "$bytes" => &["$encoding", "$ivars"],
        "$hash" => &["$default"],
        "$time" => &["$zone"],
        "$regexp" => &["$options"],
        "$object" => &["$ivars"],
        "$struct" => &["$members"],
        "$class" | "$user_marshal" => &["$value"],
        "$user_defined" => &["$bytes", "$ivars"],
        "$packed" => &["$fields"],
        other => return Err(bad(format!("unknown tag {other:?}"))),
    };
    if let Some(extra) = map.keys().skip(1).find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("unexpected key {extra:?} in a {first} object")));
    }
    let str_of = |key: &str| -> Result<&str> {
        map.get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| bad(format!("{first} needs a string {key}")))
    };
    let fields = |key: &str| -> Result<Vec<(String, Value)>> {
        match map.get(key) {
            None => Ok(Vec::new()),
            Some(Json::Object(m)) => {
                m.iter().map(|(k, v)| Ok((k.clone(), from_tagged(v, depth + 1)?))).collect()
            }
            Some(_) => Err(bad(format!("{key} must be an object"))),
        }
    };
    let inner = |key: &str| -> Result<Box<Value>> {
        Ok(Box::new(from_tagged(
            map.get(key).ok_or_else(|| bad(format!("{first} needs {key}")))?,
            depth + 1,
        )?))
    };
    Ok(match first {
        "$packed" => {
            let fields = match map.get("$fields") {
                Some(Json::Array(items)) => {
                    items.iter().map(|v| from_tagged(v, depth + 1)).collect::<Result<Vec<_>>>()?
                }
                _ => return Err(bad("$packed needs a $fields array")),
            };
            Value::Packed(
                crate::value::Packed::new(str_of("$packed")?, fields)
                    .map_err(|e| bad(e.to_string()))?,
            )
        }
        "$integer" => {
            let b = BigInt::from_str(str_of("$integer")?)
                .map_err(|_| bad("$integer is not a decimal integer"))?;
            match i64::try_from(&b) {
                Ok(i) => Value::Integer(i),
                Err(_) => Value::BigInteger(b),
            }
        }
        "$float" => Value::Float(match str_of("$float")? {
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().map_err(|_| bad("$float must be Infinity, -Infinity or NaN"))?,
        }),
        "$symbol" => Value::Symbol(str_of("$symbol")?.to_owned()),
        "$class_ref" => Value::ClassRef(str_of("$class_ref")?.to_owned()),
        "$module_ref" => Value::ModuleRef(str_of("$module_ref")?.to_owned()),
        "$string" | "$bytes" => {
            let bytes = if first == "$string" {
                str_of("$string")?.as_bytes().to_vec()
            } else {
                STANDARD
                    .decode(str_of("$bytes")?)
                    .map_err(|_| bad("$bytes is not strict base64"))?
            };
            let encoding = match map.get("$encoding") {
                Some(Json::String(e)) => Encoding::from_name(e),
                None if first == "$bytes" => Encoding::Binary,
                None => Encoding::Utf8,
                Some(_) => return Err(bad("$encoding must be a string")),
            };
            let ivars = fields("$ivars")?;
            if encoding == Encoding::Utf8 && ivars.is_empty() {
                if let Ok(s) = String::from_utf8(bytes.clone()) {
                    return Ok(Value::String(s));
                }
            }
            Value::RubyString(RString { bytes, encoding, ivars })
        }
        "$hash" => {
            let Some(Json::Array(pairs)) = map.get("$hash") else {
                return Err(bad("$hash must be an array of [key, value] pairs"));
            };
            let mut h = Hash::new();
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([k, v]) => {
                        h.entries.push((from_tagged(k, depth + 1)?, from_tagged(v, depth + 1)?))
                    }
                    _ => return Err(bad("$hash entries must be [key, value] pairs")),
                }
            }
            if map.contains_key("$default") {
                h.default = Some(inner("$default")?);
            }
            Value::Hash(h)
        }
        "$time" => {
            let text = str_of("$time")?;
            let t = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| bad("$time is not an RFC 3339 time"))?;
            let is_utc = text.ends_with('Z') || text.ends_with('z');
            let zone = match map.get("$zone") {
                Some(Json::String(z)) => Some(z.clone()),
                None => None,
                Some(_) => return Err(bad("$zone must be a string")),
            };
            Value::Time(RubyTime {
                unix_seconds: t.unix_timestamp(),
                nanos: t.nanosecond(),
                utc_offset: t.offset().whole_seconds(),
                is_utc,
                zone: if is_utc { None } else { zone },
            })
        }
        "$regexp" => {
            let options = match map.get("$options") {
                None => 0,
                Some(o) => o
                    .as_u64()
                    .and_then(|o| u8::try_from(o).ok())
                    .ok_or_else(|| bad("$options must be 0-255"))?,
            };
            Value::Regexp {
                source: RString::new(str_of("$regexp")?.as_bytes().to_vec(), Encoding::UsAscii),
                options,
            }
        }
        "$object" => Value::Object(Object {
            class: str_of("$object")?.to_owned(),
            fields: fields("$ivars")?,
        }),
        "$struct" => Value::Struct(Object {
            class: str_of("$struct")?.to_owned(),
            fields: fields("$members")?,
        }),
        "$class" => {
            Value::UserClass { class: str_of("$class")?.to_owned(), value: inner("$value")? }
        }
        "$user_marshal" => Value::UserMarshal {
            class: str_of("$user_marshal")?.to_owned(),
            value: inner("$value")?,
        },
        "$user_defined" => Value::UserDefined {
            class: str_of("$user_defined")?.to_owned(),
            data: STANDARD
                .decode(str_of("$bytes")?)
                .map_err(|_| bad("$bytes is not strict base64"))?,
            ivars: fields("$ivars")?,
        },
        _ => return Err(bad(format!("unknown tag {first:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let json: Json = serde_json::from_str(text).unwrap();
        let v = Value::from_tagged_json(&json).unwrap();
        assert_eq!(v.to_tagged_json().to_string(), text);
    }

    #[test]
    fn every_tag_round_trips() {
        for text in [
            r#"{"a":1,"b":[true,null,1.5,"x"]}"#,
            r#"{"$integer":"-123456789012345678901234567890"}"#,
            r#"{"$float":"-Infinity"}"#,
            r#"{"$string":"abc","$encoding":"US-ASCII"}"#,
            r#"{"$bytes":"/w==","$encoding":"ASCII-8BIT"}"#,
            r#"{"$symbol":"admin"}"#,
            r#"{"$hash":[[{"$symbol":"k"},1]],"$default":0}"#,
            r#"{"$hash":[["$weird",1]]}"#,
            r#"{"$time":"2024-01-02T03:04:05.123456789Z"}"#,
            r#"{"$time":"2024-01-02T03:04:05.000000000+05:30","$zone":"IST"}"#,
            r#"{"$struct":"Point","$members":{"x":1,"y":2}}"#,
            r#"{"$class":"ActiveSupport::HashWithIndifferentAccess","$value":{"a":1}}"#,
            r#"{"$user_defined":"BigDecimal","$bytes":"MTg6MC4xNWUx"}"#,
            r#"{"$user_marshal":"ActiveSupport::TimeWithZone","$value":[1]}"#,
            r#"{"$object":"Set","$ivars":{"@hash":{"$hash":[[1,true]]}}}"#,
            r#"{"$regexp":"a+","$options":1}"#,
            r#"{"$class_ref":"Foo"}"#,
        ] {
            round_trip(text);
        }
    }

    #[test]
    fn big_integers_print_as_numbers_only_where_they_are_values() {
        let big = Value::BigInteger("18446744073709551617".parse().unwrap());
        assert_eq!(
            Value::Array(vec![big.clone()]).to_tagged_json_string(),
            "[18446744073709551617]"
        );
        // A Struct member named "$integer" is a name, not a tag: it must read back as the same Struct.
        for text in [
            r#"{"$struct":"S","$members":{"$integer":"5"}}"#,
            r#"{"$object":"O","$ivars":{"$integer":"5"}}"#,
            r#"{"$struct":"S","$members":{"a":{"$integer":"18446744073709551617"}}}"#,
        ] {
            let v = Value::from_tagged_json_str(text).unwrap();
            let again = Value::from_tagged_json_str(&v.to_tagged_json_string()).unwrap();
            assert_eq!(again, v, "{text}");
        }
        let mut out = String::new();
        write_json_with_big_integers(&serde_json::json!({"$integer": "+5"}), &mut out);
        assert_eq!(out, r#"{"$integer":"+5"}"#, "only plain digits are numbers");
    }

    #[test]
    fn typos_are_errors() {
        for text in [
            r#"{"$symbl":"x"}"#,
            r#"{"$symbol":"x","extra":1}"#,
            r#"{"$symbol":1}"#,
            r#"{"$hash":[[1]]}"#,
            r#"{"$time":"yesterday"}"#,
            r#"{"$bytes":"***"}"#,
        ] {
            let json: Json = serde_json::from_str(text).unwrap();
            assert!(Value::from_tagged_json(&json).is_err(), "{text}");
        }
    }

    #[test]
    fn serde_conversions() {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct S {
            id: i64,
            tags: Vec<String>,
        }
        let v = Value::from_serialize(&S { id: 7, tags: vec!["a".into()] }).unwrap();
        assert_eq!(v.as_hash().unwrap().get("id"), Some(&Value::Integer(7)));
        let back: S = v.deserialize_into().unwrap();
        assert_eq!(back, S { id: 7, tags: vec!["a".into()] });
        let sym = Value::Symbol("admin".into());
        assert_eq!(sym.deserialize_into::<String>().unwrap(), "admin");
    }
}
