//! The session middleware (`ActionDispatch::Session::CookieStore` as a tower [`Layer`](tower_layer::Layer)): reads the
//! session cookie of each request into a lazy [`Session`](crate::Session) in the request extensions, and writes it
//! back with `Set-Cookie` when it changed.

mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::SessionLayer;
pub use service::SessionService;
