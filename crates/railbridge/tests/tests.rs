//! Integration tests of the `railbridge` binary.
#![allow(clippy::unwrap_used, clippy::panic)]

mod cli;
mod cli_inspect;
mod gateway;
