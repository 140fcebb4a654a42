//! The identity gateway: the browser's only door to internal services. A request reads top to bottom through
//! these modules:
//!
//! - [`server`]: the listener, worker threads, `max_connections`, TLS termination, the request-head clock, drain;
//! - this module: the shared state of one configuration ([`Gateway`], reloaded whole on SIGHUP) and the built-in
//!   endpoints (`/_railbridge/…`, the JWKS);
//! - [`router`]: which route a path takes;
//! - [`policy`]: who may pass — forged identity headers stripped ([`headers`]), a bearer token ([`tokens`]), the
//!   identity cache ([`cache`]), the Rails session decrypted locally by `rails-session` ([`identity`]), the route's
//!   policy;
//! - [`forward`]: the request on to the upstream with the identity attached, over the per-worker pool ([`pool`]);
//! - [`error`]: the short answers when something fails.
//!
//! `/_railbridge/auth` gives the same decision to an edge proxy (nginx `auth_request`, Traefik ForwardAuth, Envoy
//! ext_authz).

pub(crate) mod cache;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod head_clock;
pub(crate) mod headers;
pub(crate) mod identity;
mod plain;
pub(crate) mod policy;
pub(crate) mod pool;
pub(crate) mod router;
mod server;
pub(crate) mod telemetry;
pub(crate) mod tls;
pub(crate) mod tokens;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rails_session::SessionLayer;

use self::error::{text, ProxyError};
use self::forward::Peer;
use self::policy::{forward_auth, proxy, Mode};
use self::pool::{PoolSettings, UpstreamPool};
use self::router::{RouteState, Router};
use self::telemetry::RouteMetrics;
use crate::config::{Config, Policy, Route, Upstream};
use crate::jwt::issuer::Issuer;

/// The body type on both sides of the gateway (streamed, never buffered).
pub(crate) type Body = axum::body::Body;

pub use self::server::serve;

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
    /// Client connections being served (the semaphore cannot say: the acceptor holds a permit while it waits).
    open_connections: std::sync::atomic::AtomicUsize,
    /// The event loops serving this gateway (its workers'), for [`Gateway::stats`].
    runtimes: std::sync::Mutex<Vec<tokio::runtime::Handle>>,
}

/// What a running gateway holds, from [`Gateway::stats`] (and as gauges in `/_railbridge/metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Client connections being served.
    pub client_connections: usize,
    /// Tasks alive on the gateway's event loops: one per client connection, per upstream connection, per
    /// WebSocket tunnel, plus a few per worker. A count that only grows is a leak.
    pub tasks: usize,
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
                    transport: tls::Transport::plain(),
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
            metrics::describe_gauge!("railbridge_client_connections", "Client connections being served.");
            metrics::describe_gauge!("railbridge_tasks", "Tasks alive on the gateway's event loops.");
            metrics::describe_gauge!("process_resident_memory_bytes", "Resident memory of the process.");
            metrics::describe_gauge!("process_open_fds", "Open file descriptors of the process.");
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
                open_connections: std::sync::atomic::AtomicUsize::new(0),
                runtimes: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Connections and tasks now.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let runtimes =
            self.shared.runtimes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Stats {
            client_connections: self.shared.open_connections.load(Ordering::Relaxed),
            tasks: runtimes.iter().map(|h| h.metrics().num_alive_tasks()).sum(),
        }
    }

    /// Counts a client connection as open until the guard is dropped.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.shared.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.shared.clone())
    }

    /// Counts the current event loop as one of this gateway's (a worker starting).
    pub(crate) fn register_runtime(&self) {
        let mut runtimes =
            self.shared.runtimes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let handle = tokio::runtime::Handle::current();
        if !runtimes.iter().any(|h| h.id() == handle.id()) {
            runtimes.push(handle);
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
        // Both futures are boxed: inlined, their state machines nest deeply enough (token store, session store,
        // User API, upstream pool) that computing the connection future's layout overflows rustc's query depth.
        let (route, response) = if builtin {
            (None, Box::pin(self.builtin(&state, req, peer, &path)).await)
        } else {
            match state.router.route(&path).cloned() {
                None => (None, ProxyError::NoRoute.into_response()),
                Some(rs) => {
                    let response =
                        Box::pin(proxy(&state, &rs, req, peer, &path, Mode::Proxy)).await;
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
                self.record_gauges();
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

    /// Gauges read when `/metrics` is scraped: connections, tasks, and the process's memory and descriptors.
    fn record_gauges(&self) {
        let stats = self.stats();
        metrics::gauge!("railbridge_client_connections").set(stats.client_connections as f64);
        metrics::gauge!("railbridge_tasks").set(stats.tasks as f64);
        if let Some(rss) = resident_memory() {
            metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("process_open_fds").set(fds.count() as f64);
        }
    }

    fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    fn set_draining(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }
}

/// A client connection being served, counted in [`Stats::client_connections`] until dropped.
pub(crate) struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process's resident memory in bytes (Linux: `VmRSS` of `/proc/self/status`, in kB).
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 =
        line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}
