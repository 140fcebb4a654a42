//! Live: the gateway in front of the real Rails 6.1 + Devise app keeping its sessions server-side — `cache_store`
//! on Redis and on memcached (each from the test kit), configured in `[rails]` as a user would. The Devise sign-in
//! at Rails is seen by the gateway; an unknown id is refused and creates no record; sign-out is 401; a store that
//! goes down is 503 (fail-closed), and `serve --check` connects to the store.

use serde_json::json;

use super::live::Browser;
use super::support::*;

/// The Rails app on the store (`[rails]`-style variables of the interop app).
fn rails_on(store: &str, url: &str, namespace: &str, dir: &TempDir) -> Component {
    testkit::RailsApp::rails_6_1()
        .env("RAILS_PROFILE", "6.1")
        .env("RAILS_TEST_HELPERS", "1")
        .env("RAILS_APP_DB", dir.0.join("app.sqlite3"))
        .env("SECRET_KEY_BASE", SKB)
        .env("SESSION_KEY", COOKIE)
        .env("SESSION_STORE", store)
        .env("SESSION_STORE_URL", url)
        .env("SESSION_STORE_NAMESPACE", namespace)
        .start()
}

fn toml(store_url: &str, echo: &Server, rails: &Component) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_paths = ["/users/sign_in"]
[rails]
session_key = "{COOKIE}"
rails_version = "6.1"
session_store = "cache_store"
session_store_url = "{store_url}"
session_store_namespace = "myapp"
session_store_timeout = 0.5
[log]
access_log = false
[identity]
cache_ttl = 0
[[route]]
name = "echo"
prefix = "/echo"
upstream = "http://{echo}"
[[route]]
name = "rails"
prefix = "/"
upstream = "{rails}"
policy = "public"
forward_session_cookie = true
preserve_host = true
"#,
        echo = echo.addr,
        rails = rails.base_url(),
    )
}

#[tokio::test]
async fn devise_sign_in_on_cache_store_through_the_gateway() {
    if skip_live() {
        return;
    }
    for backend in ["redis", "memcached"] {
        let (redis, memcached) = match backend {
            "redis" => (testkit::Redis::start(), None),
            _ => (None, testkit::Memcached::start()),
        };
        let url =
            redis.as_ref().map_or_else(|| memcached.as_ref().unwrap().url(), testkit::Redis::url);
        let dir = TempDir::new("gw-stores");
        let rails = rails_on("cache_store", &url, "myapp", &dir);
        let echo = echo().await;
        let gw = gateway(&toml(&url, &echo, &rails), &[]).await;
        let base = gw.url("");
        let mut b = Browser::new();
        assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "{backend}: not signed in yet");

        b.sign_in(&base, "user@example.com", "password123").await;
        let r = b.get(&gw.url("/echo/x")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["1"]), "{backend}");
        assert!(r.received("cookie").is_none(), "{backend}: the session id stays at the gateway");
        let cookie = b.cookie(COOKIE).unwrap().to_owned();
        let seen = b.get(&gw.url("/session.json")).await;
        assert_eq!(seen.json()["user_signed_in"], true, "{backend}: {}", seen.body);

        // A made-up id: 401, and no record under it.
        let made_up = "0123456789abcdef0123456789abcdef";
        let r = get(&gw.url("/echo/x"), Some(&format!("{COOKIE}={made_up}"))).await;
        assert_eq!(r.status, 401, "{backend}");
        let private = rails_session::SessionId::from_cookie(made_up).unwrap();
        let key = format!("myapp:_session_id:{}", private.private_id());
        match (&redis, &memcached) {
            (Some(r), _) => {
                assert!(r.command(&[b"EXISTS", key.as_bytes()]).starts_with(b":0"), "{backend}")
            }
            (_, Some(m)) => {
                assert!(m.command(&format!("get {key}")).starts_with(b"END"), "{backend}")
            }
            _ => unreachable!(),
        }

        // Sign-out at Rails: 401 at the gateway, for the browser and for the old id replayed.
        let out = b.get(&gw.url("/users/sign_out")).await;
        assert_eq!(out.status, 302, "{backend}: {}", out.body);
        assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "{backend}: signed out");
        let replay = get(&gw.url("/echo/x"), Some(&format!("{COOKIE}={cookie}"))).await;
        assert_eq!(replay.status, 401, "{backend}: the old id is nobody");

        // The store goes away: signed-in routes fail closed with 503, public ones still pass.
        b.sign_in(&base, "user@example.com", "password123").await;
        assert_eq!(b.get(&gw.url("/echo/x")).await.status, 200, "{backend}");
        drop(redis);
        drop(memcached);
        let r = b.get(&gw.url("/echo/x")).await;
        assert_eq!(
            (r.status, r.json()),
            (503, json!({"error": "session store unavailable"})),
            "{backend}"
        );
        let metrics = get(&gw.url("/_railbridge/metrics"), None).await.body;
        assert!(
            metrics.contains(r#"outcome="session_store_unavailable""#),
            "{backend}: the outcome is counted: {metrics}"
        );
    }
}

#[test]
fn serve_check_connects_to_the_store() {
    let Some(redis) = testkit::Redis::start() else { return };
    let dir = TempDir::new("check-store");
    let up = dir.write(
        "up.toml",
        &format!(
            "[rails]\nsession_key = \"{COOKIE}\"\nsession_store = \"cache_store\"\nsession_store_url = \"{}\"\n",
            redis.url()
        ),
    );
    let down = dir.write(
        "down.toml",
        &format!(
            "[rails]\nsession_key = \"{COOKIE}\"\nsession_store = \"redis_store\"\nsession_store_url = \"redis://:hunter2@127.0.0.1:{}/0\"\nsession_store_timeout = 0.3\n",
            closed_port()
        ),
    );
    let run = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_railbridge"))
            .args(["serve", "--check", "--config"])
            .arg(config)
            .env("SECRET_KEY_BASE", SKB)
            .output()
            .unwrap()
    };
    let ok = run(&up);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        text.contains("session store: cache_store") && text.contains("session store: ok"),
        "{text}"
    );
    let bad = run(&down);
    let text =
        String::from_utf8_lossy(&bad.stdout).into_owned() + &String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains("session store: redis_store") && text.contains("not reachable"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password stays out of the output: {text}");
}
