//! actix-web support (feature `actix-web`): the [`RailsSession`] middleware, the [`RequireUser`] guard and the
//! [`VerifyCsrf`] check, and extractors for [`crate::Session`], [`crate::CurrentUser`], [`MaybeUser`] and
//! [`crate::CsrfToken`].
//!
//! ```
//! use actix_web::{web, App, HttpResponse};
//! use rails_session::actix::{RailsSession, RequireUser, VerifyCsrf};
//! use rails_session::{rails_cookie::{Profile, SecretKeyBase}, CurrentUser, Identity, SessionConfig};
//!
//! async fn me(user: CurrentUser<Identity>) -> HttpResponse {
//!     HttpResponse::Ok().json(user.into_inner())
//! }
//!
//! let config = SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new("x".repeat(128))?, "_app_session")?;
//! let session = RailsSession::new(config);
//! let app = App::new()
//!     .service(web::scope("/api").wrap(RequireUser).wrap(VerifyCsrf).route("/me", web::get().to(me)))
//!     .wrap(session);
//! # let _ = app;
//! # Ok::<(), rails_session::ConfigError>(())
//! ```
//!
//! actix-web's own `Option<T>` extractor turns every error into `None`, so `Option<CurrentUser<U>>` treats a
//! User API outage as "signed out"; use [`MaybeUser`] to keep the `503`.

mod extract;
mod middleware;

pub use extract::{MaybeUser, SessionRejection};
pub use middleware::{
    RailsSession, RailsSessionMiddleware, RequireUser, RequireUserMiddleware, VerifyCsrf,
    VerifyCsrfMiddleware,
};
