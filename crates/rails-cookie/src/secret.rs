//! Secret material: the app's `secret_key_base` and the keys derived from it. Zeroized on drop, redacted in `Debug`.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The Rails app's `secret_key_base` (or `ENV["SECRET_KEY_BASE"]`), used verbatim as bytes — Rails never
/// hex-decodes it.
///
/// ```
/// use rails_cookie::SecretKeyBase;
/// let skb = SecretKeyBase::new("4a7f0c1e9b2d3c5e".repeat(8))?;
/// assert_eq!(format!("{skb:?}"), "SecretKeyBase([redacted])");
/// # Ok::<(), rails_cookie::Error>(())
/// ```
#[derive(Clone)]
pub struct SecretKeyBase(Zeroizing<Vec<u8>>);

impl SecretKeyBase {
    /// Wraps a `secret_key_base`. Any non-empty value is accepted, because Rails accepts one
    /// (`Rails::Application#validate_secret_key_base` only requires a non-empty String; the 30-byte minimum belongs
    /// to the legacy `secret_token`). A short secret is weak, not wrong: see [`SecretKeyBase::is_weak`].
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self> {
        let secret = Zeroizing::new(secret.into());
        // Rails' check is `secret_key_base.blank?`: whitespace alone counts as empty.
        if secret.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Config(
                "secret_key_base is blank; Rails requires a non-blank value (typically 128 hex characters)".into(),
            ));
        }
        Ok(SecretKeyBase(secret))
    }

    /// Whether the secret is shorter than [`SecretKeyBase::RECOMMENDED_LEN`] bytes — what `bin/rails secret`
    /// writes is 128 hex characters. Rails runs with such a secret, so railbridge does too; the gateway warns.
    #[must_use]
    pub fn is_weak(&self) -> bool {
        self.0.len() < Self::RECOMMENDED_LEN
    }

    /// The length below which a secret counts as weak: 64 bytes, the digest size of the SHA-256/SHA-512 HMACs and
    /// half of what `bin/rails secret` generates.
    pub const RECOMMENDED_LEN: usize = 64;

    /// The secret's length in bytes (for diagnostics; the bytes themselves are never shown).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an empty secret cannot be constructed. Present because `len` is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKeyBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKeyBase([redacted])")
    }
}

/// A derived or configured raw key (the output of `KeyGenerator#generate_key`, or a key given to
/// `cookies.rotate`).
#[derive(Clone)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// Wraps raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Key(Zeroizing::new(bytes.into()))
    }

    /// Parses a key from lowercase or uppercase hex.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let hex = hex.trim();
        if hex.len() % 2 != 0 {
            return Err(Error::Config("key hex has an odd number of digits".into()));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
        for pair in hex.as_bytes().chunks(2) {
            let hi = crate::encoding::hex_val(pair[0]);
            let lo = crate::encoding::hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(Error::Config("key hex has a non-hex character".into())),
            }
        }
        Ok(Key(out))
    }

    /// The key bytes. Handle with care.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Key length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes, [redacted])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_leak_secrets() {
        let skb = SecretKeyBase::new("supersecret-supersecret-supersecret").unwrap();
        assert!(!format!("{skb:?}").contains("supersecret"));
        let key = Key::from_hex("deadbeefdeadbeef").unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("deadbeef") && !dbg.contains("222"), "{dbg}");
    }

    #[test]
    fn any_non_empty_secret_is_accepted_as_rails_does() {
        // A real Rails 8.0.1 app ran with this 24-byte secret_key_base.
        let skb = SecretKeyBase::new("0123456789abcdef01234567").unwrap();
        assert_eq!((skb.len(), skb.is_weak()), (24, true));
        assert!(SecretKeyBase::new("x").is_ok());
        assert!(!SecretKeyBase::new("a".repeat(128)).unwrap().is_weak());
        assert!(matches!(SecretKeyBase::new(""), Err(Error::Config(_))));
        assert!(matches!(SecretKeyBase::new(" \t\n"), Err(Error::Config(_))));
    }

    #[test]
    fn key_hex_errors() {
        assert!(Key::from_hex("abc").is_err());
        assert!(Key::from_hex("zz").is_err());
        assert_eq!(Key::from_hex("00Ff").unwrap().expose(), &[0, 255]);
    }
}
