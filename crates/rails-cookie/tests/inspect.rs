//! `inspect` on every cookie of every vector file: each is identified with the configuration that wrote it (cipher,
//! key-derivation digest, serializer, envelope, a range of Rails versions that contains the writer's, and settings
//! whose profile reads it as its own), and each cookie no configuration reads gets the diagnosis its damage calls
//! for.
//!
//! What is expected is taken from the files, never from the inspector: the writer's configuration (the file's, or
//! the one a case's note names), the plaintext and payload bytes Rails produced, and the case's name.

use rails_cookie::inspect::{Diagnosis, Envelope, Inspector, Report, MAX_INSPECTED_SIZE};
use rails_cookie::{
    unescape, Cipher, CookieCodec, CookieKind, Digest, Format, Profile, RailsVersion, SecretKeyBase,
};
use serde_json::Value as Json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{load, ordered_eq, vector_files, vectors_dir, version_of};

/// What a cookie's writer was.
struct Writer {
    profile: String,
    config: Json,
    /// The key was derived with SHA1 although the profile's is SHA256 (written with Rails < 7.0 defaults).
    sha1_kdf: bool,
    /// Written with `use_authenticated_cookie_encryption = false` although the profile has it on.
    cbc: bool,
}

impl Writer {
    fn of(profile: &str, sha1_kdf: bool, cbc: bool) -> Writer {
        let path = vectors_dir().join(format!("{profile}.json"));
        Writer { profile: profile.to_owned(), config: load(&path)["config"].clone(), sha1_kdf, cbc }
    }

    /// The version whose behaviour wrote it: a Rails < 7.0 key is 6.1's.
    fn version(&self) -> RailsVersion {
        if self.sha1_kdf {
            RailsVersion::V6_1
        } else {
            version_of(&self.profile)
        }
    }

    fn kind(&self) -> CookieKind {
        if self.config["kind"] == "signed" {
            CookieKind::Signed
        } else {
            CookieKind::Encrypted
        }
    }

    fn cipher(&self) -> Option<Cipher> {
        match (self.kind(), self.cbc) {
            (CookieKind::Signed, _) => None,
            (_, true) => Some(Cipher::Aes256Cbc),
            _ => Some(self.config["cipher"].as_str().unwrap().parse().unwrap()),
        }
    }

    fn kdf(&self) -> Option<Digest> {
        if self.sha1_kdf {
            return Some(Digest::Sha1);
        }
        self.config["key_generator_hash_digest_class"].as_str().map(|d| d.parse().unwrap())
    }

    /// The format its serializer writes.
    fn format(&self) -> Format {
        match self.config["cookies_serializer"].as_str().unwrap() {
            "marshal" => Format::Marshal,
            "message_pack" | "message_pack_allow_marshal" => Format::MessagePack,
            _ => Format::Json,
        }
    }
}

/// The writer of a case: the file's configuration, unless the case's note names another one.
fn writer_of(file_profile: &str, case: &Json) -> Writer {
    let note = case["note"].as_str().unwrap_or_default();
    if let Some(rest) = note.strip_prefix("written with the configuration of profile ") {
        let (profile, cbc) =
            match rest.split_once(" with use_authenticated_cookie_encryption=false") {
                Some((p, _)) => (p, true),
                None => (rest, false),
            };
        return Writer::of(profile, false, cbc);
    }
    // "… (rails_6_1_json) …": a cookie of that profile, which this file's configuration refuses.
    if let Some(named) =
        note.split(['(', ')']).nth(1).filter(|p| vectors_dir().join(format!("{p}.json")).exists())
    {
        return Writer::of(named, false, false);
    }
    Writer::of(file_profile, note.contains("SHA1-derived") || note.contains("= SHA1"), false)
}

fn envelope_of(plaintext: &[u8]) -> Envelope {
    if !plaintext.starts_with(br#"{"_rails":"#) {
        return Envelope::None;
    }
    let env: Json = serde_json::from_slice(plaintext).unwrap();
    if env["_rails"]["pur"].is_null() {
        Envelope::Expiry
    } else {
        Envelope::Purpose
    }
}

/// The inspector a reader of `file`'s cookies has: its secret (or secret_token), and its salts when `salts`.
fn inspector(config: &Json, now: OffsetDateTime, salts: bool) -> Inspector {
    let mut i = Inspector::new().at(now);
    if let Some(s) = config["secret_key_base"].as_str() {
        i = i.secret_key_base(SecretKeyBase::new(s).unwrap());
    }
    if let Some(t) = config["secret_token"].as_str() {
        i = i.secret_token(t);
    }
    if salts {
        let salt = |k: &str, default: &str| config[k].as_str().filter(|s| *s != default);
        if let Some(s) = salt("encrypted_cookie_salt", "encrypted cookie") {
            i = i.encrypted_cookie_salt(s);
        }
        if let Some(s) = salt("encrypted_signed_cookie_salt", "signed encrypted cookie") {
            i = i.encrypted_signed_cookie_salt(s);
        }
        if let Some(s) =
            salt("authenticated_encrypted_cookie_salt", "authenticated encrypted cookie")
        {
            i = i.authenticated_encrypted_cookie_salt(s);
        }
        if let Some(s) = salt("signed_cookie_salt", "signed cookie") {
            i = i.signed_cookie_salt(s);
        }
    }
    i
}

/// The diagnosis a damaged or foreign case gets, by the damage its name says was done.
fn damage_kind(name: &str) -> &'static str {
    match name {
        "empty_cookie" | "no_separators" => "not_rails",
        "truncated"
        | "truncated_tag"
        | "truncated_no_digest"
        | "swapped_iv_and_tag"
        | "bad_hex_digest" => "damaged",
        n if n.starts_with("bad_base64_") || n == "plus_unescaped" => "damaged",
        // Still well-formed: only the MAC or tag can tell, and it does not verify.
        "truncated_ciphertext"
        | "tampered_ciphertext"
        | "tampered_tag"
        | "tampered_iv"
        | "tampered_data"
        | "tampered_digest"
        | "wrong_key" => "not_verified",
        other => panic!("no expected diagnosis for the case {other:?}: add it here"),
    }
}

fn versions(v: &[RailsVersion]) -> String {
    v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(" ")
}

/// Checks a report of a cookie `writer` wrote; returns a failure message.
fn check_identified(report: &Report, writer: &Writer, case: &Json) -> Result<(), String> {
    let f = report
        .finding
        .as_ref()
        .ok_or_else(|| format!("nothing verified: {:?}", report.diagnosis))?;
    let got = (f.kind, f.cipher, f.kdf_digest);
    let want = (writer.kind(), writer.cipher(), writer.kdf());
    if got != want {
        return Err(format!("identified as {got:?}, written as {want:?}"));
    }
    // The format and envelope Rails produced, from its own bytes where the case has them.
    let format = match case["payload_hex"].as_str() {
        Some(hex) => Format::detect(&hex::decode(hex).unwrap()),
        None => writer.format(),
    };
    if f.format != Some(format) {
        return Err(format!("serializer {:?}, written as {format:?}", f.format));
    }
    if let Some(hex) = case["plaintext_hex"].as_str() {
        let envelope =
            if f.secret_token { Envelope::None } else { envelope_of(&hex::decode(hex).unwrap()) };
        if f.envelope != envelope {
            return Err(format!("envelope {:?}, written as {envelope:?}", f.envelope));
        }
    } else if f.envelope == Envelope::None && writer.config["use_cookies_with_metadata"] == true {
        return Err("no envelope found in a cookie written with metadata".into());
    }
    if !f.rails_versions.contains(&writer.version()) {
        return Err(format!(
            "rails_versions {} lack the writer's {}",
            versions(&f.rails_versions),
            writer.version()
        ));
    }
    if f.written_by.is_empty() || !f.written_by.iter().all(|v| f.rails_versions.contains(v)) {
        return Err(format!(
            "written_by {} is not within rails_versions {}",
            versions(&f.written_by),
            versions(&f.rails_versions)
        ));
    }
    Ok(())
}

/// Every version of the range, with the settings the finding gives, reads the cookie as its own.
fn check_profiles(
    report: &Report,
    writer_config: &Json,
    name: &str,
    value: &str,
    now: OffsetDateTime,
) -> Result<(), String> {
    let f = report.finding.as_ref().unwrap();
    for &v in &f.rails_versions {
        let profile: Profile = f.profile(v);
        let codec = if f.secret_token {
            CookieCodec::with_secret_token_only(
                profile,
                writer_config["secret_token"].as_str().unwrap(),
            )
        } else {
            let secret = writer_config["secret_key_base"].as_str().unwrap();
            CookieCodec::new(profile, SecretKeyBase::new(secret).unwrap())
        }
        .map_err(|e| format!("{v}: {e}"))?;
        match codec.decode_at(name, value, now) {
            Ok(d)
                if !d.rewrite
                    && report.value.as_ref().is_some_and(|r| {
                        ordered_eq(&r.to_tagged_json(), &d.value.to_tagged_json())
                    }) => {}
            Ok(d) => {
                return Err(format!(
                    "{v} with {:?}: read with rewrite={} or another value",
                    f.settings(v),
                    d.rewrite
                ))
            }
            Err(e) => return Err(format!("{v} with {:?}: {e}", f.settings(v))),
        }
    }
    Ok(())
}

#[test]
fn every_vector_is_identified_or_diagnosed() {
    let mut failures = Vec::new();
    let (mut identified, mut diagnosed, mut worst) = (0, 0, 0);
    // Each configuration's profiles are checked on its first readable cookie (building them derives keys).
    let mut profiles_checked = std::collections::HashSet::new();
    for path in vector_files() {
        let doc = load(&path);
        let profile = doc["profile"].as_str().unwrap();
        let config = &doc["config"];
        let now = OffsetDateTime::parse(doc["now"].as_str().unwrap(), &Rfc3339).unwrap();
        let custom_salts = profile.starts_with("custom_salts");
        for case in doc["cases"].as_array().unwrap() {
            let Some(raw) = case["cookie"].as_str() else { continue };
            let id = format!("{profile}/{}", case["name"].as_str().unwrap());
            let name = case["cookie_name"].as_str().unwrap();
            let expected = &case["expected"];
            let report = inspector(config, now, true).inspect(Some(name), raw);
            worst = worst.max(report.key_derivations);
            let writer = writer_of(profile, case);
            let reason = expected["reason"].as_str().unwrap_or("");
            let diagnosis = report.diagnosis.as_ref().map(Diagnosis::kind);
            let result = if expected["ok"] == true {
                identified += 1;
                check_identified(&report, &writer, case)
                    .and_then(|()| match &report.value {
                        Some(v) if ordered_eq(&v.to_tagged_json(), &expected["session"]) => Ok(()),
                        other => Err(format!("read {other:?}, Rails read {}", expected["session"])),
                    })
                    .and_then(|()| {
                        let combo = (
                            profile.to_owned(),
                            writer.profile.clone(),
                            writer.sha1_kdf,
                            writer.cbc,
                        );
                        if profiles_checked.insert(combo) {
                            check_profiles(&report, &writer.config, name, &unescape(raw), now)
                        } else {
                            Ok(())
                        }
                    })
            } else if reason == "purpose" || reason == "expired" {
                diagnosed += 1;
                check_identified(&report, &writer, case).and_then(|()| match &report.diagnosis {
                    Some(Diagnosis::Purpose { purpose, expected_name })
                        if reason == "purpose"
                            && expected_name == name
                            && purpose != &format!("cookie.{name}") =>
                    {
                        Ok(())
                    }
                    Some(Diagnosis::Expired { at })
                        if reason == "expired" && at.starts_with("20") =>
                    {
                        Ok(())
                    }
                    other => Err(format!("expected a {reason} diagnosis, got {other:?}")),
                })
            } else if writer.profile != profile
                || writer.sha1_kdf
                || (reason == "serializer" && writer.format() == Format::Marshal)
            {
                // Refused by this file's app, but written by another configuration: inspect names that one.
                identified += 1;
                if !report.is_readable() {
                    Err(format!(
                        "written by {}, not identified: {:?}",
                        writer.profile, report.diagnosis
                    ))
                } else {
                    check_identified(&report, &writer, case)
                }
            } else if reason == "serializer" {
                diagnosed += 1;
                match (&report.diagnosis, &report.finding) {
                    (Some(Diagnosis::Payload { .. }), Some(f))
                        if f.format == Some(Format::MessagePack) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("expected a payload diagnosis, got {other:?}")),
                }
            } else {
                diagnosed += 1;
                let want = damage_kind(case["name"].as_str().unwrap());
                if diagnosis == Some(want) {
                    Ok(())
                } else {
                    Err(format!("expected {want}, got {:?}", report.diagnosis))
                }
            };
            if let Err(e) = result {
                failures.push(format!("{id}: {e}"));
            }
            // The app's own salts are what make these readable: without them, the diagnosis names the setting.
            if custom_salts && expected["ok"] == true && writer.profile.starts_with("custom_salts")
            {
                let without = inspector(config, now, false).inspect(Some(name), raw);
                let text = without.diagnosis.as_ref().map(ToString::to_string).unwrap_or_default();
                let setting = if writer.cipher() == Some(Cipher::Aes256Gcm) {
                    "config.action_dispatch.authenticated_encrypted_cookie_salt"
                } else {
                    "config.action_dispatch.encrypted_signed_cookie_salt"
                };
                if without.diagnosis.as_ref().map(Diagnosis::kind) != Some("not_verified")
                    || !text.contains(setting)
                {
                    failures.push(format!("{id} without its salts: {text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(identified > 400 && diagnosed > 150, "identified {identified}, diagnosed {diagnosed}");
    // At most two salts × two digests for the jar's key, and the CBC encryption keys after a verified HMAC.
    assert!(worst <= 6, "a cookie cost {worst} key derivations");
    eprintln!(
        "inspect: {identified} identified, {diagnosed} diagnosed, at most {worst} key derivations"
    );
}

#[test]
fn wrong_secret_truncated_tampered_foreign_and_oversized() {
    let doc = load(&vectors_dir().join("rails_6_1_json.json"));
    let case = |n: &str| {
        doc["cases"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap()["cookie"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let now = OffsetDateTime::parse("2026-01-01T00:00:00Z", &Rfc3339).unwrap();
    let right = inspector(&doc["config"], now, false);
    let wrong =
        Inspector::new().secret_key_base(SecretKeyBase::new("f".repeat(128)).unwrap()).at(now);
    let text = |i: &Inspector, v: &str| {
        i.inspect(Some("_app_session"), v).diagnosis.map(|d| d.to_string())
    };
    let t3 = case("spec_t3");
    assert_eq!(
        text(&wrong, &t3).unwrap(),
        "An encrypted AES-256-GCM cookie (ciphertext--iv--tag) whose tag does not verify under this \
         secret_key_base with Rails' default salts (2 configurations tried: PBKDF2-SHA256 and PBKDF2-SHA1 keys): the \
         secret or the salts differ — check that the secret is the app's secret_key_base and whether the app sets \
         config.action_dispatch.authenticated_encrypted_cookie_salt — or the value was changed or cut short"
    );
    assert_eq!(
        text(&right, &case("tampered_tag")),
        text(&wrong, &t3),
        "a changed tag reads as another key"
    );
    assert_eq!(
        text(&right, &case("truncated_tag")).unwrap(),
        "An encrypted AES-256-GCM cookie (ciphertext--iv--tag), damaged: the tag is 12 bytes where GCM's is 16: the \
         value was cut short"
    );
    assert_eq!(
        text(&right, &case("truncated")).unwrap(),
        "An encrypted AES-256-GCM cookie (ciphertext--iv--tag), damaged: two parts, the second a 12-byte IV: a GCM \
         value whose tag (third part) is missing"
    );
    let not_base64 = text(&right, &case("bad_base64_urlsafe")).unwrap();
    assert!(not_base64.contains("URL-safe base64"), "{not_base64}");
    let plus = text(&right, &case("plus_unescaped")).unwrap();
    assert!(plus.contains("literal `+`") && plus.contains("%2B"), "{plus}");
    assert_eq!(
        text(&right, "hello world").unwrap(),
        "not a Rails cookie: no `--` separator: Rails' signed and encrypted cookies are `data--digest` or \
         `ciphertext--iv--tag`"
    );
    assert!(text(&right, "0123456789abcdef0123456789abcdef")
        .unwrap()
        .contains("server-side session stores"));
    assert_eq!(
        text(&right, &case("wrong_purpose")).unwrap(),
        "verifies, but was written as the cookie \"_other_session\" (purpose \"cookie._other_session\"), not \
         \"_app_session\": Rails reads it under that name only — inspect it as _other_session"
    );
    assert_eq!(
        text(&right, &case("expired")).unwrap(),
        "verifies, but expired at 2020-01-02T03:04:05.000Z (its envelope's exp): Rails treats it as absent"
    );
    let oversized = format!("{t3}{}", "A".repeat(MAX_INSPECTED_SIZE));
    let report = right.inspect(Some("_app_session"), &oversized);
    assert_eq!(report.diagnosis.as_ref().map(Diagnosis::kind), Some("too_large"));
    assert_eq!(report.key_derivations, 0, "refused before any key is derived");
    // A cookie of exactly Rails' limit is inspected.
    let limit =
        doc["cases"].as_array().unwrap().iter().find(|c| c["name"] == "limit_4092_bytes").unwrap();
    assert!(right.inspect(Some("_app_session"), limit["cookie"].as_str().unwrap()).is_readable());
}
