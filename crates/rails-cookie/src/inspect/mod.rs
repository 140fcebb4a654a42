//! Which Rails configuration wrote a cookie — or why none of them can read it.
//!
//! [`Inspector::inspect`] reads a cookie as someone debugging one would, cheapest step first:
//!
//! 1. Its [`Shape`], with no key at all: signed (`data--digest`, and which digest its length gives) or encrypted
//!    (three parts: AES-256-GCM with a 12-byte IV and a 16-byte tag; two parts whose data holds `ciphertext--iv`:
//!    AES-256-CBC with an HMAC), sizes, base64 validity, percent-encoding. A value that is not one of Rails' shapes,
//!    or is one but damaged, is diagnosed here, and nothing is derived for it.
//! 2. Every configuration Rails can write that shape with, each key derived once (a run never derives the same key
//!    twice): the key-derivation digest (PBKDF2-SHA256, then PBKDF2-SHA1, which costs several times more per key)
//!    × the jar's salt (the app's own, when given, then Rails' default) — and first of all the
//!    legacy `secret_token`, which costs no derivation. The shape already names the jar (a GCM value is never a
//!    signed one), so a run derives at most two keys per salt. The MAC or tag is verified before anything is
//!    decrypted or deserialized; the first configuration that verifies is the answer.
//! 3. What the verified message holds: the metadata [`Envelope`] (none, expiry only, purpose) with its purpose and
//!    expiry, then the payload's [`Format`] (JSON, Marshal, MessagePack), which is loaded.
//!
//! The [`Report`] says what matched — a [`Finding`] with the Rails versions whose defaults take the cookie as their
//! own and the [`Setting`]s a [`Profile`] needs beyond that version's preset — or, when nothing reads it, a
//! [`Diagnosis`] built from what was learned: not a Rails cookie, a damaged one, one whose MAC or tag does not
//! verify under this `secret_key_base` (so the secret or the salts differ), one written for another cookie's name,
//! or an expired one.
//!
//! ```
//! use rails_cookie::inspect::{Envelope, Inspector};
//! use rails_cookie::{Cipher, CookieCodec, Digest, Format, Hash, Profile, RailsVersion, SecretKeyBase, Value};
//!
//! let secret = SecretKeyBase::new("4a7f0c1e9b2d3c5e6f708192a3b4c5d6".repeat(4))?;
//! // A cookie as a Rails 7.2 app writes it…
//! let mut session = Hash::new();
//! session.insert("session_id", "0123456789abcdef0123456789abcdef".into());
//! let app = CookieCodec::new(Profile::rails_7_2(), secret.clone())?;
//! let cookie = rails_cookie::escape(&app.encode("_app_session", &Value::Hash(session), None)?);
//!
//! // …inspected knowing only the secret.
//! let report = Inspector::new().secret_key_base(secret).inspect(Some("_app_session"), &cookie);
//! assert!(report.is_readable());
//! let found = report.finding.as_ref().expect("verified");
//! assert_eq!(found.cipher, Some(Cipher::Aes256Gcm));
//! assert_eq!(found.kdf_digest, Some(Digest::Sha256));
//! assert_eq!((found.envelope, found.format), (Envelope::Purpose, Some(Format::Json)));
//! assert_eq!(found.rails_versions.first(), Some(&RailsVersion::V7_0));
//! // The preset of any of those versions (plus `found.settings(v)`, empty here) reads it as its own.
//! assert!(found.settings(RailsVersion::V7_2).is_empty());
//! # Ok::<(), rails_cookie::Error>(())
//! ```

mod diagnosis;
mod input;
mod search;
mod shape;
mod versions;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use diagnosis::Diagnosis;
pub use input::{CookieInput, InputError, InputForm};
pub use shape::{Layout, Part, PartContent, Shape, ShapeProblem};
pub use versions::Setting;

use crate::cookie::MAX_COOKIE_SIZE;
use crate::digest::Digest;
use crate::message_encryptor::Cipher;
use crate::metadata;
use crate::profile::{CookieKind, Profile, RailsVersion};
use crate::secret::{Key, SecretKeyBase};
use crate::serializer::{Format, Serializer};
use crate::value::Value;
use search::{How, Outcome, Search};
use shape::analyse;
use versions::{fewest_switches, reads_as_own, writes, Facts, Switch};

/// The largest value inspected, in bytes after percent-decoding: Rails' 4096-byte limit and a little more (a value
/// over 4096 bytes is not one Rails wrote, but a few bytes over may be a copy with something pasted around it).
pub const MAX_INSPECTED_SIZE: usize = MAX_COOKIE_SIZE + 1024;

/// The salts Rails' cookie jars derive their keys from (`config.action_dispatch.*_salt`); `None` is Rails' default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Salts {
    /// `encrypted_cookie_salt` (CBC encryption key; default `"encrypted cookie"`).
    pub encrypted_cookie_salt: Option<String>,
    /// `encrypted_signed_cookie_salt` (CBC HMAC key; default `"signed encrypted cookie"`).
    pub encrypted_signed_cookie_salt: Option<String>,
    /// `authenticated_encrypted_cookie_salt` (GCM key; default `"authenticated encrypted cookie"`).
    pub authenticated_encrypted_cookie_salt: Option<String>,
    /// `signed_cookie_salt` (signed jar; default `"signed cookie"`).
    pub signed_cookie_salt: Option<String>,
}

impl Salts {
    /// Whether every salt is Rails' default.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Salts::default()
    }
}

/// The salts of a new Rails app, as the presets have them.
fn default_salts() -> (String, String, String, String) {
    let p = Profile::for_version(RailsVersion::V6_1);
    (
        p.encrypted_cookie_salt,
        p.encrypted_signed_cookie_salt,
        p.authenticated_encrypted_cookie_salt,
        p.signed_cookie_salt,
    )
}

/// The metadata envelope around a payload (`ActiveSupport::Messages::Metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Envelope {
    /// A bare payload: every cookie before 5.2, a 5.2 cookie without expiry, a 6.0+ cookie without expiry when
    /// `use_cookies_with_metadata` is off.
    None,
    /// `{"_rails":{"message":…,"exp":…,"pur":null}}`: 5.2 with an expiry, or 6.0+ with an expiry and
    /// `use_cookies_with_metadata` off.
    Expiry,
    /// `pur` names the cookie (`cookie.<name>`): 6.0+ with `use_cookies_with_metadata`.
    Purpose,
}

impl Envelope {
    /// `none`, `expiry`, `purpose`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::None => "none",
            Envelope::Expiry => "expiry",
            Envelope::Purpose => "purpose",
        }
    }
}

/// A configuration that verified the cookie, and what it found inside.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The jar.
    pub kind: CookieKind,
    /// The cipher (encrypted cookies).
    pub cipher: Option<Cipher>,
    /// The PBKDF2 digest of the key generator; `None` for a legacy `secret_token`, which is the key itself.
    pub kdf_digest: Option<Digest>,
    /// The HMAC digest (CBC and signed cookies).
    pub hmac: Option<Digest>,
    /// The key was the legacy `secret_token`.
    pub secret_token: bool,
    /// The app's own salts that verified it (the others are Rails' defaults).
    pub salts: Salts,
    /// The metadata envelope.
    pub envelope: Envelope,
    /// The envelope's `pur`.
    pub purpose: Option<String>,
    /// The envelope's `exp`.
    pub expires_at: Option<OffsetDateTime>,
    /// The envelope is not in Rails' exact byte layout: Rails 7.1+ would take it for the session itself.
    pub envelope_not_canonical: bool,
    /// The payload's format (`None` when it is neither JSON, Marshal nor MessagePack).
    pub format: Option<Format>,
    /// The Rails versions whose defaults, with [`Finding::settings`], read this cookie as their own (no rewrite):
    /// any of them is a working `RAILS_VERSION`; the app that wrote it has its `config.load_defaults` among them.
    pub rails_versions: Vec<RailsVersion>,
    /// The Rails versions whose defaults, with [`Finding::writer_settings`], write exactly this format.
    pub written_by: Vec<RailsVersion>,
}

impl Finding {
    fn facts(&self) -> Facts {
        Facts {
            kind: self.kind,
            cipher: self.cipher,
            kdf: if self.secret_token { None } else { self.kdf_digest },
            hmac: self.hmac,
            envelope: self.envelope,
            format: self.format,
        }
    }

    fn switch_settings(&self, switches: &[Switch]) -> Vec<Setting> {
        switches
            .iter()
            .map(|s| match s {
                Switch::Cbc => Setting::UseAuthenticatedCookieEncryption(false),
                Switch::Sha1Kdf => Setting::KeyGeneratorHashDigestClass(Digest::Sha1),
                Switch::NoMetadata => Setting::UseCookiesWithMetadata(false),
            })
            .collect()
    }

    fn common_settings(&self, version: RailsVersion, out: &mut Vec<Setting>) {
        match self.format {
            Some(Format::Marshal) => out.push(Setting::CookiesSerializer(Serializer::Marshal)),
            Some(Format::MessagePack) => {
                out.push(Setting::CookiesSerializer(Serializer::MessagePack));
            }
            _ => {}
        }
        if let Some(d) = self.hmac.filter(|d| *d != Digest::Sha1) {
            if version <= RailsVersion::V5_1 {
                out.push(Setting::CookiesDigest(d));
            } else if self.kind == CookieKind::Signed {
                out.push(Setting::SignedCookieDigest(d));
            }
        }
        let s = &self.salts;
        if let Some(v) = &s.encrypted_cookie_salt {
            out.push(Setting::EncryptedCookieSalt(v.clone()));
        }
        if let Some(v) = &s.encrypted_signed_cookie_salt {
            out.push(Setting::EncryptedSignedCookieSalt(v.clone()));
        }
        if let Some(v) = &s.authenticated_encrypted_cookie_salt {
            out.push(Setting::AuthenticatedEncryptedCookieSalt(v.clone()));
        }
        if let Some(v) = &s.signed_cookie_salt {
            out.push(Setting::SignedCookieSalt(v.clone()));
        }
        if self.kind == CookieKind::Signed {
            out.push(Setting::SignedJar);
        }
    }

    /// What a [`Profile`] of `version` needs, beyond the preset, to read this cookie as its own (empty for a
    /// version whose defaults already do). Meant for a version of [`Finding::rails_versions`].
    #[must_use]
    pub fn settings(&self, version: RailsVersion) -> Vec<Setting> {
        let mut out = Vec::new();
        if self.secret_token {
            out.push(Setting::SecretTokenOnly);
        }
        out.extend(self.switch_settings(&reads_as_own(version, &self.facts()).unwrap_or_default()));
        self.common_settings(version, &mut out);
        out
    }

    /// What an app on `version` needs, beyond its defaults, to write this cookie. Meant for a version of
    /// [`Finding::written_by`].
    #[must_use]
    pub fn writer_settings(&self, version: RailsVersion) -> Vec<Setting> {
        let mut out = Vec::new();
        if self.secret_token {
            out.push(Setting::SecretTokenOnly);
        }
        out.extend(self.switch_settings(&writes(version, &self.facts()).unwrap_or_default()));
        self.common_settings(version, &mut out);
        out
    }

    /// The preset of `version` with [`Finding::settings`] applied: a codec built from it (with
    /// [`crate::CookieCodec::with_secret_token_only`] for a `secret_token` finding) reads this cookie as its own.
    pub fn profile(&self, version: RailsVersion) -> Profile {
        self.settings(version).iter().fold(Profile::for_version(version), |p, s| s.apply(p))
    }
}

/// What [`Inspector::inspect`] learned about a cookie.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The name it was inspected under or, when none was given, the one its purpose names.
    pub cookie_name: Option<String>,
    /// Its shape.
    pub shape: Shape,
    /// The configuration that verified it, if one did.
    pub finding: Option<Finding>,
    /// What Rails reads from it, when it is readable.
    pub value: Option<Value>,
    /// Why it is not readable.
    pub diagnosis: Option<Diagnosis>,
    /// Configurations whose MAC or tag was checked.
    pub candidates: usize,
    /// PBKDF2 keys derived (each at most once).
    pub key_derivations: usize,
}

impl Report {
    /// Whether a configuration reads it: verified, its purpose and expiry accepted, its payload loaded.
    #[must_use]
    pub fn is_readable(&self) -> bool {
        self.value.is_some()
    }
}

/// Finds the Rails configuration that wrote a cookie; see the [module docs](self).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Inspector {
    secret: Option<SecretKeyBase>,
    secret_token: Option<Key>,
    salts: Salts,
    now: Option<OffsetDateTime>,
}

impl Inspector {
    /// An inspector with no key: it reads shapes only until given a secret.
    pub fn new() -> Self {
        Inspector::default()
    }

    /// The app's `secret_key_base`.
    pub fn secret_key_base(mut self, secret: SecretKeyBase) -> Self {
        self.secret = Some(secret);
        self
    }

    /// A legacy `config.secret_token` (Rails 3.2 – 5.2): signed cookies are also checked against it.
    pub fn secret_token(mut self, token: impl Into<Vec<u8>>) -> Self {
        self.secret_token = Some(Key::from_bytes(token));
        self
    }

    /// `config.action_dispatch.encrypted_cookie_salt`, tried before Rails' default.
    pub fn encrypted_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.salts.encrypted_cookie_salt = Some(salt.into());
        self
    }

    /// `config.action_dispatch.encrypted_signed_cookie_salt`, tried before Rails' default.
    pub fn encrypted_signed_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.salts.encrypted_signed_cookie_salt = Some(salt.into());
        self
    }

    /// `config.action_dispatch.authenticated_encrypted_cookie_salt`, tried before Rails' default.
    pub fn authenticated_encrypted_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.salts.authenticated_encrypted_cookie_salt = Some(salt.into());
        self
    }

    /// `config.action_dispatch.signed_cookie_salt`, tried before Rails' default.
    pub fn signed_cookie_salt(mut self, salt: impl Into<String>) -> Self {
        self.salts.signed_cookie_salt = Some(salt.into());
        self
    }

    /// The salts of `profile` that differ from Rails' defaults (to inspect with an app's configured profile).
    pub fn salts_of(mut self, profile: &Profile) -> Self {
        let (enc, signed_enc, auth, signed) = default_salts();
        let custom = |have: &str, default: &str| (have != default).then(|| have.to_owned());
        self.salts = Salts {
            encrypted_cookie_salt: custom(&profile.encrypted_cookie_salt, &enc),
            encrypted_signed_cookie_salt: custom(
                &profile.encrypted_signed_cookie_salt,
                &signed_enc,
            ),
            authenticated_encrypted_cookie_salt: custom(
                &profile.authenticated_encrypted_cookie_salt,
                &auth,
            ),
            signed_cookie_salt: custom(&profile.signed_cookie_salt, &signed),
        };
        self
    }

    /// Checks expiry against `now` instead of the current time.
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Inspects `value` (as a `Cookie` header carries it: percent-encoded or not) under `cookie_name`, whose
    /// `cookie.<name>` a purpose envelope must name; without a name, any purpose is accepted and reported. Never
    /// panics, whatever the input; values over [`MAX_INSPECTED_SIZE`] bytes are refused unread.
    ///
    /// ```
    /// use rails_cookie::inspect::{Diagnosis, Inspector};
    /// use rails_cookie::SecretKeyBase;
    /// let report = Inspector::new()
    ///     .secret_key_base(SecretKeyBase::new("x".repeat(128))?)
    ///     .inspect(Some("_app_session"), "not a cookie");
    /// assert!(matches!(report.diagnosis, Some(Diagnosis::NotRails { .. })));
    /// assert_eq!(report.key_derivations, 0);
    /// # Ok::<(), rails_cookie::Error>(())
    /// ```
    pub fn inspect(&self, cookie_name: Option<&str>, value: &str) -> Report {
        let (shape, plain_value) = analyse(value);
        let mut report = Report {
            cookie_name: cookie_name.map(str::to_owned),
            shape,
            finding: None,
            value: None,
            diagnosis: None,
            candidates: 0,
            key_derivations: 0,
        };
        let layout = match (&report.shape.problem, report.shape.layout) {
            (Some(ShapeProblem::TooLarge), _) => {
                report.diagnosis = Some(Diagnosis::TooLarge { len: report.shape.len });
                return report;
            }
            (Some(ShapeProblem::NotRails(reason)), _)
            | (Some(ShapeProblem::Damaged(reason)), None) => {
                report.diagnosis = Some(Diagnosis::NotRails { reason: reason.clone() });
                return report;
            }
            (Some(ShapeProblem::Damaged(reason)), Some(layout)) => {
                report.diagnosis = Some(Diagnosis::Damaged { layout, reason: reason.clone() });
                return report;
            }
            (None, None) => {
                report.diagnosis = Some(Diagnosis::NotRails { reason: "unrecognised".into() });
                return report;
            }
            (None, Some(layout)) => layout,
        };
        let hmac = report.shape.hmac;
        let mut search = Search {
            secret: self.secret.as_ref(),
            derived: Vec::new(),
            derivations: 0,
            candidates: 0,
        };
        let outcome = match (layout, hmac) {
            _ if self.secret.is_none()
                && (layout != Layout::Signed || self.secret_token.is_none()) =>
            {
                report.diagnosis = Some(Diagnosis::NoSecret { layout, hmac });
                return report;
            }
            (Layout::Gcm, _) => search.gcm(plain_value.as_bytes(), &self.salts),
            (Layout::Cbc, Some(hmac)) => search.cbc(plain_value.as_bytes(), hmac, &self.salts),
            (Layout::Signed, Some(hmac)) => {
                search.signed(plain_value.as_bytes(), hmac, &self.salts, self.secret_token.as_ref())
            }
            _ => Outcome::NotVerified,
        };
        report.candidates = search.candidates;
        report.key_derivations = search.derivations;
        let (how, plaintext) = match outcome {
            Outcome::Verified(how, plaintext) => (how, plaintext),
            Outcome::NotVerified => {
                report.diagnosis = Some(Diagnosis::NotVerified {
                    layout,
                    hmac,
                    tried: search.candidates,
                    custom_salts: !self.salts.is_empty(),
                    secret_key_base: self.secret.is_some(),
                    secret_token: self.secret_token.is_some() && layout == Layout::Signed,
                });
                return report;
            }
            Outcome::EncryptionSalt(kdf_digest) => {
                report.diagnosis = Some(Diagnosis::EncryptionSalt { kdf_digest });
                return report;
            }
        };
        self.open(&mut report, layout, hmac, how, plaintext);
        report
    }

    /// Reads what a verified message holds: envelope, purpose, expiry, payload.
    fn open(
        &self,
        report: &mut Report,
        layout: Layout,
        hmac: Option<Digest>,
        how: How,
        plaintext: Vec<u8>,
    ) {
        let mut finding = Finding {
            kind: layout.kind(),
            cipher: layout.cipher(),
            kdf_digest: how.kdf,
            hmac,
            secret_token: how.kdf.is_none(),
            salts: how.salts,
            envelope: Envelope::None,
            purpose: None,
            expires_at: None,
            envelope_not_canonical: false,
            format: None,
            rails_versions: Vec::new(),
            written_by: Vec::new(),
        };
        let mut diagnosis = None;
        // The legacy secret_token verifier predates the envelope: its message is the payload.
        let opened = if finding.secret_token { None } else { metadata::open_unchecked(&plaintext) };
        let payload = match opened {
            None => plaintext,
            Some(Err(e)) => {
                diagnosis = Some(Diagnosis::Envelope { reason: e.to_string() });
                Vec::new()
            }
            Some(Ok(o)) => {
                finding.envelope =
                    if o.pur.is_some() { Envelope::Purpose } else { Envelope::Expiry };
                finding.envelope_not_canonical = !o.canonical;
                finding.purpose = o.pur;
                if let Some(exp) = &o.exp {
                    match OffsetDateTime::parse(exp, &Rfc3339) {
                        Ok(at) => finding.expires_at = Some(at),
                        Err(_) => {
                            diagnosis = Some(Diagnosis::Envelope {
                                reason: format!("the expiry {exp:?} is not an ISO 8601 time"),
                            });
                        }
                    }
                }
                // As Rails checks: the purpose first, then the expiry.
                match (&finding.purpose, report.cookie_name.as_deref()) {
                    (Some(p), Some(name)) if *p != format!("cookie.{name}") => {
                        diagnosis.get_or_insert(Diagnosis::Purpose {
                            purpose: p.clone(),
                            expected_name: name.to_owned(),
                        });
                    }
                    (Some(p), None) => {
                        report.cookie_name = p.strip_prefix("cookie.").map(str::to_owned);
                    }
                    _ => {}
                }
                let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
                if let (Some(at), Some(exp)) = (finding.expires_at, &o.exp) {
                    if now >= at {
                        diagnosis.get_or_insert(Diagnosis::Expired { at: exp.clone() });
                    }
                }
                o.payload
            }
        };
        if !matches!(diagnosis, Some(Diagnosis::Envelope { .. })) {
            let format = Format::detect(&payload);
            let serializer = match format {
                Format::Json => Serializer::Json,
                Format::Marshal => Serializer::Marshal,
                Format::MessagePack => Serializer::MessagePack,
            };
            match serializer.load(&payload) {
                Ok((value, _)) => {
                    finding.format = Some(format);
                    if diagnosis.is_none() {
                        report.value = Some(value);
                    }
                }
                Err(e) => {
                    // A Marshal or MessagePack signature names its format even when the rest is unreadable.
                    finding.format = (format != Format::Json).then_some(format);
                    let reason = match format {
                        Format::Json => format!(
                            "it is neither JSON, Marshal (04 08) nor MessagePack (CC 80): {e}"
                        ),
                        _ => e.to_string(),
                    };
                    diagnosis.get_or_insert(Diagnosis::Payload { reason });
                }
            }
        }
        let facts = finding.facts();
        finding.rails_versions = fewest_switches(|v| reads_as_own(v, &facts));
        finding.written_by = fewest_switches(|v| writes(v, &facts));
        report.finding = Some(finding);
        report.diagnosis = diagnosis;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CookieCodec, Hash};
    use time::macros::datetime;

    const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn skb() -> SecretKeyBase {
        SecretKeyBase::new(SKB).unwrap()
    }

    fn inspector() -> Inspector {
        Inspector::new().secret_key_base(skb()).at(NOW)
    }

    fn session() -> Value {
        let mut h = Hash::new();
        h.insert("session_id", "0123456789abcdef0123456789abcdef".into());
        h.insert("user_id", 42.into());
        Value::Hash(h)
    }

    fn cookie(profile: Profile, name: &str, expires: Option<OffsetDateTime>) -> String {
        let codec = CookieCodec::new(profile, skb()).unwrap();
        crate::escape(&codec.encode(name, &session(), expires).unwrap())
    }

    fn versions(v: &[RailsVersion]) -> String {
        v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn presets_are_found_with_their_versions() {
        use RailsVersion as V;
        let cases = [
            (
                Profile::rails_4_2(),
                Some(Cipher::Aes256Cbc),
                Digest::Sha1,
                Envelope::None,
                "4.2 5.0 5.1",
                "4.2 5.0 5.1",
            ),
            (
                Profile::rails_5_2(),
                Some(Cipher::Aes256Gcm),
                Digest::Sha1,
                Envelope::None,
                "5.2 6.0 6.1",
                "5.2",
            ),
            (
                Profile::rails_6_1(),
                Some(Cipher::Aes256Gcm),
                Digest::Sha1,
                Envelope::Purpose,
                "6.0 6.1",
                "6.0 6.1",
            ),
            (
                Profile::rails_7_0(),
                Some(Cipher::Aes256Gcm),
                Digest::Sha256,
                Envelope::Purpose,
                "7.0 7.1 7.2 8.0 8.1",
                "7.0 7.1 7.2 8.0 8.1",
            ),
            (
                Profile::rails_7_2().cookies_serializer(Serializer::MessagePack),
                Some(Cipher::Aes256Gcm),
                Digest::Sha256,
                Envelope::Purpose,
                "7.1 7.2 8.0 8.1",
                "7.1 7.2 8.0 8.1",
            ),
        ];
        for (profile, cipher, kdf, envelope, reads, writes) in cases {
            let version = profile.version();
            let report =
                inspector().inspect(Some("_app_session"), &cookie(profile, "_app_session", None));
            assert!(report.is_readable(), "{version}: {:?}", report.diagnosis);
            let f = report.finding.unwrap();
            assert_eq!(
                (f.cipher, f.kdf_digest, f.envelope),
                (cipher, Some(kdf), envelope),
                "{version}"
            );
            assert_eq!(versions(&f.rails_versions), reads, "{version}");
            assert_eq!(versions(&f.written_by), writes, "{version}");
            assert!(f.rails_versions.contains(&version) && f.written_by.contains(&version));
            assert!(f.settings(version).iter().all(|s| matches!(s, Setting::CookiesSerializer(_))));
            assert_eq!(report.value, Some(session()));
        }
        // 5.2 with an expiry: the envelope without a purpose, written by 5.2 alone.
        let c =
            cookie(Profile::rails_5_2(), "_app_session", Some(datetime!(2030-01-02 03:04:05 UTC)));
        let f = inspector().inspect(Some("_app_session"), &c).finding.unwrap();
        assert_eq!((f.envelope, versions(&f.written_by)), (Envelope::Expiry, "5.2".to_owned()));
        assert_eq!(f.expires_at, Some(datetime!(2030-01-02 03:04:05 UTC)));
        assert_eq!(f.rails_versions.first(), Some(&V::V5_2));
    }

    #[test]
    fn derivations_are_counted_and_never_repeated() {
        // SHA256 is tried first: a 7.0 cookie costs one derivation, a 6.1 cookie two.
        let r = inspector().inspect(Some("_s"), &cookie(Profile::rails_7_0(), "_s", None));
        assert_eq!((r.key_derivations, r.candidates), (1, 1));
        let r = inspector().inspect(Some("_s"), &cookie(Profile::rails_6_1(), "_s", None));
        assert_eq!((r.key_derivations, r.candidates), (2, 2));
        // CBC: the HMAC keys first, the encryption key only once the HMAC verifies.
        let r = inspector().inspect(Some("_s"), &cookie(Profile::rails_4_2(), "_s", None));
        assert_eq!((r.key_derivations, r.candidates), (3, 2));
        // Nothing verifies, with custom salts: two salts × two digests, each derived once.
        let other = Inspector::new()
            .secret_key_base(SecretKeyBase::new("y".repeat(128)).unwrap())
            .authenticated_encrypted_cookie_salt("mine");
        let r = other.inspect(Some("_s"), &cookie(Profile::rails_6_1(), "_s", None));
        assert_eq!((r.key_derivations, r.candidates), (4, 4));
        assert_eq!(r.diagnosis.as_ref().map(Diagnosis::kind), Some("not_verified"));
        // A salt equal to its default is not tried twice.
        let same =
            inspector().authenticated_encrypted_cookie_salt("authenticated encrypted cookie");
        let r = same.inspect(Some("_s"), &cookie(Profile::rails_6_1(), "_s", None));
        assert_eq!(r.key_derivations, 2);
        // The cache serves a shorter key from a longer one of the same salt.
        let secret = skb();
        let mut search =
            Search { secret: Some(&secret), derived: vec![], derivations: 0, candidates: 0 };
        let long = search.key(Digest::Sha1, "s", 64).unwrap();
        let short = search.key(Digest::Sha1, "s", 32).unwrap();
        assert_eq!((search.derivations, &long.expose()[..32]), (1, short.expose()));
    }

    #[test]
    fn custom_salts_are_found_and_reported() {
        let profile = Profile::rails_6_1().authenticated_encrypted_cookie_salt("my auth salt");
        let c = cookie(profile, "_app_session", None);
        let r = inspector().inspect(Some("_app_session"), &c);
        let d = r.diagnosis.unwrap();
        assert_eq!(d.salt_settings(), ["authenticated_encrypted_cookie_salt"]);
        assert!(
            d.to_string().contains("config.action_dispatch.authenticated_encrypted_cookie_salt"),
            "{d}"
        );
        let r = inspector()
            .authenticated_encrypted_cookie_salt("my auth salt")
            .inspect(Some("_app_session"), &c);
        let f = r.finding.unwrap();
        assert_eq!(f.salts.authenticated_encrypted_cookie_salt.as_deref(), Some("my auth salt"));
        assert_eq!(
            f.settings(RailsVersion::V6_1),
            [Setting::AuthenticatedEncryptedCookieSalt("my auth salt".into())]
        );
    }

    #[test]
    fn cbc_with_another_encryption_salt_is_told_apart() {
        let profile = Profile::rails_4_2().encrypted_cookie_salt("not the default");
        let r = inspector().inspect(Some("_s"), &cookie(profile, "_s", None));
        assert_eq!(r.diagnosis, Some(Diagnosis::EncryptionSalt { kdf_digest: Digest::Sha1 }));
    }

    #[test]
    fn purpose_and_expiry() {
        let c = cookie(Profile::rails_6_1(), "_other_session", None);
        let r = inspector().inspect(Some("_app_session"), &c);
        assert_eq!(
            r.diagnosis,
            Some(Diagnosis::Purpose {
                purpose: "cookie._other_session".into(),
                expected_name: "_app_session".into()
            })
        );
        assert!(r.value.is_none() && r.finding.is_some());
        // Without a name, the purpose names the cookie.
        let r = inspector().inspect(None, &c);
        assert!(r.is_readable());
        assert_eq!(r.cookie_name.as_deref(), Some("_other_session"));
        let c = cookie(Profile::rails_6_1(), "_s", Some(datetime!(2020-01-02 03:04:05 UTC)));
        let r = inspector().inspect(Some("_s"), &c);
        assert_eq!(r.diagnosis, Some(Diagnosis::Expired { at: "2020-01-02T03:04:05.000Z".into() }));
    }

    #[test]
    fn shapes_without_keys() {
        let s = Shape::of(&cookie(Profile::rails_6_1(), "_s", None));
        assert_eq!(
            (s.layout, s.problem.clone(), s.percent_encoded),
            (Some(Layout::Gcm), None, true)
        );
        assert_eq!(
            s.parts.iter().skip(1).map(|p| p.content.clone()).collect::<Vec<_>>(),
            [PartContent::Base64 { bytes: 12 }, PartContent::Base64 { bytes: 16 }]
        );
        let s = Shape::of(&cookie(Profile::rails_4_2(), "_s", None));
        assert_eq!((s.layout, s.hmac), (Some(Layout::Cbc), Some(Digest::Sha1)));
        for (value, kind) in [
            ("", "not_rails"),
            ("0123456789abcdef0123456789abcdef", "not_rails"),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2ln", "not_rails"),
            ("a--b--c--d", "not_rails"),
            ("AAAA--AAECAwQFBgcICQoL", "damaged"),
            ("AAAA--AAECAwQFBgcICQoL--AAECAwQFBgcICQoL", "damaged"),
            ("e30=--abc", "damaged"),
            ("e30=--xyz!", "not_rails"),
            ("e30=--0123456789abcdef0123456789abcdef012345678", "damaged"),
            ("e30=--0123456789ABCDEF0123456789ABCDEF01234567", "damaged"),
            ("e3 0=--0123456789abcdef0123456789abcdef01234567", "damaged"),
            ("e30=--0123456789abcdef0123456789abcdef01234567", "no_secret"),
        ] {
            let r = Inspector::new().inspect(None, value);
            assert_eq!(
                r.diagnosis.as_ref().map(Diagnosis::kind),
                Some(kind),
                "{value:?}: {:?}",
                r.diagnosis
            );
            assert_eq!(r.key_derivations, 0);
        }
        let big = "A".repeat(MAX_INSPECTED_SIZE + 1);
        assert_eq!(
            inspector().inspect(None, &big).diagnosis,
            Some(Diagnosis::TooLarge { len: big.len() })
        );
        assert_eq!(
            inspector()
                .inspect(None, &"%41".repeat(MAX_INSPECTED_SIZE + 1))
                .diagnosis
                .map(|d| d.kind()),
            Some("too_large")
        );
    }

    #[test]
    fn input_forms() {
        let p = |t: &str, n: Option<&str>| CookieInput::parse(t, n);
        let v = "abc%3D%3D--0123";
        assert_eq!(p(v, None).unwrap().form, InputForm::Value);
        let pair = p(&format!("_app_session={v}\n"), None).unwrap();
        assert_eq!(
            (pair.name.as_deref(), pair.value.as_str(), pair.form),
            (Some("_app_session"), v, InputForm::Pair)
        );
        let set = p(&format!("Set-Cookie: _a={v}; path=/; HttpOnly; SameSite=Lax"), None).unwrap();
        assert_eq!((set.name.as_deref(), set.form), (Some("_a"), InputForm::SetCookieHeader));
        let set =
            p(&format!("_a={v}; path=/; expires=Wed, 02 Jan 2030 03:04:05 GMT"), None).unwrap();
        assert_eq!(set.form, InputForm::SetCookieHeader);
        let header = format!("cookie: theme=dark; _a={v}; _a=second");
        assert_eq!(
            p(&header, None).unwrap().value,
            v,
            "the only Rails-shaped one, first occurrence"
        );
        assert!(matches!(
            p(&format!("Cookie: a={v}; b={v}"), None),
            Err(InputError::Ambiguous { .. })
        ));
        assert_eq!(p(&format!("Cookie: a={v}; b=x"), Some("b")).unwrap().value, "x");
        assert!(matches!(p("Cookie: a=1", Some("b")), Err(InputError::Missing { .. })));
        assert!(matches!(p("  \n", None), Err(InputError::Empty)));
        // Base64 padding and `--` are not names.
        for bare in ["eyJ0aGVtZSI6ImRhcmsifQ==--ad25", "abc=--def", "ct=--iv--tag==", "a/b=--c"] {
            assert_eq!(p(bare, None).unwrap().form, InputForm::Value, "{bare}");
        }
        assert_eq!(p("_s=abc==--d", Some("_s")).unwrap().value, "abc==--d");
    }

    #[test]
    fn signed_and_legacy() {
        let token = "legacy-secret-token-0123456789abcdef0123456789abcdef";
        let t13 = "BAh7B0kiD3Nlc3Npb25faWQGOgZFVEkiJTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmBjsAVEkiDHVzZXJfaWQGOwBUaS8=--6d72251d568ff66153d2521ee696fffbe8c16052";
        let r = Inspector::new().secret_token(token).inspect(Some("_app_session"), t13);
        assert!(r.is_readable(), "{:?}", r.diagnosis);
        let f = r.finding.unwrap();
        assert!(f.secret_token && f.kdf_digest.is_none());
        assert_eq!(
            (f.format, versions(&f.rails_versions)),
            (Some(Format::Marshal), "4.2 5.0 5.1 5.2".into())
        );
        assert_eq!(r.key_derivations, 0);
        let r = inspector().inspect(Some("_app_session"), t13);
        let d = r.diagnosis.unwrap();
        assert!(d.to_string().contains("config.secret_token"), "{d}");
        assert_eq!(r.key_derivations, 2);
    }

    #[test]
    fn any_input_is_answered_without_panic() {
        let inspector = inspector();
        for value in
            ["--", "----", "-- --", "%", "%zz--%", "=--=", "\u{0}--\u{0}", "é--é--é", "a--", "--a"]
        {
            let _ = inspector.inspect(Some("_s"), value);
            let _ = CookieInput::parse(value, None);
        }
    }
}
