//! The digest names Rails settings accept (`"SHA1"`, `"SHA256"`, …) and their `ring` algorithms.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A hash function as named in Rails settings (`cookies_digest`, `signed_cookie_digest`,
/// `key_generator_hash_digest_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Digest {
    /// SHA-1 (Rails' default for HMACs and, before 7.0, for key derivation).
    Sha1,
    /// SHA-256 (7.0+ key derivation; optional HMAC digest).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Digest {
    /// Output length in bytes.
    #[must_use]
    pub fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }

    /// The Rails spelling: `SHA1`, `SHA256`, …
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "SHA1",
            Digest::Sha256 => "SHA256",
            Digest::Sha384 => "SHA384",
            Digest::Sha512 => "SHA512",
        }
    }

    pub(crate) fn pbkdf2(self) -> ring::pbkdf2::Algorithm {
        match self {
            Digest::Sha1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
            Digest::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
            Digest::Sha384 => ring::pbkdf2::PBKDF2_HMAC_SHA384,
            Digest::Sha512 => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Accepts `SHA1`, `sha1`, `SHA-1`, `OpenSSL::Digest::SHA1` and the same for the SHA-2 family.
    fn from_str(s: &str) -> Result<Self, Error> {
        let name =
            s.trim().trim_start_matches("OpenSSL::Digest::").replace('-', "").to_ascii_uppercase();
        match name.as_str() {
            "SHA1" => Ok(Digest::Sha1),
            "SHA256" => Ok(Digest::Sha256),
            "SHA384" => Ok(Digest::Sha384),
            "SHA512" => Ok(Digest::Sha512),
            _ => Err(Error::Config(format!(
                "unknown digest {s:?}; expected SHA1, SHA256, SHA384 or SHA512"
            ))),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rails_spellings() {
        assert_eq!("SHA1".parse::<Digest>().unwrap(), Digest::Sha1);
        assert_eq!("OpenSSL::Digest::SHA256".parse::<Digest>().unwrap(), Digest::Sha256);
        assert_eq!("sha-512".parse::<Digest>().unwrap(), Digest::Sha512);
        assert!("MD5".parse::<Digest>().is_err());
    }
}
