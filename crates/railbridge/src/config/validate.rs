//! Raw file + environment → checked [`Config`]. Every error names the setting (file key or environment variable)
//! and what is wrong with it; secret values are never echoed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http::{HeaderName, Uri};
use rails_session::{HttpUserLoader, IdentityConfig, OnLoaderError, SessionConfig};

use super::file::{RawConfig, RawDuration, RawRails, RawRoute, RawSize, RawTokens, RawUserApi};
use super::{
    Cidr, Config, ConfigError, Field, FieldSource, JwtConfig, LogConfig, Policy, Route,
    ServerConfig, SessionSettings, TokensConfig, Upstream,
};
use crate::gateway::headers::{is_identity_header, IDENTITY_HEADERS};
use crate::gateway::tls::{Transport, TransportSettings};
use crate::jwt::issuer::MAX_TTL;
use crate::jwt::{KeySet, SigningKey};
use base64::Engine as _;

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `rails-session` environment variable ↔ `[rails]` key.
const RAILS_KEYS: &[(&str, &str)] = &[
    ("SESSION_KEY", "session_key"),
    ("RAILS_VERSION", "rails_version"),
    ("COOKIES_SERIALIZER", "cookies_serializer"),
    ("DOMAIN", "domain"),
    ("SESSION_PATH", "path"),
    ("SESSION_SECURE", "secure"),
    ("SESSION_HTTPONLY", "httponly"),
    ("SESSION_SAME_SITE", "same_site"),
    ("SESSION_EXPIRE_AFTER", "expire_after"),
    ("SESSION_ENCRYPTED_COOKIE_SALT", "encrypted_cookie_salt"),
    ("SESSION_ENCRYPTED_SIGNED_COOKIE_SALT", "encrypted_signed_cookie_salt"),
    ("SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT", "authenticated_encrypted_cookie_salt"),
    ("SESSION_SIGNED_COOKIE_SALT", "signed_cookie_salt"),
    ("DEVISE_SCOPE", "scope"),
    ("DEVISE_TIMEOUT_IN", "timeout_in"),
    ("RAILS_AUTH", "auth"),
    ("RAILS_AUTH_SESSION_KEY", "auth_session_key"),
    ("RAILS_AUTH_COOKIE", "auth_cookie"),
    ("RAILS_AUTH_SESSIONS_TABLE", "auth_sessions_table"),
    ("RAILS_AUTH_CACHE_TTL", "auth_cache_ttl"),
    ("RAILS_AUTH_ON_ERROR", "auth_on_error"),
    ("DATABASE_URL", "database_url"),
    ("RAILS_AUTH_SESSIONS_URL", "auth_sessions_url"),
    ("SESSION_STORE", "session_store"),
    ("SESSION_STORE_URL", "session_store_url"),
    ("SESSION_STORE_NAMESPACE", "session_store_namespace"),
    ("SESSION_STORE_CACHE_FORMAT", "session_store_cache_format"),
    ("SESSION_STORE_SERIALIZER", "session_store_serializer"),
    ("SESSION_STORE_TABLE", "session_store_table"),
    ("SESSION_STORE_TIMEOUT", "session_store_timeout"),
    ("SESSION_STORE_POOL_SIZE", "session_store_pool_size"),
    ("SESSION_STORE_MAX_SIZE", "session_store_max_size"),
];

pub(super) fn validate(raw: RawConfig, env: Lookup<'_>) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let listen = listen(raw.server.listen.as_deref(), env)?;
    let server = server(&raw, env)?;
    let routes = routes(&raw.routes, &server, env)?;
    let jwt = jwt(&raw, env)?;
    let fields = fields(&raw)?;
    let tokens = tokens(&raw.tokens, jwt.is_some(), env)?;
    if tokens.is_none() {
        if let Some(r) = routes.iter().find(|r| r.accept_bearer) {
            return Err(ConfigError::invalid(
                "route.accept_bearer",
                format!("route {:?} accepts bearer tokens, but token exchange is off (it needs a [[jwt.key]])", r.name),
            ));
        }
    }
    let user_api = match (env("RAILBRIDGE_USER_API_URL"), raw.user_api) {
        (Some(url), file) => Some(RawUserApi {
            url,
            token_file: file.as_ref().and_then(|f| f.token_file.clone()),
            timeout: file.as_ref().and_then(|f| f.timeout.clone()),
            cache_ttl: file.as_ref().and_then(|f| f.cache_ttl.clone()),
            cache_capacity: file.as_ref().and_then(|f| f.cache_capacity),
            on_error: file.and_then(|f| f.on_error),
        }),
        (None, file) => file,
    };
    if user_api.is_none() && fields.iter().any(|f| matches!(f.source, FieldSource::User(_))) {
        return Err(ConfigError::invalid(
            "identity.field.from",
            "`user.*` fields need a [user_api] section",
        ));
    }
    let session = session(
        &raw.rails,
        &raw.identity.session_hash_key_file,
        user_api.as_ref(),
        &routes,
        env,
        &mut warnings,
    )?;
    if session.is_none() {
        warnings.push(
            "SECRET_KEY_BASE is not set (nor SECRET_KEY_BASE_FILE or [rails] secret_key_base_file): nobody can sign \
             in, so every route that needs a user answers 401; public routes work"
                .to_owned(),
        );
    }
    if routes.is_empty() {
        warnings.push("no [[route]] and no RAILBRIDGE_UPSTREAM: only the built-in /_railbridge/ endpoints answer".into());
    }
    let log = LogConfig {
        json: match env("RAILBRIDGE_LOG_FORMAT").or(raw.log.format) {
            None => false,
            Some(f) => match f.trim().to_ascii_lowercase().as_str() {
                "json" => true,
                "text" | "pretty" | "plain" => false,
                other => {
                    return Err(ConfigError::invalid(
                        "log.format (RAILBRIDGE_LOG_FORMAT)",
                        format!("{other:?} is not text or json"),
                    ))
                }
            },
        },
        filter: raw.log.level,
        access_log: raw.log.access_log.unwrap_or(true),
    };
    let ttl =
        duration("identity.cache_ttl", raw.identity.cache_ttl.as_ref(), Duration::from_secs(2))?;
    if ttl > Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            "identity.cache_ttl",
            "at most 60 s (a sign-out must take effect quickly)",
        ));
    }
    let ttl = session.as_ref().and_then(|s| s.login_cache_ttl).unwrap_or(ttl);
    let identity_cache_ttl = (!ttl.is_zero()).then_some(ttl);
    Ok(Config {
        listen,
        server,
        session,
        routes,
        jwt,
        fields,
        tokens,
        identity_cache_ttl,
        log,
        warnings,
    })
}

fn listen(file: Option<&str>, env: Lookup<'_>) -> Result<SocketAddr, ConfigError> {
    let (field, value) = if let Some(v) = env("RAILBRIDGE_LISTEN") {
        ("RAILBRIDGE_LISTEN", v)
    } else if let Some(port) = env("PORT") {
        ("PORT", format!("0.0.0.0:{}", port.trim()))
    } else if let Some(v) = file {
        ("server.listen", v.to_owned())
    } else {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 8080)));
    };
    let value = value.trim();
    let value = value
        .strip_prefix("localhost:")
        .map_or_else(|| value.to_owned(), |port| format!("127.0.0.1:{port}"));
    value.parse().map_err(|_| {
        ConfigError::invalid(field, format!("{value:?} is not host:port, e.g. 127.0.0.1:8080"))
    })
}

pub(super) fn duration(
    field: &str,
    raw: Option<&RawDuration>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw {
        RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
        RawDuration::Text(t) => parse_duration(t).ok_or_else(|| {
            ConfigError::invalid(
                field,
                format!("{t:?} is not a duration such as 250ms, 5s, 2m or 1h"),
            )
        }),
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn list(env: Lookup<'_>, var: &str) -> Option<Vec<String>> {
    env(var)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
}

fn server(raw: &RawConfig, env: Lookup<'_>) -> Result<ServerConfig, ConfigError> {
    let s = &raw.server;
    let (field, proxies) = match list(env, "RAILBRIDGE_TRUSTED_PROXIES") {
        Some(l) => ("RAILBRIDGE_TRUSTED_PROXIES", l),
        None => ("server.trusted_proxies", s.trusted_proxies.clone()),
    };
    let trusted_proxies = proxies
        .iter()
        .map(|p| {
            Cidr::parse(p).ok_or_else(|| {
                ConfigError::invalid(field, format!("{p:?} is not an IP address or CIDR block"))
            })
        })
        .collect::<Result<_, _>>()?;
    let (field, public_paths) = match list(env, "RAILBRIDGE_PUBLIC_PATHS") {
        Some(l) => ("RAILBRIDGE_PUBLIC_PATHS", l),
        None => ("server.public_paths", s.public_paths.clone()),
    };
    for p in &public_paths {
        check_prefix(field, p)?;
    }
    Ok(ServerConfig {
        trusted_proxies,
        public_paths,
        connect_timeout: server_duration(env, "connect_timeout", s.connect_timeout.as_ref(), 2)?,
        request_timeout: server_duration(env, "request_timeout", s.request_timeout.as_ref(), 30)?,
        idle_timeout: server_duration(env, "idle_timeout", s.idle_timeout.as_ref(), 60)?,
        pool_idle_timeout: server_duration(
            env,
            "pool_idle_timeout",
            s.pool_idle_timeout.as_ref(),
            60,
        )?,
        pool_max_idle_per_host: server_count(
            env,
            "pool_max_idle_per_host",
            s.pool_max_idle_per_host,
            0,
        )?
        .unwrap_or(256),
        header_timeout: above_zero(
            "header_timeout",
            server_duration(env, "header_timeout", s.header_timeout.as_ref(), 10)?,
        )?,
        body_timeout: above_zero(
            "body_timeout",
            server_duration(env, "body_timeout", s.body_timeout.as_ref(), 10)?,
        )?,
        tls: match (
            env("RAILBRIDGE_TLS_CERT").map(std::path::PathBuf::from).or_else(|| s.tls_cert.clone()),
            env("RAILBRIDGE_TLS_KEY").map(std::path::PathBuf::from).or_else(|| s.tls_key.clone()),
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some(crate::gateway::tls::server_config(&cert, &key).map_err(|e| {
                    ConfigError::invalid(
                        "server.tls_cert / tls_key (RAILBRIDGE_TLS_CERT / RAILBRIDGE_TLS_KEY)",
                        e,
                    )
                })?)
            }
            _ => {
                return Err(ConfigError::invalid(
                    "server.tls_cert / tls_key (RAILBRIDGE_TLS_CERT / RAILBRIDGE_TLS_KEY)",
                    "both or neither",
                ))
            }
        },
        http_listen: match env("RAILBRIDGE_HTTP_LISTEN").or_else(|| s.http_listen.clone()) {
            None => None,
            Some(_) if s.tls_cert.is_none() && env("RAILBRIDGE_TLS_CERT").is_none() => {
                return Err(ConfigError::invalid(
                    "server.http_listen (RAILBRIDGE_HTTP_LISTEN)",
                    "a plain listener beside TLS needs tls_cert and tls_key (without them `listen` is plain already)",
                ))
            }
            Some(v) => Some(v.trim().parse().map_err(|_| {
                ConfigError::invalid(
                    "server.http_listen (RAILBRIDGE_HTTP_LISTEN)",
                    format!("{v:?} is not host:port, e.g. 0.0.0.0:80"),
                )
            })?),
        },
        max_connections: server_count(env, "max_connections", s.max_connections, 1)?
            .unwrap_or(10_000),
        drain_timeout: server_duration(env, "drain_timeout", s.drain_timeout.as_ref(), 30)?,
        workers: match server_count(env, "workers", s.workers, 1)? {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        },
    })
}

/// The environment variable of a `[server]` key: `RAILBRIDGE_` and the key in capitals.
fn server_env(key: &str) -> String {
    format!("RAILBRIDGE_{}", key.to_ascii_uppercase())
}

/// A `[server]` duration: the environment variable, else the file, else `default_secs`.
fn server_duration(
    env: Lookup<'_>,
    key: &str,
    file: Option<&RawDuration>,
    default_secs: u64,
) -> Result<Duration, ConfigError> {
    let var = server_env(key);
    let field = format!("server.{key} ({var})");
    let raw = env(&var).map(RawDuration::Text);
    duration(&field, raw.as_ref().or(file), Duration::from_secs(default_secs))
}

/// A `[server]` duration that cannot be zero (a clock that would fire at once).
fn above_zero(key: &str, t: Duration) -> Result<Duration, ConfigError> {
    if t.is_zero() {
        return Err(ConfigError::invalid(
            format!("server.{key} ({})", server_env(key)),
            "must be above 0",
        ));
    }
    Ok(t)
}

/// A `[server]` count of at least `min`: the environment variable, else the file (`None`: neither sets it).
fn server_count(
    env: Lookup<'_>,
    key: &str,
    file: Option<usize>,
    min: usize,
) -> Result<Option<usize>, ConfigError> {
    let var = server_env(key);
    let n = match env(&var) {
        Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            ConfigError::invalid(format!("server.{key} ({var})"), format!("{v:?} is not a number"))
        })?),
        None => file,
    };
    match n {
        Some(n) if n < min => Err(ConfigError::invalid(
            format!("server.{key} ({var})"),
            format!("must be at least {min}"),
        )),
        n => Ok(n),
    }
}

fn check_prefix(field: &str, p: &str) -> Result<(), ConfigError> {
    if !p.starts_with('/') || p.contains(['?', '#', ' ']) || p.contains("//") {
        return Err(ConfigError::invalid(
            field,
            format!("{p:?} is not a path prefix: it must start with `/` and have no query"),
        ));
    }
    Ok(())
}

fn routes(
    raw: &[RawRoute],
    server: &ServerConfig,
    env: Lookup<'_>,
) -> Result<Vec<Route>, ConfigError> {
    if let Some(url) = env("RAILBRIDGE_UPSTREAM") {
        let forward = match env("RAILBRIDGE_FORWARD_SESSION_COOKIE") {
            Some(v) => parse_bool("RAILBRIDGE_FORWARD_SESSION_COOKIE", &v)?,
            None => false,
        };
        return Ok(vec![Route {
            name: "default".into(),
            prefix: "/".into(),
            upstream: upstream(
                "RAILBRIDGE_UPSTREAM",
                &url,
                TransportSettings::default(),
                &mut Transports::new(),
            )?,
            policy: Policy::SignedIn,
            rewrite: None,
            forward_session_cookie: forward,
            preserve_host: false,
            assertion: true,
            timeout: server.request_timeout,
            accept_bearer: false,
            max_body_size: None,
            upstream_limit: None,
        }]);
    }
    let mut routes: Vec<Route> = Vec::with_capacity(raw.len());
    let mut transports = Transports::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |key: &str| format!("route[{i}].{key}");
        check_prefix(&at("prefix"), &r.prefix)?;
        let prefix = if r.prefix.len() > 1 {
            r.prefix.trim_end_matches('/').to_owned()
        } else {
            r.prefix.clone()
        };
        let name = match &r.name {
            Some(n) => n.clone(),
            None if prefix == "/" => "root".into(),
            None => prefix.trim_start_matches('/').replace('/', "-"),
        };
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ConfigError::invalid(
                at("name"),
                format!("{name:?} must be letters, digits, `-`, `_` or `.`"),
            ));
        }
        if let Some(other) = routes.iter().find(|o| o.name == name) {
            return Err(ConfigError::invalid(
                at("name"),
                format!("{name:?} is already the name of the route for {}", other.prefix),
            ));
        }
        if let Some(other) = routes.iter().find(|o| o.prefix == prefix) {
            return Err(ConfigError::invalid(
                at("prefix"),
                format!("{prefix:?} is already the prefix of route {:?}", other.name),
            ));
        }
        let policy = match r.policy.as_deref().map(str::trim) {
            None | Some("signed-in" | "signed_in" | "user") => Policy::SignedIn,
            Some("public") => Policy::Public,
            Some(p) => match p.strip_prefix("scope:") {
                Some(scope) if valid_scope(scope) => Policy::Scope(scope.to_owned()),
                _ => {
                    return Err(ConfigError::invalid(
                        at("policy"),
                        format!("{p:?} is not `public`, `signed-in` or `scope:<warden scope>`"),
                    ))
                }
            },
        };
        if let Some(rw) = &r.rewrite {
            if !rw.starts_with('/') {
                return Err(ConfigError::invalid(
                    at("rewrite"),
                    format!("{rw:?} must start with `/`"),
                ));
            }
        }
        routes.push(Route {
            name,
            prefix,
            upstream: upstream(
                &at("upstream"),
                &r.upstream,
                TransportSettings {
                    https: false,
                    http2: r.http2.unwrap_or(false),
                    ca_file: r.ca_file.clone(),
                    client_cert: r.client_cert.clone(),
                    client_key: r.client_key.clone(),
                },
                &mut transports,
            )?,
            policy,
            rewrite: r.rewrite.clone(),
            forward_session_cookie: r.forward_session_cookie.unwrap_or(false),
            preserve_host: r.preserve_host.unwrap_or(false),
            assertion: r.assertion.unwrap_or(true),
            timeout: duration(&at("timeout"), r.timeout.as_ref(), server.request_timeout)?,
            accept_bearer: r.accept_bearer.unwrap_or(false),
            max_body_size: r
                .max_body_size
                .as_ref()
                .map(|s| size(&at("max_body_size"), s))
                .transpose()?,
            upstream_limit: match r.max_connections {
                None => None,
                Some(0) => {
                    return Err(ConfigError::invalid(at("max_connections"), "must be above 0"))
                }
                Some(n) => Some((
                    Arc::new(tokio::sync::Semaphore::new(
                        n.min(tokio::sync::Semaphore::MAX_PERMITS),
                    )),
                    duration(
                        &at("queue_timeout"),
                        r.queue_timeout.as_ref(),
                        Duration::from_secs(1),
                    )?,
                )),
            },
        });
    }
    Ok(routes)
}

fn valid_scope(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The transports built so far, by their settings: routes with the same settings share one, and so share pooled
/// connections; routes with other settings never do.
type Transports = HashMap<TransportSettings, Arc<Transport>>;

fn upstream(
    field: &str,
    url: &str,
    mut settings: TransportSettings,
    transports: &mut Transports,
) -> Result<Upstream, ConfigError> {
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(field, format!("{url:?} is not a URL")))?;
    settings.https = match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => false,
        Some(s) if *s == Scheme::HTTPS => true,
        _ => {
            return Err(ConfigError::invalid(
                field,
                format!("{url:?}: an upstream URL is http:// or https://"),
            ))
        }
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ConfigError::invalid(field, format!("{url:?} has no host")))?;
    if authority.as_str().contains('@') {
        return Err(ConfigError::invalid(field, "credentials in the URL are not supported"));
    }
    if uri.query().is_some() {
        return Err(ConfigError::invalid(
            field,
            format!("{url:?}: an upstream URL cannot have a query"),
        ));
    }
    // The `Host` an upstream gets (unless the route preserves the client's): its name, and the port unless it is
    // the scheme's.
    let default_port = if settings.https { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => authority.as_str().to_owned(),
        _ => authority.host().to_owned(),
    };
    let host = http::HeaderValue::try_from(host).map_err(|_| {
        ConfigError::invalid(field, format!("{url:?}: the host is not a valid Host header"))
    })?;
    if settings.https {
        // The name the certificate must carry, sent as SNI (an IP address is verified as one, without SNI).
        let name = authority.host().trim_start_matches('[').trim_end_matches(']');
        rustls_pki_types::ServerName::try_from(name).map_err(|_| {
            ConfigError::invalid(field, format!("{url:?}: {name:?} is not a TLS server name"))
        })?;
    }
    let transport = match transports.get(&settings) {
        Some(t) => t.clone(),
        None => {
            let t = settings.build().map_err(|e| ConfigError::invalid(field, e))?;
            transports.insert(settings, t.clone());
            t
        }
    };
    Ok(Upstream {
        authority,
        host,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        transport,
    })
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::invalid(field, format!("{other:?} is not true or false"))),
    }
}

fn read_secret(field: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: format!("{field} {}", path.display()),
        source,
    })?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ConfigError::invalid(field, format!("{} is empty", path.display())));
    }
    Ok(text)
}

fn rails_file_value(r: &RawRails, key: &str) -> Option<String> {
    let s = |v: &Option<String>| v.clone();
    match key {
        "session_key" => s(&r.session_key),
        "rails_version" => s(&r.rails_version),
        "cookies_serializer" => s(&r.cookies_serializer),
        "domain" => s(&r.domain),
        "path" => s(&r.path),
        "secure" => r.secure.map(|b| b.to_string()),
        "httponly" => r.httponly.map(|b| b.to_string()),
        "same_site" => s(&r.same_site),
        "expire_after" => r.expire_after.map(|n| n.to_string()),
        "encrypted_cookie_salt" => s(&r.encrypted_cookie_salt),
        "encrypted_signed_cookie_salt" => s(&r.encrypted_signed_cookie_salt),
        "authenticated_encrypted_cookie_salt" => s(&r.authenticated_encrypted_cookie_salt),
        "signed_cookie_salt" => s(&r.signed_cookie_salt),
        "scope" => s(&r.scope),
        "timeout_in" => r.timeout_in.map(|n| n.to_string()),
        "auth" => s(&r.auth),
        "auth_session_key" => s(&r.auth_session_key),
        "auth_cookie" => s(&r.auth_cookie),
        "auth_sessions_table" => s(&r.auth_sessions_table),
        "auth_cache_ttl" => r.auth_cache_ttl.map(|n| n.to_string()),
        "auth_on_error" => s(&r.auth_on_error),
        "database_url" => r.database_url.as_ref().map(|u| u.0.clone()),
        "auth_sessions_url" => s(&r.auth_sessions_url),
        "session_store" => s(&r.session_store),
        "session_store_url" => r.session_store_url.as_ref().map(|u| u.0.clone()),
        "session_store_namespace" => s(&r.session_store_namespace),
        "session_store_cache_format" => s(&r.session_store_cache_format),
        "session_store_serializer" => s(&r.session_store_serializer),
        "session_store_table" => s(&r.session_store_table),
        "session_store_timeout" => r.session_store_timeout.map(|n| n.to_string()),
        "session_store_pool_size" => r.session_store_pool_size.map(|n| n.to_string()),
        "session_store_max_size" => r.session_store_max_size.map(|n| n.to_string()),
        _ => None,
    }
}

fn session(
    rails: &RawRails,
    hash_key_file: &Option<std::path::PathBuf>,
    user_api: Option<&RawUserApi>,
    routes: &[Route],
    env: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<SessionSettings>, ConfigError> {
    let secret = if let Some(s) = env("SECRET_KEY_BASE") {
        s
    } else if let Some(p) = env("SECRET_KEY_BASE_FILE") {
        read_secret("SECRET_KEY_BASE_FILE", Path::new(&p))?
    } else if let Some(p) = &rails.secret_key_base_file {
        read_secret("rails.secret_key_base_file", p)?
    } else {
        return Ok(None);
    };
    // Rails runs with any non-empty secret_key_base, so the gateway does too; a short one is worth a warning.
    if !secret.is_empty() && secret.len() < rails_cookie::SecretKeyBase::RECOMMENDED_LEN {
        warnings.push(format!(
            "SECRET_KEY_BASE is {} bytes, shorter than the {} recommended (`bin/rails secret` writes 128): cookies \
             signed with a short secret are easier to forge",
            secret.len(),
            rails_cookie::SecretKeyBase::RECOMMENDED_LEN
        ));
    }
    let configured = |name: &str| -> Option<String> {
        if name == "SECRET_KEY_BASE" {
            return Some(secret.clone());
        }
        env(name).or_else(|| {
            let key = RAILS_KEYS.iter().find(|(var, _)| *var == name)?.1;
            rails_file_value(rails, key)
        })
    };
    // Rails 8 authentication: the gateway's identity cache, keyed by the signed cookie, is the one cache (a second
    // one under it would add its TTL to the time a sign-out takes to show).
    let rails_authentication =
        configured("RAILS_AUTH").is_some_and(|a| a.trim() == "rails-authentication");
    let login_cache_ttl = if rails_authentication {
        Some(SessionConfig::rails_auth_cache_ttl(configured).map_err(|e| rails_error(&e))?)
    } else {
        None
    };
    let lookup = |name: &str| -> Option<String> {
        if rails_authentication && name == "RAILS_AUTH_CACHE_TTL" {
            return Some("0".into());
        }
        configured(name)
    };
    // Where the login lives (rails-session reads the same variables): Devise scopes apply to `devise` only.
    let auth = lookup("RAILS_AUTH").map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let devise = auth.as_deref().is_none_or(|a| a == "devise");
    if !devise {
        if let Some(route) = routes.iter().find(|r| matches!(r.policy, Policy::Scope(_))) {
            return Err(ConfigError::invalid(
                "route.policy",
                format!(
                    "route {:?} asks for a Warden scope, which only Devise logins have (RAILS_AUTH={})",
                    route.name,
                    auth.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    let base = SessionConfig::from_lookup(lookup).map_err(|e| rails_error(&e))?;
    let default_scope = lookup("DEVISE_SCOPE").unwrap_or_else(|| "user".into());
    if !valid_scope(&default_scope) {
        return Err(ConfigError::invalid(
            "rails.scope (DEVISE_SCOPE)",
            format!("{default_scope:?} is not a Warden scope name"),
        ));
    }
    let identity_for = |scope: &str| {
        // Same timeout settings as the configured identity, for another scope.
        let mut identity = IdentityConfig::warden(scope);
        if let Some(t) = lookup("DEVISE_TIMEOUT_IN").and_then(|v| v.trim().parse::<u64>().ok()) {
            identity = identity.timeout_in(Duration::from_secs(t));
        }
        identity
    };
    let mut default =
        if devise { base.clone().identity(identity_for(&default_scope)) } else { base.clone() };
    let mut loader = None;
    if let Some(api) = user_api {
        let l = user_loader(api)?;
        loader = Some(l.clone());
        default = default.user_loader_with(l, on_error(api)?);
    }
    let mut scopes = vec![(default_scope.clone(), Arc::new(default))];
    for route in routes {
        if let Policy::Scope(s) = &route.policy {
            if !scopes.iter().any(|(have, _)| have == s) {
                scopes.push((s.clone(), Arc::new(base.clone().identity(identity_for(s)))));
            }
        }
    }
    let hash_key = match env("RAILBRIDGE_SESSION_HASH_KEY_FILE") {
        Some(p) => read_secret("RAILBRIDGE_SESSION_HASH_KEY_FILE", Path::new(&p))?.into_bytes(),
        None => match hash_key_file {
            Some(p) => read_secret("identity.session_hash_key_file", p)?.into_bytes(),
            None => {
                // Derived from secret_key_base under a label of its own: stable across restarts and instances.
                let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
                ring::hmac::sign(&k, b"railbridge X-Railbridge-Session v1").as_ref().to_vec()
            }
        },
    };
    Ok(Some(SessionSettings {
        default_scope,
        scopes,
        hash_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hash_key),
        user_api: user_api.is_some(),
        user_loader: loader,
        login_cache_ttl,
        secret_key_base: rails_cookie::SecretKeyBase::new(secret.as_str())
            .map_err(|e| ConfigError::invalid("SECRET_KEY_BASE", e.to_string()))?,
    }))
}

/// Names both the environment variable and the file key in a `rails-session` configuration error.
fn rails_error(e: &rails_session::ConfigError) -> ConfigError {
    let name = |var: &str| match RAILS_KEYS.iter().find(|(v, _)| *v == var) {
        Some((_, key)) => format!("rails.{key} ({var})"),
        None => var.to_owned(),
    };
    match e {
        rails_session::ConfigError::MissingEnv(var) => {
            ConfigError::invalid(name(var), "is not set")
        }
        rails_session::ConfigError::Invalid { setting, reason } => {
            ConfigError::invalid(name(setting), reason.clone())
        }
        other => ConfigError::invalid("rails", other.to_string()),
    }
}

fn user_loader(api: &RawUserApi) -> Result<HttpUserLoader, ConfigError> {
    let err = |e: rails_session::ConfigError| {
        ConfigError::invalid("user_api.url (RAILBRIDGE_USER_API_URL)", e.to_string())
    };
    let mut builder = HttpUserLoader::builder(api.url.clone()).map_err(err)?;
    if let Some(p) = &api.token_file {
        let token = read_secret("user_api.token_file", p)?;
        builder = builder.bearer_token(&token).map_err(|_| {
            ConfigError::invalid("user_api.token_file", "the token is not a valid header value")
        })?;
    }
    let ttl = duration("user_api.cache_ttl", api.cache_ttl.as_ref(), Duration::from_secs(10))?;
    builder = builder
        .timeout(duration("user_api.timeout", api.timeout.as_ref(), Duration::from_secs(2))?)
        .cache(api.cache_capacity.unwrap_or(10_000), ttl, ttl.min(Duration::from_secs(5)));
    builder.build().map_err(err)
}

fn on_error(api: &RawUserApi) -> Result<OnLoaderError, ConfigError> {
    match api.on_error.as_deref().map(str::trim) {
        None | Some("503") => Ok(OnLoaderError::ServiceUnavailable),
        Some("signed-out" | "signed_out" | "401") => Ok(OnLoaderError::SignedOut),
        Some(other) => Err(ConfigError::invalid(
            "user_api.on_error",
            format!("{other:?} is not \"503\" or \"signed-out\""),
        )),
    }
}

fn jwt(raw: &RawConfig, env: Lookup<'_>) -> Result<Option<JwtConfig>, ConfigError> {
    let j = &raw.jwt;
    let mut keys = Vec::new();
    let mut signing = None;
    if let Some(p) = env("RAILBRIDGE_JWT_KEY_FILE") {
        keys.push(
            SigningKey::from_file(Path::new(&p), None)
                .map_err(|e| ConfigError::invalid("RAILBRIDGE_JWT_KEY_FILE", e.to_string()))?,
        );
        signing = Some(0);
    }
    for (i, k) in j.keys.iter().enumerate() {
        let key = SigningKey::from_file(&k.file, k.kid.clone())
            .map_err(|e| ConfigError::invalid(format!("jwt.key[{i}].file"), e.to_string()))?;
        if k.sign == Some(true) {
            if signing.is_some() && env("RAILBRIDGE_JWT_KEY_FILE").is_none() {
                return Err(ConfigError::invalid(
                    format!("jwt.key[{i}].sign"),
                    "only one key can sign",
                ));
            }
            signing = signing.or(Some(keys.len()));
        }
        keys.push(key);
    }
    let enabled = j.enabled.unwrap_or(!keys.is_empty());
    if !enabled {
        return Ok(None);
    }
    if keys.is_empty() {
        return Err(ConfigError::invalid("jwt.enabled", "assertions are on but there is no key: set RAILBRIDGE_JWT_KEY_FILE or add a [[jwt.key]]"));
    }
    let ttl = duration("jwt.ttl", j.ttl.as_ref(), Duration::from_secs(120))?;
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ConfigError::invalid(
            "jwt.ttl",
            format!("{}s: an assertion lives between 1 s and 300 s", ttl.as_secs()),
        ));
    }
    let set =
        KeySet::new(keys, signing.unwrap_or(0)).map_err(|e| ConfigError::invalid("jwt.key", e))?;
    let issuer = env("RAILBRIDGE_JWT_ISSUER")
        .or_else(|| j.issuer.clone())
        .unwrap_or_else(|| "railbridge".into());
    Ok(Some(JwtConfig { issuer, ttl, keys: Arc::new(set) }))
}

fn fields(raw: &RawConfig) -> Result<Vec<Field>, ConfigError> {
    const REGISTERED: [&str; 9] = ["iss", "aud", "sub", "sid", "scope", "iat", "exp", "jti", "nbf"];
    let mut out: Vec<Field> = Vec::new();
    for (i, f) in raw.identity.fields.iter().enumerate() {
        let at = |k: &str| format!("identity.field[{i}].{k}");
        let source = if let Some(path) = f.from.strip_prefix("session.") {
            let parts: Vec<String> = path.split('.').map(String::from).collect();
            if parts.iter().any(String::is_empty) {
                return Err(ConfigError::invalid(
                    at("from"),
                    format!("{:?} has an empty key", f.from),
                ));
            }
            FieldSource::Session(parts)
        } else if let Some(name) = f.from.strip_prefix("user.").filter(|n| !n.is_empty()) {
            if name == "authenticatable_salt" {
                return Err(ConfigError::invalid(
                    at("from"),
                    "the authenticatable salt is never forwarded",
                ));
            }
            FieldSource::User(name.to_owned())
        } else {
            return Err(ConfigError::invalid(
                at("from"),
                format!("{:?} is not `session.<key>` or `user.<field>`", f.from),
            ));
        };
        if let FieldSource::Session(p) = &source {
            if p.first().is_some_and(|k| {
                k == "session_id" || k == "_csrf_token" || k.starts_with("warden.")
            }) {
                return Err(ConfigError::invalid(
                    at("from"),
                    "the session id, CSRF token and Warden keys are never forwarded",
                ));
            }
        }
        let header = match &f.header {
            None => None,
            Some(h) => {
                let name = HeaderName::try_from(h.as_str()).map_err(|_| {
                    ConfigError::invalid(at("header"), format!("{h:?} is not a header name"))
                })?;
                if !is_identity_header(name.as_str()) || IDENTITY_HEADERS.contains(&name) {
                    return Err(ConfigError::invalid(
                        at("header"),
                        format!("{h:?} must be in the X-Railbridge- namespace (so clients cannot forge it) and not one of User, Scope, Session, Assertion"),
                    ));
                }
                Some(name)
            }
        };
        if let Some(c) = &f.claim {
            if c.is_empty() || REGISTERED.contains(&c.as_str()) {
                return Err(ConfigError::invalid(
                    at("claim"),
                    format!("{c:?} is empty or a registered claim"),
                ));
            }
        }
        if header.is_none() && f.claim.is_none() {
            return Err(ConfigError::invalid(
                at("header"),
                "a field needs a header, a claim or both",
            ));
        }
        out.push(Field { source, header, claim: f.claim.clone() });
    }
    Ok(out)
}

/// A size in bytes: an integer, or a number with `B`, `KB`/`MB`/`GB` (powers of 1000) or `KiB`/`MiB`/`GiB`.
fn size(field: &str, raw: &RawSize) -> Result<u64, ConfigError> {
    let text = match raw {
        RawSize::Bytes(n) => return Ok(*n),
        RawSize::Text(t) => t.trim(),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(ConfigError::invalid(
                field,
                format!("{text:?}: the unit is one of B, KB, MB, GB, KiB, MiB, GiB"),
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| ConfigError::invalid(field, format!("{text:?} is not a size")))
}

/// `[tokens]`: on by default when a JWT signing key exists.
fn tokens(
    raw: &RawTokens,
    has_keys: bool,
    env: Lookup<'_>,
) -> Result<Option<TokensConfig>, ConfigError> {
    match raw.enabled {
        Some(false) => return Ok(None),
        Some(true) if !has_keys => {
            return Err(ConfigError::invalid(
                "tokens.enabled",
                "token exchange signs access tokens with the gateway's JWT key: add a [[jwt.key]] or RAILBRIDGE_JWT_KEY_FILE",
            ))
        }
        _ if !has_keys => return Ok(None),
        _ => {}
    }
    let access_ttl =
        duration("tokens.access_ttl", raw.access_ttl.as_ref(), Duration::from_secs(300))?;
    if access_ttl < Duration::from_secs(1) || access_ttl > Duration::from_secs(15 * 60) {
        return Err(ConfigError::invalid(
            "tokens.access_ttl",
            "an access token lives between 1 s and 15 minutes",
        ));
    }
    let refresh_lifetime = duration(
        "tokens.refresh_lifetime",
        raw.refresh_lifetime.as_ref(),
        Duration::from_secs(24 * 3600),
    )?;
    if refresh_lifetime < access_ttl || refresh_lifetime > Duration::from_secs(90 * 24 * 3600) {
        return Err(ConfigError::invalid(
            "tokens.refresh_lifetime",
            "between the access token's lifetime and 90 days",
        ));
    }
    let audience = raw.audience.clone().unwrap_or_else(|| "railbridge-api".into());
    if audience.is_empty() || audience.len() > 200 {
        return Err(ConfigError::invalid("tokens.audience", "1 to 200 characters"));
    }
    let mut public_origins = Vec::new();
    for o in &raw.public_origins {
        let lower = o.trim().trim_end_matches('/').to_ascii_lowercase();
        let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
            && !lower.split("://").nth(1).unwrap_or("").is_empty()
            && !lower.split("://").nth(1).unwrap_or("").contains(['/', '?', '#', '@']);
        if !ok {
            return Err(ConfigError::invalid(
                "tokens.public_origins",
                format!("{o:?} is not an origin (scheme://host[:port])"),
            ));
        }
        public_origins.push(lower);
    }
    let store_url =
        env("RAILBRIDGE_TOKEN_STORE_URL").or_else(|| raw.store_url.as_ref().map(|u| u.0.clone()));
    if let Some(url) = &store_url {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::invalid(
                "tokens.store_url (RAILBRIDGE_TOKEN_STORE_URL)",
                "a redis:// or rediss:// URL",
            ));
        }
    }
    let revoke_secret = match (env("RAILBRIDGE_REVOKE_SECRET"), &raw.revoke_secret_file) {
        (Some(s), _) => Some(s),
        (None, Some(p)) => Some(read_secret("tokens.revoke_secret_file", p)?),
        (None, None) => None,
    };
    if revoke_secret.as_ref().is_some_and(|s| s.len() < 32) {
        return Err(ConfigError::invalid(
            "tokens.revoke_secret_file (RAILBRIDGE_REVOKE_SECRET)",
            "at least 32 characters (`openssl rand -hex 32`)",
        ));
    }
    let mut encryption_keys = Vec::new();
    for (i, p) in raw.encryption_key_files.iter().enumerate() {
        let field = format!("tokens.encryption_key_files[{i}]");
        let text = zeroize::Zeroizing::new(read_secret(&field, p)?);
        let bytes = zeroize::Zeroizing::new(match hex::decode(text.trim()) {
            Ok(b) => b,
            Err(_) => {
                base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| {
                    ConfigError::invalid(&field, "neither 64 hex characters nor base64")
                })?
            }
        });
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            ConfigError::invalid(&field, format!("{} bytes; an A256GCM key is 32", bytes.len()))
        })?;
        // The kid names the key without revealing it: the first 8 bytes of its SHA-256, hex.
        let digest = ring::digest::digest(&ring::digest::SHA256, &key);
        let kid = hex::encode(&digest.as_ref()[..8]);
        encryption_keys.push((kid, Arc::new(zeroize::Zeroizing::new(key))));
    }
    Ok(Some(TokensConfig {
        access_ttl,
        refresh_lifetime,
        audience,
        public_origins,
        store_url,
        revoke_secret: revoke_secret.map(|s| Arc::new(zeroize::Zeroizing::new(s))),
        encryption_keys,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

    fn err(toml: &str, pairs: &[(&str, &str)]) -> String {
        Config::from_toml(toml, "test.toml", env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn env_alone_is_a_single_upstream_deployment() {
        let c = Config::from_toml(
            "",
            "none",
            env(&[
                ("SECRET_KEY_BASE", SKB),
                ("SESSION_KEY", "_app_session"),
                ("RAILBRIDGE_UPSTREAM", "http://127.0.0.1:3000/base/"),
                ("RAILBRIDGE_PUBLIC_PATHS", "/assets, /users/sign_in"),
                ("PORT", "5000"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(c.routes.len(), 1);
        assert_eq!((c.routes[0].prefix.as_str(), &c.routes[0].policy), ("/", &Policy::SignedIn));
        assert_eq!(c.routes[0].upstream.base_path, "/base");
        assert_eq!(c.server.public_paths, ["/assets", "/users/sign_in"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.session.as_ref().unwrap().cookie_name(), "_app_session");
    }

    #[test]
    fn every_server_key_has_its_environment_variable() {
        let toml = "[server]\nconnect_timeout = 1\nrequest_timeout = 1\nidle_timeout = 1\npool_idle_timeout = 1\npool_max_idle_per_host = 1\ndrain_timeout = 1\nworkers = 1\nmax_connections = 1\nheader_timeout = 1\nbody_timeout = 1\n";
        let vars = [
            ("RAILBRIDGE_CONNECT_TIMEOUT", "3s"),
            ("RAILBRIDGE_REQUEST_TIMEOUT", "4s"),
            ("RAILBRIDGE_IDLE_TIMEOUT", "5s"),
            ("RAILBRIDGE_POOL_IDLE_TIMEOUT", "6s"),
            ("RAILBRIDGE_POOL_MAX_IDLE_PER_HOST", "7"),
            ("RAILBRIDGE_DRAIN_TIMEOUT", "8s"),
            ("RAILBRIDGE_WORKERS", "9"),
            ("RAILBRIDGE_MAX_CONNECTIONS", "10"),
            ("RAILBRIDGE_HEADER_TIMEOUT", "11s"),
            ("RAILBRIDGE_BODY_TIMEOUT", "12s"),
        ];
        let s = Config::from_toml(toml, "t", env(&vars)).unwrap().server;
        let secs = |d: Duration| d.as_secs();
        assert_eq!(
            [
                secs(s.connect_timeout),
                secs(s.request_timeout),
                secs(s.idle_timeout),
                secs(s.pool_idle_timeout),
                s.pool_max_idle_per_host as u64,
                secs(s.drain_timeout),
                s.workers as u64,
                s.max_connections as u64,
                secs(s.header_timeout),
                secs(s.body_timeout),
            ],
            [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        assert_eq!(
            err("", &[("RAILBRIDGE_IDLE_TIMEOUT", "soon")]),
            "server.idle_timeout (RAILBRIDGE_IDLE_TIMEOUT): \"soon\" is not a duration such as 250ms, 5s, 2m or 1h"
        );
        assert_eq!(
            err("", &[("RAILBRIDGE_WORKERS", "many")]),
            "server.workers (RAILBRIDGE_WORKERS): \"many\" is not a number"
        );
    }

    #[test]
    fn routes_with_the_same_upstream_settings_share_one_transport() {
        let toml = "[[route]]\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"public\"\n[[route]]\nprefix = \"/b\"\nupstream = \"http://127.0.0.1:2\"\npolicy = \"public\"\n[[route]]\nprefix = \"/c\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"public\"\nhttp2 = true\n[[route]]\nprefix = \"/d\"\nupstream = \"https://localhost\"\npolicy = \"public\"\n";
        let c = Config::from_toml(toml, "t", env(&[])).unwrap();
        let t: Vec<_> = c.routes.iter().map(|r| r.upstream.transport.clone()).collect();
        assert!(Arc::ptr_eq(&t[0], &t[1]));
        assert!(!Arc::ptr_eq(&t[0], &t[2]) && t[2].http2 && t[2].tls.is_none());
        assert!(t[3].tls.is_some() && !t[3].http2);
        assert_eq!(c.routes[3].upstream.port(), 443);
        assert_eq!(c.routes[3].upstream.host, "localhost");
        assert_eq!(c.routes[0].upstream.port(), 1);
    }

    #[test]
    fn env_overrides_the_file() {
        let toml = "[server]\nlisten = \"127.0.0.1:9000\"\n[rails]\nsession_key = \"_file\"\nrails_version = \"7.0\"\n";
        let c = Config::from_toml(
            toml,
            "t",
            env(&[("SECRET_KEY_BASE", SKB), ("RAILBRIDGE_LISTEN", "127.0.0.1:9001")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        let s = c.session.unwrap();
        assert_eq!(s.cookie_name(), "_file");
        assert_eq!(s.scopes[0].1.profile().version().as_str(), "7.0");
        let c =
            Config::from_toml(toml, "t", env(&[("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_env")]))
                .unwrap();
        assert_eq!(c.session.unwrap().cookie_name(), "_env");
    }

    #[test]
    fn every_login_source_is_read_and_warden_scopes_need_devise() {
        let with = |toml: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_s")];
            pairs.extend_from_slice(extra);
            Config::from_toml(toml, "t", env(&pairs))
        };
        let c = with("", &[("RAILS_AUTH", "session-key")]).unwrap();
        let source =
            |c: &Config| c.session.as_ref().unwrap().scopes[0].1.identity_config().source().clone();
        assert!(matches!(source(&c), rails_session::IdentitySource::SessionPath(_)));
        let c = with(
            "[rails]\nauth = \"rails-authentication\"\ndatabase_url = \"sqlite3:db/app.sqlite3\"\n",
            &[],
        )
        .unwrap();
        assert!(matches!(source(&c), rails_session::IdentitySource::RailsAuthentication(_)));
        let ttl = "[rails]\nauth = \"rails-authentication\"\ndatabase_url = \"sqlite3:x\"\nauth_cache_ttl = 600\n";
        let e = with(ttl, &[]).unwrap_err().to_string();
        assert!(
            e.contains("rails.auth_cache_ttl (RAILS_AUTH_CACHE_TTL)") && e.contains("60"),
            "{e}"
        );
        let e = with("", &[("RAILS_AUTH", "rails-authentication")]).unwrap_err().to_string();
        assert!(e.contains("DATABASE_URL") && e.contains("database_url"), "{e}");
        let e = with("", &[("RAILS_AUTH", "cas")]).unwrap_err().to_string();
        assert!(e.contains("RAILS_AUTH"), "{e}");
        let admin = "[[route]]\nprefix = \"/admin\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"scope:admin\"\n";
        let e = with(admin, &[("RAILS_AUTH", "session-key")]).unwrap_err().to_string();
        assert!(e.contains("Warden scope"), "{e}");
        assert!(with(admin, &[("RAILS_AUTH", "devise")]).is_ok());
    }

    #[test]
    fn a_short_secret_is_a_warning_not_an_error() {
        let c = Config::from_toml(
            "",
            "t",
            env(&[("SECRET_KEY_BASE", "0123456789abcdef01234567"), ("SESSION_KEY", "_s")]),
        )
        .unwrap();
        assert!(c.session.is_some());
        assert!(c.warnings.iter().any(|w| w.contains("24 bytes")), "{:?}", c.warnings);
    }

    #[test]
    fn missing_secret_is_a_warning_not_an_error() {
        let c = Config::from_toml("", "t", env(&[])).unwrap();
        assert!(c.session.is_none());
        assert!(c.warnings[0].contains("SECRET_KEY_BASE"), "{:?}", c.warnings);
    }

    #[test]
    fn errors_name_the_field() {
        let route = |extra: &str| {
            format!("[[route]]\nprefix = \"/api\"\nupstream = \"http://127.0.0.1:1\"\n{extra}")
        };
        assert!(err("[server]\nlisten = \"nope\"", &[])
            .starts_with("server.listen: \"nope\" is not host:port"));
        assert!(
            err("[server]\nlisen = 1", &[]).starts_with("test.toml: "),
            "unknown keys are refused"
        );
        assert!(err(&route("policy = \"admins\""), &[]).starts_with("route[0].policy: "));
        assert!(err("[[route]]\nprefix = \"api\"\nupstream = \"http://h\"", &[])
            .starts_with("route[0].prefix: "));
        assert!(err("[[route]]\nprefix = \"/a\"\nupstream = \"ftp://h\"", &[])
            .contains("an upstream URL is http:// or https://"));
        assert!(err("[[route]]\nprefix = \"/a\"\nupstream = \"http://h\"\nca_file = \"/x\"", &[])
            .contains("need an https:// upstream"));
        assert!(err(
            "[[route]]\nprefix = \"/a\"\nupstream = \"https://h\"\nca_file = \"/nonexistent.pem\"",
            &[]
        )
        .starts_with("route[0].upstream: /nonexistent.pem: "));
        assert!(err(
            "[[route]]\nprefix = \"/a\"\nupstream = \"https://h\"\nclient_cert = \"/c.pem\"",
            &[]
        )
        .contains("client_cert and client_key go together"));
        assert!(err(&format!("{}\n{}", route(""), route("")), &[]).starts_with("route[1].name: "));
        assert!(err(&route("timeout = \"5 parsecs\""), &[]).starts_with("route[0].timeout: "));
        assert_eq!(
            err("[server]\nworkers = 0", &[]),
            "server.workers (RAILBRIDGE_WORKERS): must be at least 1"
        );
        assert!(err("[jwt]\nenabled = true", &[]).starts_with("jwt.enabled: "));
        assert!(err("[[jwt.key]]\nfile = \"/nonexistent.pem\"", &[])
            .starts_with("jwt.key[0].file: cannot read /nonexistent.pem"));
        assert!(err("", &[("RAILBRIDGE_UPSTREAM", "ftp://x")]).starts_with("RAILBRIDGE_UPSTREAM: "));
        let e =
            err("", &[("SECRET_KEY_BASE", SKB), ("SESSION_KEY", "_s"), ("RAILS_VERSION", "9.9")]);
        assert!(e.starts_with("rails.rails_version (RAILS_VERSION): "), "{e}");
        assert!(!e.contains(SKB));
        let e = err("", &[("SECRET_KEY_BASE", SKB)]);
        assert_eq!(e, "rails.session_key (SESSION_KEY): is not set");
        let field = |f: &str| format!("[[identity.field]]\n{f}");
        assert!(err(&field("from = \"session.locale\"\nheader = \"X-Locale\""), &[])
            .contains("X-Railbridge- namespace"));
        assert!(err(&field("from = \"session.locale\"\nheader = \"X-Railbridge-User\""), &[])
            .contains("not one of"));
        assert!(err(&field("from = \"user.email\"\nclaim = \"email\""), &[]).contains("[user_api]"));
        assert!(err(&field("from = \"session.locale\"\nclaim = \"sub\""), &[])
            .contains("registered claim"));
        assert!(err(&field("from = \"session.session_id\"\nclaim = \"x\""), &[])
            .contains("never forwarded"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn the_committed_default_config_loads_without_any_environment() {
        let c = Config::from_toml(crate::config::DEFAULT_CONFIG, "default", env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(!c.routes.is_empty());
    }
}
