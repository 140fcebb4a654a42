//! `ActiveSupport::MessageEncryptor` as the encrypted cookie jar uses it (with `NullSerializer`: bytes in, bytes
//! out): AES-256-GCM (`b64(ct)--b64(iv)--b64(tag)`, Rails 5.2+) and AES-256-CBC with an HMAC over the outer base64
//! (`b64(b64(ct)--b64(iv))--hex(mac)`, Rails 4.2–5.1 and apps without `use_authenticated_cookie_encryption`).
//!
//! Both verify before they decrypt: GCM by its tag, CBC by its HMAC, checked in constant time before any
//! decryption, so a padding failure can never be told apart from a MAC failure.

mod cbc;
mod gcm;

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::secret::Key;

/// The cipher of an encrypted cookie (`config.action_dispatch.encrypted_cookie_cipher`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// `aes-256-gcm`, the default from Rails 5.2 on.
    Aes256Gcm,
    /// `aes-128-gcm` (only with a custom `encrypted_cookie_cipher`).
    Aes128Gcm,
    /// `aes-256-cbc` with an HMAC, the Rails 4.2–5.1 format.
    Aes256Cbc,
}

impl Cipher {
    /// Key length in bytes (`OpenSSL::Cipher#key_len`).
    #[must_use]
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes256Gcm | Cipher::Aes256Cbc => 32,
            Cipher::Aes128Gcm => 16,
        }
    }

    /// The OpenSSL name Rails uses.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::Aes128Gcm => "aes-128-gcm",
            Cipher::Aes256Cbc => "aes-256-cbc",
        }
    }

    /// Whether this is an AEAD cipher (no separate HMAC).
    #[must_use]
    pub fn is_aead(self) -> bool {
        !matches!(self, Cipher::Aes256Cbc)
    }
}

impl FromStr for Cipher {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "aes-256-gcm" => Ok(Cipher::Aes256Gcm),
            "aes-128-gcm" => Ok(Cipher::Aes128Gcm),
            "aes-256-cbc" => Ok(Cipher::Aes256Cbc),
            _ => Err(Error::Config(format!(
                "unsupported cipher {s:?}; expected aes-256-gcm, aes-128-gcm or aes-256-cbc"
            ))),
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Encrypts and authenticates cookie values exactly as `ActiveSupport::MessageEncryptor` does.
///
/// ```
/// use rails_cookie::{Cipher, Key, MessageEncryptor};
/// let enc = MessageEncryptor::gcm(Cipher::Aes256Gcm, &Key::from_bytes(vec![1u8; 32]))?;
/// let value = enc.encrypt_and_sign(b"{\"user_id\":1}")?;
/// assert_eq!(value.split("--").count(), 3);
/// assert_eq!(enc.decrypt_and_verify(value.as_bytes())?, b"{\"user_id\":1}");
/// # Ok::<(), rails_cookie::Error>(())
/// ```
pub struct MessageEncryptor {
    inner: Inner,
    rng: ring::rand::SystemRandom,
}

// An encryptor is built once per codec and never moved on the hot path, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Gcm(gcm::Gcm),
    Cbc(cbc::Cbc),
}

impl MessageEncryptor {
    /// An AES-GCM encryptor (`MessageEncryptor.new(key, cipher: "aes-256-gcm")`).
    pub fn gcm(cipher: Cipher, key: &Key) -> Result<Self> {
        Ok(MessageEncryptor {
            inner: Inner::Gcm(gcm::Gcm::new(cipher, key)?),
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// An AES-256-CBC encryptor with an HMAC (`MessageEncryptor.new(key, sign_key, cipher: "aes-256-cbc",
    /// digest:)`). `key` must be 32 bytes; every byte of `sign_key` is used.
    pub fn cbc(key: &Key, sign_key: &Key, digest: Digest) -> Result<Self> {
        Ok(MessageEncryptor {
            inner: Inner::Cbc(cbc::Cbc::new(key, sign_key, digest)?),
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// The cipher.
    #[must_use]
    pub fn cipher(&self) -> Cipher {
        match &self.inner {
            Inner::Gcm(g) => g.cipher(),
            Inner::Cbc(_) => Cipher::Aes256Cbc,
        }
    }

    /// IV length in bytes: 12 for GCM, 16 for CBC.
    #[must_use]
    pub fn iv_len(&self) -> usize {
        match &self.inner {
            Inner::Gcm(_) => gcm::IV_LEN,
            Inner::Cbc(_) => cbc::IV_LEN,
        }
    }

    /// Encrypts with a fresh random IV.
    pub fn encrypt_and_sign(&self, plaintext: &[u8]) -> Result<String> {
        let mut iv = [0u8; 16];
        let iv = &mut iv[..self.iv_len()];
        ring::rand::SecureRandom::fill(&self.rng, iv)
            .map_err(|_| Error::Config("the system random number generator failed".into()))?;
        self.encrypt_with_iv(plaintext, iv)
    }

    /// Encrypts with a caller-chosen IV. Reusing an IV with GCM destroys its security; this exists for
    /// reproducing Rails' vectors and is public only through [`crate::dangerous`].
    pub(crate) fn encrypt_with_iv(&self, plaintext: &[u8], iv: &[u8]) -> Result<String> {
        if iv.len() != self.iv_len() {
            return Err(Error::Config(format!("IV must be {} bytes", self.iv_len())));
        }
        match &self.inner {
            Inner::Gcm(g) => g.encrypt(plaintext, iv),
            Inner::Cbc(c) => c.encrypt(plaintext, iv),
        }
    }

    /// Verifies, then decrypts. Any failure of tag, MAC, padding or base64 is an error; nothing is returned from a
    /// value that fails authentication.
    pub fn decrypt_and_verify(&self, value: &[u8]) -> Result<Vec<u8>> {
        match &self.inner {
            Inner::Gcm(g) => g.decrypt(value),
            Inner::Cbc(c) => c.decrypt(value),
        }
    }
}

impl fmt::Debug for MessageEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEncryptor")
            .field("cipher", &self.cipher())
            .field("key", &"[redacted]")
            .finish()
    }
}
