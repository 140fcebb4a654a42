//! AES-GCM: `b64(ciphertext)--b64(iv)--b64(tag)`, 12-byte IV, 16-byte tag, empty AAD.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};

use super::Cipher;
use crate::encoding;
use crate::error::{Error, Result};
use crate::secret::Key;

pub(super) const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

pub(super) struct Gcm {
    key: LessSafeKey,
    cipher: Cipher,
}

impl Gcm {
    pub(super) fn new(cipher: Cipher, key: &Key) -> Result<Self> {
        let algorithm = match cipher {
            Cipher::Aes256Gcm => &ring::aead::AES_256_GCM,
            Cipher::Aes128Gcm => &ring::aead::AES_128_GCM,
            Cipher::Aes256Cbc => {
                return Err(Error::Config("aes-256-cbc is not an AEAD cipher".into()))
            }
        };
        if key.len() != cipher.key_len() {
            return Err(Error::Config(format!(
                "{} needs a {}-byte key, got {} bytes",
                cipher.name(),
                cipher.key_len(),
                key.len()
            )));
        }
        let unbound = UnboundKey::new(algorithm, key.expose())
            .map_err(|_| Error::Config(format!("{} rejected the key", cipher.name())))?;
        Ok(Gcm { key: LessSafeKey::new(unbound), cipher })
    }

    pub(super) fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub(super) fn encrypt(&self, plaintext: &[u8], iv: &[u8]) -> Result<String> {
        let nonce = Nonce::try_assume_unique_for_key(iv)
            .map_err(|_| Error::Config("GCM IV must be 12 bytes".into()))?;
        let mut in_out = plaintext.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut in_out)
            .map_err(|_| Error::Config("AES-GCM refused to encrypt (message too long)".into()))?;
        let mut out = String::with_capacity(plaintext.len() * 4 / 3 + 4 + 2 + 16 + 2 + 24);
        encoding::b64_encode_into(&in_out, &mut out);
        out.push_str("--");
        encoding::b64_encode_into(iv, &mut out);
        out.push_str("--");
        encoding::b64_encode_into(tag.as_ref(), &mut out);
        Ok(out)
    }

    pub(super) fn decrypt(&self, value: &[u8]) -> Result<Vec<u8>> {
        let mut parts = value.split(|&b| b == b'-');
        // Rails writes exactly `ct--iv--tag`; base64 has no `-`, so splitting on single dashes must give
        // ct, "", iv, "", tag.
        let (Some(ct), Some(b""), Some(iv), Some(b""), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("expected ciphertext--iv--tag"));
        };
        if ct.is_empty() {
            return Err(Error::Malformed("empty ciphertext"));
        }
        let mut iv_buf = [0u8; IV_LEN];
        if iv.len() != 16 || STANDARD.decode_slice(iv, &mut iv_buf).ok() != Some(IV_LEN) {
            return Err(Error::Malformed("GCM IV is not 12 bytes of base64"));
        }
        let mut tag_buf = [0u8; 18];
        if tag.len() != 24 || STANDARD.decode_slice(tag, &mut tag_buf).ok() != Some(TAG_LEN) {
            return Err(Error::Malformed("GCM tag is not 16 bytes of base64"));
        }
        let mut in_out = Vec::with_capacity(ct.len() / 4 * 3 + TAG_LEN);
        encoding::b64_decode_into(ct, &mut in_out)?;
        in_out.extend_from_slice(&tag_buf[..TAG_LEN]);
        let nonce = Nonce::assume_unique_for_key(iv_buf);
        let len = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut in_out)
            .map_err(|_| Error::InvalidSignature)?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageEncryptor;
    use super::*;

    const KEY: &str = "630a233b51cda20c32929583fd119e97bdbe420e83a0af0019e6724be37d76ab";
    /// Spec vector T4 (Rails 6.1.7.10 and 5.2.8.1): GCM, JSON, no metadata, fixed IV 00..0b.
    const T4: &str = "hJVfJfpbMLaBntfq4OMM2AzQOxtKX84u3Fm4KtagLkRsAGnOilxfaVe8nS9UphdplMjgu874J77ClmzMgJMCG49GWfBNQld+uHvMAaDFOvGlORQJy3N4S43kdcdB/cWslNUwvvqijy4+e5vBetHnC5ZpXMiPS3AsrGdINKdmyH4HvimAww5AWfrBBpwV3YG2FMhwZx9ELg94IoCn3pygnkHDvw15yIsgAiLzgdbbjKOWN7jlTAAPq+FITHtR7QZtnEhRXOnd97jhtdnwPCw=--AAECAwQFBgcICQoL--lwvzg9dKFQIpLJOCn9NcAw==";
    const P: &str = r#"{"session_id":"0123456789abcdef0123456789abcdef","_csrf_token":"3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=","user_id":42,"flash":{"discard":[],"flashes":{"notice":"Signed in \u003cok\u003e \u0026 done"}}}"#;

    fn enc() -> MessageEncryptor {
        MessageEncryptor::gcm(Cipher::Aes256Gcm, &Key::from_hex(KEY).unwrap()).unwrap()
    }

    #[test]
    fn t4_exact_bytes() {
        let iv: Vec<u8> = (0..12).collect();
        assert_eq!(enc().encrypt_with_iv(P.as_bytes(), &iv).unwrap(), T4);
        assert_eq!(enc().decrypt_and_verify(T4.as_bytes()).unwrap(), P.as_bytes());
    }

    #[test]
    fn random_iv_round_trip() {
        let e = enc();
        let a = e.encrypt_and_sign(b"x").unwrap();
        let b = e.encrypt_and_sign(b"x").unwrap();
        assert_ne!(a, b);
        assert_eq!(e.decrypt_and_verify(a.as_bytes()).unwrap(), b"x");
    }

    #[test]
    fn rejects_every_kind_of_damage() {
        let e = enc();
        let (ct, rest) = T4.split_once("--").unwrap();
        let (iv, tag) = rest.split_once("--").unwrap();
        let flip = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            b[0] = if b[0] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        let cases = [
            (format!("{}--{iv}--{tag}", flip(ct)), "invalid_signature"),
            (format!("{ct}--{}--{tag}", flip(iv)), "invalid_signature"),
            (format!("{ct}--{iv}--{}", flip(tag)), "invalid_signature"),
            (format!("{ct}--{iv}"), "malformed"),
            (format!("{ct}--{iv}--{tag}--x"), "malformed"),
            (format!("{ct}--{iv}--{}", &tag[..20]), "malformed"),
            (format!("{}--{iv}--{tag}", &ct[..ct.len() - 4]), "invalid_signature"),
            (format!("{}*--{iv}--{tag}", &ct[..ct.len() - 1]), "malformed"),
            (format!("--{iv}--{tag}"), "malformed"),
            (String::new(), "malformed"),
            ("--".into(), "malformed"),
            ("----".into(), "malformed"),
        ];
        for (value, kind) in cases {
            let err = e.decrypt_and_verify(value.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), kind, "{value}");
        }
        let other =
            MessageEncryptor::gcm(Cipher::Aes256Gcm, &Key::from_bytes(vec![0u8; 32])).unwrap();
        assert!(matches!(other.decrypt_and_verify(T4.as_bytes()), Err(Error::InvalidSignature)));
    }

    #[test]
    fn wrong_key_length_is_config_error() {
        assert!(MessageEncryptor::gcm(Cipher::Aes256Gcm, &Key::from_bytes(vec![0u8; 16])).is_err());
        assert!(MessageEncryptor::gcm(Cipher::Aes128Gcm, &Key::from_bytes(vec![0u8; 16])).is_ok());
    }
}
