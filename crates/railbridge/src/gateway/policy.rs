//! Who may pass: for each request on a route, the path check, forged identity headers stripped, a bearer access
//! token (on `accept_bearer` routes), the identity cache, then the session layer and the route's policy; a request
//! that passes goes to [`super::forward`] with its identity headers, one that does not gets its short answer.
//! `/_railbridge/auth` asks the same question for an edge proxy.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use rails_session::Session;
use tower::{Layer as _, Service, ServiceExt as _};

use super::error::{
    self, session_store_unavailable, text, unauthorized, user_service_unavailable, ProxyError,
};
use super::forward::{Forward, Peer};
use super::headers::{self, session_cookie_raw, strip_identity};
use super::identity::{self, IdentityHeaders, Outcome};
use super::router::{check_path, RouteState};
use super::{Body, IdentityList, State};
use crate::config::{Policy, Route};

/// What the route handler does once it knows who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Proxy to the route's upstream.
    Proxy,
    /// Answer 200 with the identity headers, or 401 (`/_railbridge/auth`).
    Auth,
}

/// `/_railbridge/auth`: the policy of the route the original URI (`X-Forwarded-Uri` from Traefik,
/// `X-Original-URI` as nginx is usually configured, or the path after `/_railbridge/auth` as Envoy's
/// `path_prefix` sends it) would take; signed-in when there is none.
pub(crate) async fn forward_auth(
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
        body_timeout: state.config.server.body_timeout,
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

pub(crate) async fn proxy(
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
