//! The `railbridge` binary as a library, so its tests can drive it: the CLI (`railbridge cookie decode|encode|inspect`) and
//! the identity gateway (`railbridge serve`).
//!
//! ## The gateway
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use railbridge::{serve, Config, Gateway};
//! // The file (or the built-in default), with SECRET_KEY_BASE, SESSION_KEY, RAILBRIDGE_UPSTREAM, … overriding it.
//! let config = Config::load(None, |name| std::env::var(name).ok())?;
//! let listener = tokio::net::TcpListener::bind(config.listen()).await?;
//! serve(Gateway::new(config), listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! See `docs/gateway.md` for the configuration, the headers upstreams receive and the edge-proxy recipes.
//!
//! ## Features
//!
//! - `mimalloc` (default): mimalloc as the global allocator. The proxy path allocates per request (headers,
//!   bodies, the decoded session); with glibc malloc, allocation was about 15% of the gateway's CPU.

// A connection's future nests hyper's connection, TLS, the header clock and the gateway's whole request path;
// proving it `Send` for `tokio::spawn` takes rustc's trait solver deeper than its default limit of 128.
#![recursion_limit = "256"]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
mod config;
mod gateway;
mod jwt;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use config::{Config, ConfigError, DEFAULT_CONFIG};
pub use gateway::{serve, Gateway, Stats};
pub use jwt::{KeyError, KeySet, SigningKey};
