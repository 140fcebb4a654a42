//! The configuration file as written: plain serde structs, every field optional, unknown keys refused. Nothing is
//! checked here; [`super::validate`] turns this into a [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;

/// `railbridge.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) rails: RawRails,
    #[serde(default)]
    pub(super) identity: RawIdentity,
    #[serde(default)]
    pub(super) jwt: RawJwt,
    pub(super) user_api: Option<RawUserApi>,
    #[serde(default)]
    pub(super) tokens: RawTokens,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default, rename = "route")]
    pub(super) routes: Vec<RawRoute>,
}

/// A duration: seconds as an integer, or a string with a unit (`250ms`, `5s`, `2m`, `1h`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// A size: bytes as an integer, or a string with a unit (`512KB`, `10MiB`, `1GB`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSize {
    Bytes(u64),
    Text(String),
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    /// `host:port` (env `RAILBRIDGE_LISTEN`).
    pub(super) listen: Option<String>,
    /// Peers whose `X-Forwarded-*` headers are believed: IP addresses or CIDR blocks.
    #[serde(default)]
    pub(super) trusted_proxies: Vec<String>,
    /// Path prefixes that need no login, whatever their route says (env `RAILBRIDGE_PUBLIC_PATHS`).
    #[serde(default)]
    pub(super) public_paths: Vec<String>,
    pub(super) connect_timeout: Option<RawDuration>,
    pub(super) request_timeout: Option<RawDuration>,
    pub(super) idle_timeout: Option<RawDuration>,
    pub(super) pool_idle_timeout: Option<RawDuration>,
    pub(super) pool_max_idle_per_host: Option<usize>,
    pub(super) drain_timeout: Option<RawDuration>,
    /// Worker threads, each with its own event loop and upstream pool (default: one per CPU).
    pub(super) workers: Option<usize>,
    /// Client connections served at once (env `RAILBRIDGE_MAX_CONNECTIONS`, default 10000).
    pub(super) max_connections: Option<usize>,
    /// Time to send a request's head once started (env `RAILBRIDGE_HEADER_TIMEOUT`, default 10 s).
    pub(super) header_timeout: Option<RawDuration>,
    /// The longest pause while a client sends a request body (env `RAILBRIDGE_BODY_TIMEOUT`, default 10 s).
    pub(super) body_timeout: Option<RawDuration>,
    /// With TLS: a plain-HTTP listener for health checks and redirects to https (env `RAILBRIDGE_HTTP_LISTEN`).
    pub(super) http_listen: Option<String>,
    /// TLS: the certificate chain, PEM (env `RAILBRIDGE_TLS_CERT`).
    pub(super) tls_cert: Option<PathBuf>,
    /// TLS: the private key, PEM (env `RAILBRIDGE_TLS_KEY`).
    pub(super) tls_key: Option<PathBuf>,
}

/// `[rails]`: the Rails app's session settings. Each has the environment variable of `rails-session`
/// (`SessionConfig::from_lookup`), which wins over the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRails {
    /// A file holding `secret_key_base` (env `SECRET_KEY_BASE`, or `SECRET_KEY_BASE_FILE`).
    pub(super) secret_key_base_file: Option<PathBuf>,
    pub(super) session_key: Option<String>,
    pub(super) rails_version: Option<String>,
    pub(super) cookies_serializer: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) path: Option<String>,
    pub(super) secure: Option<bool>,
    pub(super) httponly: Option<bool>,
    pub(super) same_site: Option<String>,
    /// Seconds.
    pub(super) expire_after: Option<u64>,
    pub(super) encrypted_cookie_salt: Option<String>,
    pub(super) encrypted_signed_cookie_salt: Option<String>,
    pub(super) authenticated_encrypted_cookie_salt: Option<String>,
    pub(super) signed_cookie_salt: Option<String>,
    /// The Devise scope of `policy = "signed-in"` (default `user`).
    pub(super) scope: Option<String>,
    /// Devise `timeout_in`, seconds.
    pub(super) timeout_in: Option<u64>,
    /// Where the login lives: `devise` (default), `session-key`, `rails-authentication` (env `RAILS_AUTH`).
    pub(super) auth: Option<String>,
    /// `session-key`: the key or dotted path (env `RAILS_AUTH_SESSION_KEY`, default `user_id`).
    pub(super) auth_session_key: Option<String>,
    /// `rails-authentication`: the signed cookie (env `RAILS_AUTH_COOKIE`, default `session_id`).
    pub(super) auth_cookie: Option<String>,
    /// `rails-authentication`: the table, `sessions` or `sessions(id,user_id)` (env `RAILS_AUTH_SESSIONS_TABLE`).
    pub(super) auth_sessions_table: Option<String>,
    /// `rails-authentication`: seconds a lookup is reused (env `RAILS_AUTH_CACHE_TTL`, default 2).
    pub(super) auth_cache_ttl: Option<u64>,
    /// `rails-authentication`: `503` (default) or `signed-out` when the database fails (env `RAILS_AUTH_ON_ERROR`).
    pub(super) auth_on_error: Option<String>,
    /// `rails-authentication`: the Rails app's database (env `DATABASE_URL`); it may hold a password.
    pub(super) database_url: Option<Redacted>,
    /// `rails-authentication` without a database: an internal API asked `GET …/{id}` (env `RAILS_AUTH_SESSIONS_URL`).
    pub(super) auth_sessions_url: Option<String>,
    /// `config.session_store`: `cookie_store` (default), `cache_store`, `redis_store`, `redis_session_store`,
    /// `active_record_store` (env `SESSION_STORE`).
    pub(super) session_store: Option<String>,
    /// The server-side store: `redis://`, `rediss://`, `memcached://host:port` or a database URL (env
    /// `SESSION_STORE_URL`); it may hold a password.
    pub(super) session_store_url: Option<Redacted>,
    /// The cache namespace, redis-store namespace or redis-session-store key prefix (env `SESSION_STORE_NAMESPACE`).
    pub(super) session_store_namespace: Option<String>,
    /// `cache_format_version` of new cache-store records: `6.1`, `7.0`, `7.1` (env `SESSION_STORE_CACHE_FORMAT`).
    pub(super) session_store_cache_format: Option<String>,
    /// redis-session-store's / activerecord-session_store's `serializer:` (env `SESSION_STORE_SERIALIZER`).
    pub(super) session_store_serializer: Option<String>,
    /// activerecord-session_store's table (env `SESSION_STORE_TABLE`, default `sessions`).
    pub(super) session_store_table: Option<String>,
    /// Seconds one store operation may take before the request fails closed (env `SESSION_STORE_TIMEOUT`, default 1).
    pub(super) session_store_timeout: Option<f64>,
    /// Connections per process (env `SESSION_STORE_POOL_SIZE`, default 16).
    pub(super) session_store_pool_size: Option<u32>,
    /// The largest record, bytes (env `SESSION_STORE_MAX_SIZE`, default 1 MiB).
    pub(super) session_store_max_size: Option<u64>,
}

/// `[identity]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    /// A file holding the key of `X-Railbridge-Session` (default: derived from `secret_key_base`).
    pub(super) session_hash_key_file: Option<PathBuf>,
    /// How long a decoded session's identity is reused for the same cookie on the same route (`0` = never).
    pub(super) cache_ttl: Option<RawDuration>,
    /// More headers and claims, from the session or the User API.
    #[serde(default, rename = "field")]
    pub(super) fields: Vec<RawField>,
}

/// `[[identity.field]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    /// `session.<key>[.<key>…]` or `user.<field>`.
    pub(super) from: String,
    /// A header in the `X-Railbridge-` namespace.
    pub(super) header: Option<String>,
    /// A claim of the assertion.
    pub(super) claim: Option<String>,
}

/// `[jwt]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwt {
    /// Send `X-Railbridge-Assertion` (default: on when a key is configured).
    pub(super) enabled: Option<bool>,
    pub(super) issuer: Option<String>,
    /// Lifetime of an assertion, at most 5 minutes.
    pub(super) ttl: Option<RawDuration>,
    /// Keys: the first signs (unless one says `sign = true`); all are published at `/.well-known/jwks.json`.
    #[serde(default, rename = "key")]
    pub(super) keys: Vec<RawKey>,
}

/// `[[jwt.key]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    /// PEM file: PKCS#8 Ed25519 (EdDSA), PKCS#8 P-256 (ES256) or RSA ≥ 2048 bits, PKCS#1 or PKCS#8 (RS256).
    pub(super) file: PathBuf,
    /// The `kid` (default: the RFC 7638 thumbprint).
    pub(super) kid: Option<String>,
    /// This key signs.
    pub(super) sign: Option<bool>,
}

/// `[tokens]`: bearer tokens for clients the Rails cookie cannot reach.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokens {
    /// Token exchange on (default: on whenever the gateway has a JWT signing key).
    pub(super) enabled: Option<bool>,
    /// Lifetime of an access token (default 5 minutes, at most 15).
    pub(super) access_ttl: Option<RawDuration>,
    /// Longest life of a refresh token family, from the exchange (default 24 hours, at most 90 days).
    pub(super) refresh_lifetime: Option<RawDuration>,
    /// `aud` of access tokens (default `railbridge-api`).
    pub(super) audience: Option<String>,
    /// Origins the token endpoint accepts besides the gateway's own (`https://app.example.com`).
    #[serde(default)]
    pub(super) public_origins: Vec<String>,
    /// Where refresh tokens and revocations live: `redis://…` (env `RAILBRIDGE_TOKEN_STORE_URL`); in memory when
    /// unset.
    pub(super) store_url: Option<Redacted>,
    /// A file holding the secret of `POST /_railbridge/revoke` (env `RAILBRIDGE_REVOKE_SECRET`).
    pub(super) revoke_secret_file: Option<PathBuf>,
    /// Encrypt access tokens (JWE `dir` + `A256GCM`) with the 32-byte key in this file (64 hex characters or
    /// base64); older keys after it are still accepted.
    #[serde(default)]
    pub(super) encryption_key_files: Vec<PathBuf>,
}

/// `[user_api]`: `rails-session`'s HTTP User API loader.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUserApi {
    /// URL template with `{id}`.
    pub(super) url: String,
    /// A file holding a bearer token.
    pub(super) token_file: Option<PathBuf>,
    pub(super) timeout: Option<RawDuration>,
    pub(super) cache_ttl: Option<RawDuration>,
    pub(super) cache_capacity: Option<u64>,
    /// On a User API failure: `"503"` (default) or `"signed-out"`.
    pub(super) on_error: Option<String>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    /// `text` or `json` (env `RAILBRIDGE_LOG_FORMAT`).
    pub(super) format: Option<String>,
    /// A `tracing` filter, e.g. `info,railbridge=debug` (env `RUST_LOG` wins).
    pub(super) level: Option<String>,
    /// One line per proxied request (default on).
    pub(super) access_log: Option<bool>,
}

/// `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: Option<String>,
    pub(super) prefix: String,
    pub(super) upstream: String,
    /// `public`, `signed-in` (default) or `scope:<warden scope>`.
    pub(super) policy: Option<String>,
    /// Replaces the matched prefix (`prefix = "/api"`, `rewrite = "/"`: `/api/users` → `/users`).
    pub(super) rewrite: Option<String>,
    /// Pass the Rails session cookie on (for Rails upstreams; default off).
    pub(super) forward_session_cookie: Option<bool>,
    /// Send the client's `Host` instead of the upstream's.
    pub(super) preserve_host: Option<bool>,
    /// Send `X-Railbridge-Assertion` on this route (default: `[jwt] enabled`).
    pub(super) assertion: Option<bool>,
    /// Accept `Authorization: Bearer <access token>` from `/_railbridge/token` as the identity (default off).
    pub(super) accept_bearer: Option<bool>,
    /// The largest request body forwarded: bytes, or a string with a unit (`"10MiB"`, `"512KB"`). Default: none.
    pub(super) max_body_size: Option<RawSize>,
    /// At most this many requests at the upstream at once (default: no limit).
    pub(super) max_connections: Option<usize>,
    /// How long a request waits for a turn under `max_connections` before a 503 (default 1 s).
    pub(super) queue_timeout: Option<RawDuration>,
    /// Time to the upstream's response head, and then between two chunks of its body (default
    /// `[server] request_timeout`).
    pub(super) timeout: Option<RawDuration>,
    /// `https://` upstreams: the CA certificates (PEM) that verify the upstream (default: the system's roots).
    pub(super) ca_file: Option<PathBuf>,
    /// `https://` upstreams: a certificate chain (PEM) presented to the upstream (mutual TLS), with `client_key`.
    pub(super) client_cert: Option<PathBuf>,
    /// The key of `client_cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub(super) client_key: Option<PathBuf>,
    /// Speak HTTP/2 to the upstream: ALPN `h2` over https, prior knowledge (h2c) over http (default off).
    pub(super) http2: Option<bool>,
}

/// A setting that may hold a secret (a database URL with its password): read as a string, never printed.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub(super) struct Redacted(pub(super) String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
