//! `railbridge cookie inspect`: which Rails configuration wrote a cookie, or why none reads it — the codec's
//! `inspect` module presented as text or JSON, with the login the cookie carries and what to configure: the
//! gateway's environment variables and `[rails]` block, the Rust `Profile`, and the `cookie decode` command line.

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::ExitCode;

use clap::Args;
use rails_cookie::inspect::{
    CookieInput, Diagnosis, Envelope, Finding, InputForm, Inspector, Layout, PartContent, Report,
    Setting,
};
use rails_cookie::{
    Cipher, CookieKind, Digest, Format, RailsVersion, SecretKeyBase, Serializer, Value,
};
use rails_session::{IdentityConfig, UserId};
use serde_json::{json, Value as Json};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The most read from stdin or a sample file: a whole `Cookie` header fits many times over.
pub(super) const MAX_INPUT: u64 = 64 * 1024;

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// The cookie's name, which a purpose envelope must name. Default: the name in the input (`name=value`, a
    /// header), else SESSION_KEY; with neither, any purpose is accepted and reported.
    #[arg(long, value_name = "NAME")]
    cookie_name: Option<String>,
    /// Print one JSON object (the fields are listed in the README) instead of text.
    #[arg(long)]
    json: bool,
    /// Show the session's values; by default only its keys and the types of their values are shown.
    #[arg(long)]
    show_values: bool,
    /// Check expiry against this instant (RFC 3339) instead of the current time.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The app's salts, each tried before Rails' default.
    #[command(flatten)]
    salts: super::cookie::SaltArgs,
}

/// Where the login of a cookie is.
#[derive(Debug)]
enum Login {
    /// `warden.user.<scope>.key` (the first scope; `others` are more signed-in scopes).
    Devise { scope: String, user_id: UserId, others: Vec<String> },
    /// Rails 8's authentication generator: this signed cookie holds a `sessions` row id.
    RailsAuthentication { cookie: String, row: UserId },
    /// A plain `session[:user_id]`.
    SessionKey { key: String, user_id: UserId },
}

/// What to configure for a finding.
#[derive(Debug)]
struct Advice {
    version: RailsVersion,
    settings: Vec<Setting>,
    env: Vec<(&'static str, String)>,
    toml: String,
    profile: String,
    decode: Option<String>,
    /// Settings the gateway's configuration has no key for.
    unsupported: Vec<String>,
}

/// One inspected cookie, with what the CLI adds to the codec's report.
#[derive(Debug)]
pub(super) struct Inspection {
    report: Report,
    form: InputForm,
    login: Option<Login>,
    advice: Option<Advice>,
    hints: Vec<String>,
}

impl Inspection {
    pub(super) fn is_readable(&self) -> bool {
        self.report.is_readable()
    }
}

/// Inspects the cookie in `text` (any form [`CookieInput::parse`] takes). The name is `cookie_name`, else the
/// input's, else `session_key` (which also chooses among a header's cookies).
pub(super) fn inspect_text(
    text: &str,
    inspector: &Inspector,
    cookie_name: Option<&str>,
    session_key: Option<&str>,
) -> Result<Inspection, String> {
    let input = match CookieInput::parse(text, cookie_name) {
        Err(rails_cookie::inspect::InputError::Ambiguous { .. })
            if cookie_name.is_none() && session_key.is_some() =>
        {
            CookieInput::parse(text, session_key)
        }
        other => other,
    }
    .map_err(|e| e.to_string())?;
    let name = cookie_name.or(input.name.as_deref()).or(session_key);
    let report = inspector.inspect(name, &input.value);
    let login = login(&report);
    let advice = advice(&report, login.as_ref());
    let hints = hints(&report);
    Ok(Inspection { report, form: input.form, login, advice, hints })
}

pub(super) fn run(args: &InspectArgs) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let fail = |message: String, json: bool| {
        if json {
            println!(
                "{}",
                json!({"readable": false, "diagnosis": message, "diagnosis_kind": "input"})
            );
        } else {
            eprintln!("railbridge: {message}");
        }
        ExitCode::from(1)
    };
    let mut inspector = Inspector::new();
    let mut secret_hint = None;
    if let Some(secret) = env("SECRET_KEY_BASE") {
        if secret.trim() != secret {
            secret_hint = Some(
                "SECRET_KEY_BASE has leading or trailing whitespace, which is part of the secret as Rails uses \
                 it byte for byte: check it was copied without a newline or spaces"
                    .to_owned(),
            );
        }
        match SecretKeyBase::new(secret) {
            Ok(s) => inspector = inspector.secret_key_base(s),
            Err(e) => return fail(format!("SECRET_KEY_BASE: {e}"), args.json),
        }
    }
    if let Some(token) = env("SECRET_TOKEN") {
        inspector = inspector.secret_token(token);
    }
    inspector = args.salts.apply(
        inspector,
        Inspector::encrypted_cookie_salt,
        Inspector::encrypted_signed_cookie_salt,
        Inspector::authenticated_encrypted_cookie_salt,
        Inspector::signed_cookie_salt,
    );
    if let Some(at) = &args.at {
        match OffsetDateTime::parse(at, &Rfc3339) {
            Ok(t) => inspector = inspector.at(t),
            Err(_) => return fail(format!("--at {at:?} is not an RFC 3339 time"), args.json),
        }
    }
    let mut text = String::new();
    match std::io::stdin().take(MAX_INPUT + 1).read_to_string(&mut text) {
        Ok(n) if n as u64 > MAX_INPUT => {
            return fail(
                format!("the input is over {MAX_INPUT} bytes; a cookie is at most 4096"),
                args.json,
            )
        }
        Ok(_) => {}
        Err(e) => return fail(format!("stdin is not readable UTF-8 text: {e}"), args.json),
    }
    let session_key = env("SESSION_KEY");
    let mut inspection = match inspect_text(
        &text,
        &inspector,
        args.cookie_name.as_deref(),
        session_key.as_deref(),
    ) {
        Ok(i) => i,
        Err(e) => return fail(e, args.json),
    };
    if !inspection.is_readable() {
        inspection.hints.extend(secret_hint);
    }
    let out = if args.json {
        to_json(&inspection, args.show_values).to_string()
    } else {
        to_text(&inspection, args.show_values)
    };
    println!("{out}");
    if inspection.is_readable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn login(report: &Report) -> Option<Login> {
    let value = report.value.as_ref()?;
    let kind = report.finding.as_ref()?.kind;
    if let Some(hash) = value.as_hash() {
        let scopes: Vec<String> = hash
            .iter_str()
            .filter_map(|(k, _)| k.strip_prefix("warden.user.")?.strip_suffix(".key"))
            .map(str::to_owned)
            .collect();
        for (i, scope) in scopes.iter().enumerate() {
            if let Some(identity) = IdentityConfig::warden(scope.as_str()).find_in(hash) {
                let others =
                    scopes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s.clone());
                return Some(Login::Devise {
                    scope: scope.clone(),
                    user_id: identity.id,
                    others: others.collect(),
                });
            }
        }
        let identity = IdentityConfig::session_path(["user_id"]).find_in(hash)?;
        return Some(Login::SessionKey { key: "user_id".into(), user_id: identity.id });
    }
    // Rails 8's authentication generator: `cookies.signed.permanent[:session_id] = session.id`.
    let name = report.cookie_name.as_deref()?;
    if kind == CookieKind::Signed && name == "session_id" {
        return Some(Login::RailsAuthentication {
            cookie: name.to_owned(),
            row: UserId::from_value(value)?,
        });
    }
    None
}

/// A range of versions as `6.0 – 6.1` (contiguous runs joined by commas).
fn range(versions: &[RailsVersion]) -> String {
    let mut runs: Vec<(RailsVersion, RailsVersion)> = Vec::new();
    for &v in versions {
        let position = RailsVersion::ALL.iter().position(|a| *a == v);
        match runs.last_mut() {
            Some((_, last))
                if RailsVersion::ALL.iter().position(|a| a == last).map(|p| p + 1) == position =>
            {
                *last = v;
            }
            _ => runs.push((v, v)),
        }
    }
    runs.iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a} – {b}") })
        .collect::<Vec<_>>()
        .join(", ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.,/:@%+=".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn digest_rust(d: Digest) -> &'static str {
    match d {
        Digest::Sha1 => "Digest::Sha1",
        Digest::Sha256 => "Digest::Sha256",
        Digest::Sha384 => "Digest::Sha384",
        _ => "Digest::Sha512",
    }
}

fn serializer_rust(s: Serializer) -> &'static str {
    match s {
        Serializer::Json => "Serializer::Json",
        Serializer::Marshal => "Serializer::Marshal",
        Serializer::Hybrid => "Serializer::Hybrid",
        Serializer::JsonAllowMarshal => "Serializer::JsonAllowMarshal",
        Serializer::MessagePack => "Serializer::MessagePack",
        _ => "Serializer::MessagePackAllowMarshal",
    }
}

/// The gateway's variable and `[rails]` key of a setting, where it has one.
fn gateway_key(setting: &Setting) -> Option<(&'static str, &'static str, String)> {
    Some(match setting {
        Setting::CookiesSerializer(s) => {
            ("COOKIES_SERIALIZER", "cookies_serializer", s.name().to_owned())
        }
        Setting::EncryptedCookieSalt(s) => {
            ("SESSION_ENCRYPTED_COOKIE_SALT", "encrypted_cookie_salt", s.clone())
        }
        Setting::EncryptedSignedCookieSalt(s) => {
            ("SESSION_ENCRYPTED_SIGNED_COOKIE_SALT", "encrypted_signed_cookie_salt", s.clone())
        }
        Setting::AuthenticatedEncryptedCookieSalt(s) => (
            "SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT",
            "authenticated_encrypted_cookie_salt",
            s.clone(),
        ),
        Setting::SignedCookieSalt(s) => {
            ("SESSION_SIGNED_COOKIE_SALT", "signed_cookie_salt", s.clone())
        }
        _ => return None,
    })
}

/// The Rust builder call of a setting (`None` for what the codec constructor expresses instead).
fn rust_call(setting: &Setting) -> Option<String> {
    Some(match setting {
        Setting::CookiesSerializer(s) => format!(".cookies_serializer({})", serializer_rust(*s)),
        Setting::UseAuthenticatedCookieEncryption(on) => {
            format!(".use_authenticated_cookie_encryption({on})")
        }
        Setting::UseCookiesWithMetadata(on) => format!(".use_cookies_with_metadata({on})"),
        Setting::KeyGeneratorHashDigestClass(d) => {
            format!(".key_generator_hash_digest_class({})", digest_rust(*d))
        }
        Setting::CookiesDigest(d) => format!(".cookies_digest({})", digest_rust(*d)),
        Setting::SignedCookieDigest(d) => format!(".signed_cookie_digest({})", digest_rust(*d)),
        Setting::EncryptedCookieSalt(s) => format!(".encrypted_cookie_salt({s:?})"),
        Setting::EncryptedSignedCookieSalt(s) => format!(".encrypted_signed_cookie_salt({s:?})"),
        Setting::AuthenticatedEncryptedCookieSalt(s) => {
            format!(".authenticated_encrypted_cookie_salt({s:?})")
        }
        Setting::SignedCookieSalt(s) => format!(".signed_cookie_salt({s:?})"),
        Setting::SignedJar => ".session_cookie(CookieKind::Signed)".to_owned(),
        _ => return None,
    })
}

/// The `railbridge cookie decode` flag of a setting.
fn decode_flag(setting: &Setting) -> Option<String> {
    Some(match setting {
        Setting::CookiesSerializer(s) => format!("--serializer {}", s.name()),
        Setting::UseAuthenticatedCookieEncryption(false) => "--cipher aes-256-cbc".to_owned(),
        Setting::UseCookiesWithMetadata(false) => "--no-metadata".to_owned(),
        Setting::KeyGeneratorHashDigestClass(d) => {
            format!("--kdf-digest {}", d.name().to_lowercase())
        }
        Setting::CookiesDigest(d) => format!("--cookies-digest {}", d.name().to_lowercase()),
        Setting::SignedCookieDigest(d) => {
            format!("--signed-cookie-digest {}", d.name().to_lowercase())
        }
        Setting::EncryptedCookieSalt(s) => format!("--encrypted-cookie-salt {}", shell_quote(s)),
        Setting::EncryptedSignedCookieSalt(s) => {
            format!("--encrypted-signed-cookie-salt {}", shell_quote(s))
        }
        Setting::AuthenticatedEncryptedCookieSalt(s) => {
            format!("--authenticated-encrypted-cookie-salt {}", shell_quote(s))
        }
        Setting::SignedCookieSalt(s) => format!("--signed-cookie-salt {}", shell_quote(s)),
        Setting::SignedJar => "--signed".to_owned(),
        _ => return None,
    })
}

fn advice(report: &Report, login: Option<&Login>) -> Option<Advice> {
    let finding = report.finding.as_ref()?;
    // The newest version whose defaults write exactly this (all of them read it as their own); the app's own
    // version, when it is another one of `rails_versions`, is the better choice, and the text says so.
    let version = *finding.written_by.last().or(finding.rails_versions.last())?;
    let settings = finding.settings(version);
    let mut env: Vec<(&'static str, String)> = Vec::new();
    let mut toml = String::from("[rails]\n");
    let mut unsupported = Vec::new();
    let name = report.cookie_name.clone();
    if finding.kind == CookieKind::Encrypted {
        if let Some(name) = &name {
            env.push(("SESSION_KEY", name.clone()));
            let _ = writeln!(toml, "session_key = {}", toml_string(name));
        }
    }
    env.push(("RAILS_VERSION", version.to_string()));
    let _ = writeln!(toml, "rails_version = {}", toml_string(version.as_str()));
    for setting in &settings {
        match (gateway_key(setting), setting) {
            (Some((var, key, value)), _) => {
                let _ = writeln!(toml, "{key} = {}", toml_string(&value));
                env.push((var, value));
            }
            // The gateway reads the signed jar itself for the logins that live there, and the note below says
            // what a secret_token-only app needs.
            (None, Setting::SignedJar | Setting::SecretTokenOnly) => {}
            (None, other) => unsupported.push(other.to_string()),
        }
    }
    match login {
        Some(Login::Devise { scope, .. }) if scope != "user" => {
            env.push(("DEVISE_SCOPE", scope.clone()));
            let _ = writeln!(toml, "scope = {}", toml_string(scope));
        }
        Some(Login::RailsAuthentication { cookie, .. }) => {
            env.push(("RAILS_AUTH", "rails-authentication".into()));
            let _ = writeln!(toml, "auth = \"rails-authentication\"");
            if cookie != "session_id" {
                env.push(("RAILS_AUTH_COOKIE", cookie.clone()));
                let _ = writeln!(toml, "auth_cookie = {}", toml_string(cookie));
            }
        }
        Some(Login::SessionKey { .. }) => {
            env.push(("RAILS_AUTH", "session-key".into()));
            let _ = writeln!(toml, "auth = \"session-key\"");
        }
        _ => {}
    }
    let mut profile = format!("Profile::rails_{}()", version.as_str().replace('.', "_"));
    for call in settings
        .iter()
        // `with_secret_token_only` puts the session in the signed jar itself.
        .filter(|s| !(finding.secret_token && matches!(s, Setting::SignedJar)))
        .filter_map(rust_call)
    {
        profile.push_str(&call);
    }
    if finding.secret_token {
        profile = format!("CookieCodec::with_secret_token_only({profile}, secret_token)");
    }
    // `cookie decode` has no secret_token option.
    let decode = (!finding.secret_token).then(|| {
        let mut line = format!("railbridge cookie decode --rails {version}");
        if let Some(name) = &name {
            let _ = write!(line, " --cookie-name {}", shell_quote(name));
        }
        for flag in settings.iter().filter_map(decode_flag) {
            let _ = write!(line, " {flag}");
        }
        line
    });
    Some(Advice { version, settings, env, toml, profile, decode, unsupported })
}

fn hints(report: &Report) -> Vec<String> {
    let mut hints = Vec::new();
    let env_of = |setting: &str| match setting {
        "encrypted_cookie_salt" => "SESSION_ENCRYPTED_COOKIE_SALT",
        "encrypted_signed_cookie_salt" => "SESSION_ENCRYPTED_SIGNED_COOKIE_SALT",
        "authenticated_encrypted_cookie_salt" => "SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT",
        _ => "SESSION_SIGNED_COOKIE_SALT",
    };
    match &report.diagnosis {
        Some(d @ (Diagnosis::NotVerified { .. } | Diagnosis::EncryptionSalt { .. })) => {
            for setting in d.salt_settings() {
                hints.push(format!(
                    "if the app sets config.action_dispatch.{setting}, give it as {} (or --{})",
                    env_of(setting),
                    setting.replace('_', "-")
                ));
            }
            if matches!(d, Diagnosis::NotVerified { layout: Layout::Signed, .. }) {
                hints.push(
                    "a Rails 3.2 – 5.2 app with only a secret_token signs with it: give it as SECRET_TOKEN".into(),
                );
            }
            hints.push(
                "SECRET_KEY_BASE must be the app's secret_key_base: `bin/rails runner 'puts \
                 Rails.application.secret_key_base'` prints it"
                    .into(),
            );
        }
        Some(Diagnosis::NoSecret { layout, .. }) => {
            hints.push("set SECRET_KEY_BASE to the app's secret_key_base to read it".into());
            if *layout == Layout::Signed {
                hints.push(
                    "(or SECRET_TOKEN, for a Rails 3.2 – 5.2 app without secret_key_base)".into(),
                );
            }
        }
        Some(Diagnosis::Purpose { purpose, .. }) => {
            if let Some(other) = purpose.strip_prefix("cookie.") {
                hints.push(format!(
                    "railbridge cookie inspect --cookie-name {}",
                    shell_quote(other)
                ));
            }
        }
        _ => {}
    }
    hints
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The settings that are Rails configuration (the jar is shown apart).
fn rails_settings(settings: &[Setting]) -> impl Iterator<Item = &Setting> {
    settings.iter().filter(|s| !matches!(s, Setting::SignedJar))
}

fn kdf_name(d: Digest) -> String {
    d.name().to_lowercase()
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Marshal => "marshal",
        _ => "message_pack",
    }
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Gcm => "gcm",
        Layout::Cbc => "cbc",
        _ => "signed",
    }
}

fn time_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A value's type and size, without its content.
fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Bool(_) => "Boolean".into(),
        Value::Integer(_) | Value::BigInteger(_) => "Integer".into(),
        Value::Float(_) => "Float".into(),
        Value::String(s) => format!("String, {} characters", s.chars().count()),
        Value::RubyString(r) => format!("String, {} bytes", r.bytes.len()),
        Value::Symbol(_) => "Symbol".into(),
        Value::Array(a) => format!("Array of {}", a.len()),
        Value::Hash(h) if h.len() == 1 => "Hash of 1 key".into(),
        Value::Hash(h) => format!("Hash of {} keys", h.len()),
        Value::Time(_) => "Time".into(),
        Value::Object(o) | Value::Struct(o) => format!("{} object", o.class),
        Value::UserClass { class, value } => format!("{class} ({})", describe(value)),
        Value::UserDefined { class, .. } | Value::UserMarshal { class, .. } => {
            format!("{class} object")
        }
        Value::Packed(p) => p.class().to_owned(),
        _ => "Ruby value".into(),
    }
}

fn key_text(k: &Value) -> String {
    k.as_str().map_or_else(|| k.to_tagged_json().to_string(), str::to_owned)
}

fn value_json(v: &Value) -> String {
    let mut out = String::new();
    rails_cookie::write_json_with_big_integers(&v.to_tagged_json(), &mut out);
    out
}

fn login_text(login: Option<&Login>) -> String {
    match login {
        Some(Login::Devise { scope, user_id, others }) => {
            let more = if others.is_empty() { String::new() } else { format!(" (also: {})", others.join(", ")) };
            format!("Devise/Warden, scope {scope}, user id {user_id}{more}")
        }
        Some(Login::RailsAuthentication { cookie, row }) => format!(
            "Rails 8 authentication: the signed cookie {cookie} holds the sessions row {row} (its user_id is in \
             the app's database)"
        ),
        Some(Login::SessionKey { key, user_id }) => format!("session[:{key}] = {user_id}"),
        None => "none found".into(),
    }
}

fn login_json(login: Option<&Login>) -> Json {
    match login {
        Some(Login::Devise { scope, user_id, .. }) => {
            json!({"source": "devise", "scope": scope, "user_id": user_id})
        }
        Some(Login::RailsAuthentication { cookie, row }) => {
            json!({"source": "rails-authentication", "cookie": cookie, "sessions_row": row})
        }
        Some(Login::SessionKey { key, user_id }) => {
            json!({"source": "session-key", "key": key, "user_id": user_id})
        }
        None => Json::Null,
    }
}

fn form_text(form: InputForm) -> &'static str {
    match form {
        InputForm::Pair => "name=value",
        InputForm::CookieHeader => "Cookie header",
        InputForm::SetCookieHeader => "Set-Cookie header",
        _ => "value",
    }
}

fn shape_text(report: &Report) -> String {
    let shape = &report.shape;
    let part = |i: usize| match shape.parts.get(i).map(|p| &p.content) {
        Some(PartContent::Base64 { bytes }) => format!("{bytes} bytes"),
        Some(PartContent::Hex { .. }) => "hex".into(),
        Some(PartContent::Invalid { .. }) => "not base64".into(),
        _ => "missing".into(),
    };
    let hmac = shape.hmac.map_or_else(String::new, |d| format!(", HMAC-{d} digest"));
    match (shape.layout, shape.is_verifiable()) {
        (Some(Layout::Gcm), true) => format!(
            "encrypted, AES-256-GCM (ciphertext--iv--tag): ciphertext {}, IV {}, tag {}",
            part(0),
            part(1),
            part(2)
        ),
        (Some(Layout::Cbc), true) => {
            format!("encrypted, AES-256-CBC + HMAC (data--digest): data {}{hmac}", part(0))
        }
        (Some(_), true) => format!("signed (data--digest): message {}{hmac}", part(0)),
        (Some(Layout::Gcm), false) => "resembles an encrypted AES-256-GCM cookie, damaged".into(),
        (Some(Layout::Cbc), false) => "resembles an encrypted AES-256-CBC cookie, damaged".into(),
        (Some(_), false) => "resembles a signed cookie, damaged".into(),
        (None, _) => "not one of Rails' layouts".into(),
    }
}

fn key_text_of(f: &Finding) -> String {
    if f.secret_token {
        return "the raw secret_token (no key derivation)".into();
    }
    let kdf = f.kdf_digest.map_or_else(String::new, |d| {
        format!("PBKDF2-HMAC-{d} of secret_key_base (1000 iterations)")
    });
    let salt = |custom: &Option<String>, setting: &str| match custom {
        Some(s) => format!("{setting} {s:?} (the configured one)"),
        None => format!("{setting} (Rails' default)"),
    };
    let s = &f.salts;
    match (f.kind, f.cipher) {
        (CookieKind::Signed, _) => {
            format!("{kdf}, {}", salt(&s.signed_cookie_salt, "signed_cookie_salt"))
        }
        (_, Some(Cipher::Aes256Cbc)) => format!(
            "{kdf}, {}, {}",
            salt(&s.encrypted_cookie_salt, "encrypted_cookie_salt"),
            salt(&s.encrypted_signed_cookie_salt, "encrypted_signed_cookie_salt")
        ),
        _ => format!(
            "{kdf}, {}",
            salt(&s.authenticated_encrypted_cookie_salt, "authenticated_encrypted_cookie_salt")
        ),
    }
}

fn envelope_text(f: &Finding) -> String {
    let exp = f
        .expires_at
        .map_or_else(|| "no expiry".to_owned(), |t| format!("expires {}", time_text(t)));
    let layout = if f.envelope_not_canonical {
        " (not in Rails' exact layout: 7.1+ would not see it)"
    } else {
        ""
    };
    match f.envelope {
        Envelope::Purpose => {
            format!("purpose {:?}, {exp}{layout}", f.purpose.as_deref().unwrap_or_default())
        }
        Envelope::Expiry => format!("expiry only (no purpose), {exp}{layout}"),
        _ => "none (a bare payload)".into(),
    }
}

/// The switches of the writer's defaults (the settings that are not the app's own choice of serializer, digests
/// or salts).
fn writer_switches(f: &Finding) -> Vec<String> {
    let Some(&v) = f.written_by.first() else { return Vec::new() };
    f.writer_settings(v)
        .into_iter()
        .filter(|s| {
            matches!(
                s,
                Setting::UseAuthenticatedCookieEncryption(_)
                    | Setting::UseCookiesWithMetadata(_)
                    | Setting::KeyGeneratorHashDigestClass(_)
            )
        })
        .map(|s| s.to_string())
        .collect()
}

pub(super) fn to_text(inspection: &Inspection, show_values: bool) -> String {
    let r = &inspection.report;
    let mut out = String::new();
    let name = r.cookie_name.as_deref().map_or_else(|| "(name unknown)".to_owned(), str::to_owned);
    let encoding = if r.shape.percent_encoded { ", percent-encoded" } else { "" };
    let _ = writeln!(
        out,
        "cookie {name}: {} bytes as given ({}{encoding}), {} after decoding",
        r.shape.raw_len,
        form_text(inspection.form),
        r.shape.len
    );
    let _ = writeln!(out, "shape: {}", shape_text(r));
    let tried = format!(
        "{}, {}",
        plural(r.candidates, "configuration tried", "configurations tried"),
        plural(r.key_derivations, "key derived", "keys derived")
    );
    match &r.diagnosis {
        None => {
            let _ = writeln!(out, "readable: yes ({tried})");
        }
        Some(d) => {
            let _ = writeln!(out, "readable: no ({tried})\ndiagnosis: {d}");
        }
    }
    if let Some(f) = &r.finding {
        let _ = writeln!(out, "\nwritten with");
        let jar = if f.kind == CookieKind::Signed {
            "signed (cookies.signed)"
        } else {
            "encrypted (cookies.encrypted)"
        };
        let _ = writeln!(out, "  jar              {jar}");
        if let Some(c) = f.cipher {
            let _ = writeln!(out, "  cipher           {c}");
        }
        if let Some(h) = f.hmac {
            let _ = writeln!(out, "  HMAC             {h}");
        }
        let _ = writeln!(out, "  key              {}", key_text_of(f));
        let _ = writeln!(out, "  envelope         {}", envelope_text(f));
        let _ = writeln!(out, "  serializer       {}", f.format.map_or("unknown", format_name));
        let switches = writer_switches(f);
        let with = if switches.is_empty() {
            String::new()
        } else {
            format!(" with {}", switches.join(", "))
        };
        let _ = writeln!(
            out,
            "  Rails versions   {} (their defaults read it as their own); the defaults of {}{with} write exactly this",
            range(&f.rails_versions),
            range(&f.written_by)
        );
    }
    if let Some(value) = &r.value {
        let shown = if show_values { "" } else { "; values hidden, --show-values shows them" };
        match value.as_hash() {
            Some(hash) => {
                let _ = writeln!(out, "\nsession: {} keys{shown}", hash.len());
                let width =
                    hash.entries.iter().map(|(k, _)| key_text(k).len()).max().unwrap_or(0).min(32);
                for (k, v) in &hash.entries {
                    let shown = if show_values { value_json(v) } else { describe(v) };
                    let _ = writeln!(out, "  {:<width$}  {shown}", key_text(k));
                }
            }
            None => {
                let shown = if show_values { value_json(value) } else { describe(value) };
                let _ = writeln!(out, "\nvalue: {shown}");
            }
        }
        let _ = writeln!(out, "login: {}", login_text(inspection.login.as_ref()));
    }
    if let (Some(a), Some(f)) = (&inspection.advice, &r.finding) {
        let others = if f.rails_versions.len() > 1 {
            format!("; {} all read it: give the app's own", range(&f.rails_versions))
        } else {
            String::new()
        };
        let _ = writeln!(out, "\nconfigure (for Rails {}{others})", a.version);
        if rails_settings(&a.settings).next().is_some() {
            let _ = writeln!(out, "  Rails settings beyond {}'s defaults", a.version);
            for s in rails_settings(&a.settings) {
                let _ = writeln!(out, "    {s}");
            }
        }
        let _ = writeln!(out, "  environment");
        for (k, v) in &a.env {
            let _ = writeln!(out, "    {k}={}", shell_quote(v));
        }
        let _ = writeln!(out, "  railbridge.toml");
        for line in a.toml.lines() {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(out, "  Rust\n    {}", a.profile);
        if let Some(d) = &a.decode {
            let _ = writeln!(out, "  CLI\n    {d}");
        }
        if !a.unsupported.is_empty() {
            let _ = writeln!(
                out,
                "  the gateway's configuration has no setting for: {} (the Rust profile and `cookie decode` do)",
                a.unsupported.join("; ")
            );
        }
        if f.secret_token {
            let _ = writeln!(
                out,
                "  the gateway needs the app's secret_key_base: an app with only a secret_token (Rails 3.2 – 5.2) \
                 must add one, and Rails then reads these cookies through its secret_token upgrade path"
            );
        }
    }
    for h in &inspection.hints {
        let _ = writeln!(out, "hint: {h}");
    }
    out.trim_end().to_owned()
}

pub(super) fn to_json(inspection: &Inspection, show_values: bool) -> Json {
    let r = &inspection.report;
    let f = r.finding.as_ref();
    let layout = r.shape.layout;
    let versions = |v: &[RailsVersion]| v.iter().map(|v| v.as_str()).collect::<Vec<_>>();
    let parts: Vec<Json> = r
        .shape
        .parts
        .iter()
        .map(|p| match &p.content {
            PartContent::Base64 { bytes } => json!({"length": p.len, "base64_bytes": bytes}),
            PartContent::Hex { digest } => {
                json!({"length": p.len, "hex_digest": digest.map(kdf_name)})
            }
            PartContent::Invalid { reason } => json!({"length": p.len, "invalid": reason}),
            _ => json!({"length": p.len}),
        })
        .collect();
    let session_keys: Option<Vec<String>> = r
        .value
        .as_ref()
        .and_then(Value::as_hash)
        .map(|h| h.entries.iter().map(|(k, _)| key_text(k)).collect());
    let advice = inspection.advice.as_ref();
    json!({
        "readable": r.is_readable(),
        "cookie_name": r.cookie_name,
        "kind": f.map(|f| f.kind).or(layout.map(Layout::kind)).map(|k| match k {
            CookieKind::Signed => "signed",
            _ => "encrypted",
        }),
        "cipher": f.map_or(layout.and_then(Layout::cipher), |f| f.cipher).map(Cipher::name),
        "kdf_digest": f.and_then(|f| f.kdf_digest).map(kdf_name),
        "hmac_digest": f.and_then(|f| f.hmac).or(r.shape.hmac).map(kdf_name),
        "secret_token": f.is_some_and(|f| f.secret_token),
        "serializer": f.and_then(|f| f.format).map(format_name),
        "envelope": f.map(|f| f.envelope.as_str()),
        "purpose": f.and_then(|f| f.purpose.clone()),
        "expires_at": f.and_then(|f| f.expires_at).map(time_text),
        "rails_versions": f.map(|f| versions(&f.rails_versions)).unwrap_or_default(),
        "written_by": f.map(|f| versions(&f.written_by)).unwrap_or_default(),
        "settings": advice.map(|a| rails_settings(&a.settings).map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
        "identity": login_json(inspection.login.as_ref()),
        "session_keys": session_keys,
        "session": if show_values { r.value.as_ref().map(Value::to_tagged_json) } else { None },
        "env": advice.map(|a| a.env.iter().map(|(k, v)| ((*k).to_owned(), Json::String(v.clone()))).collect::<serde_json::Map<_, _>>()),
        "toml": advice.map(|a| a.toml.clone()),
        "profile": advice.map(|a| a.profile.clone()),
        "decode": advice.and_then(|a| a.decode.clone()),
        "unsupported": advice.map(|a| a.unsupported.clone()).unwrap_or_default(),
        "shape": {
            "layout": layout.map(layout_name),
            "length": r.shape.len,
            "raw_length": r.shape.raw_len,
            "percent_encoded": r.shape.percent_encoded,
            "parts": parts,
        },
        "diagnosis": r.diagnosis.as_ref().map(ToString::to_string),
        "diagnosis_kind": r.diagnosis.as_ref().map(Diagnosis::kind),
        "hints": inspection.hints,
        "candidates": r.candidates,
        "key_derivations": r.key_derivations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_quoting() {
        use RailsVersion as V;
        assert_eq!(range(&[V::V6_0, V::V6_1]), "6.0 – 6.1");
        assert_eq!(range(&[V::V5_2]), "5.2");
        assert_eq!(range(&[V::V4_2, V::V5_0, V::V6_1]), "4.2 – 5.0, 6.1");
        assert_eq!(range(&[]), "");
        assert_eq!(shell_quote("_app_session"), "_app_session");
        assert_eq!(shell_quote("my auth salt"), "'my auth salt'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(toml_string("a \"b\""), "'a \"b\"'");
    }

    #[test]
    fn values_are_described_without_their_content() {
        assert_eq!(describe(&Value::String("secret".into())), "String, 6 characters");
        assert_eq!(describe(&Value::Array(vec![Value::Nil])), "Array of 1");
        assert!(!describe(&Value::String("secret".into())).contains("secret"));
    }
}
