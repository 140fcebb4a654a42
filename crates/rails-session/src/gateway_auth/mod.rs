//! Services behind the railbridge gateway: verify its assertions (feature `gateway-auth`).
//!
//! The gateway (`railbridge serve`) decrypts the Rails session at the edge and forwards, with each request, a
//! short-lived JWT in `X-Railbridge-Assertion`, signed with `EdDSA`, `ES256` or `RS256`; its public keys are at
//! `/.well-known/jwks.json`. Its claims are `iss` (`railbridge`), `aud` (the route's name or a configured
//! audience), `sub` (the user id, a string), `sid` (a keyed hash of the session), `scope` (the Devise scope, if
//! any), `iat`, `exp`, `jti`, and the extra claims the gateway is configured to add. A service that trusts the
//! gateway does not need the Rails secret: [`AssertionVerifier`] checks the assertion against those keys and
//! hands out a [`GatewayUser`].
//!
//! The keys come from the JWKS URL (fetched on first use, again for an unknown `kid` at most once per 10 s, and in
//! the background, on use, once they are 5 min old), from a local JWKS file (read again when it changes), or from
//! a JWKS string. The assertion may also be encrypted (a JWE around the signed JWT, see [`jwe`]) when the service
//! is given the gateway's 32-byte key with [`AssertionVerifierBuilder::decryption_key`].
//!
//! ## axum
//!
//! Add [`GatewayAuthLayer`] (or `.layer(axum::Extension(verifier))`) and take a [`GatewayUser`] in handlers. The
//! token is read from `X-Railbridge-Assertion` (the gateway strips any a client sends), or else from
//! `Authorization: Bearer <token>` (an access token, when the service is reached without the gateway's header).
//! `Option<GatewayUser>` is `None` when the request carries neither.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{routing::get, Json, Router};
//! use rails_session::gateway_auth::{AssertionVerifier, GatewayAuthLayer, GatewayUser};
//!
//! async fn me(user: GatewayUser) -> Json<serde_json::Value> {
//!     let email: Option<String> = user.claim("email"); // an extra claim the gateway adds
//!     Json(serde_json::json!({ "id": user.user_id(), "scope": user.scope(), "email": email }))
//! }
//!
//! let verifier = AssertionVerifier::builder()
//!     .jwks_url("http://railbridge.internal:8080/.well-known/jwks.json")
//!     .audience("api") // the name of the gateway route in front of this service
//!     .build()?;
//! verifier.refresh().await?; // optional: fetch the keys now, to fail at start-up rather than on a request
//! let app = Router::new().route("/api/me", get(me)).layer(GatewayAuthLayer::new(verifier));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Refusals are JSON, with a `WWW-Authenticate` challenge on 401 (RFC 6750): no token → 401
//! `{"error":"missing_token"}`; a refused token → 401 `{"error":"invalid_token","reason":"expired"}` (the
//! reasons are [`AssertionError::reason`]); keys unavailable → 503; no verifier on the route → 500 (with the fix
//! in the log). See [`GatewayAuthRejection`].
//!
//! ## actix-web
//!
//! `GatewayUser` is an extractor there too (feature `actix-web`); the verifier comes from
//! `.app_data(web::Data::new(verifier))` (or a bare `.app_data(verifier)`).
//!
//! ```no_run
//! # #[cfg(feature = "actix-web")]
//! # async fn run(verifier: rails_session::gateway_auth::AssertionVerifier) -> std::io::Result<()> {
//! use actix_web::{web, App, HttpServer};
//! use rails_session::gateway_auth::GatewayUser;
//!
//! async fn me(user: GatewayUser) -> String {
//!     user.user_id().to_owned()
//! }
//!
//! let verifier = web::Data::new(verifier);
//! HttpServer::new(move || App::new().app_data(verifier.clone()).route("/api/me", web::get().to(me)))
//!     .bind("127.0.0.1:3002")?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! ## Anything else
//!
//! [`AssertionVerifier::verify`] takes the token and returns the user or an [`AssertionError`];
//! [`AssertionVerifier::verify_cached`] does the same synchronously, with the keys already loaded.

mod error;
pub mod jwe;
mod jwk;
mod layer;
mod rejection;
mod user;
mod verifier;

#[cfg(feature = "actix-web")]
mod actix;
#[cfg(feature = "axum")]
mod axum;

pub use error::AssertionError;
pub use layer::{GatewayAuthLayer, GatewayAuthService};
pub use rejection::{GatewayAuthRejection, ASSERTION_HEADER};
pub use user::GatewayUser;
pub use verifier::{AssertionVerifier, AssertionVerifierBuilder};
