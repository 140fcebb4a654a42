//! Entry points for `cargo fuzz` (feature `fuzzing` only): the crate's internal parsers, reachable from the fuzz
//! targets in `fuzz/`. Not a stable API.

use time::macros::datetime;

use crate::error::Result;
use crate::metadata::{self, EnvelopeDetection};
use crate::value::Value;

/// Ruby Marshal 4.8 reader with the default limits.
#[cfg(feature = "marshal")]
pub fn marshal_load(bytes: &[u8]) -> Result<Value> {
    crate::serializer::marshal::load(bytes, &crate::serializer::marshal::Limits::default())
}

/// Marshal writer (to check load → dump → load stability).
#[cfg(feature = "marshal")]
pub fn marshal_dump(value: &Value) -> Result<Vec<u8>> {
    crate::serializer::marshal::dump(value)
}

/// MessagePack reader.
#[cfg(feature = "message-pack")]
pub fn message_pack_load(bytes: &[u8]) -> Result<Value> {
    crate::serializer::message_pack::load(bytes)
}

/// MessagePack writer (to check load → dump → load stability).
#[cfg(feature = "message-pack")]
pub fn message_pack_dump(value: &Value) -> Result<Vec<u8>> {
    crate::serializer::message_pack::dump(value)
}

/// JSON reader.
pub fn json_load(bytes: &[u8]) -> Result<Value> {
    crate::serializer::json::load(bytes)
}

/// JSON writer (`ActiveSupport::JSON.encode`, the escapes before 8.1).
pub fn json_dump(value: &Value) -> Result<Vec<u8>> {
    crate::serializer::json::dump(value)
}

/// Metadata envelope reader, both detection modes.
pub fn envelope_unwrap(bytes: &[u8], prefix_only: bool) -> Result<Vec<u8>> {
    let detection = if prefix_only { EnvelopeDetection::Prefix } else { EnvelopeDetection::Parse };
    metadata::unwrap(bytes, detection, "cookie._app_session", datetime!(2026-01-01 00:00 UTC))
        .map(|c| c.into_owned())
}
