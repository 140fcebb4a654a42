//! The verifier of the gateway's assertions and access tokens (JWS compact, nested JWE `dir`+`A256GCM`) on arbitrary
//! input: never a panic, and nothing accepted — the fuzzer holds no signing key, so any acceptance is a forgery.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rails_session::gateway_auth::{jwe, AssertionVerifier};

/// An Ed25519 key (RFC 8037's example public key) and a P-256 key; a JWE key the fuzzer may use to wrap its input.
const JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed","alg":"EdDSA"},
 {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec","alg":"ES256"}
]}"#;
const AES: [u8; 32] = [7; 32];

fn verifier() -> &'static AssertionVerifier {
    static V: OnceLock<AssertionVerifier> = OnceLock::new();
    V.get_or_init(|| {
        AssertionVerifier::builder()
            .jwks_json(JWKS)
            .audience("api")
            .decryption_key("k", &AES)
            .build()
            .expect("a valid verifier")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert!(verifier().verify_cached(text).is_err(), "accepted without a key: {text:?}");
    // The same input inside a well-formed JWE: the inner token is then the attacker's.
    if let Ok(wrapped) = jwe::encrypt("k", &AES, data) {
        assert!(verifier().verify_cached(&wrapped).is_err());
    }
});
