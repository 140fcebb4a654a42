//! Integration tests of the codec: Rails-generated vectors, live round trips with real Rails, property tests.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod inspect;
mod live;
mod properties;
mod vectors;
