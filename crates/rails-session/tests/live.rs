//! Live round trips with the real Rails 6.1 + Devise app of `interop/app` (and its database-backed User API,
//! `tests/support/user_api.rb`), for both adapters. They need `ruby` with Rails, Devise and puma; without it they
//! fail with a message saying so, unless `RAILBRIDGE_SKIP_LIVE=1`.
//!
//! Not covered yet: the browser scenario (headless Chromium) — see the crate README.

use serde_json::json;

use crate::common::*;

macro_rules! live_suite {
    ($adapter:ident, $spawn:path) => {
        mod $adapter {
            use super::*;

            /// Signs in at Rails through the Devise form, then uses the Rust API with that cookie.
            #[tokio::test]
            async fn devise_sign_in_sign_out_and_password_change() {
                if skip_live() {
                    return;
                }
                let rails = Rails::start("6.1", true);
                let user_api = format!("{}/internal/users/{{id}}", rails.user_api.as_ref().unwrap().base_url());
                let api = $spawn(env(&[("USER_API_URL", &user_api), ("USER_API_CACHE_TTL", "0")])).await;
                let mut b = Browser::new();

                assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "not signed in yet");
                rails.sign_in(&mut b, "user@example.com", "password123").await;
                let me = b.get(&api.url("/api/me")).await;
                assert_eq!(me.status, 200, "{}", me.body);
                assert_eq!(me.json()["id"], 1);
                assert_eq!(me.json()["email"], "user@example.com");
                assert!(me.json().get("authenticatable_salt").is_none());
                assert_eq!(Browser::new().get(&api.url("/api/me")).await.status, 401, "without the cookie");

                // Sign-out at Rails.
                let out = b.get(&rails.url("/users/sign_out")).await;
                assert_eq!(out.status, 302, "{}", out.body);
                let me = b.get(&api.url("/api/me")).await;
                assert_eq!(me.status, 401);
                assert!(me.json()["error"].is_string());

                // A password change at Rails signs the user out of the Rust app too.
                rails.sign_in(&mut b, "user@example.com", "password123").await;
                assert_eq!(b.get(&api.url("/api/me")).await.status, 200);
                let reset = Browser::new()
                    .post(&rails.url("/test/reset_password"), &[], &[("email", "user@example.com"), ("password", "changed456")])
                    .await;
                assert_eq!(reset.status, 200, "{}", reset.body);
                assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "stale salt");
                assert_eq!(rails.session_json(&mut b).await["user_signed_in"], false, "Rails agrees");
            }

            /// The Rust app writes the session; Rails reads it, and the CSRF tokens pass on both sides.
            #[tokio::test]
            async fn counter_and_csrf_round_trip_with_rails_6_1() {
                if skip_live() {
                    return;
                }
                counter_round_trip("6.1", &[], $spawn).await;
            }

            #[tokio::test]
            async fn rails_4_2_style_cbc_sessions() {
                if skip_live() {
                    return;
                }
                counter_round_trip("4.2", &[("RAILS_VERSION", "4.2")], $spawn).await;
            }

            #[tokio::test]
            async fn rails_7_0_style_sha256_sessions() {
                if skip_live() {
                    return;
                }
                counter_round_trip("7.0", &[("RAILS_VERSION", "7.0")], $spawn).await;
            }

            #[tokio::test]
            async fn marshal_sessions() {
                if skip_live() {
                    return;
                }
                counter_round_trip("6.1-marshal", &[("COOKIES_SERIALIZER", "marshal")], $spawn).await;
            }

            /// A session created by the Rust side (id and `_csrf_token` in the version's format) is accepted by Rails.
            #[tokio::test]
            async fn rails_accepts_a_session_and_token_the_rust_app_created() {
                if skip_live() {
                    return;
                }
                for (profile, version) in [("6.1", "6.1"), ("7.0", "7.0"), ("4.2", "4.2")] {
                    let rails = Rails::start(profile, false);
                    let api = $spawn(env(&[("RAILS_VERSION", version)])).await;
                    let mut b = Browser::new();
                    let token = b.get(&api.url("/api/csrf")).await.json()["token"].as_str().unwrap().to_owned();
                    let ours = b.cookie(COOKIE_NAME).unwrap().to_owned();
                    let r = b.post(&rails.url("/session/counter"), &[("x-csrf-token", &token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 1})), "{profile}: {}", r.body);
                    assert_ne!(b.cookie(COOKIE_NAME).unwrap(), ours);
                    let csrf = b.get(&rails.url("/csrf")).await.json();
                    let stored = csrf["session_csrf_token"].as_str().unwrap();
                    assert_eq!(stored.len(), if version == "7.0" { 43 } else { 44 }, "{profile}");
                    // Rails kept our token (it would have made a new one if it could not read ours).
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 2})), "{profile}");
                }
            }
        }
    };
}

/// Sign in at Rails, take Rails' masked token, increment the counter on the Rust side (with Rails' token, then
/// with ours), check Rails sees the value with the user still signed in and its `_csrf_token` untouched, then let
/// Rails accept our token.
async fn counter_round_trip<F, Fut>(profile: &str, pairs: &[(&str, &str)], spawn: F)
where
    F: Fn(Vec<(String, String)>) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    let rails = Rails::start(profile, false);
    let api = spawn(env(pairs)).await;
    let mut b = Browser::new();
    rails.sign_in(&mut b, "user@example.com", "password123").await;
    let me = b.get(&api.url("/api/me")).await;
    assert_eq!((me.status, me.json()["id"].clone()), (200, json!(1)), "{profile}: {}", me.body);

    let csrf = b.get(&rails.url("/csrf")).await.json();
    let rails_token = csrf["token"].as_str().unwrap().to_owned();
    let stored = csrf["session_csrf_token"].as_str().unwrap().to_owned();

    let ours = b.get(&api.url("/api/csrf")).await;
    assert!(ours.session_cookies().is_empty(), "{profile}: Rails' token is reused, not replaced");
    let our_token = ours.json()["token"].as_str().unwrap().to_owned();

    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &rails_token)], &[]).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"counter": 1})),
        "{profile}: Rails' token passes ours"
    );
    assert_eq!(r.session_cookies().len(), 1);
    let r = b.post(&api.url("/api/counter"), &[], &[("authenticity_token", &our_token)]).await;
    assert_eq!((r.status, r.json()), (200, json!({"counter": 2})), "{profile}");
    assert_eq!(b.post(&api.url("/api/counter"), &[], &[]).await.status, 422, "{profile}: no token");

    let seen = rails.session_json(&mut b).await;
    assert_eq!(seen["session"]["counter"], 2, "{profile}: {seen}");
    assert_eq!(seen["user_signed_in"], true, "{profile}");
    assert_eq!(
        seen["session"]["_csrf_token"],
        json!(stored),
        "{profile}: Rails' _csrf_token is unchanged"
    );

    let r = b.post(&rails.url("/session/counter"), &[("x-csrf-token", &our_token)], &[]).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"counter": 3})),
        "{profile}: our token passes protect_from_forgery"
    );
    let r = b.post(&rails.url("/session/counter"), &[("x-csrf-token", &"A".repeat(86))], &[]).await;
    assert_eq!(r.status, 422, "{profile}: and Rails does check");
    let me = b.get(&api.url("/api/me")).await;
    assert_eq!(me.status, 200, "{profile}: still signed in after Rails wrote the session again");
}

live_suite!(axum_adapter, crate::common::spawn_axum);
#[cfg(feature = "actix-web")]
live_suite!(actix_adapter, crate::common::spawn_actix);
