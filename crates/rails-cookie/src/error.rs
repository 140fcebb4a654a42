//! The one error type of the codec: one variant per cause, never secret bytes.

use std::fmt;

/// Why a cookie could not be read or written.
///
/// The variants follow the causes Rails itself distinguishes. A bad MAC, a bad GCM tag and a bad CBC padding all
/// surface as [`Error::InvalidSignature`], so a caller can never build a padding oracle from our answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value is not in the shape Rails writes: wrong number of `--` parts, bad base64, bad hex, empty.
    #[error("malformed cookie: {0}")]
    Malformed(&'static str),
    /// The MAC or authentication tag does not match (tampered value, or another key).
    #[error("invalid signature: the cookie was not written with these keys, or was changed")]
    InvalidSignature,
    /// The metadata envelope names a purpose other than the one expected (a cookie copied under another name).
    #[error("purpose mismatch: the cookie was written for another purpose")]
    PurposeMismatch,
    /// The metadata envelope's expiry is in the past.
    #[error("expired at {0}")]
    Expired(String),
    /// The payload could not be (de)serialized.
    #[error("{format} serializer: {reason}")]
    Serializer {
        /// Which serializer failed (`json`, `marshal`, `message_pack`).
        format: &'static str,
        /// What was wrong, without any of the payload's bytes.
        reason: String,
    },
    /// The encoded value exceeds the 4096 bytes Rails allows (`ActionDispatch::Cookies::CookieOverflow`).
    #[error("cookie overflow: the value is {size} bytes, more than the 4096 Rails allows")]
    Overflow {
        /// Size of the value before percent-encoding, as Rails counts it.
        size: usize,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The tagged JSON form of a Ruby value could not be read.
    #[error("tagged JSON: {0}")]
    TaggedJson(String),
}

impl Error {
    /// A short machine-readable word for the cause, stable across releases: `malformed`, `invalid_signature`,
    /// `purpose`, `expired`, `serializer`, `overflow`, `config`, `tagged_json`.
    ///
    /// ```
    /// use rails_cookie::Error;
    /// assert_eq!(Error::InvalidSignature.kind(), "invalid_signature");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::InvalidSignature => "invalid_signature",
            Error::PurposeMismatch => "purpose",
            Error::Expired(_) => "expired",
            Error::Serializer { .. } => "serializer",
            Error::Overflow { .. } => "overflow",
            Error::Config(_) => "config",
            Error::TaggedJson(_) => "tagged_json",
        }
    }

    pub(crate) fn serializer(format: &'static str, reason: impl fmt::Display) -> Self {
        Error::Serializer { format, reason: reason.to_string() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
