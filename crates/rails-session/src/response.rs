//! The error answers the layers and extractors give, framework-neutral: status and JSON body.

use http::{header, HeaderValue, Response, StatusCode};

use crate::config::SessionConfig;
use crate::user::AuthError;

/// A JSON error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

impl Answer {
    fn json(status: StatusCode, error: &str) -> Self {
        Answer { status, body: serde_json::json!({ "error": error }).to_string() }
    }

    /// 401: nobody is signed in.
    pub(crate) fn unauthorized(config: &SessionConfig) -> Self {
        Answer { status: StatusCode::UNAUTHORIZED, body: config.unauthorized_body.to_string() }
    }

    /// 503 / 500 for a user that could not be determined.
    pub(crate) fn auth_error(error: &AuthError) -> Self {
        match error {
            AuthError::Unavailable(_) => {
                Answer::json(StatusCode::SERVICE_UNAVAILABLE, "user service unavailable")
            }
            AuthError::SessionStoreUnavailable(_) => {
                Answer::json(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
            }
            AuthError::NoLoader(_) => {
                tracing::error!(error = %error, "rails-session is misconfigured");
                Answer::json(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
        }
    }

    /// 500: an extractor or guard ran without the session layer in front of it.
    pub(crate) fn missing_layer() -> Self {
        tracing::error!(
            "rails-session: no session in the request extensions; add the session layer (SessionLayer / \
             rails_session::actix::RailsSession) outside of this handler, guard or CSRF layer"
        );
        Answer::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error: the session layer is missing",
        )
    }

    /// 422: `ActionController::InvalidAuthenticityToken`.
    pub(crate) fn invalid_authenticity_token() -> Self {
        Answer::json(StatusCode::UNPROCESSABLE_ENTITY, "Can't verify CSRF token authenticity.")
    }

    /// 503: the session store is down, so the session's CSRF token is unknown.
    pub(crate) fn session_store_unavailable() -> Self {
        Answer::json(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
    }

    /// 413: a body too large to look for the token in.
    pub(crate) fn payload_too_large() -> Self {
        Answer::json(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    }

    /// 400: the body could not be read.
    pub(crate) fn bad_body() -> Self {
        Answer::json(StatusCode::BAD_REQUEST, "request body could not be read")
    }

    pub(crate) fn into_response<B: From<String>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    }
}
