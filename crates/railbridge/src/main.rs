//! `railbridge`: the identity gateway and the Rails cookie CLI.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    railbridge::cli::run(railbridge::cli::Cli::parse())
}
