//! Identity assertions for upstreams: signing keys from PEM files ([`keys`]), the published key set
//! ([`jwks`]) and the cached, short-lived JWTs ([`issuer`]).
//!
//! Signing uses `ring` directly (the workspace's crypto library); `jsonwebtoken` provides the JOSE types (header,
//! JWK, JWKS) and PEM parsing. Its own crypto backends (aws-lc-rs or RustCrypto) would each add a second crypto
//! library to the binary.

pub(crate) mod issuer;
pub(crate) mod jwks;
pub(crate) mod keys;

pub use jwks::KeySet;
pub use keys::{KeyError, SigningKey};
