//! The behaviour suite, generated for each adapter (tower-sessions' `route_tests!` style): the same HTTP requests
//! against `examples/api.rs` (axum) and `examples/api_actix.rs` (actix-web), with cookies written by our codec
//! exactly as Rails writes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use rails_cookie::{Hash, Profile, Value};
use serde_json::json;

use crate::common::*;

/// T12's stored token and its masked global and per-form (`/posts#post`) tokens (spec §15, Rails 6.1.7.10).
pub const T12_MASKED: &str =
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj98WUFTpnD0zkC1jlBx47kKpTGoumE5jWBqbxoXs9xBRw";
pub const T12_PER_FORM: &str =
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj-g1S9RTGBq9yCPr7d6ZrgNs-BiHhuIqGMAT3kpv2tL6Q";

/// A User API stand-in: `GET /internal/users/{id}` answers from a table, counting hits.
pub struct MockUserApi {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

pub async fn mock_user_api(salt: &'static str, status: u16) -> MockUserApi {
    mock_user_api_with(salt, status, Duration::ZERO).await
}

pub async fn mock_user_api_with(salt: &'static str, status: u16, delay: Duration) -> MockUserApi {
    type MockState = (Arc<AtomicUsize>, &'static str, u16, Duration);
    let hits = Arc::new(AtomicUsize::new(0));
    let state: MockState = (hits.clone(), salt, status, delay);
    async fn user(
        State((hits, salt, status, delay)): State<MockState>,
        Path(id): Path<i64>,
    ) -> (http::StatusCode, Json<serde_json::Value>) {
        hits.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        let status = http::StatusCode::from_u16(status).unwrap();
        if id != 1 {
            return (http::StatusCode::NOT_FOUND, Json(json!({"error": "not found"})));
        }
        (status, Json(json!({"id": id, "email": "user@example.com", "authenticatable_salt": salt})))
    }
    let app = Router::new().route("/internal/users/{id}", get(user)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockUserApi { url: format!("http://{addr}/internal/users/{{id}}"), hits }
}

/// The largest `blob` that still fits a 6.1 session cookie, so that one more key overflows it.
pub fn nearly_full_session() -> Hash {
    let codec = codec(Profile::rails_6_1());
    let mut h = devise_session(1, SALT);
    let mut len = 1500;
    loop {
        h.insert("blob", "x".repeat(len + 1).into());
        if codec.encode(COOKIE_NAME, &Value::Hash(h.clone()), None).is_err() {
            h.insert("blob", "x".repeat(len).into());
            return h;
        }
        len += 1;
    }
}

macro_rules! behaviour_suite {
    ($adapter:ident, $spawn:path) => {
        mod $adapter {
            use super::*;

            async fn server(pairs: &[(&str, &str)]) -> Server {
                $spawn(env(pairs)).await
            }

            fn signed_in() -> String {
                cookie_pair(&codec(Profile::rails_6_1()), &devise_session(1, SALT))
            }

            #[tokio::test]
            async fn not_signed_in_is_a_401_json_and_no_cookie() {
                let s = server(&[]).await;
                let r = Browser::new().get(&s.url("/api/me")).await;
                assert_eq!(r.status, 401);
                assert!(r.json()["error"].is_string(), "{}", r.body);
                assert!(r.session_cookies().is_empty());
            }

            #[tokio::test]
            async fn bad_or_foreign_cookies_are_an_empty_session() {
                let s = server(&[]).await;
                let foreign = rails_cookie::CookieCodec::new(
                    Profile::rails_6_1(),
                    rails_cookie::SecretKeyBase::new("another-app-".repeat(8)).unwrap(),
                )
                .unwrap();
                for cookie in
                    [format!("{COOKIE_NAME}=garbage"), format!("{COOKIE_NAME}=a--b--c"), cookie_pair(&foreign, &devise_session(1, SALT))]
                {
                    let mut b = Browser::new();
                    b.set_cookie_pair(&cookie);
                    let r = b.get(&s.url("/api/me")).await;
                    assert_eq!(r.status, 401, "{cookie}");
                    assert!(r.session_cookies().is_empty());
                }
            }

            #[tokio::test]
            async fn a_devise_cookie_signs_in_and_reading_writes_nothing() {
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&signed_in());
                let r = b.get(&s.url("/api/me")).await;
                assert_eq!((r.status, r.json()["id"].clone()), (200, json!(1)), "{}", r.body);
                assert!(r.session_cookies().is_empty(), "an unchanged session is not re-sent");
            }

            #[tokio::test]
            async fn older_warden_shape_and_other_scopes() {
                let codec = codec(Profile::rails_6_1());
                let mut old = devise_session(1, SALT);
                old.insert(
                    "warden.user.user.key",
                    Value::Array(vec!["User".into(), Value::Array(vec![7.into()]), SALT.into()]),
                );
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&cookie_pair(&codec, &old));
                assert_eq!(b.get(&s.url("/api/me")).await.json()["id"], 7);

                let mut admin = Hash::new();
                admin.insert("warden.user.admin.key", Value::Array(vec![Value::Array(vec![3.into()]), SALT.into()]));
                let mut b = Browser::new();
                b.set_cookie_pair(&cookie_pair(&codec, &admin));
                assert_eq!(b.get(&s.url("/api/me")).await.status, 401, "the user scope is not the admin scope");
                let admins = server(&[("DEVISE_SCOPE", "admin")]).await;
                let r = b.get(&admins.url("/api/me")).await;
                assert_eq!((r.status, r.json()["scope"].clone()), (200, json!("admin")));
            }

            #[tokio::test]
            async fn counter_keeps_every_rails_key_and_the_session_id() {
                let codec = codec(Profile::rails_6_1());
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&signed_in());
                let token = b.get(&s.url("/api/csrf")).await;
                assert!(token.session_cookies().is_empty(), "an existing _csrf_token is never replaced");
                let token = token.json()["token"].as_str().unwrap().to_owned();
                assert_eq!(token.len(), 86);
                for n in 1..=2 {
                    let r = b.post(&s.url("/api/counter"), &[("x-csrf-token", &token)], &[]).await;
                    assert_eq!((r.status, r.json()["counter"].clone()), (200, json!(n)), "{}", r.body);
                    let set_cookie = r.session_cookies().pop().expect("a changed session is written");
                    assert!(set_cookie.ends_with("; path=/; HttpOnly; SameSite=Lax"), "{set_cookie}");
                    let mut expected = devise_session(1, SALT);
                    expected.insert("counter", n.into());
                    assert_eq!(decode_set_cookie(&codec, &set_cookie), expected);
                }
            }

            #[tokio::test]
            async fn csrf_is_checked_as_rails_does() {
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&signed_in());
                let url = s.url("/api/counter");
                assert_eq!(b.post(&url, &[], &[]).await.status, 422, "no token");
                assert_eq!(b.post(&url, &[("x-csrf-token", &"x".repeat(86))], &[]).await.status, 422);
                assert_eq!(b.post(&url, &[("x-csrf-token", T12_PER_FORM)], &[]).await.status, 422, "for /posts only");
                // Rails' own masked token for this session (T12), in the header and in the form.
                assert_eq!(b.post(&url, &[("x-csrf-token", T12_MASKED)], &[]).await.status, 200);
                assert_eq!(b.post(&url, &[], &[("authenticity_token", T12_MASKED)]).await.status, 200);
                // The unmasked raw token, URL-safe.
                let raw = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
                assert_eq!(b.post(&url, &[("x-csrf-token", raw)], &[]).await.status, 200);
                // A JSON body's authenticity_token.
                let req = b
                    .request(reqwest::Method::POST, &url)
                    .header("content-type", "application/json")
                    .body(json!({"authenticity_token": T12_MASKED}).to_string());
                assert_eq!(b.send(req).await.status, 200);
                // No session, no token.
                assert_eq!(Browser::new().post(&url, &[("x-csrf-token", T12_MASKED)], &[]).await.status, 422);
            }

            #[tokio::test]
            async fn a_new_session_gets_an_id_and_a_token_in_the_versions_format() {
                for (version, len) in [("6.1", 44), ("7.0", 43), ("4.2", 44)] {
                    let profile = Profile::for_version_str(version).unwrap();
                    let s = server(&[("RAILS_VERSION", version)]).await;
                    let mut b = Browser::new();
                    let r = b.get(&s.url("/api/csrf")).await;
                    let set_cookie = r.session_cookies().pop().expect("the new token is stored");
                    let session = decode_set_cookie(&codec(profile), &set_cookie);
                    let (first, id) = &session.entries[0];
                    assert_eq!(first.as_str(), Some("session_id"));
                    assert_eq!(id.as_str().unwrap().len(), 32);
                    let stored = session.get("_csrf_token").unwrap().as_str().unwrap();
                    assert_eq!(stored.len(), len, "{version}: {stored}");
                    let token = r.json()["token"].as_str().unwrap().to_owned();
                    assert_eq!(token.len(), if version == "4.2" { 88 } else { 86 });
                    let again = b.post(&s.url("/api/counter"), &[("x-csrf-token", &token)], &[]).await;
                    assert_eq!(again.status, 200, "{version}");
                    let after = decode_set_cookie(&codec(Profile::for_version_str(version).unwrap()), &again.session_cookies()[0]);
                    assert_eq!(after.get("session_id"), Some(id), "session_id is stable");
                    assert_eq!(after.get("_csrf_token").unwrap().as_str(), Some(stored));
                }
            }

            #[tokio::test]
            async fn expire_after_resends_the_cookie_on_every_request() {
                let s = server(&[("SESSION_EXPIRE_AFTER", "3600")]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&signed_in());
                let r = b.get(&s.url("/api/me")).await;
                let set_cookie = r.session_cookies().pop().expect("sliding expiry");
                assert!(set_cookie.contains("; path=/; expires=") && set_cookie.contains(" GMT; HttpOnly"), "{set_cookie}");
                assert_eq!(Browser::new().get(&s.url("/api/me")).await.session_cookies(), Vec::<String>::new());
            }

            #[tokio::test]
            async fn rotated_cookies_are_upgraded() {
                let cbc = codec(Profile::rails_4_2());
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&cookie_pair(&cbc, &devise_session(1, SALT)));
                let r = b.get(&s.url("/api/me")).await;
                assert_eq!(r.status, 200);
                let set_cookie = r.session_cookies().pop().expect("a CBC cookie is rewritten as GCM");
                assert_eq!(decode_set_cookie(&codec(Profile::rails_6_1()), &set_cookie), devise_session(1, SALT));
            }

            #[tokio::test]
            async fn devise_timeoutable() {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let s = server(&[("DEVISE_TIMEOUT_IN", "60")]).await;
                for (age, status) in [(120, 401), (10, 200)] {
                    let mut session = devise_session(1, SALT);
                    let mut scoped = Hash::new();
                    scoped.insert("last_request_at", (now - age).into());
                    session.insert("warden.user.user.session", Value::Hash(scoped));
                    let mut b = Browser::new();
                    b.set_cookie_pair(&cookie_pair(&codec(Profile::rails_6_1()), &session));
                    let r = b.get(&s.url("/api/me")).await;
                    assert_eq!(r.status, status, "{age} s old");
                    if status == 200 {
                        let after = decode_set_cookie(&codec(Profile::rails_6_1()), &r.session_cookies()[0]);
                        let last = after.get("warden.user.user.session").unwrap().as_hash().unwrap().get("last_request_at");
                        assert!(last.unwrap().as_i64().unwrap() >= now, "last_request_at is touched as Devise does");
                    }
                }
            }

            #[tokio::test]
            async fn cookie_attributes_follow_the_config() {
                let s = server(&[("DOMAIN", ".app.test"), ("SESSION_SECURE", "1")]).await;
                let mut b = Browser::new();
                let r = b.get(&s.url("/api/csrf")).await;
                let set_cookie = r.session_cookies().pop().unwrap();
                let attributes = set_cookie.split_once(';').unwrap().1;
                assert_eq!(attributes, " domain=.app.test; path=/; secure; HttpOnly; SameSite=Lax");
                let s = server(&[("RAILS_VERSION", "4.2")]).await;
                let set_cookie = Browser::new().get(&s.url("/api/csrf")).await.session_cookies().pop().unwrap();
                assert!(set_cookie.ends_with("; path=/; HttpOnly"), "no SameSite before 6.1: {set_cookie}");
            }

            #[tokio::test]
            async fn a_session_too_large_for_a_cookie_is_a_500_never_a_truncated_cookie() {
                let s = server(&[]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&cookie_pair(&codec(Profile::rails_6_1()), &nearly_full_session()));
                assert_eq!(b.get(&s.url("/api/me")).await.status, 200);
                let r = b.post(&s.url("/api/counter"), &[("x-csrf-token", T12_MASKED)], &[]).await;
                assert_eq!(r.status, 500);
                assert!(r.session_cookies().is_empty());
            }

            #[tokio::test]
            async fn cors_allows_exactly_the_apps_origins_with_credentials() {
                let s = server(&[("DOMAIN", ".app.test")]).await;
                let b = Browser::new();
                let preflight = |origin: &str| {
                    b.request(reqwest::Method::OPTIONS, &s.url("/api/counter"))
                        .header("origin", origin)
                        .header("access-control-request-method", "POST")
                        .header("access-control-request-headers", "x-csrf-token,content-type")
                };
                for origin in ["http://www.app.test:8080", "https://www.app.test", "https://app.test"] {
                    let r = preflight(origin).send().await.unwrap();
                    let h = r.headers();
                    assert_eq!(h.get("access-control-allow-origin").unwrap(), origin);
                    assert_eq!(h.get("access-control-allow-credentials").unwrap(), "true");
                    let allowed = h.get("access-control-allow-headers").unwrap().to_str().unwrap().to_ascii_lowercase();
                    assert!(allowed.contains("x-csrf-token"), "{allowed}");
                }
                for origin in ["https://evil.test", "https://www.app.test.evil.test", "https://wwwapp.test"] {
                    let r = preflight(origin).send().await.unwrap();
                    assert!(r.headers().get("access-control-allow-origin").is_none(), "{origin}");
                }
                let s = server(&[("CORS_ORIGINS", "https://www.app.test")]).await;
                let r = Browser::new()
                    .request(reqwest::Method::GET, &s.url("/api/me"))
                    .header("origin", "https://www.app.test")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "https://www.app.test");
            }

            #[tokio::test]
            async fn user_api_salt_check_missing_users_and_outages() {
                let api = mock_user_api(SALT, 200).await;
                let s = server(&[("USER_API_URL", &api.url)]).await;
                let mut b = Browser::new();
                b.set_cookie_pair(&signed_in());
                let r = b.get(&s.url("/api/me")).await;
                assert_eq!(r.status, 200, "{}", r.body);
                let body = r.json();
                assert_eq!((body["id"].clone(), body["email"].clone()), (json!(1), json!("user@example.com")));
                assert!(body.get("authenticatable_salt").is_none(), "the salt is never echoed");
                b.get(&s.url("/api/me")).await;
                assert_eq!(api.hits.load(Ordering::SeqCst), 1, "cached");

                let changed = mock_user_api("$2a$04$anotheranotheranotheran", 200).await;
                let s = server(&[("USER_API_URL", &changed.url)]).await;
                assert_eq!(b.get(&s.url("/api/me")).await.status, 401, "password changed in Rails");

                let mut other = Browser::new();
                other.set_cookie_pair(&cookie_pair(&codec(Profile::rails_6_1()), &devise_session(2, SALT)));
                assert_eq!(other.get(&s.url("/api/me")).await.status, 401, "no such user");

                let down = mock_user_api(SALT, 500).await;
                let s = server(&[("USER_API_URL", &down.url)]).await;
                assert_eq!(b.get(&s.url("/api/me")).await.status, 503, "fail closed");
                assert_eq!(down.hits.load(Ordering::SeqCst), 3, "two bounded retries");
                let s = server(&[("USER_API_URL", "http://127.0.0.1:9/internal/users/{id}")]).await;
                assert_eq!(b.get(&s.url("/api/me")).await.status, 503, "connection refused");
            }
        }
    };
}

behaviour_suite!(axum_adapter, crate::common::spawn_axum);
#[cfg(feature = "actix-web")]
behaviour_suite!(actix_adapter, crate::common::spawn_actix);
