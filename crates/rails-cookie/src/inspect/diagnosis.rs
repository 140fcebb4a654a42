//! Why no configuration reads a cookie, in words that say what to check.

use std::fmt;

use super::{Layout, MAX_INSPECTED_SIZE};
use crate::cookie::MAX_COOKIE_SIZE;
use crate::digest::Digest;

/// Why no configuration reads a cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// Over [`MAX_INSPECTED_SIZE`] bytes.
    TooLarge {
        /// Its length after percent-decoding.
        len: usize,
    },
    /// Not a value Rails' jars write.
    NotRails {
        /// What it is instead.
        reason: String,
    },
    /// One of Rails' layouts, damaged.
    Damaged {
        /// The layout it resembles.
        layout: Layout,
        /// What is wrong.
        reason: String,
    },
    /// No `secret_key_base` (or `secret_token`) was given: only the shape was read.
    NoSecret {
        /// The layout.
        layout: Layout,
        /// The HMAC digest, for CBC and signed values.
        hmac: Option<Digest>,
    },
    /// A well-formed value whose MAC or tag verifies under none of the configurations tried.
    NotVerified {
        /// The layout.
        layout: Layout,
        /// The HMAC digest, for CBC and signed values.
        hmac: Option<Digest>,
        /// Configurations tried.
        tried: usize,
        /// The app's own salts were tried too.
        custom_salts: bool,
        /// A `secret_key_base` was given.
        secret_key_base: bool,
        /// A `secret_token` was tried too.
        secret_token: bool,
    },
    /// A CBC value whose HMAC verifies but which no encryption key decrypts: the `encrypted_cookie_salt` differs.
    EncryptionSalt {
        /// The PBKDF2 digest that derived the HMAC key.
        kdf_digest: Digest,
    },
    /// Verified, but written for another cookie (the envelope's purpose names it).
    Purpose {
        /// The envelope's `pur`.
        purpose: String,
        /// The name the cookie was inspected under.
        expected_name: String,
    },
    /// Verified, but its envelope's expiry has passed.
    Expired {
        /// The envelope's `exp`, as written.
        at: String,
    },
    /// Verified, but its metadata envelope is unreadable.
    Envelope {
        /// What is wrong with it.
        reason: String,
    },
    /// Verified, but its payload is not one the serializers read.
    Payload {
        /// What is wrong with it.
        reason: String,
    },
}

impl Diagnosis {
    /// A stable word for the cause: `too_large`, `not_rails`, `damaged`, `no_secret`, `not_verified`,
    /// `encryption_salt`, `purpose`, `expired`, `envelope`, `payload`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Diagnosis::TooLarge { .. } => "too_large",
            Diagnosis::NotRails { .. } => "not_rails",
            Diagnosis::Damaged { .. } => "damaged",
            Diagnosis::NoSecret { .. } => "no_secret",
            Diagnosis::NotVerified { .. } => "not_verified",
            Diagnosis::EncryptionSalt { .. } => "encryption_salt",
            Diagnosis::Purpose { .. } => "purpose",
            Diagnosis::Expired { .. } => "expired",
            Diagnosis::Envelope { .. } => "envelope",
            Diagnosis::Payload { .. } => "payload",
        }
    }

    /// The Rails settings worth checking, for a cookie that does not verify.
    #[must_use]
    pub fn salt_settings(&self) -> &'static [&'static str] {
        match self {
            Diagnosis::NotVerified { layout: Layout::Gcm, .. } => {
                &["authenticated_encrypted_cookie_salt"]
            }
            Diagnosis::NotVerified { layout: Layout::Cbc, .. } => &["encrypted_signed_cookie_salt"],
            Diagnosis::NotVerified { layout: Layout::Signed, .. } => &["signed_cookie_salt"],
            Diagnosis::EncryptionSalt { .. } => &["encrypted_cookie_salt"],
            _ => &[],
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::TooLarge { len } => write!(
                f,
                "the value is {len} bytes: Rails never writes a cookie over {MAX_COOKIE_SIZE} bytes (CookieOverflow), \
                 and at most {MAX_INSPECTED_SIZE} are inspected"
            ),
            Diagnosis::NotRails { reason } => write!(f, "not a Rails cookie: {reason}"),
            Diagnosis::Damaged { layout, reason } => {
                write!(f, "{}, damaged: {reason}", capitalized(&layout.phrase(None)))
            }
            Diagnosis::NoSecret { layout, hmac } => write!(
                f,
                "{}; no secret_key_base was given, so only its shape was read",
                capitalized(&layout.phrase(*hmac))
            ),
            Diagnosis::NotVerified { layout, hmac, tried, custom_salts, secret_key_base, secret_token } => {
                let what = if *layout == Layout::Gcm { "tag" } else { "HMAC" };
                let salts = if *custom_salts {
                    "the configured salts and Rails' defaults"
                } else {
                    "Rails' default salts"
                };
                let setting = self.salt_settings().first().copied().unwrap_or_default();
                let keys = match (secret_key_base, secret_token) {
                    (true, true) => format!("this secret_key_base and the secret_token, with {salts}"),
                    (true, false) => format!("this secret_key_base with {salts}"),
                    (false, _) => "the secret_token".to_owned(),
                };
                write!(
                    f,
                    "{} whose {what} does not verify under {keys} ({tried} configurations tried: PBKDF2-SHA256 \
                     and PBKDF2-SHA1 keys): the secret or the salts differ — check that the secret is the app's \
                     secret_key_base and whether the app sets config.action_dispatch.{setting}{} — or the value \
                     was changed or cut short",
                    capitalized(&layout.phrase(*hmac)),
                    if *layout == Layout::Signed {
                        " (or, for an app without secret_key_base, give its config.secret_token)"
                    } else {
                        ""
                    }
                )
            }
            Diagnosis::EncryptionSalt { kdf_digest } => write!(
                f,
                "An encrypted AES-256-CBC cookie whose HMAC verifies (PBKDF2-{kdf_digest} key) but which does not \
                 decrypt with the encryption key: the app's config.action_dispatch.encrypted_cookie_salt differs"
            ),
            Diagnosis::Purpose { purpose, expected_name } => match purpose.strip_prefix("cookie.") {
                Some(other) => write!(
                    f,
                    "verifies, but was written as the cookie {other:?} (purpose {purpose:?}), not {expected_name:?}: \
                     Rails reads it under that name only — inspect it as {other}"
                ),
                None => write!(
                    f,
                    "verifies, but was written for the purpose {purpose:?}, not as the cookie {expected_name:?}"
                ),
            },
            Diagnosis::Expired { at } => {
                write!(f, "verifies, but expired at {at} (its envelope's exp): Rails treats it as absent")
            }
            Diagnosis::Envelope { reason } => {
                write!(f, "verifies, but its metadata envelope is unreadable: {reason}")
            }
            Diagnosis::Payload { reason } => {
                write!(f, "verifies, but its payload is not readable: {reason}")
            }
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
