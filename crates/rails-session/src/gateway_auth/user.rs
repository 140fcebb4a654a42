//! The verified identity an assertion carries.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

/// The user a verified gateway assertion names: `sub`, `scope`, `sid`, the accepted audience, the expiry, and
/// every claim (for the extra ones the gateway is configured to add, such as `email` or `roles`).
///
/// An extractor on axum (feature `axum`) and actix-web (feature `actix-web`); see the
/// [module docs](crate::gateway_auth).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayUser {
    pub(crate) user_id: String,
    pub(crate) scope: Option<String>,
    pub(crate) sid: Option<String>,
    pub(crate) audience: String,
    pub(crate) expires_at: SystemTime,
    pub(crate) claims: Map<String, Json>,
}

impl GatewayUser {
    /// The user id (`sub`), as the gateway wrote it: the Rails record's id as a string.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The Devise/Warden scope (`scope`), when the gateway's route has one.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The gateway's keyed hash of the Rails session id (`sid`): stable for one login, never the id itself.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The audience this assertion was accepted for (one of the token's `aud` that the verifier accepts).
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// When the assertion expires (`exp`, without the leeway).
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Every claim of the assertion, registered ones included.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Json> {
        &self.claims
    }

    /// The claim `name` as a `T`; `None` when it is absent or is not a `T`: for example
    /// `user.claim::<Vec<String>>("roles").unwrap_or_default()`.
    #[must_use]
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.claims.get(name).and_then(|value| T::deserialize(value).ok())
    }

    /// All claims, by value.
    #[must_use]
    pub fn into_claims(self) -> Map<String, Json> {
        self.claims
    }
}
