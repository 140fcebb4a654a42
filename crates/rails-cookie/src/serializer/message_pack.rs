//! ActiveSupport's MessagePack serializer (Rails 7.1+ `:message_pack`): the signature `CC 80` (uint8 128), then the
//! value in MessagePack with ActiveSupport's extension types.
//!
//! Every extension type `ActiveSupport::MessagePack::Extensions.install` registers (Rails 7.1–8.1) is read and
//! written: 0 Symbol, 1 Integer beyond 64 bits, 7 Time and 17 HashWithIndifferentAccess map onto the value model's
//! own kinds; the others (BigDecimal, Rational, Complex, DateTime, Date, TimeWithZone, TimeZone, Duration, Range,
//! Set, URI, IPAddr, Pathname, Regexp) are kept as [`Packed`]: the class and the fields its packer writes, checked
//! against what its unpacker reads. Type 127, the generic object extension, is refused: reading it would mean
//! instantiating a class the payload names, and the cookie serializer refuses it in Rails too. Tested against
//! payloads written by Rails 7.2 with msgpack 1.7 (`tests/vectors/rails_7_2_message_pack.json`).

use num_bigint::{BigInt, Sign};
use rmp::Marker;

use crate::error::{Error, Result};
use crate::value::{Hash, Packed, PackedClass, RString, RubyTime, Value};

const SIGNATURE: [u8; 2] = [0xCC, 0x80];
const MAX_DEPTH: usize = 64;
const HWIA: &str = "ActiveSupport::HashWithIndifferentAccess";

fn err(reason: impl std::fmt::Display) -> Error {
    Error::serializer("message_pack", reason)
}

/// `ActiveSupport::MessagePack.dump` (Rails 8.1's extension types).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn dump(value: &Value) -> Result<Vec<u8>> {
    dump_with(value, true)
}

/// `ActiveSupport::MessagePack.dump` of a Rails version with or without `SafeBuffer` (extension 18, 8.1+): before
/// 8.1 Rails cannot write one, and reads a cookie holding one as nil.
pub(crate) fn dump_with(value: &Value, safe_buffer: bool) -> Result<Vec<u8>> {
    let mut out = SIGNATURE.to_vec();
    write(value, &mut out, 0, safe_buffer)?;
    Ok(out)
}

/// `ActiveSupport::MessagePack.load` (Rails 8.1's extension types).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn load(bytes: &[u8]) -> Result<Value> {
    load_with(bytes, true)
}

/// `ActiveSupport::MessagePack.load` of a Rails version with or without `SafeBuffer` (extension 18, 8.1+).
pub(crate) fn load_with(bytes: &[u8], safe_buffer: bool) -> Result<Value> {
    let rest =
        bytes.strip_prefix(&SIGNATURE[..]).ok_or_else(|| err("missing the CC 80 signature"))?;
    let mut r = Reader { buf: rest, pos: 2, safe_buffer };
    let v = r.value(0)?;
    if !r.buf.is_empty() {
        return Err(err(format!("trailing data at byte {}", r.pos)));
    }
    Ok(v)
}

fn write(value: &Value, out: &mut Vec<u8>, depth: usize, safe_buffer: bool) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(err("value nested too deeply"));
    }
    // Writing to a Vec cannot fail; the io::Result of rmp's writers is ignored on purpose.
    match value {
        Value::Nil => rmp::encode::write_nil(out).map_err(err)?,
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(err)?,
        // msgpack-ruby sizes a negative Bignum as its magnitude plus a sign bit: -(2**63), the one i64 that is a
        // Bignum in Ruby and whose magnitude fills 64 bits, goes to the Integer extension, not int64.
        Value::Integer(i64::MIN) => write_ext(out, 1, &[1, 0, 0, 0, 0, 0x80, 0, 0, 0])?,
        Value::Integer(i) => {
            if *i >= 0 {
                rmp::encode::write_uint(out, i.unsigned_abs()).map_err(err)?;
            } else {
                rmp::encode::write_sint(out, *i).map_err(err)?;
            }
        }
        Value::BigInteger(b) => {
            if let Ok(u) = u64::try_from(b) {
                rmp::encode::write_uint(out, u).map_err(err)?;
            } else {
                // pack("CL>*"): sign byte, then 32-bit big-endian chunks, least significant chunk first.
                let (sign, digits) = b.to_u32_digits();
                let mut payload = vec![u8::from(sign == Sign::Minus)];
                for d in digits {
                    payload.extend_from_slice(&d.to_be_bytes());
                }
                write_ext(out, 1, &payload)?;
            }
        }
        Value::Float(f) => rmp::encode::write_f64(out, *f).map_err(err)?,
        Value::String(s) => rmp::encode::write_str(out, s).map_err(err)?,
        Value::RubyString(r) => match r.encoding {
            crate::value::Encoding::Binary => rmp::encode::write_bin(out, &r.bytes).map_err(err)?,
            _ => {
                rmp::encode::write_str_len(out, len32(r.bytes.len())?).map_err(err)?;
                out.extend_from_slice(&r.bytes);
            }
        },
        Value::Symbol(s) => write_ext(out, 0, s.as_bytes())?,
        Value::Array(items) => {
            rmp::encode::write_array_len(out, len32(items.len())?).map_err(err)?;
            for v in items {
                write(v, out, depth + 1, safe_buffer)?;
            }
        }
        Value::Hash(h) => write_map(h, out, depth, safe_buffer)?,
        Value::UserClass { class, value } if class == HWIA => {
            let Value::Hash(h) = value.as_ref() else {
                return Err(err("HashWithIndifferentAccess must wrap a Hash"));
            };
            let mut payload = Vec::new();
            write_map(h, &mut payload, depth, safe_buffer)?;
            write_ext(out, 17, &payload)?;
        }
        Value::Time(t) => {
            let mut payload = Vec::new();
            write(&Value::Integer(t.unix_seconds), &mut payload, depth + 1, safe_buffer)?;
            write(&Value::Integer(i64::from(t.nanos)), &mut payload, depth + 1, safe_buffer)?;
            write(&Value::Integer(i64::from(t.utc_offset)), &mut payload, depth + 1, safe_buffer)?;
            write_ext(out, 7, &payload)?;
        }
        Value::Packed(p) => {
            if p.class == PackedClass::SafeBuffer && !safe_buffer {
                return Err(err(
                    "ActiveSupport::SafeBuffer has a MessagePack form from Rails 8.1 on only",
                ));
            }
            // Packed values are only built through checks; a hand-made one is checked again before writing.
            if !p.class.accepts(&p.fields) {
                return Err(err(format!("malformed {} fields", p.class.name())));
            }
            let mut payload = Vec::new();
            if p.class.recursive() {
                for f in &p.fields {
                    write(f, &mut payload, depth + 1, safe_buffer)?;
                }
            } else {
                match p.fields.first() {
                    Some(Value::String(s)) => payload.extend_from_slice(s.as_bytes()),
                    Some(Value::RubyString(r)) => payload.extend_from_slice(&r.bytes),
                    _ => return Err(err(format!("malformed {} fields", p.class.name()))),
                }
            }
            write_ext(out, p.class as i8, &payload)?;
        }
        other => return Err(err(format!("{} cannot be written as MessagePack", type_name(other)))),
    }
    Ok(())
}

fn write_map(h: &Hash, out: &mut Vec<u8>, depth: usize, safe_buffer: bool) -> Result<()> {
    rmp::encode::write_map_len(out, len32(h.entries.len())?).map_err(err)?;
    for (k, v) in &h.entries {
        write(k, out, depth + 1, safe_buffer)?;
        write(v, out, depth + 1, safe_buffer)?;
    }
    Ok(())
}

fn write_ext(out: &mut Vec<u8>, type_id: i8, payload: &[u8]) -> Result<()> {
    rmp::encode::write_ext_meta(out, len32(payload.len())?, type_id).map_err(err)?;
    out.extend_from_slice(payload);
    Ok(())
}

fn len32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| err("too long"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "a plain object",
        Value::Struct(_) => "a Struct",
        Value::UserDefined { .. } | Value::UserMarshal { .. } => "a custom-dumped object",
        Value::Regexp { .. } => "a Regexp",
        Value::ClassRef(_) | Value::ModuleRef(_) => "a class reference",
        Value::UserClass { .. } => "a subclass of a core type",
        _ => "this value",
    }
}

/// Whether `Regexp.new(text)` fails in Ruby because `text` is the `to_s` of an extended-mode Regexp (`(?x-mi:…)`)
/// whose source has a `#` comment with no newline after it: the comment swallows the group's closing `)`. Rails
/// writes such a Regexp into a MessagePack cookie and then cannot read the cookie back.
fn extended_comment_swallows_the_group(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("(?") else { return false };
    let Some((flags, body)) = rest.split_once(':') else { return false };
    let on = flags.split('-').next().unwrap_or("");
    if !on.contains('x') || flags.contains(|c: char| !"mix-".contains(c)) {
        return false;
    }
    let mut escaped = false;
    let mut class_depth = 0usize;
    let mut in_comment_group = false;
    let mut prev = ['\0', '\0'];
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            // A `(?#…)` group is a comment that ends at its `)`, in extended mode too.
            ')' if in_comment_group => in_comment_group = false,
            _ if in_comment_group => {}
            '\\' => escaped = true,
            '[' => class_depth += 1,
            ']' if class_depth > 0 => class_depth -= 1,
            '#' if class_depth == 0 && prev == ['(', '?'] => in_comment_group = true,
            '#' if class_depth == 0 => return !body[i..].contains('\n'),
            _ => {}
        }
        prev = [prev[1], c];
    }
    false
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Whether extension 18 (`SafeBuffer`, Rails 8.1+) is known.
    safe_buffer: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(err(format!("truncated at byte {}", self.pos)));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        self.pos += n;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(err("nested too deeply"));
        }
        let at = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        Ok(match marker {
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::Integer(i64::from(n)),
            Marker::FixNeg(n) => Value::Integer(i64::from(n)),
            Marker::U8 => Value::Integer(self.be(1)? as i64),
            Marker::U16 => Value::Integer(self.be(2)? as i64),
            Marker::U32 => Value::Integer(self.be(4)? as i64),
            Marker::U64 => Value::integer(i128::from(self.be(8)?)),
            Marker::I8 => Value::Integer(i64::from(self.be(1)? as u8 as i8)),
            Marker::I16 => Value::Integer(i64::from(self.be(2)? as u16 as i16)),
            Marker::I32 => Value::Integer(i64::from(self.be(4)? as u32 as i32)),
            Marker::I64 => Value::Integer(self.be(8)? as i64),
            Marker::F32 => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            Marker::F64 => Value::Float(f64::from_bits(self.be(8)?)),
            Marker::FixStr(n) => self.str(usize::from(n))?,
            Marker::Str8 => {
                let n = self.be(1)? as usize;
                self.str(n)?
            }
            Marker::Str16 => {
                let n = self.be(2)? as usize;
                self.str(n)?
            }
            Marker::Str32 => {
                let n = self.be(4)? as usize;
                self.str(n)?
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let width = match marker {
                    Marker::Bin8 => 1,
                    Marker::Bin16 => 2,
                    _ => 4,
                };
                let n = self.be(width)? as usize;
                Value::RubyString(RString::new(
                    self.take(n)?.to_vec(),
                    crate::value::Encoding::Binary,
                ))
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.be(2)? as usize;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.be(4)? as usize;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => Value::Hash(self.map(usize::from(n), depth)?),
            Marker::Map16 => {
                let n = self.be(2)? as usize;
                Value::Hash(self.map(n, depth)?)
            }
            Marker::Map32 => {
                let n = self.be(4)? as usize;
                Value::Hash(self.map(n, depth)?)
            }
            Marker::FixExt1 => self.ext(1, depth)?,
            Marker::FixExt2 => self.ext(2, depth)?,
            Marker::FixExt4 => self.ext(4, depth)?,
            Marker::FixExt8 => self.ext(8, depth)?,
            Marker::FixExt16 => self.ext(16, depth)?,
            Marker::Ext8 => {
                let n = self.be(1)? as usize;
                self.ext(n, depth)?
            }
            Marker::Ext16 => {
                let n = self.be(2)? as usize;
                self.ext(n, depth)?
            }
            Marker::Ext32 => {
                let n = self.be(4)? as usize;
                self.ext(n, depth)?
            }
            Marker::Reserved => return Err(err(format!("reserved marker at byte {at}"))),
        })
    }

    fn str(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => Value::RubyString(RString::new(bytes.to_vec(), crate::value::Encoding::Utf8)),
        })
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value> {
        // Each element takes at least one byte: a count beyond what is left is a lie, refused before allocating.
        if n > self.buf.len() {
            return Err(err(format!("array length beyond the data at byte {}", self.pos)));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Hash> {
        if n.saturating_mul(2) > self.buf.len() {
            return Err(err(format!("map length beyond the data at byte {}", self.pos)));
        }
        let mut h = Hash::new();
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            h.insert_value(k, v);
        }
        Ok(h)
    }

    fn ext(&mut self, n: usize, depth: usize) -> Result<Value> {
        let type_id = self.u8()? as i8;
        let at = self.pos;
        let payload = self.take(n)?;
        let mut inner = Reader { buf: payload, pos: at, safe_buffer: self.safe_buffer };
        let v = match type_id {
            0 => Value::Symbol(
                std::str::from_utf8(payload).map_err(|_| err("symbol is not UTF-8"))?.to_owned(),
            ),
            1 => {
                let (&sign, chunks) =
                    payload.split_first().ok_or_else(|| err("empty big integer"))?;
                if chunks.len() % 4 != 0 {
                    return Err(err("big integer payload is not whole 32-bit chunks"));
                }
                let digits: Vec<u32> = chunks
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let sign = if sign == 1 { Sign::Minus } else { Sign::Plus };
                let b = BigInt::from_slice(sign, &digits);
                match i64::try_from(&b) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => Value::BigInteger(b),
                }
            }
            7 => {
                let sec = inner.value(depth + 1)?.as_i64().ok_or_else(|| err("Time seconds"))?;
                let nsec =
                    inner.value(depth + 1)?.as_i64().ok_or_else(|| err("Time nanoseconds"))?;
                let offset = inner.value(depth + 1)?.as_i64().ok_or_else(|| err("Time offset"))?;
                let nanos = u32::try_from(nsec)
                    .ok()
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or_else(|| err("Time nanoseconds"))?;
                let offset = i32::try_from(offset)
                    .ok()
                    .filter(|o| o.abs() < 86_400)
                    .ok_or_else(|| err("Time offset"))?;
                // Time.at(sec, nsec, :nanosecond, in: offset): a fixed-offset time, never flagged UTC.
                let t = RubyTime::with_offset(sec, nanos, offset);
                if t.local().is_none() {
                    // Years outside ±9999: Ruby has them, no session holds them, and they have no ISO 8601 form.
                    return Err(err(format!("Time at byte {at} is outside the years -9999..=9999")));
                }
                Value::Time(t)
            }
            17 => {
                let Value::Hash(h) = inner.value(depth + 1)? else {
                    return Err(err("HashWithIndifferentAccess payload is not a map"));
                };
                Value::UserClass { class: HWIA.into(), value: Box::new(Value::Hash(h)) }
            }
            127 => {
                return Err(err(
                    "extension type 127 (a generic Ruby object) is refused: reading it would instantiate the class \
                     it names, and Rails' cookie serializer refuses it too",
                ))
            }
            id => {
                let class = PackedClass::from_type_id(id)
                    .filter(|c| *c != PackedClass::SafeBuffer || self.safe_buffer)
                    .ok_or_else(|| {
                        err(format!("extension type {id} is not one this Rails version's ActiveSupport registers"))
                    })?;
                let fields = if class.recursive() {
                    let mut fields = Vec::new();
                    while !inner.buf.is_empty() {
                        fields.push(inner.value(depth + 1)?);
                    }
                    fields
                } else {
                    vec![match std::str::from_utf8(payload) {
                        Ok(s) => Value::String(s.to_owned()),
                        Err(_) => Value::RubyString(RString::new(
                            payload.to_vec(),
                            crate::value::Encoding::Binary,
                        )),
                    }]
                };
                if !class.accepts(&fields) {
                    return Err(err(format!(
                        "extension type {id} ({}) at byte {at} does not hold the fields ActiveSupport packs",
                        class.name()
                    )));
                }
                if class == PackedClass::Regexp {
                    if let [Value::String(text)] = fields.as_slice() {
                        if extended_comment_swallows_the_group(text) {
                            return Err(err(format!(
                                "the Regexp at byte {at} cannot be compiled by Ruby: in extended mode its `#` comment \
                                 runs over the closing parenthesis of its own to_s (Rails reads such a cookie as nil)"
                            )));
                        }
                    }
                }
                Value::Packed(Packed { class, fields })
            }
        };
        if matches!(type_id, 7 | 17) && !inner.buf.is_empty() {
            return Err(err(format!("trailing data in extension at byte {}", inner.pos)));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) -> Vec<u8> {
        let bytes = dump(v).unwrap();
        assert_eq!(&load(&bytes).unwrap(), v);
        bytes
    }

    /// Bytes built from ActiveSupport 7.1's `MessagePack::Extensions` and msgpack-ruby's packer (spec §6.4).
    #[test]
    fn spec_bytes() {
        let mut h = Hash::new();
        h.insert("user_id", Value::Integer(42));
        h.insert_value(Value::Symbol("k".into()), Value::Float(1.5));
        // cc80 | 82 | a7 "user_id" 2a | d4 00 "k" | cb 3ff8000000000000
        assert_eq!(
            hex::encode(round_trip(&Value::Hash(h))),
            "cc8082a7757365725f69642ad4006bcb3ff8000000000000"
        );
        assert_eq!(hex::encode(round_trip(&Value::Integer(200))), "cc80ccc8");
        assert_eq!(hex::encode(round_trip(&Value::Integer(-33))), "cc80d0df");
        assert_eq!(hex::encode(round_trip(&Value::Integer(-1))), "cc80ff");
        // 2**64: ext 1, sign 0, chunks 00000000 00000000 00000001 (least significant first) → 13 bytes → ext8.
        let big = Value::BigInteger(BigInt::from(1u128 << 64));
        assert_eq!(hex::encode(round_trip(&big)), "cc80c70d0100000000000000000000000001");
        let t = Value::Time(RubyTime::with_offset(1_700_000_000, 5, 3600));
        // payload = ce 6553f100 | 05 | cd 0e10 → 9 bytes → ext8 (c7 09 07).
        assert_eq!(hex::encode(round_trip(&t)), "cc80c70907ce6553f10005cd0e10");
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            &b""[..],
            b"\xcc",
            b"\xcc\x81\xc0",
            b"\xcc\x80",
            b"\xcc\x80\xc1",
            b"\xcc\x80\xdd\xff\xff\xff\xff",
            b"\xcc\x80\xc0\xc0",
            b"\xcc\x80\xd4\x05\x00",
            b"\xcc\x80\xa5ab",
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
        let deep: Vec<u8> = SIGNATURE
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0x91, 1000))
            .chain([0xc0])
            .collect();
        assert!(load(&deep).is_err());
    }

    #[test]
    fn active_support_extensions_are_kept_as_packed_fields() {
        let packed =
            |class: &str, fields: Vec<Value>| Value::Packed(Packed::new(class, fields).unwrap());
        // Date.new(2024, 1, 2): ext 6, payload = msgpack(2460312) = ce 00258a98 → fixext? 5 bytes → ext8.
        let date = packed("Date", vec![Value::Integer(2_460_312)]);
        assert_eq!(hex::encode(round_trip(&date)), "cc80c70506ce00258a98");
        // Rational(0): the denominator is not written; Rational(1, 3) writes both.
        assert_eq!(
            hex::encode(round_trip(&packed("Rational", vec![Value::Integer(0)]))),
            "cc80d40300"
        );
        assert_eq!(
            hex::encode(round_trip(&packed(
                "Rational",
                vec![Value::Integer(1), Value::Integer(3)]
            ))),
            "cc80d5030103"
        );
        // BigDecimal("1.5")._dump is "18:0.15e1": the raw bytes are the payload (9 bytes → ext8).
        let dec = packed("BigDecimal", vec![Value::String("18:0.15e1".into())]);
        assert_eq!(hex::encode(round_trip(&dec)), "cc80c7090231383a302e31356531");
        // Set[1, 2]: the array, packed with the same factory (3 bytes → ext8).
        assert_eq!(
            hex::encode(round_trip(&packed("Set", vec![Value::Array(vec![1.into(), 2.into()])]))),
            "cc80c7030c920102"
        );
        // TimeWithZone: the UTC time's fields, then the zone name.
        let twz = packed(
            "ActiveSupport::TimeWithZone",
            vec![1_704_164_645.into(), 0.into(), 0.into(), "Europe/Berlin".into()],
        );
        round_trip(&twz);
        let dt = packed(
            "DateTime",
            vec![
                2_460_312.into(),
                3.into(),
                4.into(),
                5.into(),
                1.into(),
                2.into(),
                1.into(),
                24.into(),
            ],
        );
        round_trip(&dt);
    }

    #[test]
    fn malformed_extensions_and_the_generic_object_are_refused() {
        for (bytes, why) in [
            (&b"\xcc\x80\xd4\x7f\x00"[..], "type 127"),
            (b"\xcc\x80\xd4\x13\x00", "type 19"),
            (b"\xcc\x80\xd4\x06\xc0", "Date of nil"),
            (b"\xcc\x80\xd5\x06\x01\x02", "Date with two fields"),
            (b"\xcc\x80\xd5\x03\x00\x01", "Rational 0 with a denominator"),
            (b"\xcc\x80\xd4\x03\x01", "Rational without a denominator"),
            (b"\xcc\x80\xd5\x0b\x01\x02", "Range without exclude_end"),
            (b"\xcc\x80\xd4\x0c\x01", "Set of a non-array"),
            (b"\xcc\x80\xd4\x06\xcd", "truncated field"),
        ] {
            let e = load(bytes).unwrap_err().to_string();
            assert!(e.contains("extension") || e.contains("truncated"), "{why}: {e}");
        }
        assert!(load(b"\xcc\x80\xd4\x7f\x00").unwrap_err().to_string().contains("instantiate"));
        assert!(Packed::new("Object", vec![]).is_err());
        assert!(Packed::new("Date", vec!["x".into()]).is_err());
    }

    #[test]
    fn extended_regexps_whose_comment_eats_the_group_are_refused_as_ruby_does() {
        assert!(extended_comment_swallows_the_group("(?x-mi:a.b # c)"));
        assert!(!extended_comment_swallows_the_group("(?x-mi:a.b # c\n)"));
        assert!(!extended_comment_swallows_the_group("(?x-mi:a\\#b)"));
        assert!(!extended_comment_swallows_the_group("(?x-mi:a[#]b)"));
        assert!(!extended_comment_swallows_the_group("(?-mix:a # b)"));
        assert!(!extended_comment_swallows_the_group("(?mi-x:a # b)"));
        // `(?#…)` is a comment group that Ruby closes at its `)`.
        assert!(!extended_comment_swallows_the_group("(?x-mi:a(?#c)b)"));
        assert!(extended_comment_swallows_the_group("(?x-mi:a(?#c)b # d)"));
    }

    #[test]
    fn safe_buffer_is_rails_8_1s() {
        // ActiveSupport::SafeBuffer "<b>" as 8.1 packs it: ext 18, the raw string.
        let bytes = b"\xcc\x80\xd6\x12<b>x";
        let v = load(bytes).unwrap();
        assert_eq!(dump(&v).unwrap(), bytes);
        assert!(load_with(bytes, false).unwrap_err().to_string().contains("extension type 18"));
        assert!(dump_with(&v, false).unwrap_err().to_string().contains("8.1"));
    }

    #[test]
    fn times_without_an_iso_8601_form_are_refused() {
        // Time.at(10**12): year 33658.
        let bytes = b"\xcc\x80\xc7\x0b\x07\xcf\x00\x00\x00\xe8\xd4\xa5\x10\x00\x00\x00";
        assert!(load(bytes).unwrap_err().to_string().contains("years"));
    }

    #[test]
    fn objects_are_refused_on_write() {
        let v = Value::Object(crate::value::Object::new("Foo", vec![]));
        assert!(dump(&v).is_err());
    }
}
