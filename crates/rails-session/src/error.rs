//! Errors: configuration mistakes (at start-up) and session failures (per request). Never secret bytes.

/// A configuration value is missing or unusable. Raised while building a [`crate::SessionConfig`], never per
/// request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// A setting has a value that cannot be used.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting (or environment variable) at fault.
        setting: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// The codec refused the profile or the secret.
    #[error(transparent)]
    Codec(#[from] rails_cookie::Error),
}

impl ConfigError {
    pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { setting, reason: reason.into() }
    }
}

/// A session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A value could not be converted to or from the session's representation.
    #[error("session value {key:?}: {source}")]
    Value {
        /// The session key.
        key: String,
        /// Why the conversion failed.
        #[source]
        source: rails_cookie::Error,
    },
    /// The store could not load or save the session.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A [`crate::SessionStore`] failed to load or save a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The cookie could not be read: tampered, foreign, expired, malformed. The session is then empty.
    #[error("session cookie rejected: {0}")]
    Rejected(#[source] rails_cookie::Error),
    /// The session is larger than a cookie may be (`ActionDispatch::Cookies::CookieOverflow`).
    #[error("session too large for a cookie: {size} bytes, the limit is 4096")]
    Overflow {
        /// The encoded size, counted as Rails counts it.
        size: usize,
    },
    /// The session could not be encoded.
    #[error("session could not be encoded: {0}")]
    Encode(#[source] rails_cookie::Error),
    /// A server-side session record could not be written (a value its format cannot hold).
    #[error("session record could not be encoded: {0}")]
    Record(String),
    /// A backend failure (for stores with a server): down, too slow, or answering nonsense. Answered with 503.
    #[error("session store backend: {0}")]
    Backend(String),
}
