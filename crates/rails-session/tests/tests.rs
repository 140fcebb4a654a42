//! Integration tests of rails-session: one behaviour suite run against both adapters (the axum and actix-web
//! examples, over real TCP on 127.0.0.1), live round trips with the real Rails 6.1 + Devise app of
//! `interop/app` and the real Rails 7.2 app of `interop/app72`, and tower-level tests with `oneshot`.
#![cfg(all(feature = "axum", feature = "user-api"))]
#![allow(clippy::unwrap_used, clippy::panic, unreachable_pub)]

#[path = "../examples/api.rs"]
#[allow(dead_code, unreachable_pub)]
mod api;
#[cfg(feature = "actix-web")]
#[path = "../examples/api_actix.rs"]
#[allow(dead_code, unreachable_pub)]
mod api_actix;

#[cfg(feature = "actix-web")]
mod actix;
mod behaviour;
mod common;
#[cfg(feature = "gateway-auth")]
mod gateway_auth;
mod live;
mod live_7_2;
#[cfg(all(feature = "redis", feature = "memcached"))]
mod live_stores;
#[cfg(all(feature = "redis", feature = "memcached", feature = "database"))]
mod stores;
mod tower;
mod user_api;
