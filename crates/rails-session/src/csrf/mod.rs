//! `ActionController::RequestForgeryProtection`: the session's `_csrf_token`, masked tokens for forms and the
//! `X-CSRF-Token` header, and their verification — byte-compatible with Rails, so a token either side hands out
//! passes the other's check.
//!
//! * stored token: 32 random bytes, base64 in the session (`_csrf_token`), in the format of the Rails version;
//! * masked token: `pad ‖ (pad XOR target)`, `target` = `HMAC-SHA256(raw, "!real_csrf_token")` (the "global"
//!   token, 5.2.4.3+) or the raw token (older), URL-safe base64 without padding (6.1+) or strict base64;
//! * accepted: the raw token itself, a masked raw, global or per-form (`HMAC-SHA256(raw, "path#method")`) token,
//!   in either base64 alphabet.

mod layer;
mod service;

pub use layer::CsrfLayer;
pub use service::CsrfService;

use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use http::HeaderMap;
use rails_cookie::{RailsVersion, Value};
use ring::hmac;
use subtle::ConstantTimeEq as _;

use crate::session::Session;

/// The session key of the stored token.
pub(crate) const SESSION_KEY: &str = "_csrf_token";
/// The form field Rails reads (`request_forgery_protection_token`).
pub(crate) const FORM_FIELD: &str = "authenticity_token";
/// The header Rails reads.
pub(crate) const HEADER: &str = "x-csrf-token";

const TOKEN_LENGTH: usize = 32;
const GLOBAL_CSRF_TOKEN_IDENTIFIER: &[u8] = b"!real_csrf_token";

/// How `session["_csrf_token"]` is written when the Rust side has to create it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredTokenFormat {
    /// `SecureRandom.base64(32)`: 44 characters, standard alphabet (Rails 4.2 – 6.0, and 6.1 without
    /// `urlsafe_csrf_tokens`).
    Base64,
    /// `SecureRandom.urlsafe_base64(32, padding: false)` as Rails 6.1 evaluates it: 44 URL-safe characters, still
    /// `=`-padded.
    UrlSafePadded,
    /// `SecureRandom.urlsafe_base64(32)` in 7.0+: 43 URL-safe characters, no padding.
    UrlSafe,
}

/// Rails' `forgery_protection_origin_check`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OriginCheck {
    /// No Origin check (Rails before `load_defaults 5.0`; the default here, since an API is usually called
    /// cross-origin by its single-page app).
    #[default]
    Off,
    /// An `Origin` header, when present, must be the request's own origin (`request.base_url`) or one of these
    /// (`https://www.app.test`). `Origin: null` is refused.
    On {
        /// Further trusted origins, exactly as browsers send them.
        trusted: Vec<String>,
    },
}

/// CSRF settings, by default those of a Rails version.
///
/// ```
/// use rails_session::{rails_cookie::RailsVersion, CsrfConfig, OriginCheck, StoredTokenFormat};
/// let csrf = CsrfConfig::for_version(RailsVersion::V6_1)
///     .origin_check(OriginCheck::On { trusted: vec!["https://www.app.test".into()] });
/// assert_eq!(csrf.stored_format(), StoredTokenFormat::UrlSafePadded);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct CsrfConfig {
    stored: StoredTokenFormat,
    urlsafe: bool,
    global: bool,
    per_form: bool,
    origin_check: OriginCheck,
    body_limit: usize,
}

impl CsrfConfig {
    /// The defaults of a new app of that version (`load_defaults`).
    pub fn for_version(version: RailsVersion) -> Self {
        let stored = match version {
            v if v >= RailsVersion::V7_0 => StoredTokenFormat::UrlSafe,
            RailsVersion::V6_1 => StoredTokenFormat::UrlSafePadded,
            _ => StoredTokenFormat::Base64,
        };
        CsrfConfig {
            stored,
            urlsafe: version >= RailsVersion::V6_1,
            global: version >= RailsVersion::V5_2,
            per_form: version >= RailsVersion::V5_0,
            origin_check: OriginCheck::Off,
            body_limit: 1 << 20,
        }
    }

    /// `urlsafe_csrf_tokens`: masked tokens in URL-safe base64 without padding (86 characters) instead of strict
    /// base64 (88), and the matching stored format for the version.
    pub fn urlsafe_tokens(mut self, on: bool) -> Self {
        self.urlsafe = on;
        self.stored = match (on, self.stored) {
            (false, _) => StoredTokenFormat::Base64,
            (true, StoredTokenFormat::Base64) => StoredTokenFormat::UrlSafePadded,
            (true, keep) => keep,
        };
        self
    }

    /// The format of a stored token the Rust side creates.
    pub fn stored_token_format(mut self, format: StoredTokenFormat) -> Self {
        self.stored = format;
        self
    }

    /// Whether handed-out tokens mask the global HMAC token (5.2.4.3+, 6.0.3.1+) rather than the raw one.
    pub fn global_token(mut self, on: bool) -> Self {
        self.global = on;
        self
    }

    /// `per_form_csrf_tokens`: accept tokens made for this request's path and method.
    pub fn per_form_tokens(mut self, on: bool) -> Self {
        self.per_form = on;
        self
    }

    /// `forgery_protection_origin_check`.
    pub fn origin_check(mut self, check: OriginCheck) -> Self {
        self.origin_check = check;
        self
    }

    /// The largest form or JSON body read to find `authenticity_token` (default 1 MiB; larger bodies get 413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The stored-token format.
    #[must_use]
    pub fn stored_format(&self) -> StoredTokenFormat {
        self.stored
    }

    pub(crate) fn limit(&self) -> usize {
        self.body_limit
    }
}

/// `Base64.urlsafe_decode64`: either alphabet, padding optional. Strict otherwise (no whitespace, canonical bits).
fn decode(token: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let standard: String = token
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(standard).ok()
}

fn raw_token(stored: &str) -> Option<[u8; TOKEN_LENGTH]> {
    decode(stored)?.try_into().ok()
}

fn hmac(raw: &[u8; TOKEN_LENGTH], message: &[u8]) -> [u8; TOKEN_LENGTH] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, raw);
    let mut out = [0u8; TOKEN_LENGTH];
    out.copy_from_slice(hmac::sign(&key, message).as_ref());
    out
}

fn global_token(raw: &[u8; TOKEN_LENGTH]) -> [u8; TOKEN_LENGTH] {
    hmac(raw, GLOBAL_CSRF_TOKEN_IDENTIFIER)
}

/// `per_form_csrf_token(session, action_path, method)`.
fn per_form_token(raw: &[u8; TOKEN_LENGTH], action_path: &str, method: &str) -> [u8; TOKEN_LENGTH] {
    hmac(raw, format!("{action_path}#{}", method.to_ascii_lowercase()).as_bytes())
}

fn generate_stored(format: StoredTokenFormat) -> String {
    let raw: [u8; TOKEN_LENGTH] = crate::random::bytes();
    match format {
        StoredTokenFormat::Base64 => STANDARD.encode(raw),
        StoredTokenFormat::UrlSafePadded => base64::engine::general_purpose::URL_SAFE.encode(raw),
        StoredTokenFormat::UrlSafe => URL_SAFE_NO_PAD.encode(raw),
    }
}

/// `mask_token`: a fresh one-time pad, then `pad ‖ (pad XOR target)`.
fn mask(config: &CsrfConfig, target: &[u8; TOKEN_LENGTH]) -> String {
    let pad: [u8; TOKEN_LENGTH] = crate::random::bytes();
    let mut masked = [0u8; 2 * TOKEN_LENGTH];
    masked[..TOKEN_LENGTH].copy_from_slice(&pad);
    for (i, (p, t)) in pad.iter().zip(target).enumerate() {
        masked[TOKEN_LENGTH + i] = p ^ t;
    }
    if config.urlsafe {
        URL_SAFE_NO_PAD.encode(masked)
    } else {
        STANDARD.encode(masked)
    }
}

/// `valid_authenticity_token?` for one candidate token.
fn token_valid(
    config: &CsrfConfig,
    raw: &[u8; TOKEN_LENGTH],
    token: &str,
    path: &str,
    method: &str,
) -> bool {
    if token.is_empty() {
        return false;
    }
    let Some(bytes) = decode(token) else { return false };
    match bytes.len() {
        TOKEN_LENGTH => bool::from(bytes.as_slice().ct_eq(raw)),
        n if n == 2 * TOKEN_LENGTH => {
            let mut unmasked = [0u8; TOKEN_LENGTH];
            for (i, u) in unmasked.iter_mut().enumerate() {
                *u = bytes[i] ^ bytes[TOKEN_LENGTH + i];
            }
            let global = bool::from(unmasked.ct_eq(&global_token(raw)));
            let plain = bool::from(unmasked.ct_eq(raw));
            let per_form = config.per_form && {
                let path = path.strip_suffix('/').unwrap_or(path);
                bool::from(unmasked.ct_eq(&per_form_token(raw, path, method)))
            };
            global | plain | per_form
        }
        _ => false,
    }
}

/// What the Origin check needs from a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestOrigin<'a> {
    /// The `Origin` header: `None` when absent, `Some(None)` when not valid UTF-8.
    pub(crate) origin: Option<Option<&'a str>>,
    /// `request.base_url`: `scheme://host[:port]`.
    pub(crate) base_url: Option<&'a str>,
}

/// `valid_request_origin?`.
fn origin_valid(config: &CsrfConfig, request: RequestOrigin<'_>) -> bool {
    let OriginCheck::On { trusted } = &config.origin_check else { return true };
    let Some(origin) = request.origin else { return true };
    let Some(origin) = origin else { return false };
    if origin == "null" {
        return false;
    }
    trusted.iter().any(|t| t == origin) || request.base_url == Some(origin)
}

/// `request.base_url` from `X-Forwarded-Proto` (or the URI's scheme, or `http`) and `Host`.
pub(crate) fn base_url(headers: &HeaderMap, scheme: Option<&str>) -> Option<String> {
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .or(scheme)
        .unwrap_or("http");
    let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok())?;
    Some(format!("{scheme}://{host}"))
}

/// Whether the method is exempt (`GET`, `HEAD`; `OPTIONS` too, for CORS preflights).
pub(crate) fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// `verified_request?` for a request whose candidate tokens (form field, then header) are given.
pub(crate) async fn verify(
    session: &Session,
    method: &str,
    path: &str,
    origin: RequestOrigin<'_>,
    tokens: &[&str],
) -> bool {
    let config = &session.config().csrf;
    if is_safe(method) {
        return true;
    }
    if !origin_valid(config, origin) {
        tracing::warn!("CSRF: the Origin header does not match the request's origin");
        return false;
    }
    let Some(raw) =
        session.get_value(SESSION_KEY).await.as_ref().and_then(Value::as_str).and_then(raw_token)
    else {
        tracing::warn!("CSRF: the session has no usable _csrf_token");
        return false;
    };
    let ok = tokens.iter().any(|t| token_valid(config, &raw, t, path, method));
    if !ok {
        tracing::warn!("CSRF: can't verify the authenticity token");
    }
    ok
}

/// `authenticity_token` from a form or JSON body.
pub(crate) fn body_token(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let media = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    if media == "application/x-www-form-urlencoded" {
        form_urlencoded::parse(body).find(|(k, _)| k == FORM_FIELD).map(|(_, v)| v.into_owned())
    } else if media == "application/json" || media.ends_with("+json") {
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        json.get(FORM_FIELD)?.as_str().map(str::to_owned)
    } else {
        None
    }
}

/// Whether the body may carry the token (so the layer must read it).
pub(crate) fn body_may_carry_token(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/x-www-form-urlencoded"
                || m == "application/json"
                || m.ends_with("+json")
        })
}

/// A masked CSRF token (`form_authenticity_token`) for the `X-CSRF-Token` header or an `authenticity_token` field
/// — an extractor in axum and actix-web. Creates the session's token, in the Rails version's format, if it has
/// none; never replaces one.
///
/// ```
/// use axum::{routing::get, Json, Router};
/// use rails_session::CsrfToken;
/// async fn csrf(CsrfToken(token): CsrfToken) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "token": token }))
/// }
/// let app: Router = Router::new().route("/api/csrf", get(csrf));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CsrfToken(pub String);

impl Session {
    /// The session's raw CSRF token, creating it (in the configured Rails format) if the session has none. A
    /// token Rails stored is never replaced.
    async fn real_csrf_token(&self) -> [u8; TOKEN_LENGTH] {
        let stored_format = self.config().csrf.stored;
        self.update(|data| {
            if let Some(raw) = data.get(SESSION_KEY).and_then(Value::as_str).and_then(raw_token) {
                return raw;
            }
            if data.get(SESSION_KEY).is_some_and(|v| !v.is_nil()) {
                tracing::warn!("the session's _csrf_token is unreadable; replacing it");
            }
            let stored = generate_stored(stored_format);
            // `stored` decodes: we just encoded 32 bytes.
            let raw = raw_token(&stored).unwrap_or([0; TOKEN_LENGTH]);
            data.insert(SESSION_KEY, Value::String(stored));
            raw
        })
        .await
    }

    /// `form_authenticity_token`: a freshly masked token for forms, `<meta name="csrf-token">` and the
    /// `X-CSRF-Token` header. Creates the session's token if there is none (the session is then written).
    pub async fn csrf_token(&self) -> String {
        let raw = self.real_csrf_token().await;
        let config = &self.config().csrf;
        let target = if config.global { global_token(&raw) } else { raw };
        mask(config, &target)
    }

    /// `form_authenticity_token(form_options: {action:, method:})`: a per-form token, valid only for a request to
    /// that path with that method.
    pub async fn csrf_token_for(&self, action_path: &str, method: &str) -> String {
        let raw = self.real_csrf_token().await;
        let path = action_path.split(['?', '#']).next().unwrap_or(action_path);
        let path = path.strip_suffix('/').unwrap_or(path);
        mask(&self.config().csrf, &per_form_token(&raw, path, method))
    }

    /// `valid_authenticity_token?` for a `method` request to `path` carrying `token` (from `X-CSRF-Token` or a
    /// form): what Rails' `protect_from_forgery` would say, Origin aside (check it yourself; [`CsrfLayer`] does).
    /// A session without a token accepts none.
    pub async fn valid_authenticity_token(&self, method: &str, path: &str, token: &str) -> bool {
        let config = &self.config().csrf;
        let Some(raw) =
            self.get_value(SESSION_KEY).await.as_ref().and_then(Value::as_str).and_then(raw_token)
        else {
            return false;
        };
        token_valid(config, &raw, token, path, method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Spec vector T12 (Rails 6.1.7.10 app with stubbed randomness).
    const STORED: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    const MASKED_GLOBAL: &str =
        "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj98WUFTpnD0zkC1jlBx47kKpTGoumE5jWBqbxoXs9xBRw";
    const PER_FORM: &str =
        "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj-g1S9RTGBq9yCPr7d6ZrgNs-BiHhuIqGMAT3kpv2tL6Q";

    fn cfg() -> CsrfConfig {
        CsrfConfig::for_version(RailsVersion::V6_1)
    }

    #[test]
    fn t12_tokens_verify() {
        let raw = raw_token(STORED).unwrap();
        assert_eq!(raw[0], 0x20);
        let post = "POST";
        assert!(token_valid(&cfg(), &raw, MASKED_GLOBAL, "/anything", post));
        assert!(token_valid(&cfg(), &raw, PER_FORM, "/posts", post));
        assert!(token_valid(&cfg(), &raw, PER_FORM, "/posts/", post));
        assert!(!token_valid(&cfg(), &raw, PER_FORM, "/other", post));
        assert!(!token_valid(&cfg(), &raw, PER_FORM, "/posts", "PATCH"));
        assert!(!token_valid(&cfg().per_form_tokens(false), &raw, PER_FORM, "/posts", post));
        // The raw token, unmasked, and the strict-base64 encoding of the masked one.
        assert!(token_valid(&cfg(), &raw, &URL_SAFE_NO_PAD.encode(raw), "/", post));
        let strict = STANDARD.encode(URL_SAFE_NO_PAD.decode(MASKED_GLOBAL).unwrap());
        assert!(token_valid(&cfg(), &raw, &strict, "/", post));
        assert!(!token_valid(&cfg(), &raw, &"x".repeat(86), "/", post));
        assert!(!token_valid(&cfg(), &raw, "", "/", post));
    }

    #[test]
    fn t12_global_token_is_rails() {
        let raw = raw_token(STORED).unwrap();
        let expected = "5c7863708255d2e9689ca47b5dce972595009a89550cbb575256202c8fe17f78";
        let hex: String = global_token(&raw).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn masked_tokens_have_the_versions_shape_and_verify() {
        let raw = raw_token(STORED).unwrap();
        for (version, len) in
            [(RailsVersion::V6_1, 86), (RailsVersion::V7_0, 86), (RailsVersion::V6_0, 88)]
        {
            let c = CsrfConfig::for_version(version);
            let t = mask(&c, &if c.global { global_token(&raw) } else { raw });
            assert_eq!(t.len(), len, "{version}");
            assert!(token_valid(&c, &raw, &t, "/", "POST"));
        }
    }

    #[test]
    fn stored_formats() {
        assert_eq!(generate_stored(StoredTokenFormat::Base64).len(), 44);
        let padded = generate_stored(StoredTokenFormat::UrlSafePadded);
        assert!(padded.len() == 44 && padded.ends_with('='));
        let bare = generate_stored(StoredTokenFormat::UrlSafe);
        assert!(bare.len() == 43 && !bare.contains(['+', '/', '=']));
        for s in [padded, bare] {
            assert!(raw_token(&s).is_some());
        }
    }

    #[test]
    fn origin_check() {
        let on =
            cfg().origin_check(OriginCheck::On { trusted: vec!["https://www.app.test".into()] });
        let req = |origin: Option<&'static str>| RequestOrigin {
            origin: origin.map(Some),
            base_url: Some("http://api.app.test"),
        };
        assert!(origin_valid(&on, req(None)), "no Origin header");
        assert!(origin_valid(&on, req(Some("https://www.app.test"))));
        assert!(origin_valid(&on, req(Some("http://api.app.test"))));
        assert!(!origin_valid(&on, req(Some("https://evil.test"))));
        assert!(origin_valid(&cfg(), req(Some("https://evil.test"))), "off");
        assert!(!origin_valid(&on, req(Some("null"))));
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, "api.app.test:8080".parse().unwrap());
        assert_eq!(base_url(&h, None).as_deref(), Some("http://api.app.test:8080"));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&h, Some("http")).as_deref(), Some("https://api.app.test:8080"));
    }

    #[test]
    fn body_tokens() {
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        assert_eq!(body_token(form, b"a=1&authenticity_token=ab%2Bc%3D").as_deref(), Some("ab+c="));
        assert_eq!(
            body_token(Some("application/json"), br#"{"authenticity_token":"t"}"#).as_deref(),
            Some("t")
        );
        assert_eq!(body_token(Some("text/plain"), b"authenticity_token=t"), None);
    }
}
