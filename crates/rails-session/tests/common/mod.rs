//! Test support: the example apps on 127.0.0.1:0 (both adapters), the real Rails app and its User API as child
//! processes (killed on drop, also on panic), and a small cookie-keeping HTTP client.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rails_cookie::{CookieCodec, Hash, Profile, SecretKeyBase, Value};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};

/// The interop app's default `secret_key_base` (spec §15.0).
pub const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
pub const COOKIE_NAME: &str = "_app_session";
pub const SALT: &str = "$2a$04$t5oXLMcxWj/RkeIfFyX9r.";

/// Environment for the example API.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("SECRET_KEY_BASE".into(), SKB.into()),
        ("SESSION_KEY".into(), COOKIE_NAME.into()),
        ("PORT".into(), "0".into()),
    ];
    for (k, v) in pairs {
        env.retain(|(key, _)| key != k);
        env.push(((*k).into(), (*v).into()));
    }
    env
}

pub fn lookup(env: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

pub fn codec(profile: Profile) -> CookieCodec {
    CookieCodec::new(profile, SecretKeyBase::new(SKB).unwrap()).unwrap()
}

/// A Devise session for user `id` with `salt`, as Rails 6.1 writes it.
pub fn devise_session(id: i64, salt: &str) -> Hash {
    let mut h = Hash::new();
    h.insert("session_id", "7d568a2f4d75dcadd04bcaeefddde7c3".into());
    h.insert(
        "warden.user.user.key",
        Value::Array(vec![Value::Array(vec![id.into()]), salt.into()]),
    );
    let mut flashes = Hash::new();
    flashes.insert("notice", "Signed in successfully.".into());
    let mut flash = Hash::new();
    flash.insert("discard", Value::Array(vec![]));
    flash.insert("flashes", Value::Hash(flashes));
    h.insert("flash", Value::Hash(flash));
    h.insert("_csrf_token", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".into());
    h
}

/// `NAME=escaped` for a session hash.
pub fn cookie_pair(codec: &CookieCodec, session: &Hash) -> String {
    let value = codec.encode(COOKIE_NAME, &Value::Hash(session.clone()), None).unwrap();
    format!("{COOKIE_NAME}={}", rails_cookie::escape(&value))
}

/// Decodes the session from a `Set-Cookie` header.
pub fn decode_set_cookie(codec: &CookieCodec, set_cookie: &str) -> Hash {
    let pair = set_cookie.split(';').next().unwrap();
    let value = pair.strip_prefix(&format!("{COOKIE_NAME}=")).unwrap();
    codec
        .decode(COOKIE_NAME, &rails_cookie::unescape(value))
        .unwrap()
        .value
        .as_hash()
        .unwrap()
        .clone()
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------------------------

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The session `Set-Cookie` headers.
    pub fn session_cookies(&self) -> Vec<String> {
        set_cookies(&self.headers)
            .into_iter()
            .filter(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
            .collect()
    }
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split('\n').map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// A browser-like client: keeps cookies by name (both servers are on 127.0.0.1, and cookies ignore ports), never
/// follows redirects.
pub struct Browser {
    client: reqwest::Client,
    pub jar: Vec<(String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser { client, jar: Vec::new() }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn set_cookie_pair(&mut self, pair: &str) {
        let (k, v) = pair.split_once('=').unwrap();
        self.jar.retain(|(key, _)| key != k);
        self.jar.push((k.into(), v.into()));
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        })
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Resp {
        let request = match self.cookie_header() {
            Some(c) => request.header(COOKIE, c),
            None => request,
        };
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        for c in set_cookies(&headers) {
            let pair = c.split(';').next().unwrap_or("");
            let Some((k, v)) = pair.split_once('=') else { continue };
            self.jar.retain(|(key, _)| key != k);
            let deleted = v.is_empty() || c.to_ascii_lowercase().contains("max-age=0");
            if !deleted {
                self.jar.push((k.into(), v.into()));
            }
        }
        Resp { status, headers, body }
    }

    pub async fn get(&mut self, url: &str) -> Resp {
        let request = self.client.get(url).header("accept", "text/html,application/json");
        self.send(request).await
    }

    pub async fn post(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Resp {
        let mut request = self.client.post(url).header("accept", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body: String =
            form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        request = request.header("content-type", "application/x-www-form-urlencoded").body(body);
        self.send(request).await
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The Rails app and its User API
// ---------------------------------------------------------------------------------------------------------------

pub use testkit::skip_live;

/// The interop Rails 6.1 + Devise app (and optionally its User API), on a database of its own.
pub struct Rails {
    pub app: testkit::Component,
    pub user_api: Option<testkit::Component>,
    dir: testkit::TempDir,
}

impl Rails {
    /// Starts `interop/app/app.rb` with `RAILS_PROFILE=profile` and the test helpers.
    pub fn start(profile: &str, with_user_api: bool) -> Rails {
        Rails::start_with(profile, with_user_api, &[])
    }

    /// [`Rails::start`] with more variables for the app (a server-side session store, say).
    pub fn start_with(profile: &str, with_user_api: bool, extra: &[(&str, &str)]) -> Rails {
        let dir = testkit::TempDir::new("rails-session-live");
        let db = dir.0.join("app.sqlite3");
        let with_env = |app: testkit::RailsApp| {
            let app = extra.iter().fold(app, |app, (k, v)| app.env(k, v));
            app.env("RAILS_PROFILE", profile)
                .env("RAILS_TEST_HELPERS", "1")
                .env("RAILS_APP_DB", &db)
                .env("SECRET_KEY_BASE", SKB)
                .env("SESSION_KEY", COOKIE_NAME)
        };
        let app = with_env(testkit::RailsApp::rails_6_1()).start();
        let user_api = with_user_api.then(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/user_api.rb");
            with_env(testkit::RailsApp::script("user API", script)).start()
        });
        Rails { app, user_api, dir }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// Signs in through the real Devise form.
    pub async fn sign_in(&self, browser: &mut Browser, email: &str, password: &str) {
        let form = browser.get(&self.url("/users/sign_in")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = scrape_authenticity_token(&form.body);
        let done = browser
            .post(
                &self.url("/users/sign_in"),
                &[("accept", "text/html")],
                &[
                    ("authenticity_token", &token),
                    ("user[email]", email),
                    ("user[password]", password),
                ],
            )
            .await;
        assert_eq!(done.status, 302, "sign-in failed: {}", done.body);
    }

    /// `/session.json`.
    pub async fn session_json(&self, browser: &mut Browser) -> serde_json::Value {
        let r = browser.get(&self.url("/session.json")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}

impl Drop for Rails {
    fn drop(&mut self) {
        // The apps stop before their database directory goes.
        self.user_api.take();
        let _ = &self.dir;
    }
}

/// The `authenticity_token` hidden field of a Rails form.
pub fn scrape_authenticity_token(html: &str) -> String {
    let at =
        html.find("name=\"authenticity_token\"").expect("no authenticity_token field in the form");
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    let end = rest[v..].find('"').unwrap();
    rest[v..v + end].to_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// The example apps, on 127.0.0.1:0
// ---------------------------------------------------------------------------------------------------------------

/// A running example app.
pub struct Server {
    pub base: String,
    #[allow(dead_code)]
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// `examples/api.rs` (axum) on the test's runtime.
pub async fn spawn_axum(env: Vec<(String, String)>) -> Server {
    let settings = crate::api::Settings::from_lookup(lookup(&env)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, crate::api::app(settings)).await });
    Server { base: format!("http://{addr}"), stop: Some(Box::new(move || task.abort())) }
}

/// `examples/api_actix.rs` on an actix system thread of its own.
#[cfg(feature = "actix-web")]
pub async fn spawn_actix(env: Vec<(String, String)>) -> Server {
    let settings = crate::api_actix::Settings::from_lookup(lookup(&env)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let (server, addrs) = crate::api_actix::server(settings, "127.0.0.1:0").unwrap();
            let _ = tx.send((addrs[0], server.handle(), actix_web::rt::System::current()));
            let _ = server.await;
        });
    });
    let (addr, handle, system) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let stop = move || {
        let _ = futures_util::FutureExt::now_or_never(handle.stop(false));
        system.stop();
    };
    Server { base: format!("http://{addr}"), stop: Some(Box::new(stop)) }
}
