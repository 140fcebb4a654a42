//! Codec benchmarks with a floor measured in the same run.
//!
//! The floor is the cheapest possible decode of the same cookie built from the fastest crates for each step —
//! strict base64 of the three parts, AES-256-GCM open (ring, aws-lc-rs and RustCrypto `aes-gcm` are all measured;
//! the fastest is used), serde_json of the envelope and of the session into `serde_json::Value` — with no error
//! handling beyond `?`, no purpose or expiry check, and no value model. Our decode and encode are printed as ratios
//! to that floor; the target is ≤ 1.2×.
//!
//! The 4.2-style CBC cookie has a floor of its own, built the same way from RustCrypto `hmac`/`sha1` (faster than
//! ring's HMAC-SHA1 here, both measured), `cbc`/`aes` and serde_json: HMAC over the outer base64 compared as hex,
//! strict base64 of the outer and the inner parts, CBC decryption in place, the session into `serde_json::Value`.
//!
//! Run: `cargo bench -p rails-cookie --bench codec` (add `-- --quick` for a fast pass).
#![allow(clippy::unwrap_used)]

mod samples;

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion};
use rails_cookie::{CookieCodec, Hash, KeyGenerator, Profile, SecretKeyBase, Serializer, Value};

const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

/// A realistic signed-in Devise session (about 600 bytes as a 6.1 GCM cookie).
fn devise_session() -> Value {
    let mut warden_session = Hash::new();
    warden_session.insert("last_request_at", Value::Integer(1_764_000_000));
    let mut flashes = Hash::new();
    flashes.insert("notice", "Signed in successfully.".into());
    let mut flash = Hash::new();
    flash.insert("discard", Value::Array(vec![]));
    flash.insert("flashes", Value::Hash(flashes));
    let mut h = Hash::new();
    h.insert("session_id", "8f3a9c2e5b7d1f4a6c8e0b2d4f6a8c1e".into());
    h.insert(
        "warden.user.user.key",
        Value::Array(vec![
            Value::Array(vec![Value::Integer(1042)]),
            "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de".into(),
        ]),
    );
    h.insert("warden.user.user.session", Value::Hash(warden_session));
    h.insert("_csrf_token", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".into());
    h.insert("user_return_to", "/dashboard/reports?tab=weekly".into());
    h.insert("flash", Value::Hash(flash));
    Value::Hash(h)
}

struct Case {
    name: &'static str,
    codec: CookieCodec,
    cookie: String,
}

fn cases() -> Vec<Case> {
    let skb = || SecretKeyBase::new(SKB).unwrap();
    let session = devise_session();
    [
        ("rails_6_1_gcm_json", Profile::rails_6_1()),
        ("rails_4_2_cbc_json", Profile::rails_4_2()),
        ("rails_6_1_gcm_marshal", Profile::rails_6_1().cookies_serializer(Serializer::Marshal)),
    ]
    .into_iter()
    .map(|(name, profile)| {
        let codec = CookieCodec::new(profile, skb()).unwrap();
        let cookie = codec.encode("_app_session", &session, None).unwrap();
        Case { name, codec, cookie }
    })
    .collect()
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "_rails")]
    rails: EnvelopeInner<'a>,
}

#[derive(serde::Deserialize)]
struct EnvelopeInner<'a> {
    #[serde(borrow)]
    message: &'a str,
}

/// Splits `ct--iv--tag` and strict-base64-decodes the parts (the floor's first step).
fn floor_parts(cookie: &str) -> Option<(Vec<u8>, [u8; 12], [u8; 16])> {
    let mut parts = cookie.split("--");
    let (ct, iv, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let mut in_out = Vec::with_capacity(ct.len() / 4 * 3 + 16);
    STANDARD.decode_vec(ct, &mut in_out).ok()?;
    let mut ivb = [0u8; 12];
    STANDARD.decode_slice(iv, &mut ivb).ok()?;
    let mut tagb = [0u8; 18];
    STANDARD.decode_slice(tag, &mut tagb).ok()?;
    let mut t = [0u8; 16];
    t.copy_from_slice(&tagb[..16]);
    Some((in_out, ivb, t))
}

fn floor_json(plain: &[u8]) -> Option<serde_json::Value> {
    let env: Envelope<'_> = serde_json::from_slice(plain).ok()?;
    let payload = STANDARD.decode(env.rails.message).ok()?;
    serde_json::from_slice(&payload).ok()
}

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// The CBC floor: `b64(b64(ct)--b64(iv))--hex(HMAC-SHA1)` → session JSON, nothing but the necessary steps.
fn floor_cbc(cookie: &str, mac: &HmacSha1, aes: &aes::Aes256) -> Option<serde_json::Value> {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockDecryptMut as _, InnerIvInit as _};
    use hmac::Mac as _;
    let (data, tag_hex) = cookie.rsplit_once("--")?;
    let mut m = mac.clone();
    m.update(data.as_bytes());
    let mut hex = [0u8; 40];
    hex::encode_to_slice(m.finalize().into_bytes(), &mut hex).ok()?;
    if hex != tag_hex.as_bytes() {
        return None;
    }
    let inner = STANDARD.decode(data).ok()?;
    let inner = std::str::from_utf8(&inner).ok()?;
    let (ct, iv) = inner.rsplit_once("--")?;
    let mut ivb = [0u8; 18];
    STANDARD.decode_slice(iv, &mut ivb).ok()?;
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&ivb[..16]);
    let mut buf = STANDARD.decode(ct).ok()?;
    let plain = cbc::Decryptor::<aes::Aes256>::inner_iv_init(aes.clone(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .ok()?;
    serde_json::from_slice(plain).ok()
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let cases = cases();
    let gcm_cookie = cases[0].cookie.clone();
    let key = KeyGenerator::new(SecretKeyBase::new(SKB).unwrap(), rails_cookie::Digest::Sha1, 1000)
        .unwrap()
        .generate_key(b"authenticated encrypted cookie", 32);
    let key = key.expose().to_vec();

    // Building a codec: key derivation, paid once per process.
    c.bench_function("setup/codec_new_6_1", |b| {
        b.iter(|| CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new(SKB).unwrap()).unwrap())
    });

    // Floor components.
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );
    let lc_key = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &key).unwrap(),
    );
    let rc_key = {
        use aes_gcm::KeyInit as _;
        aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap()
    };
    let (ct, iv, tag) = floor_parts(&gcm_cookie).unwrap();
    let mut group = c.benchmark_group("floor");
    group.bench_function("base64_parts", |b| b.iter(|| floor_parts(black_box(&gcm_cookie))));
    group.bench_function("gcm_open/ring", |b| {
        b.iter(|| {
            let mut buf = ct.clone();
            buf.extend_from_slice(&tag);
            let n = ring::aead::Nonce::assume_unique_for_key(iv);
            ring_key.open_in_place(n, ring::aead::Aad::empty(), &mut buf).unwrap().len()
        })
    });
    group.bench_function("gcm_open/aws_lc_rs", |b| {
        b.iter(|| {
            let mut buf = ct.clone();
            buf.extend_from_slice(&tag);
            let n = aws_lc_rs::aead::Nonce::assume_unique_for_key(iv);
            lc_key.open_in_place(n, aws_lc_rs::aead::Aad::empty(), &mut buf).unwrap().len()
        })
    });
    group.bench_function("gcm_open/aes_gcm", |b| {
        use aes_gcm::aead::AeadInPlace as _;
        b.iter(|| {
            let mut buf = ct.clone();
            rc_key.decrypt_in_place_detached((&iv).into(), b"", &mut buf, (&tag).into()).unwrap();
            buf.len()
        })
    });
    let mut plain = ct.clone();
    plain.extend_from_slice(&tag);
    let n = ring::aead::Nonce::assume_unique_for_key(iv);
    let plain = ring_key.open_in_place(n, ring::aead::Aad::empty(), &mut plain).unwrap().to_vec();
    group.bench_function("json_envelope_and_session", |b| b.iter(|| floor_json(black_box(&plain))));
    group.bench_function("decode_6_1_gcm_json", |b| {
        b.iter(|| {
            let (mut buf, iv, tag) = floor_parts(black_box(&gcm_cookie)).unwrap();
            buf.extend_from_slice(&tag);
            let n = ring::aead::Nonce::assume_unique_for_key(iv);
            let p = ring_key.open_in_place(n, ring::aead::Aad::empty(), &mut buf).unwrap();
            floor_json(p)
        })
    });
    let session_json = serde_json::to_value(devise_session().to_tagged_json()).unwrap();
    let seal_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );
    let rng = ring::rand::SystemRandom::new();
    group.bench_function("encode_6_1_gcm_json", |b| {
        b.iter(|| {
            let payload = serde_json::to_vec(black_box(&session_json)).unwrap();
            let env = format!(
                r#"{{"_rails":{{"message":"{}","exp":null,"pur":"cookie._app_session"}}}}"#,
                STANDARD.encode(&payload)
            );
            let mut iv = [0u8; 12];
            ring::rand::SecureRandom::fill(&rng, &mut iv).unwrap();
            let mut buf = env.into_bytes();
            let n = ring::aead::Nonce::assume_unique_for_key(iv);
            let tag =
                seal_key.seal_in_place_separate_tag(n, ring::aead::Aad::empty(), &mut buf).unwrap();
            format!(
                "{}--{}--{}",
                STANDARD.encode(&buf),
                STANDARD.encode(iv),
                STANDARD.encode(tag.as_ref())
            )
        })
    });
    // The CBC floor, on the 4.2 cookie of `cases`.
    let cbc_cookie = cases[1].cookie.clone();
    let kg = KeyGenerator::new(SecretKeyBase::new(SKB).unwrap(), rails_cookie::Digest::Sha1, 1000)
        .unwrap();
    let cbc_key = kg.generate_key(b"encrypted cookie", 32);
    let cbc_mac_key = kg.generate_key(b"signed encrypted cookie", 64);
    let cbc_aes = {
        use aes::cipher::KeyInit as _;
        aes::Aes256::new_from_slice(cbc_key.expose()).unwrap()
    };
    let rc_hmac = {
        use hmac::Mac as _;
        HmacSha1::new_from_slice(cbc_mac_key.expose()).unwrap()
    };
    let ring_hmac =
        ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, cbc_mac_key.expose());
    let cbc_data = cbc_cookie.rsplit_once("--").unwrap().0.to_owned();
    group.bench_function("hmac_sha1/ring", |b| {
        b.iter(|| ring::hmac::sign(&ring_hmac, black_box(cbc_data.as_bytes())).as_ref()[0])
    });
    group.bench_function("hmac_sha1/rustcrypto", |b| {
        use hmac::Mac as _;
        b.iter(|| {
            let mut m = rc_hmac.clone();
            m.update(black_box(cbc_data.as_bytes()));
            m.finalize().into_bytes()[0]
        })
    });
    assert!(floor_cbc(&cbc_cookie, &rc_hmac, &cbc_aes).is_some(), "the CBC floor reads the cookie");
    group.bench_function("decode_4_2_cbc_json", |b| {
        b.iter(|| floor_cbc(black_box(&cbc_cookie), &rc_hmac, &cbc_aes))
    });
    group.finish();

    let mut group = c.benchmark_group("railbridge");
    for case in &cases {
        group.bench_with_input(BenchmarkId::new("decode", case.name), case, |b, case| {
            b.iter(|| case.codec.decode("_app_session", black_box(&case.cookie)).unwrap())
        });
        let value = case.codec.decode("_app_session", &case.cookie).unwrap().value;
        group.bench_with_input(BenchmarkId::new("encode", case.name), case, |b, case| {
            b.iter(|| case.codec.encode("_app_session", black_box(&value), None).unwrap())
        });
    }
    group.finish();
    c.final_summary();
    report();
}

/// Reads criterion's samples of this run ([`samples`]) and prints the ratios against the floor.
fn report() {
    use samples::{fastest, median};
    let dir = samples::criterion_dir();
    let floor_cbc = fastest("floor/decode_4_2_cbc_json");
    let (Some(floor_decode), Some(floor_encode)) =
        (fastest("floor/decode_6_1_gcm_json"), fastest("floor/encode_6_1_gcm_json"))
    else {
        eprintln!("(no samples found under {}; ratios not printed)", dir.display());
        return;
    };
    println!("\n== rails-cookie vs. floor (fastest sample; median in brackets) ==");
    let line = |label: &str, id: &str, floor: Option<f64>| {
        if let (Some(t), Some(m)) = (fastest(id), median(id)) {
            match floor {
                Some(f) => println!("{label:<44} {t:>8.0} ns  [{m:>8.0}]   {:.2}x floor", t / f),
                None => println!("{label:<44} {t:>8.0} ns  [{m:>8.0}]"),
            }
        }
    };
    line("GCM open, ring", "floor/gcm_open_ring", None);
    line("GCM open, aws-lc-rs", "floor/gcm_open_aws_lc_rs", None);
    line("GCM open, aes-gcm (RustCrypto)", "floor/gcm_open_aes_gcm", None);
    line("CookieCodec::new (key derivation, once)", "setup/codec_new_6_1", None);
    line("floor: decode 6.1 GCM JSON", "floor/decode_6_1_gcm_json", None);
    line("floor: encode 6.1 GCM JSON", "floor/encode_6_1_gcm_json", None);
    line("HMAC-SHA1 of the CBC cookie, ring", "floor/hmac_sha1_ring", None);
    line("HMAC-SHA1 of the CBC cookie, RustCrypto", "floor/hmac_sha1_rustcrypto", None);
    line("floor: decode 4.2 CBC JSON", "floor/decode_4_2_cbc_json", None);
    for name in ["rails_6_1_gcm_json", "rails_4_2_cbc_json", "rails_6_1_gcm_marshal"] {
        // Each decode against the floor of its own cipher: CBC against the CBC floor, the others against GCM's.
        let decode_floor = if name.contains("cbc") { floor_cbc } else { Some(floor_decode) };
        line(
            &format!("railbridge decode {name}"),
            &format!("railbridge/decode/{name}"),
            decode_floor,
        );
        line(
            &format!("railbridge encode {name}"),
            &format!("railbridge/encode/{name}"),
            Some(floor_encode),
        );
    }
}
