//! What can go wrong on the way through, by source (as pingora classifies errors): the upstream (unreachable,
//! slow, broken), the downstream client (a bad request) or the gateway itself. Each has a status and a short
//! text body, in the axum rejection shape (`status()`, `body_text()`, `into_response()`).

use http::{header, HeaderValue, Response, StatusCode};

use super::Body;

/// Where an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Upstream,
    Downstream,
    Internal,
}

/// A request that could not be proxied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// No connection to the upstream (refused, unreachable, connect timeout).
    #[error("upstream unreachable: {0}")]
    Connect(String),
    /// The TLS handshake with an `https://` upstream failed: its certificate does not verify under the route's
    /// roots, it refused the client certificate, or it did not agree to the protocol.
    #[error("upstream TLS failed: {0}")]
    Tls(String),
    /// The upstream did not send a response head in time.
    #[error("upstream timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The upstream broke the exchange (reset, invalid response).
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// The client's request cannot be forwarded (bad URI).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// No route for this path.
    #[error("no route")]
    NoRoute,
    /// The gateway failed (should not happen).
    #[error("internal error: {0}")]
    Internal(String),
    /// The client paused longer than `body_timeout` while sending the request body.
    #[error("request body stalled for {0:?}")]
    BodyTimeout(std::time::Duration),
    /// The request body is larger than the route's `max_body_size`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// The upstream is at the route's `max_connections` and no turn came within `queue_timeout`.
    #[error("upstream busy: no turn within {0:?}")]
    Busy(std::time::Duration),
}

impl ProxyError {
    pub(crate) fn source_kind(&self) -> Source {
        match self {
            ProxyError::Connect(_)
            | ProxyError::Tls(_)
            | ProxyError::Timeout(_)
            | ProxyError::Upstream(_)
            | ProxyError::Busy(_) => Source::Upstream,
            ProxyError::BadRequest(_)
            | ProxyError::NoRoute
            | ProxyError::TooLarge(_)
            | ProxyError::BodyTimeout(_) => Source::Downstream,
            ProxyError::Internal(_) => Source::Internal,
        }
    }

    /// The metrics label of an upstream error.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) => "connect",
            ProxyError::Tls(_) => "tls",
            ProxyError::Timeout(_) => "timeout",
            ProxyError::Upstream(_) => "upstream",
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::NoRoute => "no_route",
            ProxyError::Internal(_) => "internal",
            ProxyError::TooLarge(_) => "too_large",
            ProxyError::BodyTimeout(_) => "body_timeout",
            ProxyError::Busy(_) => "busy",
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::Connect(_) | ProxyError::Tls(_) | ProxyError::Upstream(_) => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn body_text(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) | ProxyError::Tls(_) | ProxyError::Upstream(_) => {
                "502 Bad Gateway: the upstream service is unavailable\n"
            }
            ProxyError::Timeout(_) => {
                "504 Gateway Timeout: the upstream service did not answer in time\n"
            }
            ProxyError::BadRequest(_) => "400 Bad Request\n",
            ProxyError::NoRoute => "404 Not Found\n",
            ProxyError::Internal(_) => "500 Internal Server Error\n",
            ProxyError::TooLarge(_) => "413 Payload Too Large\n",
            ProxyError::BodyTimeout(_) => {
                "408 Request Timeout: the request body stopped arriving\n"
            }
            ProxyError::Busy(_) => {
                "503 Service Unavailable: the upstream service is at its connection limit\n"
            }
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let mut r = text(self.status(), self.body_text());
        // The rest of the request body is still on the connection (or never coming): it cannot carry another
        // request, so it closes after the answer instead of waiting for bytes nobody will read.
        if matches!(self, ProxyError::TooLarge(_) | ProxyError::BodyTimeout(_)) {
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// A short plain-text answer.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 401, as Devise words it.
pub(crate) fn unauthorized() -> Response<Body> {
    json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"You need to sign in or sign up before continuing."}"#,
    )
}

/// 503 when the User API is down (fail closed).
pub(crate) fn user_service_unavailable() -> Response<Body> {
    json(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"user service unavailable"}"#)
}

/// 503 when the server-side session store is down or too slow (fail closed: nobody can say who is signed in).
pub(crate) fn session_store_unavailable() -> Response<Body> {
    json(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"session store unavailable"}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_sources() {
        assert_eq!(ProxyError::Connect("x".into()).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            ProxyError::Timeout(std::time::Duration::from_secs(1)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::Timeout(std::time::Duration::from_secs(1)).source_kind(),
            Source::Upstream
        );
        assert_eq!(ProxyError::NoRoute.source_kind(), Source::Downstream);
        assert!(ProxyError::Upstream("reset".into()).body_text().len() < 80);
    }
}
