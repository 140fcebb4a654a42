use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, Request, Response};
use http_body_util::{BodyExt as _, Limited};
use tower_service::Service;

use crate::response::Answer;
use crate::session::Session;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service [`super::CsrfLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct CsrfService<S> {
    pub(super) inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CsrfService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: http_body::Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
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
        if super::is_safe(req.method().as_str()) {
            return Box::pin(inner.call(req));
        }
        Box::pin(async move {
            let Some(session) = req.extensions().get::<Session>().cloned() else {
                return Ok(Answer::missing_layer().into_response());
            };
            // The token lives in a session that could not be read: neither accepted nor refused.
            if session.store_failure().await.is_some() {
                return Ok(Answer::session_store_unavailable().into_response());
            }
            let (parts, body) = req.into_parts();
            let base_url = super::base_url(&parts.headers, parts.uri.scheme_str());
            let origin = parts.headers.get(header::ORIGIN).map(|v| v.to_str().ok());
            let header = parts.headers.get(super::HEADER).and_then(|v| v.to_str().ok());
            let request = super::RequestOrigin { origin, base_url: base_url.as_deref() };
            let (method, path) = (parts.method.as_str(), parts.uri.path());
            // The header alone settles most API calls without reading the body.
            let header_ok = match header {
                Some(h) => super::verify(&session, method, path, request, &[h]).await,
                None => false,
            };
            if header_ok {
                return inner.call(Request::from_parts(parts, body)).await;
            }
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if !super::body_may_carry_token(content_type.as_deref()) {
                return Ok(Answer::invalid_authenticity_token().into_response());
            }
            let limit = session.config().csrf.limit();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Ok(Answer::payload_too_large().into_response())
                }
                Err(_) => return Ok(Answer::bad_body().into_response()),
            };
            let Some(token) = super::body_token(content_type.as_deref(), &bytes) else {
                return Ok(Answer::invalid_authenticity_token().into_response());
            };
            if !super::verify(&session, method, path, request, &[&token]).await {
                return Ok(Answer::invalid_authenticity_token().into_response());
            }
            inner.call(Request::from_parts(parts, ReqBody::from(bytes))).await
        })
    }
}
