//! [`GatewayAuthLayer`]: puts an [`AssertionVerifier`] in every request's extensions, where the
//! [`GatewayUser`](super::GatewayUser) extractor finds it.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::verifier::AssertionVerifier;

/// A tower layer that makes `verifier` available to the [`GatewayUser`](super::GatewayUser) extractor (it inserts
/// a clone into each request's extensions; `.layer(axum::Extension(verifier))` does the same).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{routing::get, Router};
/// use rails_session::gateway_auth::{AssertionVerifier, GatewayAuthLayer, GatewayUser};
///
/// let verifier = AssertionVerifier::builder()
///     .jwks_url("http://railbridge.internal:8080/.well-known/jwks.json")
///     .audience("api")
///     .build()?;
/// let app: Router = Router::new()
///     .route("/me", get(|user: GatewayUser| async move { user.user_id().to_owned() }))
///     .layer(GatewayAuthLayer::new(verifier));
/// # }
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct GatewayAuthLayer {
    verifier: AssertionVerifier,
}

impl GatewayAuthLayer {
    /// The layer.
    pub fn new(verifier: AssertionVerifier) -> Self {
        GatewayAuthLayer { verifier }
    }
}

impl<S> Layer<S> for GatewayAuthLayer {
    type Service = GatewayAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatewayAuthService { inner, verifier: self.verifier.clone() }
    }
}

/// The service of [`GatewayAuthLayer`].
#[derive(Clone, Debug)]
pub struct GatewayAuthService<S> {
    inner: S,
    verifier: AssertionVerifier,
}

impl<S, B> Service<http::Request<B>> for GatewayAuthService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.verifier.clone());
        self.inner.call(request)
    }
}
