use tower_layer::Layer;

use super::service::CsrfService;

/// `protect_from_forgery with: :exception` as a tower layer: a request with an unsafe method (anything but `GET`,
/// `HEAD`, `OPTIONS`) must carry a valid token in `X-CSRF-Token` or in the `authenticity_token` field of a form
/// or JSON body, or it is answered `422` without reaching the handler. Goes inside (after) the
/// [`crate::SessionLayer`].
///
/// ```
/// use axum::{routing::post, Router};
/// use rails_session::{rails_cookie::{Profile, SecretKeyBase}, CsrfLayer, SessionConfig, SessionLayer};
/// let config = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?;
/// let app: Router = Router::new()
///     .route("/api/counter", post(|| async { "ok" }))
///     .layer(CsrfLayer::new())
///     .layer(SessionLayer::new(config));
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct CsrfLayer {
    _priv: (),
}

impl CsrfLayer {
    /// The layer; its settings come from the session's [`crate::CsrfConfig`].
    pub fn new() -> Self {
        CsrfLayer { _priv: () }
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService { inner }
    }
}
