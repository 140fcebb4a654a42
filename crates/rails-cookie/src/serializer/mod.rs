//! Payload serializers (`config.action_dispatch.cookies_serializer`) and the read policy each one applies.
//!
//! | setting | writes | reads (and rewrites in the current format) |
//! |---|---|---|
//! | `:json` | JSON | JSON; MessagePack (rewritten, 7.1+); Marshal refused |
//! | `:marshal` | Marshal | Marshal, JSON (6.1+ fallback), MessagePack — never rewritten |
//! | `:hybrid`, `:json_allow_marshal` | JSON | JSON; Marshal and MessagePack (rewritten) |
//! | `:message_pack` | MessagePack | MessagePack; JSON (rewritten); Marshal refused |
//! | `:message_pack_allow_marshal` | MessagePack | MessagePack; JSON and Marshal (rewritten) |
//!
//! The format of a payload is recognised as Rails 7.1 does (`SerializerWithFallback#detect_format`): `CC 80` is
//! MessagePack, `04 08` is Marshal, anything else JSON.

pub(crate) mod json;
#[cfg(feature = "marshal")]
pub(crate) mod marshal;
#[cfg(feature = "message-pack")]
pub(crate) mod message_pack;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::value::Value;

/// A `cookies_serializer` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Serializer {
    /// `:json` — the default of new apps since Rails 4.1.
    Json,
    /// `:marshal` — the framework default; common in apps upgraded from Rails 3/4.
    Marshal,
    /// `:hybrid` — reads Marshal, writes JSON: the Marshal → JSON migration setting.
    Hybrid,
    /// `:json_allow_marshal` (7.1+; what `:hybrid` means there).
    JsonAllowMarshal,
    /// `:message_pack` (7.1+).
    MessagePack,
    /// `:message_pack_allow_marshal` (7.1+).
    MessagePackAllowMarshal,
}

/// The format of a serialized payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JSON text.
    Json,
    /// Ruby Marshal 4.8 (`04 08`).
    Marshal,
    /// ActiveSupport MessagePack (`CC 80`).
    MessagePack,
}

impl Format {
    /// Recognises a payload's format from its first bytes.
    #[must_use]
    pub fn detect(payload: &[u8]) -> Format {
        match payload {
            [0xCC, 0x80, ..] => Format::MessagePack,
            [4, 8, ..] => Format::Marshal,
            _ => Format::Json,
        }
    }
}

impl Serializer {
    /// The Rails name (`json`, `marshal`, `hybrid`, `json_allow_marshal`, `message_pack`,
    /// `message_pack_allow_marshal`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Json => "json",
            Serializer::Marshal => "marshal",
            Serializer::Hybrid => "hybrid",
            Serializer::JsonAllowMarshal => "json_allow_marshal",
            Serializer::MessagePack => "message_pack",
            Serializer::MessagePackAllowMarshal => "message_pack_allow_marshal",
        }
    }

    /// The format this serializer writes.
    #[must_use]
    pub fn writes(self) -> Format {
        match self {
            Serializer::Json | Serializer::Hybrid | Serializer::JsonAllowMarshal => Format::Json,
            Serializer::Marshal => Format::Marshal,
            Serializer::MessagePack | Serializer::MessagePackAllowMarshal => Format::MessagePack,
        }
    }

    /// Whether a payload in `format` is accepted, and if so whether it must be rewritten in [`Self::writes`].
    fn accepts(self, format: Format) -> Option<bool> {
        use Format as F;
        use Serializer as S;
        match (self, format) {
            (S::Marshal, _) => Some(false),
            (_, f) if f == self.writes() => Some(false),
            (S::Json | S::MessagePack, F::Marshal) => None,
            _ => Some(true),
        }
    }

    /// Serializes a session value.
    pub fn dump(self, value: &Value) -> Result<Vec<u8>> {
        dump_format(self.writes(), value)
    }

    /// Deserializes a payload; the flag says the cookie should be rewritten in the current format.
    pub fn load(self, payload: &[u8]) -> Result<(Value, bool)> {
        self.load_in(payload, Dialect::LATEST)
    }

    /// [`Serializer::load`] as a given Rails version reads.
    pub(crate) fn load_in(self, payload: &[u8], dialect: Dialect) -> Result<(Value, bool)> {
        let format = Format::detect(payload);
        let rewrite = self.accepts(format).ok_or_else(|| {
            Error::serializer(
                "marshal",
                format!(
                    "a Marshal payload is refused by the :{} serializer (use :hybrid to migrate)",
                    self.name()
                ),
            )
        })?;
        Ok((load_format(format, payload, dialect)?, rewrite))
    }
}

/// What of the serializers' behaviour depends on the Rails version and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// `ActiveSupport::JSON` escapes.
    pub(crate) escapes: json::Escapes,
    /// Whether MessagePack knows `ActiveSupport::SafeBuffer` (extension 18, Rails 8.1+).
    pub(crate) safe_buffer: bool,
}

impl Dialect {
    /// Everything on: what reads and writes every version's values (the public `Serializer` methods).
    pub(crate) const LATEST: Dialect = Dialect { escapes: json::Escapes::ALL, safe_buffer: true };
}

fn dump_format(format: Format, value: &Value) -> Result<Vec<u8>> {
    dump_format_with(format, value, Dialect::LATEST)
}

/// Writes `value` in this serializer's format, as the Rails version of `dialect` writes it.
pub(crate) fn dump_with(
    serializer: Serializer,
    value: &Value,
    dialect: Dialect,
) -> Result<Vec<u8>> {
    dump_format_with(serializer.writes(), value, dialect)
}

fn dump_format_with(format: Format, value: &Value, dialect: Dialect) -> Result<Vec<u8>> {
    match format {
        Format::Json => json::dump_with(value, dialect.escapes),
        #[cfg(feature = "marshal")]
        Format::Marshal => marshal::dump(value),
        #[cfg(feature = "message-pack")]
        Format::MessagePack => message_pack::dump_with(value, dialect.safe_buffer),
        #[allow(unreachable_patterns)]
        _ => Err(Error::Config(format!(
            "{format:?} support is not compiled in (enable the cargo feature)"
        ))),
    }
}

#[cfg_attr(not(feature = "message-pack"), allow(unused_variables))]
fn load_format(format: Format, payload: &[u8], dialect: Dialect) -> Result<Value> {
    match format {
        Format::Json => json::load(payload),
        #[cfg(feature = "marshal")]
        Format::Marshal => marshal::load(payload, &marshal::Limits::default()),
        #[cfg(feature = "message-pack")]
        Format::MessagePack => message_pack::load_with(payload, dialect.safe_buffer),
        #[allow(unreachable_patterns)]
        _ => Err(Error::Config(format!(
            "{format:?} support is not compiled in (enable the cargo feature)"
        ))),
    }
}

impl FromStr for Serializer {
    type Err = Error;

    /// Accepts the Rails names with `_` or `-`, with or without a leading `:`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().trim_start_matches(':').replace('-', "_").as_str() {
            "json" => Ok(Serializer::Json),
            "marshal" => Ok(Serializer::Marshal),
            "hybrid" => Ok(Serializer::Hybrid),
            "json_allow_marshal" => Ok(Serializer::JsonAllowMarshal),
            "message_pack" => Ok(Serializer::MessagePack),
            "message_pack_allow_marshal" => Ok(Serializer::MessagePackAllowMarshal),
            _ => Err(Error::Config(format!(
                "unknown cookies_serializer {s:?}; expected json, marshal, hybrid, json_allow_marshal, message_pack or message_pack_allow_marshal"
            ))),
        }
    }
}

impl fmt::Display for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_policy_table() {
        use Format as F;
        use Serializer as S;
        let table = [
            (S::Json, F::Json, Some(false)),
            (S::Json, F::Marshal, None),
            (S::Json, F::MessagePack, Some(true)),
            (S::Marshal, F::Json, Some(false)),
            (S::Marshal, F::Marshal, Some(false)),
            (S::Hybrid, F::Marshal, Some(true)),
            (S::Hybrid, F::Json, Some(false)),
            (S::JsonAllowMarshal, F::MessagePack, Some(true)),
            (S::MessagePack, F::Json, Some(true)),
            (S::MessagePack, F::Marshal, None),
            (S::MessagePackAllowMarshal, F::Marshal, Some(true)),
            (S::MessagePackAllowMarshal, F::MessagePack, Some(false)),
        ];
        for (s, f, expected) in table {
            assert_eq!(s.accepts(f), expected, "{s:?} reading {f:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in [
            "json",
            "marshal",
            "hybrid",
            "json_allow_marshal",
            "message_pack",
            "message_pack_allow_marshal",
        ] {
            assert_eq!(s.parse::<Serializer>().unwrap().name(), s);
        }
        assert_eq!("message-pack".parse::<Serializer>().unwrap(), Serializer::MessagePack);
        assert!("yaml".parse::<Serializer>().is_err());
    }

    #[test]
    fn json_serializer_refuses_marshal() {
        assert_eq!(Serializer::Json.load(b"\x04\x08T").unwrap_err().kind(), "serializer");
    }
}
