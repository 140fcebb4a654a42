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

/// Rails 8's authentication generator, as the 7.2 app reproduces it: a signed `session_id` cookie naming a row of
/// `sessions`, looked up by the Rust app in the Rails app's own database (SQLite file or PostgreSQL), read-only.
mod rails_authentication {
    use rails_cookie::{Profile, Value};

    use super::*;

    /// The database both sides use: a SQLite file under the build's temporary directory (inside the repository, so
    /// the chroot'ed Rails sees it at the same path), or a throwaway PostgreSQL cluster.
    async fn scenario<F, Fut>(database_url: &str, label: &str, spawn: F)
    where
        F: Fn(Vec<(String, String)>) -> Fut,
        Fut: std::future::Future<Output = Server>,
    {
        let rails = testkit::RailsApp::rails_7_2()
            .env("RAILS_AUTH", "rails-authentication")
            .env("DATABASE_URL", database_url)
            .env("SECRET_KEY_BASE", SKB)
            .env("SESSION_KEY", COOKIE_NAME)
            .start();
        let api = spawn(env(&[
            ("RAILS_VERSION", "7.2"),
            ("RAILS_AUTH", "rails-authentication"),
            ("DATABASE_URL", database_url),
            ("RAILS_AUTH_CACHE_TTL", "1"),
        ]))
        .await;

        let mut alice = Browser::new();
        assert_eq!(alice.get(&api.url("/api/me")).await.status, 401, "{label}: not signed in yet");
        sign_in(&rails, &mut alice, "alice@example.com", "alice-password-1").await;
        let signed = alice.cookie("session_id").expect("the signed session_id cookie").to_owned();
        let me = alice.get(&api.url("/api/me")).await;
        assert_eq!((me.status, me.json()["id"].clone()), (200, json!(1)), "{label}: {}", me.body);
        let who = alice.get(&rails.url("/whoami.json")).await.json();
        assert_eq!(who["user_id"], 1, "{label}: Rails agrees: {who}");

        let mut bob = Browser::new();
        sign_in(&rails, &mut bob, "bob@example.com", "bob-password-2").await;
        assert_eq!(bob.get(&api.url("/api/me")).await.json()["id"], 2, "{label}: bob is bob");

        // Only the signed cookie counts: without it, tampered, or naming a row that does not exist → 401.
        let mut only_session = Browser::new();
        only_session
            .set_cookie_pair(&format!("{COOKIE_NAME}={}", alice.cookie(COOKIE_NAME).unwrap()));
        assert_eq!(
            only_session.get(&api.url("/api/me")).await.status,
            401,
            "{label}: no session_id cookie"
        );
        let (data, digest) = signed.rsplit_once("--").unwrap();
        let flipped = if digest.starts_with('0') { "1" } else { "0" };
        let mut tampered = Browser::new();
        tampered.set_cookie_pair(&format!("session_id={data}--{flipped}{}", &digest[1..]));
        assert_eq!(tampered.get(&api.url("/api/me")).await.status, 401, "{label}: tampered");
        let codec = codec(Profile::rails_7_2());
        let forged = codec.encode_signed("session_id", &Value::Integer(999_999), None).unwrap();
        let mut ghost = Browser::new();
        ghost.set_cookie_pair(&format!("session_id={}", rails_cookie::escape(&forged)));
        assert_eq!(
            ghost.get(&api.url("/api/me")).await.status,
            401,
            "{label}: validly signed, no such row"
        );

        // Sign-out at Rails destroys the row: a copy of the cookie kept elsewhere stops working within the TTL.
        let mut elsewhere = Browser::new();
        elsewhere.set_cookie_pair(&format!("session_id={signed}"));
        assert_eq!(
            elsewhere.get(&api.url("/api/me")).await.status,
            200,
            "{label}: the copy works while signed in"
        );
        let csrf = alice.get(&rails.url("/csrf.json")).await.json();
        let token = csrf["token"].as_str().unwrap().to_owned();
        let out =
            alice.post(&rails.url("/session/destroy"), &[("x-csrf-token", &token)], &[]).await;
        assert_eq!(out.status, 303, "{label}: {}", out.body);
        assert_eq!(
            alice.get(&api.url("/api/me")).await.status,
            401,
            "{label}: the cookie was deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
        assert_eq!(
            elsewhere.get(&api.url("/api/me")).await.status,
            401,
            "{label}: the row is gone"
        );
        assert_eq!(
            bob.get(&api.url("/api/me")).await.json()["id"],
            2,
            "{label}: bob is still signed in"
        );
    }

    #[tokio::test]
    async fn with_sqlite() {
        if skip_live() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("rails-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = std::fs::canonicalize(&dir).unwrap().join("app.sqlite3");
        let url = format!("sqlite3:{}", db.display());
        scenario(&url, "sqlite, axum", crate::common::spawn_axum).await;
        #[cfg(feature = "actix-web")]
        scenario(&url, "sqlite, actix-web", crate::common::spawn_actix).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn with_postgresql() {
        let Some(pg) = testkit::Postgres::start() else { return };
        if skip_live() {
            return;
        }
        scenario(&pg.url(), "postgresql, axum", crate::common::spawn_axum).await;
    }
}
