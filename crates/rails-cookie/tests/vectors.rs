//! Every cookie in `tests/vectors/*.json` was written (or refused) by a real Rails cookie jar: Rails 6.1.7.10's,
//! configured as each Rails version up to 7.0 behaves, and Rails 7.2.2.2's own (`rails_7_2_*`, with msgpack 1.7)
//! (`interop/gen_vectors.rb`). Each must decode to exactly the session Rails read,
//! each negative case must be refused with the matching error, and, given the same IV, our encoder must write the
//! very same bytes.

use rails_cookie::{dangerous, unescape, Value};
use serde_json::Value as Json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{codec_from_config, load, ordered_eq, vector_files};

/// The error kinds that count as Rails' answer for each negative-case reason. Rails answers all of them with nil;
/// tampering can surface as a shape error (a changed length) or an authentication failure (same shape).
fn allowed_kinds(reason: &str) -> &'static [&'static str] {
    match reason {
        "tampered" | "truncated" | "malformed" => &["malformed", "invalid_signature"],
        "wrong_key" => &["invalid_signature"],
        "purpose" => &["purpose"],
        "expired" => &["expired"],
        // The cookie authenticates, but Rails refuses its payload (a Marshal payload under :json, ext 127, …).
        "serializer" => &["serializer"],
        other => panic!("unknown reason {other:?} in a vector file"),
    }
}

fn has_local_time(v: &Value) -> bool {
    match v {
        Value::Time(t) => !t.is_utc,
        Value::Array(items) => items.iter().any(has_local_time),
        Value::Hash(h) => h.entries.iter().any(|(k, v)| has_local_time(k) || has_local_time(v)),
        Value::UserClass { value, .. } | Value::UserMarshal { value, .. } => has_local_time(value),
        Value::Object(o) | Value::Struct(o) => o.fields.iter().any(|(_, v)| has_local_time(v)),
        _ => false,
    }
}

fn parse_time(t: &Json) -> Option<OffsetDateTime> {
    t.as_str().map(|s| OffsetDateTime::parse(s, &Rfc3339).unwrap())
}

#[test]
fn every_rails_vector() {
    let files = vector_files();
    assert!(files.len() >= 14, "expected the generated vector files, found {}", files.len());
    let mut checked = 0;
    let mut exact = 0;
    let mut exact_values = 0;
    let mut failures = Vec::new();
    for path in files {
        let doc = load(&path);
        let profile = doc["profile"].as_str().unwrap();
        assert_eq!(doc["generator"], "interop/gen_vectors.rb");
        let codec = codec_from_config(profile, &doc["config"]);
        let now = parse_time(&doc["now"]).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            let name = format!("{profile}/{}", case["name"].as_str().unwrap());
            let cookie_name = case["cookie_name"].as_str().unwrap();
            let expected = &case["expected"];
            checked += 1;
            if case.get("error").and_then(Json::as_str) == Some("overflow") {
                let session = Value::from_tagged_json(&case["session"]).unwrap();
                match codec.encode(cookie_name, &session, None) {
                    Err(rails_cookie::Error::Overflow { .. }) => {}
                    other => failures.push(format!("{name}: expected an overflow, got {other:?}")),
                }
                continue;
            }
            let raw = case["cookie"].as_str().unwrap();
            let value = unescape(raw);
            let result = codec.decode_at(cookie_name, &value, now);
            if expected["ok"] == false {
                let reason = expected["reason"].as_str().unwrap();
                match result {
                    Ok(d) => failures.push(format!(
                        "{name}: Rails refused this cookie ({reason}) but we read {:?}",
                        d.value
                    )),
                    Err(e) if allowed_kinds(reason).contains(&e.kind()) => {}
                    Err(e) => {
                        failures.push(format!("{name}: expected {reason}, got {} ({e})", e.kind()))
                    }
                }
                continue;
            }
            let decoded = match result {
                Ok(d) => d,
                Err(e) => {
                    failures.push(format!("{name}: Rails read this cookie, we failed: {e}"));
                    continue;
                }
            };
            let got = decoded.value.to_tagged_json();
            if !ordered_eq(&got, &expected["session"]) {
                failures.push(format!(
                    "{name}: session differs\n  rails: {}\n  ours:  {got}",
                    expected["session"]
                ));
                continue;
            }
            if decoded.rewrite != expected["rewritten"].as_bool().unwrap() {
                failures.push(format!(
                    "{name}: rewrite flag {} but Rails said {}",
                    decoded.rewrite, expected["rewritten"]
                ));
            }
            // Byte-exact writing: same session, same IV (the generator stubs Rails' random IV) → same cookie.
            if decoded.rewrite || case.get("note").is_some() {
                continue;
            }
            let expires = parse_time(&case["expires"]);
            if let Some(payload_hex) = case["payload_hex"].as_str() {
                let ours = codec.profile().serializer().dump(&decoded.value).unwrap();
                if has_local_time(&decoded.value) {
                    // Ruby orders a non-UTC Time's hidden `offset`/`zone` ivars by the writing process's history, so
                    // only the value can be compared: our bytes must load to the same session.
                    let again = codec.profile().serializer().load(&ours).unwrap().0;
                    if again != decoded.value {
                        failures.push(format!("{name}: our Marshal bytes load to another value"));
                    }
                    exact_values += 1;
                    continue;
                }
                if hex::encode(&ours) != payload_hex {
                    failures.push(format!(
                        "{name}: serialized payload differs\n  rails: {payload_hex}\n  ours:  {}",
                        hex::encode(&ours)
                    ));
                    continue;
                }
            }
            let written = match case["fixed_iv_hex"].as_str() {
                Some(iv) => dangerous::encode_with_fixed_iv(
                    &codec,
                    cookie_name,
                    &decoded.value,
                    expires,
                    &hex::decode(iv).unwrap(),
                ),
                None => codec.encode(cookie_name, &decoded.value, expires),
            };
            match written {
                Ok(w) if w == value => exact += 1,
                Ok(w) => failures
                    .push(format!("{name}: our cookie differs\n  rails: {value}\n  ours:  {w}")),
                Err(e) => failures.push(format!("{name}: encoding failed: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vector cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 400 && exact > 200, "checked {checked}, byte-exact {exact}");
    eprintln!("vectors: {checked} cases, {exact} written byte-exact, {exact_values} with local times written value-exact");
}
