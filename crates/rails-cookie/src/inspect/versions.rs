//! Which Rails versions' defaults read or write a configuration, and the settings a profile needs beyond them.
//!
//! Each version's defaults are those of `config.load_defaults <version>`: AES-256-GCM from 5.2
//! (`use_authenticated_cookie_encryption`), the purpose envelope from 6.0 (`use_cookies_with_metadata`), PBKDF2-SHA256
//! keys from 7.0 (`key_generator_hash_digest_class`), MessagePack serializers from 7.1; `secret_token` sessions until
//! 5.2 (6.0 removed it). A configuration no version's defaults have is placed where the fewest of those three
//! switches must change.

use std::fmt;

use super::Envelope;
use crate::digest::Digest;
use crate::message_encryptor::Cipher;
use crate::profile::{CookieKind, Profile, RailsVersion};
use crate::serializer::{Format, Serializer};

/// A setting a [`Profile`] needs beyond the preset of a version, under its Rails name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// `config.action_dispatch.cookies_serializer`.
    CookiesSerializer(Serializer),
    /// `config.action_dispatch.use_authenticated_cookie_encryption` (false: AES-256-CBC in 5.2+).
    UseAuthenticatedCookieEncryption(bool),
    /// `config.action_dispatch.use_cookies_with_metadata` (false: no purpose envelope in 6.0+).
    UseCookiesWithMetadata(bool),
    /// `config.active_support.key_generator_hash_digest_class` (SHA1 in 7.0+: an app not on `load_defaults 7.0`).
    KeyGeneratorHashDigestClass(Digest),
    /// `config.action_dispatch.cookies_digest` (4.2–5.1 HMACs).
    CookiesDigest(Digest),
    /// `config.action_dispatch.signed_cookie_digest` (5.2+ signed jar).
    SignedCookieDigest(Digest),
    /// `config.action_dispatch.encrypted_cookie_salt`.
    EncryptedCookieSalt(String),
    /// `config.action_dispatch.encrypted_signed_cookie_salt`.
    EncryptedSignedCookieSalt(String),
    /// `config.action_dispatch.authenticated_encrypted_cookie_salt`.
    AuthenticatedEncryptedCookieSalt(String),
    /// `config.action_dispatch.signed_cookie_salt`.
    SignedCookieSalt(String),
    /// The value goes through the signed jar (`cookies.signed`), not the encrypted one.
    SignedJar,
    /// The app has a `config.secret_token` and no `secret_key_base` (Rails 3.2 – 5.2): build the codec with
    /// [`crate::CookieCodec::with_secret_token_only`].
    SecretTokenOnly,
}

impl Setting {
    /// Applies the setting to a profile (`SecretTokenOnly` leaves it as it is).
    pub fn apply(&self, profile: Profile) -> Profile {
        match self {
            Setting::CookiesSerializer(s) => profile.cookies_serializer(*s),
            Setting::UseAuthenticatedCookieEncryption(on) => {
                profile.use_authenticated_cookie_encryption(*on)
            }
            Setting::UseCookiesWithMetadata(on) => profile.use_cookies_with_metadata(*on),
            Setting::KeyGeneratorHashDigestClass(d) => profile.key_generator_hash_digest_class(*d),
            Setting::CookiesDigest(d) => profile.cookies_digest(*d),
            Setting::SignedCookieDigest(d) => profile.signed_cookie_digest(*d),
            Setting::EncryptedCookieSalt(s) => profile.encrypted_cookie_salt(s.as_str()),
            Setting::EncryptedSignedCookieSalt(s) => {
                profile.encrypted_signed_cookie_salt(s.as_str())
            }
            Setting::AuthenticatedEncryptedCookieSalt(s) => {
                profile.authenticated_encrypted_cookie_salt(s.as_str())
            }
            Setting::SignedCookieSalt(s) => profile.signed_cookie_salt(s.as_str()),
            Setting::SignedJar => profile.session_cookie(CookieKind::Signed),
            Setting::SecretTokenOnly => profile,
        }
    }
}

impl fmt::Display for Setting {
    /// The line of Rails configuration (or the fact) the setting stands for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const AD: &str = "config.action_dispatch";
        match self {
            Setting::CookiesSerializer(s) => write!(f, "{AD}.cookies_serializer = :{}", s.name()),
            Setting::UseAuthenticatedCookieEncryption(on) => {
                write!(f, "{AD}.use_authenticated_cookie_encryption = {on}")
            }
            Setting::UseCookiesWithMetadata(on) => {
                write!(f, "{AD}.use_cookies_with_metadata = {on}")
            }
            Setting::KeyGeneratorHashDigestClass(d) => {
                write!(
                    f,
                    "config.active_support.key_generator_hash_digest_class = OpenSSL::Digest::{d}"
                )
            }
            Setting::CookiesDigest(d) => write!(f, "{AD}.cookies_digest = \"{d}\""),
            Setting::SignedCookieDigest(d) => write!(f, "{AD}.signed_cookie_digest = \"{d}\""),
            Setting::EncryptedCookieSalt(s) => write!(f, "{AD}.encrypted_cookie_salt = {s:?}"),
            Setting::EncryptedSignedCookieSalt(s) => {
                write!(f, "{AD}.encrypted_signed_cookie_salt = {s:?}")
            }
            Setting::AuthenticatedEncryptedCookieSalt(s) => {
                write!(f, "{AD}.authenticated_encrypted_cookie_salt = {s:?}")
            }
            Setting::SignedCookieSalt(s) => write!(f, "{AD}.signed_cookie_salt = {s:?}"),
            Setting::SignedJar => f.write_str("the signed jar (cookies.signed)"),
            Setting::SecretTokenOnly => {
                f.write_str("config.secret_token, without a secret_key_base")
            }
        }
    }
}

/// The facts the version tables need.
pub(super) struct Facts {
    pub(super) kind: CookieKind,
    pub(super) cipher: Option<Cipher>,
    pub(super) kdf: Option<Digest>,
    pub(super) hmac: Option<Digest>,
    pub(super) envelope: Envelope,
    pub(super) format: Option<Format>,
}

/// A load_defaults-governed setting changed from a version's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Switch {
    /// `use_authenticated_cookie_encryption = false` in 5.2+.
    Cbc,
    /// `key_generator_hash_digest_class = SHA1` in 7.0+.
    Sha1Kdf,
    /// `use_cookies_with_metadata = false` in 6.0+.
    NoMetadata,
}

/// The switches `v`'s defaults need to take this cookie as their own, or `None` when they cannot.
pub(super) fn reads_as_own(v: RailsVersion, f: &Facts) -> Option<Vec<Switch>> {
    use RailsVersion as V;
    let Some(kdf) = f.kdf else {
        // A secret_token-only app (Rails 3.2 – 5.2; 6.0 removed secret_token): bare signed messages.
        return (v <= V::V5_2 && f.envelope == Envelope::None).then(Vec::new);
    };
    let mut switches = Vec::new();
    match kdf {
        Digest::Sha256 if v < V::V7_0 => return None,
        Digest::Sha256 => {}
        Digest::Sha1 if v >= V::V7_0 => switches.push(Switch::Sha1Kdf),
        Digest::Sha1 => {}
        _ => return None,
    }
    // 5.2 reads envelopes without a purpose only; before 5.2 there are none.
    match f.envelope {
        Envelope::None => {}
        Envelope::Expiry if v < V::V5_2 => return None,
        Envelope::Purpose if v < V::V6_0 => return None,
        Envelope::Expiry | Envelope::Purpose => {}
    }
    if f.format == Some(Format::MessagePack) && v < V::V7_1 {
        return None;
    }
    if f.kind == CookieKind::Encrypted {
        match f.cipher? {
            Cipher::Aes256Cbc if v >= V::V5_2 => {
                // 5.2+'s primary CBC encryptor always signs with SHA1 (cookies_digest only reaches the upgrade path).
                if f.hmac != Some(Digest::Sha1) {
                    return None;
                }
                switches.push(Switch::Cbc);
            }
            Cipher::Aes256Cbc => {}
            _ if v < V::V5_2 => return None,
            _ => {}
        }
    }
    Some(switches)
}

/// The switches `v`'s defaults need to write this cookie, or `None` when they cannot.
pub(super) fn writes(v: RailsVersion, f: &Facts) -> Option<Vec<Switch>> {
    use RailsVersion as V;
    let mut switches = reads_as_own(v, f)?;
    if f.kdf.is_none() {
        return Some(switches);
    }
    // use_authenticated_cookie_encryption, which 5.2's expiry envelope depends on in both jars.
    let aead = !switches.contains(&Switch::Cbc);
    match f.envelope {
        Envelope::None if v >= V::V6_0 => switches.push(Switch::NoMetadata),
        Envelope::None => {}
        // 5.2 writes the expiry envelope only with authenticated encryption on (both jars).
        Envelope::Expiry if v == V::V5_2 => {
            if !aead {
                return None;
            }
        }
        Envelope::Expiry => switches.push(Switch::NoMetadata),
        Envelope::Purpose => {}
    }
    Some(switches)
}

pub(super) fn fewest_switches(
    rule: impl Fn(RailsVersion) -> Option<Vec<Switch>>,
) -> Vec<RailsVersion> {
    let found: Vec<(RailsVersion, usize)> =
        RailsVersion::ALL.iter().filter_map(|&v| rule(v).map(|s| (v, s.len()))).collect();
    let fewest = found.iter().map(|(_, n)| *n).min().unwrap_or(0);
    found.into_iter().filter(|(_, n)| *n == fewest).map(|(v, _)| v).collect()
}
