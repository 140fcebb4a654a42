//! Bearer tokens for clients the Rails cookie cannot reach (a mobile app, a CLI, a single-page app on another
//! domain): `POST /_railbridge/token` exchanges a signed-in Rails session (same-origin, with a CSRF token Rails
//! would accept) for a short-lived access token (a JWT signed with the gateway's keys, optionally encrypted) and an
//! opaque refresh token bound to that Rails session; refresh tokens are single use, rotated on every refresh, and a
//! replayed one revokes its whole family. Everything derived from a Rails session stops working when that session
//! ends: a sign-out seen passing through the gateway, `POST /_railbridge/revoke` (a Rails `after_sign_out` hook), and
//! at each refresh a password change (the Devise salt, through the User API), a gone Rails 8 `sessions` row or a
//! gone server-side session record. Routes with `accept_bearer = true` take `Authorization: Bearer <access token>`
//! as the identity.

pub(crate) mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use rails_session::gateway_auth::{jwe, AssertionVerifier};
use rails_session::rails_cookie::Value;
use rails_session::{IdentitySource, LoadUser as _, Session, UserId};
use ring::rand::SecureRandom as _;
use serde_json::{json, Map, Value as Json};
use subtle::ConstantTimeEq as _;
use tower::{Layer as _, Service, ServiceExt as _};

use self::store::{Login, RefreshRecord, Spent, TokenStore};
use super::error::json as json_response;
use super::forward::Peer;
use super::identity::{self, IdentityHeaders, Resolved};
use super::{Body, IdentityList, State};
use crate::config::{JwtConfig, TokensConfig};
use crate::jwt::issuer::{Issuer, Subject};

/// The largest body the token endpoints read.
const MAX_BODY: usize = 8 * 1024;
/// How long a "not revoked" answer from the store is reused (instances agree within this).
const REVOCATION_CACHE: Duration = Duration::from_millis(500);

/// A verified access token, as the bearer routes use it.
#[derive(Debug)]
pub(crate) struct Bearer {
    user: String,
    scope: Option<String>,
    sid: String,
    family: String,
    claims: Map<String, Json>,
    /// Unix seconds.
    expires_at: u64,
    /// Unix milliseconds (`iat`, to the second): revocations after it end the token.
    issued_ms: u64,
}

impl Bearer {
    /// The Warden scope the token was exchanged under.
    pub(crate) fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

/// Token exchange, refresh, revocation and bearer verification for one configuration.
pub(crate) struct Tokens {
    config: TokensConfig,
    store: TokenStore,
    verifier: AssertionVerifier,
    /// The key access tokens are encrypted with, when configured.
    encrypt: Option<(String, Arc<zeroize::Zeroizing<[u8; 32]>>)>,
    /// `sid\0user\0family` → revoked, for at most [`REVOCATION_CACHE`].
    revocations: moka::sync::Cache<String, Option<u64>>,
    /// Verified access tokens (by value) until they expire: a signature check per token, not per request.
    verified: moka::sync::Cache<String, Arc<Bearer>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("config", &self.config)
            .field("store", &self.store.kind())
            .finish()
    }
}

/// `railbridge_tokens_total{event, reason}`.
fn count(event: &'static str, reason: &'static str) {
    metrics::counter!("railbridge_tokens_total", "event" => event, "reason" => reason).increment(1);
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Lets a configured public origin read the answer, with credentials.
fn cors(response: &mut Response<Body>, origin: HeaderValue) {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

/// An OAuth-style error answer (RFC 6749 §5.2), never cached.
fn oauth_error(status: StatusCode, error: &str) -> Response<Body> {
    let mut r = json_response(status, json!({ "error": error }).to_string());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl Tokens {
    /// `previous`: the token exchange of the configuration this one replaces, whose in-memory store it keeps.
    pub(crate) fn new(
        config: &TokensConfig,
        jwt: &JwtConfig,
        previous: Option<&Tokens>,
    ) -> Result<Tokens, String> {
        let jwks = String::from_utf8(jwt.keys.jwks_json().to_vec()).map_err(|e| e.to_string())?;
        let mut builder = AssertionVerifier::builder()
            .jwks_json(jwks)
            .issuer(jwt.issuer.clone())
            .audience(config.audience.clone())
            .leeway(Duration::from_secs(5));
        for (kid, key) in &config.encryption_keys {
            builder = builder.decryption_key(kid.clone(), key);
        }
        let verifier = builder.build().map_err(|e| e.to_string())?;
        let retention = config.refresh_lifetime.max(config.access_ttl);
        let store = match (&config.store_url, previous.map(|p| &p.store)) {
            (Some(url), _) => TokenStore::redis(url, retention)?,
            (None, Some(TokenStore::Memory(kept))) => {
                kept.set_retention(retention);
                TokenStore::Memory(kept.clone())
            }
            (None, _) => TokenStore::memory(retention),
        };
        Ok(Tokens {
            config: config.clone(),
            store,
            verifier,
            encrypt: config.encryption_keys.first().cloned(),
            revocations: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REVOCATION_CACHE)
                .build(),
            verified: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.access_ttl)
                .build(),
        })
    }

    /// For `--check`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "access ttl {}s, refresh lifetime {}s, audience {:?}, store {}, encrypted {}",
            self.config.access_ttl.as_secs(),
            self.config.refresh_lifetime.as_secs(),
            self.config.audience,
            self.store.kind(),
            if self.encrypt.is_some() { "yes" } else { "no" },
        )
    }

    /// One round trip to the store (for `--check`).
    pub(crate) async fn check_store(&self) -> Result<(), String> {
        self.store.check().await.map_err(|e| e.to_string())
    }

    /// `POST /_railbridge/token` and `POST /_railbridge/revoke`.
    pub(crate) async fn endpoint(
        &self,
        state: &Arc<State>,
        req: Request<Body>,
        peer: &Peer,
        path: &str,
    ) -> Response<Body> {
        // A page on a configured public origin (a same-site subdomain, whose cookie is sent) calls the token
        // endpoint with CORS: its preflight, and the allow headers on the answer.
        let public_origin = req
            .headers()
            .get(header::ORIGIN)
            .filter(|o| {
                o.to_str().is_ok_and(|o| {
                    self.config
                        .public_origins
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(o.trim_end_matches('/')))
                })
            })
            .cloned();
        if req.method() == Method::OPTIONS && path == "/_railbridge/token" {
            let Some(origin) = public_origin else {
                return oauth_error(StatusCode::FORBIDDEN, "cross_site_request");
            };
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            cors(&mut r, origin);
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, x-csrf-token"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            return r;
        }
        if req.method() != Method::POST {
            return oauth_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        }
        let mut response = match path {
            "/_railbridge/token" => self.token(state, req, peer).await,
            "/_railbridge/revoke" => return self.revoke_endpoint(state, req).await,
            _ => return super::ProxyError::NoRoute.into_response(),
        };
        if let Some(origin) = public_origin {
            cors(&mut response, origin);
        }
        response
    }

    async fn token(&self, state: &Arc<State>, req: Request<Body>, peer: &Peer) -> Response<Body> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
            });
        if !form {
            return self.exchange(state, req, peer).await;
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) =
            http_body_util::Limited::new(body, MAX_BODY).collect().await.map(|c| c.to_bytes())
        else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
        };
        // An empty form (`curl --data ''`, a `fetch` with an empty `URLSearchParams`) is the cookie exchange.
        if bytes.is_empty() {
            return self.exchange(state, Request::from_parts(parts, Body::empty()), peer).await;
        }
        let mut grant = None;
        let mut refresh = None;
        for (k, v) in form_urlencoded::parse(&bytes) {
            match &*k {
                "grant_type" => grant = Some(v.into_owned()),
                "refresh_token" => refresh = Some(v.into_owned()),
                _ => {}
            }
        }
        match grant.as_deref() {
            Some("refresh_token") => match refresh {
                Some(token) => self.refresh(state, &token).await,
                None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
            },
            None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
            Some(_) => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        }
    }

    /// Whether the request comes from the gateway's own origin (as the client addressed it) or a configured one;
    /// without `Origin`, the browser's `Sec-Fetch-Site: same-origin`.
    fn same_origin(&self, state: &State, req: &Request<Body>, peer: &Peer) -> bool {
        let headers = req.headers();
        let Some(origin) = headers.get(header::ORIGIN) else {
            return headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"same-origin");
        };
        let Ok(origin) = origin.to_str() else { return false };
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.config.public_origins.contains(&origin) {
            return true;
        }
        // The scheme the client used: the TLS terminator's word for it when it is a trusted proxy.
        let scheme = state
            .trusted(peer)
            .then(|| headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()))
            .flatten()
            .map_or(peer.scheme().to_owned(), |p| {
                p.split(',').next().unwrap_or("http").trim().to_ascii_lowercase()
            });
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
        host.is_some_and(|h| origin == format!("{scheme}://{}", h.to_ascii_lowercase()))
    }

    async fn exchange(
        &self,
        state: &Arc<State>,
        req: Request<Body>,
        peer: &Peer,
    ) -> Response<Body> {
        if !self.same_origin(state, &req, peer) {
            count("refused", "cross_site");
            return oauth_error(StatusCode::FORBIDDEN, "cross_site_request");
        }
        let Some(layer) = state.forward_auth.session.clone() else {
            count("refused", "no_session");
            return oauth_error(StatusCode::UNAUTHORIZED, "login_required");
        };
        let handler = Exchange { state: state.clone() };
        match layer.layer(handler).oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Issues an access token and a refresh token for a signed-in session.
    async fn issue(&self, state: &State, record: RefreshRecord, refreshed: bool) -> Response<Body> {
        let Some(issuer) = state.issuer.as_ref() else {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        };
        let (Some(refresh), Some(access)) = (random_token(), self.access_token(issuer, &record))
        else {
            return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        };
        let remaining = record.family_expires_at.saturating_sub(now_secs());
        if let Err(e) =
            self.store.put(&sha256_hex(&refresh), &record, Duration::from_secs(remaining)).await
        {
            tracing::error!(error = %e, "cannot keep the refresh token");
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        }
        count(if refreshed { "refreshed" } else { "issued" }, "ok");
        let body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_ttl.as_secs(),
            "refresh_token": refresh,
        });
        let mut r = json_response(StatusCode::OK, body.to_string());
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        r
    }

    fn access_token(&self, issuer: &Issuer, record: &RefreshRecord) -> Option<String> {
        let extra: Vec<(String, Json)> =
            record.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let subject = Subject {
            audience: &self.config.audience,
            user: &record.user,
            session: &record.sid,
            scope: record.scope.as_deref(),
            extra: &extra,
        };
        let registered =
            [("fam", Json::from(record.family.clone())), ("use", Json::from("access"))];
        let signed = issuer
            .access_token(&subject, self.config.access_ttl, &registered)
            .inspect_err(|e| tracing::error!(error = %e, "cannot sign an access token"))
            .ok()?;
        match &self.encrypt {
            None => Some(signed),
            Some((kid, key)) => jwe::encrypt(kid, key, signed.as_bytes())
                .inspect_err(|e| tracing::error!(error = %e, "cannot encrypt an access token"))
                .ok(),
        }
    }

    async fn refresh(&self, state: &Arc<State>, token: &str) -> Response<Body> {
        if token.is_empty() || token.len() > 256 {
            count("refused", "invalid_grant");
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let hash = sha256_hex(token);
        let record = match self.store.spend(&hash).await {
            Ok(Spent::Fresh(record)) => record,
            Ok(Spent::Reused(record)) => {
                // A spent token again: stolen, or replayed. The whole family goes.
                tracing::warn!(family = %record.family, "a refresh token was used twice: revoking its family");
                // Best effort: the replayed token is refused in any case.
                let _ = self.revoke("family", &record.family).await;
                count("refused", "reused");
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            Ok(Spent::Missing) => {
                count("refused", "invalid_grant");
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            Err(e) => {
                tracing::error!(error = %e, "token store unavailable");
                return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
            }
        };
        if record.family_expires_at <= now_secs() {
            count("refused", "expired");
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let issued = record.family_issued_ms;
        let unavailable = || async {
            // Our failure, not the client's: the token is given back, so a retry is not a replay.
            let _ = self.store.unspend(&hash).await;
            oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        };
        match self.is_revoked(&record.sid, &record.user, &record.family, issued, true).await {
            Ok(false) => {}
            Ok(true) => {
                count("refused", "revoked");
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            Err(()) => return unavailable().await,
        }
        match self.login_still_there(state, &record).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = self.revoke("sid", &record.sid).await;
                count("refused", "signed_out");
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            Err(()) => return unavailable().await,
        }
        let response = self.issue(state, record, true).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            let _ = self.store.unspend(&hash).await;
        }
        response
    }

    /// Whether the Rails login behind a family is still there, as far as the gateway can tell without the cookie.
    async fn login_still_there(&self, state: &State, record: &RefreshRecord) -> Result<bool, ()> {
        let Some(settings) = &state.config.session else { return Ok(false) };
        let Some((_, config)) = settings.scopes.first() else { return Ok(false) };
        let salt_digest = match &record.login {
            Login::RailsAuthentication { row } => {
                let IdentitySource::RailsAuthentication(auth) = config.identity_config().source()
                else {
                    return Ok(false);
                };
                let row = row
                    .parse::<i64>()
                    .map_or_else(|_| UserId::String(row.clone()), UserId::Integer);
                return match auth.user_of_session(&row).await {
                    Ok(Some(user)) => Ok(user.to_string() == record.user),
                    Ok(None) => Ok(false),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the sessions row");
                        Err(())
                    }
                };
            }
            Login::ServerSession { id, salt_digest } => {
                let session = Session::new(config.clone(), Some(id.clone()), None);
                match session.current_identity().await {
                    Ok(Some(identity)) if identity.id.to_string() == record.user => {}
                    Ok(_) => return Ok(false),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the session record");
                        return Err(());
                    }
                }
                salt_digest
            }
            Login::CookieSession { salt_digest } => salt_digest,
        };
        // Devise: a password change gives the user a new salt, which signs every session out.
        let (Some(digest), Some(loader)) = (salt_digest, &settings.user_loader) else {
            return Ok(true);
        };
        let id = record
            .user
            .parse::<i64>()
            .map_or_else(|_| UserId::String(record.user.clone()), UserId::Integer);
        match loader.load_user(&id).await {
            Ok(Some(user)) => Ok(loader.authenticatable_salt(&user).is_some_and(|salt| {
                bool::from(sha256_hex(salt).as_bytes().ct_eq(digest.as_bytes()))
            })),
            Ok(None) => Ok(false),
            Err(e) => {
                tracing::error!(error = %e, "the User API failed");
                Err(())
            }
        }
    }

    /// Revokes what was issued until now and forgets cached answers, so this instance refuses at once.
    pub(crate) async fn revoke(&self, kind: &str, value: &str) -> Result<(), ()> {
        let at = now_ms();
        let stored = self.store.revoke(kind, value, at).await;
        self.revocations.invalidate_all();
        if let Err(e) = stored {
            tracing::error!(error = %e, kind, "cannot record a revocation");
            return Err(());
        }
        count(
            "revoked",
            match kind {
                "sid" => "sid",
                "user" => "user",
                _ => "family",
            },
        );
        Ok(())
    }

    /// Whether a revocation of the session, the user or the family came after `issued_ms` (when the token or its
    /// family was issued). `fresh`: ask the store, not the local cache.
    async fn is_revoked(
        &self,
        sid: &str,
        user: &str,
        family: &str,
        issued_ms: u64,
        fresh: bool,
    ) -> Result<bool, ()> {
        let key = format!("{sid}\0{user}\0{family}");
        let cached = if fresh { None } else { self.revocations.get(&key) };
        let latest = match cached {
            Some(latest) => Ok(latest),
            None => self
                .store
                .revoked_at(&[("sid", sid), ("user", user), ("family", family)])
                .await
                .inspect(|latest| self.revocations.insert(key, *latest)),
        };
        match latest {
            Ok(latest) => Ok(latest.is_some_and(|at| at >= issued_ms)),
            Err(e) => {
                tracing::error!(error = %e, "token store unavailable");
                Err(())
            }
        }
    }

    /// `POST /_railbridge/revoke` with `Authorization: Bearer <RAILBRIDGE_REVOKE_SECRET>` and `{"sid": …}`,
    /// `{"session_id": <Rails' session id>}` or `{"user": <id>}`.
    async fn revoke_endpoint(&self, state: &Arc<State>, req: Request<Body>) -> Response<Body> {
        let Some(secret) = &self.config.revoke_secret else {
            return super::ProxyError::NoRoute.into_response();
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compared by their digests: constant time whatever the lengths.
        let ok = bool::from(
            ring::digest::digest(&ring::digest::SHA256, given.as_bytes())
                .as_ref()
                .ct_eq(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref()),
        );
        if !ok {
            count("refused", "revoke_unauthorized");
            return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        let (_, body) = req.into_parts();
        let Ok(bytes) =
            http_body_util::Limited::new(body, MAX_BODY).collect().await.map(|c| c.to_bytes())
        else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
        };
        let Ok(Json::Object(request)) = serde_json::from_slice::<Json>(&bytes) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
        };
        let text = |v: &Json| match v {
            Json::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let revocations: Vec<(&str, String)> = if let Some(sid) = request.get("sid").and_then(text)
        {
            vec![("sid", sid)]
        } else if let Some(id) = request.get("session_id").and_then(text) {
            let Some(settings) = &state.config.session else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            // Rails' session id, or a Rails 8 authentication `sessions` row id (`Current.session.id`).
            vec![
                ("sid", identity::session_hash(&settings.hash_key, &id)),
                (
                    "sid",
                    identity::session_hash(
                        &settings.hash_key,
                        &format!("rails-authentication:{id}"),
                    ),
                ),
            ]
        } else if let Some(user) = request.get("user").and_then(text) {
            vec![("user", user)]
        } else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
        };
        for (kind, value) in &revocations {
            if self.revoke(kind, value).await.is_err() {
                return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
            }
        }
        let kind = revocations.first().map_or("sid", |(k, _)| k);
        json_response(StatusCode::OK, json!({ "revoked": kind }).to_string())
    }

    /// The identity of a bearer access token (verified once per token, revocations checked every
    /// [`REVOCATION_CACHE`]); `Err` carries the reason for the 401.
    pub(crate) async fn bearer(&self, token: &str) -> Result<Arc<Bearer>, &'static str> {
        let bearer = match self.verified.get(token) {
            Some(b) => b,
            None => {
                let user = self.verifier.verify_cached(token).map_err(|e| e.reason())?;
                if user.claims().get("use").and_then(Json::as_str) != Some("access") {
                    return Err("not_an_access_token");
                }
                let expires_at =
                    user.expires_at().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let family =
                    user.claims().get("fam").and_then(Json::as_str).unwrap_or("").to_owned();
                let issued_ms = user
                    .claims()
                    .get("iat")
                    .and_then(Json::as_u64)
                    .unwrap_or(0)
                    .saturating_mul(1000);
                let b = Arc::new(Bearer {
                    user: user.user_id().to_owned(),
                    scope: user.scope().map(str::to_owned),
                    sid: user.sid().unwrap_or("").to_owned(),
                    family,
                    claims: user.into_claims(),
                    expires_at,
                    issued_ms,
                });
                self.verified.insert(token.to_owned(), b.clone());
                b
            }
        };
        if bearer.expires_at <= now_secs() {
            return Err("expired");
        }
        match self
            .is_revoked(&bearer.sid, &bearer.user, &bearer.family, bearer.issued_ms, false)
            .await
        {
            Ok(false) => Ok(bearer),
            Ok(true) => {
                count("refused", "revoked");
                Err("revoked")
            }
            Err(()) => Err("token_store_unavailable"),
        }
    }

    /// The identity headers of a bearer on a route.
    pub(crate) fn bearer_identity(
        &self,
        headers: &IdentityHeaders<'_>,
        bearer: &Bearer,
    ) -> IdentityList {
        headers
            .for_claims(&bearer.user, bearer.scope.as_deref(), &bearer.sid, &bearer.claims)
            .into()
    }

    /// A response passing through the gateway for a signed-in session (`sid`): if Rails ended that session — its
    /// session cookie cleared, replaced by one without the login or with another session id, or the Rails 8
    /// authentication cookie cleared — every token derived from it is revoked. Devise's `:timeoutable` rewrite of
    /// the same signed-in session keeps both, so it revokes nothing.
    pub(crate) async fn watch_sign_out(
        &self,
        request_session: &Session,
        sid: &str,
        response: &http::HeaderMap,
    ) {
        let config = request_session.shared_config();
        let key = config.key();
        let login_cookie = config.login_cookie_name();
        let mut ended = false;
        for value in response.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, rest)) = text.split_once('=') else { continue };
            let name = name.trim();
            if name != key && name != login_cookie {
                continue;
            }
            let cookie_value = rest.split(';').next().unwrap_or("").trim();
            let lower = text.to_ascii_lowercase();
            let cleared = cookie_value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970");
            if cleared {
                ended = true;
                break;
            }
            if name != key {
                // A new Rails 8 authentication cookie: another login row.
                ended = true;
                break;
            }
            let value = rails_session::rails_cookie::unescape(cookie_value).into_owned();
            let before = request_session.id().await;
            let after = Session::new(config.clone(), Some(value.clone()), None);
            let same_id = match config.store_name() {
                // A server-side store's cookie is the session id itself.
                "cookie_store" => after
                    .with_data(|h| h.get("session_id").and_then(Value::as_str).map(str::to_owned))
                    .await
                    .is_some_and(|id| id == before),
                _ => value == before,
            };
            let signed_in = config.store_name() != "cookie_store"
                || matches!(after.current_identity().await, Ok(Some(_)));
            if !same_id || !signed_in {
                ended = true;
                break;
            }
        }
        if ended {
            tracing::info!(
                "the Rails session ended (sign-out seen at the gateway): revoking its tokens"
            );
            let _ = self.revoke("sid", sid).await;
        }
    }
}

/// `POST /_railbridge/token` with the session cookie, behind the session layer of the default scope.
#[derive(Clone)]
struct Exchange {
    state: Arc<State>,
}

impl Service<Request<Body>> for Exchange {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move { Ok(exchange(&state, req).await) })
    }
}

async fn exchange(state: &Arc<State>, req: Request<Body>) -> Response<Body> {
    let (Some(tokens), Some(settings)) = (state.tokens.as_ref(), state.config.session.as_ref())
    else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found");
    };
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let csrf = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if csrf.is_empty()
        || !session.valid_authenticity_token("POST", "/_railbridge/token", csrf).await
    {
        count("refused", "csrf");
        return oauth_error(StatusCode::FORBIDDEN, "invalid_csrf_token");
    }
    let (outcome, who) =
        identity::resolve(&session, req.headers(), settings.user_api, &settings.hash_key).await;
    let Some(who) = who else {
        return match outcome {
            identity::Outcome::UserApiUnavailable | identity::Outcome::SessionStoreUnavailable => {
                oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            _ => {
                count("refused", "login_required");
                oauth_error(StatusCode::UNAUTHORIZED, "login_required")
            }
        };
    };
    let Some(family) = random_token() else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let record = record_for(state, tokens, &session, &who).await.with_family(family);
    tokens.issue(state, record, false).await
}

/// What a refresh token of this session stands for.
async fn record_for(
    state: &State,
    tokens: &Tokens,
    session: &Session,
    who: &Resolved,
) -> RefreshRecord {
    let salt_digest = who.identity.authenticatable_salt().map(sha256_hex);
    let login = match who.identity.auth_session_id() {
        Some(row) => Login::RailsAuthentication { row: row.to_string() },
        None if session.config().store_name() != "cookie_store" => {
            Login::ServerSession { id: session.id().await, salt_digest }
        }
        None => Login::CookieSession { salt_digest },
    };
    let headers = IdentityHeaders {
        fields: &state.config.fields,
        issuer: state.issuer.as_ref(),
        audience: &tokens.config.audience,
        assertion: false,
    };
    let claims: Map<String, Json> = headers.claims(who, session).await.into_iter().collect();
    RefreshRecord {
        family: String::new(),
        sid: who.session_hash.clone(),
        user: who.identity.id.to_string(),
        scope: who.identity.scope().map(str::to_owned),
        family_expires_at: now_secs() + tokens.config.refresh_lifetime.as_secs(),
        family_issued_ms: now_ms(),
        login,
        claims,
    }
}

impl RefreshRecord {
    fn with_family(mut self, family: String) -> Self {
        self.family = family;
        self
    }
}
