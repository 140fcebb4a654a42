use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::response::Answer;

/// Why an extractor of this crate rejected a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a [`crate::SessionLayer`] (a 500 that names the fix in the log).
    #[error("the session layer is missing: add `.layer(SessionLayer::new(config))` to the router")]
    MissingSessionLayer,
    /// Nobody is signed in (401, with the configured JSON body).
    #[error("not signed in")]
    Unauthorized {
        /// The JSON body.
        body: String,
    },
    /// The user could not be loaded (503), or the extractor asks for a user type no loader produces (500).
    #[error(transparent)]
    Auth(#[from] crate::user::AuthError),
}

impl SessionRejection {
    fn answer(&self) -> Answer {
        match self {
            SessionRejection::MissingSessionLayer => Answer::missing_layer(),
            SessionRejection::Unauthorized { body } => {
                Answer { status: StatusCode::UNAUTHORIZED, body: body.clone() }
            }
            SessionRejection::Auth(e) => Answer::auth_error(e),
        }
    }

    /// The status code of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.answer().status
    }

    /// The body of the answer (JSON).
    #[must_use]
    pub fn body_text(&self) -> String {
        self.answer().body
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.answer().into_response()
    }
}
