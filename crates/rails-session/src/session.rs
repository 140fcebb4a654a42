//! `ActionDispatch::Request::Session`: the request's session, decoded lazily on first use, written back only when
//! it changed (or when `expire_after` asks for a sliding expiry), with a stable `session_id`.

use std::any::{Any, TypeId};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rails_cookie::{Hash, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::SessionConfig;
use crate::cookies;
use crate::error::{SessionError, StoreError};
use crate::store::{LoadedSession, Store};

/// A request's `Cookie` header values. There is almost always exactly one, kept without allocating a `Vec`.
#[derive(Default)]
pub(crate) struct CookieHeaders {
    first: Option<http::HeaderValue>,
    rest: Vec<http::HeaderValue>,
}

impl CookieHeaders {
    pub(crate) fn new(values: impl IntoIterator<Item = http::HeaderValue>) -> Self {
        let mut values = values.into_iter();
        // `collect` of an empty remainder does not allocate.
        CookieHeaders { first: values.next(), rest: values.collect() }
    }

    fn iter(&self) -> impl Iterator<Item = &http::HeaderValue> {
        self.first.iter().chain(&self.rest)
    }
}

/// The session of one request: a cheap handle (clone it freely) shared by the layer and the extractors.
///
/// Nothing is decoded until the first method call that needs the data; a request that never touches the session
/// costs no decryption. A cookie that cannot be read (tampered, expired, from another app) gives an empty session
/// and a `warn!`, never an error response. Keys the Rust side does not know (`_csrf_token`, `flash`, Devise's
/// `warden.*`) are kept exactly as they were.
///
/// ```
/// # async fn demo(session: rails_session::Session) -> Result<(), rails_session::SessionError> {
/// let visits: i64 = session.get("visits").await?.unwrap_or(0);
/// session.insert("visits", &(visits + 1)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<SessionConfig>,
    /// The request's `Cookie` headers, searched only when the session is first used.
    cookie_headers: CookieHeaders,
    /// The request host, for `domain: :all` and domain lists.
    host: Option<http::HeaderValue>,
    state: Mutex<State>,
    /// Per-request memo of resolved users, by user type.
    memo: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
}

#[derive(Default)]
struct State {
    /// Where the session cookie's value (as sent, percent-encoded) is in `cookie_headers`: which header, which
    /// bytes; `None` until searched. Kept as a position so that a cached session costs no copy and no UTF-8 check.
    cookie: Option<Option<(usize, Range<usize>)>>,
    /// `None` until loaded. Shared with the decode cache until first written.
    data: Option<Arc<Hash>>,
    /// The session came from a valid cookie.
    exists: bool,
    /// Read through a rotation: write back in the current format.
    rewrite: bool,
    /// Changed during this request.
    changed: bool,
    /// What the store asked to get back at the write (a server-side store's id, key and format).
    origin: Option<Arc<dyn Any + Send + Sync>>,
    /// The store could not be reached: the session is unknown (not empty), and is never written.
    failed: Option<String>,
}

impl Session {
    /// A session for a request that sent `cookie` (the percent-decoded value of the session cookie, if any) to
    /// `host`. The layers build this for you; build one yourself to drive a session outside a web framework.
    #[must_use]
    pub fn new(config: Arc<SessionConfig>, cookie: Option<String>, host: Option<String>) -> Self {
        let host = host.and_then(|h| http::HeaderValue::try_from(h).ok());
        // The cookie as a browser would send it (an escaped value is ASCII; the name was validated).
        let header = cookie.and_then(|c| {
            http::HeaderValue::try_from(format!("{}={}", config.key, rails_cookie::escape(&c))).ok()
        });
        Session::from_headers(config, CookieHeaders::new(header), host)
    }

    /// Another cookie of the request (as sent: percent-encoded), such as Rails 8 authentication's `session_id`.
    pub(crate) fn request_cookie(&self, name: &str) -> Option<String> {
        crate::cookies::find_cookie(
            self.inner.cookie_headers.iter().map(http::HeaderValue::as_bytes),
            name,
        )
        .map(str::to_owned)
    }

    /// A session whose cookie is looked up in `cookie_headers` only when it is first needed.
    pub(crate) fn from_headers(
        config: Arc<SessionConfig>,
        cookie_headers: CookieHeaders,
        host: Option<http::HeaderValue>,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                config,
                cookie_headers,
                host,
                state: Mutex::new(State::default()),
                memo: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The session cookie's value as sent (percent-encoded), searched for on first use.
    fn cookie(&self, state: &mut State) -> Option<&[u8]> {
        let inner = &self.inner;
        let (index, range) = state
            .cookie
            .get_or_insert_with(|| {
                inner.cookie_headers.iter().enumerate().find_map(|(i, header)| {
                    Some((i, cookies::locate_cookie(header.as_bytes(), &inner.config.key)?))
                })
            })
            .clone()?;
        inner.cookie_headers.iter().nth(index)?.as_bytes().get(range)
    }

    /// The configuration this session was made with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The configuration, shared (to make another [`Session`] with it, say for a cookie a response sets).
    pub fn shared_config(&self) -> &Arc<SessionConfig> {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another handler panicked mid-update; the data is still a valid Hash.
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The locked state with the session loaded, without waiting: `None` only when the session has yet to come
    /// from an asynchronous store. The cookie store works synchronously, so its session is decoded (or found in
    /// its cache) right here, under this one lock.
    fn loaded_now(&self) -> Option<MutexGuard<'_, State>> {
        let mut state = self.state();
        if state.data.is_none() {
            let Store::Cookie(store) = &self.inner.config.store else { return None };
            let loaded = match self.cookie(&mut state) {
                None => Ok(None),
                Some(v) => store.load_escaped_bytes(v).map(Some),
            };
            self.fill(&mut state, loaded);
        }
        Some(state)
    }

    /// Decodes the cookie if that has not happened yet, and returns the locked state.
    async fn loaded(&self) -> MutexGuard<'_, State> {
        if let Some(state) = self.loaded_now() {
            return state;
        }
        let value = self.cookie(&mut self.state());
        let loaded = match value {
            None => Ok(None),
            Some(v) => self.inner.config.store.load_escaped(v).await,
        };
        let mut state = self.state();
        if state.data.is_none() {
            self.fill(&mut state, loaded);
        }
        state
    }

    /// Puts what the store loaded in place. A cookie that cannot be read is an empty session, and a warning; a
    /// store that cannot be reached leaves the session unknown ([`Session::store_failure`]).
    fn fill(&self, state: &mut State, loaded: Result<Option<LoadedSession>, StoreError>) {
        match loaded {
            Ok(Some(l)) => {
                state.data = Some(l.data);
                state.exists = true;
                state.rewrite = l.rewrite;
                state.origin = l.state;
            }
            Ok(None) => state.data = Some(Arc::new(Hash::new())),
            Err(StoreError::Backend(e)) => {
                state.data = Some(Arc::new(Hash::new()));
                state.failed = Some(e);
            }
            Err(e) => {
                tracing::warn!(cookie = %self.inner.config.key, error = %e, "ignoring the session cookie");
                state.data = Some(Arc::new(Hash::new()));
            }
        }
    }

    /// [`Session::store_failure`] without loading.
    pub(crate) fn failure_now(&self) -> Option<String> {
        self.state().failed.clone()
    }

    /// Why the session store could not be read, if it could not (the store is down or too slow). The session then
    /// reads as empty, is never written back, and the current user is answered with `503`.
    pub async fn store_failure(&self) -> Option<String> {
        self.loaded().await.failed.clone()
    }

    /// Runs `f` on the session hash (loading it first).
    pub async fn with_data<R>(&self, f: impl FnOnce(&Hash) -> R) -> R {
        match self.with_data_now(f) {
            Ok(out) => out,
            Err(f) => f(self.loaded().await.data.get_or_insert_with(Default::default)),
        }
    }

    /// [`Session::with_data`] without waiting; `f` comes back when the session has yet to come from an
    /// asynchronous store.
    pub(crate) fn with_data_now<R, F: FnOnce(&Hash) -> R>(&self, f: F) -> Result<R, F> {
        match self.loaded_now() {
            Some(mut state) => Ok(f(state.data.get_or_insert_with(Default::default))),
            None => Err(f),
        }
    }

    /// Runs `f` on the session hash mutably; the session counts as changed if the hash differs afterwards.
    pub async fn update<R>(&self, f: impl FnOnce(&mut Hash) -> R) -> R {
        match self.update_now(f) {
            Ok(out) => out,
            Err(f) => changing(&mut *self.loaded().await, f),
        }
    }

    /// [`Session::update`] without waiting; `f` comes back when the session has yet to come from an asynchronous
    /// store.
    pub(crate) fn update_now<R, F: FnOnce(&mut Hash) -> R>(&self, f: F) -> Result<R, F> {
        match self.loaded_now() {
            Some(mut state) => Ok(changing(&mut state, f)),
            None => Err(f),
        }
    }

    /// The raw value under `key`.
    pub async fn get_value(&self, key: &str) -> Option<Value> {
        self.with_data(|h| h.get(key).cloned()).await
    }

    /// The value under `key`, converted through its JSON form (`as_json`).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.get_value(key).await {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => v
                .deserialize_into()
                .map(Some)
                .map_err(|source| SessionError::Value { key: key.into(), source }),
        }
    }

    /// Sets `key` to a raw value (`session[key] = value`). Setting `nil` keeps the key until the session is
    /// written, where top-level nils are dropped, as Rails does.
    pub async fn insert_value(&self, key: impl Into<String>, value: Value) {
        let key = key.into();
        self.update(|h| {
            if h.get(&key) != Some(&value) {
                h.insert(key, value);
            }
        })
        .await;
    }

    /// Sets `key` to any serde value, stored as a JSON session would store it.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), SessionError> {
        let key = key.into();
        let value = Value::from_serialize(value)
            .map_err(|source| SessionError::Value { key: key.clone(), source })?;
        self.insert_value(key, value).await;
        Ok(())
    }

    /// Removes `key` and returns its value.
    pub async fn remove(&self, key: &str) -> Option<Value> {
        self.update(|h| h.remove(key)).await
    }

    /// The `session_id`: the one the cookie carries, or a new one (32 lowercase hex characters) for a new session.
    /// Stable for the whole life of the session, until [`Session::renew`] or [`Session::clear`].
    pub async fn id(&self) -> String {
        let mut state = self.loaded().await;
        let data = state.data.get_or_insert_with(Default::default);
        match data.get("session_id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(id) => id.to_owned(),
            None => ensure_session_id(Arc::make_mut(data)),
        }
    }

    /// Whether the request carried a readable session cookie.
    pub async fn exists(&self) -> bool {
        self.loaded().await.exists
    }

    /// Whether the session changed during this request (it will then be written back).
    #[must_use]
    pub fn is_changed(&self) -> bool {
        self.state().changed
    }

    /// A new `session_id`, data kept (Warden's `renew: true` on sign-in; protects against session fixation).
    pub async fn renew(&self) {
        let mut state = self.loaded().await;
        let data = Arc::make_mut(state.data.get_or_insert_with(Default::default));
        data.remove("session_id");
        data.entries
            .insert(0, (Value::String("session_id".into()), Value::String(new_session_id())));
        state.changed = true;
    }

    /// `reset_session`: a new `session_id` and nothing else — the user, the CSRF token and the flash are gone.
    /// The cookie is written with the empty session (Rails does not delete it).
    pub async fn clear(&self) {
        let mut state = self.loaded().await;
        let mut data = Hash::new();
        data.insert("session_id", Value::String(new_session_id()));
        state.data = Some(Arc::new(data));
        state.changed = true;
    }

    /// Whether [`Session::commit`] may have anything to do (cheap: no decoding).
    pub(crate) fn needs_commit(&self) -> bool {
        let mut state = self.state();
        state.changed
            || state.rewrite
            || (self.inner.config.expire_after.is_some() && self.cookie(&mut state).is_some())
    }

    /// Commits the session at the end of the request: the `Set-Cookie` value to send, if any.
    pub(crate) async fn commit(&self) -> Result<Option<String>, StoreError> {
        let config = &self.inner.config;
        let expire_after = config.expire_after;
        // With expire_after, Rails re-sends a non-empty session on every request (sliding expiry): load it.
        if expire_after.is_some() && self.cookie(&mut self.state()).is_some() {
            drop(self.loaded().await);
        }
        let (data, origin) = {
            let mut state = self.state();
            let (exists, changed, rewrite) = (state.exists, state.changed, state.rewrite);
            if let Some(failed) = &state.failed {
                // Never overwrite a session that could not be read.
                return if changed { Err(StoreError::Backend(failed.clone())) } else { Ok(None) };
            }
            let origin = state.origin.clone();
            let Some(data) = state.data.as_mut() else { return Ok(None) };
            let sliding = expire_after.is_some() && exists && !data.is_empty();
            if !(changed || rewrite || sliding) {
                return Ok(None);
            }
            let data = Arc::make_mut(data);
            data.entries.retain(|(_, v)| !v.is_nil());
            ensure_session_id(data);
            (data.clone(), origin)
        };
        let expires = expire_after.map(|d| OffsetDateTime::now_utc() + duration(d));
        let Some(value) = config.store.save(&data, expires, origin.as_deref()).await? else {
            return Ok(None);
        };
        let host = self.inner.host.as_ref().and_then(|h| h.to_str().ok());
        Ok(Some(cookies::set_cookie(config, host, &value, expires)))
    }

    /// The per-request memo slot for type `T`.
    pub(crate) fn memo<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        let memo = self.inner.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
    }

    pub(crate) fn set_memo<T: Any + Send + Sync + Clone>(&self, value: T) {
        let mut memo = self.inner.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.retain(|(id, _)| *id != TypeId::of::<T>());
        memo.push((TypeId::of::<T>(), Arc::new(value)));
    }
}

/// Runs `f` on the loaded hash; the session counts as changed if the hash differs afterwards.
fn changing<R>(state: &mut State, f: impl FnOnce(&mut Hash) -> R) -> R {
    let data = Arc::make_mut(state.data.get_or_insert_with(Default::default));
    let before = data.clone();
    let out = f(data);
    if *data != before {
        state.changed = true;
    }
    out
}

fn duration(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Returns the `session_id`, adding a new one first in the hash if it has none.
fn ensure_session_id(data: &mut Hash) -> String {
    if let Some(id) = data.get("session_id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        return id.to_owned();
    }
    let id = new_session_id();
    data.remove("session_id");
    data.entries.insert(0, (Value::String("session_id".into()), Value::String(id.clone())));
    id
}

/// `SecureRandom.hex(16)`.
pub(crate) fn new_session_id() -> String {
    let bytes: [u8; 16] = crate::random::bytes();
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("key", &self.inner.config.key)
            .field("loaded", &state.data.is_some())
            .field("exists", &state.exists)
            .field("changed", &state.changed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CookieStore;
    use rails_cookie::{Profile, SecretKeyBase};

    fn config() -> Arc<SessionConfig> {
        Arc::new(
            SessionConfig::new(
                Profile::rails_6_1(),
                SecretKeyBase::new("k".repeat(64)).unwrap(),
                "_s",
            )
            .unwrap(),
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("cookie-store futures are ready at once")
    }

    fn cookie_for(config: &SessionConfig, h: &Hash) -> String {
        CookieStore::new(config.codec.clone(), "_s").save_now(h, None).unwrap()
    }

    #[test]
    fn untouched_session_writes_nothing() {
        let c = config();
        let mut h = Hash::new();
        h.insert("session_id", "a".repeat(32).into());
        let s = Session::new(c.clone(), Some(cookie_for(&c, &h)), None);
        assert_eq!(block_on(s.commit()).unwrap(), None);
        assert_eq!(block_on(s.get::<String>("session_id")).unwrap(), Some("a".repeat(32)));
        assert_eq!(block_on(s.commit()).unwrap(), None, "reading is not changing");
    }

    #[test]
    fn changes_keep_unknown_keys_and_the_id() {
        let c = config();
        let mut h = Hash::new();
        h.insert("session_id", "a".repeat(32).into());
        h.insert("_csrf_token", "tok".into());
        h.insert("flash", Value::Hash(Hash::new()));
        let s = Session::new(c.clone(), Some(cookie_for(&c, &h)), None);
        block_on(s.insert("counter", &1)).unwrap();
        block_on(s.insert_value("gone", Value::Nil));
        let header = block_on(s.commit()).unwrap().unwrap();
        assert!(
            header.starts_with("_s=") && header.ends_with("; path=/; HttpOnly; SameSite=Lax"),
            "{header}"
        );
        let value =
            rails_cookie::unescape(header.trim_start_matches("_s=").split(';').next().unwrap())
                .into_owned();
        let back =
            (*CookieStore::new(c.codec.clone(), "_s").load_now(&value).unwrap().data).clone();
        h.insert("counter", 1.into());
        assert_eq!(back, h);
    }

    #[test]
    fn bad_cookie_is_an_empty_session() {
        let c = config();
        let s = Session::new(c, Some("tampered--x--y".into()), None);
        assert!(!block_on(s.exists()));
        assert_eq!(block_on(s.get_value("user_id")), None);
        assert_eq!(block_on(s.commit()).unwrap(), None);
    }

    #[test]
    fn new_session_gets_an_id_first() {
        let s = Session::new(config(), None, None);
        block_on(s.insert("a", &1)).unwrap();
        let id = block_on(s.id());
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        block_on(s.with_data(|h| assert_eq!(h.entries[0].0, Value::String("session_id".into()))));
        assert_eq!(block_on(s.id()), id, "stable");
    }

    #[test]
    fn renew_and_clear() {
        let s = Session::new(config(), None, None);
        block_on(s.insert("user_id", &7)).unwrap();
        let id = block_on(s.id());
        block_on(s.renew());
        assert_ne!(block_on(s.id()), id);
        assert_eq!(block_on(s.get::<i64>("user_id")).unwrap(), Some(7));
        block_on(s.clear());
        assert_eq!(block_on(s.get::<i64>("user_id")).unwrap(), None);
        assert_eq!(block_on(s.with_data(Hash::len)), 1);
    }

    #[test]
    fn sliding_expiry_rewrites_every_request() {
        let c = Arc::new((*config()).clone().expire_after(Duration::from_secs(60)));
        let mut h = Hash::new();
        h.insert("session_id", "a".repeat(32).into());
        let s = Session::new(c.clone(), Some(cookie_for(&c, &h)), None);
        let header = block_on(s.commit()).unwrap().unwrap();
        assert!(header.contains("; expires="), "{header}");
        assert_eq!(
            block_on(Session::new(c, None, None).commit()).unwrap(),
            None,
            "no session, no cookie"
        );
    }
}
