//! The key search: the configurations a layout can have, cheapest first, each key derived at most once.

use super::{default_salts, Salts};
use crate::digest::Digest;
use crate::key_generator::{KeyGenerator, RAILS_ITERATIONS};
use crate::message_encryptor::{Cipher, MessageEncryptor};
use crate::message_verifier::{split_last_separator, MessageVerifier};
use crate::secret::{Key, SecretKeyBase};

/// How a message verified.
pub(super) struct How {
    /// `None`: the legacy secret_token.
    pub(super) kdf: Option<Digest>,
    pub(super) salts: Salts,
}

pub(super) enum Outcome {
    Verified(How, Vec<u8>),
    NotVerified,
    /// CBC: the HMAC verified with this key generator, the encryption key did not decrypt.
    EncryptionSalt(Digest),
}

/// The key-derivation digests, cheapest first: for the 32- and 64-byte keys cookies use, PBKDF2-SHA256 runs half
/// the blocks PBKDF2-SHA1 does (32 bytes of output per block against 20), and each block costs less here — a
/// 32-byte key took 0.22 ms with SHA256 against 1.27 ms with SHA1 (`cargo bench -p rails-cookie --bench inspect`).
const KDF_ORDER: [Digest; 2] = [Digest::Sha256, Digest::Sha1];

/// The salts to try for one setting: the configured one (if it differs from the default), then the default.
fn salt_order<'a>(configured: Option<&'a str>, default: &'a str) -> Vec<(&'a str, bool)> {
    let mut order = Vec::with_capacity(2);
    if let Some(c) = configured.filter(|c| *c != default) {
        order.push((c, true));
    }
    order.push((default, false));
    order
}

/// One inspection's key search: every key is derived at most once (a key of a salt and digest serves any shorter
/// length too: PBKDF2's output for a shorter length is a prefix of the longer one's).
pub(super) struct Search<'a> {
    pub(super) secret: Option<&'a SecretKeyBase>,
    pub(super) derived: Vec<(Digest, String, Key)>,
    pub(super) derivations: usize,
    pub(super) candidates: usize,
}

impl Search<'_> {
    pub(super) fn key(&mut self, digest: Digest, salt: &str, len: usize) -> Option<Key> {
        if let Some((_, _, key)) =
            self.derived.iter().find(|(d, s, k)| *d == digest && s == salt && k.len() >= len)
        {
            return Some(Key::from_bytes(&key.expose()[..len]));
        }
        let generator = KeyGenerator::new(self.secret?.clone(), digest, RAILS_ITERATIONS).ok()?;
        let key = generator.generate_key(salt.as_bytes(), len);
        self.derivations += 1;
        self.derived.retain(|(d, s, _)| !(*d == digest && s == salt));
        self.derived.push((digest, salt.to_owned(), key.clone()));
        Some(key)
    }

    pub(super) fn gcm(&mut self, value: &[u8], salts: &Salts) -> Outcome {
        let (_, _, default, _) = default_salts();
        for (salt, custom) in
            salt_order(salts.authenticated_encrypted_cookie_salt.as_deref(), &default)
        {
            for kdf in KDF_ORDER {
                let Some(key) = self.key(kdf, salt, Cipher::Aes256Gcm.key_len()) else { continue };
                let Ok(encryptor) = MessageEncryptor::gcm(Cipher::Aes256Gcm, &key) else {
                    continue;
                };
                self.candidates += 1;
                if let Ok(plain) = encryptor.decrypt_and_verify(value) {
                    let salts = Salts {
                        authenticated_encrypted_cookie_salt: custom.then(|| salt.to_owned()),
                        ..Salts::default()
                    };
                    return Outcome::Verified(How { kdf: Some(kdf), salts }, plain);
                }
            }
        }
        Outcome::NotVerified
    }

    pub(super) fn cbc(&mut self, value: &[u8], hmac: Digest, salts: &Salts) -> Outcome {
        let (default_enc, default_mac, _, _) = default_salts();
        let Some((data, digest)) = split_last_separator(value) else { return Outcome::NotVerified };
        let mut mac_verified = None;
        for (mac_salt, mac_custom) in
            salt_order(salts.encrypted_signed_cookie_salt.as_deref(), &default_mac)
        {
            for kdf in KDF_ORDER {
                let Some(mac_key) = self.key(kdf, mac_salt, 64) else { continue };
                self.candidates += 1;
                if MessageVerifier::new(&mac_key, hmac).check(data, digest).is_err() {
                    continue;
                }
                // The HMAC verified: now, and only now, the encryption key (same key generator).
                mac_verified = Some(kdf);
                for (enc_salt, enc_custom) in
                    salt_order(salts.encrypted_cookie_salt.as_deref(), &default_enc)
                {
                    let Some(enc_key) = self.key(kdf, enc_salt, 32) else { continue };
                    let Ok(encryptor) = MessageEncryptor::cbc(&enc_key, &mac_key, hmac) else {
                        continue;
                    };
                    if let Ok(plain) = encryptor.decrypt_and_verify(value) {
                        let salts = Salts {
                            encrypted_cookie_salt: enc_custom.then(|| enc_salt.to_owned()),
                            encrypted_signed_cookie_salt: mac_custom.then(|| mac_salt.to_owned()),
                            ..Salts::default()
                        };
                        return Outcome::Verified(How { kdf: Some(kdf), salts }, plain);
                    }
                }
            }
        }
        match mac_verified {
            Some(kdf) => Outcome::EncryptionSalt(kdf),
            None => Outcome::NotVerified,
        }
    }

    pub(super) fn signed(
        &mut self,
        value: &[u8],
        hmac: Digest,
        salts: &Salts,
        secret_token: Option<&Key>,
    ) -> Outcome {
        // The raw secret_token is the key: no derivation, so it goes first.
        if let Some(token) = secret_token {
            self.candidates += 1;
            if let Ok(plain) = MessageVerifier::new(token, hmac).verify(value) {
                return Outcome::Verified(How { kdf: None, salts: Salts::default() }, plain);
            }
        }
        if self.secret.is_none() {
            return Outcome::NotVerified;
        }
        let (_, _, _, default) = default_salts();
        for (salt, custom) in salt_order(salts.signed_cookie_salt.as_deref(), &default) {
            for kdf in KDF_ORDER {
                let Some(key) = self.key(kdf, salt, 64) else { continue };
                self.candidates += 1;
                if let Ok(plain) = MessageVerifier::new(&key, hmac).verify(value) {
                    let salts = Salts {
                        signed_cookie_salt: custom.then(|| salt.to_owned()),
                        ..Salts::default()
                    };
                    return Outcome::Verified(How { kdf: Some(kdf), salts }, plain);
                }
            }
        }
        Outcome::NotVerified
    }
}
