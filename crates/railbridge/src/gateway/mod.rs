//! The identity gateway: the browser's only door to internal services. Each request is matched to a route
//! ([`router`]), stripped of forged identity headers ([`headers`]), its Rails session decrypted locally by
//! `rails-session` ([`identity`]), checked against the route's policy, and proxied with the identity attached
//! ([`forward`]); failures have short answers ([`error`]). `/_railbridge/auth` gives the same decision to an edge
//! proxy (nginx `auth_request`, Traefik ForwardAuth, Envoy ext_authz).

pub(crate) mod cache;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod head_clock;
pub(crate) mod headers;
pub(crate) mod identity;
pub(crate) mod pool;
pub(crate) mod router;
pub(crate) mod telemetry;
pub(crate) mod tls;
pub(crate) mod tokens;

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rails_session::{Session, SessionLayer};
use tokio::net::TcpListener;
use tower::{Layer as _, Service, ServiceExt as _};

use self::error::{
    session_store_unavailable, text, unauthorized, user_service_unavailable, ProxyError,
};
use self::forward::{Forward, Peer};
use self::headers::{session_cookie_raw, strip_identity};
use self::identity::{IdentityHeaders, Outcome};
use self::pool::{PoolSettings, UpstreamPool};
use self::router::{check_path, RouteState, Router};
use self::telemetry::RouteMetrics;
use crate::config::{Config, Policy, Route, Upstream};
use crate::jwt::issuer::Issuer;

/// The body type on both sides of the gateway (streamed, never buffered).
pub(crate) type Body = axum::body::Body;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A running gateway's shared state: the current configuration (replaced whole by [`Gateway::reload`], without
/// touching open connections) and the metrics. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.shared.state.load().config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: ArcSwap<State>,
    metrics: PrometheusHandle,
    draining: AtomicBool,
    /// One permit per client connection being served (`[server] max_connections`; fixed at start).
    connections: Arc<tokio::sync::Semaphore>,
}

/// Everything derived from one [`Config`].
pub(crate) struct State {
    config: Config,
    /// Tells this configuration's per-thread upstream clients from an older one's.
    generation: u64,
    router: Router,
    issuer: Option<Issuer>,
    /// `/_railbridge/auth` for a request whose original URI matches no route: signed-in, `aud = forward-auth`.
    forward_auth: Arc<RouteState>,
    /// Requests to the gateway's own endpoints, and requests that match no route.
    builtin_metrics: RouteMetrics,
    no_route_metrics: RouteMetrics,
    /// Token exchange, when on.
    tokens: Option<Arc<tokens::Tokens>>,
}

/// The identity headers of a signed-in session, as sent to a route's upstream.
pub(crate) type IdentityList = Arc<[(http::HeaderName, HeaderValue)]>;

impl State {
    /// The state of `config`; `previous`, on a reload, lends its in-memory token store (refresh tokens and
    /// revocations outlive a SIGHUP).
    fn new(config: Config, previous: Option<&State>) -> State {
        // One layer per Warden scope, shared by the routes of that scope: a layer keeps a copy of its configuration
        // per thread, which one per route would multiply by the number of routes.
        let layers: Vec<(&str, SessionLayer)> = config
            .session
            .iter()
            .flat_map(|s| &s.scopes)
            .map(|(scope, c)| (scope.as_str(), SessionLayer::from_arc(c.clone())))
            .collect();
        let layer_for =
            |scope: &str| layers.iter().find(|(s, _)| *s == scope).map(|(_, l)| l.clone());
        let session_for = |policy: &Policy| -> (Option<SessionLayer>, bool) {
            let Some(s) = &config.session else { return (None, true) };
            match policy {
                Policy::Scope(scope) if *scope != s.default_scope => (layer_for(scope), false),
                _ => (layer_for(&s.default_scope), true),
            }
        };
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let (session, default_scope) = session_for(&r.policy);
                let identity_cache = config.identity_cache_ttl.map(cache::identity_cache);
                let metrics = RouteMetrics::new(&r.name);
                Arc::new(RouteState {
                    route: r.clone(),
                    session,
                    default_scope,
                    identity_cache,
                    metrics,
                })
            })
            .collect();
        let router = Router::new(routes, config.server.public_paths.clone());
        let (session, default_scope) = session_for(&Policy::SignedIn);
        let forward_auth = Arc::new(RouteState {
            route: Route {
                name: "forward-auth".into(),
                prefix: "/_railbridge/auth".into(),
                upstream: Upstream {
                    authority: http::uri::Authority::from_static("localhost"),
                    host: HeaderValue::from_static("localhost"),
                    base_path: String::new(),
                },
                policy: Policy::SignedIn,
                rewrite: None,
                forward_session_cookie: false,
                preserve_host: false,
                assertion: true,
                timeout: config.server.request_timeout,
                accept_bearer: false,
                max_body_size: None,
                upstream_limit: None,
            },
            session,
            default_scope,
            identity_cache: config.identity_cache_ttl.map(cache::identity_cache),
            metrics: RouteMetrics::new("forward-auth"),
        });
        let issuer = config.jwt.as_ref().and_then(|j| match Issuer::new(j.issuer.clone(), j.ttl, j.keys.clone()) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(error = %e, "identity assertions are off: the issuer could not be set up");
                None
            }
        });
        let tokens = match (&config.tokens, &config.jwt) {
            (Some(t), Some(jwt)) => {
                match tokens::Tokens::new(t, jwt, previous.and_then(|p| p.tokens.as_deref())) {
                    Ok(t) => Some(Arc::new(t)),
                    Err(e) => {
                        tracing::error!(error = %e, "token exchange is off: it could not be set up");
                        None
                    }
                }
            }
            _ => None,
        };
        State {
            tokens,
            config,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            router,
            issuer,
            forward_auth,
            builtin_metrics: RouteMetrics::new("_railbridge"),
            no_route_metrics: RouteMetrics::new("_none"),
        }
    }

    /// This thread's upstream keep-alive pool for this configuration. Each worker thread has its own, so a pooled
    /// connection is driven by the thread whose requests use it: no wake-ups across threads.
    fn pool(&self) -> UpstreamPool {
        POOL.with_borrow_mut(|slot| match slot {
            Some((generation, pool)) if *generation == self.generation => pool.clone(),
            _ => {
                let server = &self.config.server;
                let pool = UpstreamPool::new(PoolSettings {
                    connect_timeout: server.connect_timeout,
                    idle_timeout: server.pool_idle_timeout,
                    max_idle_per_host: server.pool_max_idle_per_host,
                });
                *slot = Some((self.generation, pool.clone()));
                pool
            }
        })
    }

    fn trusted(&self, peer: &Peer) -> bool {
        self.config.server.trusted_proxies.iter().any(|c| c.contains(peer.addr.ip()))
    }

    fn cookie_name(&self) -> Option<&str> {
        self.config.session.as_ref().map(|s| s.cookie_name())
    }

    fn login_cookie_name(&self) -> Option<&str> {
        self.config.session.as_ref().and_then(|s| s.login_cookie_name())
    }
}

/// Numbers the configurations (see [`State::pool`]).
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The thread's upstream pool and the configuration generation it belongs to.
    static POOL: RefCell<Option<(u64, UpstreamPool)>> = const { RefCell::new(None) };
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "latency buckets refused; histograms become summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /_railbridge/metrics will be empty");
            }
            metrics::describe_counter!("railbridge_requests_total", "Requests answered, by route and status.");
            metrics::describe_histogram!(
                "railbridge_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to the response head, by route."
            );
            metrics::describe_counter!("railbridge_auth_total", "Identity decisions, by route and outcome.");
            metrics::describe_counter!("railbridge_upstream_errors_total", "Upstream failures, by route and kind.");
            metrics::describe_counter!(
                "railbridge_forged_identity_headers_total",
                "X-Railbridge-* headers sent by clients (stripped)."
            );
            handle
        })
        .clone()
}

impl Gateway {
    /// A gateway for `config`. Must be called inside a Tokio runtime.
    #[must_use]
    pub fn new(config: Config) -> Gateway {
        let permits = config.server.max_connections.min(tokio::sync::Semaphore::MAX_PERMITS);
        Gateway {
            shared: Arc::new(Shared {
                state: ArcSwap::from_pointee(State::new(config, None)),
                metrics: metrics_handle(),
                draining: AtomicBool::new(false),
                connections: Arc::new(tokio::sync::Semaphore::new(permits)),
            }),
        }
    }

    /// Replaces the configuration (routes, keys, secrets, timeouts). Requests already in flight finish with the
    /// old one; open connections stay open. The listen address cannot change without a restart.
    pub fn reload(&self, config: Config) {
        let old = self.shared.state.load().config.listen;
        if config.listen != old {
            tracing::warn!(old = %old, new = %config.listen, "the listen address changes only on restart");
        }
        let previous = self.shared.state.load_full();
        self.shared.state.store(Arc::new(State::new(config, Some(&previous))));
        tracing::info!("configuration reloaded");
    }

    /// The configuration in use.
    pub fn config(&self) -> Config {
        self.shared.state.load().config.clone()
    }

    /// Answers one request from `peer`.
    pub(crate) async fn handle(&self, req: Request<Incoming>, peer: &Peer) -> Response<Body> {
        let started = Instant::now();
        let state = self.shared.state.load_full();
        let req = req.map(Body::new);
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let builtin = path.starts_with("/_railbridge/") || path == "/.well-known/jwks.json";
        let (route, response) = if builtin {
            (None, self.builtin(&state, req, peer, &path).await)
        } else {
            match state.router.route(&path).cloned() {
                None => (None, ProxyError::NoRoute.into_response()),
                Some(rs) => {
                    let response = proxy(&state, &rs, req, peer, &path, Mode::Proxy).await;
                    (Some(rs), response)
                }
            }
        };
        let status = response.status();
        let elapsed = started.elapsed();
        let route_metrics = match &route {
            Some(rs) => &rs.metrics,
            None if builtin => &state.builtin_metrics,
            None => &state.no_route_metrics,
        };
        route_metrics.request(status, elapsed);
        let label = route_metrics.route();
        if state.config.log.access_log {
            tracing::info!(
                target: "railbridge::access",
                method = %method,
                path = %path,
                route = %label,
                status = status.as_u16(),
                micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                "request"
            );
        }
        response
    }

    async fn builtin(
        &self,
        state: &Arc<State>,
        req: Request<Body>,
        peer: &Peer,
        path: &str,
    ) -> Response<Body> {
        if path == "/_railbridge/auth" || path.starts_with("/_railbridge/auth/") {
            return forward_auth(state, req, peer, path).await;
        }
        if path == "/_railbridge/token" || path == "/_railbridge/revoke" {
            return match &state.tokens {
                Some(tokens) => tokens.endpoint(state, req, peer, path).await,
                None => ProxyError::NoRoute.into_response(),
            };
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
        }
        match path {
            "/_railbridge/health" => text(StatusCode::OK, "ok\n"),
            "/_railbridge/ready" if self.shared.draining.load(Ordering::Relaxed) => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
            "/_railbridge/ready" => text(StatusCode::OK, "ready\n"),
            "/_railbridge/metrics" => {
                let allowed = peer.addr.ip().to_canonical().is_loopback() || state.trusted(peer);
                if !allowed {
                    return ProxyError::NoRoute.into_response();
                }
                let mut r = Response::new(Body::from(self.shared.metrics.render()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            "/.well-known/jwks.json" => match &state.issuer {
                Some(issuer) => {
                    let mut r = error::json(StatusCode::OK, issuer.keys().jwks_json());
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=300"),
                    );
                    r
                }
                None => ProxyError::NoRoute.into_response(),
            },
            _ => ProxyError::NoRoute.into_response(),
        }
    }

    fn set_draining(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }
}

/// What the route handler does once it knows who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Proxy to the route's upstream.
    Proxy,
    /// Answer 200 with the identity headers, or 401 (`/_railbridge/auth`).
    Auth,
}

/// `/_railbridge/auth`: the policy of the route the original URI (`X-Forwarded-Uri` from Traefik,
/// `X-Original-URI` as nginx is usually configured, or the path after `/_railbridge/auth` as Envoy's
/// `path_prefix` sends it) would take; signed-in when there is none.
async fn forward_auth(
    state: &Arc<State>,
    req: Request<Body>,
    peer: &Peer,
    path: &str,
) -> Response<Body> {
    let header_uri = ["x-forwarded-uri", "x-original-uri"]
        .iter()
        .find_map(|h| req.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned));
    let suffix =
        path.strip_prefix("/_railbridge/auth").filter(|s| !s.is_empty()).map(str::to_owned);
    let original =
        header_uri.or(suffix).map(|u| u.split(['?', '#']).next().unwrap_or("/").to_owned());
    let (rs, original) = match original {
        Some(p) if check_path(&p).is_ok() => match state.router.route(&p) {
            Some(rs) => (rs.clone(), p),
            None => (state.forward_auth.clone(), p),
        },
        _ => (state.forward_auth.clone(), "/_railbridge/auth".to_owned()),
    };
    let mut response = proxy(state, &rs, req, peer, &original, Mode::Auth).await;
    response.headers_mut().remove(header::SET_COOKIE);
    response
}

/// The route handler, behind `rails-session`'s layer (which puts the lazy [`Session`] into the request and
/// commits it — a Devise timeout refresh, a cookie upgraded from an old format — on the way out).
#[derive(Clone)]
struct RouteHandler {
    state: Arc<State>,
    route: Arc<RouteState>,
    policy: Policy,
    peer: Peer,
    mode: Mode,
}

/// What the route handler leaves in the response for [`proxy`]: how many session cookies the upstream sent (the
/// gateway's own refresh is then dropped: Rails' is newer), and the identity to cache if the session layer turns
/// out to write nothing.
#[derive(Clone)]
struct Handled {
    upstream_session_cookies: usize,
    identity: Option<IdentityList>,
}

impl Service<Request<Body>> for RouteHandler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.run(req).await) })
    }
}

impl RouteHandler {
    async fn run(self, req: Request<Body>) -> Response<Body> {
        let Some(session) = req.extensions().get::<Session>().cloned() else {
            tracing::error!("no session in the request: the session layer is missing");
            return ProxyError::Internal("session layer missing".into()).into_response();
        };
        let state = &self.state;
        let Some(settings) = &state.config.session else {
            return ProxyError::Internal("no session settings".into()).into_response();
        };
        let use_api = self.route.default_scope && settings.user_api;
        let (outcome, who) =
            identity::resolve(&session, req.headers(), use_api, &settings.hash_key).await;
        self.route.metrics.auth(outcome);
        if who.is_none() && self.policy != Policy::Public {
            return match outcome {
                Outcome::UserApiUnavailable => user_service_unavailable(),
                Outcome::SessionStoreUnavailable => session_store_unavailable(),
                _ => unauthorized(),
            };
        }
        let identity: IdentityList = match &who {
            Some(who) => IdentityHeaders {
                fields: &state.config.fields,
                issuer: state.issuer.as_ref(),
                audience: &self.route.route.name,
                assertion: self.route.route.assertion,
            }
            .build(who, &session)
            .await
            .into(),
            None => Arc::new([]),
        };
        let cacheable = who.is_some() && !session.is_changed();
        let mut response = match self.mode {
            Mode::Auth => with_identity(text(StatusCode::OK, "ok\n"), &identity),
            Mode::Proxy => send(state, &self.route.route, req, &self.peer, &identity).await,
        };
        // A sign-out that passes through the gateway ends the tokens of that session.
        if let (Some(tokens), Some(who)) = (&state.tokens, &who) {
            if response.headers().contains_key(http::header::SET_COOKIE) {
                tokens.watch_sign_out(&session, &who.session_hash, response.headers()).await;
            }
        }
        let upstream_session_cookies = session_cookies(response.headers(), settings.cookie_name());
        response
            .extensions_mut()
            .insert(Handled { upstream_session_cookies, identity: cacheable.then_some(identity) });
        response
    }
}

fn with_identity(
    mut response: Response<Body>,
    identity: &[(http::HeaderName, HeaderValue)],
) -> Response<Body> {
    for (name, value) in identity {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn send(
    state: &State,
    route: &Route,
    req: Request<Body>,
    peer: &Peer,
    identity: &[(http::HeaderName, HeaderValue)],
) -> Response<Body> {
    let pool = state.pool();
    let forward = Forward {
        pool: &pool,
        route,
        peer,
        trusted: state.trusted(peer),
        cookie_name: state.cookie_name(),
        login_cookie_name: state.login_cookie_name(),
    };
    match forward.send(req, identity).await {
        Ok(r) => r,
        Err(e) => {
            metrics::counter!("railbridge_upstream_errors_total", "route" => route.name.clone(), "kind" => e.kind())
                .increment(1);
            tracing::warn!(route = %route.name, source = ?e.source_kind(), error = %e, "proxy error");
            e.into_response()
        }
    }
}

async fn proxy(
    state: &Arc<State>,
    rs: &Arc<RouteState>,
    mut req: Request<Body>,
    peer: &Peer,
    path: &str,
    mode: Mode,
) -> Response<Body> {
    if let Err(e) = check_path(path) {
        return e.into_response();
    }
    let forged = strip_identity(req.headers_mut());
    if forged > 0 {
        metrics::counter!("railbridge_forged_identity_headers_total").increment(forged as u64);
        tracing::debug!(count = forged, "stripped client-sent X-Railbridge-* headers");
    }
    let policy = state.router.policy(&rs.route, path).clone();
    if rs.route.accept_bearer {
        if let Some(answer) = bearer(state, rs, &policy, &mut req, peer, mode).await {
            return answer;
        }
    }
    let Some(session_layer) = &rs.session else {
        rs.metrics.auth(Outcome::NoSecret);
        return match (policy, mode) {
            (Policy::Public, Mode::Proxy) => send(state, &rs.route, req, peer, &[]).await,
            (Policy::Public, Mode::Auth) => text(StatusCode::OK, "ok\n"),
            _ => unauthorized(),
        };
    };
    // The same cookie on the same route, seen moments ago and needing no refresh: same identity, no decryption.
    // For Rails 8 authentication logins the cookie that names the login is the signed one, and this cache (with
    // RAILS_AUTH_CACHE_TTL) is the only cache of its `sessions` lookups.
    let login_cookie = session_layer.config().login_cookie_name();
    let cache = rs.identity_cache.as_ref();
    let cookie = cache
        .and_then(|_| session_cookie_raw(req.headers(), login_cookie))
        .filter(|c| !c.is_empty());
    // A Rails 8 authentication login is the signed cookie; the session cookie joins the key because identity
    // fields may come from the session (`session.locale`).
    let cookie: Option<std::borrow::Cow<'_, str>> = cookie.map(|c| {
        if login_cookie == session_layer.config().key() {
            std::borrow::Cow::Borrowed(c)
        } else {
            let session =
                session_cookie_raw(req.headers(), session_layer.config().key()).unwrap_or_default();
            std::borrow::Cow::Owned(format!("{session}\0{c}"))
        }
    });
    let read_at = std::time::Instant::now();
    if let (Some(cache), Some(cookie)) = (cache, cookie.as_deref()) {
        if let Some(identity) = cache.get(cookie) {
            rs.metrics.auth(Outcome::SignedIn);
            return match mode {
                Mode::Auth => with_identity(text(StatusCode::OK, "ok\n"), &identity),
                Mode::Proxy => {
                    // The request's session, should the response end it (its tokens then end too).
                    let session = state.tokens.as_ref().map(|_| {
                        let value = session_cookie_raw(req.headers(), session_layer.config().key())
                            .map(|v| rails_session::rails_cookie::unescape(v).into_owned());
                        Session::new(session_layer.shared_config().clone(), value, None)
                    });
                    let response = send(state, &rs.route, req, peer, &identity).await;
                    if let (Some(tokens), Some(session)) = (&state.tokens, session) {
                        let sid = identity
                            .iter()
                            .find(|(name, _)| *name == headers::X_RAILBRIDGE_SESSION)
                            .and_then(|(_, v)| v.to_str().ok());
                        if let (Some(sid), true) =
                            (sid, response.headers().contains_key(header::SET_COOKIE))
                        {
                            tokens.watch_sign_out(&session, sid, response.headers()).await;
                        }
                    }
                    response
                }
            };
        }
    }
    let cache_key = cookie.map(std::borrow::Cow::into_owned);
    let handler =
        RouteHandler { state: state.clone(), route: rs.clone(), policy, peer: peer.clone(), mode };
    let service = session_layer.layer(handler);
    let mut response = match service.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if let Some(handled) = response.extensions_mut().remove::<Handled>() {
        let name = session_layer.config().key();
        let written_by_gateway =
            session_cookies(response.headers(), name) > handled.upstream_session_cookies;
        if written_by_gateway && handled.upstream_session_cookies > 0 {
            drop_gateway_session_cookies(
                response.headers_mut(),
                name,
                handled.upstream_session_cookies,
            );
        }
        if let (false, Some(identity), Some(cache), Some(key)) =
            (written_by_gateway, handled.identity, cache, cache_key)
        {
            cache.insert(key, identity, read_at);
        }
    }
    response
}

/// A bearer access token on an `accept_bearer` route: its identity, or 401 with the reason. `None`: no bearer
/// token, so the cookie decides.
async fn bearer(
    state: &Arc<State>,
    rs: &Arc<RouteState>,
    policy: &Policy,
    req: &mut Request<Body>,
    peer: &Peer,
    mode: Mode,
) -> Option<Response<Body>> {
    let tokens = state.tokens.as_ref()?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })?
        .trim()
        .to_owned();
    // The bearer token is for the gateway: the upstream gets the identity headers instead.
    req.headers_mut().remove(header::AUTHORIZATION);
    let verified = tokens.bearer(&token).await.and_then(|bearer| match policy {
        // A Warden scope route takes only tokens exchanged under that scope.
        Policy::Scope(scope) if bearer.scope() != Some(scope.as_str()) => Err("wrong_scope"),
        _ => Ok(bearer),
    });
    match verified {
        Ok(bearer) => {
            rs.metrics.auth(Outcome::SignedIn);
            let headers = IdentityHeaders {
                fields: &state.config.fields,
                issuer: state.issuer.as_ref(),
                audience: &rs.route.name,
                assertion: rs.route.assertion,
            };
            let identity = tokens.bearer_identity(&headers, &bearer);
            let req = std::mem::take(req);
            Some(match mode {
                Mode::Auth => with_identity(text(StatusCode::OK, "ok\n"), &identity),
                Mode::Proxy => send(state, &rs.route, req, peer, &identity).await,
            })
        }
        Err("token_store_unavailable") => Some(error::json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"token store unavailable"}"#,
        )),
        Err(reason) => {
            rs.metrics.auth(Outcome::InvalidToken);
            let mut r = error::json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "invalid_token", "reason": reason}).to_string(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{reason}\""
            )) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            Some(r)
        }
    }
}

fn session_cookies(headers: &http::HeaderMap, name: &str) -> usize {
    headers.get_all(header::SET_COOKIE).iter().filter(|v| is_session_cookie(v, name)).count()
}

fn is_session_cookie(value: &HeaderValue, name: &str) -> bool {
    value.as_bytes().strip_prefix(name.as_bytes()).is_some_and(|rest| rest.first() == Some(&b'='))
}

/// Keeps the upstream's `upstream` session cookies and drops the ones the session layer appended after them.
fn drop_gateway_session_cookies(headers: &mut http::HeaderMap, name: &str, upstream: usize) {
    if session_cookies(headers, name) <= upstream {
        return;
    }
    let all: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    headers.remove(header::SET_COOKIE);
    let mut seen = 0;
    for v in all {
        if is_session_cookie(&v, name) {
            seen += 1;
            if seen > upstream {
                continue;
            }
        }
        headers.append(header::SET_COOKIE, v);
    }
}

/// Serves `gateway` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// (up to the configured drain timeout) and returns. HTTP/1.1 with keep-alive and upgrades, and HTTP/2 (h2c) from
/// clients.
///
/// With `[server] workers` above 1 (the default is one per CPU), each worker is a thread with its own
/// single-threaded event loop and its own upstream pool, and the calling task deals the accepted connections out to
/// them in turn: a connection and everything it needs stays on one thread, as in nginx's worker processes.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = railbridge::Config::load(None, |name| std::env::var(name).ok())?;
/// let listener = tokio::net::TcpListener::bind(config.listen()).await?;
/// let gateway = railbridge::Gateway::new(config);
/// railbridge::serve(gateway, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = gateway.shared.metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        })
    };
    let workers = gateway.config().server.workers;
    let result = if workers <= 1 {
        let permits = gateway.shared.connections.clone();
        serve_on(gateway, Connections::Listener(listener, permits), shutdown).await
    } else {
        serve_on_workers(gateway, listener, shutdown, workers).await
    };
    upkeep.abort();
    result
}

async fn serve_on_workers(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    workers: usize,
) -> std::io::Result<()> {
    let mut handoffs = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let (handoff, connections) = tokio::sync::mpsc::unbounded_channel();
        let gateway = gateway.clone();
        let spawned = std::thread::Builder::new().name(format!("railbridge-worker-{i}")).spawn(
            move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(serve_on(
                    gateway,
                    Connections::Handoff(connections),
                    std::future::pending(),
                ))
            },
        );
        match spawned {
            Ok(thread) => {
                threads.push(thread);
                handoffs.push(handoff);
            }
            Err(e) => {
                drop(handoffs);
                join(threads).await?;
                return Err(e);
            }
        }
    }
    // One acceptor deals the connections out in turn, so every worker gets its share of a burst of new clients
    // (several threads accepting on one socket split them unevenly, and keep-alive makes that last).
    tokio::pin!(shutdown);
    let mut next = 0;
    let permits = gateway.shared.connections.clone();
    loop {
        tokio::select! {
            accepted = accept_permitted(&listener, &permits) => {
                let Some((stream, peer, permit)) = accepted else { continue };
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot hand an accepted connection over");
                        continue;
                    }
                };
                let mut connection = Some((stream, peer, permit));
                for _ in 0..handoffs.len() {
                    let handoff = &handoffs[next % handoffs.len()];
                    next = next.wrapping_add(1);
                    match connection.take().map(|c| handoff.send(c)) {
                        Some(Err(tokio::sync::mpsc::error::SendError(back))) => connection = Some(back),
                        _ => break,
                    }
                }
                if connection.is_some() {
                    tracing::error!("no worker thread is running; closing the connection");
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // The workers see their hand-off close, stop taking connections and drain.
    drop(handoffs);
    join(threads).await
}

/// Waits for the worker threads (off the async threads) and returns the first error.
async fn join(threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a worker thread panicked")));
            if let (Err(e), Ok(())) = (outcome, &result) {
                result = Err(e);
            }
        }
        result
    })
    .await
    .map_err(std::io::Error::other)?
}

/// A connection handed from the acceptor to a worker, with its permit.
type Handed = (std::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit);

/// Where an event loop's connections come from: its own listener (with the connection permits), or the acceptor's
/// hand-off.
enum Connections {
    Listener(TcpListener, Arc<tokio::sync::Semaphore>),
    Handoff(tokio::sync::mpsc::UnboundedReceiver<Handed>),
}

impl Connections {
    /// The next connection and its permit; `None` once the acceptor has stopped.
    async fn next(
        &mut self,
    ) -> Option<(tokio::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
        loop {
            match self {
                Connections::Listener(listener, permits) => {
                    if let Some(accepted) = accept_permitted(listener, permits).await {
                        return Some(accepted);
                    }
                }
                Connections::Handoff(handoff) => {
                    let (stream, peer, permit) = handoff.recv().await?;
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => return Some((stream, peer, permit)),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot take over an accepted connection")
                        }
                    }
                }
            }
        }
    }
}

/// Waits for a connection permit, then accepts: at `max_connections`, new clients wait in the kernel's listen backlog
/// (not in the gateway's memory, not as open file descriptors) until a connection ends.
async fn accept_permitted(
    listener: &TcpListener,
    permits: &Arc<tokio::sync::Semaphore>,
) -> Option<(tokio::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    let (stream, peer) = accept(listener).await?;
    Some((stream, peer, permit))
}

/// Accepts a connection; on failure (EMFILE and friends) logs it and backs off instead of spinning.
async fn accept(listener: &TcpListener) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client connection (plain or TLS) until it ends, drained with the others at shutdown.
async fn serve_io<I>(
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: TokioIo<I>,
    gateway: Gateway,
    client: Peer,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let state = head_clock::HeadState::new();
    let header_timeout = gateway.config().server.header_timeout;
    let io =
        TokioIo::new(head_clock::HeadClock::new(io.into_inner(), state.clone(), header_timeout));
    let service = hyper::service::service_fn(move |req| {
        let (gw, client, state) = (gateway.clone(), client.clone(), state.clone());
        async move {
            state.request_started();
            let response = gw.handle(req, &client).await;
            // An upgraded connection (WebSocket) is no longer HTTP: its bytes never start the header clock.
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                state.request_done();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
    watcher.watch(conn).await
}

/// One event loop: takes connections until `shutdown` (or until the acceptor stops), then drains its own.
async fn serve_on(
    gateway: Gateway,
    mut connections: Connections,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = gateway.config();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(config.server.idle_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.server.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = connections.next() => {
                let Some((stream, peer, permit)) = accepted else { break };
                let _ = stream.set_nodelay(true);
                let gw = gateway.clone();
                // The TLS settings of the configuration in force when the connection arrived (SIGHUP renews them).
                let tls = gateway.shared.state.load().config.server.tls.clone();
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let ended = match tls {
                        None => {
                            let client = Peer::new(peer);
                            serve_io(builder, watcher, TokioIo::new(stream), gw, client).await
                        }
                        Some(tls) => {
                            let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                                Ok(Ok(stream)) => {
                                    let client = Peer::new(peer).over_tls();
                                    serve_io(builder, watcher, TokioIo::new(stream), gw, client).await
                                }
                                Ok(Err(e)) => Err(Box::new(e).into()),
                                Err(_) => Err("the TLS handshake timed out".into()),
                            }
                        }
                    };
                    if let Err(e) = ended {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(connections);
    gateway.set_draining();
    let in_flight = graceful.count();
    tracing::info!(connections = in_flight, "shutting down: draining in-flight requests");
    let drain = gateway.config().server.drain_timeout;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(drain) => tracing::warn!(timeout = ?drain, "drain timeout: closing the remaining connections"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_session_cookie_dropped_when_the_upstream_sets_one() {
        let mut h = http::HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("_s=rails; path=/"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("other=1"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("_s=gateway; path=/"));
        drop_gateway_session_cookies(&mut h, "_s", 1);
        let left: Vec<_> =
            h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(left, ["_s=rails; path=/", "other=1"]);
        assert!(!is_session_cookie(&HeaderValue::from_static("_session=1"), "_s"));
    }
}
