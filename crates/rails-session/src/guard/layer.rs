use tower_layer::Layer;

use super::service::RequireUserService;

/// Answers `401` with the configured JSON body (see [`crate::SessionConfig::unauthorized_body`]) when no user is
/// signed in, `503` when the user loader is down (by default). Goes inside (after) the [`crate::SessionLayer`].
///
/// ```
/// use axum::{routing::get, Router};
/// use rails_session::{rails_cookie::{Profile, SecretKeyBase}, RequireUserLayer, SessionConfig, SessionLayer};
/// let config = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?;
/// let app: Router = Router::new()
///     .route("/api/private", get(|| async { "secret" }))
///     .route_layer(RequireUserLayer::new())
///     .layer(SessionLayer::new(config));
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct RequireUserLayer {
    _priv: (),
}

impl RequireUserLayer {
    /// The guard.
    pub fn new() -> Self {
        RequireUserLayer { _priv: () }
    }
}

impl<S> Layer<S> for RequireUserLayer {
    type Service = RequireUserService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireUserService { inner }
    }
}
