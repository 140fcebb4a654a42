//! Encrypted assertions: JWE compact serialization (RFC 7516 §3.1, §7.1) with direct encryption — `alg` `dir`,
//! `enc` `A256GCM` (RFC 7518 §4.5, §5.3) — around a signed JWT (a nested JWT, RFC 7519 §5.2, `cty` `JWT`).
//!
//! ```text
//! BASE64URL(header) . "" . BASE64URL(iv, 12 bytes) . BASE64URL(ciphertext) . BASE64URL(tag, 16 bytes)
//! header = {"alg":"dir","enc":"A256GCM","kid":"<kid>","cty":"JWT"}, AAD = ASCII(BASE64URL(header))
//! ```
//!
//! The encrypted-key part is empty (`dir`: the shared 32-byte key is the content encryption key). The gateway
//! encrypts with [`encrypt`] (or [`JweKey::encrypt`]); services decrypt through
//! [`AssertionVerifierBuilder::decryption_key`](super::AssertionVerifierBuilder::decryption_key), or with
//! [`decrypt`]. IVs are random (96 bits): rotate a key well before 2³² tokens.
//!
//! ```
//! use rails_session::gateway_auth::jwe::{self, JweKey};
//!
//! let key = [7u8; 32]; // in real life: 32 random bytes shared by the gateway and the service
//! let token = jwe::encrypt("2026-05", &key, b"eyJ...signed.jwt")?;
//! assert_eq!(token.split('.').count(), 5);
//! let plaintext = jwe::decrypt(&token, &[JweKey::new("2026-05", &key)])?;
//! assert_eq!(&plaintext[..], b"eyJ...signed.jwt");
//! # Ok::<(), rails_session::gateway_auth::jwe::JweError>(())
//! ```

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::clip;

const TAG_LEN: usize = 16;

/// Why a JWE could not be produced or opened. Never carries key bytes or plaintext.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// Not a JWE in compact serialization of the shape above.
    #[error("malformed JWE: {0}")]
    Malformed(&'static str),
    /// The header names another `alg`, `enc` or a `zip`.
    #[error("unsupported JWE algorithm {0:?}")]
    Unsupported(String),
    /// No key with the token's `kid`, the wrong key, or a tampered token.
    #[error("JWE decryption failed")]
    DecryptionFailed,
    /// A key is not 32 bytes long.
    #[error("a JWE key must be 32 bytes, not {0}")]
    KeyLength(usize),
    /// The system random number generator failed (no IV).
    #[error("no randomness for the IV")]
    Random,
}

/// A 32-byte AES-256-GCM key with its `kid`. The bytes are zeroized on drop and never printed.
#[derive(Clone)]
pub struct JweKey {
    kid: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for JweKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JweKey").field("kid", &self.kid).field("key", &"[redacted]").finish()
    }
}

impl JweKey {
    /// A key named `kid`.
    #[must_use]
    pub fn new(kid: impl Into<String>, key: &[u8; 32]) -> Self {
        JweKey { kid: kid.into(), key: Zeroizing::new(*key) }
    }

    /// A key from a slice, which must be 32 bytes long.
    pub fn from_slice(kid: impl Into<String>, key: &[u8]) -> Result<Self, JweError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        if key.len() != bytes.len() {
            return Err(JweError::KeyLength(key.len()));
        }
        bytes.copy_from_slice(key);
        Ok(JweKey { kid: kid.into(), key: bytes })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn aead(&self) -> Result<LessSafeKey, JweError> {
        // The key schedule lives only for one operation; the bytes at rest are the zeroized copy.
        UnboundKey::new(&AES_256_GCM, &self.key[..])
            .map(LessSafeKey::new)
            .map_err(|_| JweError::KeyLength(self.key.len()))
    }

    /// Encrypts `plaintext` (a signed JWT) into a compact JWE with a fresh random IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, JweError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            enc: &'static str,
            kid: &'a str,
            cty: &'static str,
        }
        let header = Header { alg: "dir", enc: "A256GCM", kid: &self.kid, cty: "JWT" };
        let header = serde_json::to_vec(&header).map_err(|_| JweError::Malformed("header"))?;
        let mut iv = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut iv).map_err(|_| JweError::Random)?;
        let mut token = String::with_capacity(plaintext.len() * 4 / 3 + 160);
        URL_SAFE_NO_PAD.encode_string(header, &mut token);
        let mut in_out = plaintext.to_vec();
        let tag = self
            .aead()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(token.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| JweError::Malformed("plaintext too long"))?;
        token.push_str("..");
        URL_SAFE_NO_PAD.encode_string(iv, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&in_out, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        Ok(token)
    }
}

/// Encrypts `plaintext` (a signed JWT) for the service holding the key `kid`: see the module docs.
pub fn encrypt(kid: &str, key: &[u8; 32], plaintext: &[u8]) -> Result<String, JweError> {
    JweKey::new(kid, key).encrypt(plaintext)
}

/// Decrypts a compact JWE with the key its `kid` names (every key in turn when it names none). The header must
/// be `alg` `dir`, `enc` `A256GCM`, `cty` `JWT` (or no `cty`), without `zip` or `crit`.
pub fn decrypt(token: &str, keys: &[JweKey]) -> Result<Zeroizing<Vec<u8>>, JweError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        enc: String,
        kid: Option<String>,
        cty: Option<String>,
        zip: Option<serde_json::Value>,
        crit: Option<serde_json::Value>,
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JweError::Malformed("not five dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| JweError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|_| JweError::Malformed("header is not a JWE header"))?;
    if header.alg != "dir" {
        return Err(JweError::Unsupported(clip(&header.alg)));
    }
    if header.enc != "A256GCM" {
        return Err(JweError::Unsupported(clip(&header.enc)));
    }
    if header.zip.is_some() {
        return Err(JweError::Unsupported("zip".into()));
    }
    if header.crit.is_some() {
        return Err(JweError::Malformed("crit is not supported"));
    }
    if header.cty.as_deref().is_some_and(|cty| !cty.eq_ignore_ascii_case("JWT")) {
        return Err(JweError::Malformed("cty is not JWT"));
    }
    if !encrypted_key.is_empty() {
        return Err(JweError::Malformed("dir takes an empty encrypted key"));
    }
    let iv: [u8; NONCE_LEN] = decode(iv, "iv is not base64url")?
        .try_into()
        .map_err(|_| JweError::Malformed("the IV is not 12 bytes"))?;
    let tag = decode(tag, "tag is not base64url")?;
    if tag.len() != TAG_LEN {
        return Err(JweError::Malformed("the tag is not 16 bytes"));
    }
    let mut sealed = decode(ciphertext, "ciphertext is not base64url")?;
    sealed.extend_from_slice(&tag);
    let sealed = Zeroizing::new(sealed);
    let candidates = keys.iter().filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.kid));
    for key in candidates {
        let mut in_out = Zeroizing::new(sealed.to_vec());
        let opened = key.aead()?.open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            &mut in_out,
        );
        if let Ok(plaintext) = opened {
            let len = plaintext.len();
            in_out.truncate(len);
            return Ok(in_out);
        }
    }
    Err(JweError::DecryptionFailed)
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, JweError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JweError::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_shape_and_round_trip() {
        let key = JweKey::new("k1", &[1; 32]);
        let token = key.encrypt(b"a.b.c").unwrap();
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(parts.len(), 5);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"dir","enc":"A256GCM","kid":"k1","cty":"JWT"}"#
        );
        assert_eq!(parts[1], "");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 12);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[4]).unwrap().len(), 16);
        assert_eq!(&decrypt(&token, std::slice::from_ref(&key)).unwrap()[..], b"a.b.c");
        assert_ne!(token, key.encrypt(b"a.b.c").unwrap(), "fresh IV");
        // Rotation: the old key is found by kid among several.
        let keys = [JweKey::new("k2", &[2; 32]), key.clone()];
        assert_eq!(&decrypt(&token, &keys).unwrap()[..], b"a.b.c");
        assert_eq!(decrypt(&token, &keys[..1]), Err(JweError::DecryptionFailed));
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let key = JweKey::from_slice("k", &[0xab; 32]).unwrap();
        let debug = format!("{key:?}");
        assert!(
            debug.contains("[redacted]") && !debug.contains("171") && !debug.contains("ab"),
            "{debug}"
        );
        assert_eq!(JweKey::from_slice("k", &[0; 31]).unwrap_err(), JweError::KeyLength(31));
    }

    #[test]
    fn other_algorithms_and_shapes_are_refused() {
        let header = |h: &str| URL_SAFE_NO_PAD.encode(h);
        let rest = format!(
            ".{}.{}.{}",
            URL_SAFE_NO_PAD.encode([0; 12]),
            "AA",
            URL_SAFE_NO_PAD.encode([0; 16])
        );
        let keys = [JweKey::new("k", &[0; 32])];
        let with = |h: &str| decrypt(&format!("{}.{rest}", header(h)), &keys);
        assert_eq!(
            with(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
            Err(JweError::Unsupported("RSA-OAEP".into()))
        );
        assert_eq!(
            with(r#"{"alg":"dir","enc":"A128GCM"}"#),
            Err(JweError::Unsupported("A128GCM".into()))
        );
        assert!(matches!(
            with(r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#),
            Err(JweError::Unsupported(_))
        ));
        assert!(matches!(
            with(r#"{"alg":"dir","enc":"A256GCM","crit":["x"]}"#),
            Err(JweError::Malformed(_))
        ));
        assert!(matches!(
            with(r#"{"alg":"dir","enc":"A256GCM","cty":"json"}"#),
            Err(JweError::Malformed(_))
        ));
        assert_eq!(with(r#"{"alg":"dir","enc":"A256GCM"}"#), Err(JweError::DecryptionFailed));
        assert!(matches!(decrypt("a.b.c", &keys), Err(JweError::Malformed(_))));
        assert!(matches!(decrypt("....", &keys), Err(JweError::Malformed(_))));
        assert!(matches!(decrypt("a.b.c.d.e.f", &keys), Err(JweError::Malformed(_))));
    }
}
