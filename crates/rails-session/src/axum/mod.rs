//! axum extractors: [`crate::Session`], [`crate::CurrentUser`], `Option<CurrentUser<_>>` and [`crate::CsrfToken`], for
//! routes behind a [`crate::SessionLayer`].

mod extract;
mod rejection;

pub use rejection::SessionRejection;
