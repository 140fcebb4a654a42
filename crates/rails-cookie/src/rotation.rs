//! `config.action_dispatch.cookies_rotations`: older keys and settings a codec still reads.
//!
//! A cookie read through a rotation decodes normally, with [`crate::Decoded::rewrite`] set so the caller writes it
//! back in the current format — how Rails migrates CBC → GCM, SHA1 → SHA256 key derivation, and old secrets.

use crate::digest::Digest;
use crate::message_encryptor::Cipher;
use crate::profile::Profile;
use crate::secret::{Key, SecretKeyBase};

/// One rotation entry.
///
/// ```
/// use rails_cookie::{Cipher, Digest, KeyGenerator, Profile, Rotation, SecretKeyBase};
/// // The Rails 7.0 upgrade guide's snippet: keep reading cookies whose keys were derived with SHA1.
/// let skb = SecretKeyBase::new("x".repeat(128))?;
/// let sha1 = KeyGenerator::new(skb.clone(), Digest::Sha1, 1000)?;
/// let profile = Profile::rails_7_0()
///     .rotate(Rotation::encrypted(sha1.generate_key(b"authenticated encrypted cookie", 32), Cipher::Aes256Gcm))
///     .rotate(Rotation::signed(sha1.generate_key(b"signed cookie", 64), Digest::Sha1));
/// # Ok::<(), rails_cookie::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Rotation {
    /// `cookies.rotate :encrypted, secret[, sign_secret], cipher:, digest:` — already-derived raw keys.
    Encrypted {
        /// Encryption key.
        secret: Key,
        /// HMAC key (CBC only).
        sign_secret: Option<Key>,
        /// Cipher.
        cipher: Cipher,
        /// HMAC digest (CBC only).
        digest: Digest,
    },
    /// `cookies.rotate :signed, secret, digest:`.
    Signed {
        /// HMAC key.
        secret: Key,
        /// HMAC digest.
        digest: Digest,
    },
    /// Everything an app with this `secret_key_base` and these settings writes (another secret, another Rails
    /// version's defaults): its keys are derived when the codec is built.
    App {
        /// That app's `secret_key_base`.
        secret: SecretKeyBase,
        /// That app's settings (its own rotations are not followed).
        profile: Box<Profile>,
    },
    /// The Rails 3.2/4.0 `secret_token`: signed Marshal cookies with the raw token as the HMAC-SHA1 key
    /// (the 4.2–5.2 upgrade path).
    SecretToken(Key),
}

impl Rotation {
    /// An AEAD rotation (`cookies.rotate :encrypted, key`).
    #[must_use]
    pub fn encrypted(secret: Key, cipher: Cipher) -> Self {
        Rotation::Encrypted { secret, sign_secret: None, cipher, digest: Digest::Sha1 }
    }

    /// A CBC rotation (`cookies.rotate :encrypted, key, sign_key, cipher: "aes-256-cbc", digest:`).
    #[must_use]
    pub fn encrypted_cbc(secret: Key, sign_secret: Key, digest: Digest) -> Self {
        Rotation::Encrypted {
            secret,
            sign_secret: Some(sign_secret),
            cipher: Cipher::Aes256Cbc,
            digest,
        }
    }

    /// A signed-jar rotation (`cookies.rotate :signed, key, digest:`).
    #[must_use]
    pub fn signed(secret: Key, digest: Digest) -> Self {
        Rotation::Signed { secret, digest }
    }

    /// Accept whatever an app with this secret and profile writes.
    #[must_use]
    pub fn app(secret: SecretKeyBase, profile: Profile) -> Self {
        Rotation::App { secret, profile: Box::new(profile) }
    }

    /// Accept cookies signed with a legacy `secret_token`.
    #[must_use]
    pub fn secret_token(token: impl Into<Vec<u8>>) -> Self {
        Rotation::SecretToken(Key::from_bytes(token))
    }
}
