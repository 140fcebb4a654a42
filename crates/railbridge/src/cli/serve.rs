//! `railbridge serve`: the identity gateway. Loads the configuration (file + environment), listens, reloads on
//! SIGHUP, drains and exits on SIGTERM / SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::{serve, Config, Gateway};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The configuration file (TOML); environment variables override it. Default: ./railbridge.toml if it exists,
    /// else the built-in default (crates/railbridge/railbridge.toml). Secrets are never read from the command line.
    #[arg(long, short, env = "RAILBRIDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (and load the keys it names), print a summary and exit.
    #[arg(long)]
    check: bool,
    /// With --check: a cookie the Rails app set, in a file (its value, `name=value`, or a `Cookie:` or
    /// `Set-Cookie:` line). Says whether the configured gateway reads it and, if not, why and what would
    /// (as `railbridge cookie inspect` does); a cookie it does not read makes the check fail.
    #[arg(long, value_name = "FILE", requires = "check")]
    sample_cookie: Option<PathBuf>,
}

fn load(path: Option<&PathBuf>) -> Result<Config, crate::ConfigError> {
    Config::load(path.map(PathBuf::as_path), |name| std::env::var(name).ok())
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.log_filter().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = if config.log_json() { builder.json().try_init() } else { builder.try_init() };
}

pub(super) fn run(args: ServeArgs) -> ExitCode {
    let config = match load(args.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("railbridge serve: {e}");
            return ExitCode::from(2);
        }
    };
    let files = raise_open_files();
    if args.check {
        println!("configuration ok; listen {}", config.listen());
        report_limits(&config, files);
        for w in config.warnings() {
            println!("warning: {w}");
        }
        let store = check_store(&config);
        let login = check_login(&config);
        let tokens = check_tokens(&config);
        let sample =
            args.sample_cookie.as_deref().map_or(ExitCode::SUCCESS, |p| check_sample(&config, p));
        return [store, login, tokens, sample]
            .into_iter()
            .find(|c| *c != ExitCode::SUCCESS)
            .unwrap_or(ExitCode::SUCCESS);
    }
    init_tracing(&config);
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    if let Some(w) = files_warning(&config, files) {
        tracing::warn!("{w}");
    }
    // The serving happens on `[server] workers` threads of their own (see `railbridge::serve`); this thread only
    // waits for signals, reloads and keeps the metrics tidy (and serves, when there is a single worker).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("railbridge serve: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen()).await?;
        let addr = listener.local_addr()?;
        let scheme = if config.tls() { "https" } else { "http" };
        let gateway = Gateway::new(config);
        // One stdout line once the socket is bound, for scripts and supervisors.
        println!("listening on {scheme}://{addr}");
        tracing::info!(%addr, "railbridge gateway listening");
        spawn_reloader(gateway.clone(), args.config.clone());
        serve(gateway, listener, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("railbridge serve: {e}");
            ExitCode::from(1)
        }
    }
}

/// The open-files soft limit raised to the hard limit (each connection holds one descriptor, a proxied request
/// another): `(before, now, hard)`, or `None` where the platform does not say.
fn raise_open_files() -> Option<(u64, u64, u64)> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some((soft, hard, hard));
    }
    Some((soft, soft, hard))
}

/// A warning when `max_connections` cannot be served with the open-files limit.
fn files_warning(config: &Config, files: Option<(u64, u64, u64)>) -> Option<String> {
    let (_, now, _) = files?;
    let need = u64::try_from(config.max_connections())
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(64);
    (need > now).then(|| {
        format!(
            "[server] max_connections = {} needs about {need} open files (a client and an upstream connection each); the limit is {now}: raise LimitNOFILE / ulimit -n, or lower max_connections",
            config.max_connections()
        )
    })
}

/// `--check`: the connection and open-files limits.
fn report_limits(config: &Config, files: Option<(u64, u64, u64)>) {
    match files {
        Some((before, now, hard)) if before < now => {
            println!("open files: {now} (raised from {before}; hard limit {hard})");
        }
        Some((_, now, hard)) => println!("open files: {now} (hard limit {hard})"),
        None => println!("open files: unknown"),
    }
    println!("max connections: {}", config.max_connections());
    for line in config.server_limits().into_iter().chain(config.route_summaries()) {
        println!("{line}");
    }
    if let Some(w) = files_warning(config, files) {
        println!("warning: {w}");
    }
}

/// `--check`: says where sessions live and, for a server-side store, connects to it once.
fn check_store(config: &Config) -> ExitCode {
    let Some(session) = config.session_config() else { return ExitCode::SUCCESS };
    let name = session.store_name();
    println!("session store: {name}");
    if name == "cookie_store" {
        return ExitCode::SUCCESS;
    }
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(session.check_store()).map_err(|e| e.to_string()));
    match checked {
        Ok(()) => {
            println!("session store: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("session store: not reachable: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--check`: the token exchange's settings, and one round trip to its store.
fn check_tokens(config: &Config) -> ExitCode {
    let Some(summary) = config.tokens_summary() else {
        println!("tokens: off");
        return ExitCode::SUCCESS;
    };
    println!("tokens: {summary}");
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(config.check_token_store()));
    match checked {
        Ok(()) => {
            println!("token store: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("token store: not reachable: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--check`: says where the login lives and, for Rails 8 authentication, reads the `sessions` table once.
fn check_login(config: &Config) -> ExitCode {
    use rails_session::IdentitySource;
    match config.login_source() {
        None => ExitCode::SUCCESS,
        Some(IdentitySource::Warden { scope }) => {
            println!("login: devise (Warden scope {scope})");
            ExitCode::SUCCESS
        }
        Some(IdentitySource::SessionPath(path)) => {
            println!("login: session-key ({})", path.join("."));
            ExitCode::SUCCESS
        }
        Some(IdentitySource::RailsAuthentication(auth)) => {
            println!(
                "login: rails-authentication (signed cookie {}, sessions table)",
                auth.cookie_name()
            );
            let checked = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(auth.check()));
            match checked {
                Ok(()) => {
                    println!("database: ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("database: not readable: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(other) => {
            println!("login: {other:?}");
            ExitCode::SUCCESS
        }
    }
}

/// `--check --sample-cookie FILE`: the configured profile decodes the cookie as the gateway would; when it cannot
/// (or reads it only through an upgrade path), the inspector says which configuration wrote it.
fn check_sample(config: &Config, path: &std::path::Path) -> ExitCode {
    use std::io::Read as _;
    let fail = |message: String| {
        println!("sample cookie: {message}");
        ExitCode::from(1)
    };
    let mut text = String::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(super::inspect::MAX_INPUT + 1).read_to_string(&mut text));
    match read {
        Ok(n) if n as u64 > super::inspect::MAX_INPUT => {
            return fail(format!("{} is over {} bytes", path.display(), super::inspect::MAX_INPUT))
        }
        Ok(_) => {}
        Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
    }
    let (Some(session), Some(secret)) = (config.session_config(), config.secret_key_base()) else {
        return fail("not checked: no SECRET_KEY_BASE is configured".into());
    };
    let session_key = session.key();
    let login_cookie = session.identity_config().login_cookie();
    let input = match rails_cookie::inspect::CookieInput::parse(&text, None) {
        Err(rails_cookie::inspect::InputError::Ambiguous { .. }) => {
            rails_cookie::inspect::CookieInput::parse(&text, Some(session_key))
        }
        other => other,
    };
    let input = match input {
        Ok(i) => i,
        Err(e) => return fail(e.to_string()),
    };
    let name = input.name.as_deref().unwrap_or(session_key);
    let profile = session.profile();
    println!(
        "sample cookie: {name} ({} bytes), checked against Rails {} ({}, {})",
        input.value.len(),
        profile.version(),
        profile.session_cipher(),
        profile.serializer()
    );
    let value = rails_cookie::unescape(&input.value);
    let now = time::OffsetDateTime::now_utc();
    let decoded = if Some(name) == login_cookie {
        session.codec().decode_signed_at(name, &value, now)
    } else if name != session_key {
        return fail(format!(
            "the gateway reads the cookie {session_key:?}{}, not {name:?}: set SESSION_KEY={name} if this is the              session cookie",
            login_cookie.map(|c| format!(" and {c:?}")).unwrap_or_default()
        ));
    } else if session.store_name() != "cookie_store" {
        let id = value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
        if id {
            println!(
                "sample cookie: a session id, as {} keeps in the cookie: ok",
                session.store_name()
            );
            return ExitCode::SUCCESS;
        }
        return fail(format!(
            "the session store is {}, whose cookie is a 32-hex session id; this is not one",
            session.store_name()
        ));
    } else {
        session.codec().decode_at(name, &value, now)
    };
    match decoded {
        Ok(d) if !d.rewrite => {
            let login = match d.value.as_hash() {
                Some(hash) => session.identity_config().find_in(hash).map_or_else(
                    || format!("{} session keys, nobody signed in", hash.len()),
                    |who| match who.scope() {
                        Some(scope) => format!("user {} signed in, Warden scope {scope}", who.id),
                        None => format!("user {} signed in", who.id),
                    },
                ),
                None => rails_session::UserId::from_value(&d.value)
                    .map_or_else(|| "not a login".to_owned(), |row| format!("the sessions row {row}")),
            };
            println!("sample cookie: read by the configured profile ({login}): ok");
            return ExitCode::SUCCESS;
        }
        Ok(_) => println!(
            "sample cookie: read, but only through an upgrade path (Rails would rewrite it): the configuration is not              the app's own"
        ),
        Err(e) => println!("sample cookie: not read by the configured profile: {}: {e}", e.kind()),
    }
    let inspector =
        rails_cookie::inspect::Inspector::new().secret_key_base(secret.clone()).salts_of(profile);
    match super::inspect::inspect_text(&text, &inspector, Some(name), Some(session_key)) {
        Ok(inspection) => {
            for line in super::inspect::to_text(&inspection, false).lines() {
                if line.is_empty() {
                    println!();
                } else {
                    println!("  {line}");
                }
            }
        }
        Err(e) => println!("  {e}"),
    }
    ExitCode::from(1)
}

/// SIGHUP: read the configuration again (file, environment, key files); keep the old one if the new one is bad.
fn spawn_reloader(gateway: Gateway, path: Option<PathBuf>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            match load(path.as_ref()) {
                Ok(config) => {
                    for w in config.warnings() {
                        tracing::warn!("{w}");
                    }
                    gateway.reload(config);
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the new configuration is invalid; keeping the old one")
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (gateway, path);
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
