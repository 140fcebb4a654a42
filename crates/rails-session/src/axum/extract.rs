use std::future::{ready, Future};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use futures_util::future::Either;
use http::request::Parts;

use super::rejection::SessionRejection;
use crate::csrf::CsrfToken;
use crate::response::Answer;
use crate::session::Session;
use crate::user::{CurrentUser, Memo};

impl<S: Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        ready(session_in(parts).cloned())
    }
}

/// The request's session, borrowed: the synchronous paths need no handle of their own.
fn session_in(parts: &Parts) -> Result<&Session, SessionRejection> {
    parts.extensions.get::<Session>().ok_or(SessionRejection::MissingSessionLayer)
}

/// `CurrentUser<U>`: the signed-in user, or `401`. `U` is [`crate::Identity`] (always available) or the `User`
/// of the configured [`crate::LoadUser`].
///
/// `CurrentUser<Identity>` from the cookie store is answered before the future is polled (nothing to wait for);
/// only a loader or an asynchronous store gets a future of its own (boxed: a handler's future holds its
/// extractors' futures, and the small one is the common one).
impl<S: Sync, U: Clone + Send + Sync + 'static> FromRequestParts<S> for CurrentUser<U> {
    type Rejection = SessionRejection;

    fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let session = match session_in(parts) {
            Ok(session) => session,
            Err(e) => return Either::Left(ready(Err(e))),
        };
        match session.current_user_now::<U>() {
            Some(now) => Either::Left(ready(required(session, now))),
            None => Either::Right(Box::pin({
                let session = session.clone();
                async move {
                    let later = session.current_user::<U>().await;
                    required(&session, later)
                }
            })),
        }
    }
}

fn required<U>(session: &Session, user: Memo<U>) -> Result<CurrentUser<U>, SessionRejection> {
    match user? {
        Some(user) => Ok(user),
        None => Err(SessionRejection::Unauthorized {
            body: Answer::unauthorized(session.config()).body,
        }),
    }
}

/// `Option<CurrentUser<U>>`: `None` when nobody is signed in; still `503` when the user cannot be loaded.
impl<S: Sync, U: Clone + Send + Sync + 'static> OptionalFromRequestParts<S> for CurrentUser<U> {
    type Rejection = SessionRejection;

    fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Option<Self>, Self::Rejection>> + Send {
        let session = match session_in(parts) {
            Ok(session) => session,
            Err(e) => return Either::Left(ready(Err(e))),
        };
        match session.current_user_now::<U>() {
            Some(now) => Either::Left(ready(now.map_err(SessionRejection::from))),
            None => Either::Right(Box::pin({
                let session = session.clone();
                async move { Ok(session.current_user::<U>().await?) }
            })),
        }
    }
}

impl<S: Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(CsrfToken(session.csrf_token().await))
    }
}
