//! Who is asking: the signed-in user from the Rails session (through `rails-session`, with its Devise timeout and
//! User API salt check), and the identity headers that say so to the upstream.

use http::{HeaderName, HeaderValue};
use rails_session::rails_cookie::Value;
use rails_session::{ApiUser, AuthError, Identity, Session};
use serde_json::Value as Json;

use super::headers::{
    has_cookie, identity_value, X_RAILBRIDGE_ASSERTION, X_RAILBRIDGE_SCOPE, X_RAILBRIDGE_SESSION,
    X_RAILBRIDGE_USER,
};
use crate::config::{Field, FieldSource};
use crate::jwt::issuer::{Issuer, Subject};

/// Why a request has no user (the `reason` label of `railbridge_auth_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A user is signed in.
    SignedIn,
    /// The gateway has no `SECRET_KEY_BASE`.
    NoSecret,
    /// No session cookie.
    NoCookie,
    /// A cookie that does not decrypt (tampered, foreign, expired).
    InvalidCookie,
    /// A valid session without a (current) user: signed out, timed out, password changed, deleted.
    NoUser,
    /// The User API failed.
    UserApiUnavailable,
    /// The server-side session store is down or too slow.
    SessionStoreUnavailable,
    /// A bearer access token that is refused (bad, expired, revoked, wrong scope).
    InvalidToken,
}

impl Outcome {
    /// Every outcome, in [`Outcome::index`] order.
    pub(crate) const ALL: [Outcome; 8] = [
        Outcome::SignedIn,
        Outcome::NoSecret,
        Outcome::NoCookie,
        Outcome::InvalidCookie,
        Outcome::NoUser,
        Outcome::UserApiUnavailable,
        Outcome::SessionStoreUnavailable,
        Outcome::InvalidToken,
    ];

    /// The position in [`Outcome::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Outcome::SignedIn => 0,
            Outcome::NoSecret => 1,
            Outcome::NoCookie => 2,
            Outcome::InvalidCookie => 3,
            Outcome::NoUser => 4,
            Outcome::UserApiUnavailable => 5,
            Outcome::SessionStoreUnavailable => 6,
            Outcome::InvalidToken => 7,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::SignedIn => "signed_in",
            Outcome::NoSecret => "no_secret",
            Outcome::NoCookie => "no_cookie",
            Outcome::InvalidCookie => "invalid_cookie",
            Outcome::NoUser => "no_user",
            Outcome::UserApiUnavailable => "user_api_unavailable",
            Outcome::SessionStoreUnavailable => "session_store_unavailable",
            Outcome::InvalidToken => "invalid_token",
        }
    }
}

/// A signed-in user.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) identity: Identity,
    /// Keyed hash of the session id (`X-Railbridge-Session`, `sid`).
    pub(crate) session_hash: String,
    /// The User API's record, when a User API is configured for this scope.
    pub(crate) user: Option<ApiUser>,
}

/// Finds the signed-in user of the session's scope.
pub(crate) async fn resolve(
    session: &Session,
    headers: &http::HeaderMap,
    use_api: bool,
    hash_key: &ring::hmac::Key,
) -> (Outcome, Option<Resolved>) {
    let found = if use_api {
        match session.current_user::<ApiUser>().await {
            Ok(Some(current)) => {
                Ok(Some((current.identity().clone(), Some(current.user().clone()))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    } else {
        session.current_identity().await.map(|found| found.map(|identity| (identity, None)))
    };
    match found {
        Ok(Some((identity, user))) => {
            // Rails 8 authentication: the login is the `sessions` row, not the cookie session.
            let sid = match identity.auth_session_id() {
                Some(row) => Some(format!("rails-authentication:{row}")),
                None => {
                    session
                        .with_data(|h| {
                            h.get("session_id").and_then(Value::as_str).map(str::to_owned)
                        })
                        .await
                }
            };
            let session_hash = session_hash(hash_key, sid.as_deref().unwrap_or(""));
            (Outcome::SignedIn, Some(Resolved { identity, session_hash, user }))
        }
        Ok(None) => {
            let outcome = if !has_cookie(headers, session.config().login_cookie_name()) {
                Outcome::NoCookie
            } else if session.exists().await {
                Outcome::NoUser
            } else {
                Outcome::InvalidCookie
            };
            (outcome, None)
        }
        Err(AuthError::Unavailable(_)) => (Outcome::UserApiUnavailable, None),
        Err(AuthError::SessionStoreUnavailable(_)) => (Outcome::SessionStoreUnavailable, None),
        Err(e) => {
            tracing::error!(error = %e, "identity lookup failed");
            (Outcome::UserApiUnavailable, None)
        }
    }
}

/// `X-Railbridge-Session`: HMAC-SHA256 of the session id under the gateway's key, first 128 bits, hex. Stable
/// for the session, useless for hijacking it.
pub(crate) fn session_hash(key: &ring::hmac::Key, session_id: &str) -> String {
    let tag = ring::hmac::sign(key, session_id.as_bytes());
    let mut out = String::with_capacity(32);
    for b in tag.as_ref().iter().take(16) {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// The identity headers for one upstream request.
pub(crate) struct IdentityHeaders<'a> {
    pub(crate) fields: &'a [Field],
    pub(crate) issuer: Option<&'a Issuer>,
    /// `aud`: the route name.
    pub(crate) audience: &'a str,
    /// Whether the route sends an assertion.
    pub(crate) assertion: bool,
}

impl IdentityHeaders<'_> {
    /// The headers for `who` (configured fields read from `session` and the User API record).
    pub(crate) async fn build(
        &self,
        who: &Resolved,
        session: &Session,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(4 + self.fields.len());
        let id = who.identity.id.to_string();
        out.push((X_RAILBRIDGE_USER, identity_value(&id)));
        if let Some(scope) = who.identity.scope() {
            out.push((X_RAILBRIDGE_SCOPE, identity_value(scope)));
        }
        out.push((X_RAILBRIDGE_SESSION, identity_value(&who.session_hash)));
        let values = self.field_values(who, session).await;
        let mut claims = Vec::new();
        for (field, value) in self.fields.iter().zip(values) {
            let Some(value) = value else { continue };
            if let Some(name) = &field.header {
                let text = match &value {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push((name.clone(), identity_value(&text)));
            }
            if let Some(claim) = &field.claim {
                claims.push((claim.clone(), value));
            }
        }
        if let (true, Some(issuer)) = (self.assertion, self.issuer) {
            let subject = Subject {
                audience: self.audience,
                user: &id,
                session: &who.session_hash,
                scope: who.identity.scope(),
                extra: &claims,
            };
            match issuer.assertion(&subject) {
                Ok(token) => out.push((X_RAILBRIDGE_ASSERTION, token)),
                Err(e) => tracing::error!(error = %e, "could not sign the identity assertion"),
            }
        }
        out
    }

    /// The configured fields that have a claim, with their values for `who` (what an access token carries).
    pub(crate) async fn claims(&self, who: &Resolved, session: &Session) -> Vec<(String, Json)> {
        let values = self.field_values(who, session).await;
        self.fields.iter().zip(values).filter_map(|(f, v)| Some((f.claim.clone()?, v?))).collect()
    }

    /// The headers for a bearer access token's claims: the same as for the session it was exchanged from (fields
    /// come back from their claims; a field without a claim is not in the token, so not sent).
    pub(crate) fn for_claims(
        &self,
        user: &str,
        scope: Option<&str>,
        sid: &str,
        claims: &serde_json::Map<String, Json>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(4 + self.fields.len());
        out.push((X_RAILBRIDGE_USER, identity_value(user)));
        if let Some(scope) = scope {
            out.push((X_RAILBRIDGE_SCOPE, identity_value(scope)));
        }
        out.push((X_RAILBRIDGE_SESSION, identity_value(sid)));
        let mut extra = Vec::new();
        for field in self.fields {
            let Some(claim) = &field.claim else { continue };
            let Some(value) = claims.get(claim).filter(|v| !v.is_null()) else { continue };
            if let Some(name) = &field.header {
                let text = match value {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push((name.clone(), identity_value(&text)));
            }
            extra.push((claim.clone(), value.clone()));
        }
        if let (true, Some(issuer)) = (self.assertion, self.issuer) {
            let subject =
                Subject { audience: self.audience, user, session: sid, scope, extra: &extra };
            match issuer.assertion(&subject) {
                Ok(token) => out.push((X_RAILBRIDGE_ASSERTION, token)),
                Err(e) => tracing::error!(error = %e, "could not sign the identity assertion"),
            }
        }
        out
    }

    async fn field_values(&self, who: &Resolved, session: &Session) -> Vec<Option<Json>> {
        if self.fields.is_empty() {
            return Vec::new();
        }
        let from_session: Vec<Option<Json>> = session
            .with_data(|data| {
                self.fields
                    .iter()
                    .map(|f| match &f.source {
                        FieldSource::Session(path) => {
                            let (last, parents) = path.split_last()?;
                            let mut hash = data;
                            for key in parents {
                                hash = hash.get(key)?.as_hash()?;
                            }
                            let value = hash.get(last)?;
                            if value.is_nil() {
                                return None;
                            }
                            value.deserialize_into::<Json>().ok()
                        }
                        FieldSource::User(_) => None,
                    })
                    .collect()
            })
            .await;
        self.fields
            .iter()
            .zip(from_session)
            .map(|(f, v)| match &f.source {
                FieldSource::Session(_) => v,
                FieldSource::User(name) => {
                    who.user.as_ref().and_then(|u| u.get(name)).filter(|v| !v.is_null()).cloned()
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hash_is_keyed_and_stable() {
        let a = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key a");
        let b = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key b");
        let id = "7d568a2f4d75dcadd04bcaeefddde7c3";
        assert_eq!(session_hash(&a, id), session_hash(&a, id));
        assert_ne!(session_hash(&a, id), session_hash(&b, id));
        assert_eq!(session_hash(&a, id).len(), 32);
        assert!(!session_hash(&a, id).contains(id));
    }
}
