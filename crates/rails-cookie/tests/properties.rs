//! Property tests: encode → decode is the identity for arbitrary sessions, in every preset and serializer, and
//! decoding arbitrary or mutated input never panics.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use rails_cookie::{CookieCodec, Hash, Profile, RailsVersion, SecretKeyBase, Serializer, Value};

/// Codecs are built once per (version, serializer): key derivation is the expensive part, as in production.
fn codec(version: RailsVersion, serializer: Serializer) -> &'static CookieCodec {
    static CODECS: OnceLock<Mutex<HashMap<(RailsVersion, Serializer), &'static CookieCodec>>> =
        OnceLock::new();
    let mut codecs = CODECS.get_or_init(Default::default).lock().unwrap();
    codecs.entry((version, serializer)).or_insert_with(|| {
        Box::leak(Box::new(
            CookieCodec::new(
                Profile::for_version(version).cookies_serializer(serializer),
                SecretKeyBase::new("4a7f0c1e9b2d3c5e6f708192a3b4c5d6".repeat(4)).unwrap(),
            )
            .unwrap(),
        ))
    })
}

/// Values every serializer represents exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z_.]{1,8}", inner), 0..5)
                .prop_map(|kv| Value::Hash(kv.into_iter().collect::<Hash>())),
        ]
    })
}

/// Values only Marshal (and partly MessagePack) can carry.
fn ruby_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        json_value(),
        "[a-z_]{1,8}".prop_map(Value::Symbol),
        any::<i128>().prop_map(Value::integer),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec((inner.clone(), inner), 0..4).prop_map(|kv| {
            let mut h = Hash::new();
            for (k, v) in kv {
                h.insert_value(k, v);
            }
            Value::Hash(h)
        })
    })
}

fn session(entries: Vec<(String, Value)>) -> Value {
    let mut h: Hash = entries.into_iter().collect();
    h.insert("session_id", "0123456789abcdef0123456789abcdef".into());
    Value::Hash(h)
}

fn round_trip(codec: &CookieCodec, value: &Value) -> Result<(), TestCaseError> {
    match codec.encode("_app_session", value, None) {
        Err(rails_cookie::Error::Overflow { .. }) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("encode failed: {e}"))),
        Ok(cookie) => {
            let decoded = codec
                .decode("_app_session", &cookie)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&decoded.value, value);
            prop_assert!(!decoded.rewrite);
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn json_sessions_round_trip_in_every_preset(entries in prop::collection::vec(("[a-z]{1,10}", json_value()), 0..6)) {
        let value = session(entries);
        for version in RailsVersion::ALL {
            round_trip(codec(version, Serializer::Json), &value)?;
        }
    }

    #[test]
    fn ruby_sessions_round_trip_through_marshal(entries in prop::collection::vec(("[a-z]{1,10}", ruby_value()), 0..6)) {
        let value = session(entries);
        for version in [RailsVersion::V4_2, RailsVersion::V6_1, RailsVersion::V8_0] {
            round_trip(codec(version, Serializer::Marshal), &value)?;
        }
    }

    #[test]
    fn ruby_sessions_round_trip_through_message_pack(entries in prop::collection::vec(("[a-z]{1,10}", ruby_value()), 0..6)) {
        round_trip(codec(RailsVersion::V7_1, Serializer::MessagePack), &session(entries))?;
    }

    #[test]
    fn arbitrary_input_never_panics(input in ".{0,600}") {
        for version in [RailsVersion::V4_2, RailsVersion::V6_1] {
            let _ = codec(version, Serializer::Hybrid).decode("_app_session", &input);
        }
    }

    #[test]
    fn flipping_any_byte_is_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let codec = codec(RailsVersion::V6_1, Serializer::Json);
        let cookie = codec.encode("_app_session", &session(vec![]), None).unwrap();
        let mut bytes = cookie.into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(tampered) = String::from_utf8(bytes) {
            prop_assert!(codec.decode("_app_session", &tampered).is_err());
        }
    }
}
