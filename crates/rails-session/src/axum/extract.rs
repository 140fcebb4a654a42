use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use super::rejection::SessionRejection;
use crate::csrf::CsrfToken;
use crate::response::Answer;
use crate::session::Session;
use crate::user::CurrentUser;

impl<S: Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(SessionRejection::MissingSessionLayer)
    }
}

/// `CurrentUser<U>`: the signed-in user, or `401`. `U` is [`crate::Identity`] (always available) or the `User`
/// of the configured [`crate::LoadUser`].
impl<S: Sync, U: Clone + Send + Sync + 'static> FromRequestParts<S> for CurrentUser<U> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        match session.current_user::<U>().await? {
            Some(user) => Ok(user),
            None => Err(SessionRejection::Unauthorized {
                body: Answer::unauthorized(session.config()).body,
            }),
        }
    }
}

/// `Option<CurrentUser<U>>`: `None` when nobody is signed in; still `503` when the user cannot be loaded.
impl<S: Sync, U: Clone + Send + Sync + 'static> OptionalFromRequestParts<S> for CurrentUser<U> {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(session.current_user::<U>().await?)
    }
}

impl<S: Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(CsrfToken(session.csrf_token().await))
    }
}
