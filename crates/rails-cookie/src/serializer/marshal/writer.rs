//! The Marshal writer: the bytes Ruby 3.1's `Marshal.dump` writes for the same value.
//!
//! The value model has no object identity, so the writer links (`@`) only where Ruby itself would share one
//! object between places for *equal* values, which is the case for values Ruby interns:
//!
//! * Hash keys that are plain Strings (no instance variables besides the encoding): `Hash#[]=` (and so
//!   `Marshal.load`) replaces them with the interned "fstring", so equal keys in different Hashes are one object
//!   (`[{"a"=>1},{"a"=>2}]` → the second key is `@\x07`). Equality includes the encoding.
//! * A `Time`'s zone name is an interned string too, shared with equal Hash keys.
//! * Flonums: on 64-bit Ruby most Floats are immediates, so equal ones are one object (`[1.5, 1.5]` →
//!   `f\x081.5@\x06`); `-0.0`, NaN, the infinities and magnitudes outside about 2^±255 are heap Floats and are
//!   written again each time.
//! * The name of a non-UTF-8/US-ASCII/binary encoding (`encoding` ivar) is written once per dump.
//!
//! Anything else Ruby would link only because it is the same object (a String put in two places) is written
//! twice; Ruby loads a value equal to the original.

use std::collections::HashMap;

use num_bigint::{BigInt, Sign};

use super::time;
use crate::error::Error;
use crate::value::{Encoding, Hash, Object, RString, RubyTime, Value};

/// How deep the writer recurses before refusing: a Value built in Rust can be arbitrarily deep, and the writer
/// recurses once per level (about 2 KiB of stack per level in a debug build). Four times the reader's default.
const MAX_DEPTH: usize = 256;

/// Writes `value` as a Marshal 4.8 stream, version bytes included.
pub(super) fn dump(value: &Value) -> Result<Vec<u8>, Error> {
    let mut writer = Writer::default();
    writer.out.extend_from_slice(&super::MARSHAL_PREFIX);
    writer.value(value, 0)?;
    Ok(writer.out)
}

fn error(reason: impl std::fmt::Display) -> Error {
    Error::serializer("marshal", reason)
}

/// The output and the tables Ruby keeps while dumping.
#[derive(Debug, Default)]
struct Writer {
    out: Vec<u8>,
    /// Symbol table: name → index for `;` links.
    symbols: HashMap<String, usize>,
    /// Number of objects written so far (the next object's `@` index).
    objects: usize,
    /// Flonums written so far: bits → object index.
    flonums: HashMap<u64, usize>,
    /// Interned strings written so far (Hash keys, zone names): (bytes, encoding name) → object index.
    fstrings: HashMap<(Vec<u8>, String), usize>,
    /// Encoding names written so far: name → object index. Matched exactly, not case-insensitively like Ruby's
    /// table: Ruby only ever writes one (canonical) spelling per encoding, so the output is the same for its data,
    /// while a value read from arbitrary bytes may hold two spellings, and each must read back as itself.
    encodings: HashMap<String, usize>,
}

/// Whether Ruby (64-bit) stores this Float as an immediate "flonum" (`rb_float_new_inline`).
fn is_flonum(f: f64) -> bool {
    let bits = f.to_bits();
    let top = (bits >> 60) & 7;
    bits == 0 || (bits != 0x3000_0000_0000_0000 && (top == 3 || top == 4))
}

/// `w_float`'s text: shortest round-trip digits, `e` notation when the decimal point is more than 3 places left
/// of the digits or right of them, `-0`, `inf`, `-inf`, `nan`.
pub(super) fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like `ruby_dtoa` mode 0: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exp.parse::<i64>().unwrap_or(0) + 1;
    let digs = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if decpt < -3 || decpt > digs {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push_str(&format!("e{}", decpt - 1));
    } else if decpt > 0 {
        let (int, frac) = digits.split_at(usize::try_from(decpt).unwrap_or(0));
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str("0.");
        for _ in 0..-decpt {
            out.push('0');
        }
        out.push_str(&digits);
    }
    out
}

impl Writer {
    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// `w_long`: Ruby refuses anything outside 32 bits.
    fn long(&mut self, x: i64) -> Result<(), Error> {
        if i32::try_from(x).is_err() {
            return Err(error("length or integer does not fit Marshal's 32-bit packed form"));
        }
        match x {
            0 => self.byte(0),
            1..=122 => self.byte(u8::try_from(x + 5).unwrap_or(0)),
            -123..=-1 => self.byte((x - 5).to_le_bytes()[0]),
            _ => {
                let le = x.to_le_bytes();
                let mut n = 1;
                while n < 4 {
                    let rest = x >> (8 * n);
                    if rest == 0 || rest == -1 {
                        break;
                    }
                    n += 1;
                }
                let n_i8 = i8::try_from(n).unwrap_or(4);
                self.byte(if x < 0 { (-n_i8).to_le_bytes()[0] } else { n_i8.to_le_bytes()[0] });
                self.out.extend_from_slice(le.get(..n).unwrap_or_default());
            }
        }
        Ok(())
    }

    fn len(&mut self, n: usize) -> Result<(), Error> {
        self.long(i64::try_from(n).map_err(|_| error("length too large"))?)
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.len(bytes.len())?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Takes the next object index (`w_remember`).
    fn remember(&mut self) -> usize {
        self.objects += 1;
        self.objects - 1
    }

    fn link(&mut self, index: usize) -> Result<(), Error> {
        self.byte(b'@');
        self.len(index)
    }

    /// `w_symbol`: a link if already written, else `:` + name, with an `I` wrapper and `E` for a non-ASCII name.
    fn symbol(&mut self, name: &str) -> Result<(), Error> {
        if let Some(&index) = self.symbols.get(name) {
            self.byte(b';');
            return self.len(index);
        }
        let ascii = name.is_ascii();
        if !ascii {
            self.byte(b'I');
        }
        self.byte(b':');
        self.bytes(name.as_bytes())?;
        self.symbols.insert(name.to_owned(), self.symbols.len());
        if !ascii {
            self.long(1)?;
            self.encoding(&Encoding::Utf8)?;
        }
        Ok(())
    }

    /// `w_encoding`: the encoding ivar (name and value) of a String, Regexp or Symbol; nothing for binary.
    fn encoding(&mut self, encoding: &Encoding) -> Result<(), Error> {
        match encoding {
            Encoding::Binary => {}
            Encoding::Utf8 => {
                self.symbol("E")?;
                self.byte(b'T');
            }
            Encoding::UsAscii => {
                self.symbol("E")?;
                self.byte(b'F');
            }
            Encoding::Other(name) => {
                self.symbol("encoding")?;
                self.encoding_name(name)?;
            }
        }
        Ok(())
    }

    /// An encoding name: a binary String object, written once per dump and linked afterwards.
    fn encoding_name(&mut self, name: &str) -> Result<(), Error> {
        if let Some(&index) = self.encodings.get(name) {
            return self.link(index);
        }
        let index = self.remember();
        self.encodings.insert(name.to_owned(), index);
        self.byte(b'"');
        self.bytes(name.as_bytes())
    }

    fn ivar_list(&mut self, ivars: &[(String, Value)], depth: usize) -> Result<(), Error> {
        for (name, value) in ivars {
            self.symbol(name)?;
            self.value(value, depth + 1)?;
        }
        Ok(())
    }

    /// A String (or a String subclass when `class` is given): `I`, `C`, `"`, bytes, then encoding and ivars.
    fn string(
        &mut self,
        bytes: &[u8],
        encoding: &Encoding,
        ivars: &[(String, Value)],
        class: Option<&str>,
        depth: usize,
    ) -> Result<usize, Error> {
        let index = self.remember();
        let count = ivars.len() + usize::from(*encoding != Encoding::Binary);
        if count > 0 {
            self.byte(b'I');
        }
        if let Some(class) = class {
            self.byte(b'C');
            self.symbol(class)?;
        }
        self.byte(b'"');
        self.bytes(bytes)?;
        if count > 0 {
            self.len(count)?;
            self.encoding(encoding)?;
            self.ivar_list(ivars, depth)?;
        }
        Ok(index)
    }

    fn regexp(
        &mut self,
        source: &RString,
        options: u8,
        class: Option<&str>,
        depth: usize,
    ) -> Result<(), Error> {
        self.remember();
        let count = source.ivars.len() + usize::from(source.encoding != Encoding::Binary);
        if count > 0 {
            self.byte(b'I');
        }
        if let Some(class) = class {
            self.byte(b'C');
            self.symbol(class)?;
        }
        self.byte(b'/');
        self.bytes(&source.bytes)?;
        self.byte(options);
        if count > 0 {
            self.len(count)?;
            self.encoding(&source.encoding)?;
            self.ivar_list(&source.ivars, depth)?;
        }
        Ok(())
    }

    /// A String that Ruby interns (a Hash key, a zone name): linked to its first appearance.
    fn fstring(&mut self, bytes: &[u8], encoding: &Encoding, depth: usize) -> Result<(), Error> {
        let key = (bytes.to_vec(), encoding.name().to_owned());
        if let Some(&index) = self.fstrings.get(&key) {
            return self.link(index);
        }
        let index = self.string(bytes, encoding, &[], None, depth)?;
        self.fstrings.insert(key, index);
        Ok(())
    }

    fn hash(&mut self, hash: &Hash, class: Option<&str>, depth: usize) -> Result<(), Error> {
        self.remember();
        if let Some(class) = class {
            self.byte(b'C');
            self.symbol(class)?;
        }
        let default = hash.default.as_deref().filter(|d| !d.is_nil());
        self.byte(if default.is_some() { b'}' } else { b'{' });
        self.len(hash.entries.len())?;
        for (key, value) in &hash.entries {
            match key {
                Value::String(s) => self.fstring(s.as_bytes(), &Encoding::Utf8, depth + 1)?,
                Value::RubyString(s) if s.ivars.is_empty() => {
                    self.fstring(&s.bytes, &s.encoding, depth + 1)?
                }
                _ => self.value(key, depth + 1)?,
            }
            self.value(value, depth + 1)?;
        }
        if let Some(default) = default {
            self.value(default, depth + 1)?;
        }
        Ok(())
    }

    fn array(&mut self, items: &[Value], class: Option<&str>, depth: usize) -> Result<(), Error> {
        self.remember();
        if let Some(class) = class {
            self.byte(b'C');
            self.symbol(class)?;
        }
        self.byte(b'[');
        self.len(items.len())?;
        for item in items {
            self.value(item, depth + 1)?;
        }
        Ok(())
    }

    fn integer(&mut self, n: &BigInt) -> Result<(), Error> {
        if let Ok(small) = i64::try_from(n) {
            if (-(1 << 30)..(1 << 30)).contains(&small) {
                self.byte(b'i');
                return self.long(small);
            }
        }
        self.remember();
        self.byte(b'l');
        let (sign, mut magnitude) = n.to_bytes_le();
        self.byte(if sign == Sign::Minus { b'-' } else { b'+' });
        if magnitude.len() % 2 == 1 {
            magnitude.push(0);
        }
        self.len(magnitude.len() / 2)?;
        self.out.extend_from_slice(&magnitude);
        Ok(())
    }

    fn float(&mut self, f: f64) -> Result<(), Error> {
        if is_flonum(f) {
            if let Some(&index) = self.flonums.get(&f.to_bits()) {
                return self.link(index);
            }
            let index = self.remember();
            self.flonums.insert(f.to_bits(), index);
        } else {
            self.remember();
        }
        self.byte(b'f');
        self.bytes(float_text(f).as_bytes())
    }

    fn object(&mut self, tag: u8, object: &Object, depth: usize) -> Result<(), Error> {
        self.remember();
        self.byte(tag);
        self.symbol(&object.class)?;
        self.len(object.fields.len())?;
        self.ivar_list(&object.fields, depth)
    }

    /// `u` for `Time`: `time_mdump`'s bytes and ivars, then the Time's own object index (Ruby remembers a
    /// `_dump` object after its data).
    fn time(&mut self, time: &RubyTime, depth: usize) -> Result<(), Error> {
        let dumped = time::dump(time).map_err(error)?;
        if !time.is_utc && time.utc_offset.unsigned_abs() >= 86_400 {
            return Err(error("Time UTC offset out of range"));
        }
        let count =
            1 + usize::from(!time.is_utc) + if dumped.sub_micro_nanos.is_some() { 3 } else { 0 };
        self.byte(b'I');
        self.byte(b'u');
        self.symbol("Time")?;
        self.bytes(&dumped.bytes)?;
        self.len(count)?;
        if let Some(sub) = dumped.sub_micro_nanos {
            self.symbol("nano_num")?;
            self.integer(&BigInt::from(sub))?;
            self.symbol("nano_den")?;
            self.integer(&BigInt::from(1))?;
            self.symbol("submicro")?;
            self.remember();
            self.byte(b'"');
            self.bytes(&time::submicro(sub))?;
        }
        if !time.is_utc {
            self.symbol("offset")?;
            self.integer(&BigInt::from(time.utc_offset))?;
        }
        self.symbol("zone")?;
        let zone = if time.is_utc { Some("UTC") } else { time.zone.as_deref() };
        match zone {
            Some(zone) => {
                let encoding = if zone.is_ascii() { Encoding::UsAscii } else { Encoding::Utf8 };
                self.fstring(zone.as_bytes(), &encoding, depth + 1)?;
            }
            None => self.byte(b'0'),
        }
        self.remember();
        Ok(())
    }

    fn value(&mut self, value: &Value, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(error(format!("value nested deeper than {MAX_DEPTH}")));
        }
        match value {
            Value::Nil => self.byte(b'0'),
            Value::Bool(true) => self.byte(b'T'),
            Value::Bool(false) => self.byte(b'F'),
            Value::Integer(i) => self.integer(&BigInt::from(*i))?,
            Value::BigInteger(i) => self.integer(i)?,
            Value::Float(f) => self.float(*f)?,
            Value::String(s) => {
                self.string(s.as_bytes(), &Encoding::Utf8, &[], None, depth)?;
            }
            Value::RubyString(s) => {
                self.string(&s.bytes, &s.encoding, &s.ivars, None, depth)?;
            }
            Value::Symbol(name) => self.symbol(name)?,
            Value::Array(items) => self.array(items, None, depth)?,
            Value::Hash(hash) => self.hash(hash, None, depth)?,
            Value::Time(time) => self.time(time, depth)?,
            Value::Regexp { source, options } => self.regexp(source, *options, None, depth)?,
            Value::Object(object) => self.object(b'o', object, depth)?,
            Value::Struct(object) => self.object(b'S', object, depth)?,
            Value::UserClass { class, value } => match value.as_ref() {
                Value::String(s) => {
                    self.string(s.as_bytes(), &Encoding::Utf8, &[], Some(class), depth)?;
                }
                Value::RubyString(s) => {
                    self.string(&s.bytes, &s.encoding, &s.ivars, Some(class), depth)?;
                }
                Value::Regexp { source, options } => {
                    self.regexp(source, *options, Some(class), depth)?
                }
                Value::Array(items) => self.array(items, Some(class), depth)?,
                Value::Hash(hash) => self.hash(hash, Some(class), depth)?,
                _ => {
                    return Err(error("a user class can only wrap a String, Regexp, Array or Hash"))
                }
            },
            Value::UserDefined { class, data, ivars } => {
                if !ivars.is_empty() {
                    self.byte(b'I');
                }
                self.byte(b'u');
                self.symbol(class)?;
                self.bytes(data)?;
                if !ivars.is_empty() {
                    self.len(ivars.len())?;
                    for (name, value) in ivars {
                        self.symbol(name)?;
                        match (name.as_str(), value) {
                            // Encoding names are binary Strings with no ivars; anything else under that name (a
                            // hostile or odd dump) is written as the value it is, so it loads back unchanged.
                            ("encoding", Value::RubyString(s))
                                if s.encoding == Encoding::Binary && s.ivars.is_empty() =>
                            {
                                match std::str::from_utf8(&s.bytes) {
                                    Ok(encoding) => self.encoding_name(encoding)?,
                                    Err(_) => self.value(value, depth + 1)?,
                                }
                            }
                            _ => self.value(value, depth + 1)?,
                        }
                    }
                }
                self.remember();
            }
            Value::UserMarshal { class, value } => {
                self.remember();
                self.byte(b'U');
                self.symbol(class)?;
                self.value(value, depth + 1)?;
            }
            Value::Packed(p) => {
                return Err(Error::serializer(
                    "marshal",
                    format!(
                        "{} read from MessagePack has no Marshal form in this codec",
                        p.class()
                    ),
                ));
            }
            Value::ClassRef(name) => {
                self.remember();
                self.byte(b'c');
                self.bytes(name.as_bytes())?;
            }
            Value::ModuleRef(name) => {
                self.remember();
                self.byte(b'm');
                self.bytes(name.as_bytes())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_longs() {
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (1, "06"),
            (122, "7f"),
            (123, "017b"),
            (-1, "fa"),
            (-123, "80"),
            (-124, "ff84"),
            (255, "01ff"),
            (256, "020001"),
            (-256, "ff00"),
            (-257, "fefffe"),
            (65_536, "03000001"),
            ((1 << 30) - 1, "04ffffff3f"),
            (-(1 << 30), "fc000000c0"),
            (i64::from(i32::MAX), "04ffffff7f"),
        ];
        for (n, hex) in cases {
            let mut w = Writer::default();
            w.long(*n).unwrap();
            assert_eq!(hex::encode(&w.out), *hex, "{n}");
        }
        // Ruby: "long too big to dump".
        assert!(Writer::default().long(1 << 31).is_err());
    }

    #[test]
    fn flonums() {
        assert!(is_flonum(1.5));
        assert!(is_flonum(0.0));
        assert!(is_flonum(-1.5));
        assert!(is_flonum(2f64.powi(256)));
        assert!(!is_flonum(-0.0));
        assert!(!is_flonum(f64::NAN));
        assert!(!is_flonum(f64::INFINITY));
        assert!(!is_flonum(2f64.powi(300)));
        assert!(!is_flonum(2f64.powi(-255)));
        assert!(is_flonum(2f64.powi(-254)));
    }

    #[test]
    fn encoding_names_are_written_once() {
        // ruby -e 'p Marshal.dump(["x".force_encoding("Shift_JIS"), "y".force_encoding("Shift_JIS")]).unpack1("H*")'
        let sjis = |b: &[u8]| {
            Value::RubyString(RString::new(b.to_vec(), Encoding::Other("Shift_JIS".into())))
        };
        let v = Value::Array(vec![sjis(b"x"), sjis(b"y")]);
        assert_eq!(
            hex::encode(dump(&v).unwrap()),
            "04085b0749220678063a0d656e636f64696e67220e53686966745f4a49534922067906\
             3b004007"
                .replace(' ', "")
        );
    }

    #[test]
    fn refuses_what_ruby_cannot_load() {
        let bad = Value::UserClass { class: "X".into(), value: Box::new(Value::Nil) };
        assert!(dump(&bad).is_err());
        let mut t = RubyTime::utc(0, 0);
        t.nanos = 1_000_000_000;
        assert!(dump(&Value::Time(t)).is_err());
        let mut deep = Value::Nil;
        for _ in 0..=MAX_DEPTH + 1 {
            deep = Value::Array(vec![deep]);
        }
        assert!(dump(&deep).is_err());
    }
}
