use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{Error, HttpMessage as _};
use bytes::{Bytes, BytesMut};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt as _;

use super::extract::answer_response;
use crate::config::SessionConfig;
use crate::csrf;
use crate::response::Answer;
use crate::session::{CookieHeaders, Session};

/// The session middleware: a lazy [`Session`] in every request's extensions, committed with `Set-Cookie` when it
/// changed. Wrap it outermost (after [`RequireUser`] and [`VerifyCsrf`] in `App::wrap` order).
#[derive(Clone, Debug)]
#[must_use]
pub struct RailsSession {
    config: Arc<SessionConfig>,
}

impl RailsSession {
    /// The middleware for this configuration (build it once, clone it into each worker's `App`).
    pub fn new(config: SessionConfig) -> Self {
        RailsSession { config: Arc::new(config) }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RailsSession
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RailsSessionMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RailsSessionMiddleware { service, config: self.config.clone() }))
    }
}

/// The service of [`RailsSession`].
#[derive(Debug)]
pub struct RailsSessionMiddleware<S> {
    service: S,
    config: Arc<SessionConfig>,
}

impl<S, B> Service<ServiceRequest> for RailsSessionMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = req.headers();
        // actix-web 4 is on `http` 0.2: carry the raw bytes over; the cookie is searched for only when used.
        let cookies = CookieHeaders::new(
            headers
                .get_all(header::COOKIE)
                .filter_map(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok()),
        );
        let host = headers
            .get(header::HOST)
            .filter(|_| self.config.domain.needs_host())
            .and_then(|h| http::HeaderValue::from_bytes(h.as_bytes()).ok());
        let session = Session::from_headers(self.config.clone(), cookies, host);
        req.extensions_mut().insert(session.clone());
        let response = self.service.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            // Rails does not commit the session of an action that raised; untouched sessions need no work.
            if response.status().is_server_error() || !session.needs_commit() {
                return Ok(response.map_into_left_body());
            }
            let mut unavailable = false;
            let failure = match session.commit().await {
                Ok(None) => return Ok(response.map_into_left_body()),
                Ok(Some(set_cookie)) => match HeaderValue::try_from(set_cookie) {
                    Ok(value) => {
                        response.headers_mut().append(header::SET_COOKIE, value);
                        return Ok(response.map_into_left_body());
                    }
                    Err(_) => "the session cookie is not a valid header value".to_owned(),
                },
                Err(e) => {
                    unavailable = matches!(e, crate::StoreError::Backend(_));
                    e.to_string()
                }
            };
            // CookieOverflow: a server error, never a truncated cookie; a store that is down: 503.
            tracing::error!(error = %failure, "the session could not be written");
            let (request, _) = response.into_parts();
            let answer = if unavailable {
                actix_web::HttpResponse::ServiceUnavailable().finish()
            } else {
                actix_web::HttpResponse::InternalServerError().finish()
            };
            Ok(ServiceResponse::new(request, answer).map_into_right_body())
        })
    }
}

/// `before_action :authenticate_user!`: `401` (JSON) when nobody is signed in, `503` when the user loader is
/// down. Needs [`RailsSession`] outside it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequireUser;

impl<S, B> Transform<S, ServiceRequest> for RequireUser
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireUserMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireUserMiddleware { service: Rc::new(service) }))
    }
}

/// The service of [`RequireUser`].
#[derive(Debug)]
pub struct RequireUserMiddleware<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for RequireUserMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            let session = req.extensions().get::<Session>().cloned();
            let answer = match session {
                None => Answer::missing_layer(),
                Some(session) => match session.logged_in().await {
                    Ok(true) => {
                        return service.call(req).await.map(ServiceResponse::map_into_left_body)
                    }
                    Ok(false) => Answer::unauthorized(session.config()),
                    Err(e) => Answer::auth_error(&e),
                },
            };
            Ok(req.into_response(answer_response(&answer)).map_into_right_body())
        })
    }
}

/// `protect_from_forgery with: :exception`: requests with an unsafe method need a valid token in `X-CSRF-Token`
/// or an `authenticity_token` form/JSON field, or get `422`. Needs [`RailsSession`] outside it.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyCsrf;

impl<S, B> Transform<S, ServiceRequest> for VerifyCsrf
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = VerifyCsrfMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(VerifyCsrfMiddleware { service: Rc::new(service) }))
    }
}

/// The service of [`VerifyCsrf`].
#[derive(Debug)]
pub struct VerifyCsrfMiddleware<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for VerifyCsrfMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            if csrf::is_safe(req.method().as_str()) {
                return service.call(req).await.map(ServiceResponse::map_into_left_body);
            }
            let answer = match check(&mut req).await {
                Ok(()) => return service.call(req).await.map(ServiceResponse::map_into_left_body),
                Err(answer) => answer,
            };
            Ok(req.into_response(answer_response(&answer)).map_into_right_body())
        })
    }
}

/// Verifies the request's token; on success the body (if it was read) is put back.
async fn check(req: &mut ServiceRequest) -> Result<(), Answer> {
    let session = req.extensions().get::<Session>().cloned().ok_or_else(Answer::missing_layer)?;
    if session.store_failure().await.is_some() {
        return Err(Answer::session_store_unavailable());
    }
    let base_url = {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    };
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().ok().map(str::to_owned));
    let token_header = headers.get(csrf::HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (method, path) = (req.method().as_str().to_owned(), req.path().to_owned());
    let request = csrf::RequestOrigin {
        origin: origin.as_ref().map(Option::as_deref),
        base_url: Some(&base_url),
    };
    if let Some(token) = &token_header {
        if csrf::verify(&session, &method, &path, request, &[token]).await {
            return Ok(());
        }
    }
    if !csrf::body_may_carry_token(content_type.as_deref()) {
        return Err(Answer::invalid_authenticity_token());
    }
    let limit = session.config().csrf.limit();
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Answer::bad_body())?;
        if body.len() + chunk.len() > limit {
            return Err(Answer::payload_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let body: Bytes = body.freeze();
    let token = csrf::body_token(content_type.as_deref(), &body);
    req.set_payload(Payload::from(body));
    match token {
        Some(token) if csrf::verify(&session, &method, &path, request, &[&token]).await => Ok(()),
        _ => Err(Answer::invalid_authenticity_token()),
    }
}
