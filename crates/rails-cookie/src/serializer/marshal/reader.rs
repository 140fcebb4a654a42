//! The Marshal reader: a bounded cursor over the input that turns a Marshal 4.8 stream into a [`Value`].
//!
//! Every length is checked against the bytes that remain before anything is allocated, nesting is limited by
//! [`Limits::max_depth`] and the number of values produced (object links included, counted at their full size)
//! by [`Limits::max_nodes`]. Nothing is ever instantiated: class names are kept as text.
//!
//! Object links (`@`) need the value of an earlier object. Keeping a copy of every object in case it is linked
//! later would copy each subtree once per level it is nested in, so the stream is read once without keeping
//! anything, noting which objects are linked to; only if there are links is it read a second time, keeping
//! copies of just those objects.

use num_bigint::{BigInt, Sign};

use super::time;
use super::Limits;
use crate::error::Error;
use crate::value::{Encoding, Hash, Object, RString, RubyTime, Value};

/// Reads a whole Marshal stream (version bytes included); trailing bytes are an error.
pub(super) fn load(bytes: &[u8], limits: &Limits) -> Result<Value, Error> {
    let mut first = Reader::new(bytes, limits, None);
    let value = first.read_document()?;
    if first.linked.is_empty() {
        return Ok(value);
    }
    let mut keep = vec![false; first.objects.len()];
    for index in first.linked {
        if let Some(k) = keep.get_mut(index) {
            *k = true;
        }
    }
    Reader::new(bytes, limits, Some(keep)).read_document()
}

/// An entry of the object table.
#[derive(Debug)]
enum Slot {
    /// Being read: a link to it would be a cycle.
    Pending,
    /// Read; its value is kept only if a link needs it.
    Done(Option<Value>),
}

/// Instance variables as read: names and values in stream order.
type Ivars = Vec<(String, Value)>;

/// The cursor and the tables of one read.
#[derive(Debug)]
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// Values produced so far (each link counted at the size of what it copies).
    nodes: usize,
    /// The symbol table (`;` links index it).
    symbols: Vec<String>,
    /// The object table (`@` links index it).
    objects: Vec<Slot>,
    /// Second pass: which objects to keep a copy of. `None` in the first pass.
    keep: Option<Vec<bool>>,
    /// First pass: objects that links point to.
    linked: Vec<usize>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], limits: &'a Limits, keep: Option<Vec<bool>>) -> Self {
        Reader {
            input,
            pos: 0,
            limits,
            nodes: 0,
            symbols: Vec::new(),
            objects: Vec::new(),
            keep,
            linked: Vec::new(),
        }
    }

    fn error(&self, at: usize, what: impl std::fmt::Display) -> Error {
        Error::serializer("marshal", format!("{what} at byte {at}"))
    }

    fn read_document(&mut self) -> Result<Value, Error> {
        match self.input {
            [4, 8, ..] => self.pos = 2,
            [_, _, ..] => return Err(self.error(0, "unsupported Marshal version (expected 4.8)")),
            _ => return Err(self.error(0, "input too short for a Marshal header")),
        }
        let value = self.read_value(0)?;
        if self.pos != self.input.len() {
            return Err(self.error(self.pos, "trailing data after the Marshal value"));
        }
        Ok(value)
    }

    // ---- the cursor ------------------------------------------------------------------------------------

    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or_else(|| self.error(self.pos, "unexpected end of input"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let input: &'a [u8] = self.input;
        let end = self.pos.checked_add(len).filter(|&end| end <= input.len());
        let bytes = end.and_then(|end| input.get(self.pos..end)).ok_or_else(|| {
            self.error(self.pos, format!("length {len} runs past the end of input"))
        })?;
        self.pos += len;
        Ok(bytes)
    }

    fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    /// A packed long (`r_long`): one byte for −123 ..= 122, else a length byte and 1–8 little-endian bytes.
    fn long(&mut self) -> Result<i64, Error> {
        let at = self.pos;
        let c = self.byte()? as i8;
        match c {
            0 => Ok(0),
            5..=127 => Ok(i64::from(c) - 5),
            -128..=-5 => Ok(i64::from(c) + 5),
            1..=4 | -4..=-1 => {
                let n = usize::from(c.unsigned_abs());
                let bytes = self.take(n)?;
                let mut le = if c > 0 { [0u8; 8] } else { [0xffu8; 8] };
                le.get_mut(..n)
                    .ok_or_else(|| self.error(at, "bad packed integer"))?
                    .copy_from_slice(bytes);
                Ok(i64::from_le_bytes(le))
            }
        }
    }

    /// A non-negative packed long used as a count of items that each take at least `min_bytes` bytes.
    fn count(&mut self, min_bytes: usize) -> Result<usize, Error> {
        let at = self.pos;
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.error(at, "negative length"))?;
        if n.checked_mul(min_bytes).is_none_or(|need| need > self.remaining()) {
            return Err(self.error(at, format!("length {n} runs past the end of input")));
        }
        Ok(n)
    }

    /// Length-prefixed bytes (`r_bytes`).
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.count(1)?;
        self.take(len)
    }

    fn utf8(&self, at: usize, bytes: &[u8], what: &str) -> Result<String, Error> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.error(at, format!("{what} is not valid UTF-8")))
    }

    // ---- tables ----------------------------------------------------------------------------------------

    fn reserve(&mut self) -> usize {
        self.objects.push(Slot::Pending);
        self.objects.len() - 1
    }

    fn fill(&mut self, index: usize, value: &Value) {
        let keep = self.keep.as_ref().is_some_and(|keep| keep.get(index).copied().unwrap_or(false));
        if let Some(slot) = self.objects.get_mut(index) {
            *slot = Slot::Done(keep.then(|| value.clone()));
        }
    }

    fn count_node(&mut self, n: usize) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(self.error(self.pos, format!("more than {} values", self.limits.max_nodes)));
        }
        Ok(())
    }

    /// A symbol where the grammar requires one (class and ivar names): `:`, `;` or `I:`.
    fn symbol(&mut self, depth: usize) -> Result<String, Error> {
        let at = self.pos;
        match self.byte()? {
            b':' => self.symbol_body(false, depth),
            b';' => self.symlink(),
            b'I' => match self.byte()? {
                b':' => self.symbol_body(true, depth),
                _ => Err(self.error(at, "expected a symbol")),
            },
            _ => Err(self.error(at, "expected a symbol")),
        }
    }

    /// A new symbol (`r_symreal`): it takes its table index before its encoding ivar is read.
    fn symbol_body(&mut self, ivar: bool, depth: usize) -> Result<String, Error> {
        let at = self.pos;
        let bytes = self.bytes()?;
        let name = self.utf8(at, bytes, "symbol")?;
        let index = self.symbols.len();
        self.symbols.push(name);
        if ivar {
            // Only the encoding of the symbol's name; a UTF-8 name is all the model can hold.
            self.ivars(depth)?;
        }
        self.symbols.get(index).cloned().ok_or_else(|| self.error(at, "symbol table"))
    }

    fn symlink(&mut self) -> Result<String, Error> {
        let at = self.pos;
        let index = self.long()?;
        usize::try_from(index)
            .ok()
            .and_then(|i| self.symbols.get(i))
            .cloned()
            .ok_or_else(|| self.error(at, format!("symbol link {index} to a symbol not yet read")))
    }

    /// A list of instance variables: count, then symbol/value pairs.
    fn ivars(&mut self, depth: usize) -> Result<Ivars, Error> {
        let n = self.count(2)?;
        let mut ivars = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.symbol(depth)?;
            let value = self.read_value(depth + 1)?;
            ivars.push((name, value));
        }
        Ok(ivars)
    }

    /// Splits a String's (or Regexp's) ivars into its encoding and the others.
    fn encoding(&self, at: usize, ivars: Ivars) -> Result<(Encoding, Ivars), Error> {
        let mut encoding = Encoding::Binary;
        let mut rest = Vec::with_capacity(ivars.len());
        for (name, value) in ivars {
            match (name.as_str(), &value) {
                ("E", Value::Bool(true)) => encoding = Encoding::Utf8,
                ("E", Value::Bool(false)) => encoding = Encoding::UsAscii,
                ("E", _) => return Err(self.error(at, "encoding flag E is not true or false")),
                ("encoding", _) => match value.as_str() {
                    Some(name) => encoding = Encoding::from_name(name),
                    // First pass: a linked encoding name reads as a placeholder `nil` (see [`load`]).
                    None if value.is_nil() && self.keep.is_none() => {}
                    None => return Err(self.error(at, "encoding name is not a string")),
                },
                _ => rest.push((name, value)),
            }
        }
        Ok((encoding, rest))
    }

    // ---- values ----------------------------------------------------------------------------------------

    fn read_value(&mut self, depth: usize) -> Result<Value, Error> {
        let at = self.pos;
        if depth > self.limits.max_depth {
            return Err(self.error(at, format!("nesting deeper than {}", self.limits.max_depth)));
        }
        self.count_node(1)?;
        let tag = self.byte()?;
        self.read_tagged(tag, at, depth, false)
    }

    /// The value after its type byte. `ivar`: an `I` wrapper precedes it, so its instance variables follow
    /// (read here, where Ruby reads them, which matters for object numbering).
    fn read_tagged(
        &mut self,
        tag: u8,
        at: usize,
        depth: usize,
        ivar: bool,
    ) -> Result<Value, Error> {
        let value = match tag {
            b'I' if !ivar => {
                let inner = self.pos;
                let tag = self.byte()?;
                return self.read_tagged(tag, inner, depth, true);
            }
            b'"' => {
                let bytes = self.bytes()?.to_vec();
                let index = self.reserve();
                let ivars = if ivar { self.ivars(depth)? } else { Vec::new() };
                let (encoding, ivars) = self.encoding(at, ivars)?;
                let value = string_value(bytes, encoding, ivars);
                self.fill(index, &value);
                return Ok(value);
            }
            b':' => return Ok(Value::Symbol(self.symbol_body(ivar, depth)?)),
            b'/' => {
                let bytes = self.bytes()?.to_vec();
                let options = self.byte()?;
                let index = self.reserve();
                let ivars = if ivar { self.ivars(depth)? } else { Vec::new() };
                let (encoding, ivars) = self.encoding(at, ivars)?;
                let value = Value::Regexp { source: RString { bytes, encoding, ivars }, options };
                self.fill(index, &value);
                return Ok(value);
            }
            b'u' => {
                let class = self.symbol(depth)?;
                let data = self.bytes()?.to_vec();
                let ivars = if ivar { self.ivars(depth)? } else { Vec::new() };
                let index = self.reserve();
                let value = user_defined(class, data, ivars);
                self.fill(index, &value);
                return Ok(value);
            }
            b'C' => {
                let class = self.symbol(depth)?;
                let index = self.objects.len();
                let inner_at = self.pos;
                let tag = self.byte()?;
                let inner = self.read_tagged(tag, inner_at, depth, ivar)?;
                if !matches!(
                    inner,
                    Value::String(_)
                        | Value::RubyString(_)
                        | Value::Regexp { .. }
                        | Value::Array(_)
                        | Value::Hash(_)
                ) {
                    return Err(self.error(
                        inner_at,
                        "user class wraps something other than String, Regexp, Array or Hash",
                    ));
                }
                let value = Value::UserClass { class, value: Box::new(inner) };
                self.fill(index, &value);
                return Ok(value);
            }
            _ if ivar => {
                return Err(self.error(at, "instance variables on this type are not supported"));
            }
            b'0' => Value::Nil,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' => Value::Integer(self.long()?),
            b';' => Value::Symbol(self.symlink()?),
            b'@' => self.link(at, depth)?,
            b'l' => {
                let sign = match self.byte()? {
                    b'+' => Sign::Plus,
                    b'-' => Sign::Minus,
                    _ => return Err(self.error(at, "bignum sign is not + or -")),
                };
                let words = self.count(2)?;
                let bytes = self.take(words * 2)?;
                let big = BigInt::from_bytes_le(sign, bytes);
                let value = match i64::try_from(&big) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => Value::BigInteger(big),
                };
                let index = self.reserve();
                self.fill(index, &value);
                value
            }
            b'f' => {
                let text = self.bytes()?;
                let value = Value::Float(
                    parse_float(text).ok_or_else(|| self.error(at, "unreadable float"))?,
                );
                let index = self.reserve();
                self.fill(index, &value);
                value
            }
            b'[' => {
                let n = self.count(1)?;
                let index = self.reserve();
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.read_value(depth + 1)?);
                }
                let value = Value::Array(items);
                self.fill(index, &value);
                value
            }
            b'{' | b'}' => {
                let n = self.count(2)?;
                let index = self.reserve();
                let mut hash = Hash::new();
                hash.entries.reserve(n);
                for _ in 0..n {
                    let key = self.read_value(depth + 1)?;
                    let value = self.read_value(depth + 1)?;
                    hash.entries.push((key, value));
                }
                if tag == b'}' {
                    // Ruby writes `}` only for a non-nil default; a nil default is no default.
                    let default = self.read_value(depth + 1)?;
                    hash.default = (!default.is_nil()).then(|| Box::new(default));
                }
                let value = Value::Hash(hash);
                self.fill(index, &value);
                value
            }
            b'o' | b'S' => {
                let class = self.symbol(depth)?;
                let n = self.count(2)?;
                let index = self.reserve();
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = self.symbol(depth)?;
                    let value = self.read_value(depth + 1)?;
                    fields.push((name, value));
                }
                let object = Object::new(class, fields);
                let value = if tag == b'o' { Value::Object(object) } else { Value::Struct(object) };
                self.fill(index, &value);
                value
            }
            b'U' => {
                let class = self.symbol(depth)?;
                let index = self.reserve();
                let inner = self.read_value(depth + 1)?;
                let value = Value::UserMarshal { class, value: Box::new(inner) };
                self.fill(index, &value);
                value
            }
            b'c' | b'm' | b'M' => {
                let name_at = self.pos;
                let bytes = self.bytes()?;
                let name = self.utf8(name_at, bytes, "class name")?;
                let value =
                    if tag == b'c' { Value::ClassRef(name) } else { Value::ModuleRef(name) };
                let index = self.reserve();
                self.fill(index, &value);
                value
            }
            b'e' => {
                return Err(
                    self.error(at, "objects extended with modules (type e) are not supported")
                )
            }
            b'd' => return Err(self.error(at, "T_DATA objects (type d) are not supported")),
            _ => return Err(self.error(at, "unknown Marshal type byte")),
        };
        Ok(value)
    }

    /// An object link: a copy of the earlier object, counted at its full size against the limits.
    fn link(&mut self, at: usize, depth: usize) -> Result<Value, Error> {
        let raw = self.long()?;
        let index = usize::try_from(raw).map_err(|_| self.error(at, "negative object link"))?;
        let value = match self.objects.get(index) {
            None => {
                return Err(self.error(at, format!("object link {index} to an object not yet read")))
            }
            Some(Slot::Pending) => return Err(self.error(at, "recursive object link (a cycle)")),
            Some(Slot::Done(Some(value))) => value.clone(),
            Some(Slot::Done(None)) => {
                if self.keep.is_some() {
                    return Err(self.error(at, "object link to an object that was not kept"));
                }
                self.linked.push(index);
                return Ok(Value::Nil);
            }
        };
        let (nodes, height) = size(&value);
        if depth.saturating_add(height) > self.limits.max_depth {
            return Err(self.error(at, format!("nesting deeper than {}", self.limits.max_depth)));
        }
        self.count_node(nodes.saturating_sub(1))?;
        Ok(value)
    }
}

/// A String value: [`Value::String`] when it is plain UTF-8, [`Value::RubyString`] otherwise.
fn string_value(bytes: Vec<u8>, encoding: Encoding, ivars: Ivars) -> Value {
    if encoding == Encoding::Utf8 && ivars.is_empty() {
        match String::from_utf8(bytes) {
            Ok(s) => Value::String(s),
            Err(e) => Value::RubyString(RString::new(e.into_bytes(), Encoding::Utf8)),
        }
    } else {
        Value::RubyString(RString { bytes, encoding, ivars })
    }
}

/// `u`: a [`Value::Time`] when the class is `Time` and its dump is one this model holds exactly; otherwise a
/// [`Value::UserDefined`] keeping the bytes and every ivar (its encoding `E`/`encoding` included), so nothing
/// is lost.
fn user_defined(class: String, data: Vec<u8>, ivars: Ivars) -> Value {
    if class == "Time" {
        if let Some(time) = ruby_time(&data, &ivars) {
            return Value::Time(time);
        }
    }
    Value::UserDefined { class, data, ivars }
}

/// Decodes a `Time` dump (see [`time`]); `None` for anything [`RubyTime`] cannot hold exactly (rational
/// sub-nanoseconds or offsets, unknown ivars, an implicit local offset, the pre-1.9 layout).
fn ruby_time(data: &[u8], ivars: &Ivars) -> Option<RubyTime> {
    let (seconds, usec, is_utc) = time::load(data)?;
    let mut sub_nanos: Option<i64> = None;
    let mut nano_den: Option<i64> = None;
    let mut offset: Option<i64> = None;
    let mut zone: Option<Option<String>> = None;
    for (name, value) in ivars {
        match (name.as_str(), value) {
            ("nano_num", Value::Integer(n)) => sub_nanos = Some(*n),
            ("nano_den", Value::Integer(d)) => nano_den = Some(*d),
            ("submicro", Value::RubyString(_)) => {}
            ("offset", Value::Integer(o)) => offset = Some(*o),
            ("zone", Value::Nil) => zone = Some(None),
            ("zone", z) => zone = Some(Some(z.as_str()?.to_owned())),
            _ => return None,
        }
    }
    let sub = match (sub_nanos, nano_den) {
        (None, None) => submicro_nanos(ivars)?,
        (Some(n), Some(1)) if (0..1000).contains(&n) => u32::try_from(n).ok()?,
        _ => return None,
    };
    let nanos = usec.checked_mul(1000)?.checked_add(sub)?;
    let time = if is_utc {
        let zone_ok = match &zone {
            None | Some(None) => true,
            Some(Some(z)) => z == "UTC",
        };
        if offset.is_some() || !zone_ok {
            return None;
        }
        RubyTime::utc(seconds, nanos)
    } else {
        let offset = i32::try_from(offset?).ok().filter(|o| o.unsigned_abs() < 86_400)?;
        let mut time = RubyTime::with_offset(seconds, nanos, offset);
        time.zone = zone.flatten();
        time
    };
    Some(time)
}

/// Nanoseconds below the microsecond from a `submicro` ivar alone (dumps without `nano_num`).
fn submicro_nanos(ivars: &Ivars) -> Option<u32> {
    let Some((_, Value::RubyString(s))) = ivars.iter().find(|(name, _)| name == "submicro") else {
        return Some(0);
    };
    let digit = |d: u8| (d < 10).then_some(u32::from(d));
    let mut nanos = 0;
    if let Some(&b) = s.bytes.first() {
        nanos += digit(b >> 4)? * 100 + digit(b & 0xf)? * 10;
    }
    if let Some(&b) = s.bytes.get(1) {
        nanos += digit(b >> 4)?;
    }
    Some(nanos)
}

/// Float text as `w_float` writes it (`1.5`, `1e20`, `-0`, `inf`, `-inf`, `nan`); old dumps may carry extra
/// mantissa bytes after a NUL, which are ignored.
fn parse_float(text: &[u8]) -> Option<f64> {
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    let text = std::str::from_utf8(text).ok()?;
    match text {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ if text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

/// Number of values in `value` and its height (0 for a scalar), bounded by the limits it was read under.
fn size(value: &Value) -> (usize, usize) {
    let mut nodes: usize = 1;
    let mut height = 0;
    let mut add = |v: &Value| {
        let (n, h) = size(v);
        nodes = nodes.saturating_add(n);
        height = height.max(h + 1);
    };
    match value {
        Value::Array(items) => items.iter().for_each(&mut add),
        Value::Hash(hash) => {
            for (k, v) in &hash.entries {
                add(k);
                add(v);
            }
            if let Some(default) = &hash.default {
                add(default);
            }
        }
        Value::RubyString(s) | Value::Regexp { source: s, .. } => {
            s.ivars.iter().for_each(|(_, v)| add(v))
        }
        Value::Object(o) | Value::Struct(o) => o.fields.iter().for_each(|(_, v)| add(v)),
        Value::UserDefined { ivars, .. } => ivars.iter().for_each(|(_, v)| add(v)),
        Value::UserClass { value, .. } | Value::UserMarshal { value, .. } => add(value),
        _ => {}
    }
    (nodes, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(bytes: &[u8]) -> Result<i64, Error> {
        let limits = Limits::default();
        let mut reader = Reader::new(bytes, &limits, None);
        let n = reader.long()?;
        assert_eq!(reader.pos, bytes.len());
        Ok(n)
    }

    #[test]
    fn packed_longs() {
        // ruby -e '[0, 1, 122, 123, -1, -123, -124, 256, -256, 2**30 - 1, -2**30].each { |i| p Marshal.dump(i)[3..].unpack1("H*") }'
        let cases: &[(&str, i64)] = &[
            ("00", 0),
            ("06", 1),
            ("7f", 122),
            ("017b", 123),
            ("fa", -1),
            ("80", -123),
            ("ff84", -124),
            ("020001", 256),
            ("ff00", -256),
            ("04ffffff3f", (1 << 30) - 1),
            ("fc000000c0", -(1 << 30)),
        ];
        for (hex, n) in cases {
            assert_eq!(long(&hex::decode(hex).unwrap()).unwrap(), *n, "{hex}");
        }
        assert!(long(&[2, 1]).is_err());
        assert!(long(&[]).is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"1e20"), Some(1e20));
        assert_eq!(parse_float(b"-0").map(f64::is_sign_negative), Some(true));
        assert_eq!(parse_float(b"inf"), Some(f64::INFINITY));
        assert!(parse_float(b"nan").is_some_and(f64::is_nan));
        // Ruby < 1.9 appended mantissa bytes after a NUL.
        assert_eq!(parse_float(b"1.5\0\x01\x02"), Some(1.5));
        assert_eq!(parse_float(b"infinity"), None);
        assert_eq!(parse_float(b"0x10"), None);
        assert_eq!(parse_float(b""), None);
    }

    #[test]
    fn time_that_does_not_fit_the_model_stays_user_defined() {
        // ruby -e 'p Marshal.dump(Time.at(Rational(1, 3)).utc).unpack1("H*")' (in a process whose first Time
        // dump had only a zone, hence zone first): a rational nano_den of 3.
        let hex = "040849753a0954696d650d208011c015160500093a097a6f6e65492208555443063a0645463a0d6e616e6f5f6e756d6902e8033a0d6e616e6f5f64656e69083a0d7375626d6963726f22073330";
        let bytes = hex::decode(hex).unwrap();
        let value = load(&bytes, &Limits::default()).unwrap();
        assert!(
            matches!(&value, Value::UserDefined { class, ivars, .. } if class == "Time" && ivars.len() == 4)
        );
        assert_eq!(hex::encode(super::super::writer::dump(&value).unwrap()), hex);
    }

    #[test]
    fn time_ivars_in_any_order() {
        // Ruby 3.1 orders a Time's ivars by when each name was first set on any String in the process:
        // ruby -e 'Marshal.dump(Time.at(0).utc); p Marshal.dump(Time.at(1704164645, in: "+05:30")).unpack1("H*")'
        let zone_first =
            "040849753a0954696d650d43001f8000005010073a097a6f6e65303a0b6f66667365746902584d";
        let value = load(&hex::decode(zone_first).unwrap(), &Limits::default()).unwrap();
        assert_eq!(value, Value::Time(RubyTime::with_offset(1_704_164_645, 0, 19_800)));
    }
}
