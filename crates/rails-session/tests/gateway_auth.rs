//! `gateway_auth`: the gateway's assertions verified as a service behind it sees them. Tokens are signed here
//! with `ring` exactly as `railbridge serve` signs them (crates/railbridge/src/jwt: jsonwebtoken's `Header` with
//! `typ`, `alg`, `kid`; claims `iss`, `aud`, `sub`, `sid`, `scope`, `iat`, `exp`, `jti` and extras), and the JWKS
//! is written by hand as the gateway publishes it.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::{Request, StatusCode};
use rails_session::gateway_auth::{
    jwe, AssertionError, AssertionVerifier, AssertionVerifierBuilder, GatewayAuthLayer, GatewayUser,
};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// A 2048-bit RSA key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`), PKCS#8.
const RSA_PEM: &str = include_str!("support/gateway_auth_rsa.pem");

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key of the gateway.
struct Signer {
    kid: String,
    pair: Pair,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    fn ed(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Signer { kid: kid.into(), pair: Pair::Ed(pair) }
    }

    fn ec(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer { kid: kid.into(), pair: Pair::Ec(pair) }
    }

    fn rsa(kid: &str) -> Signer {
        let body: String = RSA_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        Signer { kid: kid.into(), pair: Pair::Rsa(RsaKeyPair::from_pkcs8(&der).unwrap()) }
    }

    fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Ed(_) => "EdDSA",
            Pair::Ec(_) => "ES256",
            Pair::Rsa(_) => "RS256",
        }
    }

    /// The public JWK, as the gateway's `/.well-known/jwks.json` lists it.
    fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Ed(p) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(p.public_key())}),
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Pair::Rsa(p) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(p.public());
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        };
        jwk["use"] = "sig".into();
        jwk["alg"] = self.alg().into();
        jwk["kid"] = self.kid.clone().into();
        jwk
    }

    fn signature(&self, input: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ed(p) => p.sign(input).as_ref().to_vec(),
            Pair::Ec(p) => p.sign(&SystemRandom::new(), input).unwrap().as_ref().to_vec(),
            Pair::Rsa(p) => {
                let mut out = vec![0; p.public().modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut out).unwrap();
                out
            }
        }
    }

    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        format!("{input}.{}", b64(self.signature(input.as_bytes())))
    }

    /// A token with the gateway's header: `{"typ":"JWT","alg":…,"kid":…}`.
    fn token(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"typ": "JWT", "alg": self.alg(), "kid": self.kid}), claims)
    }

    /// This key's signature under another `kid`.
    fn token_as(&self, kid: &str, claims: &Value) -> String {
        self.sign_with_header(&json!({"typ": "JWT", "alg": self.alg(), "kid": kid}), claims)
    }
}

fn jwks(signers: &[&Signer]) -> String {
    json!({ "keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>() }).to_string()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// What the gateway puts in an assertion for route `api`, with an extra `email` and `roles`.
fn claims() -> Value {
    let iat = now();
    json!({
        "email": "ada@example.com", "roles": ["admin", "billing"],
        "iss": "railbridge", "aud": "api", "sub": "42",
        "sid": "kAq3x9yPbGvN0mD6QcW1sT8uH2eJ5fL7rZ4oYiXa1Bc", "scope": "user",
        "iat": iat, "exp": iat + 120, "jti": "q1w2e3r4t5y6u7i8o9p0aA",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn builder(signers: &[&Signer]) -> AssertionVerifierBuilder {
    AssertionVerifier::builder().jwks_json(jwks(signers)).audience("api")
}

fn verifier(signers: &[&Signer]) -> AssertionVerifier {
    builder(signers).build().unwrap()
}

fn reason(result: Result<GatewayUser, AssertionError>) -> &'static str {
    match result {
        Ok(user) => panic!("accepted: {user:?}"),
        Err(e) => e.reason(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Signatures and claims

fn accepts(signer: &Signer) {
    let other = Signer::ed("other");
    let v = verifier(&[&other, signer]);
    let user = v.verify_cached(&signer.token(&claims())).unwrap();
    assert_eq!(user.user_id(), "42");
    assert_eq!(user.scope(), Some("user"));
    assert_eq!(user.sid(), Some("kAq3x9yPbGvN0mD6QcW1sT8uH2eJ5fL7rZ4oYiXa1Bc"));
    assert_eq!(user.audience(), "api");
    let exp = claims()["exp"].as_u64().unwrap();
    assert_eq!(user.expires_at(), UNIX_EPOCH + Duration::from_secs(exp));
    assert_eq!(user.claim::<String>("email").as_deref(), Some("ada@example.com"));
    assert_eq!(user.claim::<Vec<String>>("roles").unwrap(), ["admin", "billing"]);
    assert_eq!(user.claim::<u32>("email"), None, "not a number");
    assert_eq!(user.claim::<String>("missing"), None);
    assert_eq!(user.claims()["jti"], "q1w2e3r4t5y6u7i8o9p0aA");
}

#[test]
fn accepts_eddsa() {
    accepts(&Signer::ed("ed"));
}

#[test]
fn accepts_es256() {
    accepts(&Signer::ec("ec"));
}

#[test]
fn accepts_rs256() {
    accepts(&Signer::rsa("rsa"));
}

#[test]
fn refuses_a_tampered_payload() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let token = s.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(with(claims(), "sub", "1".into()).to_string());
    assert_eq!(
        reason(v.verify_cached(&format!("{}.{forged}.{}", parts[0], parts[2]))),
        "bad_signature"
    );
}

#[test]
fn refuses_a_tampered_signature() {
    for s in [Signer::ed("ed"), Signer::ec("ec"), Signer::rsa("rsa")] {
        let v = verifier(&[&s]);
        let token = s.token(&claims());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[10] ^= 1;
        assert_eq!(
            reason(v.verify_cached(&format!("{input}.{}", b64(&signature)))),
            "bad_signature"
        );
    }
}

#[test]
fn every_one_character_change_is_refused() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let token = s.token(&claims());
    v.verify_cached(&token).unwrap();
    for i in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(v.verify_cached(&changed).is_err(), "accepted with byte {i} changed");
    }
}

#[test]
fn refuses_truncated_tokens() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let token = s.token(&claims());
    let (input, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(reason(v.verify_cached(input)), "malformed", "no signature part");
    assert_eq!(reason(v.verify_cached(&format!("{input}."))), "bad_signature", "empty signature");
    assert_eq!(reason(v.verify_cached(&format!("{input}.{}", &signature[..76]))), "bad_signature");
    assert_eq!(
        reason(v.verify_cached(&format!("{input}.{}", &signature[..85]))),
        "malformed",
        "bad base64"
    );
    assert_eq!(reason(v.verify_cached(&token[..token.len() / 3])), "malformed");
    assert_eq!(reason(v.verify_cached("")), "malformed");
}

#[test]
fn refuses_an_unknown_or_wrong_kid() {
    let (a, b) = (Signer::ed("a"), Signer::ed("b"));
    let v = verifier(&[&a, &b]);
    assert_eq!(
        v.verify_cached(&a.token_as("nope", &claims())),
        Err(AssertionError::UnknownKey { kid: Some("nope".into()) })
    );
    assert_eq!(reason(v.verify_cached(&a.token_as("b", &claims()))), "bad_signature");
    let no_kid = a.sign_with_header(&json!({"typ": "JWT", "alg": "EdDSA"}), &claims());
    assert_eq!(v.verify_cached(&no_kid), Err(AssertionError::UnknownKey { kid: None }));
}

#[test]
fn refuses_alg_none_hs256_and_algorithms_that_do_not_fit_the_key() {
    let (ed, rsa) = (Signer::ed("ed"), Signer::rsa("rsa"));
    let v = verifier(&[&ed, &rsa]);
    let payload = b64(claims().to_string());
    let none = format!("{}.{payload}.", b64(json!({"alg": "none", "kid": "ed"}).to_string()));
    assert_eq!(v.verify_cached(&none), Err(AssertionError::UnsupportedAlgorithm("none".into())));
    // HS256 with the public key as the HMAC secret: the classic key-confusion forgery.
    let header = b64(json!({"typ": "JWT", "alg": "HS256", "kid": "rsa"}).to_string());
    let input = format!("{header}.{payload}");
    let secret =
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, rsa.jwk()["n"].as_str().unwrap().as_bytes());
    let hs256 = format!("{input}.{}", b64(ring::hmac::sign(&secret, input.as_bytes())));
    assert_eq!(v.verify_cached(&hs256), Err(AssertionError::UnsupportedAlgorithm("HS256".into())));
    for alg in ["HS512", "PS256", "ES384", "RS512", "Ed25519", "EDDSA", ""] {
        let t = ed.sign_with_header(&json!({"alg": alg, "kid": "ed"}), &claims());
        assert_eq!(reason(v.verify_cached(&t)), "unsupported_algorithm", "{alg}");
    }
    // A header alg that does not fit the key named by kid.
    let t = ed.sign_with_header(&json!({"alg": "RS256", "kid": "ed"}), &claims());
    assert_eq!(reason(v.verify_cached(&t)), "unsupported_algorithm");
    let t = rsa.sign_with_header(&json!({"alg": "EdDSA", "kid": "rsa"}), &claims());
    assert_eq!(reason(v.verify_cached(&t)), "unsupported_algorithm");
    // A JWK that names another alg than the header's.
    let mut jwk = ed.jwk();
    jwk["alg"] = "ES256".into();
    let v = AssertionVerifier::builder()
        .jwks_json(json!({ "keys": [jwk] }).to_string())
        .audience("api")
        .build()
        .unwrap();
    assert_eq!(reason(v.verify_cached(&ed.token(&claims()))), "unsupported_algorithm");
}

#[test]
fn refuses_a_wrong_issuer() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    assert_eq!(
        v.verify_cached(&s.token(&with(claims(), "iss", "evil".into()))),
        Err(AssertionError::WrongIssuer)
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(v.verify_cached(&s.token(&c)), Err(AssertionError::WrongIssuer));
    let custom = builder(&[&s]).issuer("edge").build().unwrap();
    assert_eq!(reason(custom.verify_cached(&s.token(&claims()))), "wrong_issuer");
    custom.verify_cached(&s.token(&with(claims(), "iss", "edge".into()))).unwrap();
}

#[test]
fn refuses_a_wrong_audience_and_accepts_any_configured_one() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    assert_eq!(
        v.verify_cached(&s.token(&with(claims(), "aud", "billing".into()))),
        Err(AssertionError::WrongAudience)
    );
    assert_eq!(
        reason(v.verify_cached(&s.token(&with(claims(), "aud", json!([]))))),
        "wrong_audience"
    );
    let several = builder(&[&s]).audience("billing").build().unwrap();
    let user = several.verify_cached(&s.token(&with(claims(), "aud", "billing".into()))).unwrap();
    assert_eq!(user.audience(), "billing");
    let user = v.verify_cached(&s.token(&with(claims(), "aud", json!(["other", "api"])))).unwrap();
    assert_eq!(user.audience(), "api");
}

#[test]
fn expiry_is_checked_with_the_leeway() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let t = now();
    let at = |exp: i64| v.verify_cached(&s.token(&with(claims(), "exp", exp.into())));
    assert_eq!(at(t - 31), Err(AssertionError::Expired), "beyond the 30 s leeway");
    assert_eq!(at(t - 3600), Err(AssertionError::Expired));
    at(t - 20).expect("within the leeway");
    let strict = builder(&[&s]).leeway(Duration::ZERO).build().unwrap();
    assert_eq!(
        reason(strict.verify_cached(&s.token(&with(claims(), "exp", (t - 1).into())))),
        "expired"
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(reason(v.verify_cached(&s.token(&c))), "malformed", "exp is required");
}

#[test]
fn nbf_in_the_future_is_not_yet_valid() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let t = now();
    assert_eq!(
        v.verify_cached(&s.token(&with(claims(), "nbf", (t + 120).into()))),
        Err(AssertionError::NotYetValid)
    );
    v.verify_cached(&s.token(&with(claims(), "nbf", (t + 10).into()))).expect("within the leeway");
    v.verify_cached(&s.token(&with(claims(), "nbf", (t - 10).into()))).unwrap();
}

#[test]
fn refuses_an_oversize_token_before_parsing_it() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let big = s.token(&with(claims(), "padding", "x".repeat(8 * 1024).into()));
    assert_eq!(
        v.verify_cached(&big),
        Err(AssertionError::TooLarge { size: big.len(), limit: 8192 })
    );
    let fits = s.token(&with(claims(), "padding", "x".repeat(5000).into()));
    assert!(fits.len() < 8192);
    v.verify_cached(&fits).unwrap();
    let small = builder(&[&s]).max_token_size(300).build().unwrap();
    assert_eq!(reason(small.verify_cached(&s.token(&claims()))), "too_large");
    assert_eq!(reason(v.verify_cached(&".".repeat(9000))), "too_large");
}

#[test]
fn garbage_is_refused_without_panicking() {
    let s = Signer::ed("k");
    let v = verifier(&[&s]);
    let e30 = b64("{}");
    let header = b64(json!({"alg": "EdDSA", "kid": "k"}).to_string());
    let cases = [
        "..".to_owned(),
        "....".to_owned(),
        "a.b.c".to_owned(),
        "€.€.€".to_owned(),
        format!("{e30}.{e30}.{e30}"),
        format!("{header}.{e30}."),
        format!("{header}.!!!.AAAA"),
        format!("{}.{e30}.", b64("null")),
        format!("{}.{e30}.", b64(r#"{"alg":1}"#)),
        format!("{}.{e30}.", b64(r#"{"alg":"EdDSA","kid":["k"]}"#)),
        format!("{}.{e30}.", b64("[".repeat(4000))),
        s.sign_with_header(&json!({"alg": "EdDSA", "kid": "k"}), &json!([1, 2])),
        s.sign_with_header(&json!({"alg": "EdDSA", "kid": "k"}), &json!("a string")),
        s.sign_with_header(&json!({"alg": "EdDSA", "kid": "k"}), &with(claims(), "sub", json!(42))),
        s.sign_with_header(
            &json!({"alg": "EdDSA", "kid": "k"}),
            &with(claims(), "scope", json!({})),
        ),
        s.sign_with_header(&json!({"alg": "EdDSA", "kid": "k", "crit": ["exp"]}), &claims()),
        s.sign_with_header(&json!({"alg": "EdDSA", "kid": "k", "typ": "JOSE+JSON"}), &claims()),
        format!("{header}.{e30}.{}", "A".repeat(8000)),
    ];
    for case in &cases {
        let result = v.verify_cached(case);
        assert!(result.is_err(), "{case:?} accepted");
    }
    // A far-away (but signed) exp is no reason to panic: SystemTime holds it.
    let far = s.token(&with(claims(), "exp", 1e300.into()));
    assert!(
        v.verify_cached(&far).unwrap().expires_at()
            > SystemTime::now() + Duration::from_secs(1 << 40)
    );
    let negative = s.token(&with(claims(), "exp", json!(-1e300)));
    assert_eq!(reason(v.verify_cached(&negative)), "expired");
    let iat = s
        .sign_with_header(&json!({"alg": "EdDSA", "kid": "k"}), &with(claims(), "iat", json!(1.5)));
    v.verify_cached(&iat).expect("NumericDate may have a fraction");
}

#[test]
fn reasons_are_stable() {
    let all = [
        (AssertionError::Malformed("x"), "malformed"),
        (AssertionError::UnsupportedAlgorithm("x".into()), "unsupported_algorithm"),
        (AssertionError::UnknownKey { kid: None }, "unknown_key"),
        (AssertionError::BadSignature, "bad_signature"),
        (AssertionError::Expired, "expired"),
        (AssertionError::NotYetValid, "not_yet_valid"),
        (AssertionError::WrongIssuer, "wrong_issuer"),
        (AssertionError::WrongAudience, "wrong_audience"),
        (AssertionError::KeysUnavailable("x".into()), "keys_unavailable"),
        (AssertionError::DecryptionFailed, "decryption_failed"),
        (AssertionError::TooLarge { size: 2, limit: 1 }, "too_large"),
    ];
    for (error, reason) in all {
        assert_eq!(error.reason(), reason);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The key set over HTTP and from a file

/// A JWKS endpoint on 127.0.0.1:0 that counts its requests and serves what the test sets.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
    status: Arc<AtomicU16>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body));
        let status = Arc::new(AtomicU16::new(200));
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get({
                let (hits, body, status) = (hits.clone(), body.clone(), status.clone());
                move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                    (status, [("content-type", "application/json")], body.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer { url, hits, body, status }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn verifier(&self, min_refresh_interval: Duration) -> AssertionVerifier {
        AssertionVerifier::builder()
            .jwks_url(&self.url)
            .audience("api")
            .min_refresh_interval(min_refresh_interval)
            .build()
            .unwrap()
    }
}

/// A URL where nothing listens.
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/.well-known/jwks.json")
}

#[tokio::test]
async fn jwks_url_unknown_kids_cause_one_refetch_per_interval() {
    let a = Signer::ed("a");
    let server = JwksServer::start(jwks(&[&a])).await;
    let v = server.verifier(Duration::from_secs(1));
    assert_eq!(server.hits(), 0, "nothing fetched at build");
    v.verify(&a.token(&claims())).await.unwrap();
    assert_eq!(server.hits(), 1);
    v.verify(&a.token(&claims())).await.unwrap();
    assert_eq!(server.hits(), 1, "cached");

    // A client spraying made-up kids: one refetch, then unknown_key from the cache.
    for i in 0..20 {
        let kid = format!("spray-{i}");
        assert_eq!(
            v.verify(&a.token_as(&kid, &claims())).await,
            Err(AssertionError::UnknownKey { kid: Some(kid) })
        );
    }
    let concurrent: Vec<_> = (0..10)
        .map(|i| {
            let (v, t) = (v.clone(), a.token_as(&format!("c{i}"), &claims()));
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for task in concurrent {
        assert_eq!(reason(task.await.unwrap()), "unknown_key");
    }
    assert_eq!(server.hits(), 2, "exactly one refetch within the interval");
    assert_eq!(reason(v.verify_cached(&a.token_as("x", &claims()))), "unknown_key");
    assert_eq!(server.hits(), 2, "verify_cached never fetches");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(reason(v.verify(&a.token_as("later", &claims())).await), "unknown_key");
    assert_eq!(server.hits(), 3, "one more after the interval");
    v.verify(&a.token(&claims())).await.unwrap();
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn jwks_url_key_rotation_is_picked_up_without_restart() {
    let (a, b) = (Signer::ed("a"), Signer::ec("b"));
    let server = JwksServer::start(jwks(&[&a])).await;
    let v = server.verifier(Duration::from_secs(10));
    v.verify(&a.token(&claims())).await.unwrap();
    // The gateway rotates: it publishes b next to a, then signs with b.
    server.serve(jwks(&[&b, &a]));
    let user = v.verify(&b.token(&claims())).await.unwrap();
    assert_eq!(user.user_id(), "42");
    assert_eq!(server.hits(), 2);
    v.verify_cached(&a.token(&claims())).unwrap();
    v.verify_cached(&b.token(&claims())).unwrap();
}

#[tokio::test]
async fn jwks_url_stale_keys_are_refreshed_in_the_background() {
    let (a, b) = (Signer::ed("a"), Signer::ed("b"));
    let server = JwksServer::start(jwks(&[&a])).await;
    let v = AssertionVerifier::builder()
        .jwks_url(&server.url)
        .audience("api")
        .max_key_age(Duration::from_millis(200))
        .build()
        .unwrap();
    v.refresh().await.unwrap();
    assert_eq!(server.hits(), 1);
    v.verify_cached(&a.token(&claims())).unwrap();
    server.serve(jwks(&[&b]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Stale: still answered from the cache at once, while a refresh runs in the background.
    v.verify(&a.token(&claims())).await.unwrap();
    for _ in 0..100 {
        if server.hits() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.hits(), 2);
    v.verify_cached(&b.token(&claims())).unwrap();
    assert_eq!(reason(v.verify_cached(&a.token(&claims()))), "unknown_key", "a was retired");
}

#[tokio::test]
async fn jwks_url_down_is_keys_unavailable() {
    let a = Signer::ed("a");
    let v = AssertionVerifier::builder()
        .jwks_url(closed_url().await)
        .audience("api")
        .http_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let token = a.token(&claims());
    assert_eq!(reason(v.verify(&token).await), "keys_unavailable");
    assert_eq!(reason(v.verify(&token).await), "keys_unavailable", "and not retried at once");
    assert_eq!(reason(v.verify_cached(&token)), "keys_unavailable");
    assert_eq!(reason(v.refresh().await.map(|()| unreachable!())), "keys_unavailable");

    // An endpoint that answers 500, or nonsense: the same.
    let server = JwksServer::start("not json".into()).await;
    let v = server.verifier(Duration::from_secs(10));
    assert_eq!(reason(v.verify(&token).await), "keys_unavailable");
    server.status.store(500, Ordering::SeqCst);
    assert!(v.refresh().await.is_err());
}

#[tokio::test]
async fn jwks_url_failures_keep_the_keys_already_loaded() {
    let a = Signer::ed("a");
    let server = JwksServer::start(jwks(&[&a])).await;
    let v = server.verifier(Duration::from_secs(10));
    v.verify(&a.token(&claims())).await.unwrap();
    server.status.store(503, Ordering::SeqCst);
    assert_eq!(reason(v.verify(&a.token_as("new", &claims())).await), "keys_unavailable");
    assert_eq!(server.hits(), 2);
    v.verify(&a.token(&claims())).await.expect("the loaded key still verifies");
    server.serve(r#"{"keys": []}"#.into());
    server.status.store(200, Ordering::SeqCst);
    assert!(v.refresh().await.is_err(), "a key set without keys is refused");
    v.verify(&a.token(&claims())).await.expect("and does not replace the loaded keys");
}

#[tokio::test]
async fn jwks_file_is_read_again_when_it_changes() {
    let (a, b) = (Signer::ed("a"), Signer::rsa("b"));
    let dir =
        std::env::temp_dir().join(format!("rails-session-gateway-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks(&[&a])).unwrap();
    let v = AssertionVerifier::builder().jwks_file(&path).audience("api").build().unwrap();
    v.verify_cached(&a.token(&claims())).unwrap();
    assert_eq!(reason(v.verify_cached(&b.token(&claims()))), "unknown_key");

    std::fs::write(&path, jwks(&[&b])).unwrap();
    assert_eq!(
        reason(v.verify_cached(&b.token(&claims()))),
        "unknown_key",
        "looked at once a second at most"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&b.token(&claims())).await.unwrap();
    assert_eq!(reason(v.verify_cached(&a.token(&claims()))), "unknown_key");

    std::fs::write(&path, "{ half written").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify_cached(&b.token(&claims())).expect("a broken file keeps the loaded keys");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Encrypted assertions (JWE dir + A256GCM around the signed JWT)

const ENC_KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

#[test]
fn jwe_round_trip() {
    let s = Signer::ed("k");
    let v = builder(&[&s])
        .decryption_key("e1", &ENC_KEY)
        .decryption_key("e2", &[9; 32])
        .build()
        .unwrap();
    let signed = s.token(&claims());
    let encrypted = jwe::encrypt("e1", &ENC_KEY, signed.as_bytes()).unwrap();
    assert_eq!(encrypted.split('.').count(), 5);
    assert!(!encrypted.contains(&signed[..20]));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(encrypted.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header, json!({"alg": "dir", "enc": "A256GCM", "kid": "e1", "cty": "JWT"}));
    assert_eq!(v.verify_cached(&encrypted).unwrap().user_id(), "42");
    // The second key (rotation), and plain signed tokens, are accepted too.
    let encrypted = jwe::encrypt("e2", &[9; 32], signed.as_bytes()).unwrap();
    assert_eq!(v.verify_cached(&encrypted).unwrap().user_id(), "42");
    v.verify_cached(&signed).unwrap();
    assert_eq!(
        &jwe::decrypt(&encrypted, &[jwe::JweKey::new("e2", &[9; 32])]).unwrap()[..],
        signed.as_bytes()
    );
    // The inner token is verified as usual.
    let expired = s.token(&with(claims(), "exp", (now() - 600).into()));
    assert_eq!(
        reason(v.verify_cached(&jwe::encrypt("e1", &ENC_KEY, expired.as_bytes()).unwrap())),
        "expired"
    );
    let other = Signer::ed("k");
    let forged = jwe::encrypt("e1", &ENC_KEY, other.token(&claims()).as_bytes()).unwrap();
    assert_eq!(reason(v.verify_cached(&forged)), "bad_signature");
    let nested = jwe::encrypt("e1", &ENC_KEY, encrypted.as_bytes()).unwrap();
    assert_eq!(reason(v.verify_cached(&nested)), "malformed");
}

#[test]
fn jwe_wrong_key_or_tampering_is_decryption_failed() {
    let s = Signer::ed("k");
    let v = builder(&[&s]).decryption_key("e1", &ENC_KEY).build().unwrap();
    let signed = s.token(&claims());
    let good = jwe::encrypt("e1", &ENC_KEY, signed.as_bytes()).unwrap();
    v.verify_cached(&good).unwrap();

    let failed = |token: &str| v.verify_cached(token);
    assert_eq!(
        failed(&jwe::encrypt("e1", &[1; 32], signed.as_bytes()).unwrap()),
        Err(AssertionError::DecryptionFailed),
        "wrong key"
    );
    assert_eq!(
        failed(&jwe::encrypt("e9", &ENC_KEY, signed.as_bytes()).unwrap()),
        Err(AssertionError::DecryptionFailed),
        "unknown kid"
    );
    let parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let tampered = |i: usize| {
        let mut parts = parts.clone();
        let mut bytes = URL_SAFE_NO_PAD.decode(&parts[i]).unwrap();
        bytes[0] ^= 1;
        parts[i] = b64(&bytes);
        parts.join(".")
    };
    assert_eq!(failed(&tampered(2)), Err(AssertionError::DecryptionFailed), "iv");
    assert_eq!(failed(&tampered(3)), Err(AssertionError::DecryptionFailed), "ciphertext");
    assert_eq!(failed(&tampered(4)), Err(AssertionError::DecryptionFailed), "tag");
    // The header is the AAD: the same header, re-encoded with a space, does not decrypt.
    let mut header = parts.clone();
    header[0] = b64(r#"{"alg":"dir", "enc":"A256GCM","kid":"e1","cty":"JWT"}"#);
    assert_eq!(failed(&header.join(".")), Err(AssertionError::DecryptionFailed), "header");
    let mut key_wrapped = parts.clone();
    key_wrapped[1] = "AAAA".into();
    assert_eq!(reason(failed(&key_wrapped.join("."))), "malformed");
    let mut a128 = parts.clone();
    a128[0] = b64(r#"{"alg":"A128KW","enc":"A256GCM","kid":"e1"}"#);
    assert_eq!(reason(failed(&a128.join("."))), "unsupported_algorithm");
    // No decryption key configured.
    assert_eq!(verifier(&[&s]).verify_cached(&good), Err(AssertionError::DecryptionFailed));
}

// ---------------------------------------------------------------------------------------------------------------
// axum

async fn me(user: GatewayUser) -> Json<Value> {
    Json(json!({
        "id": user.user_id(), "scope": user.scope(), "sid": user.sid(), "aud": user.audience(),
        "email": user.claim::<String>("email"),
    }))
}

async fn maybe(user: Option<GatewayUser>) -> String {
    user.map_or("nobody".into(), |u| u.user_id().to_owned())
}

fn app(verifier: AssertionVerifier) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .layer(GatewayAuthLayer::new(verifier))
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    challenge: Option<String>,
    body: String,
}

async fn call(app: &Router, request: http::request::Builder) -> Answer {
    let r = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let header =
        |name| r.headers().get(name).map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned());
    let (status, content_type, challenge) =
        (r.status(), header("content-type"), header("www-authenticate"));
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    Answer { status, content_type, challenge, body: String::from_utf8(body.to_vec()).unwrap() }
}

#[tokio::test]
async fn axum_extractor_end_to_end() {
    let s = Signer::ec("k");
    let app = app(verifier(&[&s]));
    let token = s.token(&claims());

    let r =
        call(&app, Request::get("/me").header("authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"id": "42", "scope": "user", "sid": "kAq3x9yPbGvN0mD6QcW1sT8uH2eJ5fL7rZ4oYiXa1Bc", "aud": "api", "email": "ada@example.com"})
    );
    let r = call(&app, Request::get("/me").header("x-railbridge-assertion", &token)).await;
    assert_eq!(r.status, StatusCode::OK, "the gateway's header");
    let r = call(
        &app,
        Request::get("/me")
            .header("authorization", "Basic dTpw")
            .header("x-railbridge-assertion", &token),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a non-bearer Authorization falls back to the gateway's header"
    );

    let r = call(&app, Request::get("/me")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, r#"{"error":"missing_token"}"#);
    assert_eq!(r.challenge.as_deref(), Some("Bearer"));
    assert_eq!(r.content_type.as_deref(), Some("application/json; charset=utf-8"));

    let expired = s.token(&with(claims(), "exp", (now() - 600).into()));
    let r =
        call(&app, Request::get("/me").header("authorization", format!("Bearer {expired}"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, r#"{"error":"invalid_token","reason":"expired"}"#);
    assert_eq!(
        r.challenge.as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="expired""#)
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json; charset=utf-8"));

    let r = call(&app, Request::get("/me").header("authorization", "Bearer not-a-jwt")).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_token","reason":"malformed"}"#)
    );
    let wrong = s.token(&with(claims(), "aud", "billing".into()));
    let r = call(&app, Request::get("/me").header("x-railbridge-assertion", wrong)).await;
    assert_eq!(r.body, r#"{"error":"invalid_token","reason":"wrong_audience"}"#);
    assert_eq!(
        r.challenge.as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="wrong_audience""#)
    );

    // Option<GatewayUser>: None without a token, still 401 for a bad one.
    assert_eq!(call(&app, Request::get("/maybe")).await.body, "nobody");
    assert_eq!(
        call(&app, Request::get("/maybe").header("authorization", format!("Bearer {token}")))
            .await
            .body,
        "42"
    );
    let r = call(&app, Request::get("/maybe").header("authorization", format!("Bearer {expired}")))
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_token","reason":"expired"}"#)
    );
}

#[tokio::test]
async fn axum_extension_layer_works_too() {
    let s = Signer::ed("k");
    let app: Router = Router::new().route("/me", get(me)).layer(Extension(verifier(&[&s])));
    let r = call(
        &app,
        Request::get("/me").header("authorization", format!("Bearer {}", s.token(&claims()))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn axum_without_a_verifier_is_a_500() {
    let app: Router = Router::new().route("/me", get(me));
    let r = call(&app, Request::get("/me")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("gateway auth layer is missing"), "{}", r.body);
    assert_eq!(r.challenge, None);
}

#[tokio::test]
async fn axum_keys_unavailable_is_a_503() {
    let s = Signer::ed("k");
    let v =
        AssertionVerifier::builder().jwks_url(closed_url().await).audience("api").build().unwrap();
    let r = call(
        &app(v),
        Request::get("/me").header("authorization", format!("Bearer {}", s.token(&claims()))),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, r#"{"error":"unavailable","reason":"keys_unavailable"}"#);
    assert_eq!(r.challenge, None);
}

#[tokio::test]
async fn axum_with_keys_from_a_live_jwks_endpoint() {
    let s = Signer::rsa("r");
    let server = JwksServer::start(jwks(&[&s])).await;
    let app = app(server.verifier(Duration::from_secs(10)));
    let token = s.token(&claims());
    for _ in 0..3 {
        let r = call(&app, Request::get("/me").header("x-railbridge-assertion", &token)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(server.hits(), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// actix-web

#[cfg(feature = "actix-web")]
mod actix {
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    async fn me(user: GatewayUser) -> HttpResponse {
        HttpResponse::Ok().body(format!("{} {:?}", user.user_id(), user.scope()))
    }

    #[actix_web::test]
    async fn actix_extractor_end_to_end() {
        let s = Signer::ed("k");
        let token = s.token(&claims());
        let app = test::init_service(
            App::new().app_data(web::Data::new(verifier(&[&s]))).route("/me", web::get().to(me)),
        )
        .await;
        let get = || test::TestRequest::get().uri("/me");

        let r = test::call_service(
            &app,
            get().insert_header(("authorization", format!("Bearer {token}"))).to_request(),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(test::read_body(r).await, r#"42 Some("user")"#);
        let r = test::call_service(
            &app,
            get().insert_header(("x-railbridge-assertion", token.clone())).to_request(),
        )
        .await;
        assert_eq!(r.status(), 200);

        let r = test::call_service(&app, get().to_request()).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
        assert_eq!(r.headers().get("content-type").unwrap(), "application/json; charset=utf-8");
        assert_eq!(test::read_body(r).await, r#"{"error":"missing_token"}"#);

        let forged = s.token_as("other", &claims());
        let r = test::call_service(
            &app,
            get().insert_header(("authorization", format!("Bearer {forged}"))).to_request(),
        )
        .await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            r#"Bearer error="invalid_token", error_description="unknown_key""#
        );
        assert_eq!(test::read_body(r).await, r#"{"error":"invalid_token","reason":"unknown_key"}"#);
    }

    #[actix_web::test]
    async fn actix_bare_app_data_and_missing_verifier() {
        let s = Signer::ed("k");
        let token = s.token(&claims());
        let app = test::init_service(
            App::new().app_data(verifier(&[&s])).route("/me", web::get().to(me)),
        )
        .await;
        let r = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/me")
                .insert_header(("authorization", format!("Bearer {token}")))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), 200);

        let app = test::init_service(App::new().route("/me", web::get().to(me))).await;
        let r = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
        assert_eq!(r.status(), 500);
        assert!(String::from_utf8(test::read_body(r).await.to_vec())
            .unwrap()
            .contains("gateway auth layer is missing"));
    }

    #[actix_web::test]
    async fn actix_keys_unavailable_is_a_503() {
        let s = Signer::ed("k");
        let v = AssertionVerifier::builder()
            .jwks_url(closed_url().await)
            .audience("api")
            .build()
            .unwrap();
        let app = test::init_service(
            App::new().app_data(web::Data::new(v)).route("/me", web::get().to(me)),
        )
        .await;
        let r = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/me")
                .insert_header(("x-railbridge-assertion", s.token(&claims())))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), 503);
        assert_eq!(
            test::read_body(r).await,
            r#"{"error":"unavailable","reason":"keys_unavailable"}"#
        );
    }
}
