//! The proxy leg: one client request to the upstream and back, streamed both ways — hop-by-hop headers removed,
//! `X-Forwarded-*` set per the trusted-proxies list, the session cookie withheld from non-Rails upstreams, the
//! identity headers added, a time limit on the response head and then between two chunks of the response body,
//! WebSocket upgrades tunnelled.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;

use super::error::ProxyError;
use super::headers::{remove_cookie, strip_hop_by_hop, wants_upgrade};
use super::pool::{Checkin, UpstreamPool};
use super::router::upstream_path;
use super::Body;
use crate::config::Route;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The client at the other end of a connection, with its address as `X-Forwarded-For` gives it (formatted once
/// per connection rather than per request).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    ip: HeaderValue,
    /// The connection came in over TLS (the gateway terminated it): the scheme the client used is `https`.
    pub(crate) tls: bool,
    /// The connection's turn under `max_connections`, passed on to a WebSocket tunnel made from it.
    hold: Option<Arc<super::server::ConnectionHold>>,
}

impl Peer {
    pub(crate) fn new(addr: SocketAddr) -> Peer {
        let ip = HeaderValue::try_from(addr.ip().to_canonical().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer { addr, ip, tls: false, hold: None }
    }

    /// The same peer, holding its connection's turn.
    pub(crate) fn holding(mut self, hold: Arc<super::server::ConnectionHold>) -> Peer {
        self.hold = Some(hold);
        self
    }

    /// The same peer, over TLS.
    pub(crate) fn over_tls(mut self) -> Peer {
        self.tls = true;
        self
    }

    /// `http` or `https`, as the client reached the gateway.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// One request's way to its upstream.
pub(crate) struct Forward<'a> {
    pub(crate) pool: &'a UpstreamPool,
    pub(crate) route: &'a Route,
    pub(crate) peer: &'a Peer,
    /// The peer is a trusted proxy: its `X-Forwarded-*` headers are kept and extended.
    pub(crate) trusted: bool,
    /// The session cookie's name, withheld unless the route forwards it.
    pub(crate) cookie_name: Option<&'a str>,
    /// Rails 8 authentication's signed cookie, removed with the session cookie.
    pub(crate) login_cookie_name: Option<&'a str>,
    /// The longest a client may pause while sending a request body (`[server] body_timeout`).
    pub(crate) body_timeout: Duration,
}

impl Forward<'_> {
    pub(crate) async fn send(
        &self,
        mut req: Request<Body>,
        identity: &[(HeaderName, HeaderValue)],
    ) -> Result<Response<Body>, ProxyError> {
        let upgrade = wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let path = upstream_path(self.route, req.uri())?;
        let host =
            req.headers().get(header::HOST).cloned().or_else(|| {
                req.uri().authority().and_then(|a| HeaderValue::try_from(a.as_str()).ok())
            });
        let (mut parts, body) = req.into_parts();
        // The route's body limit: a declared length over it is refused before anything is sent; a streamed body is
        // cut off when it passes the limit, and the request answered 413.
        if let Some(max) = self.route.max_body_size {
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Err(ProxyError::TooLarge(max));
            }
        }
        let fault = Arc::new(AtomicU8::new(BODY_OK));
        let body = if http_body::Body::is_end_stream(&body) {
            body
        } else {
            Body::new(ClientBody {
                inner: body,
                remaining: self.route.max_body_size,
                clock: IdleClock::new(self.body_timeout),
                fault: fault.clone(),
            })
        };
        let client_fault = |e: ProxyError| match fault.load(Ordering::Relaxed) {
            BODY_TOO_LARGE => ProxyError::TooLarge(self.route.max_body_size.unwrap_or(0)),
            BODY_STALLED => ProxyError::BodyTimeout(self.body_timeout),
            _ => e,
        };
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers, upgrade);
        if !self.route.forward_session_cookie {
            for name in [self.cookie_name, self.login_cookie_name].into_iter().flatten() {
                remove_cookie(headers, name);
            }
        }
        forwarded(headers, self.peer, self.trusted, host.as_ref());
        let upstream_host = match (self.route.preserve_host, host) {
            (true, Some(h)) => h,
            _ => self.route.upstream.host.clone(),
        };
        headers.insert(header::HOST, upstream_host);
        for (name, value) in identity {
            headers.insert(name.clone(), value.clone());
        }
        parts.uri = http::Uri::from(path);
        parts.version = Version::HTTP_11;
        let request = Request::from_parts(parts, body);
        // The route's limit on requests at its upstream: a turn within `queue_timeout`, held until the response body
        // ends (or the upgraded connection closes).
        let turn = match &self.route.upstream_limit {
            None => None,
            Some((permits, wait)) => {
                match tokio::time::timeout(*wait, permits.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => return Err(ProxyError::Busy(*wait)),
                }
            }
        };
        let sent = self.pool.send(&self.route.upstream, request, upgrade);
        let (mut response, checkin) = match tokio::time::timeout(self.route.timeout, sent).await {
            Err(_) => return Err(client_fault(ProxyError::Timeout(self.route.timeout))),
            Ok(Err(e)) => return Err(client_fault(e)),
            Ok(Ok(sent)) => sent,
        };
        if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) =
            (client_upgrade, response.status())
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let route = self.route.name.clone();
            let hold = self.peer.hold.clone();
            tokio::spawn(async move {
                let (_turn, _hold) = (turn, hold);
                match tokio::join!(client_upgrade, upstream_upgrade) {
                    (Ok(client), Ok(upstream)) => {
                        let (mut client, mut upstream) =
                            (TokioIo::new(client), TokioIo::new(upstream));
                        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                            Ok((up, down)) => {
                                tracing::debug!(route, up, down, "upgraded connection closed")
                            }
                            Err(e) => {
                                tracing::debug!(route, error = %e, "upgraded connection ended")
                            }
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::debug!(route, error = %e, "upgrade failed")
                    }
                }
            });
            let (mut parts, _) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers, true);
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        let mut body = UpstreamBody {
            inner: body,
            clock: IdleClock::new(self.route.timeout),
            checkin,
            _turn: turn,
        };
        body.check_end();
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// How long a body stream may wait for its next chunk. The clock starts when the stream first has to wait after a
/// chunk (not when the chunk came, so time the reader itself took never counts as the sender's silence) and stops
/// when the next chunk comes; its timer is made on the first wait and reset after, never allocated again.
struct IdleClock {
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer runs for the current wait.
    armed: bool,
}

impl IdleClock {
    fn new(timeout: Duration) -> IdleClock {
        IdleClock { timeout, sleep: None, armed: false }
    }

    /// A chunk came: the next wait starts its own clock.
    fn data_came(&mut self) {
        self.armed = false;
    }

    /// Called when the stream has to wait: ready once it has waited `timeout`.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let timeout = self.timeout;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !self.armed {
            sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
            self.armed = true;
        }
        sleep.as_mut().poll(cx)
    }
}

const BODY_OK: u8 = 0;
const BODY_TOO_LARGE: u8 = 1;
const BODY_STALLED: u8 = 2;

/// The client's request body on its way to the upstream, cut off (an error, which ends the upstream request) when
/// it passes the route's `max_body_size` (answered 413) or when the client sends nothing for `body_timeout`
/// (answered 408: nginx's `client_body_timeout`). `fault` tells the answer which it was.
struct ClientBody {
    inner: Body,
    /// Bytes still allowed, with a `max_body_size`.
    remaining: Option<u64>,
    /// `body_timeout`, while the client is silent.
    clock: IdleClock,
    fault: Arc<AtomicU8>,
}

impl ClientBody {
    fn fail(
        &self,
        fault: u8,
        message: String,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.fault.store(fault, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(message))))
    }
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                ready!(this.clock.poll_expired(cx));
                let idle = this.clock.timeout;
                return this.fail(BODY_STALLED, format!("no request body for {idle:?}"));
            }
        };
        this.clock.data_came();
        if let (Some(Ok(frame)), Some(remaining)) = (&frame, &mut this.remaining) {
            if let Some(data) = frame.data_ref() {
                let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                if n > *remaining {
                    return this.fail(BODY_TOO_LARGE, "request body over the route's limit".into());
                }
                *remaining -= n;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The response body as it streams from the upstream, failing (and so closing the client's connection) when the
/// upstream sends nothing for `timeout` — nginx's `proxy_read_timeout`, with the route's `timeout`. A body that is
/// already there never starts a timer. Its end returns the upstream connection to the pool.
struct UpstreamBody {
    inner: hyper::body::Incoming,
    /// The route's `timeout`, while the upstream is silent.
    clock: IdleClock,
    checkin: Checkin,
    /// The route's turn at its upstream (`max_connections`), given back with the body.
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl UpstreamBody {
    /// Returns the connection as soon as the body has ended (for an empty body, before the first poll).
    fn check_end(&mut self) {
        if http_body::Body::is_end_stream(&self.inner) {
            self.checkin.done();
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.clock.data_came();
                match &frame {
                    None => this.checkin.done(),
                    Some(Ok(_)) => this.check_end(),
                    Some(Err(_)) => {}
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.clock.poll_expired(cx));
                let timeout = this.clock.timeout;
                tracing::warn!(timeout = ?timeout, "the upstream stopped sending the response body");
                Poll::Ready(Some(Err(format!("no response body data for {timeout:?}").into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `X-Forwarded-For` (the peer appended to a trusted proxy's list, or alone), `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (a trusted proxy's kept, otherwise ours). From an untrusted peer, `Forwarded` and
/// `X-Real-IP` are dropped too.
fn forwarded(headers: &mut HeaderMap, peer: &Peer, trusted: bool, host: Option<&HeaderValue>) {
    let mut chain = String::new();
    if trusted {
        for v in headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(v.trim());
        }
    } else {
        headers.remove(header::FORWARDED);
        headers.remove(X_REAL_IP);
    }
    let value = if chain.is_empty() {
        Ok(peer.ip.clone())
    } else {
        chain.push_str(", ");
        chain.push_str(peer.ip.to_str().unwrap_or("unknown"));
        HeaderValue::try_from(chain)
    };
    if let Ok(v) = value {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(peer.scheme()));
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match host {
            Some(h) => headers.insert(X_FORWARDED_HOST, h.clone()),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::new("10.0.0.7:5555".parse().unwrap())
    }

    #[test]
    fn untrusted_peers_cannot_forge_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("evil.test"));
        h.insert(header::FORWARDED, HeaderValue::from_static("for=1.2.3.4"));
        forwarded(&mut h, &peer(), false, Some(&HeaderValue::from_static("app.test")));
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.7");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "app.test");
        assert!(!h.contains_key(header::FORWARDED));
    }

    #[test]
    fn trusted_proxies_are_extended() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("5.6.7.8"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        forwarded(&mut h, &peer(), true, Some(&HeaderValue::from_static("app.test")));
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 5.6.7.8, 10.0.0.7");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "app.test");
        let mut h = HeaderMap::new();
        forwarded(&mut h, &Peer::new("[::ffff:127.0.0.1]:1".parse().unwrap()), true, None);
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.1");
    }
}
