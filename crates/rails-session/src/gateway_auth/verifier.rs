//! [`AssertionVerifier`]: the gateway's keys (a JWKS URL, file or string), token parsing, signature and claim
//! checks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use zeroize::Zeroizing;

use super::error::AssertionError;
use super::jwe::{self, JweError, JweKey};
use super::jwk::{Alg, KeySet, VerifyingKey};
use super::user::GatewayUser;
use crate::error::ConfigError;

/// The largest JWKS document read, from a URL or a file.
const MAX_JWKS_SIZE: usize = 256 * 1024;
/// How often a JWKS file's modification time is looked at.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of an [`AssertionVerifier`]: where the gateway's keys are, which issuer and audiences to accept.
///
/// ```
/// use std::time::Duration;
/// use rails_session::gateway_auth::AssertionVerifier;
///
/// let verifier = AssertionVerifier::builder()
///     .jwks_url("http://railbridge.internal:8080/.well-known/jwks.json")
///     .audience("billing") // the gateway's route name, or its configured audience
///     .leeway(Duration::from_secs(10))
///     .build()?; // nothing is fetched yet: the first `verify` (or `refresh`) does
/// # let _ = verifier;
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct AssertionVerifierBuilder {
    source: Option<SourceSpec>,
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
    max_token_size: usize,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    http_timeout: Duration,
    decryption_keys: Vec<JweKey>,
}

#[derive(Debug)]
enum SourceSpec {
    Url(String),
    File(PathBuf),
    Json(String),
}

impl AssertionVerifierBuilder {
    /// Keys from the gateway's JWKS endpoint (`http://…/.well-known/jwks.json`; `https://` needs reqwest's TLS,
    /// which feature `user-api-rustls` turns on). Fetched on first use, again when a token names an unknown `kid`
    /// (at most once per [`min_refresh_interval`](Self::min_refresh_interval)), and in the background once the
    /// keys are older than [`max_key_age`](Self::max_key_age).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.source = Some(SourceSpec::Url(url.into()));
        self
    }

    /// Keys from a local JWKS file, read at [`build`](Self::build) and read again when its modification time
    /// or size changes (looked at most once per second, on use).
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Some(SourceSpec::File(path.into()));
        self
    }

    /// Keys from a JWKS document (`{"keys": [...]}`), fixed for the verifier's life.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.source = Some(SourceSpec::Json(json.into()));
        self
    }

    /// The required `iss` (default `railbridge`, the gateway's default).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Accepts assertions whose `aud` is (or contains) `audience`. Call it once per accepted audience; at least
    /// one is required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts each of `audiences` (added to those already accepted).
    pub fn audiences<I: IntoIterator<Item = A>, A: Into<String>>(mut self, audiences: I) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest token accepted, in bytes (default 8 KiB); longer ones are refused before any parsing.
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// The least time between two fetches caused by unknown `kid`s (default 10 s), and between a failed fetch
    /// and the next: a client spraying made-up `kid`s costs the gateway at most one request per interval.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Keys fetched from a URL older than this (default 5 min) are fetched again in the background, on use,
    /// while the old ones keep serving.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// The timeout of one JWKS request, connection included (default 2 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// A key that decrypts encrypted assertions ([`jwe`](super::jwe)) with this `kid`. Add several to rotate.
    /// Signed assertions that are not encrypted are accepted as well.
    pub fn decryption_key(mut self, kid: impl Into<String>, key: &[u8; 32]) -> Self {
        self.decryption_keys.push(JweKey::new(kid, key));
        self
    }

    /// The verifier. Reads a [`jwks_file`](Self::jwks_file) or parses a [`jwks_json`](Self::jwks_json) now; a
    /// [`jwks_url`](Self::jwks_url) is fetched on first use.
    pub fn build(self) -> Result<AssertionVerifier, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::invalid("issuer", "must not be empty"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                "audience",
                "name at least one accepted audience: the gateway route's name or its configured audience",
            ));
        }
        if self.max_token_size == 0 {
            return Err(ConfigError::invalid("max_token_size", "must be positive"));
        }
        for (i, key) in self.decryption_keys.iter().enumerate() {
            if self.decryption_keys[..i].iter().any(|k| k.kid() == key.kid()) {
                return Err(ConfigError::invalid(
                    "decryption_key",
                    format!("two keys have the kid {:?}", key.kid()),
                ));
            }
        }
        let spec = self.source.ok_or_else(|| {
            ConfigError::invalid("jwks", "no key source: call jwks_url, jwks_file or jwks_json")
        })?;
        let (keys, source) = match spec {
            SourceSpec::Json(json) => {
                let keys = KeySet::from_json(json.as_bytes())
                    .map_err(|e| ConfigError::invalid("jwks_json", e))?;
                (keys, Source::Static)
            }
            SourceSpec::File(path) => {
                let (keys, stamp) = read_file(&path).map_err(|e| {
                    ConfigError::invalid("jwks_file", format!("{}: {e}", path.display()))
                })?;
                let watch = FileWatch { checked: Instant::now(), stamp: Some(stamp) };
                (keys, Source::File(FileSource { path, watch: Mutex::new(watch) }))
            }
            SourceSpec::Url(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        "jwks_url",
                        "must be an http:// or https:// URL",
                    ));
                }
                let client = reqwest::Client::builder()
                    .connect_timeout(self.http_timeout.min(Duration::from_secs(1)))
                    .timeout(self.http_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| ConfigError::invalid("jwks_url", e.to_string()))?;
                let source = UrlSource {
                    redacted: crate::store::redact_url(&url),
                    url,
                    client,
                    min_refresh_interval: self.min_refresh_interval,
                    max_key_age: self.max_key_age,
                    started: Instant::now(),
                    stale_at_ms: AtomicU64::new(u64::MAX),
                    refreshing: AtomicBool::new(false),
                    fetch_lock: tokio::sync::Mutex::new(()),
                    state: Mutex::new(FetchState::default()),
                };
                (KeySet::default(), Source::Url(source))
            }
        };
        Ok(AssertionVerifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                max_token_size: self.max_token_size,
                decryption_keys: self.decryption_keys,
                keys: RwLock::new(Arc::new(keys)),
                source,
            }),
        })
    }
}

/// Verifies the gateway's assertions (`X-Railbridge-Assertion`, or a bearer token): signed JWTs, optionally
/// encrypted ([`jwe`](super::jwe)), against the gateway's published keys. Cheap to clone (one `Arc`).
///
/// A token is checked in this order, and nothing from it is trusted before its signature verifies: size;
/// shape (three parts, or five when encrypted, then decrypted); header (`alg` one of `EdDSA`, `ES256`, `RS256`,
/// fitting the key named by `kid`, `typ` `JWT` if present, no `crit`); signature; `exp` and `nbf` with the
/// leeway; `iss`; `aud`; `sub` (a string), `sid` and `scope` (strings if present). `jku`, `x5u` and `jwk` header
/// members are ignored: keys only ever come from the configured source.
#[derive(Clone)]
pub struct AssertionVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    leeway: i64,
    max_token_size: usize,
    decryption_keys: Vec<JweKey>,
    keys: RwLock<Arc<KeySet>>,
    source: Source,
}

enum Source {
    Static,
    File(FileSource),
    Url(UrlSource),
}

struct FileSource {
    path: PathBuf,
    watch: Mutex<FileWatch>,
}

struct FileWatch {
    checked: Instant,
    /// Modification time and size of the file last loaded.
    stamp: Option<(SystemTime, u64)>,
}

struct UrlSource {
    url: String,
    /// The URL without credentials, for logs.
    redacted: String,
    client: reqwest::Client,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    started: Instant,
    /// Milliseconds after `started` at which the keys are due for a background refresh (`u64::MAX`: not loaded).
    stale_at_ms: AtomicU64,
    /// A background refresh is under way.
    refreshing: AtomicBool,
    /// One fetch at a time; waiters then find the keys it brought.
    fetch_lock: tokio::sync::Mutex<()>,
    state: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    loaded: bool,
    last_kid_refresh: Option<Instant>,
    last_failure: Option<(Instant, String)>,
}

impl fmt::Debug for AssertionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let source = match &inner.source {
            Source::Static => "jwks_json".to_owned(),
            Source::File(file) => format!("jwks_file {}", file.path.display()),
            Source::Url(url) => format!("jwks_url {}", url.redacted),
        };
        f.debug_struct("AssertionVerifier")
            .field("source", &source)
            .field("issuer", &inner.issuer)
            .field("audiences", &inner.audiences)
            .field("leeway_secs", &inner.leeway)
            .field("keys", &*inner.current())
            .field("decryption_keys", &inner.decryption_keys)
            .finish()
    }
}

impl AssertionVerifier {
    /// Settings with the defaults: issuer `railbridge`, leeway 30 s, tokens up to 8 KiB, unknown-`kid` fetches at
    /// most every 10 s, keys refreshed after 5 min, 2 s HTTP timeout. A key source and an audience are required.
    pub fn builder() -> AssertionVerifierBuilder {
        AssertionVerifierBuilder {
            source: None,
            issuer: "railbridge".into(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            max_token_size: 8 * 1024,
            min_refresh_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(300),
            http_timeout: Duration::from_secs(2),
            decryption_keys: Vec::new(),
        }
    }

    /// Verifies `token` (the header value, without `Bearer `). Fetches the key set when it has not been fetched
    /// yet or the token names a `kid` it lacks (rate-limited), so it may wait for the gateway, at most the HTTP
    /// timeout.
    pub async fn verify(&self, token: &str) -> Result<GatewayUser, AssertionError> {
        let opened = self.inner.open(token)?;
        let jws = Jws::parse(opened.text()?)?;
        let keys = self.current_keys();
        if let Some(key) = keys.get(&jws.kid) {
            return self.inner.finish(&jws, key);
        }
        drop(keys);
        let keys = self.refresh_for(&jws.kid).await?;
        match keys.get(&jws.kid) {
            Some(key) => self.inner.finish(&jws, key),
            None => Err(AssertionError::unknown_key(Some(&jws.kid))),
        }
    }

    /// Verifies `token` with the keys already loaded, never fetching (`keys_unavailable` before the first
    /// fetch, `unknown_key` for a `kid` not loaded). A JWKS file may be read again (at most once per second).
    pub fn verify_cached(&self, token: &str) -> Result<GatewayUser, AssertionError> {
        let opened = self.inner.open(token)?;
        let jws = Jws::parse(opened.text()?)?;
        let keys = self.current_keys();
        match keys.get(&jws.kid) {
            Some(key) => self.inner.finish(&jws, key),
            None => Err(self.inner.missing(&jws.kid, &keys)),
        }
    }

    /// Loads the keys now: fetches the JWKS URL (whatever the rate limit) or reads the file again. Useful at
    /// start-up, to fail early or warm the cache.
    pub async fn refresh(&self) -> Result<(), AssertionError> {
        match &self.inner.source {
            Source::Static => Ok(()),
            Source::File(file) => {
                let (keys, stamp) =
                    read_file(&file.path).map_err(AssertionError::KeysUnavailable)?;
                self.inner.store(keys);
                let mut watch = file.watch.lock().unwrap_or_else(PoisonError::into_inner);
                *watch = FileWatch { checked: Instant::now(), stamp: Some(stamp) };
                Ok(())
            }
            Source::Url(url) => {
                let _fetching = url.fetch_lock.lock().await;
                self.inner.fetch_and_store(url).await.map(drop)
            }
        }
    }

    /// The keys to verify with; reloads a changed file, and starts a background refresh of stale URL keys.
    fn current_keys(&self) -> Arc<KeySet> {
        match &self.inner.source {
            Source::Static => {}
            Source::File(file) => file.maybe_reload(&self.inner),
            Source::Url(url) => {
                let now_ms = url.ms_since_start(Instant::now());
                if now_ms >= url.stale_at_ms.load(Ordering::Relaxed) {
                    self.refresh_in_background(url);
                }
            }
        }
        self.inner.current()
    }

    fn refresh_in_background(&self, url: &UrlSource) {
        if url.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            url.refreshing.store(false, Ordering::Release);
            return;
        };
        let inner = Arc::clone(&self.inner);
        runtime.spawn(async move {
            if let Source::Url(url) = &inner.source {
                let _fetching = url.fetch_lock.lock().await;
                let due =
                    url.ms_since_start(Instant::now()) >= url.stale_at_ms.load(Ordering::Relaxed);
                if due {
                    tracing::debug!(url = %url.redacted, "refreshing the JWKS (max key age)");
                    // A failure is logged and pushes the next attempt back by the minimum interval.
                    let _ = inner.fetch_and_store(url).await;
                }
                url.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Fetches the JWKS because `kid` is not in it — unless another task just did, or the rate limit says no.
    async fn refresh_for(&self, kid: &str) -> Result<Arc<KeySet>, AssertionError> {
        let Source::Url(url) = &self.inner.source else {
            return Err(self.inner.missing(kid, &self.inner.current()));
        };
        let _fetching = url.fetch_lock.lock().await;
        let keys = self.inner.current();
        if keys.get(kid).is_some() {
            return Ok(keys);
        }
        let now = Instant::now();
        {
            let mut state = url.state.lock().unwrap_or_else(PoisonError::into_inner);
            let recent = |at: Instant| now.saturating_duration_since(at) < url.min_refresh_interval;
            if !state.loaded {
                if let Some((at, why)) = &state.last_failure {
                    if recent(*at) {
                        return Err(AssertionError::KeysUnavailable(why.clone()));
                    }
                }
            } else {
                if state.last_kid_refresh.is_some_and(recent) {
                    return Err(AssertionError::unknown_key(Some(kid)));
                }
                state.last_kid_refresh = Some(now);
                tracing::debug!(url = %url.redacted, "fetching the JWKS for an unknown kid");
            }
        }
        let keys = self.inner.fetch_and_store(url).await?;
        if keys.get(kid).is_some() {
            Ok(keys)
        } else {
            Err(AssertionError::unknown_key(Some(kid)))
        }
    }
}

impl Inner {
    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn store(&self, keys: KeySet) -> Arc<KeySet> {
        let keys = Arc::new(keys);
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&keys);
        keys
    }

    /// The error for a `kid` the loaded keys lack, when no fetch is possible.
    fn missing(&self, kid: &str, keys: &KeySet) -> AssertionError {
        if !keys.is_empty() {
            return AssertionError::unknown_key(Some(kid));
        }
        let why = match &self.source {
            Source::Url(url) => {
                let state = url.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.last_failure.as_ref().map(|(_, why)| why.clone())
            }
            _ => None,
        };
        AssertionError::KeysUnavailable(
            why.unwrap_or_else(|| "the key set has not been fetched yet".into()),
        )
    }

    async fn fetch_and_store(&self, url: &UrlSource) -> Result<Arc<KeySet>, AssertionError> {
        let fetched = url.fetch().await;
        let now = Instant::now();
        let mut state = url.state.lock().unwrap_or_else(PoisonError::into_inner);
        match fetched {
            Ok(keys) => {
                let keys = self.store(keys);
                state.loaded = true;
                state.last_failure = None;
                let stale_at = url.ms_since_start(now).saturating_add(millis(url.max_key_age));
                url.stale_at_ms.store(stale_at, Ordering::Relaxed);
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(
                    url = %url.redacted,
                    reason = %why,
                    "cannot fetch the gateway's JWKS; keeping the keys already loaded"
                );
                if state.loaded {
                    let retry_at =
                        url.ms_since_start(now).saturating_add(millis(url.min_refresh_interval));
                    url.stale_at_ms.fetch_max(retry_at, Ordering::Relaxed);
                }
                state.last_failure = Some((now, why.clone()));
                Err(AssertionError::KeysUnavailable(why))
            }
        }
    }

    /// Checks the size, and decrypts a JWE.
    fn open<'t>(&self, token: &'t str) -> Result<Opened<'t>, AssertionError> {
        if token.len() > self.max_token_size {
            return Err(AssertionError::TooLarge { size: token.len(), limit: self.max_token_size });
        }
        match token.bytes().filter(|b| *b == b'.').count() {
            2 => Ok(Opened::Plain(token)),
            4 => {
                if self.decryption_keys.is_empty() {
                    tracing::debug!("an encrypted assertion, but no decryption key is configured");
                    return Err(AssertionError::DecryptionFailed);
                }
                jwe::decrypt(token, &self.decryption_keys).map(Opened::Decrypted).map_err(|e| {
                    match e {
                        JweError::Malformed(what) => AssertionError::Malformed(what),
                        JweError::Unsupported(alg) => AssertionError::unsupported(&alg),
                        _ => AssertionError::DecryptionFailed,
                    }
                })
            }
            _ => Err(AssertionError::Malformed("not a JWS or JWE in compact serialization")),
        }
    }

    /// Signature, then claims.
    fn finish(&self, jws: &Jws<'_>, key: &VerifyingKey) -> Result<GatewayUser, AssertionError> {
        key.verify(jws.alg, jws.signing_input.as_bytes(), &jws.signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(jws.payload)
            .map_err(|_| AssertionError::Malformed("payload is not base64url"))?;
        let claims: Map<String, Json> = serde_json::from_slice(&payload)
            .map_err(|_| AssertionError::Malformed("claims are not a JSON object"))?;
        self.validate(claims, unix_now())
    }

    fn validate(&self, claims: Map<String, Json>, now: i64) -> Result<GatewayUser, AssertionError> {
        let exp = numeric(claims.get("exp"))
            .ok_or(AssertionError::Malformed("exp is missing or not a number"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(AssertionError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").filter(|v| !v.is_null()) {
            let nbf = numeric(Some(nbf)).ok_or(AssertionError::Malformed("nbf is not a number"))?;
            if now.saturating_add(self.leeway) < nbf {
                return Err(AssertionError::NotYetValid);
            }
        }
        if claims.get("iat").is_some_and(|iat| !iat.is_null() && numeric(Some(iat)).is_none()) {
            return Err(AssertionError::Malformed("iat is not a number"));
        }
        if claims.get("iss").and_then(Json::as_str) != Some(self.issuer.as_str()) {
            return Err(AssertionError::WrongIssuer);
        }
        let accepted = |aud: &&str| self.audiences.iter().any(|a| a == aud);
        let audience = match claims.get("aud") {
            Some(Json::String(aud)) => Some(aud.as_str()).filter(accepted),
            Some(Json::Array(list)) => list.iter().filter_map(Json::as_str).find(accepted),
            _ => None,
        }
        .ok_or(AssertionError::WrongAudience)?
        .to_owned();
        let user_id = match claims.get("sub") {
            Some(Json::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(AssertionError::Malformed("sub is missing or not a string")),
        };
        let sid = optional_string(&claims, "sid")?;
        let scope = optional_string(&claims, "scope")?;
        let expires_at = u64::try_from(exp)
            .ok()
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
            .ok_or(AssertionError::Malformed("exp is out of range"))?;
        Ok(GatewayUser { user_id, scope, sid, audience, expires_at, claims })
    }
}

impl FileSource {
    /// Reads the file again if it changed since it was last loaded; looks at most once per second, and never
    /// makes a caller wait for another caller's look.
    fn maybe_reload(&self, inner: &Inner) {
        let mut watch = match self.watch.try_lock() {
            Ok(watch) => watch,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let now = Instant::now();
        if now.saturating_duration_since(watch.checked) < FILE_CHECK_INTERVAL {
            return;
        }
        watch.checked = now;
        match stamp(&self.path) {
            Ok(stamp) if watch.stamp == Some(stamp) => {}
            Ok(_) => match read_file(&self.path) {
                Ok((keys, stamp)) => {
                    inner.store(keys);
                    watch.stamp = Some(stamp);
                    tracing::info!(path = %self.path.display(), "JWKS file reloaded");
                }
                Err(why) => tracing::warn!(
                    path = %self.path.display(),
                    reason = %why,
                    "JWKS file changed but cannot be used; keeping the keys already loaded"
                ),
            },
            Err(why) => tracing::warn!(
                path = %self.path.display(),
                reason = %why,
                "JWKS file unreadable; keeping the keys already loaded"
            ),
        }
    }
}

impl UrlSource {
    fn ms_since_start(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.started))
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("the JWKS endpoint answered {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e.without_url()))? {
            if body.len() + chunk.len() > MAX_JWKS_SIZE {
                return Err(format!("the JWKS is larger than {MAX_JWKS_SIZE} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::from_json(&body)
    }
}

/// A token, decrypted if it was a JWE.
enum Opened<'t> {
    Plain(&'t str),
    Decrypted(Zeroizing<Vec<u8>>),
}

impl Opened<'_> {
    fn text(&self) -> Result<&str, AssertionError> {
        match self {
            Opened::Plain(token) => Ok(token),
            Opened::Decrypted(bytes) => std::str::from_utf8(bytes)
                .map_err(|_| AssertionError::Malformed("the decrypted payload is not a JWT")),
        }
    }
}

/// A JWS in compact serialization, its header checked, its signature not yet.
struct Jws<'t> {
    alg: Alg,
    kid: String,
    signing_input: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

impl<'t> Jws<'t> {
    fn parse(token: &'t str) -> Result<Self, AssertionError> {
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
            typ: Option<String>,
            crit: Option<Json>,
            b64: Option<bool>,
        }
        let shape = AssertionError::Malformed("not three dot-separated parts");
        let (signing_input, signature) = token.rsplit_once('.').ok_or(shape.clone())?;
        let (header_b64, payload) = signing_input.split_once('.').ok_or(shape.clone())?;
        if payload.contains('.') {
            return Err(shape);
        }
        let header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AssertionError::Malformed("header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| AssertionError::Malformed("header is not a JWS header"))?;
        let alg =
            Alg::from_name(&header.alg).ok_or_else(|| AssertionError::unsupported(&header.alg))?;
        if header.typ.as_deref().is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
            return Err(AssertionError::Malformed("typ is not JWT"));
        }
        if header.crit.is_some() || header.b64 == Some(false) {
            return Err(AssertionError::Malformed("crit and b64 are not supported"));
        }
        let kid = header.kid.ok_or(AssertionError::unknown_key(None))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AssertionError::Malformed("signature is not base64url"))?;
        Ok(Jws { alg, kid, signing_input, payload, signature })
    }
}

/// A NumericDate (RFC 7519 §2): an integer or a finite number of seconds, rounded down.
fn numeric(value: Option<&Json>) -> Option<i64> {
    let value = value?;
    #[allow(clippy::cast_possible_truncation)] // `as` saturates; the value is finite
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
}

fn optional_string(
    claims: &Map<String, Json>,
    name: &'static str,
) -> Result<Option<String>, AssertionError> {
    match claims.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AssertionError::Malformed(match name {
            "sid" => "sid is not a string",
            _ => "scope is not a string",
        })),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn stamp(path: &Path) -> Result<(SystemTime, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    Ok((meta.modified().unwrap_or(UNIX_EPOCH), meta.len()))
}

/// Reads and parses a JWKS file; the stamp is taken first, so a write during the read is seen next time.
fn read_file(path: &Path) -> Result<(KeySet, (SystemTime, u64)), String> {
    let stamp = stamp(path)?;
    if stamp.1 > MAX_JWKS_SIZE as u64 {
        return Err(format!("larger than {MAX_JWKS_SIZE} bytes"));
    }
    let json = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok((KeySet::from_json(&json)?, stamp))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> AssertionVerifier {
        let x = URL_SAFE_NO_PAD.encode([0; 32]);
        AssertionVerifier::builder()
            .jwks_json(format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k","x":"{x}"}}]}}"#
            ))
            .audiences(["api", "billing"])
            .build()
            .unwrap()
    }

    fn claims(json: Json) -> Map<String, Json> {
        let Json::Object(map) = json else { unreachable!() };
        map
    }

    #[test]
    fn claims_are_checked() {
        let v = verifier();
        let inner = &v.inner;
        let now = 1_700_000_000;
        let ok =
            serde_json::json!({"iss": "railbridge", "aud": "api", "sub": "1", "exp": now + 60});
        let user = inner.validate(claims(ok.clone()), now).unwrap();
        assert_eq!(
            (user.user_id(), user.audience(), user.sid(), user.scope()),
            ("1", "api", None, None)
        );
        let with = |k: &str, v: Json| {
            let mut c = claims(ok.clone());
            c.insert(k.into(), v);
            inner.validate(c, now).map(|u| u.audience().to_owned())
        };
        assert_eq!(with("aud", serde_json::json!(["x", "billing"])), Ok("billing".into()));
        assert_eq!(with("aud", serde_json::json!(["x"])), Err(AssertionError::WrongAudience));
        assert_eq!(with("aud", Json::Null), Err(AssertionError::WrongAudience));
        assert_eq!(with("iss", "other".into()), Err(AssertionError::WrongIssuer));
        assert_eq!(with("exp", (now - 30).into()), Err(AssertionError::Expired));
        assert!(with("exp", (now - 29).into()).is_ok());
        assert!(with("exp", (now as f64 + 0.5).into()).is_ok());
        assert_eq!(with("exp", "soon".into()).unwrap_err().reason(), "malformed");
        assert_eq!(with("exp", u64::MAX.into()).map(drop), Ok(()));
        assert_eq!(with("nbf", (now + 31).into()), Err(AssertionError::NotYetValid));
        assert!(with("nbf", (now + 30).into()).is_ok());
        assert_eq!(with("sub", 1.into()).unwrap_err().reason(), "malformed");
        assert_eq!(with("sid", 1.into()).unwrap_err().reason(), "malformed");
        assert_eq!(with("iat", "x".into()).unwrap_err().reason(), "malformed");
    }

    #[test]
    fn headers_are_checked_before_any_key_is_looked_up() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let parse = |header: &str| Jws::parse(&format!("{}.e30.AA", b64(header))).map(|j| j.kid);
        assert_eq!(parse(r#"{"alg":"EdDSA","kid":"k"}"#), Ok("k".into()));
        assert_eq!(
            parse(r#"{"alg":"none","kid":"k"}"#).unwrap_err().reason(),
            "unsupported_algorithm"
        );
        assert_eq!(
            parse(r#"{"alg":"HS256","kid":"k"}"#).unwrap_err().reason(),
            "unsupported_algorithm"
        );
        assert_eq!(parse(r#"{"alg":"EdDSA"}"#).unwrap_err().reason(), "unknown_key");
        assert_eq!(
            parse(r#"{"alg":"EdDSA","kid":"k","typ":"at+jwt"}"#).unwrap_err().reason(),
            "malformed"
        );
        assert_eq!(
            parse(r#"{"alg":"EdDSA","kid":"k","crit":["exp"]}"#).unwrap_err().reason(),
            "malformed"
        );
        assert_eq!(
            parse(r#"{"alg":"EdDSA","kid":"k","alg":"EdDSA"}"#).unwrap_err().reason(),
            "malformed"
        );
        assert_eq!(parse("[]").unwrap_err().reason(), "malformed");
        assert!(
            Jws::parse("a.b").is_err() && Jws::parse("a.b.c.d").is_err() && Jws::parse("").is_err()
        );
    }

    #[test]
    fn debug_shows_the_setup_not_secrets() {
        let v = AssertionVerifier::builder()
            .jwks_url("http://user:secret@127.0.0.1:9/jwks")
            .audience("api")
            .decryption_key("e1", &[0xcd; 32])
            .build()
            .unwrap();
        let debug = format!("{v:?}");
        assert!(debug.contains("user:***@127.0.0.1") && debug.contains("e1"), "{debug}");
        assert!(!debug.contains("secret") && !debug.contains("205"), "{debug}");
    }

    #[test]
    fn builder_refuses_incomplete_settings() {
        let b = || AssertionVerifier::builder().jwks_json(r#"{"keys":[]}"#);
        assert!(b().audience("a").build().is_err(), "no usable key");
        assert!(AssertionVerifier::builder().audience("a").build().is_err(), "no source");
        assert!(AssertionVerifier::builder().jwks_url("http://x/").build().is_err(), "no audience");
        assert!(AssertionVerifier::builder().jwks_url("ftp://x/").audience("a").build().is_err());
        assert!(AssertionVerifier::builder()
            .jwks_file("/nonexistent/jwks.json")
            .audience("a")
            .build()
            .is_err());
        let dup = AssertionVerifier::builder()
            .jwks_url("http://x/")
            .audience("a")
            .decryption_key("k", &[0; 32])
            .decryption_key("k", &[1; 32]);
        assert!(dup.build().is_err());
    }
}
