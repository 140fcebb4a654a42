//! Helpers shared by the integration tests: loading the Rails-generated vector files and building a codec from
//! their configuration.

use std::path::{Path, PathBuf};

use rails_cookie::{
    Cipher, CookieCodec, CookieKind, Digest, Key, Profile, RailsVersion, Rotation, SecretKeyBase,
    Serializer,
};
use serde_json::Value as Json;

pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every vector file, sorted by name.
pub(crate) fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists (regenerate with `ruby interop/gen_vectors.rb`)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

pub(crate) fn load(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The Rails version whose behaviour a vector profile reproduces. The generator runs Rails 6.1 configured the way
/// each version behaves, so this names the version, not the one that ran.
pub(crate) fn version_of(profile: &str) -> RailsVersion {
    match profile {
        p if p.starts_with("rails_4_2")
            || p == "cbc_sha256_digest"
            || p == "legacy_secret_token" =>
        {
            RailsVersion::V4_2
        }
        "rails_5_2_json" => RailsVersion::V5_2,
        "rails_7_0_json" | "rotation_sha1_to_sha256" => RailsVersion::V7_0,
        p if p.starts_with("rails_7_2") => RailsVersion::V7_2,
        _ => RailsVersion::V6_1,
    }
}

fn opt_str<'a>(c: &'a Json, key: &str) -> Option<&'a str> {
    c.get(key).and_then(Json::as_str)
}

/// Builds the profile a vector file's `config` describes, using the Rails setting names.
pub(crate) fn profile_from_config(profile_name: &str, c: &Json) -> Profile {
    let mut p = Profile::for_version(version_of(profile_name))
        .key_generator_hash_digest_class(
            opt_str(c, "key_generator_hash_digest_class").unwrap_or("SHA1").parse().unwrap(),
        )
        .use_authenticated_cookie_encryption(
            c["use_authenticated_cookie_encryption"].as_bool().unwrap(),
        )
        .use_cookies_with_metadata(c["use_cookies_with_metadata"].as_bool().unwrap())
        .cookies_serializer(
            c["cookies_serializer"].as_str().unwrap().parse::<Serializer>().unwrap(),
        );
    if let Some(s) = opt_str(c, "encrypted_cookie_salt") {
        p = p.encrypted_cookie_salt(s);
    }
    if let Some(s) = opt_str(c, "encrypted_signed_cookie_salt") {
        p = p.encrypted_signed_cookie_salt(s);
    }
    if let Some(s) = opt_str(c, "authenticated_encrypted_cookie_salt") {
        p = p.authenticated_encrypted_cookie_salt(s);
    }
    if let Some(s) = opt_str(c, "signed_cookie_salt") {
        p = p.signed_cookie_salt(s);
    }
    if let Some(d) = opt_str(c, "cookies_digest") {
        p = p.cookies_digest(d.parse::<Digest>().unwrap());
    }
    if let Some(d) = opt_str(c, "signed_cookie_digest") {
        p = p.signed_cookie_digest(d.parse::<Digest>().unwrap());
    }
    if c["kind"] == "signed" {
        p = p.session_cookie(CookieKind::Signed);
    }
    for r in c["rotations"].as_array().into_iter().flatten() {
        assert_eq!(r["kind"], "encrypted", "only encrypted rotations are generated");
        let cipher: Cipher = r["cipher"].as_str().unwrap().parse().unwrap();
        p = p.rotate(Rotation::encrypted(
            Key::from_hex(r["key_hex"].as_str().unwrap()).unwrap(),
            cipher,
        ));
    }
    p
}

pub(crate) fn codec_from_config(profile_name: &str, c: &Json) -> CookieCodec {
    let profile = profile_from_config(profile_name, c);
    match opt_str(c, "secret_token") {
        Some(token) => CookieCodec::with_secret_token_only(profile, token).unwrap(),
        None => CookieCodec::new(
            profile,
            SecretKeyBase::new(c["secret_key_base"].as_str().unwrap()).unwrap(),
        )
        .unwrap(),
    }
}

/// JSON equality that also requires object keys in the same order (a session is an ordered Hash), and compares
/// numbers by value so `1e+20` (Ruby's text) equals `1e20`.
pub(crate) fn ordered_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|((ka, va), (kb, vb))| ka == kb && ordered_eq(va, vb))
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| ordered_eq(p, q))
        }
        (Json::Number(x), Json::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64()
            } else {
                x == y
            }
        }
        _ => a == b,
    }
}
