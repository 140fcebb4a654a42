//! Web integration for Rails sessions (in progress).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
pub use rails_cookie;
