//! What `inspect` costs: the worst cases (no configuration reads the cookie, so every candidate key is derived) and
//! common readable cookies, with the price of one PBKDF2 key of each digest and length beside them (the order the
//! search tries digests in rests on those).
//!
//! Run: `cargo bench -p rails-cookie --bench inspect` (add `-- --quick` for a fast pass); the last lines print each
//! case in milliseconds with the number of keys it derived.
#![allow(clippy::unwrap_used)]

mod samples;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use rails_cookie::inspect::Inspector;
use rails_cookie::{CookieCodec, Digest, Hash, KeyGenerator, Profile, SecretKeyBase, Value};

const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

fn skb() -> SecretKeyBase {
    SecretKeyBase::new(SKB).unwrap()
}

fn cookie(profile: Profile) -> String {
    let mut session = Hash::new();
    session.insert("session_id", "8f3a9c2e5b7d1f4a6c8e0b2d4f6a8c1e".into());
    session.insert(
        "warden.user.user.key",
        Value::Array(vec![Value::Array(vec![1042.into()]), "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de".into()]),
    );
    let codec = CookieCodec::new(profile, skb()).unwrap();
    rails_cookie::escape(&codec.encode("_app_session", &Value::Hash(session), None).unwrap())
}

/// An inspector that knows the app's secret (or another one) and has every salt setting configured, so each jar
/// tries two salts × two digests.
fn inspector(secret: SecretKeyBase) -> Inspector {
    Inspector::new()
        .secret_key_base(secret)
        .secret_token("legacy-secret-token-0123456789abcdef0123456789abcdef")
        .encrypted_cookie_salt("configured encrypted")
        .encrypted_signed_cookie_salt("configured signed encrypted")
        .authenticated_encrypted_cookie_salt("configured authenticated")
        .signed_cookie_salt("configured signed")
}

struct Case {
    name: &'static str,
    inspector: Inspector,
    cookie: String,
}

fn cases() -> Vec<Case> {
    let other = || SecretKeyBase::new("f".repeat(128)).unwrap();
    vec![
        // Nothing verifies: every candidate key of the jar is derived.
        Case {
            name: "worst_gcm_wrong_secret",
            inspector: inspector(other()),
            cookie: cookie(Profile::rails_6_1()),
        },
        Case {
            name: "worst_cbc_wrong_secret",
            inspector: inspector(other()),
            cookie: cookie(Profile::rails_4_2()),
        },
        Case {
            name: "worst_signed_wrong_secret",
            inspector: inspector(other()),
            cookie: cookie(Profile::rails_6_1().session_cookie(rails_cookie::CookieKind::Signed)),
        },
        // The HMAC verifies on the last MAC key, and neither encryption key decrypts: the most keys a run derives.
        Case {
            name: "worst_cbc_encryption_salt",
            inspector: inspector(skb()),
            cookie: cookie(Profile::rails_4_2().encrypted_cookie_salt("unknown")),
        },
        // Readable cookies, with only the secret known.
        Case {
            name: "rails_7_0_gcm",
            inspector: Inspector::new().secret_key_base(skb()),
            cookie: cookie(Profile::rails_7_0()),
        },
        Case {
            name: "rails_6_1_gcm",
            inspector: Inspector::new().secret_key_base(skb()),
            cookie: cookie(Profile::rails_6_1()),
        },
        Case {
            name: "rails_4_2_cbc",
            inspector: Inspector::new().secret_key_base(skb()),
            cookie: cookie(Profile::rails_4_2()),
        },
    ]
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    let mut group = c.benchmark_group("pbkdf2");
    for (digest, name) in [(Digest::Sha1, "sha1"), (Digest::Sha256, "sha256")] {
        let kg = KeyGenerator::new(skb(), digest, 1000).unwrap();
        for len in [32, 64] {
            group.bench_function(format!("{name}_{len}"), |b| {
                b.iter(|| kg.generate_key(black_box(b"authenticated encrypted cookie"), len))
            });
        }
    }
    group.finish();
    let cases = cases();
    let mut group = c.benchmark_group("inspect");
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| case.inspector.inspect(Some("_app_session"), black_box(&case.cookie)))
        });
    }
    group.finish();
    c.final_summary();
    report(&cases);
}

/// Prints each case's fastest sample in milliseconds (the machine is a noisy VM; the median is in brackets).
fn report(cases: &[Case]) {
    let ms = |id: &str| -> Option<(f64, f64)> {
        Some((samples::fastest(id)? / 1e6, samples::median(id)? / 1e6))
    };
    if ms("pbkdf2/sha1_32").is_none() {
        eprintln!(
            "(no samples found under {}; nothing to print)",
            samples::criterion_dir().display()
        );
        return;
    }
    println!("\n== inspect (fastest sample, ms; median in brackets) ==");
    for id in ["pbkdf2/sha1_32", "pbkdf2/sha1_64", "pbkdf2/sha256_32", "pbkdf2/sha256_64"] {
        if let Some((t, m)) = ms(id) {
            println!("{id:<36} {t:>7.3} ms [{m:>7.3}]   one key");
        }
    }
    for case in cases {
        let report = case.inspector.inspect(Some("_app_session"), &case.cookie);
        let outcome = report
            .diagnosis
            .as_ref()
            .map_or_else(|| "readable".to_owned(), |d| d.kind().to_owned());
        if let Some((t, m)) = ms(&format!("inspect/{}", case.name)) {
            println!(
                "{:<36} {t:>7.3} ms [{m:>7.3}]   {} keys derived, {} candidates, {outcome}",
                format!("inspect/{}", case.name),
                report.key_derivations,
                report.candidates
            );
        }
    }
}
