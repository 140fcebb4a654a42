//! `config.session_store :cookie_store, key:, domain:, path:, secure:, httponly:, same_site:, expire_after:` — the
//! session options of a Rails app, with the keys of its [`Profile`] derived once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rails_cookie::{CookieCodec, Profile, RailsVersion, SecretKeyBase, Serializer};

use crate::csrf::CsrfConfig;
use crate::error::ConfigError;
use crate::identity::IdentityConfig;
use crate::store::{CookieStore, SessionStore, Store, StoreSettings};
use crate::user::{LoadUser, OnLoaderError, Resolvers};

/// The `SameSite` attribute of the session cookie (`same_site:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (Rails 6.1+ default).
    Lax,
    /// `SameSite=None` (needs `secure`).
    None,
}

impl SameSite {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// The `domain:` session option.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieDomain {
    /// No `domain` attribute: a host-only cookie (the Rails default).
    #[default]
    HostOnly,
    /// `domain: ".app.test"`: used verbatim.
    Exact(String),
    /// `domain: %w[app.test other.test]`: the first entry matching the request host.
    List(Vec<String>),
    /// `domain: :all` (with an optional `tld_length:`): the registrable domain of the request host.
    All {
        /// `tld_length:`, the number of labels kept (Rails' default heuristic when `None`).
        tld_length: Option<usize>,
    },
}

impl CookieDomain {
    /// Whether the `domain` attribute depends on the request host (`:all` and lists), so the layers only look
    /// the `Host` header up when it matters.
    pub(crate) fn needs_host(&self) -> bool {
        matches!(self, CookieDomain::List(_) | CookieDomain::All { .. })
    }

    /// Parses the `DOMAIN` environment variable the way the interop app does: `all` → [`CookieDomain::All`], a
    /// comma-separated list → [`CookieDomain::List`], anything else verbatim.
    ///
    /// ```
    /// use rails_session::CookieDomain;
    /// assert_eq!(CookieDomain::parse(".app.test"), CookieDomain::Exact(".app.test".into()));
    /// assert_eq!(CookieDomain::parse("all"), CookieDomain::All { tld_length: None });
    /// assert_eq!(CookieDomain::parse("a.test, b.test"), CookieDomain::List(vec!["a.test".into(), "b.test".into()]));
    /// ```
    #[must_use]
    pub fn parse(value: &str) -> CookieDomain {
        let value = value.trim();
        match value {
            "" => CookieDomain::HostOnly,
            "all" | ":all" => CookieDomain::All { tld_length: None },
            v if v.contains(',') => CookieDomain::List(
                v.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect(),
            ),
            v => CookieDomain::Exact(v.to_owned()),
        }
    }
}

/// Everything the session layer needs: the codec (keys derived once, here), the cookie options, how to find the
/// signed-in user and how CSRF tokens look. Build it once at start-up and share it.
///
/// ```
/// use std::time::Duration;
/// use rails_session::{rails_cookie::{Profile, SecretKeyBase}, CookieDomain, SessionConfig};
/// let config = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?
///     .domain(CookieDomain::Exact(".app.test".into()))
///     .secure(true)
///     .expire_after(Duration::from_secs(14 * 24 * 3600));
/// assert_eq!(config.key(), "_app_session");
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionConfig {
    pub(crate) codec: Arc<CookieCodec>,
    pub(crate) store: Store,
    pub(crate) key: String,
    pub(crate) domain: CookieDomain,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) expire_after: Option<Duration>,
    pub(crate) identity: IdentityConfig,
    pub(crate) csrf: CsrfConfig,
    pub(crate) resolvers: Resolvers,
    pub(crate) unauthorized_body: serde_json::Value,
}

impl SessionConfig {
    /// A cookie-store configuration for the app whose Rails version `profile` describes, with the session cookie
    /// name `key` (`_<app>_session` in a default Rails app). Derives every key now.
    ///
    /// Defaults are Rails': `path=/`, `HttpOnly`, not `secure`, `SameSite=Lax` from 6.1 on (none before), no
    /// expiry, Devise's `user` scope, CSRF tokens in the format of that Rails version.
    pub fn new(
        profile: Profile,
        secret_key_base: SecretKeyBase,
        key: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.is_empty() || key.bytes().any(|b| b.is_ascii_control() || b" ;,=".contains(&b)) {
            return Err(ConfigError::invalid(
                "key",
                "a cookie name must be non-empty and free of `;`, `,`, `=`, spaces",
            ));
        }
        let version = profile.version();
        let codec = Arc::new(CookieCodec::new(profile, secret_key_base)?);
        let store = Store::Cookie(Arc::new(CookieStore::new(codec.clone(), key.clone())));
        Ok(SessionConfig {
            codec,
            store,
            key,
            domain: CookieDomain::HostOnly,
            path: "/".into(),
            secure: false,
            http_only: true,
            same_site: (version >= RailsVersion::V6_1).then_some(SameSite::Lax),
            expire_after: None,
            identity: IdentityConfig::warden("user"),
            csrf: CsrfConfig::for_version(version),
            resolvers: Resolvers::default(),
            unauthorized_body: serde_json::json!({"error": "You need to sign in or sign up before continuing."}),
        })
    }

    /// Reads the configuration from the process environment; see [`SessionConfig::from_lookup`] for the variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from environment-style variables given by `lookup` (empty values count as unset):
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `SECRET_KEY_BASE` | the Rails app's `secret_key_base` | required |
    /// | `SESSION_KEY` | session cookie name | required |
    /// | `RAILS_VERSION` | the preset (`4.2` … `8.1`) | `6.1` |
    /// | `COOKIES_SERIALIZER` | `json`, `marshal`, `hybrid`, … | the preset's (`json`) |
    /// | `DOMAIN` | `domain:` (`.app.test`, `all`, `a.test,b.test`) | host-only |
    /// | `SESSION_PATH`, `SESSION_SECURE`, `SESSION_HTTPONLY`, `SESSION_SAME_SITE` | cookie attributes | `/`, `false`, `true`, preset |
    /// | `SESSION_EXPIRE_AFTER` | `expire_after:` in seconds | none |
    /// | `SESSION_ENCRYPTED_COOKIE_SALT`, `SESSION_ENCRYPTED_SIGNED_COOKIE_SALT`, `SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT`, `SESSION_SIGNED_COOKIE_SALT` | the `config.action_dispatch.*_salt` settings | Rails' |
    /// | `RAILS_AUTH` | where the login lives: `devise` (Warden's key), `session-key` (a plain session key) or `rails-authentication` (Rails 8's generator: a signed cookie and a `sessions` row; feature `database`) | `devise` |
    /// | `RAILS_AUTH_SESSION_KEY` | with `session-key`: the key, or a dotted path into nested hashes | `user_id` |
    /// | `DATABASE_URL` | with `rails-authentication`: the Rails app's database (`sqlite3:path`, `postgres://…`, `mysql2://…`), read-only | this or the next |
    /// | `RAILS_AUTH_SESSIONS_URL` | with `rails-authentication` and no database: an internal API, `GET …/{id}` → `{"user_id": 1}`, 404 when signed out | |
    /// | `RAILS_AUTH_COOKIE`, `RAILS_AUTH_SESSIONS_TABLE` | with `rails-authentication`: the signed cookie, the table (`table` or `table(id,user_id)`) | `session_id`, `sessions` |
    /// | `RAILS_AUTH_CACHE_TTL` | with `rails-authentication`: seconds a lookup is reused (a sign-out shows within it; `0` = every request asks) | `2` |
    /// | `RAILS_AUTH_ON_ERROR` | with `rails-authentication`: a failed lookup is `503` (fail-closed) or `signed-out` | `503` |
    /// | `SESSION_STORE` | `config.session_store`: `cookie_store`, `cache_store` (Redis or memcached), `redis_store`, `redis_session_store`, `active_record_store` (features `redis`, `memcached`, `database`) | `cookie_store` |
    /// | `SESSION_STORE_URL` | a server-side store's `redis://` / `rediss://` / `memcached://host:port` / database URL | `DATABASE_URL` for `active_record_store` |
    /// | `SESSION_STORE_NAMESPACE` | the cache `namespace:`, redis-store's namespace, or redis-session-store's `key_prefix` | none (`rack:session` for `redis_store`) |
    /// | `SESSION_STORE_CACHE_FORMAT`, `SESSION_STORE_SERIALIZER`, `SESSION_STORE_TABLE`, `SESSION_STORE_TIMEOUT`, `SESSION_STORE_POOL_SIZE`, `SESSION_STORE_MAX_SIZE` | see [`crate::StoreSettings`] | |
    /// | `DEVISE_SCOPE` | the Warden scope | `user` |
    /// | `DEVISE_TIMEOUT_IN` | Devise `timeout_in` (seconds) for `:timeoutable` | off |
    ///
    /// ```
    /// use rails_session::SessionConfig;
    /// let env = |name: &str| match name {
    ///     "SECRET_KEY_BASE" => Some("x".repeat(128)),
    ///     "SESSION_KEY" => Some("_app_session".into()),
    ///     "RAILS_VERSION" => Some("7.0".into()),
    ///     "DOMAIN" => Some(".app.test".into()),
    ///     _ => None,
    /// };
    /// let config = SessionConfig::from_lookup(env)?;
    /// assert_eq!(config.profile().version().as_str(), "7.0");
    /// # Ok::<(), rails_session::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let secret = get("SECRET_KEY_BASE").ok_or(ConfigError::MissingEnv("SECRET_KEY_BASE"))?;
        let key = get("SESSION_KEY").ok_or(ConfigError::MissingEnv("SESSION_KEY"))?;
        let version = get("RAILS_VERSION").unwrap_or_else(|| "6.1".into());
        let mut profile = Profile::for_version_str(&version)
            .map_err(|e| ConfigError::invalid("RAILS_VERSION", e.to_string()))?;
        if let Some(s) = get("COOKIES_SERIALIZER") {
            let serializer: Serializer = s.parse().map_err(|e: rails_cookie::Error| {
                ConfigError::invalid("COOKIES_SERIALIZER", e.to_string())
            })?;
            profile = profile.cookies_serializer(serializer);
        }
        if let Some(s) = get("SESSION_ENCRYPTED_COOKIE_SALT") {
            profile = profile.encrypted_cookie_salt(s);
        }
        if let Some(s) = get("SESSION_ENCRYPTED_SIGNED_COOKIE_SALT") {
            profile = profile.encrypted_signed_cookie_salt(s);
        }
        if let Some(s) = get("SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT") {
            profile = profile.authenticated_encrypted_cookie_salt(s);
        }
        if let Some(s) = get("SESSION_SIGNED_COOKIE_SALT") {
            profile = profile.signed_cookie_salt(s);
        }
        let mut config = SessionConfig::new(profile, SecretKeyBase::new(secret)?, key)?;
        if let Some(d) = get("DOMAIN") {
            config = config.domain(CookieDomain::parse(&d));
        }
        if let Some(p) = get("SESSION_PATH") {
            config = config.path(p)?;
        }
        if let Some(v) = get("SESSION_SECURE") {
            config = config.secure(parse_bool("SESSION_SECURE", &v)?);
        }
        if let Some(v) = get("SESSION_HTTPONLY") {
            config = config.http_only(parse_bool("SESSION_HTTPONLY", &v)?);
        }
        if let Some(v) = get("SESSION_SAME_SITE") {
            config = config.same_site(match v.trim().to_ascii_lowercase().as_str() {
                "lax" => Some(SameSite::Lax),
                "strict" => Some(SameSite::Strict),
                "none" => Some(SameSite::None),
                "" | "nil" | "off" => None,
                other => {
                    return Err(ConfigError::invalid(
                        "SESSION_SAME_SITE",
                        format!("{other:?} is not lax, strict, none or nil"),
                    ))
                }
            });
        }
        if let Some(v) = get("SESSION_EXPIRE_AFTER") {
            config =
                config.expire_after(Duration::from_secs(parse_secs("SESSION_EXPIRE_AFTER", &v)?));
        }
        if let Some(settings) = StoreSettings::from_lookup(get)? {
            config = config.server_store(&settings)?;
        }
        let auth = get("RAILS_AUTH").unwrap_or_else(|| "devise".into());
        let identity = match auth.trim() {
            "devise" => {
                let mut identity =
                    IdentityConfig::warden(get("DEVISE_SCOPE").unwrap_or_else(|| "user".into()));
                if let Some(v) = get("DEVISE_TIMEOUT_IN") {
                    identity = identity
                        .timeout_in(Duration::from_secs(parse_secs("DEVISE_TIMEOUT_IN", &v)?));
                }
                identity
            }
            "session-key" => {
                // `session[:user_id] = user.id`, or a dotted path for a nested key (`auth.user_id`).
                let key = get("RAILS_AUTH_SESSION_KEY").unwrap_or_else(|| "user_id".into());
                let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return Err(ConfigError::invalid(
                        "RAILS_AUTH_SESSION_KEY",
                        format!("{key:?} is not a session key or a dotted path of keys"),
                    ));
                }
                IdentityConfig::session_path(path)
            }
            "rails-authentication" => rails_authentication(&get)?,
            other => {
                return Err(ConfigError::invalid(
                    "RAILS_AUTH",
                    format!("{other:?} is not devise, session-key or rails-authentication"),
                ))
            }
        };
        Ok(config.identity(identity))
    }

    /// `domain:`.
    pub fn domain(mut self, domain: CookieDomain) -> Self {
        self.domain = domain;
        self
    }

    /// `path:` (must start with `/`).
    pub fn path(mut self, path: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.into();
        if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b';') {
            return Err(ConfigError::invalid("path", "must start with `/` and contain no `;`"));
        }
        self.path = path;
        Ok(self)
    }

    /// `secure:` — the `secure` attribute.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// `httponly:` — the `HttpOnly` attribute (default on). Turning it off lets page scripts read the session
    /// cookie.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// `same_site:` (`None` writes no attribute).
    pub fn same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    /// `expire_after:` — the cookie gets `expires=` and an expiry inside the encrypted envelope, and is re-sent on
    /// every request with a session (sliding expiry), as Rails does.
    pub fn expire_after(mut self, expire_after: Duration) -> Self {
        self.expire_after = Some(expire_after);
        self
    }

    /// How the signed-in user is found in the session (default: Devise's `user` scope).
    pub fn identity(mut self, identity: IdentityConfig) -> Self {
        self.identity = identity;
        self
    }

    /// The CSRF token settings (default: those of the profile's Rails version).
    pub fn csrf(mut self, csrf: CsrfConfig) -> Self {
        self.csrf = csrf;
        self
    }

    /// The cookie store's decode cache: at most `capacity` decoded sessions kept by exact cookie value, each for at
    /// most `ttl` and never past its envelope expiry (default 4096, 60 s; `capacity` 0 turns it off). A browser
    /// that sends the same cookie again then costs a lookup instead of a decryption. Each worker thread keeps the
    /// sessions it decoded (no lock shared between cores on this path); the capacity is for all of them together.
    /// Replaces any store set with [`SessionConfig::store`].
    pub fn decode_cache(mut self, capacity: usize, ttl: Duration) -> Self {
        let store =
            CookieStore::new(self.codec.clone(), self.key.clone()).with_decode_cache(capacity, ttl);
        self.store = Store::Cookie(Arc::new(store));
        self
    }

    /// Keeps sessions in a server-side store (`config.session_store :cache_store` and the others): the cookie then
    /// carries the bare session id. Call it after [`SessionConfig::expire_after`], which is also the records' TTL.
    pub fn server_store(self, settings: &StoreSettings) -> Result<Self, ConfigError> {
        let store = settings.build(self.codec.profile().version(), self.expire_after)?;
        Ok(self.store(store))
    }

    /// Where sessions live: `cookie_store`, or the server-side store's name (`cache_store`, …).
    #[must_use]
    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// Connects to the session store and makes one round trip (nothing to do for the cookie store): what
    /// `railbridge serve --check` reports.
    pub async fn check_store(&self) -> Result<(), crate::StoreError> {
        self.store.check().await
    }

    /// Replaces the cookie store by another [`SessionStore`] (a server-side store, say). The cookie then carries
    /// whatever that store returns from `save`.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Store::Other(Arc::new(store));
        self
    }

    /// Loads the signed-in user with `loader` (Warden's `serialize_from_session`): `CurrentUser<L::User>`
    /// becomes available, and `logged_in` / the 401 guard use this loader and its salt check. A failing loader
    /// answers 503 (see [`SessionConfig::user_loader_with`]).
    pub fn user_loader<L: LoadUser>(self, loader: L) -> Self {
        self.user_loader_with(loader, OnLoaderError::ServiceUnavailable)
    }

    /// [`SessionConfig::user_loader`] with a choice of what a loader failure means.
    pub fn user_loader_with<L: LoadUser>(mut self, loader: L, on_error: OnLoaderError) -> Self {
        self.resolvers.add(loader, on_error);
        self
    }

    /// The JSON body of the 401 answered when a user is required and nobody is signed in (default: Devise's
    /// `{"error": "You need to sign in or sign up before continuing."}`).
    pub fn unauthorized_body(mut self, body: serde_json::Value) -> Self {
        self.unauthorized_body = body;
        self
    }

    /// The session cookie name.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The codec (keys already derived).
    #[must_use]
    pub fn codec(&self) -> &CookieCodec {
        &self.codec
    }

    /// The Rails profile.
    pub fn profile(&self) -> &Profile {
        self.codec.profile()
    }

    /// The CSRF settings.
    pub fn csrf_config(&self) -> &CsrfConfig {
        &self.csrf
    }

    /// The identity settings.
    pub fn identity_config(&self) -> &IdentityConfig {
        &self.identity
    }

    /// `RAILS_AUTH_CACHE_TTL` as `lookup` gives it: how long a Rails 8 authentication lookup is reused (default
    /// 2 s, at most 60: a sign-out in Rails must show within it). For services that keep that cache themselves.
    pub fn rails_auth_cache_ttl(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Duration, ConfigError> {
        let ttl = match lookup("RAILS_AUTH_CACHE_TTL").filter(|v| !v.trim().is_empty()) {
            Some(v) => Duration::from_secs(parse_secs("RAILS_AUTH_CACHE_TTL", &v)?),
            None => Duration::from_secs(2),
        };
        if ttl > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "RAILS_AUTH_CACHE_TTL",
                "at most 60 seconds: a sign-out in Rails must show here within it",
            ));
        }
        Ok(ttl)
    }

    /// The cookie whose value names the login: Rails 8 authentication's signed cookie, otherwise the session
    /// cookie (Devise and session keys live in the session).
    #[must_use]
    pub fn login_cookie_name(&self) -> &str {
        self.identity.login_cookie().unwrap_or(&self.key)
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("codec", &self.codec)
            .field("key", &self.key)
            .field("domain", &self.domain)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("expire_after", &self.expire_after)
            .field("identity", &self.identity)
            .field("csrf", &self.csrf)
            .field("user_loaders", &self.resolvers)
            .finish_non_exhaustive()
    }
}

fn parse_bool(setting: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::invalid(setting, format!("{other:?} is not a boolean"))),
    }
}

fn parse_secs(setting: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::invalid(setting, format!("{v:?} is not a number of seconds")))
}

/// `RAILS_AUTH=rails-authentication`: the signed cookie, looked up in `DATABASE_URL` (or asked of
/// `RAILS_AUTH_SESSIONS_URL`) through a short TTL cache.
#[cfg(any(feature = "database", feature = "user-api"))]
fn rails_authentication(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<IdentityConfig, ConfigError> {
    let ttl = SessionConfig::rails_auth_cache_ttl(get)?;
    let on_error = match get("RAILS_AUTH_ON_ERROR").as_deref().map(str::trim) {
        None | Some("503") => OnLoaderError::ServiceUnavailable,
        Some("signed-out") => OnLoaderError::SignedOut,
        Some(other) => {
            return Err(ConfigError::invalid(
                "RAILS_AUTH_ON_ERROR",
                format!("{other:?} is not 503 or signed-out"),
            ))
        }
    };
    let auth = match (get("DATABASE_URL"), get("RAILS_AUTH_SESSIONS_URL")) {
        (Some(url), _) => database_sessions(get, &url, ttl)?,
        (None, Some(url)) => sessions_api(&url, ttl)?,
        (None, None) => return Err(ConfigError::MissingEnv("DATABASE_URL")),
    };
    let mut auth = auth.on_error(on_error);
    if let Some(cookie) = get("RAILS_AUTH_COOKIE") {
        auth = auth.cookie(cookie.trim());
    }
    Ok(IdentityConfig::rails_authentication(auth))
}

/// The `sessions` rows in the Rails app's database.
#[cfg(feature = "database")]
fn database_sessions(
    get: &dyn Fn(&str) -> Option<String>,
    url: &str,
    ttl: Duration,
) -> Result<crate::identity::RailsAuthentication, ConfigError> {
    use crate::identity::{CachedAuthSessions, DatabaseAuthSessions, RailsAuthentication};
    let mut db = DatabaseAuthSessions::from_database_url(url.trim())?;
    if let Some(t) = get("RAILS_AUTH_SESSIONS_TABLE") {
        // `sessions`, or `sessions(id,user_id)` with the column names.
        let t = t.trim();
        let (table, cols) = match t.split_once('(') {
            Some((table, rest)) => (table, rest.strip_suffix(')').unwrap_or(rest)),
            None => (t, "id,user_id"),
        };
        let (id, user_id) = cols.split_once(',').ok_or_else(|| {
            ConfigError::invalid(
                "RAILS_AUTH_SESSIONS_TABLE",
                format!("{t:?} is not `table` or `table(id,user_id)`"),
            )
        })?;
        db = db.table(table.trim(), id.trim(), user_id.trim())?;
    }
    Ok(RailsAuthentication::new(CachedAuthSessions::new(db, 100_000, ttl)))
}

#[cfg(all(not(feature = "database"), feature = "user-api"))]
fn database_sessions(
    _: &dyn Fn(&str) -> Option<String>,
    _: &str,
    _: Duration,
) -> Result<crate::identity::RailsAuthentication, ConfigError> {
    Err(ConfigError::invalid(
        "DATABASE_URL",
        "reading the Rails app's database needs rails-session's `database` feature (or use RAILS_AUTH_SESSIONS_URL)",
    ))
}

/// The `sessions` rows asked of an internal API (`GET …/{id}` → `{"user_id": …}`, 404 when signed out).
#[cfg(feature = "user-api")]
fn sessions_api(
    url: &str,
    ttl: Duration,
) -> Result<crate::identity::RailsAuthentication, ConfigError> {
    let api = crate::user::HttpUserLoader::builder(url.trim())
        .map_err(|e| ConfigError::invalid("RAILS_AUTH_SESSIONS_URL", e.to_string()))?
        .cache(100_000, ttl, ttl)
        .build()?;
    Ok(crate::identity::RailsAuthentication::new(api))
}

#[cfg(all(not(feature = "user-api"), feature = "database"))]
fn sessions_api(_: &str, _: Duration) -> Result<crate::identity::RailsAuthentication, ConfigError> {
    Err(ConfigError::invalid(
        "RAILS_AUTH_SESSIONS_URL",
        "asking an API needs rails-session's `user-api` feature",
    ))
}

#[cfg(not(any(feature = "database", feature = "user-api")))]
fn rails_authentication(_: &dyn Fn(&str) -> Option<String>) -> Result<IdentityConfig, ConfigError> {
    Err(ConfigError::invalid(
        "RAILS_AUTH",
        "rails-authentication needs rails-session's `database` or `user-api` feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentitySource;

    const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn env_defaults_and_overrides() {
        let c = SessionConfig::from_lookup(env(&[
            ("SECRET_KEY_BASE", SKB),
            ("SESSION_KEY", "_app_session"),
        ]))
        .unwrap();
        assert_eq!(c.profile().version(), RailsVersion::V6_1);
        assert_eq!(
            (c.path.as_str(), c.http_only, c.secure, c.same_site),
            ("/", true, false, Some(SameSite::Lax))
        );
        let c = SessionConfig::from_lookup(env(&[
            ("SECRET_KEY_BASE", SKB),
            ("SESSION_KEY", "_s"),
            ("RAILS_VERSION", "4.2"),
            ("DOMAIN", "all"),
            ("SESSION_EXPIRE_AFTER", "60"),
            ("DEVISE_TIMEOUT_IN", "1800"),
        ]))
        .unwrap();
        assert_eq!(c.same_site, None);
        assert_eq!(c.domain, CookieDomain::All { tld_length: None });
        assert_eq!(c.expire_after, Some(Duration::from_secs(60)));
        assert_eq!(c.identity.timeout_in, Some(Duration::from_secs(1800)));
    }

    #[test]
    fn env_errors_name_the_variable_not_the_secret() {
        let e = SessionConfig::from_lookup(env(&[("SESSION_KEY", "_s")])).unwrap_err();
        assert!(matches!(e, ConfigError::MissingEnv("SECRET_KEY_BASE")));
        let e = SessionConfig::from_lookup(env(&[
            ("SECRET_KEY_BASE", SKB),
            ("SESSION_KEY", "_s"),
            ("RAILS_VERSION", "3.2"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("RAILS_VERSION"), "{e}");
        assert!(SessionConfig::from_lookup(env(&[("SECRET_KEY_BASE", ""), ("SESSION_KEY", "_s")]))
            .is_err());
        // Rails accepts any non-empty secret_key_base, and so does the session layer.
        assert!(SessionConfig::from_lookup(env(&[
            ("SECRET_KEY_BASE", "0123456789abcdef01234567"),
            ("SESSION_KEY", "_s")
        ]))
        .is_ok());
    }

    #[test]
    fn rails_auth_chooses_where_the_login_lives() {
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = vec![("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_s")];
            pairs.extend_from_slice(extra);
            SessionConfig::from_lookup(env(&pairs))
        };
        let c = with(&[("RAILS_AUTH", "session-key")]).unwrap();
        assert_eq!(c.identity.source(), &IdentitySource::SessionPath(vec!["user_id".into()]));
        let c =
            with(&[("RAILS_AUTH", "session-key"), ("RAILS_AUTH_SESSION_KEY", "auth.uid")]).unwrap();
        assert_eq!(
            c.identity.source(),
            &IdentitySource::SessionPath(vec!["auth".into(), "uid".into()])
        );
        assert!(matches!(with(&[]).unwrap().identity.source(), IdentitySource::Warden { .. }));
        let e = with(&[("RAILS_AUTH", "cas")]).unwrap_err().to_string();
        assert!(e.contains("RAILS_AUTH"), "{e}");
        #[cfg(feature = "database")]
        {
            let e = with(&[("RAILS_AUTH", "rails-authentication")]).unwrap_err();
            assert!(matches!(e, ConfigError::MissingEnv("DATABASE_URL")), "{e}");
            let c = with(&[
                ("RAILS_AUTH", "rails-authentication"),
                ("DATABASE_URL", "sqlite3:db/x.sqlite3"),
            ])
            .unwrap();
            assert!(
                matches!(c.identity.source(), IdentitySource::RailsAuthentication(a) if a.cookie_name() == "session_id")
            );
            let with_table = |t: &str| {
                with(&[
                    ("RAILS_AUTH", "rails-authentication"),
                    ("DATABASE_URL", "sqlite3:x"),
                    ("RAILS_AUTH_SESSIONS_TABLE", t),
                ])
            };
            assert!(with_table("auth_sessions(id,account_id)").is_ok());
            assert!(with_table("sessions; drop").is_err());
            let e = with(&[
                ("RAILS_AUTH", "rails-authentication"),
                ("DATABASE_URL", "sqlite3:x"),
                ("RAILS_AUTH_CACHE_TTL", "600"),
            ])
            .unwrap_err()
            .to_string();
            assert!(e.contains("RAILS_AUTH_CACHE_TTL"), "{e}");
        }
        #[cfg(feature = "user-api")]
        {
            let api = |url: &str| {
                with(&[("RAILS_AUTH", "rails-authentication"), ("RAILS_AUTH_SESSIONS_URL", url)])
            };
            assert!(api("http://127.0.0.1:9/internal/sessions/{id}").is_ok());
            let e = api("http://127.0.0.1:9/internal/sessions").unwrap_err().to_string();
            assert!(e.contains("RAILS_AUTH_SESSIONS_URL"), "{e}");
        }
        assert!(with(&[("RAILS_AUTH", "session-key"), ("RAILS_AUTH_SESSION_KEY", "a..b")]).is_err());
    }

    #[test]
    fn bad_names_and_paths_are_refused() {
        let skb = || SecretKeyBase::new(SKB).unwrap();
        assert!(SessionConfig::new(Profile::rails_6_1(), skb(), "a;b").is_err());
        assert!(SessionConfig::new(Profile::rails_6_1(), skb(), "_s")
            .unwrap()
            .path("nope")
            .is_err());
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let c = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new(SKB).unwrap(), "_s")
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("4a7f0c1e"), "{dbg}");
    }
}
