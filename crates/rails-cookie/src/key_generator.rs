//! `ActiveSupport::KeyGenerator`: PBKDF2 over `secret_key_base`.
//!
//! Rails builds `KeyGenerator.new(secret_key_base, iterations: 1000)` in every version from 4.2 to 8.1; the digest is
//! SHA1 until an app adopts `config.load_defaults 7.0` (`key_generator_hash_digest_class = SHA256`). PBKDF2 costs
//! about 0.4 ms per key, so codecs derive their keys once, when they are built.

use std::num::NonZeroU32;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::secret::{Key, SecretKeyBase};

/// The iteration count Rails passes for cookies in every version.
pub const RAILS_ITERATIONS: u32 = 1000;

/// Derives keys from a `secret_key_base` as `ActiveSupport::KeyGenerator#generate_key(salt, len)` does.
///
/// ```
/// use rails_cookie::{Digest, KeyGenerator, SecretKeyBase};
/// let skb = SecretKeyBase::new("4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6")?;
/// let kg = KeyGenerator::new(skb, Digest::Sha1, 1000)?;
/// let key = kg.generate_key(b"authenticated encrypted cookie", 32);
/// assert_eq!(key.expose()[..4], [0x63, 0x0a, 0x23, 0x3b]);
/// # Ok::<(), rails_cookie::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyGenerator {
    secret: SecretKeyBase,
    digest: Digest,
    iterations: NonZeroU32,
}

impl KeyGenerator {
    /// A key generator with the given PBKDF2 digest and iteration count.
    pub fn new(secret: SecretKeyBase, digest: Digest, iterations: u32) -> Result<Self> {
        let iterations = NonZeroU32::new(iterations)
            .ok_or_else(|| Error::Config("key_iterations must be at least 1".into()))?;
        Ok(KeyGenerator { secret, digest, iterations })
    }

    /// PBKDF2-HMAC-`digest`(secret_key_base, salt, iterations, len).
    #[must_use]
    pub fn generate_key(&self, salt: &[u8], len: usize) -> Key {
        let mut out = vec![0u8; len];
        ring::pbkdf2::derive(
            self.digest.pbkdf2(),
            self.iterations,
            salt,
            self.secret.expose(),
            &mut out,
        );
        Key::from_bytes(out)
    }

    /// The PBKDF2 digest.
    #[must_use]
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

    fn hex(key: &Key) -> String {
        key.expose().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Derived keys from the spec's §15.0 table, which was produced by Rails 6.1.7.10 and 7.0.10.
    #[test]
    fn rails_key_table() {
        let sha1 = KeyGenerator::new(SecretKeyBase::new(SKB).unwrap(), Digest::Sha1, 1000).unwrap();
        let sha256 =
            KeyGenerator::new(SecretKeyBase::new(SKB).unwrap(), Digest::Sha256, 1000).unwrap();
        assert_eq!(
            hex(&sha1.generate_key(b"authenticated encrypted cookie", 32)),
            "630a233b51cda20c32929583fd119e97bdbe420e83a0af0019e6724be37d76ab"
        );
        assert_eq!(
            hex(&sha1.generate_key(b"encrypted cookie", 32)),
            "00a4bbf30949ea6da01732f61f65c4e3be3ec31b2737cdce5d9a15dfe92bed12"
        );
        assert_eq!(
            hex(&sha1.generate_key(b"signed cookie", 64)),
            "82002e6f047df88d7a39e281e2991e46bf4ec1986f24e1cba864710d00244bb213a0bce5498e06c5c718ee1a32fc76e33066cdf8fc64f82ee4b91b93d6a6a4cb"
        );
        assert_eq!(
            hex(&sha256.generate_key(b"authenticated encrypted cookie", 32)),
            "ce609282f6122a3f9d36aea8912f1afe9debdbb0cd5771a91de7a65f9dda7fde"
        );
        assert_eq!(
            hex(&sha256.generate_key(b"signed encrypted cookie", 64)),
            "20df867c822e5121e278e90e24d4bcda9784442e69148f86b55efb63bbc7e9d9fa1023bd07e107cf96afded39c3493acf16b4fd285f50b0f15360993f6c6dc5d"
        );
    }

    /// Rails 4.2–5.1 derive 64 bytes and slice 32; 5.2+ derive 32. PBKDF2's prefix property makes them equal.
    #[test]
    fn prefix_property() {
        let kg =
            KeyGenerator::new(SecretKeyBase::new("password".repeat(4)).unwrap(), Digest::Sha1, 1)
                .unwrap();
        assert_eq!(kg.generate_key(b"s", 64).expose()[..32], *kg.generate_key(b"s", 32).expose());
    }

    #[test]
    fn zero_iterations_is_a_config_error() {
        assert!(KeyGenerator::new(SecretKeyBase::new(SKB).unwrap(), Digest::Sha1, 0).is_err());
    }
}
