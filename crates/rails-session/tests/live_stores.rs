//! Live round trips on server-side session stores: the real Rails 6.1 + Devise app with `cache_store` on Redis
//! and on memcached and with `redis_store`, and the real Rails 7.2 app with `cache_store` on Redis writing
//! `cache_format_version` 7.1 (`load_defaults 7.2`) and 7.0 — each with its own Redis or memcached from the test
//! kit, and the example API configured with the same `SESSION_STORE*` variables as the Rails app. For each:
//! sign-in at Rails seen by Rust, a write from Rust read by Rails and Rails' next write read by Rust, CSRF both
//! ways, an unknown id refused with no record created, sign-out → 401.

use serde_json::json;

use crate::common::*;

/// A store server of the test kit, and the variables naming it.
enum Kv {
    Redis(testkit::Redis),
    Memcached(testkit::Memcached),
}

impl Kv {
    fn url(&self) -> String {
        match self {
            Kv::Redis(r) => r.url(),
            Kv::Memcached(m) => m.url(),
        }
    }

    /// Whether a record exists under `key`.
    fn exists(&self, key: &str) -> bool {
        match self {
            Kv::Redis(r) => r.command(&[b"EXISTS", key.as_bytes()]).starts_with(b":1"),
            Kv::Memcached(m) => m.command(&format!("get {key}")).starts_with(b"VALUE"),
        }
    }

    /// How many records there are.
    fn count(&self) -> usize {
        match self {
            Kv::Redis(r) => {
                let reply = String::from_utf8(r.command(&[b"DBSIZE"])).unwrap();
                reply.trim_start_matches(':').trim().parse().unwrap()
            }
            Kv::Memcached(m) => {
                let stats = String::from_utf8(m.command("stats")).unwrap();
                let line = stats.lines().find(|l| l.starts_with("STAT curr_items ")).unwrap();
                line.trim_start_matches("STAT curr_items ").trim().parse().unwrap()
            }
        }
    }
}

/// The variables both apps get.
fn store_env<'a>(store: &'a str, url: &'a str, namespace: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SESSION_STORE", store),
        ("SESSION_STORE_URL", url),
        ("SESSION_STORE_NAMESPACE", namespace),
    ]
}

/// The record key the cookie's id is kept under.
fn record_key(store: &str, namespace: &str, cookie: &str) -> String {
    let private = rails_session::SessionId::from_cookie(cookie).unwrap().private_id().to_owned();
    match store {
        "redis_store" => format!("{namespace}:{private}"),
        _ => format!("{namespace}:_session_id:{private}"),
    }
}

/// An id nobody issued: the Rust app refuses it and creates nothing.
async fn unknown_id_creates_nothing(kv: &Kv, api: &Server, store: &str, namespace: &str) {
    let before = kv.count();
    let made_up = "0123456789abcdef0123456789abcdef";
    let mut mallory = Browser::new();
    mallory.set_cookie_pair(&format!("{COOKIE_NAME}={made_up}"));
    let me = mallory.get(&api.url("/api/me")).await;
    assert_eq!(me.status, 401, "{store}: an unknown id is nobody");
    assert!(me.session_cookies().is_empty(), "{store}: and gets no cookie");
    let token = mallory.get(&api.url("/api/csrf")).await;
    let issued = mallory.cookie(COOKIE_NAME).unwrap().to_owned();
    assert_ne!(issued, made_up, "{store}: a session the Rust app creates gets an id of its own");
    assert!(
        !kv.exists(&record_key(store, namespace, made_up)),
        "{store}: no record for the made-up id"
    );
    assert!(kv.exists(&record_key(store, namespace, &issued)), "{store}: {}", token.body);
    assert_eq!(kv.count(), before + 1, "{store}: only the new session's record");
}

macro_rules! live_stores_suite {
    ($adapter:ident, $spawn:path) => {
        mod $adapter {
            use super::*;

            /// Rails 6.1 + Devise on each store Debian packages for it.
            #[tokio::test]
            async fn devise_on_cache_store_and_redis_store() {
                if skip_live() {
                    return;
                }
                for (store, backend) in [("cache_store", "redis"), ("cache_store", "memcached"), ("redis_store", "redis")] {
                    let kv = match backend {
                        "redis" => Kv::Redis(testkit::Redis::start().unwrap()),
                        _ => Kv::Memcached(testkit::Memcached::start().unwrap()),
                    };
                    let url = kv.url();
                    let namespace = if store == "redis_store" { "myapp:session" } else { "myapp" };
                    let label = format!("6.1 {store} on {backend}");
                    let vars = store_env(store, &url, namespace);
                    let rails = Rails::start_with("6.1", false, &vars);
                    let api = $spawn(env(&vars)).await;
                    let mut b = Browser::new();
                    assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "{label}: not signed in yet");

                    // Devise's sign-in at Rails: the cookie is a bare id, the record is where the spec says.
                    rails.sign_in(&mut b, "user@example.com", "password123").await;
                    let cookie = b.cookie(COOKIE_NAME).unwrap().to_owned();
                    assert!(cookie.len() == 32 && cookie.bytes().all(|c| c.is_ascii_hexdigit()), "{label}: {cookie}");
                    assert!(kv.exists(&record_key(store, namespace, &cookie)), "{label}");
                    let me = b.get(&api.url("/api/me")).await;
                    assert_eq!((me.status, me.json()["id"].clone()), (200, json!(1)), "{label}: {}", me.body);

                    // Rust writes (with Rails' masked token); Rails reads it, user still signed in.
                    let csrf = b.get(&rails.url("/csrf")).await.json();
                    let rails_token = csrf["token"].as_str().unwrap().to_owned();
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &rails_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 1})), "{label}: {}", r.body);
                    assert_eq!(b.cookie(COOKIE_NAME).unwrap(), cookie, "{label}: same id");
                    let seen = rails.session_json(&mut b).await;
                    assert_eq!(seen["session"]["counter"], 1, "{label}: {seen}");
                    assert_eq!(seen["user_signed_in"], true, "{label}");

                    // Rails writes next (with the Rust app's token); Rust reads it.
                    let our_token = b.get(&api.url("/api/csrf")).await.json()["token"].as_str().unwrap().to_owned();
                    let r = b.post(&rails.url("/session/counter"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 2})), "{label}: {}", r.body);
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 3})), "{label}");
                    assert_eq!(b.post(&api.url("/api/counter"), &[], &[]).await.status, 422, "{label}: no token");

                    unknown_id_creates_nothing(&kv, &api, store, namespace).await;

                    // Sign-out at Rails (Devise resets the session: the record goes).
                    let out = b.get(&rails.url("/users/sign_out")).await;
                    assert_eq!(out.status, 302, "{label}: {}", out.body);
                    assert!(!kv.exists(&record_key(store, namespace, &cookie)), "{label}: record deleted");
                    assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "{label}: signed out");
                    // The old id, replayed, is nobody too.
                    let mut replay = Browser::new();
                    replay.set_cookie_pair(&format!("{COOKIE_NAME}={cookie}"));
                    assert_eq!(replay.get(&api.url("/api/me")).await.status, 401, "{label}: replayed id");
                }
            }

            /// Rails 7.2 (`has_secure_password`, `session[:user_id]`) on `cache_store` in Redis, F71 and F70.
            #[tokio::test]
            async fn rails_7_2_cache_store_on_redis_f71_and_f70() {
                if skip_live() {
                    return;
                }
                for format in ["7.1", "7.0"] {
                    let redis = testkit::Redis::start().unwrap();
                    let url = redis.url();
                    let label = format!("7.2 cache_store, cache_format_version {format}");
                    let rails = testkit::RailsApp::rails_7_2()
                        .env("RAILS_AUTH", "session-key")
                        .env("SECRET_KEY_BASE", SKB)
                        .env("SESSION_KEY", COOKIE_NAME)
                        .env("SESSION_STORE", "cache_store")
                        .env("SESSION_STORE_URL", &url)
                        .env("SESSION_STORE_NAMESPACE", "app72")
                        .env("CACHE_FORMAT_VERSION", format)
                        .start();
                    let mut vars = store_env("cache_store", &url, "app72");
                    vars.extend([("RAILS_VERSION", "7.2"), ("RAILS_AUTH", "session-key")]);
                    let api = $spawn(env(&vars)).await;
                    let mut b = Browser::new();
                    let form = b.get(&rails.url("/session/new")).await;
                    let token = scrape_authenticity_token(&form.body);
                    let done = b
                        .post(
                            &rails.url("/session"),
                            &[("accept", "text/html")],
                            &[("authenticity_token", &token), ("email_address", "alice@example.com"), ("password", "alice-password-1")],
                        )
                        .await;
                    assert_eq!(done.status, 302, "{label}: {}", done.body);
                    let cookie = b.cookie(COOKIE_NAME).unwrap().to_owned();
                    let key = record_key("cache_store", "app72", &cookie);
                    let raw = redis.command(&[b"GET", key.as_bytes()]);
                    let body = &raw[raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2..];
                    let expected: &[u8] = if format == "7.1" { &[0x00, 0x11] } else { &[0x00, 0x04, 0x08] };
                    assert!(body.starts_with(expected), "{label}: Rails wrote {:02x?}", &body[..4]);

                    let me = b.get(&api.url("/api/me")).await;
                    assert_eq!((me.status, me.json()["id"].clone()), (200, json!(1)), "{label}: {}", me.body);
                    let rails_token = b.get(&rails.url("/csrf.json")).await.json()["token"].as_str().unwrap().to_owned();
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &rails_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 1})), "{label}: {}", r.body);
                    // Written back in the format Rails wrote.
                    let raw = redis.command(&[b"GET", key.as_bytes()]);
                    let body = &raw[raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2..];
                    assert!(body.starts_with(expected), "{label}: Rust wrote {:02x?}", &body[..4]);
                    let seen = b.get(&rails.url("/counter.json")).await.json();
                    assert_eq!(seen, json!({"counter": 1, "class": "Integer"}), "{label}");
                    assert_eq!(b.get(&rails.url("/whoami.json")).await.json()["user_id"], 1, "{label}");
                    let our_token = b.get(&api.url("/api/csrf")).await.json()["token"].as_str().unwrap().to_owned();
                    let r = b.post(&rails.url("/counter.json"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 2})), "{label}: {}", r.body);
                    let r = b.post(&api.url("/api/counter"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!((r.status, r.json()), (200, json!({"counter": 3})), "{label}");

                    let kv = Kv::Redis(redis);
                    unknown_id_creates_nothing(&kv, &api, "cache_store", "app72").await;

                    let out = b.post(&rails.url("/session/destroy"), &[("x-csrf-token", &our_token)], &[]).await;
                    assert_eq!(out.status, 303, "{label}: {}", out.body);
                    assert_eq!(b.get(&api.url("/api/me")).await.status, 401, "{label}: signed out");
                }
            }
        }
    };
}

live_stores_suite!(axum_adapter, crate::common::spawn_axum);
#[cfg(feature = "actix-web")]
live_stores_suite!(actix_adapter, crate::common::spawn_actix);
