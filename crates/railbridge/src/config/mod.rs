//! Configuration of `railbridge serve`: a TOML file ([`file`], the raw form) checked into a [`Config`]
//! ([`validate`]), with environment variables overriding the file so that a single-upstream deployment runs from
//! the environment alone.
//!
//! | variable | overrides | meaning |
//! |---|---|---|
//! | `SECRET_KEY_BASE` (or `SECRET_KEY_BASE_FILE`) | `[rails] secret_key_base_file` | the Rails app's `secret_key_base` |
//! | `SESSION_KEY`, `RAILS_VERSION`, `DOMAIN`, `COOKIES_SERIALIZER` | `[rails]` `session_key`, `rails_version`, `domain`, `cookies_serializer` | the session cookie |
//! | `SESSION_ENCRYPTED_COOKIE_SALT`, `SESSION_ENCRYPTED_SIGNED_COOKIE_SALT`, `SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT`, `SESSION_SIGNED_COOKIE_SALT` | `[rails]` `*_salt` | the `config.action_dispatch.*_salt` settings |
//! | `SESSION_PATH`, `SESSION_SECURE`, `SESSION_HTTPONLY`, `SESSION_SAME_SITE`, `SESSION_EXPIRE_AFTER` | `[rails]` `path`, `secure`, `httponly`, `same_site`, `expire_after` | cookie attributes of a refreshed session |
//! | `DEVISE_SCOPE`, `DEVISE_TIMEOUT_IN` | `[rails]` `scope`, `timeout_in` | the Warden scope of `signed-in`; Devise `:timeoutable` |
//! | `RAILBRIDGE_LISTEN` (else `PORT` → `0.0.0.0:$PORT`) | `[server] listen` | `host:port` |
//! | `RAILBRIDGE_UPSTREAM` | every `[[route]]` | one route: every path to this URL, signed-in |
//! | `RAILBRIDGE_PUBLIC_PATHS` | `[server] public_paths` | comma-separated path prefixes that need no login |
//! | `RAILBRIDGE_FORWARD_SESSION_COOKIE` | — | with `RAILBRIDGE_UPSTREAM`: pass the session cookie on (a Rails upstream) |
//! | `RAILBRIDGE_TRUSTED_PROXIES` | `[server] trusted_proxies` | comma-separated addresses / CIDR blocks |
//! | `RAILBRIDGE_JWT_KEY_FILE` | the signing `[[jwt.key]]` | PEM private key that signs `X-Railbridge-Assertion` |
//! | `RAILBRIDGE_JWT_ISSUER` | `[jwt] issuer` | `iss` |
//! | `RAILBRIDGE_SESSION_HASH_KEY_FILE` | `[identity] session_hash_key_file` | key of `X-Railbridge-Session` |
//! | `RAILBRIDGE_USER_API_URL`, `RAILBRIDGE_USER_API_TOKEN_FILE` | `[user_api]` `url`, `token_file` | the User API |
//! | `RAILBRIDGE_LOG_FORMAT` | `[log] format` | `text` or `json` |
//! | `RAILBRIDGE_<KEY>` for every other `[server]` key: `RAILBRIDGE_TLS_CERT`, `RAILBRIDGE_TLS_KEY`, `RAILBRIDGE_HTTP_LISTEN`, `RAILBRIDGE_MAX_CONNECTIONS`, `RAILBRIDGE_HEADER_TIMEOUT`, `RAILBRIDGE_BODY_TIMEOUT`, `RAILBRIDGE_CONNECT_TIMEOUT`, `RAILBRIDGE_REQUEST_TIMEOUT`, `RAILBRIDGE_IDLE_TIMEOUT`, `RAILBRIDGE_POOL_IDLE_TIMEOUT`, `RAILBRIDGE_POOL_MAX_IDLE_PER_HOST`, `RAILBRIDGE_DRAIN_TIMEOUT`, `RAILBRIDGE_WORKERS` | `[server] <key>` | as in the file |

mod file;
mod validate;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http::HeaderName;
use rails_session::SessionConfig;

use crate::jwt::KeySet;

/// The configuration that `railbridge serve` uses when given no `--config` and there is no `./railbridge.toml`:
/// the committed `crates/railbridge/railbridge.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../railbridge.toml");

/// A configuration that could not be loaded. The message names the setting (file key and environment variable)
/// and what is wrong with it; it never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown or mistyped keys.
    #[error("{origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// A setting has an unusable value.
    #[error("{field}: {reason}")]
    Invalid {
        /// The setting, e.g. `route[2].upstream` or `RAILBRIDGE_LISTEN`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// A checked configuration: everything parsed, keys derived and loaded. Cheap to clone.
#[derive(Clone)]
#[must_use]
pub struct Config {
    pub(crate) listen: SocketAddr,
    pub(crate) server: ServerConfig,
    pub(crate) session: Option<SessionSettings>,
    pub(crate) routes: Vec<Route>,
    pub(crate) jwt: Option<JwtConfig>,
    pub(crate) fields: Vec<Field>,
    pub(crate) tokens: Option<TokensConfig>,
    /// Identity reuse for an identical cookie (`None`: off).
    pub(crate) identity_cache_ttl: Option<Duration>,
    pub(crate) log: LogConfig,
    pub(crate) warnings: Vec<String>,
}

impl Config {
    /// Loads `path` (or, when `None`, `./railbridge.toml` if it exists, else [`DEFAULT_CONFIG`]) with environment
    /// variables from `lookup` overriding it. Pass `|name| std::env::var(name).ok()` for the process environment.
    ///
    /// ```
    /// use railbridge::Config;
    /// let env = |name: &str| match name {
    ///     "RAILBRIDGE_UPSTREAM" => Some("http://127.0.0.1:3000".to_owned()),
    ///     "RAILBRIDGE_LISTEN" => Some("127.0.0.1:0".to_owned()),
    ///     "SESSION_KEY" => Some("_app_session".to_owned()),
    ///     "SECRET_KEY_BASE" => Some("x".repeat(128)),
    ///     _ => None,
    /// };
    /// let config = Config::from_toml("", "env", env)?;
    /// assert_eq!(config.listen().port(), 0);
    /// # Ok::<(), railbridge::ConfigError>(())
    /// ```
    pub fn load(
        path: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::from_toml(&text, &path.display().to_string(), lookup)
            }
            None if Path::new("railbridge.toml").is_file() => {
                Self::load(Some(Path::new("railbridge.toml")), lookup)
            }
            None => Self::from_toml(DEFAULT_CONFIG, "built-in railbridge.toml", lookup),
        }
    }

    /// Parses a configuration from TOML text; `origin` names it in error messages.
    pub fn from_toml(
        text: &str,
        origin: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: file::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        validate::validate(raw, &|name: &str| lookup(name).filter(|v| !v.trim().is_empty()))
    }

    /// The address to listen on.
    #[must_use]
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Where the login of `signed-in` routes lives, when a `SECRET_KEY_BASE` is configured.
    #[must_use]
    pub fn login_source(&self) -> Option<&rails_session::IdentitySource> {
        self.session.as_ref()?.scopes.first().map(|(_, c)| c.identity_config().source())
    }

    /// The configured `secret_key_base` (none without `SECRET_KEY_BASE`).
    pub(crate) fn secret_key_base(&self) -> Option<&rails_cookie::SecretKeyBase> {
        self.session.as_ref().map(|s| &s.secret_key_base)
    }

    /// The session configuration of the default scope (none without `SECRET_KEY_BASE`).
    #[must_use]
    pub fn session_config(&self) -> Option<&rails_session::SessionConfig> {
        self.session.as_ref()?.scopes.first().map(|(_, c)| &**c)
    }

    /// Client connections served at once (`[server] max_connections`).
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.server.max_connections
    }

    /// The limits and timeouts of `[server]`, one `name: value` line each, for `--check`.
    #[must_use]
    pub fn server_limits(&self) -> Vec<String> {
        let s = &self.server;
        vec![
            format!("header timeout: {:?}", s.header_timeout),
            format!("body timeout: {:?}", s.body_timeout),
            format!("idle timeout: {:?}", s.idle_timeout),
            format!("request timeout: {:?} (routes without their own)", s.request_timeout),
            format!("connect timeout: {:?}", s.connect_timeout),
            format!(
                "upstream pool: {} idle connections per upstream, closed after {:?}",
                s.pool_max_idle_per_host, s.pool_idle_timeout
            ),
            format!("drain timeout: {:?}", s.drain_timeout),
            format!("workers: {}", s.workers),
            format!("tls: {}", if s.tls.is_some() { "on (ALPN h2, http/1.1)" } else { "off" }),
            format!(
                "plain listener: {}",
                s.http_listen.map_or_else(
                    || "none".to_owned(),
                    |a| format!("{a} (health, redirects to https)")
                )
            ),
        ]
    }

    /// One line per route for `--check`: where it goes, how, who may pass, and its limits.
    #[must_use]
    pub fn route_summaries(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| {
                let u = &r.upstream;
                let scheme = if u.transport.tls.is_some() { "https" } else { "http" };
                let mut line = format!(
                    "route {}: {} -> {scheme}://{}{} ({:?}), {}, timeout {:?}",
                    r.name,
                    r.prefix,
                    u.authority,
                    u.base_path,
                    u.transport,
                    match &r.policy {
                        Policy::Public => "public".to_owned(),
                        Policy::SignedIn => "signed-in".to_owned(),
                        Policy::Scope(s) => format!("scope:{s}"),
                    },
                    r.timeout
                );
                match r.max_body_size {
                    Some(n) => line.push_str(&format!(", max body {n} bytes")),
                    None => line.push_str(", no body limit"),
                }
                if let Some((permits, wait)) = &r.upstream_limit {
                    line.push_str(&format!(
                        ", at most {} at the upstream (wait {wait:?})",
                        permits.available_permits()
                    ));
                }
                line
            })
            .collect()
    }

    /// Whether the gateway terminates TLS (its listener speaks https).
    #[must_use]
    pub fn tls(&self) -> bool {
        self.server.tls.is_some()
    }

    /// The token exchange's settings in one line (none when it is off).
    #[must_use]
    pub fn tokens_summary(&self) -> Option<String> {
        let (tokens, jwt) = (self.tokens.as_ref()?, self.jwt.as_ref()?);
        crate::gateway::tokens::Tokens::new(tokens, jwt, None).ok().map(|t| t.describe())
    }

    /// One round trip to the token store (nothing to do in memory).
    pub async fn check_token_store(&self) -> Result<(), String> {
        let (Some(tokens), Some(jwt)) = (self.tokens.as_ref(), self.jwt.as_ref()) else {
            return Ok(());
        };
        crate::gateway::tokens::Tokens::new(tokens, jwt, None)?.check_store().await
    }

    /// Things worth a warning at start-up (no `SECRET_KEY_BASE`, …).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether logs are JSON lines.
    #[must_use]
    pub fn log_json(&self) -> bool {
        self.log.json
    }

    /// The `tracing` filter from `[log] level`, if any (`RUST_LOG` wins over it).
    #[must_use]
    pub fn log_filter(&self) -> Option<&str> {
        self.log.filter.as_deref()
    }

    /// How long a graceful shutdown waits for in-flight requests.
    #[must_use]
    pub fn drain_timeout(&self) -> Duration {
        self.server.drain_timeout
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("server", &self.server)
            .field("session", &self.session)
            .field("routes", &self.routes)
            .field("jwt", &self.jwt)
            .field("fields", &self.fields)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// `[server]`.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) trusted_proxies: Vec<Cidr>,
    pub(crate) public_paths: Vec<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) pool_max_idle_per_host: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) workers: usize,
    /// Client connections served at once; more wait in the kernel's listen backlog.
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request's head, once started (apart from `idle_timeout`).
    pub(crate) header_timeout: Duration,
    /// The longest a client may pause while sending a request body (then 408).
    pub(crate) body_timeout: Duration,
    /// TLS termination, when a certificate is configured.
    pub(crate) tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// With TLS: a plain-HTTP listener for health checks and redirects to https.
    pub(crate) http_listen: Option<SocketAddr>,
}

/// The Rails session: one `rails-session` configuration per Warden scope in use (same derived keys).
#[derive(Clone)]
pub(crate) struct SessionSettings {
    /// The scope of `signed-in`.
    pub(crate) default_scope: String,
    /// Per scope, the default one first; only the default scope uses the User API.
    pub(crate) scopes: Vec<(String, Arc<SessionConfig>)>,
    /// The key of `X-Railbridge-Session`.
    pub(crate) hash_key: ring::hmac::Key,
    /// A User API is configured.
    pub(crate) user_api: bool,
    /// Rails 8 authentication logins: `RAILS_AUTH_CACHE_TTL`, which the gateway's identity cache takes over (keyed
    /// by the signed cookie), so that a sign-out shows within that TTL and the cached path costs what Devise's does.
    pub(crate) login_cache_ttl: Option<Duration>,
    /// The User API client (token refreshes check the Devise salt with it).
    pub(crate) user_loader: Option<rails_session::HttpUserLoader>,
    /// The app's `secret_key_base`, for `serve --check --sample-cookie` (the codecs hold only derived keys).
    pub(crate) secret_key_base: rails_cookie::SecretKeyBase,
}

impl SessionSettings {
    pub(crate) fn cookie_name(&self) -> &str {
        self.scopes.first().map_or("", |(_, c)| c.key())
    }

    /// The signed cookie of a Rails 8 authentication login: a bearer credential, like the session cookie.
    pub(crate) fn login_cookie_name(&self) -> Option<&str> {
        self.scopes.first()?.1.identity_config().login_cookie()
    }
}

impl fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSettings")
            .field("default_scope", &self.default_scope)
            .field("scopes", &self.scopes.iter().map(|(s, _)| s).collect::<Vec<_>>())
            .field("session", &self.scopes.first().map(|(_, c)| c))
            .field("hash_key", &"[redacted]")
            .field("user_api", &self.user_api)
            .finish()
    }
}

/// Who may pass a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Anyone; identity headers are still sent when someone is signed in.
    Public,
    /// A signed-in user of the default Warden scope.
    SignedIn,
    /// A signed-in user of this Warden scope.
    Scope(String),
}

/// Where a route goes.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    pub(crate) authority: Authority,
    /// The `Host` header the upstream gets: the name, with the port unless it is 80.
    pub(crate) host: http::HeaderValue,
    /// The URL's path without its trailing `/` (empty for the root).
    pub(crate) base_path: String,
    /// Plain or TLS, HTTP/1.1 or HTTP/2: shared by the routes with the same settings.
    pub(crate) transport: Arc<crate::gateway::tls::Transport>,
}

impl Upstream {
    /// A plain HTTP/1.1 upstream at `authority`, its `Host` the authority itself.
    #[cfg(test)]
    pub(crate) fn plain(authority: Authority) -> Upstream {
        Upstream {
            host: http::HeaderValue::from_str(authority.as_str())
                .expect("an authority is a header value"),
            authority,
            base_path: String::new(),
            transport: crate::gateway::tls::Transport::plain(),
        }
    }

    /// The port connections go to: the URL's, else the scheme's.
    pub(crate) fn port(&self) -> u16 {
        let default = if self.transport.tls.is_some() { 443 } else { 80 };
        self.authority.port_u16().unwrap_or(default)
    }
}

/// `[[route]]`.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) upstream: Upstream,
    pub(crate) policy: Policy,
    pub(crate) rewrite: Option<String>,
    pub(crate) forward_session_cookie: bool,
    pub(crate) preserve_host: bool,
    pub(crate) assertion: bool,
    pub(crate) timeout: Duration,
    /// `Authorization: Bearer` access tokens are an identity here.
    pub(crate) accept_bearer: bool,
    /// The largest request body forwarded (bytes); over it, 413.
    pub(crate) max_body_size: Option<u64>,
    /// At most this many requests at the upstream at once (shared by the workers), and how long one waits for a
    /// turn before it is answered 503.
    pub(crate) upstream_limit: Option<(Arc<tokio::sync::Semaphore>, Duration)>,
}

/// `[tokens]`, when token exchange is on.
#[derive(Clone)]
pub(crate) struct TokensConfig {
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) audience: String,
    /// `scheme://host[:port]`, lowercase.
    pub(crate) public_origins: Vec<String>,
    pub(crate) store_url: Option<String>,
    pub(crate) revoke_secret: Option<Arc<zeroize::Zeroizing<String>>>,
    /// JWE keys by kid; the first encrypts.
    pub(crate) encryption_keys: Vec<(String, Arc<zeroize::Zeroizing<[u8; 32]>>)>,
}

impl fmt::Debug for TokensConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensConfig")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("audience", &self.audience)
            .field("public_origins", &self.public_origins)
            .field("store", &self.store_url.as_deref().map(rails_session::redact_url))
            .field("revoke_secret", &self.revoke_secret.as_ref().map(|_| "[redacted]"))
            .field(
                "encryption_kids",
                &self.encryption_keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `[jwt]`, when assertions are on.
#[derive(Clone, Debug)]
pub(crate) struct JwtConfig {
    pub(crate) issuer: String,
    pub(crate) ttl: Duration,
    pub(crate) keys: Arc<KeySet>,
}

/// Where an extra identity field comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FieldSource {
    /// A path into the session hash.
    Session(Vec<String>),
    /// A field of the User API's user.
    User(String),
}

/// `[[identity.field]]`.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) source: FieldSource,
    pub(crate) header: Option<HeaderName>,
    pub(crate) claim: Option<String>,
}

/// `[log]`.
#[derive(Clone, Debug)]
pub(crate) struct LogConfig {
    pub(crate) json: bool,
    pub(crate) filter: Option<String>,
    pub(crate) access_log: bool,
}

/// An address block (`10.0.0.0/8`, `::1/128`, or a single address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_eq(u128::from(u32::from(net)), u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn mask_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "v4-mapped v6 peers");
        assert!(Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }
}
