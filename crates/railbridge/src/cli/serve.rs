//! `railbridge serve`: the identity gateway.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The configuration file (TOML); environment variables override it.
    #[arg(long, short, env = "RAILBRIDGE_CONFIG", default_value = "railbridge.toml")]
    config: std::path::PathBuf,
}

pub(super) fn run(args: ServeArgs) -> ExitCode {
    eprintln!("railbridge serve: config {} (the gateway is not built yet)", args.config.display());
    ExitCode::from(2)
}
