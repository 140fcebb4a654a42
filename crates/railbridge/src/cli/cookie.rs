//! `railbridge cookie decode|encode`: the codec on the command line, configured with Rails' own setting names.
//! (`railbridge cookie inspect` lives in `super::inspect`.)

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rails_cookie::{
    dangerous, Cipher, CookieCodec, CookieKind, Digest, Profile, RailsVersion, Rotation,
    SecretKeyBase, Serializer, Value,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Largest input read from stdin: a cookie is at most 4096 bytes (about 5 KB escaped); a session JSON a little more.
const MAX_INPUT: u64 = 1 << 20;

#[derive(Debug, Subcommand)]
pub(super) enum CookieCommand {
    /// Read a cookie value (as it appears in a Cookie header) on stdin; print the session as JSON.
    ///
    /// Exits 0 with the session on stdout, or 1 with one line on stderr naming why the cookie was refused
    /// (malformed, invalid_signature, purpose, expired, serializer, …). Ruby-only values (symbols, times, objects)
    /// print in the tagged JSON form of docs/tagged-json.md.
    Decode(DecodeArgs),
    /// Read a session as (tagged) JSON on stdin; print the cookie value as it would appear in Set-Cookie.
    Encode(EncodeArgs),
    /// Tell which Rails configuration wrote a cookie, or why none can read it, and what to configure.
    ///
    /// Reads the cookie on stdin: its value as in the Cookie header, `name=value`, or a whole `Cookie:` or
    /// `Set-Cookie:` header line. Its shape is read without any key; then every configuration Rails can write that
    /// shape with is tried, each key derived once — PBKDF2-SHA256 and -SHA1 keys from SECRET_KEY_BASE with Rails'
    /// default salts and the configured ones (SESSION_*_SALT), and SECRET_TOKEN for old signed sessions. Prints
    /// what verified — cipher, key derivation, envelope, purpose, expiry, serializer, the Rails versions whose
    /// defaults read it, the session's keys (values only with --show-values), the Devise/Warden or Rails 8 login
    /// inside — and the configuration to use: environment variables, the `[rails]` block, the Rust `Profile`.
    /// When nothing reads it, the diagnosis says why: not a Rails cookie, damaged, another secret or salt, another
    /// cookie's value, expired.
    ///
    /// Exits 0 when a configuration reads the cookie, 1 when none does (or the input holds no cookie).
    Inspect(super::inspect::InspectArgs),
}

#[derive(Debug, Args)]
pub(super) struct DecodeArgs {
    #[command(flatten)]
    codec: CodecArgs,
    /// Check expiry against this instant (RFC 3339) instead of the current time.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Also print whether Rails would rewrite the cookie: `{"session": …, "rewrite": bool}`.
    #[arg(long)]
    with_rewrite: bool,
}

#[derive(Debug, Args)]
pub(super) struct EncodeArgs {
    #[command(flatten)]
    codec: CodecArgs,
    /// Give the cookie an expiry this many seconds from now (what `expire_after` does); it goes into the metadata
    /// envelope where the Rails version writes one.
    #[arg(long, value_name = "SECONDS", conflicts_with = "expires_at")]
    expires_in: Option<i64>,
    /// Give the cookie this expiry (RFC 3339).
    #[arg(long, value_name = "TIME")]
    expires_at: Option<String>,
    /// Encrypt with this IV (hex) instead of a random one. Dangerous: only for reproducing Rails' test vectors.
    #[arg(long, value_name = "HEX", hide = true)]
    dangerous_fixed_iv: Option<String>,
}

/// The codec's configuration, named after the Rails settings. `SECRET_KEY_BASE` is read from the environment only,
/// so it never appears in a process list or shell history.
#[derive(Debug, Args)]
struct CodecArgs {
    /// Rails version whose defaults to start from (4.2, 5.0, 5.1, 5.2, 6.0, 6.1, 7.0, 7.1, 7.2, 8.0, 8.1; 4.0 and 4.1 read
    /// as 4.2; any other is an error).
    #[arg(long = "rails", env = "RAILS_VERSION", default_value = "6.1", value_name = "VERSION")]
    rails: String,
    /// The session cookie's name (the session store's `key`); the purpose envelope is bound to it.
    #[arg(long, env = "SESSION_KEY", default_value = "_app_session", value_name = "NAME")]
    cookie_name: String,
    /// `cookies_serializer`: json, marshal, hybrid, json-allow-marshal, message-pack, message-pack-allow-marshal.
    #[arg(long, value_name = "NAME")]
    serializer: Option<String>,
    /// The cipher: aes-256-gcm (5.2+ default) or aes-256-cbc (4.2–5.1, or use_authenticated_cookie_encryption off).
    #[arg(long, value_name = "CIPHER")]
    cipher: Option<String>,
    /// The session is a signed cookie (the signed jar), not an encrypted one.
    #[arg(long)]
    signed: bool,
    /// `key_generator_hash_digest_class`: sha1 (before 7.0) or sha256 (7.0+ defaults).
    #[arg(long, value_name = "DIGEST")]
    kdf_digest: Option<String>,
    /// PBKDF2 iterations (Rails uses 1000).
    #[arg(long, value_name = "N")]
    iterations: Option<u32>,
    #[command(flatten)]
    salts: SaltArgs,
    /// `cookies_digest` (HMAC digest of 4.2–5.1 cookies).
    #[arg(long, value_name = "DIGEST")]
    cookies_digest: Option<String>,
    /// `signed_cookie_digest` (5.2+).
    #[arg(long, value_name = "DIGEST")]
    signed_cookie_digest: Option<String>,
    /// Write no metadata envelope (`use_cookies_with_metadata = false`).
    #[arg(long)]
    no_metadata: bool,
    /// Also accept cookies written with this Rails version's defaults (a rotation); repeatable.
    #[arg(long, value_name = "VERSION")]
    accept_rails: Vec<String>,
}

/// The cookie jars' salts (`config.action_dispatch.*_salt`), shared by `decode`, `encode` and `inspect`.
#[derive(Debug, Args)]
pub(super) struct SaltArgs {
    /// `config.action_dispatch.encrypted_cookie_salt` (CBC encryption key).
    #[arg(long, env = "SESSION_ENCRYPTED_COOKIE_SALT", value_name = "SALT")]
    encrypted_cookie_salt: Option<String>,
    /// `config.action_dispatch.encrypted_signed_cookie_salt` (CBC HMAC key).
    #[arg(long, env = "SESSION_ENCRYPTED_SIGNED_COOKIE_SALT", value_name = "SALT")]
    encrypted_signed_cookie_salt: Option<String>,
    /// `config.action_dispatch.authenticated_encrypted_cookie_salt` (GCM key).
    #[arg(long, env = "SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT", value_name = "SALT")]
    authenticated_encrypted_cookie_salt: Option<String>,
    /// `config.action_dispatch.signed_cookie_salt` (signed jar).
    #[arg(long, env = "SESSION_SIGNED_COOKIE_SALT", value_name = "SALT")]
    signed_cookie_salt: Option<String>,
}

/// A builder's setter for one salt.
type SetSalt<T> = fn(T, String) -> T;

impl SaltArgs {
    /// Gives each salt that is set to `target` through its setter (a `Profile`'s or an `Inspector`'s), in the order
    /// encrypted, encrypted-signed, authenticated-encrypted, signed.
    pub(super) fn apply<T>(
        &self,
        mut target: T,
        encrypted: SetSalt<T>,
        encrypted_signed: SetSalt<T>,
        authenticated: SetSalt<T>,
        signed: SetSalt<T>,
    ) -> T {
        for (salt, set) in [
            (&self.encrypted_cookie_salt, encrypted),
            (&self.encrypted_signed_cookie_salt, encrypted_signed),
            (&self.authenticated_encrypted_cookie_salt, authenticated),
            (&self.signed_cookie_salt, signed),
        ] {
            if let Some(s) = salt {
                target = set(target, s.clone());
            }
        }
        target
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{}: {source}", source.kind())]
    Codec {
        #[from]
        source: rails_cookie::Error,
    },
    #[error("config: {0}")]
    Config(String),
    #[error("input: {0}")]
    Input(String),
}

pub(super) fn run(cmd: CookieCommand) -> ExitCode {
    let result = match cmd {
        CookieCommand::Decode(args) => decode(&args),
        CookieCommand::Encode(args) => encode(&args),
        CookieCommand::Inspect(args) => return super::inspect::run(&args),
    };
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not an error worth a message.
            let _ = writeln!(stdout, "{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("railbridge: {e}");
            ExitCode::from(1)
        }
    }
}

fn read_stdin() -> Result<String, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut input)
        .map_err(|e| CliError::Input(format!("stdin is not readable UTF-8 text: {e}")))?;
    Ok(input)
}

fn parse_time(s: &str) -> Result<OffsetDateTime, CliError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| CliError::Input(format!("{s:?} is not an RFC 3339 time")))
}

fn decode(args: &DecodeArgs) -> Result<String, CliError> {
    let codec = args.codec.build()?;
    let input = read_stdin()?;
    let mut value = input.trim();
    // Accept a whole `name=value` pair as copied from a Cookie header.
    if let Some(rest) = value.strip_prefix(&format!("{}=", args.codec.cookie_name)) {
        value = rest;
    }
    if value.is_empty() {
        return Err(rails_cookie::Error::Malformed("empty cookie value").into());
    }
    let now = match &args.at {
        Some(t) => parse_time(t)?,
        None => OffsetDateTime::now_utc(),
    };
    let decoded = codec.decode_at(&args.codec.cookie_name, &rails_cookie::unescape(value), now)?;
    let session = decoded.value.to_tagged_json();
    let out = if args.with_rewrite {
        serde_json::json!({ "session": session, "rewrite": decoded.rewrite })
    } else {
        session
    };
    // Integers beyond 64 bits print as numbers, as Rails wrote them in a JSON session.
    let mut text = String::new();
    rails_cookie::write_json_with_big_integers(&out, &mut text);
    Ok(text)
}

fn encode(args: &EncodeArgs) -> Result<String, CliError> {
    let codec = args.codec.build()?;
    let input = read_stdin()?;
    // Read with Ruby's number rules: an Integer of any size stays an Integer.
    let value = Value::from_tagged_json_str(&input).map_err(|e| match e {
        rails_cookie::Error::Serializer { reason, .. } if reason.starts_with("invalid JSON") => {
            CliError::Input(format!("the session is not JSON: {reason}"))
        }
        other => other.into(),
    })?;
    let expires = match (args.expires_in, &args.expires_at) {
        (Some(secs), _) => Some(OffsetDateTime::now_utc() + time::Duration::seconds(secs)),
        (None, Some(t)) => Some(parse_time(t)?),
        (None, None) => None,
    };
    let name = &args.codec.cookie_name;
    let raw = match &args.dangerous_fixed_iv {
        Some(iv) => {
            let iv = hex::decode(iv)
                .map_err(|_| CliError::Input("--dangerous-fixed-iv is not hex".into()))?;
            dangerous::encode_with_fixed_iv(&codec, name, &value, expires, &iv)?
        }
        None => codec.encode(name, &value, expires)?,
    };
    Ok(rails_cookie::escape(&raw))
}

impl CodecArgs {
    fn profile(&self, version: RailsVersion) -> Result<Profile, CliError> {
        let mut p = Profile::for_version(version);
        if let Some(s) = &self.serializer {
            p = p.cookies_serializer(s.parse::<Serializer>()?);
        }
        if let Some(c) = &self.cipher {
            p = p.cipher(c.parse::<Cipher>()?);
        }
        if self.signed {
            p = p.session_cookie(CookieKind::Signed);
        }
        if let Some(d) = &self.kdf_digest {
            p = p.key_generator_hash_digest_class(d.parse::<Digest>()?);
        }
        if let Some(n) = self.iterations {
            p = p.key_iterations(n);
        }
        p = self.salts.apply(
            p,
            Profile::encrypted_cookie_salt,
            Profile::encrypted_signed_cookie_salt,
            Profile::authenticated_encrypted_cookie_salt,
            Profile::signed_cookie_salt,
        );
        if let Some(d) = &self.cookies_digest {
            p = p.cookies_digest(d.parse::<Digest>()?);
        }
        if let Some(d) = &self.signed_cookie_digest {
            p = p.signed_cookie_digest(d.parse::<Digest>()?);
        }
        if self.no_metadata {
            p = p.use_cookies_with_metadata(false);
        }
        Ok(p)
    }

    fn build(&self) -> Result<CookieCodec, CliError> {
        let secret = std::env::var("SECRET_KEY_BASE").map_err(|_| {
            CliError::Config("SECRET_KEY_BASE is not set (the Rails app's secret_key_base)".into())
        })?;
        let secret = SecretKeyBase::new(secret)?;
        let version: RailsVersion = self.rails.parse()?;
        let mut profile = self.profile(version)?;
        for other in &self.accept_rails {
            let other: RailsVersion = other.parse()?;
            profile = profile.rotate(Rotation::app(secret.clone(), self.profile(other)?));
        }
        Ok(CookieCodec::new(profile, secret)?)
    }
}
