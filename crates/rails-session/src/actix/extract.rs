use std::fmt;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::{ready, LocalBoxFuture, Ready};

use crate::csrf::CsrfToken;
use crate::response::Answer;
use crate::session::Session;
use crate::user::CurrentUser;

/// Why an extractor or middleware of this crate answered instead of the handler: 401, 422, 503 or 500, with a
/// JSON body.
#[derive(Debug)]
pub struct SessionRejection(pub(crate) Answer);

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.status, self.0.body)
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        answer_response(&self.0)
    }
}

pub(crate) fn answer_response(answer: &Answer) -> HttpResponse {
    let status =
        StatusCode::from_u16(answer.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(answer.body.clone())
}

fn session(req: &HttpRequest) -> Result<Session, SessionRejection> {
    req.extensions()
        .get::<Session>()
        .cloned()
        .ok_or_else(|| SessionRejection(Answer::missing_layer()))
}

impl FromRequest for Session {
    type Error = SessionRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session(req))
    }
}

/// `CurrentUser<U>`: the signed-in user, or `401`.
impl<U: Clone + Send + Sync + 'static> FromRequest for CurrentUser<U> {
    type Error = SessionRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = session(req);
        Box::pin(async move {
            let session = session?;
            match session.current_user::<U>().await {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(SessionRejection(Answer::unauthorized(session.config()))),
                Err(e) => Err(SessionRejection(Answer::auth_error(&e))),
            }
        })
    }
}

/// The signed-in user if any — `None` when nobody is signed in, but still `503` when the user cannot be loaded
/// (unlike actix-web's `Option<CurrentUser<U>>`).
#[derive(Clone, Debug)]
pub struct MaybeUser<U>(pub Option<CurrentUser<U>>);

impl<U: Clone + Send + Sync + 'static> FromRequest for MaybeUser<U> {
    type Error = SessionRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = session(req);
        Box::pin(async move {
            let session = session?;
            session
                .current_user::<U>()
                .await
                .map(MaybeUser)
                .map_err(|e| SessionRejection(Answer::auth_error(&e)))
        })
    }
}

impl FromRequest for CsrfToken {
    type Error = SessionRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = session(req);
        Box::pin(async move { Ok(CsrfToken(session?.csrf_token().await)) })
    }
}
