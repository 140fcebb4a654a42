//! The axum extractors: `GatewayUser` (401 without a valid assertion) and `Option<GatewayUser>` (`None` without
//! a token, still 401 for a refused one).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::HeaderValue;

use super::error::AssertionError;
use super::rejection::{find_token, Found, GatewayAuthRejection, ASSERTION_HEADER};
use super::user::GatewayUser;
use super::verifier::AssertionVerifier;

/// `GatewayUser`: the user of the request's gateway assertion, or a 401 (see [`GatewayAuthRejection`]). The
/// verifier comes from the request extensions ([`super::GatewayAuthLayer`] or `axum::Extension`).
impl<S: Sync> FromRequestParts<S> for GatewayUser {
    type Rejection = GatewayAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match user(parts).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(GatewayAuthRejection::MissingToken),
            Err(rejection) => Err(rejection),
        }
    }
}

/// `Option<GatewayUser>`: `None` when the request carries no token; a token that does not verify is still
/// refused (401, or 503 when the keys are unavailable).
impl<S: Sync> OptionalFromRequestParts<S> for GatewayUser {
    type Rejection = GatewayAuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        user(parts).await
    }
}

async fn user(parts: &Parts) -> Result<Option<GatewayUser>, GatewayAuthRejection> {
    let result = verify(parts).await;
    if let Err(rejection) = &result {
        rejection.log();
    }
    result
}

async fn verify(parts: &Parts) -> Result<Option<GatewayUser>, GatewayAuthRejection> {
    let verifier =
        parts.extensions.get::<AssertionVerifier>().ok_or(GatewayAuthRejection::MissingVerifier)?;
    let found = find_token(
        parts.headers.get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes),
        parts.headers.get(ASSERTION_HEADER).map(HeaderValue::as_bytes),
    );
    match found {
        Found::Missing => Ok(None),
        Found::Unreadable => {
            Err(AssertionError::Malformed("the token is not visible ASCII").into())
        }
        Found::Token(token) => Ok(Some(verifier.verify(token).await?)),
    }
}

impl IntoResponse for GatewayAuthRejection {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.body_text()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if let Some(challenge) = self.www_authenticate().and_then(|c| HeaderValue::try_from(c).ok())
        {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
