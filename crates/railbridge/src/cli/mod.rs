//! Command-line interface.

mod cookie;
mod inspect;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Share a Rails app's login with Rust services: decode and encode Rails session cookies, or run the identity
/// gateway.
#[derive(Debug, Parser)]
#[command(name = "railbridge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, encode or inspect a Rails cookie.
    #[command(subcommand)]
    Cookie(cookie::CookieCommand),
    /// Run the identity gateway.
    Serve(serve::ServeArgs),
}

/// Runs a parsed command line; the exit code follows the command's documentation.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Cookie(cmd) => cookie::run(cmd),
        Command::Serve(args) => serve::run(args),
    }
}
