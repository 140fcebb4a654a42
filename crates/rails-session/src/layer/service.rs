use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::{header, Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::Shared;
use crate::config::SessionConfig;
use crate::session::{CookieHeaders, Session};

/// The service [`super::SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        SessionService { inner, shared }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let session = session_for(self.shared.for_this_thread(), &req);
        if req.extensions().is_empty() {
            *req.extensions_mut() = roomy_extensions().clone();
        }
        req.extensions_mut().insert(session.clone());
        ResponseFuture::new(self.inner.call(req), session)
    }
}

/// Empty request extensions with room for seven entries. The session is the first entry of a request when the
/// layer wraps the router, and axum then adds three (`OriginalUri`, `MatchedPath`, the path parameters): with a
/// map made for three, the fourth would allocate a larger one and move everything over, on every request. A clone
/// of this one is made at its size in one go (the map keeps its buckets when entries are removed, and a clone
/// keeps the bucket count), so it never grows for those four.
fn roomy_extensions() -> &'static http::Extensions {
    #[derive(Clone, Copy)]
    struct Slot<const N: u8>;
    static ROOMY: OnceLock<http::Extensions> = OnceLock::new();
    ROOMY.get_or_init(|| {
        let mut extensions = http::Extensions::new();
        extensions.insert(Slot::<0>);
        extensions.insert(Slot::<1>);
        extensions.insert(Slot::<2>);
        extensions.insert(Slot::<3>);
        extensions.clear();
        extensions
    })
}

/// The lazy session of a request: the cookie is searched for and decoded only when first used.
pub(crate) fn session_for<B>(config: &Arc<SessionConfig>, req: &Request<B>) -> Session {
    let headers = req.headers();
    let cookies = CookieHeaders::new(headers.get_all(header::COOKIE).iter().cloned());
    let host = config.domain.needs_host().then(|| {
        headers
            .get(header::HOST)
            .cloned()
            .or_else(|| req.uri().host().and_then(|h| http::HeaderValue::from_str(h).ok()))
    });
    let host = host.flatten();
    Session::from_headers(config.clone(), cookies, host)
}
