//! Live: the real Rails 6.1 + Devise app of `interop/app` behind the gateway. Signing in at Rails (through the
//! gateway), the echo upstream sees the identity; sign-out and a password change at Rails end it. Needs `ruby`
//! with Rails, Devise and puma; without it these tests fail with a message saying so, unless
//! `RAILBRIDGE_SKIP_LIVE=1`.

use serde_json::json;

use super::support::*;

/// The interop app and the User API of rails-session's tests, on a database of their own.
pub(crate) struct Rails {
    pub(crate) app: Component,
    pub(crate) user_api: Component,
    _dir: TempDir,
}

impl Rails {
    pub(crate) fn start() -> Rails {
        let dir = TempDir::new("rails");
        let db = dir.0.join("app.sqlite3");
        let with_env = |app: testkit::RailsApp| {
            app.env("RAILS_PROFILE", "6.1")
                .env("RAILS_TEST_HELPERS", "1")
                .env("RAILS_APP_DB", &db)
                .env("SECRET_KEY_BASE", SKB)
                .env("SESSION_KEY", COOKIE)
        };
        let app = with_env(testkit::RailsApp::rails_6_1()).start();
        let api = workspace_root().join("crates/rails-session/tests/support/user_api.rb");
        let user_api = with_env(testkit::RailsApp::script("user API", api)).start();
        Rails { app, user_api, _dir: dir }
    }
}

/// A browser: keeps cookies by name, never follows redirects.
pub(crate) struct Browser {
    jar: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new() -> Self {
        Browser { jar: Vec::new() }
    }

    /// A cookie's value, as the browser holds it.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets a cookie by hand (a copy kept elsewhere, a forged one).
    pub(crate) fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.retain(|(k, _)| k != name);
        self.jar.push((name.to_owned(), value.to_owned()));
    }

    pub(crate) fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        })
    }

    pub(crate) async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Resp {
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let r = send(req).await;
        for c in r.set_cookies() {
            let Some((k, v)) = c.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            self.jar.retain(|(key, _)| key != k);
            if !(v.is_empty() || c.to_ascii_lowercase().contains("max-age=0")) {
                self.jar.push((k.to_owned(), v.to_owned()));
            }
        }
        r
    }

    pub(crate) async fn get(&mut self, url: &str) -> Resp {
        self.send(client().get(url).header("accept", "text/html,application/json")).await
    }

    /// Signs in through the real Devise form at `base` (the gateway, which proxies to Rails).
    pub(crate) async fn sign_in(&mut self, base: &str, email: &str, password: &str) {
        let url = format!("{base}/users/sign_in");
        self.sign_in_form(&url, &url, &[("user[email]", email), ("user[password]", password)])
            .await;
    }

    /// Fetches a Rails sign-in form (for its cookie and `authenticity_token`), posts `fields` with the token to
    /// `action` and expects the redirect of a successful sign-in.
    pub(crate) async fn sign_in_form(&mut self, form: &str, action: &str, fields: &[(&str, &str)]) {
        let page = self.get(form).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let at = page.body.find("name=\"authenticity_token\"").expect("authenticity_token field");
        let rest = &page.body[at..];
        let v = rest.find("value=\"").unwrap() + 7;
        let token = rest[v..v + rest[v..].find('"').unwrap()].to_owned();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("authenticity_token", &token)
            .extend_pairs(fields)
            .finish();
        let done = self
            .send(
                client()
                    .post(action)
                    .header("accept", "text/html")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await;
        assert_eq!(done.status, 302, "sign-in failed: {}", done.body);
    }
}

#[tokio::test]
async fn devise_sign_in_identity_jwt_sign_out_and_password_change() {
    if skip_live() {
        return;
    }
    let rails = Rails::start();
    let echo = echo().await;
    let dir = TempDir::new("live-jwt");
    let key = dir.write("ed.pem", &ed25519_pem());
    let toml = format!(
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
# Every request decodes the session afresh, so the password change below takes effect at once.
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
        user_api = rails.user_api.base_url(),
        key = key.display(),
        echo = echo.addr,
        rails = rails.app.base_url(),
    );
    let gw = gateway(&toml, &[]).await;
    let base = gw.url("");
    let mut b = Browser::new();

    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "not signed in yet");
    b.sign_in(&base, "user@example.com", "password123").await;
    let r = b
        .send(
            client()
                .get(gw.url("/echo/x"))
                .header("x-railbridge-user", "2")
                .header("x_railbridge_email", "other@example.com"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["1"]));
    assert_eq!(r.json()["headers"]["x-railbridge-email"], json!(["user@example.com"]));
    assert_eq!(r.received("x-railbridge-scope").as_deref(), Some("user"));
    assert!(!r.received_names().iter().any(|n| n.contains('_') && n.starts_with("x_railbridge")));
    assert!(r.received("cookie").is_none(), "the Rails cookie stays at the gateway");
    let token = r.received("x-railbridge-assertion").unwrap();
    let jwks = get(&gw.url("/.well-known/jwks.json"), None).await.json();
    let claims = verify(&token, &jwks, "echo", "railbridge");
    assert_eq!(
        (claims["sub"].clone(), claims["scope"].clone(), claims["email"].clone()),
        (json!("1"), json!("user"), json!("user@example.com"))
    );
    assert_eq!(claims["sid"], json!(r.received("x-railbridge-session").unwrap()));

    // Rails agrees, through the gateway (the Rails route gets the cookie).
    let seen = b.get(&gw.url("/session.json")).await;
    assert_eq!(seen.json()["user_signed_in"], true, "{}", seen.body);
    assert_eq!(seen.json()["current_user_id"], 1);

    // Sign-out at Rails: the next request through the gateway is 401.
    let out = b.get(&gw.url("/users/sign_out")).await;
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "signed out at Rails");

    // A password change at Rails (another session) signs this one out: the User API's salt no longer matches.
    b.sign_in(&base, "user@example.com", "password123").await;
    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 200);
    let reset = send(
        client()
            .post(rails.app.url("/test/reset_password"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=user%40example.com&password=changed456"),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "stale authenticatable salt");
    assert_eq!(
        b.get(&gw.url("/session.json")).await.json()["user_signed_in"],
        false,
        "Rails agrees"
    );
}
