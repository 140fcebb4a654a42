//! Live: tokens across apps. The real Rails 6.1 + Devise app behind two gateway instances that share a Redis (from
//! the test kit): sign in, exchange the session for tokens, use the access token on an `accept_bearer` route of
//! either instance, refresh once (a replay kills the family), sign out through the gateway (both instances refuse
//! the tokens within a second), the revoke hook, cross-site token requests. Then a Rust service built on
//! `rails_session::gateway_auth` behind the gateway, across a key rotation.

use std::time::{Duration, Instant};

use serde_json::{json, Value as JsonValue};

use super::live::{Browser, Rails};
use super::support::*;

const REVOKE_SECRET: &str = "0123456789abcdef0123456789abcdef-revoke";

fn toml(key: &std::path::Path, redis: &str, echo: &Server, rails: &Rails) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_paths = ["/users/sign_in"]
[rails]
session_key = "{COOKIE}"
rails_version = "6.1"
[log]
access_log = false
[identity]
cache_ttl = 0
[user_api]
url = "{user_api}/internal/users/{{id}}"
cache_ttl = 0
[[identity.field]]
from = "user.email"
header = "X-Railbridge-Email"
claim = "email"
[[jwt.key]]
file = "{key}"
[tokens]
access_ttl = "2m"
refresh_lifetime = "1h"
audience = "mobile"
store_url = "{redis}"
[[route]]
name = "echo"
prefix = "/echo"
upstream = "http://{echo}"
[[route]]
name = "api"
prefix = "/api"
upstream = "http://{echo}"
accept_bearer = true
[[route]]
name = "rails"
prefix = "/"
upstream = "{rails}"
policy = "public"
forward_session_cookie = true
preserve_host = true
"#,
        key = key.display(),
        echo = echo.addr,
        rails = rails.app.base_url(),
        user_api = rails.user_api.base_url(),
    )
}

/// `POST /_railbridge/token` as a page of the gateway's origin would send it.
async fn exchange(b: &mut Browser, gw: &Gw, csrf: Option<&str>, origin: Option<&str>) -> Resp {
    let mut req = client().post(gw.url("/_railbridge/token"));
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    b.send(req).await
}

async fn refresh(gw: &Gw, token: &str) -> Resp {
    send(
        client()
            .post(gw.url("/_railbridge/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={token}")),
    )
    .await
}

async fn bearer(gw: &Gw, path: &str, token: &str) -> Resp {
    send(client().get(gw.url(path)).header("authorization", format!("Bearer {token}"))).await
}

/// Polls until `check` holds or `within` has passed; the time it took.
async fn within<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() <= within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn exchange_bearer_refresh_and_revocation_across_two_instances() {
    if skip_live() {
        return;
    }
    let Some(redis) = testkit::Redis::start() else { return };
    let rails = Rails::start();
    let echo = echo().await;
    let dir = TempDir::new("tokens");
    let key = dir.write("ed.pem", &ed25519_pem());
    let toml = toml(&key, &redis.url(), &echo, &rails);
    let env = [("RAILBRIDGE_REVOKE_SECRET", REVOKE_SECRET)];
    let gw1 = gateway(&toml, &env).await;
    let gw2 = gateway(&toml, &env).await;
    let origin = gw1.url("");
    let mut b = Browser::new();

    // Not signed in: nothing to exchange.
    let csrf = b.get(&gw1.url("/csrf")).await.json()["token"].as_str().unwrap().to_owned();
    let r = exchange(&mut b, &gw1, Some(&csrf), Some(&origin)).await;
    assert_eq!((r.status, r.json()["error"].clone()), (401, json!("login_required")), "{}", r.body);

    b.sign_in(&origin, "user@example.com", "password123").await;
    let csrf = b.get(&gw1.url("/csrf")).await.json()["token"].as_str().unwrap().to_owned();

    // Cross-site requests are refused: another Origin, no CSRF token, a wrong one, neither Origin nor
    // Sec-Fetch-Site.
    for (token, o, what) in [
        (Some(csrf.as_str()), Some("http://evil.test"), "another origin"),
        (None, Some(origin.as_str()), "no CSRF token"),
        (Some("A".repeat(88).as_str()), Some(origin.as_str()), "a wrong CSRF token"),
        (Some(csrf.as_str()), None, "no Origin, no Sec-Fetch-Site"),
    ] {
        let r = exchange(&mut b, &gw1, token, o).await;
        assert_eq!(r.status, 403, "{what}: {}", r.body);
    }
    let r = b
        .send(
            client()
                .post(gw1.url("/_railbridge/token"))
                .header("x-csrf-token", &csrf)
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(r.status, 200, "Sec-Fetch-Site: same-origin without Origin: {}", r.body);

    // The exchange.
    let r = exchange(&mut b, &gw1, Some(&csrf), Some(&origin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens = r.json();
    assert_eq!(
        (tokens["token_type"].clone(), tokens["expires_in"].clone()),
        (json!("Bearer"), json!(120))
    );
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let jwks = get(&gw1.url("/.well-known/jwks.json"), None).await.json();
    let claims = verify(&access, &jwks, "mobile", "railbridge");
    assert_eq!((claims["sub"].clone(), claims["use"].clone()), (json!("1"), json!("access")));
    assert_eq!(
        claims["email"], "user@example.com",
        "configured identity fields travel in the token"
    );
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 120);

    // A bearer request on an accept_bearer route, on either instance: the upstream sees the user, not the token.
    for gw in [&gw1, &gw2] {
        let r = bearer(gw, "/api/x", &access).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["1"]));
        assert_eq!(r.json()["headers"]["x-railbridge-email"], json!(["user@example.com"]));
        assert!(r.received("authorization").is_none(), "the bearer token stays at the gateway");
        let assertion = r.received("x-railbridge-assertion").unwrap();
        assert_eq!(verify(&assertion, &jwks, "api", "railbridge")["sub"], "1");
    }
    // Not on a route without accept_bearer, and not tampered with.
    assert_eq!(bearer(&gw1, "/echo/x", &access).await.status, 401);
    let mut tampered = access.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let r = bearer(&gw1, "/api/x", std::str::from_utf8(&tampered).unwrap()).await;
    assert_eq!((r.status, r.json()["reason"].clone()), (401, json!("bad_signature")), "{}", r.body);
    // An identity assertion is not an access token.
    let assertion =
        bearer(&gw1, "/api/x", &access).await.received("x-railbridge-assertion").unwrap();
    assert_eq!(bearer(&gw1, "/api/x", &assertion).await.status, 401);

    // Refresh once (on the other instance): a new pair. The spent token again: refused, and its family with it.
    let r = refresh(&gw2, &refresh_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.json();
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    let refresh2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh_token);
    assert_eq!(bearer(&gw1, "/api/x", &access2).await.status, 200);
    let r = refresh(&gw1, &refresh_token).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "replay");
    assert_eq!(refresh(&gw1, &refresh2).await.status, 400, "the family is revoked");
    let refused = within(Duration::from_secs(1), || async {
        bearer(&gw1, "/api/x", &access2).await.status == 401
            && bearer(&gw2, "/api/x", &access2).await.status == 401
    })
    .await;
    assert!(
        refused.is_some(),
        "the family's access tokens are refused within 1 s on both instances"
    );

    // A new family; then sign-out at Rails, through the gateway: both instances refuse within 1 s.
    let csrf = b.get(&gw1.url("/csrf")).await.json()["token"].as_str().unwrap().to_owned();
    let r = exchange(&mut b, &gw1, Some(&csrf), Some(&origin)).await;
    let third = r.json();
    let access3 = third["access_token"].as_str().unwrap().to_owned();
    let refresh3 = third["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(bearer(&gw2, "/api/x", &access3).await.status, 200);
    let out = b.get(&gw1.url("/users/sign_out")).await;
    assert_eq!(out.status, 302, "{}", out.body);
    let took = within(Duration::from_secs(1), || async {
        bearer(&gw1, "/api/x", &access3).await.status == 401
            && bearer(&gw2, "/api/x", &access3).await.status == 401
    })
    .await;
    assert!(took.is_some(), "sign-out ends the access token on both instances within 1 s");
    assert_eq!(refresh(&gw2, &refresh3).await.status, 400, "and the refresh token");

    // The revoke hook: Rails' after_sign_out (or "sign out everywhere") by user id.
    b.sign_in(&origin, "user@example.com", "password123").await;
    let csrf = b.get(&gw1.url("/csrf")).await.json()["token"].as_str().unwrap().to_owned();
    let fourth = exchange(&mut b, &gw1, Some(&csrf), Some(&origin)).await.json();
    let access4 = fourth["access_token"].as_str().unwrap().to_owned();
    assert_eq!(bearer(&gw2, "/api/x", &access4).await.status, 200);
    let hook = |secret: &str, body: JsonValue| {
        client()
            .post(gw2.url("/_railbridge/revoke"))
            .header("authorization", format!("Bearer {secret}"))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    assert_eq!(send(hook("wrong-secret", json!({"user": 1}))).await.status, 401);
    let r = send(hook(REVOKE_SECRET, json!({"user": 1}))).await;
    assert_eq!((r.status, r.json()), (200, json!({"revoked": "user"})));
    let took = within(Duration::from_secs(1), || async {
        bearer(&gw1, "/api/x", &access4).await.status == 401
            && bearer(&gw2, "/api/x", &access4).await.status == 401
    })
    .await;
    assert!(took.is_some(), "the revoke hook ends the tokens on both instances within 1 s");

    let metrics = get(&gw1.url("/_railbridge/metrics"), None).await.body;
    for line in [
        r#"railbridge_tokens_total{event="issued",reason="ok"}"#,
        r#"railbridge_tokens_total{event="revoked",reason="sid"}"#,
        r#"railbridge_tokens_total{event="refused",reason="reused"}"#,
        r#"railbridge_tokens_total{event="refused",reason="cross_site"}"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// A service behind the gateway, verifying its assertions with `rails_session::gateway_auth`.
async fn service(jwks_url: String, audience: &str) -> Server {
    use axum::routing::get as route_get;
    use rails_session::gateway_auth::{AssertionVerifier, GatewayAuthLayer, GatewayUser};
    let verifier = AssertionVerifier::builder()
        .jwks_url(jwks_url)
        .audience(audience)
        .min_refresh_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/{*rest}",
            route_get(|user: GatewayUser| async move {
                axum::Json(json!({"user": user.user_id(), "kid_ok": true, "email": user.claim::<String>("email")}))
            }),
        )
        .layer(GatewayAuthLayer::new(verifier));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server::from_parts(addr, task)
}

#[tokio::test]
async fn a_service_verifies_assertions_across_a_key_rotation() {
    if skip_live() {
        return;
    }
    let rails = Rails::start();
    let dir = TempDir::new("rotation");
    let key1 = dir.write("k1.pem", &ed25519_pem());
    let key2 = dir.write("k2.pem", &p256_pem());
    // The gateway's address is needed for the JWKS URL before the service's: reserve it first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = listener.local_addr().unwrap();
    let svc = service(format!("http://{gw_addr}/.well-known/jwks.json"), "svc").await;
    let toml = |keys: &str| {
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_paths = ["/users/sign_in"]
[rails]
session_key = "{COOKIE}"
rails_version = "6.1"
[log]
access_log = false
{keys}
[[route]]
name = "svc"
prefix = "/svc"
upstream = "http://{svc}"
[[route]]
name = "echo"
prefix = "/echo"
upstream = "http://{svc}"
[[route]]
name = "rails"
prefix = "/"
upstream = "{rails}"
policy = "public"
forward_session_cookie = true
preserve_host = true
"#,
            svc = svc.addr,
            rails = rails.app.base_url(),
        )
    };
    let only1 = format!("[[jwt.key]]\nfile = \"{}\"\n", key1.display());
    let both_1_signs = format!("{only1}[[jwt.key]]\nfile = \"{}\"\n", key2.display());
    let both_2_signs = format!(
        "[[jwt.key]]\nfile = \"{}\"\n[[jwt.key]]\nfile = \"{}\"\nsign = true\n",
        key1.display(),
        key2.display()
    );
    let gw = start_on(listener, config(&toml(&only1), &[("SECRET_KEY_BASE", SKB)])).await;
    let mut b = Browser::new();
    b.sign_in(&gw.url(""), "user@example.com", "password123").await;
    let ok = |r: &Resp| r.status == 200 && r.json()["user"] == "1";
    let r = b.get(&gw.url("/svc/me")).await;
    assert!(ok(&r), "{}: {}", r.status, r.body);

    // Rotation: publish key 2 (SIGHUP), then sign with it (SIGHUP). The service picks the new key up by itself.
    gw.gateway.reload(config(&toml(&both_1_signs), &[("SECRET_KEY_BASE", SKB)]));
    let r = b.get(&gw.url("/svc/me")).await;
    assert!(ok(&r), "{}: {}", r.status, r.body);
    gw.gateway.reload(config(&toml(&both_2_signs), &[("SECRET_KEY_BASE", SKB)]));
    let r = b.get(&gw.url("/svc/me")).await;
    assert!(ok(&r), "after the signer changed: {}: {}", r.status, r.body);

    // Refused: an assertion for another route, a tampered one, an expired one, none.
    let other = b.get(&gw.url("/echo/me")).await;
    assert_eq!(
        other.status, 401,
        "the echo route's assertion has aud=echo, the service wants svc: {}",
        other.body
    );
    assert_eq!(other.json()["reason"], "wrong_audience");
    let direct =
        |token: String| client().get(svc.url("/me")).header("x-railbridge-assertion", token);
    let assertion = {
        // Capture a fresh assertion by asking the service through the gateway is not possible (it only answers
        // JSON), so sign one the way the gateway does, with the gateway's key 2, and check the service accepts it.
        let jwk = get(&gw.url("/.well-known/jwks.json"), None).await.json();
        let kid = jwk["keys"].as_array().unwrap().iter().find(|k| k["kty"] == "EC").unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned();
        let pem = std::fs::read(&key2).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid);
        move |exp_offset: i64, aud: &str| {
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            )
            .unwrap();
            let claims = json!({"iss": "railbridge", "aud": aud, "sub": "1", "sid": "x", "iat": now, "exp": now + exp_offset});
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }
    };
    assert_eq!(send(direct(assertion(60, "svc"))).await.status, 200);
    let r = send(direct(assertion(-120, "svc"))).await;
    assert_eq!((r.status, r.json()["reason"].clone()), (401, json!("expired")));
    let r = send(direct(assertion(60, "other"))).await;
    assert_eq!((r.status, r.json()["reason"].clone()), (401, json!("wrong_audience")));
    let mut t = assertion(60, "svc").into_bytes();
    let at = t.len() / 2;
    t[at] = if t[at] == b'a' { b'b' } else { b'a' };
    let r = send(direct(String::from_utf8(t).unwrap())).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = send(client().get(svc.url("/me"))).await;
    assert_eq!((r.status, r.json()["error"].clone()), (401, json!("missing_token")));
}

/// Encrypted access tokens (JWE `dir` + `A256GCM`), the in-memory store, and the sign-out rules, with sessions the
/// test writes itself (no Rails needed).
#[tokio::test]
async fn encrypted_tokens_in_memory_and_what_counts_as_a_sign_out() {
    let echo = echo().await;
    let dir = TempDir::new("tokens-jwe");
    let key = dir.write("ed.pem", &ed25519_pem());
    let aes = [7u8; 32];
    let aes_file = dir.write("token.key", &hex::encode(aes));
    let toml = routes_toml(
        &echo,
        &format!(
            "[[jwt.key]]\nfile = \"{}\"\n[tokens]\nencryption_key_files = [\"{}\"]\n\n[[route]]\nname = \"bearer\"\nprefix = \"/bearer\"\nupstream = \"http://{}\"\naccept_bearer = true\n",
            key.display(),
            aes_file.display(),
            echo.addr
        ),
    );
    let gw = gateway(&toml, &[]).await;
    let cookie = cookie_for(&devise_session("user", 42));
    let csrf = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // the session's own (unmasked) token
    let exchange = |cookie: String| {
        client()
            .post(gw.url("/_railbridge/token"))
            .header("cookie", cookie)
            .header("origin", gw.url(""))
            .header("x-csrf-token", csrf)
    };
    let r = send(exchange(cookie.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(access.split('.').count(), 5, "a JWE compact serialization");
    let r = bearer(&gw, "/bearer/x", &access).await;
    assert_eq!(
        (r.status, r.json()["headers"]["x-railbridge-user"].clone()),
        (200, json!(["42"])),
        "{}",
        r.body
    );
    // A service holding the key reads it as it reads an assertion.
    let jwks = get(&gw.url("/.well-known/jwks.json"), None).await.body;
    let kid = hex::encode(&ring::digest::digest(&ring::digest::SHA256, &aes).as_ref()[..8]);
    let verifier = rails_session::gateway_auth::AssertionVerifier::builder()
        .jwks_json(jwks.clone())
        .audience("railbridge-api")
        .decryption_key(kid, &aes)
        .build()
        .unwrap();
    assert_eq!(verifier.verify_cached(&access).unwrap().user_id(), "42");
    let without_key = rails_session::gateway_auth::AssertionVerifier::builder()
        .jwks_json(jwks)
        .audience("railbridge-api")
        .build()
        .unwrap();
    assert!(
        without_key.verify_cached(&access).is_err(),
        "the claims are unreadable without the key"
    );

    // What a response setting the session cookie means for the tokens of the session behind it.
    let c = codec(rails_cookie::Profile::rails_6_1());
    let set = |session: &rails_cookie::Hash| {
        let value = c.encode(COOKIE, &rails_cookie::Value::Hash(session.clone()), None).unwrap();
        format!("{COOKIE}={}; path=/; HttpOnly", rails_cookie::escape(&value))
    };
    let mut timeout_refresh = devise_session("user", 42);
    let mut last = rails_cookie::Hash::new();
    last.insert("last_request_at", 1_800_000_000i64.into());
    timeout_refresh.insert("warden.user.user.session", rails_cookie::Value::Hash(last));
    let mut signed_out = devise_session("user", 42);
    signed_out.remove("warden.user.user.key");
    let mut other_session = devise_session("user", 42);
    other_session.insert("session_id", "f".repeat(32).into());
    for (set_cookie, ends) in [
        (set(&timeout_refresh), false),
        (set(&signed_out), true),
        (set(&other_session), true),
        (format!("{COOKIE}=; path=/; max-age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT"), true),
    ] {
        let access = send(exchange(cookie.clone())).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = send(
            client()
                .post(gw.url("/echo/set-session"))
                .header("cookie", &cookie)
                .header("x-set-cookie", &set_cookie),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let after = bearer(&gw, "/bearer/x", &access).await.status;
        assert_eq!(
            after == 401,
            ends,
            "{set_cookie}: tokens {}",
            if ends { "must end" } else { "must live" }
        );
    }
}

/// Refreshing checks that the Rails login is still there: a server-side session record deleted elsewhere, and a
/// Devise password change (the salt, through the User API).
#[tokio::test]
async fn refresh_checks_the_rails_login() {
    if skip_live() {
        return;
    }
    let Some(redis) = testkit::Redis::start() else { return };
    let dir = TempDir::new("tokens-refresh");
    let db = dir.0.join("app.sqlite3");
    let with_env = |app: testkit::RailsApp| {
        app.env("RAILS_PROFILE", "6.1")
            .env("RAILS_TEST_HELPERS", "1")
            .env("RAILS_APP_DB", &db)
            .env("SECRET_KEY_BASE", SKB)
            .env("SESSION_KEY", COOKIE)
            .env("SESSION_STORE", "cache_store")
            .env("SESSION_STORE_URL", redis.url())
            .env("SESSION_STORE_NAMESPACE", "myapp")
    };
    let app = with_env(testkit::RailsApp::rails_6_1()).start();
    let api = workspace_root().join("crates/rails-session/tests/support/user_api.rb");
    let user_api = with_env(testkit::RailsApp::script("user API", api)).start();
    let echo = echo().await;
    let key = dir.write("ed.pem", &ed25519_pem());
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_paths = ["/users/sign_in"]
[rails]
session_key = "{COOKIE}"
rails_version = "6.1"
session_store = "cache_store"
session_store_url = "{redis}"
session_store_namespace = "myapp"
[log]
access_log = false
[identity]
cache_ttl = 0
[user_api]
url = "{user_api}/internal/users/{{id}}"
cache_ttl = 0
[[jwt.key]]
file = "{key}"
[[route]]
name = "api"
prefix = "/api"
upstream = "http://{echo}"
accept_bearer = true
[[route]]
name = "rails"
prefix = "/"
upstream = "{rails}"
policy = "public"
forward_session_cookie = true
preserve_host = true
"#,
        redis = redis.url(),
        user_api = user_api.base_url(),
        key = key.display(),
        echo = echo.addr,
        rails = app.base_url(),
    );
    let gw = gateway(&toml, &[]).await;
    let origin = gw.url("");
    let mut b = Browser::new();
    b.sign_in(&origin, "user@example.com", "password123").await;
    // The record deleted behind the gateway's back (an admin, another app): the next refresh is refused.
    let refresh1 = tokens_for(&mut b, &gw, &origin).await;
    let cookie = b.cookie(COOKIE).unwrap().to_owned();
    let key = format!(
        "myapp:_session_id:{}",
        rails_session::SessionId::from_cookie(&cookie).unwrap().private_id()
    );
    assert!(redis.command(&[b"DEL", key.as_bytes()]).starts_with(b":1"));
    let r = refresh(&gw, &refresh1).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);

    // A password change at Rails (a new salt): the next refresh is refused.
    let mut b = Browser::new();
    b.sign_in(&origin, "user@example.com", "password123").await;
    let refresh2 = tokens_for(&mut b, &gw, &origin).await;
    let r = refresh(&gw, &refresh2).await;
    assert_eq!(r.status, 200, "still signed in: {}", r.body);
    let refresh3 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let reset = send(
        client()
            .post(app.url("/test/reset_password"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=user%40example.com&password=changed456"),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let r = refresh(&gw, &refresh3).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);
}

/// Exchanges the browser's session for tokens; the refresh token.
async fn tokens_for(b: &mut Browser, gw: &Gw, origin: &str) -> String {
    let csrf = b.get(&gw.url("/csrf")).await.json()["token"].as_str().unwrap().to_owned();
    let r = exchange(b, gw, Some(&csrf), Some(origin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn serve_check_reports_the_token_settings() {
    let Some(redis) = testkit::Redis::start() else { return };
    let dir = TempDir::new("check-tokens");
    let key = dir.write("ed.pem", &ed25519_pem());
    let config = dir.write(
        "tokens.toml",
        &format!(
            "[rails]\nsession_key = \"{COOKIE}\"\n[[jwt.key]]\nfile = \"{}\"\n[tokens]\naccess_ttl = \"10m\"\naudience = \"mobile\"\n",
            key.display()
        ),
    );
    let run = |store: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_railbridge"))
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .env("SECRET_KEY_BASE", SKB)
            .env("RAILBRIDGE_TOKEN_STORE_URL", store)
            .output()
            .unwrap()
    };
    let ok = run(&redis.url());
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        text.contains(r#"tokens: access ttl 600s, refresh lifetime 86400s, audience "mobile", store redis, encrypted no"#),
        "{text}"
    );
    assert!(text.contains("token store: ok"), "{text}");
    let down = run(&format!("redis://:hunter2@127.0.0.1:{}/0", closed_port()));
    let text = String::from_utf8_lossy(&down.stdout).into_owned();
    assert_eq!(down.status.code(), Some(1), "{text}");
    assert!(text.contains("token store: not reachable") && !text.contains("hunter2"), "{text}");
}

/// The finer rules, with sessions the test writes itself: the `Bearer` scheme in any case, a Warden-scope route
/// refusing another scope's token, a revocation ending only what was issued before it, CORS for a configured public
/// origin, and the revoke hook answering 503 when it cannot record the revocation.
#[tokio::test]
async fn token_rules() {
    let echo = echo().await;
    let dir = TempDir::new("tokens-rules");
    let key = dir.write("ed.pem", &ed25519_pem());
    let extra = format!(
        "[[jwt.key]]\nfile = \"{}\"\n[tokens]\npublic_origins = [\"https://app.example.com\"]\n\n\
         [[route]]\nname = \"bearer\"\nprefix = \"/bearer\"\nupstream = \"http://{e}\"\naccept_bearer = true\n\n\
         [[route]]\nname = \"staff\"\nprefix = \"/staff\"\nupstream = \"http://{e}\"\naccept_bearer = true\npolicy = \"scope:admin\"\n",
        key.display(),
        e = echo.addr
    );
    let gw =
        gateway(&routes_toml(&echo, &extra), &[("RAILBRIDGE_REVOKE_SECRET", REVOKE_SECRET)]).await;
    let csrf = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let exchange_as = |id: i64, origin: String| {
        client()
            .post(gw.url("/_railbridge/token"))
            .header("cookie", cookie_for(&devise_session("user", id)))
            .header("origin", origin)
            .header("x-csrf-token", csrf)
    };
    let r = send(
        exchange_as(7, gw.url("")).header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(r.status, 200, "an empty form is the exchange: {}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    let r =
        send(client().get(gw.url("/bearer/x")).header("authorization", format!("BEARER {access}")))
            .await;
    assert_eq!(r.status, 200, "any case of the scheme: {}", r.body);
    let r = bearer(&gw, "/staff/x", &access).await;
    assert_eq!((r.status, r.json()["reason"].clone()), (401, json!("wrong_scope")), "{}", r.body);

    // A public origin: the preflight, and the answer readable with credentials; another origin gets neither.
    let pre = send(
        client()
            .request(reqwest::Method::OPTIONS, gw.url("/_railbridge/token"))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.headers.get("access-control-allow-origin").unwrap(), "https://app.example.com");
    assert_eq!(pre.headers.get("access-control-allow-credentials").unwrap(), "true");
    let other = send(
        client()
            .request(reqwest::Method::OPTIONS, gw.url("/_railbridge/token"))
            .header("origin", "https://evil.test"),
    )
    .await;
    assert_eq!(other.status, 403);
    let r = send(exchange_as(7, "https://app.example.com".into())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers.get("access-control-allow-origin").unwrap(), "https://app.example.com");

    // "Sign out everywhere" for user 7: the tokens issued so far end; one exchanged afterwards lives.
    let hook = |body: JsonValue| {
        client()
            .post(gw.url("/_railbridge/revoke"))
            .header("authorization", format!("Bearer {REVOKE_SECRET}"))
            .body(body.to_string())
    };
    assert_eq!(send(hook(json!({"user": 7}))).await.status, 200);
    assert_eq!(bearer(&gw, "/bearer/x", &access).await.status, 401);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the next second: iat counts in seconds
    let fresh =
        send(exchange_as(7, gw.url(""))).await.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        bearer(&gw, "/bearer/x", &fresh).await.status,
        200,
        "a sign-in after the revocation is not revoked"
    );

    // A reload (SIGHUP) keeps the in-memory store: refresh tokens and revocations survive it.
    let r = send(exchange_as(8, gw.url(""))).await;
    let refresh_token = r.json()["refresh_token"].as_str().unwrap().to_owned();
    gw.gateway.reload(config(
        &routes_toml(&echo, &extra),
        &[("SECRET_KEY_BASE", SKB), ("RAILBRIDGE_REVOKE_SECRET", REVOKE_SECRET)],
    ));
    assert_eq!(refresh(&gw, &refresh_token).await.status, 200, "kept across the reload");
    assert_eq!(bearer(&gw, "/bearer/x", &access).await.status, 401, "the revocation too");

    // A token store that cannot record the revocation: the hook says so (503) rather than claiming success.
    let down = format!("redis://127.0.0.1:{}/0", closed_port());
    let gw_down = gateway(
        &routes_toml(&echo, &format!("[[jwt.key]]\nfile = \"{}\"\n", key.display())),
        &[("RAILBRIDGE_REVOKE_SECRET", REVOKE_SECRET), ("RAILBRIDGE_TOKEN_STORE_URL", &down)],
    )
    .await;
    let r = send(
        client()
            .post(gw_down.url("/_railbridge/revoke"))
            .header("authorization", format!("Bearer {REVOKE_SECRET}"))
            .body(json!({"user": 7}).to_string()),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
}
