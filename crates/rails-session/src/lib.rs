//! # rails-session
//!
//! Share a Ruby on Rails login with a Rust service: the Rust side reads (and writes) the Rails app's encrypted
//! session cookie, finds the Devise/Warden user in it, checks CSRF tokens as Rails does, and answers `401` when
//! nobody is signed in. The cookie codec is [`rails_cookie`]; this crate adds the web part.
//!
//! ## Quick start (axum)
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use rails_session::{CurrentUser, Identity, SessionConfig, SessionLayer};
//!
//! async fn me(user: CurrentUser<Identity>) -> Json<Identity> {
//!     Json(user.into_inner()) // {"id": 1, "scope": "user"}; 401 when not signed in
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // SECRET_KEY_BASE, SESSION_KEY (the cookie name), RAILS_VERSION (default 6.1), DOMAIN, …
//! let config = SessionConfig::from_env()?;
//! let app = Router::new().route("/api/me", get(me));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! axum::serve(listener, SessionLayer::new(config).wrap_router(app)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Quick start (actix-web, feature `actix-web`)
//!
//! ```no_run
//! # #[cfg(feature = "actix-web")]
//! # async fn run() -> std::io::Result<()> {
//! use actix_web::{web, App, HttpResponse, HttpServer};
//! use rails_session::{actix::RailsSession, CurrentUser, Identity, SessionConfig};
//!
//! async fn me(user: CurrentUser<Identity>) -> HttpResponse {
//!     HttpResponse::Ok().json(user.into_inner()) // 401 when not signed in
//! }
//!
//! let session = RailsSession::new(SessionConfig::from_env().expect("SECRET_KEY_BASE and SESSION_KEY"));
//! HttpServer::new(move || App::new().wrap(session.clone()).route("/api/me", web::get().to(me)))
//!     .bind("127.0.0.1:3001")?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! `.layer(SessionLayer::new(config))` on the router works as well; it wraps (and boxes) every route, which costs
//! a few allocations per request more than wrapping the router once ([`SessionLayer::wrap_router`]).
//!
//! Complete runnable versions, with CSRF, CORS and the User API: `examples/api.rs` (axum) and
//! `examples/api_actix.rs` (actix-web).
//!
//! ## Where the login lives
//!
//! [`IdentityConfig`] says where the signed-in user is found ([`SessionConfig::from_lookup`] reads it from
//! `RAILS_AUTH`): Devise/Warden's key in the session ([`IdentityConfig::warden`], the default), a plain
//! `session[:user_id]` ([`IdentityConfig::session_path`]), or Rails 8's authentication generator
//! ([`IdentityConfig::rails_authentication`]): the signed `session_id` cookie names a row of the `sessions` table,
//! found through a [`FindAuthSession`] — the app's database with `DatabaseAuthSessions` (feature `database`), an
//! internal API with [`HttpUserLoader`], or your own — behind a short TTL cache:
//!
//! ```no_run
//! # #[cfg(feature = "database")]
//! # fn config() -> Result<rails_session::SessionConfig, Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rails_session::{
//!     CachedAuthSessions, DatabaseAuthSessions, IdentityConfig, RailsAuthentication, SessionConfig,
//! };
//!
//! let sessions = DatabaseAuthSessions::from_database_url(&std::env::var("DATABASE_URL")?)?;
//! // One query per signed-in user per 2 s: a sign-out in Rails (the row deleted) shows here within 2 s.
//! let sessions = CachedAuthSessions::new(sessions, 100_000, Duration::from_secs(2));
//! let config = SessionConfig::from_env()?
//!     .identity(IdentityConfig::rails_authentication(RailsAuthentication::new(sessions)));
//! # Ok(config) }
//! ```
//!
//! ## A single-page app on another subdomain (CORS)
//!
//! A frontend on `https://www.app.test` calling this API on `https://api.app.test` with the Rails cookie needs
//! the cookie to be shared (`DOMAIN=.app.test` on both sides), and CORS with credentials for exactly the
//! frontend's origin — never `*` — allowing the `X-CSRF-Token` header in preflights. Use tower-http's layer
//! (`actix_cors::Cors` on actix-web), outside the session layer:
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use http::{header, HeaderValue, Method};
//! use rails_session::{CsrfLayer, SessionConfig, SessionLayer};
//! use tower_http::cors::CorsLayer;
//! # let config = SessionConfig::new(rails_session::rails_cookie::Profile::rails_6_1(),
//! #     rails_session::rails_cookie::SecretKeyBase::new("x".repeat(128))?, "_app_session")?;
//! let cors = CorsLayer::new()
//!     .allow_origin(HeaderValue::from_static("https://www.app.test"))
//!     .allow_credentials(true)
//!     .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
//!     .allow_headers([header::CONTENT_TYPE, header::HeaderName::from_static("x-csrf-token")]);
//! let app: Router = Router::new()
//!     .route("/api/counter", post(|| async { "…" }))
//!     .layer(CsrfLayer::new())
//!     .layer(SessionLayer::new(config))
//!     .layer(cors);
//! # Ok::<(), rails_session::ConfigError>(())
//! ```
//!
//! The frontend fetches `GET /api/csrf` (a [`CsrfToken`]) and sends the token back in `X-CSRF-Token` with
//! `credentials: "include"`.
//!
//! ## What it does, as Rails does
//!
//! * **Session** ([`Session`]): decoded lazily on first use; a bad, expired or foreign cookie is an empty session
//!   and a `warn!`; `Set-Cookie` only when the session changed (every request with `expire_after`), with the
//!   configured attributes in Rack's order, in the current format (rotated cookies are upgraded); `session_id`
//!   kept, or generated for a new session; unknown keys (`_csrf_token`, `flash`, Devise's) kept exactly;
//!   [`Session::renew`] / [`Session::clear`]; a session over 4096 bytes is a logged `500`, never a truncated
//!   cookie. A request that never touches the session costs no decryption, and a cookie seen recently is served
//!   from a small decode cache ([`SessionConfig::decode_cache`]).
//! * **Identity** ([`IdentityConfig`]): `warden.user.<scope>.key` (`[[id], salt]` and the older
//!   `["User", [id], salt]`), or a plain session path such as `user_id`; Devise `:timeoutable`.
//! * **Users** ([`LoadUser`], [`HttpUserLoader`]): the record is loaded and its `authenticatable_salt` must match
//!   the session's, so a password change in Rails signs the user out here as well.
//! * **CSRF** ([`CsrfLayer`], [`Session::csrf_token`]): masked, unmasked, global and per-form tokens, both base64
//!   alphabets, optional Origin check; tokens are created in the Rails version's format, never replaced.
//! * **Behind the gateway** (`gateway_auth`, feature `gateway-auth`): a service behind `railbridge serve` takes
//!   a `GatewayUser` from the gateway's signed (optionally encrypted) assertion, checked against its JWKS.
//! * **Server-side sessions** ([`ServerStore`], [`StoreSettings`]): Rails' `cache_store` on Redis or memcached
//!   (all three [`cache_entry`] formats), redis-store, redis-session-store and activerecord-session_store, with
//!   Rack's private ids, lazy loads, no record for unknown ids, and no write-back of a record deleted mid-request;
//!   the store down → 503. Set `SESSION_STORE` and `SESSION_STORE_URL`, or:
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn config() -> Result<rails_session::SessionConfig, rails_session::ConfigError> {
//! use std::time::Duration;
//! use rails_session::rails_cookie::{Profile, SecretKeyBase};
//! use rails_session::{SessionConfig, StoreKind, StoreSettings};
//!
//! // config.session_store :cache_store, key: "_app_session", expire_after: 2.weeks,
//! //   cache: ActiveSupport::Cache::RedisCacheStore.new(url: "redis://127.0.0.1:6379/0", namespace: "myapp")
//! let mut store = StoreSettings::new(StoreKind::CacheStore, "redis://127.0.0.1:6379/0");
//! store.namespace = Some("myapp".into());
//! let config = SessionConfig::new(Profile::rails_7_2(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?
//!     .expire_after(Duration::from_secs(14 * 24 * 3600))
//!     .server_store(&store)?;
//! # Ok(config) }
//! ```
//!
//! ## Features
//!
//! - `axum` (default): [`SessionLayer`], [`CsrfLayer`], [`RequireUserLayer`] and the axum extractors.
//! - `actix-web`: the `actix` module (middleware and extractors).
//! - `user-api` (default): [`HttpUserLoader`], an HTTP User API client with a TTL cache.
//! - `user-api-rustls`: HTTPS for the User API.
//! - `redis`: server-side sessions in Redis (`cache_store`, `redis_store`, `redis_session_store`).
//! - `memcached`: server-side sessions in memcached (`cache_store`).
//! - `database`: Rails 8 authentication's `sessions` table, and `active_record_store`.
//! - `gateway-auth`: the `gateway_auth` module — verify the railbridge gateway's assertions (`GatewayUser`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod cookies;
mod csrf;
mod error;
mod guard;
mod identity;
mod layer;
mod random;
mod response;
mod session;
mod store;
mod user;

#[cfg(feature = "actix-web")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "gateway-auth")]
pub mod gateway_auth;

pub use rails_cookie;

pub use config::{CookieDomain, SameSite, SessionConfig};
pub use cookies::find_cookie;
pub use csrf::{CsrfConfig, CsrfLayer, CsrfService, CsrfToken, OriginCheck, StoredTokenFormat};
pub use error::{ConfigError, SessionError, StoreError};
#[cfg(feature = "gateway-auth")]
pub use gateway_auth::{AssertionError, AssertionVerifier, GatewayAuthLayer, GatewayUser};
pub use guard::{RequireUserLayer, RequireUserService};
#[cfg(any(feature = "user-api", feature = "database"))]
pub use identity::CachedAuthSessions;
#[cfg(feature = "database")]
pub use identity::{DatabaseAuthSessions, DatabaseError};
pub use identity::{
    FindAuthSession, Identity, IdentityConfig, IdentitySource, RailsAuthentication, UserId,
};
pub use layer::{ResponseFuture, SessionLayer, SessionService};
pub use session::Session;
#[cfg(any(feature = "redis", feature = "memcached", feature = "database"))]
pub use store::io_thread::{IoError, IoThread};
pub use store::redact_url;
#[cfg(feature = "redis")]
pub use store::RedisConnection;
pub use store::{
    cache_entry, CookieStore, LoadedSession, ServerStore, SessionId, SessionStore, StoreKind,
    StoreSerializer, StoreSettings,
};
#[cfg(feature = "user-api")]
pub use user::{ApiUser, HttpUserLoader, HttpUserLoaderBuilder, UserApiError};
pub use user::{AuthError, CurrentUser, LoadUser, OnLoaderError};
