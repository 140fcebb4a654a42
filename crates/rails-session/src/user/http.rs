//! The built-in [`LoadUser`]: an internal HTTP User API (`GET {url}/users/{id}` → JSON), with a bounded TTL cache
//! that coalesces concurrent lookups of the same user and remembers missing users for a shorter time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, StatusCode};
use moka::future::Cache;
use moka::Expiry;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value as Json};

use super::LoadUser;
use crate::error::ConfigError;
use crate::identity::UserId;

/// A user as the User API returns it: any JSON object. The `authenticatable_salt` field, if present, is used
/// for Warden's salt check and never serialized back out.
#[derive(Clone, PartialEq)]
pub struct ApiUser {
    fields: Map<String, Json>,
    salt: Option<String>,
}

impl ApiUser {
    /// A user from a JSON object (takes `authenticatable_salt` out of it).
    #[must_use]
    pub fn from_json(mut fields: Map<String, Json>) -> Self {
        let salt = match fields.remove("authenticatable_salt") {
            Some(Json::String(s)) => Some(s),
            _ => None,
        };
        ApiUser { fields, salt }
    }

    /// A field of the user.
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&Json> {
        self.fields.get(field)
    }

    /// All fields but the salt.
    #[must_use]
    pub fn fields(&self) -> &Map<String, Json> {
        &self.fields
    }

    /// The user's current `authenticatable_salt`, as the API reported it.
    #[must_use]
    pub fn authenticatable_salt(&self) -> Option<&str> {
        self.salt.as_deref()
    }
}

impl fmt::Debug for ApiUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiUser")
            .field("fields", &self.fields)
            .field("authenticatable_salt", &self.salt.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Serialize for ApiUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

/// Why the User API could not answer.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserApiError {
    /// The request failed (connection refused, timeout, …) after every retry.
    #[error("user API request failed: {0}")]
    Request(String),
    /// The API answered with an unexpected status.
    #[error("user API answered {0}")]
    Status(u16),
    /// The body is not a JSON object, or too large.
    #[error("user API answer unreadable: {0}")]
    Body(String),
}

#[derive(Clone)]
enum Lookup {
    Found(ApiUser),
    Missing,
}

struct Ttl {
    found: Duration,
    missing: Duration,
}

impl Expiry<UserId, Lookup> for Ttl {
    fn expire_after_create(
        &self,
        _key: &UserId,
        value: &Lookup,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Lookup::Found(_) => self.found,
            Lookup::Missing => self.missing,
        })
    }
}

/// Settings of an [`HttpUserLoader`].
#[derive(Debug)]
#[must_use]
pub struct HttpUserLoaderBuilder {
    template: String,
    auth: Option<(HeaderName, HeaderValue)>,
    connect_timeout: Duration,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    capacity: u64,
    ttl: Duration,
    negative_ttl: Duration,
    body_limit: usize,
}

impl HttpUserLoaderBuilder {
    /// A header sent with every request, e.g. `Authorization: Bearer …` (marked sensitive: never logged).
    pub fn auth_header(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::try_from(name)
            .map_err(|e| ConfigError::invalid("auth_header", e.to_string()))?;
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| ConfigError::invalid("auth_header", "not a valid header value"))?;
        value.set_sensitive(true);
        self.auth = Some((name, value));
        Ok(self)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_token(self, token: &str) -> Result<Self, ConfigError> {
        self.auth_header("authorization", &format!("Bearer {token}"))
    }

    /// Connection timeout (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout of one request, connection included (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a failed request or a 5xx answer (default 2, at most 5), with exponential backoff from
    /// `backoff` (default 50 ms).
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries.min(5);
        self.backoff = backoff;
        self
    }

    /// The cache: at most `capacity` users (default 10 000), each kept `ttl` (default 10 s); a missing user
    /// (404) is remembered for `negative_ttl` (default 5 s). A password change in Rails takes effect here within
    /// `ttl`.
    pub fn cache(mut self, capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        self.capacity = capacity;
        self.ttl = ttl;
        self.negative_ttl = negative_ttl;
        self
    }

    /// The loader.
    pub fn build(self) -> Result<HttpUserLoader, ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::invalid("user API client", e.to_string()))?;
        let cache = Cache::builder()
            .max_capacity(self.capacity)
            .expire_after(Ttl { found: self.ttl, missing: self.negative_ttl })
            .build();
        Ok(HttpUserLoader {
            inner: Arc::new(Inner {
                client,
                template: self.template,
                auth: self.auth,
                retries: self.retries,
                backoff: self.backoff,
                body_limit: self.body_limit,
            }),
            cache,
        })
    }
}

struct Inner {
    client: reqwest::Client,
    template: String,
    auth: Option<(HeaderName, HeaderValue)>,
    retries: u32,
    backoff: Duration,
    body_limit: usize,
}

/// Loads users from an internal HTTP User API: `GET` on a URL template such as
/// `http://users.internal/api/users/{id}`; `200` with a JSON object is the user, `404` is "no such user"
/// (cached briefly), anything else an error (not cached; the request then fails closed with 503 by default).
///
/// The JSON may carry Devise's `authenticatable_salt` (the first 29 characters of `encrypted_password`); the
/// session's salt must then match it.
///
/// ```
/// use std::time::Duration;
/// use rails_session::HttpUserLoader;
/// let loader = HttpUserLoader::builder("http://127.0.0.1:9000/internal/users/{id}")?
///     .bearer_token("internal-token")?
///     .timeout(Duration::from_secs(1))
///     .cache(10_000, Duration::from_secs(10), Duration::from_secs(5))
///     .build()?;
/// # let _ = loader;
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct HttpUserLoader {
    inner: Arc<Inner>,
    cache: Cache<UserId, Lookup>,
}

impl HttpUserLoader {
    /// Settings for a URL template with an `{id}` placeholder (`http://` or, with feature `user-api-rustls`,
    /// `https://`).
    pub fn builder(url_template: impl Into<String>) -> Result<HttpUserLoaderBuilder, ConfigError> {
        let template = url_template.into();
        if !template.contains("{id}") {
            return Err(ConfigError::invalid(
                "user API URL",
                "the template needs an {id} placeholder",
            ));
        }
        if !(template.starts_with("http://") || template.starts_with("https://")) {
            return Err(ConfigError::invalid("user API URL", "must be an http:// or https:// URL"));
        }
        Ok(HttpUserLoaderBuilder {
            template,
            auth: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(50),
            capacity: 10_000,
            ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(5),
            body_limit: 64 * 1024,
        })
    }

    /// Drops a user from the cache (after a sign-out or a password change you know of).
    pub async fn invalidate(&self, id: &UserId) {
        self.cache.invalidate(id).await;
    }

    async fn fetch(&self, id: &UserId) -> Result<Lookup, UserApiError> {
        let url = self.inner.template.replace("{id}", &encode_path_segment(&id.to_string()));
        let mut attempt = 0;
        loop {
            let result = self.fetch_once(&url).await;
            let retryable = match &result {
                Err(UserApiError::Request(_)) => true,
                Err(UserApiError::Status(s)) => *s >= 500,
                _ => false,
            };
            if !retryable || attempt >= self.inner.retries {
                return result;
            }
            let delay = self.inner.backoff.saturating_mul(1 << attempt.min(10));
            tracing::debug!(attempt, ?delay, "retrying the user API");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn fetch_once(&self, url: &str) -> Result<Lookup, UserApiError> {
        let mut request =
            self.inner.client.get(url).header(http::header::ACCEPT, "application/json");
        if let Some((name, value)) = &self.inner.auth {
            request = request.header(name.clone(), value.clone());
        }
        let mut response =
            request.send().await.map_err(|e| UserApiError::Request(without_url(&e)))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Lookup::Missing),
            s => return Err(UserApiError::Status(s.as_u16())),
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| UserApiError::Request(without_url(&e)))?
        {
            if body.len() + chunk.len() > self.inner.body_limit {
                return Err(UserApiError::Body(format!(
                    "larger than {} bytes",
                    self.inner.body_limit
                )));
            }
            body.extend_from_slice(&chunk);
        }
        match serde_json::from_slice(&body) {
            Ok(Json::Object(fields)) => Ok(Lookup::Found(ApiUser::from_json(fields))),
            Ok(_) => Err(UserApiError::Body("not a JSON object".into())),
            Err(e) => Err(UserApiError::Body(e.to_string())),
        }
    }
}

impl LoadUser for HttpUserLoader {
    type User = ApiUser;
    type Error = UserApiError;

    async fn load_user(&self, id: &UserId) -> Result<Option<ApiUser>, UserApiError> {
        let lookup =
            self.cache.try_get_with(id.clone(), self.fetch(id)).await.map_err(|e| (*e).clone())?;
        Ok(match lookup {
            Lookup::Found(user) => Some(user),
            Lookup::Missing => None,
        })
    }

    fn authenticatable_salt<'u>(&self, user: &'u ApiUser) -> Option<&'u str> {
        user.authenticatable_salt()
    }
}

/// The same client asked about Rails 8 authentication logins: `GET {url}` with the `sessions` row's id for `{id}`
/// answers the row as JSON with its `user_id` (`{"user_id": 1}`), or 404 when there is no such row (signed out).
/// For a Rust service with no access to the Rails app's database.
impl crate::identity::FindAuthSession for HttpUserLoader {
    type Error = UserApiError;

    async fn user_of_session(&self, session: &UserId) -> Result<Option<UserId>, UserApiError> {
        let Some(row) = self.load_user(session).await? else { return Ok(None) };
        match row.get("user_id") {
            Some(Json::Number(n)) => n
                .as_i64()
                .map(|i| Some(UserId::Integer(i)))
                .ok_or_else(|| UserApiError::Body("user_id is not an Integer id".into())),
            Some(Json::String(s)) if !s.is_empty() => Ok(Some(UserId::String(s.clone()))),
            Some(Json::Null) => Ok(None),
            _ => Err(UserApiError::Body("the sessions row has no user_id".into())),
        }
    }
}

impl fmt::Debug for HttpUserLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpUserLoader")
            .field("template", &self.inner.template)
            .field("auth", &self.inner.auth.as_ref().map(|(name, _)| name))
            .field("retries", &self.inner.retries)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// A short cause without the URL (which may carry an id) for logs and errors.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request error"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// Percent-encodes an id for a URL path segment (RFC 3986 unreserved characters stay).
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_is_taken_out_and_never_serialized() {
        let json =
            serde_json::json!({"id": 1, "email": "a@b.c", "authenticatable_salt": "$2a$04$abc"});
        let Json::Object(map) = json else { unreachable!() };
        let user = ApiUser::from_json(map);
        assert_eq!(user.authenticatable_salt(), Some("$2a$04$abc"));
        assert_eq!(serde_json::to_string(&user).unwrap(), r#"{"id":1,"email":"a@b.c"}"#);
        assert!(!format!("{user:?}").contains("abc"));
    }

    #[test]
    fn templates_and_ids() {
        assert!(HttpUserLoader::builder("http://x/users").is_err());
        assert!(HttpUserLoader::builder("ftp://x/{id}").is_err());
        assert_eq!(encode_path_segment("a b/ü"), "a%20b%2F%C3%BC");
    }
}
