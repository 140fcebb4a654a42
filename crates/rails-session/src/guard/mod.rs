//! `before_action :authenticate_user!` as a tower layer: `401` (JSON) when nobody is signed in.

#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use layer::RequireUserLayer;
pub use service::RequireUserService;
