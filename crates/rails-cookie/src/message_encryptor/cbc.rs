//! AES-256-CBC + HMAC: `b64(b64(ct)--b64(iv))--hex(HMAC(outer base64))`. The HMAC is checked before anything is
//! decoded or decrypted.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::digest::Digest;
use crate::encoding;
use crate::error::{Error, Result};
use crate::message_verifier::{split_last_separator, MessageVerifier};
use crate::secret::Key;

pub(super) const IV_LEN: usize = 16;

pub(super) struct Cbc {
    cipher: aes::Aes256,
    verifier: MessageVerifier,
}

impl Cbc {
    pub(super) fn new(key: &Key, sign_key: &Key, digest: Digest) -> Result<Self> {
        let cipher = aes::Aes256::new_from_slice(key.expose()).map_err(|_| {
            Error::Config(format!("aes-256-cbc needs a 32-byte key, got {} bytes", key.len()))
        })?;
        Ok(Cbc { cipher, verifier: MessageVerifier::new(sign_key, digest) })
    }

    pub(super) fn encrypt(&self, plaintext: &[u8], iv: &[u8]) -> Result<String> {
        let iv: [u8; IV_LEN] =
            iv.try_into().map_err(|_| Error::Config("CBC IV must be 16 bytes".into()))?;
        let encryptor =
            cbc::Encryptor::<aes::Aes256>::inner_iv_init(self.cipher.clone(), &iv.into());
        let ct = encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut inner = String::with_capacity(ct.len() * 4 / 3 + 4 + 2 + 24);
        encoding::b64_encode_into(&ct, &mut inner);
        inner.push_str("--");
        encoding::b64_encode_into(&iv, &mut inner);
        Ok(self.verifier.generate(inner.as_bytes()))
    }

    pub(super) fn decrypt(&self, value: &[u8]) -> Result<Vec<u8>> {
        let (data, mac) =
            split_last_separator(value).ok_or(Error::Malformed("expected data--digest"))?;
        if data.is_empty() {
            return Err(Error::Malformed("empty data"));
        }
        self.verifier.check(data, mac)?;
        let inner = encoding::b64_decode(data)?;
        let (ct, iv) =
            split_last_separator(&inner).ok_or(Error::Malformed("expected ciphertext--iv"))?;
        let mut iv_buf = [0u8; 18];
        if iv.len() != 24 || STANDARD.decode_slice(iv, &mut iv_buf).ok() != Some(IV_LEN) {
            return Err(Error::Malformed("CBC IV is not 16 bytes of base64"));
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&iv_buf[..IV_LEN]);
        let mut buf = encoding::b64_decode(ct)?;
        let decryptor =
            cbc::Decryptor::<aes::Aes256>::inner_iv_init(self.cipher.clone(), &iv.into());
        // Decrypted in place: the plaintext is the ciphertext's buffer, cut at the padding.
        // Reached only with a valid MAC; a padding error then means the two keys do not belong together.
        let len = decryptor
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(|_| Error::InvalidSignature)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageEncryptor;
    use super::*;

    const ENC_KEY: &str = "00a4bbf30949ea6da01732f61f65c4e3be3ec31b2737cdce5d9a15dfe92bed12";
    const MAC_KEY: &str = "7e968775bdf36d8ad219a7d73503e0471528a093325b899439d12a0b561bd0917bc1dbdc69450a0e727d3f1ddf9d5523be34ac57501fc4e43b1576ba007ebab5";
    const P: &str = r#"{"session_id":"0123456789abcdef0123456789abcdef","_csrf_token":"3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=","user_id":42,"flash":{"discard":[],"flashes":{"notice":"Signed in \u003cok\u003e \u0026 done"}}}"#;
    /// Spec vector T1 (Rails 6.1.7.10, 5.0.7.2, 5.1.7): CBC + HMAC-SHA1, fixed IV 00..0f.
    const T1: &str = "bmp3cWpWaFZzMFBiUnFROUdFUnlIbDIyWFpUS0IwZk1Kb29FWlRCSE9RWkRoQjRZam9NTFNGWUlRTlZacUt4Y0Q5YUp3NUVzYVNzeHdxMit4dEwwU3V5Tk9rb3VQYUc0ZHFtUXBWSmsxVEF2VlRMcVJYMkpjQVFYMWlaTyt0L1c1U25jeEovcDFNTXhpcnR1UFRoZ3FSNUcrNmF0L0x3N2hueThuelNYUGlwOTl6R0IwMlN2YUNubzRNY01HV0VLYmQ0WWl6UnNUd0VEUkdORkgyU0VweU5DUng2SjlDell0bkQzclpuV2VtRkdLejhxT0wvUW9Qd3JPNlpTODc3L2tEUmRPRHlZRXNIa2FBZXZES2JuOXc9PS0tQUFFQ0F3UUZCZ2NJQ1FvTERBME9Edz09--1fc6111876dc874a98fc2f3ab46a7dc8796134d9";
    /// Spec vector T11: the same with HMAC-SHA256 (`cookies_digest = "SHA256"`).
    const T11_MAC: &str = "b9d8343807709d62e7bfdcf575088b0937a3bf1a49079b0f809f9d3abe8ddb85";

    fn enc(digest: Digest) -> MessageEncryptor {
        MessageEncryptor::cbc(
            &Key::from_hex(ENC_KEY).unwrap(),
            &Key::from_hex(MAC_KEY).unwrap(),
            digest,
        )
        .unwrap()
    }

    #[test]
    fn t1_and_t11_exact_bytes() {
        let iv: Vec<u8> = (0..16).collect();
        assert_eq!(enc(Digest::Sha1).encrypt_with_iv(P.as_bytes(), &iv).unwrap(), T1);
        assert_eq!(enc(Digest::Sha1).decrypt_and_verify(T1.as_bytes()).unwrap(), P.as_bytes());
        let t11 = enc(Digest::Sha256).encrypt_with_iv(P.as_bytes(), &iv).unwrap();
        assert_eq!(t11, format!("{}--{T11_MAC}", T1.split_once("--").unwrap().0));
        assert_eq!(enc(Digest::Sha256).decrypt_and_verify(t11.as_bytes()).unwrap(), P.as_bytes());
    }

    #[test]
    fn rejects_damage_before_decrypting() {
        let e = enc(Digest::Sha1);
        let (data, mac) = T1.split_once("--").unwrap();
        for (value, kind) in [
            (format!("{}A--{mac}", &data[..data.len() - 1]), "invalid_signature"),
            (format!("{data}--{}", &mac[..39]), "invalid_signature"),
            (format!("{data}--{}", mac.to_uppercase()), "invalid_signature"),
            (data.to_owned(), "malformed"),
            (format!("--{mac}"), "malformed"),
            (String::new(), "malformed"),
        ] {
            assert_eq!(e.decrypt_and_verify(value.as_bytes()).unwrap_err().kind(), kind, "{value}");
        }
        // A SHA1 reader refuses the SHA256-signed form and vice versa.
        assert!(enc(Digest::Sha256).decrypt_and_verify(T1.as_bytes()).is_err());
    }

    #[test]
    fn valid_mac_over_garbage_is_rejected_without_panic() {
        let v = MessageVerifier::new(&Key::from_hex(MAC_KEY).unwrap(), Digest::Sha1);
        let e = enc(Digest::Sha1);
        for inner in
            ["", "no separator", "AAAA--AAAA", "AAAAAAAAAAAAAAAAAAAAAA==--AAECAwQFBgcICQoLDA0ODw=="]
        {
            let forged = v.generate(inner.as_bytes());
            assert!(e.decrypt_and_verify(forged.as_bytes()).is_err(), "{inner}");
        }
    }
}
