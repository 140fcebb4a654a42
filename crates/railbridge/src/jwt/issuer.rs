//! Assertions: short-lived JWTs (`iss`, `aud` = route, `sub`, `sid`, `scope`, `iat`, `exp`, `jti`) signed with the
//! configured key, cached per session, route and user until shortly before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderValue;
use ring::rand::SecureRandom as _;
use serde_json::{Map, Value as Json};

use super::jwks::KeySet;
use super::keys::KeyError;

/// The longest lifetime an assertion may have.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(300);

/// Who an assertion is about.
#[derive(Debug)]
pub(crate) struct Subject<'a> {
    /// The route name (`aud`).
    pub(crate) audience: &'a str,
    /// The user id (`sub`).
    pub(crate) user: &'a str,
    /// The keyed hash of the session id (`sid`), never the id itself.
    pub(crate) session: &'a str,
    /// The Warden scope.
    pub(crate) scope: Option<&'a str>,
    /// Configured extra claims.
    pub(crate) extra: &'a [(String, Json)],
}

/// Signs and caches assertions.
#[derive(Debug)]
pub(crate) struct Issuer {
    issuer: String,
    ttl: Duration,
    keys: Arc<KeySet>,
    /// `base64url(header)`, once.
    header: String,
    cache: moka::sync::Cache<String, HeaderValue>,
}

impl Issuer {
    pub(crate) fn new(issuer: String, ttl: Duration, keys: Arc<KeySet>) -> Result<Self, KeyError> {
        let key = keys.signing_key();
        let mut header = jsonwebtoken::Header::new(key.algorithm());
        header.kid = Some(key.kid().to_owned());
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?);
        // Reuse a token until a quarter of its life (at most a minute) is left.
        let margin = (ttl / 4).min(Duration::from_secs(60));
        let cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl.saturating_sub(margin).max(Duration::from_secs(1)))
            .build();
        Ok(Issuer { issuer, ttl, keys, header, cache })
    }

    /// The key set (for the JWKS endpoint).
    pub(crate) fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// The assertion for `subject`: a cached one, or a new one.
    pub(crate) fn assertion(&self, subject: &Subject<'_>) -> Result<HeaderValue, KeyError> {
        let mut key = String::with_capacity(96);
        for part in [subject.audience, subject.user, subject.session, subject.scope.unwrap_or("")] {
            key.push_str(part);
            key.push('\0');
        }
        if let Some(token) = self.cache.get(&key) {
            return Ok(token);
        }
        let token = self.sign(subject, SystemTime::now())?;
        self.cache.insert(key, token.clone());
        Ok(token)
    }

    /// An access token of the token exchange: the claims of an assertion for `subject` (whose `audience` is the
    /// tokens' audience), living `ttl`, with `registered` claims added after the configured ones (`fam`, `use`).
    pub(crate) fn access_token(
        &self,
        subject: &Subject<'_>,
        ttl: Duration,
        registered: &[(&str, Json)],
    ) -> Result<String, KeyError> {
        let token = self.sign_with(subject, SystemTime::now(), ttl, registered)?;
        token.to_str().map(str::to_owned).map_err(|_| KeyError::Sign)
    }

    fn sign(&self, s: &Subject<'_>, now: SystemTime) -> Result<HeaderValue, KeyError> {
        self.sign_with(s, now, self.ttl, &[])
    }

    fn sign_with(
        &self,
        s: &Subject<'_>,
        now: SystemTime,
        ttl: Duration,
        registered: &[(&str, Json)],
    ) -> Result<HeaderValue, KeyError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut jti).map_err(|_| KeyError::Sign)?;
        let mut claims = Map::new();
        for (name, value) in s.extra {
            claims.insert(name.clone(), value.clone());
        }
        // The registered claims last, so a configured field can never replace them.
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("aud".into(), s.audience.into());
        claims.insert("sub".into(), s.user.into());
        claims.insert("sid".into(), s.session.into());
        if let Some(scope) = s.scope {
            claims.insert("scope".into(), scope.into());
        }
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), (iat + ttl.as_secs()).into());
        claims.insert("jti".into(), URL_SAFE_NO_PAD.encode(jti).into());
        for (name, value) in registered {
            claims.insert((*name).to_owned(), value.clone());
        }
        let payload = serde_json::to_vec(&claims).map_err(|_| KeyError::Sign)?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.keys.signing_key().sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        let mut value = HeaderValue::try_from(token).map_err(|_| KeyError::Sign)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::keys::{tests::ED25519_PEM, SigningKey};

    fn issuer() -> Issuer {
        let key = SigningKey::from_pem(ED25519_PEM.as_bytes(), None).unwrap();
        Issuer::new(
            "railbridge".into(),
            Duration::from_secs(120),
            Arc::new(KeySet::new(vec![key], 0).unwrap()),
        )
        .unwrap()
    }

    fn claims(token: &HeaderValue) -> Json {
        let payload = token.to_str().unwrap().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn claims_and_cache() {
        let issuer = issuer();
        let extra =
            [("email".to_owned(), Json::from("a@b.c")), ("sub".to_owned(), Json::from("evil"))];
        let s = Subject {
            audience: "api",
            user: "1",
            session: "abc",
            scope: Some("user"),
            extra: &extra,
        };
        let t = issuer.assertion(&s).unwrap();
        let c = claims(&t);
        assert_eq!(c["iss"], "railbridge");
        assert_eq!(
            (c["aud"].as_str(), c["sub"].as_str(), c["sid"].as_str()),
            (Some("api"), Some("1"), Some("abc"))
        );
        assert_eq!(c["scope"], "user");
        assert_eq!(c["email"], "a@b.c");
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 120);
        assert_eq!(c["jti"].as_str().unwrap().len(), 22);
        assert!(t.is_sensitive());
        assert_eq!(issuer.assertion(&s).unwrap(), t, "cached");
        let other = Subject { audience: "billing", ..s };
        assert_ne!(issuer.assertion(&other).unwrap(), t, "one per audience");
    }
}
