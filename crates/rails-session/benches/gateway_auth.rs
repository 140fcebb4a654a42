//! Verifying a gateway assertion (EdDSA, keys cached) against the raw `ring` Ed25519 verification of the same
//! signing input, which is the floor: everything above it is parsing and claim checks.
//!
//! `cargo bench -p rails-session --features gateway-auth --bench gateway_auth -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::Criterion;
use futures_util::FutureExt as _;
use rails_session::gateway_auth::AssertionVerifier;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};

struct Fixture {
    verifier: AssertionVerifier,
    token: String,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

impl Fixture {
    fn signing_input(&self) -> &[u8] {
        let end = self.token.rfind('.').unwrap();
        &self.token.as_bytes()[..end]
    }

    fn ring_verify(&self) {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(black_box(self.signing_input()), black_box(&self.signature))
            .unwrap();
    }

    fn verify_cached(&self) {
        black_box(self.verifier.verify_cached(black_box(&self.token)).unwrap());
    }
}

/// An assertion as the gateway writes it: its header (jsonwebtoken's `Header` with a kid) and claims.
fn fixture() -> Fixture {
    let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let public_key = pair.public_key().as_ref().to_vec();
    let kid = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    let jwks = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&public_key),
    }]});
    let iat = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "EdDSA", "kid": kid});
    let claims = serde_json::json!({
        "email": "ada@example.com",
        "iss": "railbridge", "aud": "api", "sub": "42",
        "sid": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "scope": "user",
        "iat": iat, "exp": iat + 300, "jti": "AAAAAAAAAAAAAAAAAAAAAA",
    });
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = pair.sign(token.as_bytes()).as_ref().to_vec();
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(&signature));
    let verifier =
        AssertionVerifier::builder().jwks_json(jwks.to_string()).audience("api").build().unwrap();
    Fixture { verifier, token, public_key, signature }
}

/// Best-of-rounds time per call, interleaving the two so both see the same machine state.
fn per_call(f: &Fixture) -> (Duration, Duration) {
    const N: u32 = 2_000;
    let (mut ours, mut raw) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..N {
            f.verify_cached();
        }
        ours = ours.min(t.elapsed() / N);
        let t = Instant::now();
        for _ in 0..N {
            f.ring_verify();
        }
        raw = raw.min(t.elapsed() / N);
    }
    (ours, raw)
}

fn main() {
    let f = fixture();
    assert_eq!(f.verifier.verify_cached(&f.token).unwrap().user_id(), "42");

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("gateway_auth");
    group.bench_function("AssertionVerifier::verify_cached (EdDSA)", |b| {
        b.iter(|| f.verify_cached())
    });
    group.bench_function("AssertionVerifier::verify (EdDSA, keys cached)", |b| {
        b.iter(|| {
            black_box(f.verifier.verify(black_box(&f.token)).now_or_never().unwrap().unwrap())
        })
    });
    group.bench_function("ring Ed25519 verify of the same signing input (baseline)", |b| {
        b.iter(|| f.ring_verify())
    });
    group.finish();
    c.final_summary();

    let (ours, raw) = per_call(&f);
    println!(
        "\nverify_cached: {:.2} µs/token; ring Ed25519 alone: {:.2} µs; ratio {:.2}× ({} bytes token; best of 7 × 2000)",
        ours.as_secs_f64() * 1e6,
        raw.as_secs_f64() * 1e6,
        ours.as_secs_f64() / raw.as_secs_f64(),
        f.token.len(),
    );
}
