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
    /// Wraps a `secret_key_base`. Rails requires a non-empty value; anything shorter than 30 bytes is refused,
    /// as Rails' own `validate_secret_key_base` and `secret_token` checks do.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self> {
        let secret = Zeroizing::new(secret.into());
        if secret.len() < 30 {
            return Err(Error::Config(format!(
                "secret_key_base is {} bytes; Rails requires at least 30 (typically 128 hex characters)",
                secret.len()
            )));
        }
        Ok(SecretKeyBase(secret))
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
    fn short_secret_is_refused() {
        assert!(matches!(SecretKeyBase::new("short"), Err(Error::Config(_))));
    }

    #[test]
    fn key_hex_errors() {
        assert!(Key::from_hex("abc").is_err());
        assert!(Key::from_hex("zz").is_err());
        assert_eq!(Key::from_hex("00Ff").unwrap().expose(), &[0, 255]);
    }
}
