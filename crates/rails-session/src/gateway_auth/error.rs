//! Why an assertion was refused: one variant per stable reason string.

/// Why [`crate::gateway_auth::AssertionVerifier`] refused an assertion.
///
/// [`AssertionError::reason`] names each variant with a short string that never changes (it is sent to clients in
/// the `401` body and may be counted in metrics). Variants carry context for logs — the algorithm or key id the
/// token named, clipped to 64 characters — but never key bytes or the token itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// Not a JWS (or JWE) in compact serialization, bad base64url or JSON, or a required claim missing or of the
    /// wrong type (`malformed`).
    #[error("malformed assertion: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm this verifier refuses: anything but `EdDSA`, `ES256` and `RS256` (`none` and
    /// `HS*` included), one that does not fit the key's type, or one the key's JWK does not name
    /// (`unsupported_algorithm`).
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No key with the token's `kid`, even after fetching the key set again (`unknown_key`).
    #[error("unknown key id {kid:?}")]
    UnknownKey {
        /// The `kid` the token named (`None`: it named none).
        kid: Option<String>,
    },
    /// The signature does not verify (`bad_signature`).
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed, leeway included (`expired`).
    #[error("assertion expired")]
    Expired,
    /// `nbf` is still ahead, leeway included (`not_yet_valid`).
    #[error("assertion not yet valid")]
    NotYetValid,
    /// `iss` is missing or not the configured issuer (`wrong_issuer`).
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is missing or names none of the accepted audiences (`wrong_audience`).
    #[error("wrong audience")]
    WrongAudience,
    /// The key set could not be loaded: the JWKS endpoint is down or answers nonsense, and no key for this token
    /// is cached (`keys_unavailable`; answered with 503).
    #[error("verification keys unavailable: {0}")]
    KeysUnavailable(String),
    /// An encrypted assertion could not be decrypted: no key with its `kid`, the wrong key, or a tampered
    /// ciphertext, IV, tag or header (`decryption_failed`).
    #[error("decryption failed")]
    DecryptionFailed,
    /// The token is longer than the configured maximum (`too_large`).
    #[error("assertion too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The token's length.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl AssertionError {
    /// The stable short name of the reason: `malformed`, `unsupported_algorithm`, `unknown_key`,
    /// `bad_signature`, `expired`, `not_yet_valid`, `wrong_issuer`, `wrong_audience`, `keys_unavailable`,
    /// `decryption_failed` or `too_large`.
    ///
    /// ```
    /// use rails_session::gateway_auth::AssertionError;
    /// assert_eq!(AssertionError::Expired.reason(), "expired");
    /// ```
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            AssertionError::Malformed(_) => "malformed",
            AssertionError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            AssertionError::UnknownKey { .. } => "unknown_key",
            AssertionError::BadSignature => "bad_signature",
            AssertionError::Expired => "expired",
            AssertionError::NotYetValid => "not_yet_valid",
            AssertionError::WrongIssuer => "wrong_issuer",
            AssertionError::WrongAudience => "wrong_audience",
            AssertionError::KeysUnavailable(_) => "keys_unavailable",
            AssertionError::DecryptionFailed => "decryption_failed",
            AssertionError::TooLarge { .. } => "too_large",
        }
    }

    pub(crate) fn unsupported(alg: &str) -> Self {
        AssertionError::UnsupportedAlgorithm(clip(alg))
    }

    pub(crate) fn unknown_key(kid: Option<&str>) -> Self {
        AssertionError::UnknownKey { kid: kid.map(clip) }
    }
}

/// At most 64 characters of an attacker-chosen string, for logs.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_strings_are_clipped() {
        let e = AssertionError::unsupported(&"x".repeat(1000));
        assert_eq!(e.to_string().len(), "unsupported algorithm \"\"".len() + 64);
        assert_eq!(e.reason(), "unsupported_algorithm");
        assert_eq!(AssertionError::unknown_key(None).reason(), "unknown_key");
    }
}
