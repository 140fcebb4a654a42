//! Named presets: the cookie settings of a new app of each Rails version, every one overridable under its Rails
//! name.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::key_generator::RAILS_ITERATIONS;
use crate::message_encryptor::Cipher;
use crate::metadata::EnvelopeDetection;
use crate::rotation::Rotation;
use crate::serializer::Serializer;

/// A Rails release line whose cookie behaviour differs from its neighbours'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RailsVersion {
    /// 4.2 (also 4.0/4.1 with `secret_key_base`).
    V4_2,
    /// 5.0.
    V5_0,
    /// 5.1.
    V5_1,
    /// 5.2: AES-256-GCM, expiry-only envelope.
    V5_2,
    /// 6.0: purpose envelope.
    V6_0,
    /// 6.1: SameSite=Lax, GCM rotation for CBC apps.
    V6_1,
    /// 7.0: PBKDF2-SHA256 key derivation.
    V7_0,
    /// 7.1: exact-prefix envelope detection, new serializers.
    V7_1,
    /// 7.2.
    V7_2,
    /// 8.0.
    V8_0,
    /// 8.1: `escape_js_separators_in_json = false` (U+2028/U+2029 unescaped in JSON), cookie overflow counts the
    /// name, MessagePack `SafeBuffer`.
    V8_1,
}

impl RailsVersion {
    /// Every supported version, oldest first.
    pub const ALL: [RailsVersion; 11] = [
        RailsVersion::V4_2,
        RailsVersion::V5_0,
        RailsVersion::V5_1,
        RailsVersion::V5_2,
        RailsVersion::V6_0,
        RailsVersion::V6_1,
        RailsVersion::V7_0,
        RailsVersion::V7_1,
        RailsVersion::V7_2,
        RailsVersion::V8_0,
        RailsVersion::V8_1,
    ];

    /// `"6.1"` and so on.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RailsVersion::V4_2 => "4.2",
            RailsVersion::V5_0 => "5.0",
            RailsVersion::V5_1 => "5.1",
            RailsVersion::V5_2 => "5.2",
            RailsVersion::V6_0 => "6.0",
            RailsVersion::V6_1 => "6.1",
            RailsVersion::V7_0 => "7.0",
            RailsVersion::V7_1 => "7.1",
            RailsVersion::V7_2 => "7.2",
            RailsVersion::V8_0 => "8.0",
            RailsVersion::V8_1 => "8.1",
        }
    }
}

impl FromStr for RailsVersion {
    type Err = Error;

    /// Accepts `"6.1"`, `"6.1.7.10"`, `"8.0.1"`, `"v8.1"`; 4.0 and 4.1 (with `secret_key_base`) write the cookies
    /// 4.2 writes and read as 4.2. A bare major (`"7"`) names no release line, and any release line not listed is an
    /// error naming the known ones: a version this crate does not know may write cookies it cannot, so it is never
    /// taken for a neighbour.
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.trim().trim_start_matches(['v', 'V']).split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| bad_version(s))?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| bad_version(s))?;
        // Patch levels are free-form ("6.1.7.10", "8.0.0.rc1") but not empty.
        for patch in parts {
            if patch.is_empty() || !patch.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad_version(s));
            }
        }
        Ok(match (major, minor) {
            (4, 0..=2) => RailsVersion::V4_2,
            (5, 0) => RailsVersion::V5_0,
            (5, 1) => RailsVersion::V5_1,
            (5, 2) => RailsVersion::V5_2,
            (6, 0) => RailsVersion::V6_0,
            (6, 1) => RailsVersion::V6_1,
            (7, 0) => RailsVersion::V7_0,
            (7, 1) => RailsVersion::V7_1,
            (7, 2) => RailsVersion::V7_2,
            (8, 0) => RailsVersion::V8_0,
            (8, 1) => RailsVersion::V8_1,
            _ => return Err(bad_version(s)),
        })
    }
}

fn bad_version(s: &str) -> Error {
    let known: Vec<&str> = RailsVersion::ALL.iter().map(|v| v.as_str()).collect();
    Error::Config(format!(
        "unknown Rails version {s:?}; known release lines: 4.0, 4.1, {} (major.minor; a patch level such as 7.2.2 is fine)",
        known.join(", ")
    ))
}

impl fmt::Display for RailsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which jar the session cookie goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieKind {
    /// `cookies.encrypted` — every app with a `secret_key_base`.
    Encrypted,
    /// `cookies.signed` — readable by the client, tamper-proof.
    Signed,
}

/// The cookie settings of a Rails app.
///
/// Start from the preset of the app's Rails version (`config.load_defaults`), then override what the app's
/// configuration changes, under the Rails setting's name:
///
/// ```
/// use rails_cookie::{Digest, Profile, Serializer};
/// let profile = Profile::rails_6_1()
///     .cookies_serializer(Serializer::Hybrid)
///     .encrypted_cookie_salt("my encrypted cookie salt")
///     .signed_cookie_digest(Digest::Sha256);
/// assert_eq!(profile.serializer(), Serializer::Hybrid);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Profile {
    pub(crate) version: RailsVersion,
    pub(crate) kdf_digest: Digest,
    pub(crate) key_iterations: u32,
    pub(crate) use_authenticated_cookie_encryption: bool,
    pub(crate) encrypted_cookie_cipher: Cipher,
    pub(crate) use_cookies_with_metadata: bool,
    pub(crate) serializer: Serializer,
    pub(crate) encrypted_cookie_salt: String,
    pub(crate) encrypted_signed_cookie_salt: String,
    pub(crate) authenticated_encrypted_cookie_salt: String,
    pub(crate) signed_cookie_salt: String,
    pub(crate) cookies_digest: Option<Digest>,
    pub(crate) signed_cookie_digest: Option<Digest>,
    pub(crate) session_cookie: CookieKind,
    pub(crate) rotations: Vec<Rotation>,
    pub(crate) envelope_detection: EnvelopeDetection,
    pub(crate) escape_html_entities_in_json: bool,
    pub(crate) escape_js_separators_in_json: bool,
}

impl Profile {
    /// The defaults of a new app of `version`.
    pub fn for_version(version: RailsVersion) -> Profile {
        use RailsVersion as V;
        let modern = version >= V::V5_2;
        Profile {
            version,
            kdf_digest: if version >= V::V7_0 { Digest::Sha256 } else { Digest::Sha1 },
            key_iterations: RAILS_ITERATIONS,
            use_authenticated_cookie_encryption: modern,
            encrypted_cookie_cipher: Cipher::Aes256Gcm,
            use_cookies_with_metadata: version >= V::V6_0,
            serializer: Serializer::Json,
            encrypted_cookie_salt: "encrypted cookie".into(),
            encrypted_signed_cookie_salt: "signed encrypted cookie".into(),
            authenticated_encrypted_cookie_salt: "authenticated encrypted cookie".into(),
            signed_cookie_salt: "signed cookie".into(),
            cookies_digest: None,
            signed_cookie_digest: None,
            session_cookie: CookieKind::Encrypted,
            rotations: Vec::new(),
            envelope_detection: if version >= V::V7_1 {
                EnvelopeDetection::Prefix
            } else {
                EnvelopeDetection::Parse
            },
            escape_html_entities_in_json: true,
            escape_js_separators_in_json: version < V::V8_1,
        }
    }

    /// The defaults of a new app of the version named (`"6.1"`, `"7.0.8"`, …).
    pub fn for_version_str(version: &str) -> Result<Profile> {
        Ok(Profile::for_version(version.parse()?))
    }

    /// Rails 4.2: AES-256-CBC + HMAC-SHA1, no metadata, JSON.
    pub fn rails_4_2() -> Profile {
        Profile::for_version(RailsVersion::V4_2)
    }
    /// Rails 5.0 (cookies as 4.2).
    pub fn rails_5_0() -> Profile {
        Profile::for_version(RailsVersion::V5_0)
    }
    /// Rails 5.1 (cookies as 4.2).
    pub fn rails_5_1() -> Profile {
        Profile::for_version(RailsVersion::V5_1)
    }
    /// Rails 5.2: AES-256-GCM, expiry-only envelope, reads 4.2-style CBC cookies.
    pub fn rails_5_2() -> Profile {
        Profile::for_version(RailsVersion::V5_2)
    }
    /// Rails 6.0: GCM with the purpose envelope.
    pub fn rails_6_0() -> Profile {
        Profile::for_version(RailsVersion::V6_0)
    }
    /// Rails 6.1 (cookie bytes as 6.0).
    pub fn rails_6_1() -> Profile {
        Profile::for_version(RailsVersion::V6_1)
    }
    /// Rails 7.0: PBKDF2-HMAC-SHA256 key derivation.
    pub fn rails_7_0() -> Profile {
        Profile::for_version(RailsVersion::V7_0)
    }
    /// Rails 7.1: exact-prefix envelope detection.
    pub fn rails_7_1() -> Profile {
        Profile::for_version(RailsVersion::V7_1)
    }
    /// Rails 7.2 (cookies as 7.1).
    pub fn rails_7_2() -> Profile {
        Profile::for_version(RailsVersion::V7_2)
    }
    /// Rails 8.0 (cookies as 7.1).
    pub fn rails_8_0() -> Profile {
        Profile::for_version(RailsVersion::V8_0)
    }
    /// Rails 8.1: JSON leaves U+2028/U+2029 unescaped (`escape_js_separators_in_json = false`), and the 4096-byte
    /// cookie limit counts the name too.
    pub fn rails_8_1() -> Profile {
        Profile::for_version(RailsVersion::V8_1)
    }

    /// `config.active_support.escape_html_entities_in_json` (true by default in every version): JSON writes `<`,
    /// `>`, `&` as `\u003c`, `\u003e`, `\u0026`.
    pub fn escape_html_entities_in_json(mut self, on: bool) -> Self {
        self.escape_html_entities_in_json = on;
        self
    }

    /// `config.active_support.escape_js_separators_in_json` (true before `load_defaults 8.1`, false from it): JSON
    /// writes U+2028 and U+2029 as `\u2028`, `\u2029`.
    pub fn escape_js_separators_in_json(mut self, on: bool) -> Self {
        self.escape_js_separators_in_json = on;
        self
    }

    /// How this Rails version's serializers behave where versions differ.
    pub(crate) fn dialect(&self) -> crate::serializer::Dialect {
        crate::serializer::Dialect {
            escapes: crate::serializer::json::Escapes {
                html_entities: self.escape_html_entities_in_json,
                js_separators: self.escape_js_separators_in_json,
            },
            safe_buffer: self.version >= RailsVersion::V8_1,
        }
    }

    /// Whether the 4096-byte limit counts the cookie's name with its value (8.1+) or the value alone.
    pub(crate) fn overflow_counts_name(&self) -> bool {
        self.version >= RailsVersion::V8_1
    }

    /// `config.active_support.key_generator_hash_digest_class` (7.0+; SHA1 before).
    pub fn key_generator_hash_digest_class(mut self, digest: Digest) -> Self {
        self.kdf_digest = digest;
        self
    }

    /// PBKDF2 iterations (Rails always uses 1000 for cookies; for apps with a custom key generator).
    pub fn key_iterations(mut self, iterations: u32) -> Self {
        self.key_iterations = iterations;
        self
    }

    /// `config.action_dispatch.use_authenticated_cookie_encryption`: GCM (true) or CBC + HMAC (false).
    pub fn use_authenticated_cookie_encryption(mut self, on: bool) -> Self {
        self.use_authenticated_cookie_encryption = on;
        self
    }

    /// `config.action_dispatch.encrypted_cookie_cipher` (an AEAD cipher used when authenticated encryption is on).
    pub fn encrypted_cookie_cipher(mut self, cipher: Cipher) -> Result<Self> {
        if !cipher.is_aead() {
            return Err(Error::Config(
                "encrypted_cookie_cipher must be an AEAD cipher; turn use_authenticated_cookie_encryption off for aes-256-cbc"
                    .into(),
            ));
        }
        self.encrypted_cookie_cipher = cipher;
        Ok(self)
    }

    /// Chooses the session cookie's cipher: GCM ciphers turn authenticated encryption on, `aes-256-cbc` off.
    pub fn cipher(self, cipher: Cipher) -> Self {
        if cipher.is_aead() {
            let mut p = self.use_authenticated_cookie_encryption(true);
            p.encrypted_cookie_cipher = cipher;
            p
        } else {
            self.use_authenticated_cookie_encryption(false)
        }
    }

    /// `config.action_dispatch.use_cookies_with_metadata` (6.0+): write the purpose envelope.
    pub fn use_cookies_with_metadata(mut self, on: bool) -> Self {
        self.use_cookies_with_metadata = on;
        self
    }

    /// `config.action_dispatch.cookies_serializer`.
    pub fn cookies_serializer(mut self, serializer: Serializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// `config.action_dispatch.encrypted_cookie_salt` (CBC encryption key).
    pub fn encrypted_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.encrypted_cookie_salt = salt.into();
        self
    }

    /// `config.action_dispatch.encrypted_signed_cookie_salt` (CBC HMAC key).
    pub fn encrypted_signed_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.encrypted_signed_cookie_salt = salt.into();
        self
    }

    /// `config.action_dispatch.authenticated_encrypted_cookie_salt` (GCM key).
    pub fn authenticated_encrypted_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.authenticated_encrypted_cookie_salt = salt.into();
        self
    }

    /// `config.action_dispatch.signed_cookie_salt`.
    pub fn signed_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.signed_cookie_salt = salt.into();
        self
    }

    /// `config.action_dispatch.cookies_digest`: the HMAC digest of 4.2–5.1 CBC and signed cookies, and of the
    /// legacy-CBC reader of 5.2+.
    pub fn cookies_digest(mut self, digest: Digest) -> Self {
        self.cookies_digest = Some(digest);
        self
    }

    /// `config.action_dispatch.signed_cookie_digest` (5.2+).
    pub fn signed_cookie_digest(mut self, digest: Digest) -> Self {
        self.signed_cookie_digest = Some(digest);
        self
    }

    /// Puts the session in the signed jar instead of the encrypted one.
    pub fn session_cookie(mut self, kind: CookieKind) -> Self {
        self.session_cookie = kind;
        self
    }

    /// `config.action_dispatch.cookies_rotations`: also accept cookies written with other keys or settings; such
    /// cookies decode with [`crate::Decoded::rewrite`] set.
    pub fn rotate(mut self, rotation: Rotation) -> Self {
        self.rotations.push(rotation);
        self
    }

    /// The Rails version this profile starts from.
    #[must_use]
    pub fn version(&self) -> RailsVersion {
        self.version
    }

    /// The serializer.
    #[must_use]
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// The PBKDF2 digest.
    #[must_use]
    pub fn kdf_digest(&self) -> Digest {
        self.kdf_digest
    }

    /// The session cookie's cipher.
    #[must_use]
    pub fn session_cipher(&self) -> Cipher {
        if self.use_authenticated_cookie_encryption {
            self.encrypted_cookie_cipher
        } else {
            Cipher::Aes256Cbc
        }
    }

    /// Whether the session goes through the signed jar.
    #[must_use]
    pub fn session_cookie_kind(&self) -> CookieKind {
        self.session_cookie
    }

    /// Whether new cookies carry the purpose envelope.
    #[must_use]
    pub fn writes_purpose(&self) -> bool {
        self.version >= RailsVersion::V6_0 && self.use_cookies_with_metadata
    }

    /// The HMAC digest of the primary CBC encryptor: `cookies_digest` before 5.2, always SHA1 from 5.2 on.
    pub(crate) fn cbc_digest(&self) -> Digest {
        if self.version >= RailsVersion::V5_2 {
            Digest::Sha1
        } else {
            self.cookies_digest.unwrap_or(Digest::Sha1)
        }
    }

    /// The HMAC digest of the signed jar.
    pub(crate) fn signed_digest(&self) -> Digest {
        if self.version >= RailsVersion::V5_2 {
            self.signed_cookie_digest.unwrap_or(Digest::Sha1)
        } else {
            self.cookies_digest.unwrap_or(Digest::Sha1)
        }
    }

    /// Checks the combination of settings is one Rails can have.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.use_authenticated_cookie_encryption && self.version < RailsVersion::V5_2 {
            return Err(Error::Config(format!(
                "Rails {} has no authenticated cookie encryption (AES-GCM arrived in 5.2); use aes-256-cbc",
                self.version
            )));
        }
        if self.key_iterations == 0 {
            return Err(Error::Config("key_iterations must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!("6.1.7.10".parse::<RailsVersion>().unwrap(), RailsVersion::V6_1);
        assert_eq!("8.1".parse::<RailsVersion>().unwrap(), RailsVersion::V8_1);
        assert_eq!("8.1.3.1".parse::<RailsVersion>().unwrap(), RailsVersion::V8_1);
        assert_eq!("v8.0.0.rc1".parse::<RailsVersion>().unwrap(), RailsVersion::V8_0);
        assert_eq!("4.0".parse::<RailsVersion>().unwrap(), RailsVersion::V4_2);
        for unknown in [
            "3.2", "six", "8.2", "9", "9.0", "7.3", "6.2", "5.3", "4.3", "8.x", "8.1.", "8.", "",
            "7", "8",
        ] {
            let e = unknown.parse::<RailsVersion>().unwrap_err().to_string();
            assert!(e.contains("7.2, 8.0, 8.1"), "{unknown:?}: {e}");
        }
    }

    #[test]
    fn presets_match_the_version_matrix() {
        let p = Profile::rails_4_2();
        assert_eq!(
            (p.session_cipher(), p.kdf_digest(), p.writes_purpose()),
            (Cipher::Aes256Cbc, Digest::Sha1, false)
        );
        let p = Profile::rails_5_2();
        assert_eq!((p.session_cipher(), p.writes_purpose()), (Cipher::Aes256Gcm, false));
        let p = Profile::rails_6_1();
        assert_eq!(
            (p.session_cipher(), p.kdf_digest(), p.writes_purpose()),
            (Cipher::Aes256Gcm, Digest::Sha1, true)
        );
        let p = Profile::rails_7_0();
        assert_eq!(
            (p.kdf_digest(), p.envelope_detection),
            (Digest::Sha256, EnvelopeDetection::Parse)
        );
        assert_eq!(Profile::rails_8_0().envelope_detection, EnvelopeDetection::Prefix);
        let (p80, p81) = (Profile::rails_8_0(), Profile::rails_8_1());
        assert!(p80.escape_js_separators_in_json && !p81.escape_js_separators_in_json);
        assert!(p80.escape_html_entities_in_json && p81.escape_html_entities_in_json);
        assert!(!p80.overflow_counts_name() && p81.overflow_counts_name());
        // Everything else of 8.1 that touches cookies is 8.0's (load_defaults 8.0/8.1 change nothing else there).
        assert_eq!(
            (
                p81.session_cipher(),
                p81.kdf_digest(),
                p81.writes_purpose(),
                p81.serializer(),
                p81.envelope_detection
            ),
            (
                p80.session_cipher(),
                p80.kdf_digest(),
                p80.writes_purpose(),
                p80.serializer(),
                p80.envelope_detection
            )
        );
    }

    #[test]
    fn digests_follow_the_version() {
        let p = Profile::rails_4_2().cookies_digest(Digest::Sha256);
        assert_eq!((p.cbc_digest(), p.signed_digest()), (Digest::Sha256, Digest::Sha256));
        let p = Profile::rails_6_1().cookies_digest(Digest::Sha256);
        assert_eq!((p.cbc_digest(), p.signed_digest()), (Digest::Sha1, Digest::Sha1));
    }

    #[test]
    fn gcm_before_5_2_is_refused() {
        assert!(Profile::rails_4_2().use_authenticated_cookie_encryption(true).validate().is_err());
        assert!(Profile::rails_6_1().encrypted_cookie_cipher(Cipher::Aes256Cbc).is_err());
    }
}
