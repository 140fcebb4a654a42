//! The upstream keep-alive pool: idle HTTP/1.1 connections per upstream, one pool per worker thread.
//!
//! Built on hyper's connection API (`hyper::client::conn::http1`) rather than hyper-util's pooled client, which
//! costs more on every request than this gateway needs: it spawns a task per request to put the connection back
//! once it is ready again, hashes the upstream's name (SipHash) on every checkout, and shares one pool between
//! threads. Here a worker's requests only ever use the worker's own connections, a connection goes back to the
//! pool the moment its response body ends (see [`Checkin`]), and nothing is spawned per request. Measured with
//! `scripts/bench-gateway`: see the README's figures.
//!
//! Idle connections are closed after `pool_idle_timeout` (between one and one and a half times it: a sweeper
//! ticks every half period, so checking a connection in needs no clock), and at most `pool_max_idle_per_host`
//! are kept per upstream. A connection the upstream closed while idle is noticed before use and dropped; one not
//! ready yet is left for later rather than waited for; a request the dispatcher gives back unsent (the connection
//! closed just then) is sent on a new connection.
//!
//! Connections are keyed by the upstream's address *and* its route's [`Transport`] (TLS roots, client certificate,
//! protocol), so a connection verified under one route's TLS settings is never handed to a route with others. An
//! HTTP/2 upstream gets one multiplexed connection per worker, shared by its requests, instead of an idle stack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::error::ProxyError;
use super::tls::Transport;
use super::Body;
use crate::config::Upstream;

/// Settings of a pool (from `[server]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle_per_host: usize,
}

/// One worker's keep-alive connections to every upstream.
#[derive(Clone)]
pub(crate) struct UpstreamPool {
    shared: Arc<Shared>,
}

struct Shared {
    settings: PoolSettings,
    /// Idle connections by upstream (a handful of upstreams: a list beats hashing the name).
    idle: Mutex<Vec<HostIdle>>,
    /// The HTTP/2 connection of each HTTP/2 upstream, shared by all its requests.
    multiplexed: Mutex<Vec<Multiplexed>>,
    /// Sweeper ticks so far; an idle connection remembers the tick it was checked in at.
    tick: AtomicU64,
}

/// What a pooled connection may serve: the upstream's address and the transport it was made with (compared by
/// identity; holding the `Arc` keeps its address from being reused by another transport).
#[derive(Clone)]
struct Key {
    authority: Authority,
    transport: Arc<Transport>,
}

impl Key {
    fn of(upstream: &Upstream) -> Key {
        Key { authority: upstream.authority.clone(), transport: upstream.transport.clone() }
    }

    fn is(&self, upstream: &Upstream) -> bool {
        self.authority == upstream.authority && Arc::ptr_eq(&self.transport, &upstream.transport)
    }
}

/// An HTTP/2 connection, with the tick of its last request: unused for [`IDLE_TICKS`], it is let go (it closes
/// once its last stream ends), as are the connections of a configuration that was replaced.
struct Multiplexed {
    key: Key,
    sender: http2::SendRequest<Body>,
    tick: u64,
}

struct HostIdle {
    key: Key,
    /// Most recently used last: the warmest connection is taken first, the coldest are the ones that time out.
    connections: Vec<Idle>,
}

struct Idle {
    sender: SendRequest<Body>,
    tick: u64,
}

/// Ticks an idle connection survives: checked in during tick `t`, it is closed at the sweep that makes the count
/// `t + 3`, i.e. after between two and three half periods.
const IDLE_TICKS: u64 = 3;

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl UpstreamPool {
    /// A pool whose idle connections are swept by a task on the current Tokio runtime (the worker's), which ends
    /// when the pool is dropped.
    pub(crate) fn new(settings: PoolSettings) -> UpstreamPool {
        let shared = Arc::new(Shared {
            settings,
            idle: Mutex::new(Vec::new()),
            multiplexed: Mutex::new(Vec::new()),
            tick: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&shared);
        let period = (settings.idle_timeout / 2).max(Duration::from_millis(50));
        tokio::spawn(sweep(weak, period));
        UpstreamPool { shared }
    }

    /// Sends `req` (origin-form URI, `Host` set) to `upstream` on an idle connection, or on a new one. The
    /// response's [`Checkin`] must travel with its body: it returns the connection when the body has ended.
    /// `upgrade` (a WebSocket handshake) always takes an HTTP/1.1 connection.
    pub(crate) async fn send(
        &self,
        upstream: &Upstream,
        req: Request<Body>,
        upgrade: bool,
    ) -> Result<(Response<Incoming>, Checkin), ProxyError> {
        if upstream.transport.http2 && !upgrade {
            return self.send_multiplexed(upstream, req).await;
        }
        self.send_http1(upstream, req).await
    }

    async fn send_http1(
        &self,
        upstream: &Upstream,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Checkin), ProxyError> {
        // Connections not ready yet (still sending the body of a request the upstream already answered) are not
        // waited for: this request takes another one, and they go back to the pool.
        let mut busy = Vec::new();
        let mut sent = None;
        while let Some(mut sender) = self.take_idle(upstream) {
            match std::future::poll_fn(|cx| Poll::Ready(sender.poll_ready(cx))).await {
                Poll::Ready(Ok(())) => {
                    sent = Some(sender);
                    break;
                }
                Poll::Ready(Err(_)) => {} // closed
                Poll::Pending => busy.push(sender),
            }
        }
        self.put_back(upstream, busy);
        if let Some(mut sender) = sent {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.checkin(upstream, response, sender)),
                Err(mut e) => match e.take_message() {
                    // Not sent: the connection closed in the meantime. A new one gets it.
                    Some(unsent) => req = unsent,
                    None => return Err(upstream_error(&e.into_error())),
                },
            }
        }
        let mut sender = self.connect_http1(upstream).await?;
        sender.ready().await.map_err(|e| ProxyError::Connect(chain(&e)))?;
        let response = sender.send_request(req).await.map_err(|e| upstream_error(&e))?;
        Ok(self.checkin(upstream, response, sender))
    }

    /// HTTP/2: the worker's connection to the upstream (a new one when there is none or it has closed), the URI
    /// made absolute as HTTP/2 carries scheme and authority as pseudo-headers, and `Host` moved into `:authority`.
    async fn send_multiplexed(
        &self,
        upstream: &Upstream,
        req: Request<Body>,
    ) -> Result<(Response<Incoming>, Checkin), ProxyError> {
        let (mut parts, body) = req.into_parts();
        let scheme = if upstream.transport.tls.is_some() { "https" } else { "http" };
        let authority = parts
            .headers
            .remove(http::header::HOST)
            .and_then(|h| Authority::try_from(h.as_bytes()).ok())
            .unwrap_or_else(|| upstream.authority.clone());
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| ProxyError::Internal(e.to_string()))?;
        parts.version = http::Version::HTTP_2;
        let req = Request::from_parts(parts, body);
        let tick = self.shared.tick.load(Ordering::Relaxed);
        let existing = {
            let mut shared = self.shared.multiplexed.lock().unwrap_or_else(PoisonError::into_inner);
            shared.iter_mut().find(|m| m.key.is(upstream) && !m.sender.is_closed()).map(|m| {
                m.tick = tick;
                m.sender.clone()
            })
        };
        let mut sender = match existing {
            Some(sender) => sender,
            None => {
                let sender = self.connect_http2(upstream).await?;
                let mut shared =
                    self.shared.multiplexed.lock().unwrap_or_else(PoisonError::into_inner);
                shared.retain(|m| !m.key.is(upstream));
                shared.push(Multiplexed { key: Key::of(upstream), sender: sender.clone(), tick });
                sender
            }
        };
        sender.ready().await.map_err(|e| upstream_error(&e))?;
        let response = sender.send_request(req).await.map_err(|e| upstream_error(&e))?;
        Ok((response, Checkin { slot: None }))
    }

    fn checkin(
        &self,
        upstream: &Upstream,
        response: Response<Incoming>,
        sender: SendRequest<Body>,
    ) -> (Response<Incoming>, Checkin) {
        // A connection switched to another protocol (WebSocket) is no longer HTTP: never pooled.
        let reusable = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let checkin =
            Checkin { slot: reusable.then(|| (sender, self.shared.clone(), Key::of(upstream))) };
        (response, checkin)
    }

    /// Returns connections that were not ready to the bottom of the idle stack, so that the next requests try the
    /// ready ones first.
    fn put_back(&self, upstream: &Upstream, senders: Vec<SendRequest<Body>>) {
        if !senders.is_empty() {
            self.shared.keep(&Key::of(upstream), senders, End::Cold);
        }
    }

    fn take_idle(&self, upstream: &Upstream) -> Option<SendRequest<Body>> {
        let mut idle = self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let host = idle.iter_mut().find(|h| h.key.is(upstream))?;
        while let Some(conn) = host.connections.pop() {
            if !conn.sender.is_closed() {
                return Some(conn.sender);
            }
        }
        None
    }

    /// A new HTTP/1.1 connection, its dispatcher running on the worker.
    async fn connect_http1(&self, upstream: &Upstream) -> Result<SendRequest<Body>, ProxyError> {
        let name = upstream.authority.to_string();
        match self.open(upstream, false).await? {
            Stream::Plain(io) => handshake_http1(io, name).await,
            Stream::Tls(io) => handshake_http1(io, name).await,
        }
    }

    /// A new HTTP/2 connection (over TLS, only if the upstream agreed to `h2`).
    async fn connect_http2(
        &self,
        upstream: &Upstream,
    ) -> Result<http2::SendRequest<Body>, ProxyError> {
        let name = upstream.authority.to_string();
        match self.open(upstream, true).await? {
            Stream::Plain(io) => handshake_http2(io, name).await,
            Stream::Tls(io) => {
                if io.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(ProxyError::Tls(format!(
                        "{name} did not agree to HTTP/2 (ALPN h2); set http2 = false on the route"
                    )));
                }
                handshake_http2(io, name).await
            }
        }
    }

    /// TCP, then TLS for an `https://` upstream, within `connect_timeout` together.
    async fn open(&self, upstream: &Upstream, http2: bool) -> Result<Stream, ProxyError> {
        let name = &upstream.authority;
        let timeout = self.shared.settings.connect_timeout;
        let open = async {
            let host = name.host().trim_start_matches('[').trim_end_matches(']');
            let stream = tcp_connect(host, upstream.port())
                .await
                .map_err(|e| ProxyError::Connect(format!("connect to {name}: {e}")))?;
            let _ = stream.set_nodelay(true);
            let Some(tls) = &upstream.transport.tls else { return Ok(Stream::Plain(stream)) };
            let connector = match (&tls.http2, http2) {
                (Some(h2), true) => h2,
                _ => &tls.http1,
            };
            // Checked when the configuration was loaded.
            let server_name = rustls_pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| ProxyError::Tls(format!("{name}: {e}")))?;
            let stream = connector
                .connect(server_name, stream)
                .await
                .map_err(|e| ProxyError::Tls(format!("TLS with {name}: {e}")))?;
            Ok(Stream::Tls(Box::new(stream)))
        };
        match tokio::time::timeout(timeout, open).await {
            Err(_) => {
                Err(ProxyError::Connect(format!("connect to {name} timed out after {timeout:?}")))
            }
            Ok(opened) => opened,
        }
    }
}

/// A connection to an upstream, before HTTP.
enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

async fn handshake_http1<I>(io: I, upstream: String) -> Result<SendRequest<Body>, ProxyError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ProxyError::Connect(chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(upstream, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

async fn handshake_http2<I>(io: I, upstream: String) -> Result<http2::SendRequest<Body>, ProxyError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ProxyError::Connect(chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(upstream, error = %e, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}

/// The first address of `host` that accepts a connection.
async fn tcp_connect(host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

/// Closes connections idle for too long, every `period`, until the pool is gone.
async fn sweep(pool: Weak<Shared>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = pool.upgrade() else { return };
        let now = shared.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut idle = shared.idle.lock().unwrap_or_else(PoisonError::into_inner);
        for host in idle.iter_mut() {
            host.connections.retain(|c| now - c.tick < IDLE_TICKS && !c.sender.is_closed());
        }
        idle.retain(|h| !h.connections.is_empty());
        drop(idle);
        let mut multiplexed = shared.multiplexed.lock().unwrap_or_else(PoisonError::into_inner);
        multiplexed.retain(|m| now - m.tick < IDLE_TICKS && !m.sender.is_closed());
    }
}

/// Returns a connection to its pool once the response body on it has ended; dropped before that (a client that
/// went away mid-body), the connection is closed instead, as its remaining bytes would be in the way.
pub(crate) struct Checkin {
    slot: Option<(SendRequest<Body>, Arc<Shared>, Key)>,
}

impl std::fmt::Debug for Checkin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkin").field("pending", &self.slot.is_some()).finish()
    }
}

impl Checkin {
    /// The response body ended: the connection can carry the next request.
    pub(crate) fn done(&mut self) {
        if let Some((sender, shared, key)) = self.slot.take() {
            shared.keep(&key, [sender], End::Warm);
        }
    }
}

/// Which end of an upstream's idle stack a connection goes to.
#[derive(Clone, Copy)]
enum End {
    /// Taken first: a connection that just finished a response.
    Warm,
    /// Taken last: a connection that was not ready when tried.
    Cold,
}

impl Shared {
    /// Keeps `senders` as idle connections under `key`, up to `max_idle_per_host` (the rest are closed).
    fn keep(&self, key: &Key, senders: impl IntoIterator<Item = SendRequest<Body>>, end: End) {
        let tick = self.tick.load(Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let host = match idle.iter().position(|h| {
            h.key.authority == key.authority && Arc::ptr_eq(&h.key.transport, &key.transport)
        }) {
            Some(i) => &mut idle[i],
            None => {
                idle.push(HostIdle { key: key.clone(), connections: Vec::new() });
                let last = idle.len() - 1;
                &mut idle[last]
            }
        };
        for sender in senders {
            if host.connections.len() >= self.settings.max_idle_per_host {
                break;
            }
            let conn = Idle { sender, tick };
            match end {
                End::Warm => host.connections.push(conn),
                End::Cold => host.connections.insert(0, conn),
            }
        }
    }
}

fn upstream_error(e: &hyper::Error) -> ProxyError {
    ProxyError::Upstream(chain(e))
}

/// An error with its sources, `a: b: c`.
fn chain(e: &hyper::Error) -> String {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    /// Connections an upstream accepted and saw end.
    #[derive(Default)]
    struct Counts {
        accepted: AtomicUsize,
        closed: AtomicUsize,
    }

    impl Counts {
        fn get(&self) -> (usize, usize) {
            (self.accepted.load(Ordering::SeqCst), self.closed.load(Ordering::SeqCst))
        }
    }

    /// An HTTP/1.1 upstream answering `body` (with `Connection: close` when `close`), counting its connections.
    async fn upstream(body: &'static str, close: bool) -> (Upstream, Arc<Counts>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        if close {
                            r.headers_mut().insert(
                                http::header::CONNECTION,
                                http::HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    c.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (Upstream::plain(authority), counts)
    }

    fn pool(idle_timeout: Duration, max_idle_per_host: usize) -> UpstreamPool {
        UpstreamPool::new(PoolSettings {
            connect_timeout: Duration::from_secs(2),
            idle_timeout,
            max_idle_per_host,
        })
    }

    fn request(upstream: &Upstream) -> Request<Body> {
        Request::get("/x")
            .header(http::header::HOST, upstream.authority.as_str())
            .body(Body::empty())
            .unwrap()
    }

    /// Reads a response to its end and checks the connection in, as the gateway's response body does.
    async fn read(response: Response<Incoming>, mut checkin: Checkin) -> Bytes {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        checkin.done();
        body
    }

    /// One GET read to its end.
    async fn get(pool: &UpstreamPool, up: &Upstream) -> Bytes {
        let (response, checkin) = pool.send(up, request(up), false).await.unwrap();
        read(response, checkin).await
    }

    /// Lets the connection tasks run (a closed connection's end is seen on the next turn of the event loop).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (up, counts) = upstream("ok", false).await;
        let pool = pool(Duration::from_secs(60), 8);
        for _ in 0..5 {
            assert_eq!(get(&pool, &up).await, "ok");
        }
        assert_eq!(counts.get(), (1, 0));
    }

    #[tokio::test]
    async fn a_body_left_unread_closes_its_connection() {
        let (up, counts) = upstream("a body nobody reads", false).await;
        let pool = pool(Duration::from_secs(60), 8);
        let (response, checkin) = pool.send(&up, request(&up), false).await.unwrap();
        drop((response, checkin));
        assert_eq!(get(&pool, &up).await, "a body nobody reads");
        settle().await;
        assert_eq!(counts.get(), (2, 1));
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closes_is_not_reused() {
        let (up, counts) = upstream("bye", true).await;
        let pool = pool(Duration::from_secs(60), 8);
        for _ in 0..3 {
            assert_eq!(get(&pool, &up).await, "bye");
            settle().await;
        }
        assert_eq!(counts.get(), (3, 3));
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_idle_timeout() {
        let (up, counts) = upstream("ok", false).await;
        let pool = pool(Duration::from_millis(100), 8);
        get(&pool, &up).await;
        settle().await;
        assert_eq!(counts.get(), (1, 0), "kept while fresh");
        // Closed after between one and one and a half idle timeouts (plus the sweeper's first tick).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(counts.get(), (1, 1));
        assert_eq!(get(&pool, &up).await, "ok");
        assert_eq!(counts.get().0, 2);
    }

    #[tokio::test]
    async fn at_most_max_idle_connections_are_kept_per_upstream() {
        let (up, counts) = upstream("ok", false).await;
        let pool = pool(Duration::from_secs(60), 1);
        let (first, second) =
            tokio::join!(pool.send(&up, request(&up), false), pool.send(&up, request(&up), false));
        let ((r1, c1), (r2, c2)) = (first.unwrap(), second.unwrap());
        read(r1, c1).await;
        read(r2, c2).await;
        settle().await;
        assert_eq!(counts.get(), (2, 1));
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up = Upstream::plain(listener.local_addr().unwrap().to_string().parse().unwrap());
        drop(listener);
        let pool = pool(Duration::from_secs(60), 8);
        let e = pool.send(&up, request(&up), false).await.unwrap_err();
        assert!(
            matches!(e, ProxyError::Connect(ref d) if d.contains("connect to 127.0.0.1:")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn dropping_the_pool_stops_its_sweeper_and_closes_idle_connections() {
        let (up, counts) = upstream("ok", false).await;
        let pool = pool(Duration::from_millis(100), 8);
        let weak = Arc::downgrade(&pool.shared);
        get(&pool, &up).await;
        drop(pool);
        settle().await;
        assert!(weak.upgrade().is_none());
        assert_eq!(counts.get(), (1, 1));
    }

    #[tokio::test]
    async fn the_gateways_response_body_returns_the_connection_at_its_end() {
        let (up, counts) = upstream("through the gateway", false).await;
        let route = crate::config::Route {
            name: "r".into(),
            prefix: "/".into(),
            upstream: up.clone(),
            policy: crate::config::Policy::Public,
            rewrite: None,
            forward_session_cookie: false,
            preserve_host: false,
            assertion: false,
            timeout: Duration::from_secs(5),
            accept_bearer: false,
            max_body_size: None,
            upstream_limit: None,
        };
        let pool = pool(Duration::from_secs(60), 8);
        let peer = super::super::forward::Peer::new("127.0.0.1:1".parse().unwrap());
        let forward = super::super::forward::Forward {
            pool: &pool,
            route: &route,
            peer: &peer,
            trusted: false,
            cookie_name: None,
            login_cookie_name: None,
            body_timeout: Duration::from_secs(10),
        };
        for _ in 0..3 {
            let response = forward.send(request(&up), &[]).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "through the gateway");
        }
        assert_eq!(counts.get(), (1, 0));
    }

    #[tokio::test]
    async fn a_connection_still_sending_a_request_body_is_not_waited_for() {
        let (up, counts) = upstream("answered early", false).await;
        let pool = pool(Duration::from_secs(60), 8);
        // The upstream answers without reading the body; the client never finishes sending it.
        let endless =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let first = Request::post("/upload")
            .header(http::header::HOST, up.authority.as_str())
            .header(http::header::TRANSFER_ENCODING, "chunked")
            .body(endless)
            .unwrap();
        let (response, checkin) = pool.send(&up, first, false).await.unwrap();
        assert_eq!(read(response, checkin).await, "answered early");
        let second =
            tokio::time::timeout(Duration::from_secs(2), pool.send(&up, request(&up), false))
                .await
                .expect("the second request must not wait for the first one's body");
        let (response, checkin) = second.unwrap();
        assert_eq!(read(response, checkin).await, "answered early");
        assert_eq!(counts.get().0, 2);
    }
}
