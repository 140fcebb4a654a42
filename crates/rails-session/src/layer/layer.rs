use std::sync::Arc;

use tower_layer::Layer;

use super::service::SessionService;
use crate::config::SessionConfig;

/// Puts a [`crate::Session`] in every request's extensions and commits it on the way out.
///
/// ```
/// use rails_session::{rails_cookie::{Profile, SecretKeyBase}, SessionConfig, SessionLayer};
/// let config = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?;
/// let layer = SessionLayer::new(config);
/// # let _ = layer;
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionLayer {
    config: Arc<SessionConfig>,
}

impl SessionLayer {
    /// A layer for this configuration.
    pub fn new(config: SessionConfig) -> Self {
        SessionLayer { config: Arc::new(config) }
    }

    /// A layer sharing an existing configuration.
    pub fn from_arc(config: Arc<SessionConfig>) -> Self {
        SessionLayer { config }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.config.clone())
    }
}
