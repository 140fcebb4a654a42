//! Finding the assertion in a request, and the answer when there is none or it does not verify — the same on
//! axum and actix-web.

use http::StatusCode;

use super::error::AssertionError;

/// The header the gateway forwards its assertion in.
pub const ASSERTION_HEADER: &str = "x-railbridge-assertion";

/// Why the [`GatewayUser`](super::GatewayUser) extractor answered instead of the handler.
///
/// | case | status | body | `WWW-Authenticate` |
/// |---|---|---|---|
/// | no token | 401 | `{"error":"missing_token"}` | `Bearer` |
/// | refused token | 401 | `{"error":"invalid_token","reason":"<reason>"}` | `Bearer error="invalid_token", error_description="<reason>"` |
/// | keys unavailable | 503 | `{"error":"unavailable","reason":"keys_unavailable"}` | — |
/// | no verifier | 500 | `{"error":"internal server error: …"}` (the fix is logged) | — |
///
/// `<reason>` is [`AssertionError::reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayAuthRejection {
    /// No [`AssertionVerifier`](super::AssertionVerifier) reachable from the request (500).
    #[error(
        "no AssertionVerifier for this request: add `.layer(GatewayAuthLayer::new(verifier))` (axum) or \
         `.app_data(web::Data::new(verifier))` (actix-web)"
    )]
    MissingVerifier,
    /// Neither `X-Railbridge-Assertion` nor `Authorization: Bearer …` (401).
    #[error("no bearer token and no X-Railbridge-Assertion header")]
    MissingToken,
    /// The token was refused (401), or the keys to check it could not be loaded (503).
    #[error(transparent)]
    Invalid(#[from] AssertionError),
}

impl GatewayAuthRejection {
    /// The status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayAuthRejection::MissingVerifier => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayAuthRejection::Invalid(AssertionError::KeysUnavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayAuthRejection::MissingToken | GatewayAuthRejection::Invalid(_) => {
                StatusCode::UNAUTHORIZED
            }
        }
    }

    /// The JSON body of the answer.
    #[must_use]
    pub fn body_text(&self) -> String {
        let body = match self {
            GatewayAuthRejection::MissingVerifier => serde_json::json!({
                "error": "internal server error: the gateway auth layer is missing"
            }),
            GatewayAuthRejection::MissingToken => serde_json::json!({ "error": "missing_token" }),
            GatewayAuthRejection::Invalid(e @ AssertionError::KeysUnavailable(_)) => {
                serde_json::json!({ "error": "unavailable", "reason": e.reason() })
            }
            GatewayAuthRejection::Invalid(e) => {
                serde_json::json!({ "error": "invalid_token", "reason": e.reason() })
            }
        };
        body.to_string()
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3).
    #[must_use]
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            GatewayAuthRejection::MissingToken => Some("Bearer".into()),
            GatewayAuthRejection::Invalid(AssertionError::KeysUnavailable(_))
            | GatewayAuthRejection::MissingVerifier => None,
            GatewayAuthRejection::Invalid(e) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                e.reason()
            )),
        }
    }

    #[cfg(any(feature = "axum", feature = "actix-web"))]
    /// Logs the rejection: the misconfiguration as an error, unavailable keys as a warning, refused tokens at
    /// debug level (clients can cause those at will).
    pub(crate) fn log(&self) {
        match self {
            GatewayAuthRejection::MissingVerifier => tracing::error!("rails-session: {self}"),
            GatewayAuthRejection::Invalid(e @ AssertionError::KeysUnavailable(_)) => {
                tracing::warn!(error = %e, "gateway assertion not checked");
            }
            GatewayAuthRejection::Invalid(e) => {
                tracing::debug!(reason = e.reason(), error = %e, "gateway assertion refused");
            }
            GatewayAuthRejection::MissingToken => {}
        }
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// What a request carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    Token(&'a str),
    /// A bearer token or assertion header that is not visible ASCII.
    Unreadable,
    Missing,
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// The token from `X-Railbridge-Assertion`, or else from the first `Authorization: Bearer <token>`. The gateway's
/// header first: the gateway strips any a client sends and sets its own, while `Authorization` comes from the client
/// (a token meant for another audience, or one the gateway has revoked, must not displace the gateway's word).
pub(crate) fn find_token<'a>(
    authorization: impl IntoIterator<Item = &'a [u8]>,
    assertion: Option<&'a [u8]>,
) -> Found<'a> {
    if let Some(token) = assertion.map(trim).filter(|t| !t.is_empty()) {
        return readable(token);
    }
    for value in authorization {
        let value = trim(value);
        let Some(space) = value.iter().position(|b| *b == b' ') else { continue };
        let (scheme, token) = value.split_at(space);
        if scheme.eq_ignore_ascii_case(b"bearer") {
            return readable(trim(token));
        }
    }
    Found::Missing
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
fn readable(token: &[u8]) -> Found<'_> {
    if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
        return Found::Unreadable;
    }
    std::str::from_utf8(token).map_or(Found::Unreadable, Found::Token)
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "axum", feature = "actix-web"))]
    #[test]
    fn the_gateway_header_first_then_bearer() {
        let a: &[u8] = b"a.b.c";
        assert_eq!(find_token([&b"Bearer a.b.c"[..]], None), Found::Token("a.b.c"));
        assert_eq!(
            find_token([&b"bearer   t "[..]], Some(a)),
            Found::Token("a.b.c"),
            "the gateway's header wins"
        );
        assert_eq!(find_token([&b"BEARER t"[..]], None), Found::Token("t"));
        assert_eq!(find_token([&b"Basic dXNlcjpw"[..]], Some(a)), Found::Token("a.b.c"));
        assert_eq!(find_token([&b"Basic dXNlcjpw"[..], b"Bearer t"], None), Found::Token("t"));
        assert_eq!(find_token([], Some(&b" a.b.c "[..])), Found::Token("a.b.c"));
        assert_eq!(
            find_token([&b"Bearer t"[..]], Some(&b"  "[..])),
            Found::Token("t"),
            "an empty header is none"
        );
        assert_eq!(find_token([&b"Bearer x y"[..]], None), Found::Unreadable);
        assert_eq!(find_token([&b"Bearer \xff"[..]], None), Found::Unreadable);
        assert_eq!(find_token([&b"Bearer"[..]], None), Found::Missing);
        assert_eq!(find_token([], None), Found::Missing);
    }

    #[test]
    fn answers() {
        let r = GatewayAuthRejection::Invalid(AssertionError::Expired);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.body_text(), r#"{"error":"invalid_token","reason":"expired"}"#);
        assert_eq!(
            r.www_authenticate().unwrap(),
            r#"Bearer error="invalid_token", error_description="expired""#
        );
        let r = GatewayAuthRejection::Invalid(AssertionError::KeysUnavailable("down".into()));
        assert_eq!((r.status(), r.www_authenticate()), (StatusCode::SERVICE_UNAVAILABLE, None));
        assert_eq!(GatewayAuthRejection::MissingToken.body_text(), r#"{"error":"missing_token"}"#);
        assert_eq!(
            GatewayAuthRejection::MissingVerifier.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
