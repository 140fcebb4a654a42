//! The session value model: every value a Rails session can hold, JSON and Ruby-only alike, without loss.
//!
//! JSON sessions only ever produce `Nil`, `Bool`, `Integer`, `Float`, `String`, `Array` and `Hash` with string
//! keys. Marshal (and MessagePack) sessions can also carry symbols, times, binary strings and plain Ruby objects;
//! those are kept as *data* — a class name and its fields — and never turned into live objects.

use num_bigint::BigInt;

/// A Ruby value as stored in a session.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An Integer that fits in `i64`.
    Integer(i64),
    /// An Integer outside `i64` (a Ruby Bignum, or a JSON number above `i64::MAX`).
    BigInteger(BigInt),
    /// A Float.
    Float(f64),
    /// A UTF-8 String (the common case: valid UTF-8, encoding UTF-8, no extra instance variables).
    String(String),
    /// Any other String: another encoding, invalid UTF-8 bytes, or extra instance variables.
    RubyString(RString),
    /// A Symbol.
    Symbol(String),
    /// An Array.
    Array(Vec<Value>),
    /// A Hash (keys of any type, insertion order kept).
    Hash(Hash),
    /// A `Time`.
    Time(RubyTime),
    /// A `Regexp`.
    Regexp {
        /// The pattern source.
        source: RString,
        /// Ruby's option bits (`IGNORECASE` 1, `EXTENDED` 2, `MULTILINE` 4).
        options: u8,
    },
    /// A plain object: class name and instance variables (names with their `@`).
    Object(Object),
    /// A `Struct`: class name and members in order (names without `@`).
    Struct(Object),
    /// A subclass of a core type, such as `ActiveSupport::HashWithIndifferentAccess` wrapping a Hash.
    UserClass {
        /// The subclass name.
        class: String,
        /// The core value it wraps.
        value: Box<Value>,
    },
    /// An object written with `_dump` (other than `Time`): class name and the dumped bytes.
    UserDefined {
        /// Class name.
        class: String,
        /// The string `_dump` returned.
        data: Vec<u8>,
        /// Instance variables attached to that string, including its encoding (`E` true/false or `encoding`) as
        /// Marshal wrote it; empty for a binary string.
        ivars: Vec<(String, Value)>,
    },
    /// An object written with `marshal_dump`: class name and the value `marshal_dump` returned.
    UserMarshal {
        /// Class name.
        class: String,
        /// What `marshal_dump` returned.
        value: Box<Value>,
    },
    /// A value of one of ActiveSupport's MessagePack extension types that has no other form here (`Date`,
    /// `ActiveSupport::TimeWithZone`, `Set`, `BigDecimal`, …): its class and the fields ActiveSupport packs.
    Packed(Packed),
    /// A reference to a class (`Marshal.dump(String)`).
    ClassRef(String),
    /// A reference to a module.
    ModuleRef(String),
}

/// The encoding of a Ruby String.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// `UTF-8`.
    Utf8,
    /// `US-ASCII`.
    UsAscii,
    /// `ASCII-8BIT` (binary).
    Binary,
    /// Any other named encoding.
    Other(String),
}

impl Encoding {
    /// The Ruby name of the encoding.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::UsAscii => "US-ASCII",
            Encoding::Binary => "ASCII-8BIT",
            Encoding::Other(name) => name,
        }
    }

    /// The encoding with that Ruby name.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "UTF-8" => Encoding::Utf8,
            "US-ASCII" => Encoding::UsAscii,
            "ASCII-8BIT" | "BINARY" => Encoding::Binary,
            other => Encoding::Other(other.to_owned()),
        }
    }
}

/// A Ruby String that is not plain UTF-8: its bytes, its encoding, and any extra instance variables.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RString {
    /// The raw bytes.
    pub bytes: Vec<u8>,
    /// The encoding.
    pub encoding: Encoding,
    /// Instance variables other than the encoding.
    pub ivars: Vec<(String, Value)>,
}

impl RString {
    /// A string with these bytes and encoding and no other instance variables.
    #[must_use]
    pub fn new(bytes: Vec<u8>, encoding: Encoding) -> Self {
        RString { bytes, encoding, ivars: Vec::new() }
    }
}

/// A Ruby Hash: entries in insertion order, keys of any type, and an optional default value.
///
/// Sessions are small (tens of keys), so lookups scan the entries; that beats hashing at these sizes and keeps
/// Ruby's ordering for free.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct Hash {
    /// Key/value pairs in insertion order.
    pub entries: Vec<(Value, Value)>,
    /// The default value (`Hash.new(default)`), if any.
    pub default: Option<Box<Value>>,
}

impl Hash {
    /// An empty Hash.
    #[must_use]
    pub fn new() -> Self {
        Hash::default()
    }

    /// The value under a String key (or a Symbol key of the same name, as `HashWithIndifferentAccess` would find).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// A mutable reference to the value under a String key.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(move |i| &mut self.entries[i].1)
    }

    /// Sets `key` to `value` the way Ruby's `Hash#[]=` does: an existing key keeps its place, a new one goes last.
    /// Returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((Value::String(key), value));
                None
            }
        }
    }

    /// Sets an entry with a key of any type (Ruby `Hash#[]=`).
    pub fn insert_value(&mut self, key: Value, value: Value) -> Option<Value> {
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes a String key, keeping the order of the others. Returns the removed value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the Hash has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over entries whose key is a String (or Symbol), as `(name, value)`.
    pub fn iter_str(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().filter_map(|(k, v)| k.as_key_str().map(|k| (k, v)))
    }

    fn position(&self, key: &str) -> Option<usize> {
        // A String key wins over a Symbol key of the same name, as in a session store that stringified its keys.
        self.entries
            .iter()
            .position(|(k, _)| matches!(k, Value::String(s) if s == key))
            .or_else(|| self.entries.iter().position(|(k, _)| k.as_key_str() == Some(key)))
    }
}

impl FromIterator<(String, Value)> for Hash {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut hash = Hash::new();
        for (k, v) in iter {
            hash.insert(k, v);
        }
        hash
    }
}

/// A plain Ruby object (or Struct): its class name and fields, in the order Marshal wrote them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Object {
    /// The class name.
    pub class: String,
    /// Fields: instance variables with their `@` for objects, member names for structs.
    pub fields: Vec<(String, Value)>,
}

impl Object {
    /// An object of `class` with these fields.
    #[must_use]
    pub fn new(class: impl Into<String>, fields: Vec<(String, Value)>) -> Self {
        Object { class: class.into(), fields }
    }
}

/// A value of an ActiveSupport MessagePack extension type (Rails 7.1+ `:message_pack` sessions), kept as data: the
/// class ActiveSupport registered for the type and the values its packer writes, in order. Nothing is
/// instantiated; see `docs/tagged-json.md` for the fields of each class.
///
/// ```
/// use rails_cookie::{Packed, Value};
/// // Date.new(2024, 1, 2) is packed as its Julian day.
/// let date = Packed::new("Date", vec![Value::Integer(2_460_312)])?;
/// assert_eq!(date.class(), "Date");
/// assert!(Packed::new("Date", vec![]).is_err());
/// # Ok::<(), rails_cookie::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    pub(crate) class: PackedClass,
    pub(crate) fields: Vec<Value>,
}

/// The ActiveSupport MessagePack extension types kept as [`Packed`], with their type ids (Rails 7.1–8.1;
/// `SafeBuffer` is 8.1's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PackedClass {
    BigDecimal = 2,
    Rational = 3,
    Complex = 4,
    DateTime = 5,
    Date = 6,
    TimeWithZone = 8,
    TimeZone = 9,
    Duration = 10,
    Range = 11,
    Set = 12,
    Uri = 13,
    IpAddr = 14,
    Pathname = 15,
    Regexp = 16,
    SafeBuffer = 18,
}

impl PackedClass {
    pub(crate) const ALL: [PackedClass; 15] = [
        PackedClass::BigDecimal,
        PackedClass::Rational,
        PackedClass::Complex,
        PackedClass::DateTime,
        PackedClass::Date,
        PackedClass::TimeWithZone,
        PackedClass::TimeZone,
        PackedClass::Duration,
        PackedClass::Range,
        PackedClass::Set,
        PackedClass::Uri,
        PackedClass::IpAddr,
        PackedClass::Pathname,
        PackedClass::Regexp,
        PackedClass::SafeBuffer,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            PackedClass::BigDecimal => "BigDecimal",
            PackedClass::Rational => "Rational",
            PackedClass::Complex => "Complex",
            PackedClass::DateTime => "DateTime",
            PackedClass::Date => "Date",
            PackedClass::TimeWithZone => "ActiveSupport::TimeWithZone",
            PackedClass::TimeZone => "ActiveSupport::TimeZone",
            PackedClass::Duration => "ActiveSupport::Duration",
            PackedClass::Range => "Range",
            PackedClass::Set => "Set",
            PackedClass::Uri => "URI::Generic",
            PackedClass::IpAddr => "IPAddr",
            PackedClass::Pathname => "Pathname",
            PackedClass::Regexp => "Regexp",
            PackedClass::SafeBuffer => "ActiveSupport::SafeBuffer",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<PackedClass> {
        PackedClass::ALL.into_iter().find(|c| c.name() == name)
    }

    pub(crate) fn from_type_id(id: i8) -> Option<PackedClass> {
        PackedClass::ALL.into_iter().find(|c| *c as i8 == id)
    }

    /// Whether the payload is the packed fields (`recursive: true`) rather than one raw string (`_dump`, `to_s`,
    /// the zone's name).
    pub(crate) fn recursive(self) -> bool {
        !matches!(
            self,
            PackedClass::BigDecimal
                | PackedClass::TimeZone
                | PackedClass::Uri
                | PackedClass::Pathname
                | PackedClass::Regexp
                | PackedClass::SafeBuffer
        )
    }

    /// Whether `fields` are what this class's packer writes (count and the types that matter to the unpacker).
    pub(crate) fn accepts(self, fields: &[Value]) -> bool {
        let int = |v: &Value| matches!(v, Value::Integer(_) | Value::BigInteger(_));
        let zero = |v: &Value| matches!(v, Value::Integer(0));
        let text = |v: &Value| matches!(v, Value::String(_) | Value::RubyString(_));
        // write_rational: the numerator, then the denominator unless the numerator is zero.
        let rational = |f: &[Value]| -> Option<usize> {
            match f {
                [n, ..] if zero(n) => Some(1),
                [n, d, ..] if int(n) && int(d) && !zero(d) => Some(2),
                _ => None,
            }
        };
        match (self, fields) {
            (PackedClass::Rational, f) => rational(f) == Some(f.len()),
            (PackedClass::Complex, [_, _]) => true,
            (PackedClass::DateTime, [jd, h, m, s, rest @ ..]) => {
                [jd, h, m, s].into_iter().all(int)
                    && rational(rest)
                        .is_some_and(|n| rational(&rest[n..]).is_some_and(|k| n + k == rest.len()))
            }
            (PackedClass::Date, [jd]) => int(jd),
            (PackedClass::TimeWithZone, [sec, nsec, offset, zone]) => {
                int(sec) && int(nsec) && int(offset) && text(zone)
            }
            (PackedClass::Duration, [_, Value::Array(parts)]) => parts.len() == 7,
            (PackedClass::Range, [_, _, Value::Bool(_)]) => true,
            (PackedClass::Set, [Value::Array(_)]) => true,
            (PackedClass::IpAddr, [s]) => text(s),
            (c, [s]) if !c.recursive() => text(s),
            _ => false,
        }
    }
}

impl Packed {
    /// A packed value of the class ActiveSupport registered (`"Date"`, `"ActiveSupport::TimeWithZone"`, `"Set"`,
    /// …), with the fields its packer writes; refused when the class is not one of them or the fields do not fit.
    pub fn new(class: &str, fields: Vec<Value>) -> crate::Result<Packed> {
        let class = PackedClass::from_name(class).ok_or_else(|| {
            crate::Error::serializer(
                "message_pack",
                format!("{class:?} is not an ActiveSupport MessagePack extension type kept as packed fields"),
            )
        })?;
        if !class.accepts(&fields) {
            return Err(crate::Error::serializer(
                "message_pack",
                format!("these are not the fields ActiveSupport packs for {}", class.name()),
            ));
        }
        Ok(Packed { class, fields })
    }

    /// The Ruby class name.
    #[must_use]
    pub fn class(&self) -> &'static str {
        self.class.name()
    }

    /// The packed fields, in the packer's order.
    #[must_use]
    pub fn fields(&self) -> &[Value] {
        &self.fields
    }
}

/// A Ruby `Time`: an instant, its UTC offset, and whether it is a UTC time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RubyTime {
    /// Seconds since the Unix epoch.
    pub unix_seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset from UTC in seconds (0 for UTC times).
    pub utc_offset: i32,
    /// Whether this is a UTC time (`Time#utc?`); Marshal and JSON write UTC times differently.
    pub is_utc: bool,
    /// The zone abbreviation (`Time#zone`), when the time carries one and is not UTC.
    pub zone: Option<String>,
}

impl RubyTime {
    /// A UTC time.
    #[must_use]
    pub fn utc(unix_seconds: i64, nanos: u32) -> Self {
        RubyTime { unix_seconds, nanos, utc_offset: 0, is_utc: true, zone: None }
    }

    /// A time with a fixed UTC offset in seconds and no zone name.
    #[must_use]
    pub fn with_offset(unix_seconds: i64, nanos: u32, utc_offset: i32) -> Self {
        RubyTime { unix_seconds, nanos, utc_offset, is_utc: false, zone: None }
    }

    /// The local date and time of this instant at its UTC offset.
    pub(crate) fn local(&self) -> Option<time::PrimitiveDateTime> {
        let utc = time::OffsetDateTime::from_unix_timestamp(self.unix_seconds).ok()?;
        let offset = time::UtcOffset::from_whole_seconds(self.utc_offset).ok()?;
        let local = utc.to_offset(offset).replace_nanosecond(self.nanos).ok()?;
        Some(time::PrimitiveDateTime::new(local.date(), local.time()))
    }

    /// `Time#xmlschema(fraction_digits)`: `2024-01-02T03:04:05.500Z` for UTC, `…+05:30` otherwise.
    #[must_use]
    pub fn xmlschema(&self, fraction_digits: usize) -> String {
        let Some(local) = self.local() else {
            return String::new();
        };
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            local.year(),
            u8::from(local.month()),
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        );
        if fraction_digits > 0 {
            let nanos = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(&nanos[..fraction_digits.min(9)]);
        }
        if self.is_utc {
            out.push('Z');
        } else {
            let sign = if self.utc_offset < 0 { '-' } else { '+' };
            let abs = self.utc_offset.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
        }
        out
    }
}

impl Value {
    /// The Hash inside this value, looking through a `UserClass` wrapper such as `HashWithIndifferentAccess`.
    #[must_use]
    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            Value::Hash(h) => Some(h),
            Value::UserClass { value, .. } => value.as_hash(),
            _ => None,
        }
    }

    /// Mutable access to the Hash inside this value.
    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(h) => Some(h),
            Value::UserClass { value, .. } => value.as_hash_mut(),
            _ => None,
        }
    }

    /// The Array inside this value.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            Value::UserClass { value, .. } => value.as_array(),
            _ => None,
        }
    }

    /// The text of a String (any encoding, if its bytes are UTF-8) or a Symbol.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Symbol(s) => Some(s),
            Value::RubyString(r) => std::str::from_utf8(&r.bytes).ok(),
            Value::UserClass { value, .. } => value.as_str(),
            _ => None,
        }
    }

    /// The Integer, if this is one that fits `i64`.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// Whether this is `nil`.
    #[must_use]
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The name this value has as a Hash key once stringified (Strings and Symbols).
    pub(crate) fn as_key_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Symbol(s) => Some(s),
            Value::RubyString(r) => std::str::from_utf8(&r.bytes).ok(),
            _ => None,
        }
    }

    /// An Integer from any `i128`, as `Integer` when it fits `i64` and `BigInteger` otherwise.
    #[must_use]
    pub fn integer(n: i128) -> Value {
        match i64::try_from(n) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::BigInteger(BigInt::from(n)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<Hash> for Value {
    fn from(h: Hash) -> Self {
        Value::Hash(h)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_position_of_existing_key() {
        let mut h = Hash::new();
        h.insert("a", 1.into());
        h.insert("b", 2.into());
        assert_eq!(h.insert("a", 3.into()), Some(Value::Integer(1)));
        let keys: Vec<_> = h.iter_str().map(|(k, _)| k.to_owned()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(h.get("a"), Some(&Value::Integer(3)));
    }

    #[test]
    fn string_key_wins_over_symbol_key() {
        let mut h = Hash::new();
        h.insert_value(Value::Symbol("k".into()), 1.into());
        h.insert_value(Value::String("k".into()), 2.into());
        assert_eq!(h.get("k"), Some(&Value::Integer(2)));
    }

    #[test]
    fn xmlschema_formats() {
        let t = RubyTime::utc(1_704_164_645, 500_000_000);
        assert_eq!(t.xmlschema(3), "2024-01-02T03:04:05.500Z");
        let t = RubyTime::with_offset(1_704_164_645, 0, 19_800);
        assert_eq!(t.xmlschema(3), "2024-01-02T08:34:05.000+05:30");
        let t = RubyTime::with_offset(1_704_164_645, 0, -3600);
        assert_eq!(t.xmlschema(0), "2024-01-02T02:04:05-01:00");
    }
}
