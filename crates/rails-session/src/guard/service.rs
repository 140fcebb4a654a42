use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower_service::Service;

use crate::response::Answer;
use crate::session::Session;

/// The service [`super::RequireUserLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct RequireUserService<S> {
    pub(super) inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireUserService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let Some(session) = req.extensions().get::<Session>().cloned() else {
                return Ok(Answer::missing_layer().into_response());
            };
            match session.logged_in().await {
                Ok(true) => inner.call(req).await,
                Ok(false) => Ok(Answer::unauthorized(session.config()).into_response()),
                Err(e) => Ok(Answer::auth_error(&e).into_response()),
            }
        })
    }
}
