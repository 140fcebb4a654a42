//! `config.session_store :cache_store | :redis_store | :redis_session_store | :active_record_store` as settings: the
//! `SESSION_STORE*` variables (and the gateway's `[rails]` keys of the same names), turned into a [`ServerStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rails_cookie::RailsVersion;

use super::cache_entry::EntryFormat;
use super::server::{KeyScheme, RecordCodec, ServerOptions, ServerStore, StoreSerializer};
use crate::error::ConfigError;

/// `config.session_store`'s first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// `:cookie_store`: the session is the cookie (the default).
    CookieStore,
    /// `:cache_store` (`ActionDispatch::Session::CacheStore`) on Redis (`RedisCacheStore`) or memcached
    /// (`MemCacheStore` through Dalli).
    CacheStore,
    /// `:redis_store` (redis-actionpack / redis-rails).
    RedisStore,
    /// `:redis_session_store` (the redis-session-store gem).
    RedisSessionStore,
    /// `:active_record_store` (the activerecord-session_store gem).
    ActiveRecordStore,
}

impl StoreKind {
    /// Rails' name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::CookieStore => "cookie_store",
            StoreKind::CacheStore => "cache_store",
            StoreKind::RedisStore => "redis_store",
            StoreKind::RedisSessionStore => "redis_session_store",
            StoreKind::ActiveRecordStore => "active_record_store",
        }
    }

    /// Parses Rails' name (with or without the `:`).
    pub fn parse(name: &str) -> Result<StoreKind, ConfigError> {
        Ok(match name.trim().trim_start_matches(':') {
            "cookie_store" => StoreKind::CookieStore,
            "cache_store" => StoreKind::CacheStore,
            "redis_store" => StoreKind::RedisStore,
            "redis_session_store" => StoreKind::RedisSessionStore,
            "active_record_store" => StoreKind::ActiveRecordStore,
            other => {
                return Err(ConfigError::invalid(
                    "SESSION_STORE",
                    format!(
                        "{other:?} is not cookie_store, cache_store, redis_store, redis_session_store or \
                         active_record_store"
                    ),
                ))
            }
        })
    }
}

/// Where and how a server-side store keeps sessions. Build it from variables with [`StoreSettings::from_lookup`]
/// or field by field, then [`StoreSettings::build`] it.
#[derive(Clone)]
#[non_exhaustive]
pub struct StoreSettings {
    /// Which store.
    pub kind: StoreKind,
    /// `SESSION_STORE_URL`: `redis://` / `rediss://` (cache_store, redis_store, redis_session_store),
    /// `memcached://host:port` (cache_store), or a database URL (active_record_store; `DATABASE_URL` by default).
    pub url: String,
    /// `SESSION_STORE_NAMESPACE`: the cache store's `namespace:`, redis-store's namespace (`rack:session` by
    /// default), or redis-session-store's `key_prefix` (used as is, no separator added).
    pub namespace: Option<String>,
    /// `SESSION_STORE_CACHE_FORMAT`: `config.active_support.cache_format_version` (`6.1`, `7.0`, `7.1`) for new
    /// cache-store records; the Rails version's default when unset. Existing records are written back as read.
    pub cache_format: Option<EntryFormat>,
    /// `SESSION_STORE_SERIALIZER`: redis-session-store's and activerecord-session_store's `serializer:`
    /// (`marshal`, `json`, `hybrid`); `marshal` by default, as in both gems.
    pub serializer: StoreSerializer,
    /// `SESSION_STORE_TABLE`: activerecord-session_store's table (`sessions`).
    pub table: String,
    /// `SESSION_STORE_TIMEOUT`: seconds one store operation may take (connecting included) before the request
    /// fails closed with 503; default 1.
    pub timeout: Duration,
    /// `SESSION_STORE_POOL_SIZE`: connections per process (memcached, SQL; Redis multiplexes one); default 16.
    pub pool_size: u32,
    /// `SESSION_STORE_MAX_SIZE`: the largest record read or written, in bytes, once inflated; default 1 MiB.
    pub max_size: usize,
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSettings")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("cache_format", &self.cache_format)
            .field("serializer", &self.serializer)
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("max_size", &self.max_size)
            .finish()
    }
}

/// A URL with its password (if any) replaced by `***`, for logs and `--check`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let user =
                if userinfo.contains(':') { format!("{user}:***") } else { "***".to_owned() };
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Defaults.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_POOL_SIZE: u32 = 16;
const DEFAULT_MAX_SIZE: usize = 1 << 20;

impl StoreSettings {
    /// Settings for `kind` at `url`, everything else at its default.
    #[must_use]
    pub fn new(kind: StoreKind, url: impl Into<String>) -> Self {
        StoreSettings {
            kind,
            url: url.into(),
            namespace: None,
            cache_format: None,
            serializer: StoreSerializer::Marshal,
            table: "sessions".into(),
            timeout: DEFAULT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_size: DEFAULT_MAX_SIZE,
        }
    }

    /// Reads `SESSION_STORE`, `SESSION_STORE_URL` (or `DATABASE_URL` for `active_record_store`),
    /// `SESSION_STORE_NAMESPACE`, `SESSION_STORE_CACHE_FORMAT`, `SESSION_STORE_SERIALIZER`, `SESSION_STORE_TABLE`,
    /// `SESSION_STORE_TIMEOUT`, `SESSION_STORE_POOL_SIZE`, `SESSION_STORE_MAX_SIZE`. `None` for the cookie store.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<StoreSettings>, ConfigError> {
        let get =
            |name: &str| get(name).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_owned());
        let kind = match get("SESSION_STORE") {
            None => return Ok(None),
            Some(name) => StoreKind::parse(&name)?,
        };
        if kind == StoreKind::CookieStore {
            return Ok(None);
        }
        let url = match (get("SESSION_STORE_URL"), kind) {
            (Some(url), _) => url,
            (None, StoreKind::ActiveRecordStore) => {
                get("DATABASE_URL").ok_or(ConfigError::invalid(
                    "SESSION_STORE_URL",
                    "active_record_store needs SESSION_STORE_URL or DATABASE_URL",
                ))?
            }
            (None, _) => return Err(ConfigError::MissingEnv("SESSION_STORE_URL")),
        };
        let mut s = StoreSettings::new(kind, url);
        s.namespace = get("SESSION_STORE_NAMESPACE");
        if let Some(v) = get("SESSION_STORE_CACHE_FORMAT") {
            s.cache_format = Some(EntryFormat::from_setting(&v).ok_or_else(|| {
                ConfigError::invalid(
                    "SESSION_STORE_CACHE_FORMAT",
                    format!("{v:?} is not 6.1, 7.0 or 7.1"),
                )
            })?);
        }
        if let Some(v) = get("SESSION_STORE_SERIALIZER") {
            s.serializer = StoreSerializer::parse(&v).ok_or_else(|| {
                ConfigError::invalid(
                    "SESSION_STORE_SERIALIZER",
                    format!("{v:?} is not marshal, json or hybrid"),
                )
            })?;
        }
        if let Some(v) = get("SESSION_STORE_TABLE") {
            s.table = v;
        }
        if let Some(v) = get("SESSION_STORE_TIMEOUT") {
            s.timeout = parse_seconds("SESSION_STORE_TIMEOUT", &v)?;
        }
        if let Some(v) = get("SESSION_STORE_POOL_SIZE") {
            s.pool_size = v.parse().ok().filter(|n| (1..=1024).contains(n)).ok_or_else(|| {
                ConfigError::invalid("SESSION_STORE_POOL_SIZE", format!("{v:?} is not 1 to 1024"))
            })?;
        }
        if let Some(v) = get("SESSION_STORE_MAX_SIZE") {
            s.max_size =
                v.parse().ok().filter(|n| (1024..=64 << 20).contains(n)).ok_or_else(|| {
                    ConfigError::invalid(
                        "SESSION_STORE_MAX_SIZE",
                        format!("{v:?} is not 1024 to 67108864 bytes"),
                    )
                })?;
        }
        s.validate()?;
        Ok(Some(s))
    }

    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: String| Err(ConfigError::invalid("SESSION_STORE_URL", why));
        let scheme = self.url.split("://").next().unwrap_or("");
        let redis = matches!(scheme, "redis" | "rediss");
        match self.kind {
            StoreKind::CookieStore => {}
            StoreKind::CacheStore if !redis && scheme != "memcached" => {
                return bad(format!(
                    "cache_store needs a redis://, rediss:// or memcached:// URL, not {scheme}://"
                ))
            }
            StoreKind::RedisStore | StoreKind::RedisSessionStore if !redis => {
                return bad(format!("{} needs a redis:// or rediss:// URL", self.kind.name()))
            }
            StoreKind::ActiveRecordStore if redis || scheme == "memcached" => {
                return bad(
                    "active_record_store needs a database URL (sqlite3:, postgres://, mysql2://)"
                        .into(),
                )
            }
            _ => {}
        }
        if let Some(ns) = &self.namespace {
            // Session keys are the namespace plus at most 81 bytes; memcached keys stop at 250 (Rails would hash a
            // longer one, which this reader does not reproduce).
            let limit = if scheme == "memcached" { 160 } else { 900 };
            if ns.len() > limit || ns.bytes().any(|b| b.is_ascii_control()) {
                return Err(ConfigError::invalid(
                    "SESSION_STORE_NAMESPACE",
                    format!("at most {limit} bytes and no control characters"),
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("SESSION_STORE_TIMEOUT", "must be above 0"));
        }
        Ok(())
    }

    /// Makes the store for an app of Rails `version`, whose records live `expire_after` (`SESSION_EXPIRE_AFTER`).
    /// Nothing connects yet: the first request (or [`ServerStore::check`]) does.
    pub fn build(
        &self,
        version: RailsVersion,
        expire_after: Option<Duration>,
    ) -> Result<ServerStore, ConfigError> {
        self.validate()?;
        let scheme = self.url.split("://").next().unwrap_or("");
        let options =
            ServerOptions { expire_after, max_size: self.max_size, read_public_key: true };
        let entry = RecordCodec::CacheEntry(
            self.cache_format.unwrap_or_else(|| EntryFormat::default_for(version)),
        );
        let (keys, codec) = match self.kind {
            StoreKind::CookieStore => {
                return Err(ConfigError::invalid(
                    "SESSION_STORE",
                    "the cookie store is not a server-side store",
                ))
            }
            StoreKind::CacheStore => {
                (KeyScheme::Cache { namespace: self.namespace.clone() }, entry)
            }
            StoreKind::RedisStore => (
                KeyScheme::RedisStore {
                    namespace: self.namespace.clone().unwrap_or_else(|| "rack:session".into()),
                },
                RecordCodec::Marshal,
            ),
            StoreKind::RedisSessionStore => (
                KeyScheme::Prefix(self.namespace.clone().unwrap_or_default()),
                RecordCodec::Raw(self.serializer),
            ),
            StoreKind::ActiveRecordStore => {
                (KeyScheme::Column, RecordCodec::Column(self.serializer))
            }
        };
        let backend = self.backend(scheme)?;
        Ok(ServerStore::new(self.kind.name(), backend, keys, codec, options))
    }

    #[allow(unused_variables)] // `missing` is unused when every backend feature is on
    fn backend(&self, scheme: &str) -> Result<Arc<dyn super::server::Backend>, ConfigError> {
        let missing = |feature: &str| -> Result<Arc<dyn super::server::Backend>, ConfigError> {
            Err(ConfigError::invalid(
                "SESSION_STORE",
                format!(
                    "{} on {scheme}:// needs rails-session's `{feature}` feature",
                    self.kind.name()
                ),
            ))
        };
        match (self.kind, scheme) {
            (StoreKind::ActiveRecordStore, _) => {
                #[cfg(feature = "database")]
                return Ok(Arc::new(super::active_record::ActiveRecordBackend::new(self)?));
                #[cfg(not(feature = "database"))]
                return missing("database");
            }
            (_, "memcached") => {
                #[cfg(feature = "memcached")]
                return Ok(Arc::new(super::memcached::MemcachedBackend::new(self)?));
                #[cfg(not(feature = "memcached"))]
                return missing("memcached");
            }
            _ => {
                #[cfg(feature = "redis")]
                return Ok(Arc::new(super::redis::RedisBackend::new(self)?));
                #[cfg(not(feature = "redis"))]
                return missing("redis");
            }
        }
    }
}

fn parse_seconds(setting: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 60.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            ConfigError::invalid(
                setting,
                format!("{v:?} is not a number of seconds above 0, at most 60"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn variables() {
        assert!(StoreSettings::from_lookup(env(&[])).unwrap().is_none());
        assert!(StoreSettings::from_lookup(env(&[("SESSION_STORE", "cookie_store")]))
            .unwrap()
            .is_none());
        let s = StoreSettings::from_lookup(env(&[
            ("SESSION_STORE", ":cache_store"),
            ("SESSION_STORE_URL", "redis://:pw@127.0.0.1:6379/2"),
            ("SESSION_STORE_NAMESPACE", "myapp"),
            ("SESSION_STORE_CACHE_FORMAT", "7.0"),
            ("SESSION_STORE_TIMEOUT", "0.25"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.kind, StoreKind::CacheStore);
        assert_eq!(s.cache_format, Some(EntryFormat::F70));
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
        let ar = StoreSettings::from_lookup(env(&[
            ("SESSION_STORE", "active_record_store"),
            ("DATABASE_URL", "sqlite3:/tmp/x.sqlite3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(ar.url, "sqlite3:/tmp/x.sqlite3");
    }

    #[test]
    fn mistakes_name_the_setting() {
        for (pairs, setting) in [
            (&[("SESSION_STORE", "mem_cache_store")][..], "SESSION_STORE"),
            (&[("SESSION_STORE", "cache_store")][..], "SESSION_STORE_URL"),
            (
                &[("SESSION_STORE", "cache_store"), ("SESSION_STORE_URL", "http://x")][..],
                "SESSION_STORE_URL",
            ),
            (
                &[("SESSION_STORE", "redis_store"), ("SESSION_STORE_URL", "memcached://x:1")][..],
                "SESSION_STORE_URL",
            ),
            (&[("SESSION_STORE", "active_record_store")][..], "SESSION_STORE_URL"),
            (
                &[
                    ("SESSION_STORE", "cache_store"),
                    ("SESSION_STORE_URL", "redis://x"),
                    ("SESSION_STORE_CACHE_FORMAT", "7.2"),
                ][..],
                "SESSION_STORE_CACHE_FORMAT",
            ),
            (
                &[
                    ("SESSION_STORE", "cache_store"),
                    ("SESSION_STORE_URL", "redis://x"),
                    ("SESSION_STORE_TIMEOUT", "0"),
                ][..],
                "SESSION_STORE_TIMEOUT",
            ),
        ] {
            let e = StoreSettings::from_lookup(env(pairs)).unwrap_err().to_string();
            assert!(e.contains(setting), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("redis://:secret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("postgres://app:secret@h/db"), "postgres://app:***@h/db");
        assert_eq!(redact_url("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact_url("sqlite3:/x"), "sqlite3:/x");
    }
}
