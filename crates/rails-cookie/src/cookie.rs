//! The cookie jar: Rails' encrypted and signed jars for one app configuration, with every key derived once.

use std::borrow::Cow;
use std::fmt;

use time::OffsetDateTime;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::key_generator::KeyGenerator;
use crate::message_encryptor::{Cipher, MessageEncryptor};
use crate::message_verifier::MessageVerifier;
use crate::metadata::{self, EnvelopeDetection};
use crate::profile::{CookieKind, Profile, RailsVersion};
use crate::rotation::Rotation;
use crate::secret::SecretKeyBase;
use crate::serializer::Serializer;
use crate::value::Value;

/// The largest cookie Rails writes (`ActionDispatch::Cookies::MAX_COOKIE_SIZE`), counted before percent-encoding:
/// the value alone in Rails 4.2 – 8.0, the name and the value together from 8.1.
pub const MAX_COOKIE_SIZE: usize = 4096;

/// A decoded cookie.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Decoded {
    /// The value Rails would see.
    pub value: Value,
    /// The cookie was read through a rotation, an upgrade path or a non-native serializer format: Rails would
    /// write it again in the current format.
    pub rewrite: bool,
}

/// How a reader interprets what its cipher or verifier returns.
#[derive(Clone, Copy, Debug)]
struct Reading {
    serializer: Serializer,
    dialect: crate::serializer::Dialect,
    detection: EnvelopeDetection,
    /// Legacy `secret_token` cookies predate the envelope.
    envelope: bool,
}

struct EncryptedReader {
    encryptor: MessageEncryptor,
    reading: Reading,
}

struct SignedReader {
    verifier: MessageVerifier,
    reading: Reading,
}

/// Reads and writes the cookies of one Rails app: build it once (key derivation costs about 0.4 ms per key), then
/// share it (`CookieCodec` is `Send + Sync`).
///
/// ```
/// use rails_cookie::{CookieCodec, Hash, Profile, SecretKeyBase, Value};
/// let codec = CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new("s3cr3t".repeat(20))?)?;
/// let mut session = Hash::new();
/// session.insert("session_id", "0123456789abcdef0123456789abcdef".into());
/// session.insert("user_id", 42.into());
/// let cookie = codec.encode("_app_session", &Value::Hash(session.clone()), None)?;
/// let decoded = codec.decode("_app_session", &cookie)?;
/// assert_eq!(decoded.value, Value::Hash(session));
/// // The purpose envelope binds the value to its cookie name.
/// assert!(codec.decode("_other_session", &cookie).is_err());
/// # Ok::<(), rails_cookie::Error>(())
/// ```
pub struct CookieCodec {
    profile: Profile,
    encrypted: Vec<EncryptedReader>,
    signed: Vec<SignedReader>,
    /// Signed readers that only serve as fallbacks of the encrypted jar (`secret_token`).
    legacy: Vec<SignedReader>,
}

impl CookieCodec {
    /// Derives every key the profile needs (primary, rotations, built-in upgrade readers).
    pub fn new(profile: Profile, secret_key_base: SecretKeyBase) -> Result<Self> {
        profile.validate()?;
        let mut codec = CookieCodec {
            profile: profile.clone(),
            encrypted: Vec::new(),
            signed: Vec::new(),
            legacy: Vec::new(),
        };
        let kg = KeyGenerator::new(secret_key_base, profile.kdf_digest, profile.key_iterations)?;
        let upgrade = codec.add_app(&profile, &kg)?;
        let reading = Reading::of(&profile);
        for rotation in &profile.rotations {
            match rotation {
                Rotation::Encrypted { secret, sign_secret, cipher, digest } => {
                    let encryptor = match (cipher, sign_secret) {
                        (Cipher::Aes256Cbc, Some(sign)) => {
                            MessageEncryptor::cbc(secret, sign, *digest)?
                        }
                        (Cipher::Aes256Cbc, None) => {
                            return Err(Error::Config(
                                "an aes-256-cbc rotation needs a sign_secret".into(),
                            ))
                        }
                        (aead, _) => MessageEncryptor::gcm(*aead, secret)?,
                    };
                    codec.encrypted.push(EncryptedReader { encryptor, reading });
                }
                Rotation::Signed { secret, digest } => {
                    codec.signed.push(SignedReader {
                        verifier: MessageVerifier::new(secret, *digest),
                        reading,
                    });
                }
                Rotation::App { secret, profile: other } => {
                    other.validate()?;
                    let kg =
                        KeyGenerator::new(secret.clone(), other.kdf_digest, other.key_iterations)?;
                    let upgrade = codec.add_app(other, &kg)?;
                    codec.encrypted.extend(upgrade);
                }
                Rotation::SecretToken(token) => {
                    let reading =
                        Reading { serializer: Serializer::Marshal, envelope: false, ..reading };
                    let verifier = MessageVerifier::new(token, Digest::Sha1);
                    codec.legacy.push(SignedReader { verifier, reading });
                }
            }
        }
        codec.encrypted.extend(upgrade);
        Ok(codec)
    }

    /// A codec for an app that has only a legacy `secret_token` and no `secret_key_base` (Rails 3.2 – 5.1 era): the
    /// session is a signed cookie whose HMAC key is the raw token (Rails' `LegacyKeyGenerator` ignores salts).
    pub fn with_secret_token_only(profile: Profile, secret_token: &str) -> Result<Self> {
        if secret_token.len() < 30 {
            return Err(Error::Config(format!(
                "secret_token is {} bytes; Rails requires at least 30",
                secret_token.len()
            )));
        }
        let profile = profile.session_cookie(CookieKind::Signed);
        profile.validate()?;
        let token = crate::secret::Key::from_bytes(secret_token.as_bytes());
        let verifier = MessageVerifier::new(&token, profile.signed_digest());
        let reading = Reading::of(&profile);
        Ok(CookieCodec {
            signed: vec![SignedReader { verifier, reading }],
            encrypted: Vec::new(),
            legacy: Vec::new(),
            profile,
        })
    }

    /// Adds the primary encryptor and verifier of an app configuration; returns its built-in upgrade readers,
    /// which Rails consults after the configured rotations.
    fn add_app(&mut self, profile: &Profile, kg: &KeyGenerator) -> Result<Vec<EncryptedReader>> {
        let reading = Reading::of(profile);
        let cbc = |digest: Digest| -> Result<MessageEncryptor> {
            MessageEncryptor::cbc(
                &kg.generate_key(profile.encrypted_cookie_salt.as_bytes(), 32),
                &kg.generate_key(profile.encrypted_signed_cookie_salt.as_bytes(), 64),
                digest,
            )
        };
        let gcm = |cipher: Cipher| -> Result<MessageEncryptor> {
            MessageEncryptor::gcm(
                cipher,
                &kg.generate_key(
                    profile.authenticated_encrypted_cookie_salt.as_bytes(),
                    cipher.key_len(),
                ),
            )
        };
        let mut upgrade = Vec::new();
        if profile.use_authenticated_cookie_encryption {
            self.encrypted.push(EncryptedReader {
                encryptor: gcm(profile.encrypted_cookie_cipher)?,
                reading,
            });
            // 5.2+: read (and upgrade) cookies of the CBC era.
            let digest = profile.cookies_digest.unwrap_or(Digest::Sha1);
            upgrade.push(EncryptedReader { encryptor: cbc(digest)?, reading });
        } else {
            self.encrypted.push(EncryptedReader { encryptor: cbc(profile.cbc_digest())?, reading });
            if profile.version >= RailsVersion::V6_1 {
                // 6.1+ "prepare_upgrade": a CBC app can read GCM cookies, so a GCM rollout can be rolled back.
                upgrade.push(EncryptedReader { encryptor: gcm(Cipher::Aes256Gcm)?, reading });
            }
        }
        let verifier = MessageVerifier::new(
            &kg.generate_key(profile.signed_cookie_salt.as_bytes(), 64),
            profile.signed_digest(),
        );
        self.signed.push(SignedReader { verifier, reading });
        Ok(upgrade)
    }

    /// The profile this codec was built from.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Decodes the session cookie (through the jar the profile names) at the current time.
    ///
    /// `value` is the cookie value as Rack hands it over, i.e. already percent-decoded (see [`crate::unescape`]).
    pub fn decode(&self, cookie_name: &str, value: &str) -> Result<Decoded> {
        self.decode_at(cookie_name, value, OffsetDateTime::now_utc())
    }

    /// [`Self::decode`] with an explicit clock, for expiry checks.
    pub fn decode_at(
        &self,
        cookie_name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Decoded> {
        match self.profile.session_cookie {
            CookieKind::Encrypted => self.decode_encrypted_at(cookie_name, value, now),
            CookieKind::Signed => self.decode_signed_at(cookie_name, value, now),
        }
    }

    /// Reads a `cookies.encrypted[name]` value.
    pub fn decode_encrypted_at(
        &self,
        cookie_name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Decoded> {
        let value = value.as_bytes();
        let mut first_error = None;
        for (i, reader) in self.encrypted.iter().enumerate() {
            match reader.encryptor.decrypt_and_verify(value) {
                Ok(plain) => return finish(&plain, reader.reading, cookie_name, now, i > 0),
                Err(e) => keep_most_telling(&mut first_error, e),
            }
        }
        for reader in &self.legacy {
            if let Ok(plain) = reader.verifier.verify(value) {
                return finish(&plain, reader.reading, cookie_name, now, true);
            }
        }
        Err(first_error.unwrap_or(Error::Malformed("no encryptor configured")))
    }

    /// Reads a `cookies.signed[name]` value.
    pub fn decode_signed_at(
        &self,
        cookie_name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Decoded> {
        let value = value.as_bytes();
        let mut first_error = None;
        for (i, reader) in self.signed.iter().chain(&self.legacy).enumerate() {
            match reader.verifier.verify(value) {
                Ok(plain) => return finish(&plain, reader.reading, cookie_name, now, i > 0),
                Err(e) => keep_most_telling(&mut first_error, e),
            }
        }
        Err(first_error.unwrap_or(Error::Malformed("no verifier configured")))
    }

    /// Encodes a session cookie value (not yet percent-encoded) through the jar the profile names, with a fresh IV.
    /// `expires` is the cookie's `:expires` (with `expire_after`, now + expire_after); it goes into the envelope
    /// when the Rails version writes one.
    pub fn encode(
        &self,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
    ) -> Result<String> {
        match self.profile.session_cookie {
            CookieKind::Encrypted => self.encode_encrypted(cookie_name, value, expires),
            CookieKind::Signed => self.encode_signed(cookie_name, value, expires),
        }
    }

    /// Writes a `cookies.encrypted[name] = value`.
    pub fn encode_encrypted(
        &self,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
    ) -> Result<String> {
        let plain = self.plaintext(cookie_name, value, expires, true)?;
        let primary = self
            .encrypted
            .first()
            .ok_or_else(|| Error::Config("no encryptor configured".into()))?;
        check_size(&self.profile, cookie_name, primary.encryptor.encrypt_and_sign(&plain)?)
    }

    /// Writes a `cookies.signed[name] = value`.
    pub fn encode_signed(
        &self,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
    ) -> Result<String> {
        let plain = self.plaintext(cookie_name, value, expires, false)?;
        let primary =
            self.signed.first().ok_or_else(|| Error::Config("no verifier configured".into()))?;
        check_size(&self.profile, cookie_name, primary.verifier.generate(&plain))
    }

    pub(crate) fn encode_with_iv(
        &self,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
        iv: &[u8],
    ) -> Result<String> {
        let plain = self.plaintext(cookie_name, value, expires, true)?;
        let primary = self
            .encrypted
            .first()
            .ok_or_else(|| Error::Config("no encryptor configured".into()))?;
        check_size(&self.profile, cookie_name, primary.encryptor.encrypt_with_iv(&plain, iv)?)
    }

    /// Serializes and, where this Rails version does, wraps in the metadata envelope.
    fn plaintext(
        &self,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
        encrypted: bool,
    ) -> Result<Vec<u8>> {
        let p = &self.profile;
        let payload = crate::serializer::dump_with(p.serializer, value, p.dialect())?;
        let envelope = match p.version {
            v if v < RailsVersion::V5_2 => None,
            // 5.2 writes an expiry-only envelope, and only with authenticated encryption on (both jars).
            RailsVersion::V5_2 => expires
                .filter(|_| p.use_authenticated_cookie_encryption || !encrypted)
                .map(|e| (Some(e), None)),
            _ if expires.is_some() || p.use_cookies_with_metadata => {
                Some((expires, p.use_cookies_with_metadata.then(|| purpose(cookie_name))))
            }
            _ => None,
        };
        Ok(match envelope {
            Some((exp, pur)) => metadata::wrap(&payload, exp, pur.as_deref(), p.dialect().escapes),
            None => payload,
        })
    }
}

impl Reading {
    fn of(profile: &Profile) -> Self {
        Reading {
            serializer: profile.serializer,
            dialect: profile.dialect(),
            detection: profile.envelope_detection,
            // ActiveSupport::Messages::Metadata arrived in 5.2: before it a cookie is its payload, whatever it holds.
            envelope: profile.version >= RailsVersion::V5_2,
        }
    }
}

fn purpose(cookie_name: &str) -> String {
    format!("cookie.{cookie_name}")
}

fn finish(
    plain: &[u8],
    reading: Reading,
    cookie_name: &str,
    now: OffsetDateTime,
    rotated: bool,
) -> Result<Decoded> {
    let payload: Cow<'_, [u8]> = if reading.envelope {
        metadata::unwrap(plain, reading.detection, &purpose(cookie_name), now)?
    } else {
        Cow::Borrowed(plain)
    };
    let (value, reserialize) = reading.serializer.load_in(&payload, reading.dialect)?;
    Ok(Decoded { value, rewrite: rotated || reserialize })
}

/// Keeps the error that says most: an authentication failure beats a shape error from a reader of another format.
fn keep_most_telling(slot: &mut Option<Error>, e: Error) {
    match slot {
        None => *slot = Some(e),
        Some(Error::Malformed(_)) if matches!(e, Error::InvalidSignature) => *slot = Some(e),
        Some(_) => {}
    }
}

/// `check_for_overflow!`: 8.1 counts `name.bytesize + value.bytesize`, earlier versions the value alone.
fn check_size(profile: &Profile, cookie_name: &str, value: String) -> Result<String> {
    let size =
        if profile.overflow_counts_name() { cookie_name.len() + value.len() } else { value.len() };
    if size > MAX_COOKIE_SIZE {
        return Err(Error::Overflow { size });
    }
    Ok(value)
}

impl fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieCodec")
            .field("version", &self.profile.version)
            .field("cipher", &self.profile.session_cipher())
            .field("serializer", &self.profile.serializer)
            .field("encrypted_readers", &self.encrypted.len())
            .field("signed_readers", &self.signed.len())
            .finish_non_exhaustive()
    }
}

/// Operations that weaken security, for reproducing Rails' test vectors only.
pub mod dangerous {
    use time::OffsetDateTime;

    use super::CookieCodec;
    use crate::error::Result;
    use crate::value::Value;

    /// Encrypts with a caller-chosen IV. Never do this with real sessions: a repeated IV lets an attacker forge
    /// GCM messages. It exists so tests can compare our bytes with cookies Rails wrote under a stubbed IV.
    pub fn encode_with_fixed_iv(
        codec: &CookieCodec,
        cookie_name: &str,
        value: &Value,
        expires: Option<OffsetDateTime>,
        iv: &[u8],
    ) -> Result<String> {
        codec.encode_with_iv(cookie_name, value, expires, iv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Hash;
    use time::macros::datetime;

    const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    /// Spec vector T3 (Rails 6.1.7.10; identical from 6.0 to 8.0 with a SHA1 key generator).
    const T3: &str = "hJVzMuhBNarN+8Wsr7xdm1yFbQ1FS5xvr0KAEfy/KSNkRwLI0wEhOwG0sgh1ujwx6dvxst6+DrbwkF6bvN1iU/1PJrc3BUETmBK7BJPPIPiuNAk223B/ZIrsY4Re9sy0+JMF9Ne03XZFfuaWFoWIF9U/SqaBGjdA92E1QPhj+D892kmQhQV6fensFr0Gko7Yerh1ZzAHEDJRWN+akMSCrm3Zl1US05EgEiXyvbjege/zMtKWNlUuhPRONSY4+39ppxcoBK/K2rrdoJi/DzkRRTrj/M9j4XAERifwL5q6rANHciR/tJ02IezJ7LKtR09hNxrByCWwvuT7MbRx36mpkGkrPPbgRW2iOWqAepntDeEr2YUNcgnFccQkvjk3d7TRMSRHfhqUBr2pAbNEzv/VHY1kT67a62VxxyI1MwDT40uPz0bydBn/TMAf9IbBT4VriCjFmQ==--AAECAwQFBgcICQoL--nI5czWcWnIWcZ9a3s0s/7w==";

    fn skb() -> SecretKeyBase {
        SecretKeyBase::new(SKB).unwrap()
    }

    fn session() -> Value {
        let mut flashes = Hash::new();
        flashes.insert("notice", "Signed in <ok> & done".into());
        let mut flash = Hash::new();
        flash.insert("discard", Value::Array(vec![]));
        flash.insert("flashes", Value::Hash(flashes));
        let mut h = Hash::new();
        h.insert("session_id", "0123456789abcdef0123456789abcdef".into());
        h.insert("_csrf_token", "3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=".into());
        h.insert("user_id", 42.into());
        h.insert("flash", Value::Hash(flash));
        Value::Hash(h)
    }

    #[test]
    fn rails_8_1_counts_the_name_in_the_4096_byte_limit() {
        let name = "_a_rather_long_session_cookie_name";
        let v80 = CookieCodec::new(Profile::rails_8_0(), skb()).unwrap();
        let v81 = CookieCodec::new(Profile::rails_8_1(), skb()).unwrap();
        // Grow a session until its cookie value is within the name's length of 4096 bytes: 8.0 still writes it
        // (it counts the value only), 8.1 refuses it (`name.bytesize + value.bytesize > 4096`).
        let mut h = Hash::new();
        let mut checked = false;
        for len in 2000..2400 {
            h.insert("pad", Value::String("x".repeat(len)));
            let value = Value::Hash(h.clone());
            let Ok(cookie) = v80.encode(name, &value, None) else { break };
            let size = cookie.len();
            if size > 4096 - name.len() && size <= 4096 {
                assert!(
                    matches!(v81.encode(name, &value, None), Err(Error::Overflow { size: s }) if s == size + name.len())
                );
                checked = true;
                break;
            }
        }
        assert!(checked, "no session size fell in the window");
    }

    #[test]
    fn rails_8_1_writes_js_separators_raw_in_json_sessions() {
        // Through the signed jar, whose payload can be read back without a key.
        let mut h = Hash::new();
        h.insert("s", Value::String("<\u{2028}>".into()));
        let value = Value::Hash(h);
        let payload = |profile: Profile| {
            let codec =
                CookieCodec::new(profile.session_cookie(CookieKind::Signed), skb()).unwrap();
            let cookie = codec.encode("_s", &value, None).unwrap();
            let data =
                crate::encoding::b64_decode(cookie.split("--").next().unwrap().as_bytes()).unwrap();
            let envelope: serde_json::Value = serde_json::from_slice(&data).unwrap();
            let message = envelope["_rails"]["message"].as_str().unwrap().to_owned();
            String::from_utf8(crate::encoding::b64_decode(message.as_bytes()).unwrap()).unwrap()
        };
        assert_eq!(payload(Profile::rails_8_0()), r#"{"s":"\u003c\u2028\u003e"}"#);
        assert_eq!(payload(Profile::rails_8_1()), "{\"s\":\"\\u003c\u{2028}\\u003e\"}");
        assert_eq!(
            payload(Profile::rails_8_1().escape_js_separators_in_json(true)),
            r#"{"s":"\u003c\u2028\u003e"}"#
        );
    }

    #[test]
    fn t3_decodes_and_encodes_byte_exact() {
        let codec = CookieCodec::new(Profile::rails_6_1(), skb()).unwrap();
        let d = codec.decode_at("_app_session", T3, NOW).unwrap();
        assert_eq!(d, Decoded { value: session(), rewrite: false });
        let iv: Vec<u8> = (0..12).collect();
        assert_eq!(codec.encode_with_iv("_app_session", &session(), None, &iv).unwrap(), T3);
        assert!(matches!(codec.decode_at("_other", T3, NOW), Err(Error::PurposeMismatch)));
    }

    #[test]
    fn gcm_app_reads_cbc_cookies_and_asks_for_a_rewrite() {
        let old = CookieCodec::new(Profile::rails_4_2(), skb()).unwrap();
        let new = CookieCodec::new(Profile::rails_6_1(), skb()).unwrap();
        let cookie = old.encode("_app_session", &session(), None).unwrap();
        let d = new.decode_at("_app_session", &cookie, NOW).unwrap();
        assert_eq!(d, Decoded { value: session(), rewrite: true });
    }

    #[test]
    fn sha256_app_with_sha1_rotation() {
        let sha1 = KeyGenerator::new(skb(), Digest::Sha1, 1000).unwrap();
        let profile = Profile::rails_7_0().rotate(Rotation::encrypted(
            sha1.generate_key(b"authenticated encrypted cookie", 32),
            Cipher::Aes256Gcm,
        ));
        let codec = CookieCodec::new(profile, skb()).unwrap();
        let d = codec.decode_at("_app_session", T3, NOW).unwrap();
        assert!(d.rewrite);
        let fresh = codec.encode("_app_session", &session(), None).unwrap();
        assert!(!codec.decode_at("_app_session", &fresh, NOW).unwrap().rewrite);
        let plain_7_0 = CookieCodec::new(Profile::rails_7_0(), skb()).unwrap();
        assert!(matches!(
            plain_7_0.decode_at("_app_session", T3, NOW),
            Err(Error::InvalidSignature)
        ));
    }

    #[test]
    fn expiry_is_enforced_with_the_injected_clock() {
        let codec = CookieCodec::new(Profile::rails_6_1(), skb()).unwrap();
        let cookie =
            codec.encode("_s", &session(), Some(datetime!(2030-01-02 03:04:05 UTC))).unwrap();
        assert!(codec.decode_at("_s", &cookie, NOW).is_ok());
        assert!(matches!(
            codec.decode_at("_s", &cookie, datetime!(2031-01-01 00:00 UTC)),
            Err(Error::Expired(_))
        ));
    }

    #[test]
    fn overflow_is_an_error_on_write() {
        let codec = CookieCodec::new(Profile::rails_6_1(), skb()).unwrap();
        let mut h = Hash::new();
        h.insert("session_id", "0".repeat(32).into());
        h.insert("blob", "x".repeat(2170).into());
        assert_eq!(
            codec.encode("_app_session", &Value::Hash(h.clone()), None).unwrap().len(),
            4092
        );
        h.insert("blob", "x".repeat(2200).into());
        assert!(matches!(
            codec.encode("_app_session", &Value::Hash(h), None),
            Err(Error::Overflow { size: 4148 })
        ));
    }

    #[cfg(feature = "marshal")]
    #[test]
    fn secret_token_fallback() {
        // Spec vector T13: the Rails 3.2/4.0 signed Marshal session.
        let t13 = "BAh7B0kiD3Nlc3Npb25faWQGOgZFVEkiJTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmBjsAVEkiDHVzZXJfaWQGOwBUaS8=--6d72251d568ff66153d2521ee696fffbe8c16052";
        let profile = Profile::rails_4_2()
            .rotate(Rotation::secret_token("legacy-secret-token-0123456789abcdef0123456789abcdef"));
        let codec = CookieCodec::new(profile, skb()).unwrap();
        let d = codec.decode_at("_app_session", t13, NOW).unwrap();
        assert!(d.rewrite);
        assert_eq!(d.value.as_hash().unwrap().get("user_id"), Some(&Value::Integer(42)));
    }

    #[test]
    fn debug_shows_no_keys() {
        let codec = CookieCodec::new(Profile::rails_6_1(), skb()).unwrap();
        let dbg = format!("{codec:?}");
        assert!(dbg.contains("V6_1") && !dbg.contains("630a"), "{dbg}");
    }
}
