//! Test support for the gateway: an echo upstream (headers as JSON, `/slow`, `/stream`, a WebSocket echo), the
//! gateway itself in-process on 127.0.0.1:0, Rails session cookies made with the codec, test keys, JWT checks
//! against the JWKS (with aws-lc-rs, independent of the gateway's ring signer), child processes killed on drop.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get as get_route};
use axum::Json;
use base64::Engine as _;
use railbridge::{serve, Config, Gateway};
use rails_cookie::{CookieCodec, Hash, Profile, SecretKeyBase, Value};
use serde_json::{json, Map, Value as JsonValue};
use tokio::sync::oneshot;

/// The interop app's default `secret_key_base` (rails-cookie-formats §15.0).
pub(crate) const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
pub(crate) const COOKIE: &str = "_app_session";
pub(crate) const SALT: &str = "$2a$04$t5oXLMcxWj/RkeIfFyX9r.";
pub(crate) const SESSION_ID: &str = "7d568a2f4d75dcadd04bcaeefddde7c3";

// ---------------------------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------------------------

pub(crate) fn codec(profile: Profile) -> CookieCodec {
    CookieCodec::new(profile, SecretKeyBase::new(SKB).unwrap()).unwrap()
}

/// A Devise session with `user id` signed in under `scope`.
pub(crate) fn devise_session(scope: &str, id: i64) -> Hash {
    let mut h = Hash::new();
    h.insert("session_id", SESSION_ID.into());
    h.insert(
        format!("warden.user.{scope}.key"),
        Value::Array(vec![Value::Array(vec![id.into()]), SALT.into()]),
    );
    h.insert("_csrf_token", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".into());
    h
}

/// `_app_session=<escaped value>` for `session`, as Rails 6.1 writes it.
pub(crate) fn cookie_for(session: &Hash) -> String {
    cookie_with(&codec(Profile::rails_6_1()), session)
}

pub(crate) fn cookie_with(codec: &CookieCodec, session: &Hash) -> String {
    let value = codec.encode(COOKIE, &Value::Hash(session.clone()), None).unwrap();
    format!("{COOKIE}={}", rails_cookie::escape(&value))
}

/// Decodes the session of a `Set-Cookie: _app_session=…` value.
pub(crate) fn decode_set_cookie(set_cookie: &str) -> Hash {
    let value = set_cookie.split(';').next().unwrap().strip_prefix(&format!("{COOKIE}=")).unwrap();
    codec(Profile::rails_6_1())
        .decode(COOKIE, &rails_cookie::unescape(value))
        .unwrap()
        .value
        .as_hash()
        .unwrap()
        .clone()
}

// ---------------------------------------------------------------------------------------------------------------
// The echo upstream
// ---------------------------------------------------------------------------------------------------------------

/// A server on 127.0.0.1:0, aborted on drop.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A server running as `task` on `addr` (aborted on drop).
    pub(crate) fn from_parts(addr: SocketAddr, task: tokio::task::JoinHandle<()>) -> Server {
        Server { addr, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_handler(req: Request) -> Json<JsonValue> {
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let entry = headers.entry(name.as_str()).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!(String::from_utf8_lossy(value.as_bytes())));
        }
    }
    let (method, path, query, version) = (
        req.method().to_string(),
        req.uri().path().to_owned(),
        req.uri().query().map(str::to_owned),
        req.version(),
    );
    let body = axum::body::to_bytes(req.into_body(), 64 << 20).await.map(|b| b.len()).ok();
    Json(json!({
        "method": method,
        "path": path,
        "query": query,
        "version": format!("{version:?}"),
        "headers": headers,
        "body_len": body,
    }))
}

#[derive(serde::Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

async fn slow(Query(q): Query<SlowQuery>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(q.ms.unwrap_or(3000))).await;
    "slow\n"
}

async fn stream() -> Response {
    let chunks = futures_util::stream::unfold(0u8, |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"first\n")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Some((Ok(bytes::Bytes::from_static(b"second\n")), 2))
            }
            _ => None,
        }
    });
    axum::body::Body::from_stream(chunks).into_response()
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let reply = match msg {
                Message::Text(t) => Message::Text(format!("echo: {}", t.as_str()).into()),
                Message::Binary(b) => Message::Binary(b),
                Message::Close(_) => break,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// Sends a raw HTTP/1.1 request line and headers (no client-side URL normalisation); returns the status.
pub(crate) async fn raw_status(addr: SocketAddr, request_target: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {request_target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn set_session(req: Request) -> Response {
    // `X-Set-Cookie` names the cookie to set (a test's own session); else a fixed one.
    let wanted = req.headers().get("x-set-cookie").cloned();
    let mut r = echo_handler(req).await.into_response();
    r.headers_mut().append(
        http::header::SET_COOKIE,
        wanted.unwrap_or(http::HeaderValue::from_static("_app_session=from-upstream; path=/")),
    );
    r
}

/// The echo upstream: any path answers the request as JSON; `…/slow?ms=N`, `…/stream`, `…/ws` and
/// `…/set-session` under any of the test prefixes.
pub(crate) async fn echo() -> Server {
    let mut app = axum::Router::new();
    for prefix in ["", "/echo", "/rails", "/admin", "/slow", "/public", "/api"] {
        app = app
            .route(&format!("{prefix}/slow"), get_route(slow))
            .route(&format!("{prefix}/stream"), get_route(stream))
            .route(&format!("{prefix}/ws"), get_route(ws))
            .route(&format!("{prefix}/set-session"), any(set_session));
    }
    let app = app.fallback(any(echo_handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, task }
}

/// A port with nothing listening (bound, then closed).
pub(crate) fn closed_port() -> u16 {
    testkit::free_port()
}

// ---------------------------------------------------------------------------------------------------------------
// The gateway, in-process
// ---------------------------------------------------------------------------------------------------------------

/// A running gateway; shut down (gracefully) on [`Gw::stop`], aborted on drop.
pub(crate) struct Gw {
    pub(crate) addr: SocketAddr,
    pub(crate) gateway: Gateway,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gw {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends the shutdown signal and waits for `serve` to return.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("drained in time")
                .unwrap()
                .unwrap();
        }
    }

    pub(crate) fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn lookup(env: Vec<(String, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

pub(crate) fn config(toml: &str, env: &[(&str, &str)]) -> Config {
    let env: Vec<(String, String)> =
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_toml(toml, "test.toml", lookup(env))
        .unwrap_or_else(|e| panic!("bad test config: {e}\n{toml}"))
}

pub(crate) async fn start(config: Config) -> Gw {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, config).await
}

/// [`start`] on a listener bound beforehand (when its address must be known first).
pub(crate) async fn start_on(listener: tokio::net::TcpListener, config: Config) -> Gw {
    let addr = listener.local_addr().unwrap();
    let gateway = Gateway::new(config);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(gateway.clone(), listener, async move {
        let _ = rx.await;
    }));
    Gw { addr, gateway, shutdown: Some(tx), task: Some(task) }
}

/// A gateway from TOML with `SECRET_KEY_BASE` set (plus `env`).
pub(crate) async fn gateway(toml: &str, env: &[(&str, &str)]) -> Gw {
    let mut all = vec![("SECRET_KEY_BASE", SKB)];
    all.extend_from_slice(env);
    start(config(toml, &all)).await
}

/// The standard test route table in front of `echo`.
pub(crate) fn routes_toml(echo: &Server, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
trusted_proxies = []
public_paths = ["/echo/public"]
request_timeout = "5s"
connect_timeout = "1s"
drain_timeout = "10s"

[rails]
session_key = "{COOKIE}"
rails_version = "6.1"

[log]
access_log = false

{extra}

[[route]]
name = "echo"
prefix = "/echo"
upstream = "http://{echo}"
policy = "signed-in"

[[route]]
name = "rails"
prefix = "/rails"
upstream = "http://{echo}"
policy = "public"
forward_session_cookie = true

[[route]]
name = "admin"
prefix = "/admin"
upstream = "http://{echo}"
policy = "scope:admin"

[[route]]
name = "slow"
prefix = "/slow"
upstream = "http://{echo}"
policy = "public"
timeout = "300ms"

[[route]]
name = "down"
prefix = "/down"
upstream = "http://127.0.0.1:{closed}"
policy = "public"

[[route]]
name = "api"
prefix = "/api"
upstream = "http://{echo}/v2"
rewrite = "/"
policy = "signed-in"
"#,
        echo = echo.addr,
        closed = closed_port(),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------------------------

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn json(&self) -> JsonValue {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// A header the echo upstream received (first value), from the echoed JSON.
    pub(crate) fn received(&self, name: &str) -> Option<String> {
        self.json()["headers"][name.to_ascii_lowercase()][0].as_str().map(str::to_owned)
    }

    /// Every header name the echo upstream received.
    pub(crate) fn received_names(&self) -> Vec<String> {
        self.json()["headers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Resp {
    let r = request.send().await.expect("request failed");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    Resp { status, headers, body }
}

pub(crate) async fn get(url: &str, cookie: Option<&str>) -> Resp {
    let mut req = client().get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(req).await
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and JWTs
// ---------------------------------------------------------------------------------------------------------------

pub(crate) use testkit::TempDir;

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh Ed25519 key (PKCS#8 PEM).
pub(crate) fn ed25519_pem() -> String {
    let doc =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    pem("PRIVATE KEY", doc.as_ref())
}

/// A fresh P-256 key (PKCS#8 PEM).
pub(crate) fn p256_pem() -> String {
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    pem("PRIVATE KEY", doc.as_ref())
}

/// A fresh 2048-bit RSA key from `openssl genpkey` (PKCS#8 PEM), if openssl is installed.
pub(crate) fn rsa_pem(dir: &TempDir) -> Option<String> {
    let out = dir.0.join("rsa.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&out)
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::read_to_string(out).unwrap())
}

/// Verifies `token` against the JWKS document with jsonwebtoken's aws-lc-rs backend; returns the claims.
pub(crate) fn verify(token: &str, jwks: &JsonValue, audience: &str, issuer: &str) -> JsonValue {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = header.kid.as_deref().expect("the assertion names its key");
    let jwk = set.find(kid).unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
    jsonwebtoken::decode::<JsonValue>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("assertion rejected: {e}"))
        .claims
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes (Rails, nginx): the test kit's
// ---------------------------------------------------------------------------------------------------------------

pub(crate) use testkit::{skip_live, workspace_root, Component};
