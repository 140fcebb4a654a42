//! Live round trips with the real Rails 7.2 app of `interop/app72` (Debian trixie's Rails 7.2.2, Ruby 3.3, in the
//! root `interop/trixie/setup.sh` makes; `has_secure_password` and `session[:user_id]`, no Devise), for both
//! adapters, with the example API configured as a user would: `RAILS_VERSION=7.2`, `RAILS_AUTH=session-key`.
//! They fail with a message saying what to install unless `RAILBRIDGE_SKIP_LIVE=1`.

use serde_json::json;

use crate::common::*;

/// The Rails 7.2 app in session-key mode with `cookies_serializer` = `serializer`.
fn rails_7_2(serializer: &str) -> testkit::Component {
    testkit::RailsApp::rails_7_2()
        .env("RAILS_AUTH", "session-key")
        .env("SECRET_KEY_BASE", SKB)
        .env("SESSION_KEY", COOKIE_NAME)
        .env("COOKIES_SERIALIZER", serializer)
        .start()
}

/// Signs in through the app's form: the CSRF token of the form, then the POST Rails' `authenticate_by` checks.
async fn sign_in(rails: &testkit::Component, b: &mut Browser, email: &str, password: &str) {
    let form = b.get(&rails.url("/session/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = scrape_authenticity_token(&form.body);
    let done = b
        .post(
            &rails.url("/session"),
            &[("accept", "text/html")],
            &[("authenticity_token", &token), ("email_address", email), ("password", password)],
        )
        .await;
    assert_eq!(done.status, 302, "sign-in failed: {}", done.body);
}

macro_rules! live_7_2_suite {
    ($adapter:ident, $spawn:path) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn sign_in_counter_csrf_and_sign_out_with_rails_7_2() {
                if skip_live() {
                    return;
                }
                for serializer in ["json", "message_pack"] {
                    let rails = rails_7_2(serializer);
                    let api = $spawn(env(&[
                        ("RAILS_VERSION", "7.2"),
                        ("RAILS_AUTH", "session-key"),
                        ("COOKIES_SERIALIZER", serializer),
                    ]))
                    .await;
                    let mut b = Browser::new();
                    assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "{serializer}: not signed in yet");

                    // Sign-in at Rails is seen by Rust: alice is user 1.
                    sign_in(&rails, &mut b, "alice@example.com", "alice-password-1").await;
                    let me = b.get(&api.url("/api/me")).await;
                    assert_eq!((me.status, me.json()["id"].clone()), (200, json!(1)), "{serializer}: {}", me.body);

                    // CSRF both ways: Rails' masked token passes the Rust check, the Rust token passes Rails'.
                    let csrf = b.get(&rails.url("/csrf.json")).await.json();
                    let rails_token = csrf["token"].as_str().unwrap().to_owned();
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &rails_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 1})), "{serializer}: {}", r.body);
                    assert_eq!(b.post(&api.url("/api/counter"), &[], &[]).await.status, 422, "{serializer}: no token");
                    let our_token = b.get(&api.url("/api/csrf")).await.json()["token"].as_str().unwrap().to_owned();
                    let r = b.post(&rails.url("/protected"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"ok": true})), "{serializer}: {}", r.body);
                    let r = b.post(&rails.url("/protected"), &[("x-csrf-token", &"A".repeat(86))], &[]).await;
                    assert_eq!(r.status, 422, "{serializer}: and Rails does check");

                    // The counter the Rust app wrote is read by Rails, with the user still signed in.
                    let seen = b.get(&rails.url("/counter.json")).await.json();
                    assert_eq!(seen, json!({"counter": 1, "class": "Integer"}), "{serializer}");
                    let who = b.get(&rails.url("/whoami.json")).await.json();
                    assert_eq!(who["user_id"], 1, "{serializer}: {who}");
                    // Rails writes the session again; the Rust app still reads it.
                    let r = b.post(&rails.url("/counter.json"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 2})), "{serializer}: {}", r.body);
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 3})), "{serializer}");

                    // Sign-out at Rails: 401 in Rust.
                    let out = b.post(&rails.url("/session/destroy"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!(out.status, 303, "{serializer}: {}", out.body);
                    assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "{serializer}: signed out");

                    // A second user is seen as themself; a wrong password signs nobody in.
                    let mut bob = Browser::new();
                    sign_in(&rails, &mut bob, "bob@example.com", "bob-password-2").await;
                    assert_eq!(bob.get(&api.url("/api/me")).await.json()["id"], 2, "{serializer}");
                    let mut eve = Browser::new();
                    sign_in(&rails, &mut eve, "alice@example.com", "wrong").await;
                    assert_eq!(eve.get(&api.url("/api/me")).await.status, 401, "{serializer}");
                }
            }
        }
    };
}

live_7_2_suite!(axum_adapter, crate::common::spawn_axum);
#[cfg(feature = "actix-web")]
live_7_2_suite!(actix_adapter, crate::common::spawn_actix);
