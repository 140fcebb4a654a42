//! The actix-web extractor: `GatewayUser`, with the verifier from `app_data` (`web::Data<AssertionVerifier>` or
//! a bare `AssertionVerifier`).

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::error::AssertionError;
use super::rejection::{find_token, Found, GatewayAuthRejection, ASSERTION_HEADER};
use super::user::GatewayUser;
use super::verifier::AssertionVerifier;

/// `GatewayUser`: the user of the request's gateway assertion, or a 401 (see [`GatewayAuthRejection`]).
/// actix-web's own `Option<GatewayUser>` turns every refusal into `None`.
impl FromRequest for GatewayUser {
    type Error = GatewayAuthRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req
            .app_data::<web::Data<AssertionVerifier>>()
            .map(|data| data.get_ref().clone())
            .or_else(|| req.app_data::<AssertionVerifier>().cloned());
        let headers = req.headers();
        let token = match find_token(
            headers.get_all(AUTHORIZATION).map(HeaderValue::as_bytes),
            headers.get(ASSERTION_HEADER).map(HeaderValue::as_bytes),
        ) {
            Found::Token(token) => Ok(token.to_owned()),
            Found::Unreadable => {
                Err(AssertionError::Malformed("the token is not visible ASCII").into())
            }
            Found::Missing => Err(GatewayAuthRejection::MissingToken),
        };
        Box::pin(async move {
            let result = match (verifier, token) {
                (None, _) => Err(GatewayAuthRejection::MissingVerifier),
                (Some(_), Err(rejection)) => Err(rejection),
                (Some(verifier), Ok(token)) => verifier.verify(&token).await.map_err(Into::into),
            };
            if let Err(rejection) = &result {
                rejection.log();
            }
            result
        })
    }
}

impl ResponseError for GatewayAuthRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CONTENT_TYPE, "application/json; charset=utf-8"));
        if let Some(challenge) = self.www_authenticate() {
            response.insert_header((WWW_AUTHENTICATE, challenge));
        }
        response.body(self.body_text())
    }
}
