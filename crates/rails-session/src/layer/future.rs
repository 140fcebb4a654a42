use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;

use crate::error::StoreError;
use crate::session::Session;

type Commit = BoxFuture<'static, Result<Option<String>, StoreError>>;

pin_project! {
    /// The response future of [`super::SessionService`]: the inner response, then the session commit.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        session: Option<Session>,
        commit: Option<Commit>,
        // Boxed: only a committing response is held here, and a small future is cheaper to move for every
        // other request.
        response: Option<Box<Response<B>>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(inner: F, session: Session) -> Self {
        ResponseFuture { inner, session: Some(session), commit: None, response: None }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.commit.is_none() {
            let response = ready!(this.inner.poll(cx))?;
            let Some(session) = this.session.take() else { return Poll::Ready(Ok(response)) };
            // Rails does not commit the session of an action that raised; untouched sessions need no work.
            if response.status().is_server_error() || !session.needs_commit() {
                return Poll::Ready(Ok(response));
            }
            *this.response = Some(Box::new(response));
            *this.commit = Some(Box::pin(async move { session.commit().await }));
        }
        let Some(commit) = this.commit.as_mut() else { unreachable_state() };
        let result = ready!(commit.as_mut().poll(cx));
        let Some(mut response) = this.response.take() else { unreachable_state() };
        apply(&mut response, result);
        Poll::Ready(Ok(*response))
    }
}

#[allow(clippy::panic)]
fn unreachable_state() -> ! {
    panic!("ResponseFuture polled after completion")
}

fn apply<B: Default>(response: &mut Response<B>, result: Result<Option<String>, StoreError>) {
    let mut status = StatusCode::INTERNAL_SERVER_ERROR;
    let failed = match result {
        Ok(None) => return,
        Ok(Some(set_cookie)) => match HeaderValue::try_from(set_cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
                return;
            }
            Err(_) => "the session cookie is not a valid header value".to_owned(),
        },
        Err(e) => {
            if matches!(e, StoreError::Backend(_)) {
                status = StatusCode::SERVICE_UNAVAILABLE;
            }
            e.to_string()
        }
    };
    // CookieOverflow: a server error, never a truncated cookie; a session store that is down: 503.
    tracing::error!(error = %failed, "the session could not be written");
    *response.status_mut() = status;
    *response.body_mut() = B::default();
    response.headers_mut().remove(header::CONTENT_TYPE);
    response.headers_mut().remove(header::CONTENT_LENGTH);
}
