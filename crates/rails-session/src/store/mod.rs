//! `ActionDispatch::Session::AbstractStore`: where a session lives. [`CookieStore`] keeps it in the cookie itself
//! (Rails' default); the [`SessionStore`] trait is the seam for server-side stores, whose cookie carries only an
//! id: [`ServerStore`] implements Rails' cache store (Redis, memcached), redis-store, redis-session-store and
//! activerecord-session_store.

#[cfg(feature = "database")]
mod active_record;
pub mod cache_entry;
#[cfg(any(feature = "redis", feature = "memcached", feature = "database"))]
pub(crate) mod io_thread;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisConnection;
mod server;
mod session_id;
mod settings;

pub use server::{ServerStore, StoreSerializer};
pub use session_id::SessionId;
pub use settings::{redact_url, StoreKind, StoreSettings};

use std::any::Any;

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher as _, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rails_cookie::{CookieCodec, Hash, Value};
use thread_local::ThreadLocal;
use time::OffsetDateTime;

use crate::error::StoreError;

/// A session read by a store.
#[derive(Clone)]
#[non_exhaustive]
pub struct LoadedSession {
    /// The session hash, keys stringified at the top level as Rails does on load (shared: copied on first write).
    pub data: Arc<Hash>,
    /// The cookie was read through a rotation or an older format: write it back in the current one even if the
    /// session did not change (how Rails upgrades CBC → GCM, SHA1 → SHA256, Marshal → JSON).
    pub rewrite: bool,
    /// What the store wants back at [`SessionStore::save_loaded`] (a server-side store: which id and key it read,
    /// in which format).
    pub state: Option<Arc<dyn Any + Send + Sync>>,
}

impl LoadedSession {
    /// A loaded session.
    #[must_use]
    pub fn new(data: Hash, rewrite: bool) -> Self {
        LoadedSession { data: Arc::new(data), rewrite, state: None }
    }

    /// The same, with state for [`SessionStore::save_loaded`].
    #[must_use]
    pub fn with_state(mut self, state: Arc<dyn Any + Send + Sync>) -> Self {
        self.state = Some(state);
        self
    }
}

impl PartialEq for LoadedSession {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data && self.rewrite == other.rewrite
    }
}

impl std::fmt::Debug for LoadedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSession")
            .field("data", &self.data)
            .field("rewrite", &self.rewrite)
            .field("state", &self.state.is_some())
            .finish()
    }
}

/// Loads and saves sessions. Implement it for a server-side store; the cookie store is [`CookieStore`].
///
/// ```
/// use rails_session::{rails_cookie::Hash, LoadedSession, SessionStore, StoreError};
/// use time::OffsetDateTime;
///
/// /// A store that forgets everything (a real one would talk to Redis).
/// struct Forgetful;
///
/// impl SessionStore for Forgetful {
///     async fn load(&self, _cookie_value: &str) -> Result<Option<LoadedSession>, StoreError> {
///         Ok(None)
///     }
///     async fn save(&self, _session: &Hash, _expires: Option<OffsetDateTime>) -> Result<String, StoreError> {
///         Ok("opaque-id".into())
///     }
/// }
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Reads the session the cookie value (already percent-decoded) refers to. `Ok(None)`: no such session.
    /// An error means the cookie is unusable; the session is then empty and a warning is logged.
    fn load(
        &self,
        cookie_value: &str,
    ) -> impl Future<Output = Result<Option<LoadedSession>, StoreError>> + Send;

    /// [`SessionStore::load`] for the value exactly as the browser sent it (still percent-encoded). The session
    /// layer calls this one; the default percent-decodes (as Rack does) and calls `load`. Override it to skip the
    /// decoding when the raw value is enough (the cookie store looks its decode cache up by the raw value).
    fn load_escaped(
        &self,
        escaped_cookie_value: &str,
    ) -> impl Future<Output = Result<Option<LoadedSession>, StoreError>> + Send {
        async move { self.load(&rails_cookie::unescape(escaped_cookie_value)).await }
    }

    /// Stores the session and returns the cookie value to send (not yet percent-encoded). `expires` is the
    /// cookie's expiry (`expire_after`), if any.
    fn save(
        &self,
        session: &Hash,
        expires: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// [`SessionStore::save`] at the end of a request whose session was loaded with `state` (the
    /// [`LoadedSession::state`] the load returned; `None` for a new session). `Ok(None)`: nothing was written and
    /// no cookie is to be sent (a server-side record deleted while the request ran stays deleted). The session
    /// layer calls this one; the default calls `save`.
    fn save_loaded(
        &self,
        session: &Hash,
        expires: Option<OffsetDateTime>,
        state: Option<&(dyn Any + Send + Sync)>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let _ = state;
        async move { self.save(session, expires).await.map(Some) }
    }

    /// A name for diagnostics (`cookie_store`, `cache_store`, …).
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Connects and makes one round trip, for start-up checks (`railbridge serve --check`); the default has
    /// nothing to check.
    fn check(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
}

/// The object-safe form of [`SessionStore`].
pub(crate) trait DynStore: Send + Sync + 'static {
    /// Loads from the percent-encoded value.
    fn load_dyn<'a>(
        &'a self,
        cookie_value: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoadedSession>, StoreError>>;
    fn save_dyn<'a>(
        &'a self,
        session: &'a Hash,
        expires: Option<OffsetDateTime>,
        state: Option<&'a (dyn Any + Send + Sync)>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
    fn name_dyn(&self) -> &'static str;
    fn check_dyn(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl<S: SessionStore> DynStore for S {
    fn load_dyn<'a>(
        &'a self,
        cookie_value: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoadedSession>, StoreError>> {
        Box::pin(self.load_escaped(cookie_value))
    }

    fn save_dyn<'a>(
        &'a self,
        session: &'a Hash,
        expires: Option<OffsetDateTime>,
        state: Option<&'a (dyn Any + Send + Sync)>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(self.save_loaded(session, expires, state))
    }

    fn name_dyn(&self) -> &'static str {
        self.name()
    }

    fn check_dyn(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.check())
    }
}

/// How many trailing bytes of a cookie value pick its cache bucket.
const BUCKET_BYTES: usize = 24;

/// A cookie value that is not UTF-8 cannot be a Rails cookie.
fn utf8(cookie_value: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(cookie_value).map_err(|_| {
        StoreError::Rejected(rails_cookie::Error::Malformed("the cookie value is not UTF-8"))
    })
}

/// The configured store. The cookie store's work is synchronous, so it is called directly (no boxed future on the
/// hot path); any other store goes through the object-safe [`DynStore`].
#[derive(Clone)]
pub(crate) enum Store {
    Cookie(Arc<CookieStore>),
    Other(Arc<dyn DynStore>),
}

impl Store {
    /// Loads from the percent-encoded value, as the bytes of the `Cookie` header.
    pub(crate) async fn load_escaped(
        &self,
        cookie_value: &[u8],
    ) -> Result<Option<LoadedSession>, StoreError> {
        match self {
            Store::Cookie(store) => store.load_escaped_bytes(cookie_value).map(Some),
            Store::Other(store) => store.load_dyn(utf8(cookie_value)?).await,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Store::Cookie(_) => "cookie_store",
            Store::Other(store) => store.name_dyn(),
        }
    }

    pub(crate) async fn check(&self) -> Result<(), StoreError> {
        match self {
            Store::Cookie(_) => Ok(()),
            Store::Other(store) => store.check_dyn().await,
        }
    }

    /// Saves at the end of a request; `None`: send no cookie.
    pub(crate) async fn save(
        &self,
        session: &Hash,
        expires: Option<OffsetDateTime>,
        state: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Cookie(store) => store.save_now(session, expires).map(Some),
            Store::Other(store) => store.save_dyn(session, expires, state).await,
        }
    }
}

/// `ActionDispatch::Session::CookieStore`: the whole session, encrypted (or signed) in the cookie, through a
/// [`CookieCodec`].
///
/// Decoded sessions are kept in a small in-memory cache keyed by the exact cookie value (see
/// [`CookieStore::with_decode_cache`]), so a browser that sends the same cookie again costs a hash lookup instead
/// of a decryption. An entry is only cached for as long as its envelope expiry, if any, allows.
#[derive(Clone, Debug)]
pub struct CookieStore {
    codec: Arc<CookieCodec>,
    key: String,
    cache: Option<Arc<DecodeCache>>,
}

impl CookieStore {
    /// A cookie store for the cookie named `key` (its name is also the envelope's purpose), with the default
    /// decode cache (4096 sessions, 60 s).
    #[must_use]
    pub fn new(codec: Arc<CookieCodec>, key: impl Into<String>) -> Self {
        CookieStore { codec, key: key.into(), cache: None }
            .with_decode_cache(4096, Duration::from_secs(60))
    }

    /// Sets the decode cache: at most `capacity` decoded sessions (for all threads together), each for at most
    /// `ttl` (and at most a day). `capacity` 0 turns it off (every request with a session then decrypts its
    /// cookie). Each thread keeps the sessions it decoded itself, so a cookie is decrypted once per thread that
    /// serves it, not once per process.
    #[must_use]
    pub fn with_decode_cache(mut self, capacity: usize, ttl: Duration) -> Self {
        self.cache =
            (capacity > 0 && !ttl.is_zero()).then(|| Arc::new(DecodeCache::new(capacity, ttl)));
        self
    }

    /// Decodes a cookie value (percent-decoded) synchronously.
    pub fn load_now(&self, cookie_value: &str) -> Result<LoadedSession, StoreError> {
        self.load_escaped_now(&rails_cookie::escape(cookie_value))
    }

    /// Decodes a cookie value as the browser sent it (percent-encoded) synchronously; a cached session is found
    /// without decoding anything.
    pub fn load_escaped_now(
        &self,
        escaped_cookie_value: &str,
    ) -> Result<LoadedSession, StoreError> {
        self.load_escaped_bytes(escaped_cookie_value.as_bytes())
    }

    /// [`CookieStore::load_escaped_now`] for the value's bytes: a cache hit is found without checking them.
    pub(crate) fn load_escaped_bytes(
        &self,
        escaped_cookie_value: &[u8],
    ) -> Result<LoadedSession, StoreError> {
        let Some(cache) = &self.cache else {
            let now = OffsetDateTime::now_utc();
            return self.decode_at(&rails_cookie::unescape(utf8(escaped_cookie_value)?), now);
        };
        if let Some(hit) = cache.get(escaped_cookie_value) {
            return Ok(hit);
        }
        let escaped_cookie_value = utf8(escaped_cookie_value)?;
        let now = OffsetDateTime::now_utc();
        let value = rails_cookie::unescape(escaped_cookie_value);
        // Valid at now + ttl means valid until then (expiry is a single deadline), so it may be cached that long.
        let until = now
            + time::Duration::try_from(cache.ttl + COARSE_MARGIN).unwrap_or(time::Duration::ZERO);
        match self.decode_at(&value, until) {
            Ok(loaded) => {
                cache.insert(escaped_cookie_value, &loaded);
                Ok(loaded)
            }
            Err(StoreError::Rejected(rails_cookie::Error::Expired(_))) => {
                self.decode_at(&value, now)
            }
            Err(e) => Err(e),
        }
    }

    fn decode_at(
        &self,
        cookie_value: &str,
        at: OffsetDateTime,
    ) -> Result<LoadedSession, StoreError> {
        let decoded =
            self.codec.decode_at(&self.key, cookie_value, at).map_err(StoreError::Rejected)?;
        let rewrite = decoded.rewrite;
        let data = match decoded.value {
            Value::Hash(h) => h,
            Value::UserClass { value, .. } => match *value {
                Value::Hash(h) => h,
                _ => {
                    return Err(StoreError::Rejected(rails_cookie::Error::Malformed(
                        "the session is not a Hash",
                    )))
                }
            },
            _ => {
                return Err(StoreError::Rejected(rails_cookie::Error::Malformed(
                    "the session is not a Hash",
                )))
            }
        };
        Ok(LoadedSession { data: Arc::new(stringify_keys(data)), rewrite, state: None })
    }

    /// Encodes a session synchronously.
    pub fn save_now(
        &self,
        session: &Hash,
        expires: Option<OffsetDateTime>,
    ) -> Result<String, StoreError> {
        let value = Value::Hash(session.clone());
        self.codec.encode(&self.key, &value, expires).map_err(|e| match e {
            rails_cookie::Error::Overflow { size } => StoreError::Overflow { size },
            e => StoreError::Encode(e),
        })
    }
}

/// The decode cache's clock, read on every cached lookup: the kernel's coarse monotonic clock where there is one
/// (its last tick, a few milliseconds behind: a plain memory read, where the precise clock reads the hardware
/// counter — a tenth of the cost of a lookup). Not `coarsetime::Instant::now`, which also writes a global every
/// core would share. Entries are only cached while their envelope is valid [`COARSE_MARGIN`] beyond their
/// deadline, so a clock that lags by a tick never serves an expired one.
fn coarse_now() -> coarsetime::Instant {
    coarsetime::Instant::now_without_cache_update()
}

/// The longest time an entry is kept, whatever the configuration asks (the coarse clock counts seconds in 32 bits).
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How far past an entry's deadline its envelope must still be valid: far more than the coarse clock's lag (one
/// kernel tick, at most 10 ms).
const COARSE_MARGIN: Duration = Duration::from_secs(1);

/// Decoded sessions by exact cookie value. Bounded: when full, expired entries go, and if that frees too little,
/// everything goes (amortised O(1); no entry outlives its `ttl`).
///
/// Each thread keeps its own entries (a thread that meets a cookie for the first time decodes it once): a lookup
/// then touches only memory its own core wrote, where one map shared by all threads costs two cache-line transfers
/// per request for its lock, and more for the reference count of a session that several cores are reading — a
/// cost that grows with the number of cores. The capacity is for all threads together.
///
/// Entries are bucketed by a hash of the value's last [`BUCKET_BYTES`] bytes only — the end of the GCM tag or HMAC
/// (at least 18 random base64 or hex characters even when percent-encoded), which nobody can choose for a cookie
/// that decodes, so buckets stay small — and matched by the whole value.
struct DecodeCache {
    /// One shard per thread that has cached something. The lock is only contended while another thread sweeps.
    shards: ThreadLocal<Padded>,
    /// Per-process, so bucket numbers cannot be predicted from outside.
    seed: u64,
    /// Entries in all shards; changed by the exact difference under the shard's lock.
    len: AtomicUsize,
    capacity: usize,
    ttl: Duration,
}

type Shard = HashMap<u64, Vec<Entry>, BuildHasherDefault<BucketHasher>>;

/// A shard on cache lines of its own: `ThreadLocal` keeps the threads' values side by side, and two locks on one
/// line would make the cores fight over it all the same (two lines, for CPUs that fetch lines in pairs).
#[repr(align(128))]
#[derive(Default)]
struct Padded(Mutex<Shard>);

struct Entry {
    cookie_value: Box<str>,
    /// On the [`coarse_now`] clock.
    until: coarsetime::Instant,
    loaded: LoadedSession,
}

fn lock(shard: &Padded) -> MutexGuard<'_, Shard> {
    // A panic while holding the lock cannot leave a half-made entry: the map is still valid.
    shard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DecodeCache {
    fn new(capacity: usize, ttl: Duration) -> Self {
        let ttl = ttl.min(MAX_TTL);
        DecodeCache {
            shards: ThreadLocal::new(),
            seed: RandomState::new().hash_one(0x5eed_u64),
            len: AtomicUsize::new(0),
            capacity,
            ttl,
        }
    }

    /// A multiply-rotate fold of the value's tail, seeded. No SipHash needed: entries exist only for cookies that
    /// decoded, whose tails (tag or HMAC) nobody can choose, and a crafted lookup costs at most one bucket's
    /// comparisons.
    fn bucket(&self, cookie_value: &[u8]) -> u64 {
        let tail = &cookie_value[cookie_value.len().saturating_sub(BUCKET_BYTES)..];
        tail.chunks(8).fold(self.seed, |h, chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
        })
    }

    fn get(&self, cookie_value: &[u8]) -> Option<LoadedSession> {
        let bucket = self.bucket(cookie_value);
        let shard = lock(self.shards.get()?);
        let entry =
            shard.get(&bucket)?.iter().find(|e| e.cookie_value.as_bytes() == cookie_value)?;
        (coarse_now() < entry.until).then(|| entry.loaded.clone())
    }

    fn insert(&self, cookie_value: &str, loaded: &LoadedSession) {
        let bucket = self.bucket(cookie_value.as_bytes());
        let now = coarse_now();
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            self.sweep(now);
        }
        let mut shard = lock(self.shards.get_or(Padded::default));
        let list = shard.entry(bucket).or_default();
        let before = list.len();
        list.retain(|e| &*e.cookie_value != cookie_value);
        let replaced = before - list.len();
        list.push(Entry {
            cookie_value: Box::from(cookie_value),
            until: now + coarsetime::Duration::from(self.ttl),
            loaded: loaded.clone(),
        });
        if replaced == 0 {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops the expired entries of every thread; if more than half the capacity is still live, drops them all.
    /// One shard locked at a time, never two.
    fn sweep(&self, now: coarsetime::Instant) {
        let mut live = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            let mut removed = 0;
            shard.retain(|_, list| {
                let before = list.len();
                list.retain(|e| now < e.until);
                removed += before - list.len();
                live += list.len();
                !list.is_empty()
            });
            self.len.fetch_sub(removed, Ordering::Relaxed);
        }
        if live > self.capacity / 2 {
            for shard in &self.shards {
                let mut shard = lock(shard);
                let removed: usize = shard.values().map(Vec::len).sum();
                shard.clear();
                self.len.fetch_sub(removed, Ordering::Relaxed);
            }
        }
    }
}

/// The map's own hasher passes the bucket number through: it already is a seeded hash, hashing it again would be
/// wasted work on every lookup.
#[derive(Default)]
struct BucketHasher(u64);

impl Hasher for BucketHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; fold anything else in rather than lose it.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SessionStore for CookieStore {
    fn load(
        &self,
        cookie_value: &str,
    ) -> impl Future<Output = Result<Option<LoadedSession>, StoreError>> + Send {
        std::future::ready(self.load_now(cookie_value).map(Some))
    }

    fn load_escaped(
        &self,
        escaped_cookie_value: &str,
    ) -> impl Future<Output = Result<Option<LoadedSession>, StoreError>> + Send {
        std::future::ready(self.load_escaped_now(escaped_cookie_value).map(Some))
    }

    fn save(
        &self,
        session: &Hash,
        expires: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send {
        std::future::ready(self.save_now(session, expires))
    }
}

/// `Hash#stringify_keys` on the top level: Symbol keys (Marshal sessions) become Strings.
fn stringify_keys(mut data: Hash) -> Hash {
    for (k, _) in &mut data.entries {
        if let Value::Symbol(s) = k {
            *k = Value::String(std::mem::take(s));
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use rails_cookie::{Profile, SecretKeyBase};

    fn store() -> CookieStore {
        let codec =
            CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new("k".repeat(64)).unwrap())
                .unwrap();
        CookieStore::new(Arc::new(codec), "_app_session")
    }

    #[test]
    fn round_trip_and_rejection() {
        let s = store();
        let mut h = Hash::new();
        h.insert("session_id", "0".repeat(32).into());
        let v = s.save_now(&h, None).unwrap();
        assert_eq!(s.load_now(&v).unwrap(), LoadedSession::new(h.clone(), false));
        assert_eq!(s.load_now(&v).unwrap(), LoadedSession::new(h, false), "from the cache");
        assert!(matches!(s.load_now("garbage"), Err(StoreError::Rejected(_))));
    }

    #[test]
    fn the_cache_matches_whole_values_only() {
        let s = store();
        let mut h = Hash::new();
        h.insert("session_id", "0".repeat(32).into());
        let v = rails_cookie::escape(&s.save_now(&h, None).unwrap());
        assert!(s.load_escaped_now(&v).is_ok());
        // Same tail (same bucket), different head: compared in full, then decoded, and rejected.
        // The first character is random (the IV): replace it with another.
        let other = if v.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{other}{}", &v[1..]);
        assert_ne!(forged, v);
        assert!(matches!(s.load_escaped_now(&forged), Err(StoreError::Rejected(_))));
        let mut bytes = v.clone().into_bytes();
        bytes[0] = 0xff;
        assert!(matches!(
            s.load_escaped_bytes(&bytes),
            Err(StoreError::Rejected(rails_cookie::Error::Malformed(_)))
        ));
        assert!(s.load_escaped_bytes(v.as_bytes()).is_ok(), "still cached");
    }

    #[test]
    fn overflow_is_its_own_error() {
        let s = store();
        let mut h = Hash::new();
        h.insert("blob", "x".repeat(3000).into());
        assert!(matches!(s.save_now(&h, None), Err(StoreError::Overflow { .. })));
    }

    #[test]
    fn the_cache_never_outlives_the_envelope_expiry() {
        let s = store();
        let mut h = Hash::new();
        h.insert("session_id", "0".repeat(32).into());
        // Expires in 2 s: valid now, but not for the cache's 60 s, so it is not cached.
        let soon =
            s.save_now(&h, Some(OffsetDateTime::now_utc() + time::Duration::seconds(2))).unwrap();
        assert!(s.load_now(&soon).is_ok());
        assert!(s.cache.as_ref().unwrap().get(rails_cookie::escape(&soon).as_bytes()).is_none());
        // Valid for the 60 s, but not for the margin that covers the coarse clock's lag: not cached either.
        let edge = s
            .save_now(&h, Some(OffsetDateTime::now_utc() + time::Duration::milliseconds(60_400)))
            .unwrap();
        assert!(s.load_now(&edge).is_ok());
        assert!(s.cache.as_ref().unwrap().get(rails_cookie::escape(&edge).as_bytes()).is_none());
        let later =
            s.save_now(&h, Some(OffsetDateTime::now_utc() + time::Duration::hours(1))).unwrap();
        assert!(s.load_now(&later).is_ok());
        assert!(s.cache.as_ref().unwrap().get(rails_cookie::escape(&later).as_bytes()).is_some());
        let gone =
            s.save_now(&h, Some(OffsetDateTime::now_utc() - time::Duration::seconds(1))).unwrap();
        assert!(matches!(
            s.load_now(&gone),
            Err(StoreError::Rejected(rails_cookie::Error::Expired(_)))
        ));
    }

    #[test]
    fn values_are_percent_decoded_as_rack_does() {
        let s = store();
        let mut h = Hash::new();
        let v = loop {
            h.insert("session_id", new_id().into());
            let v = s.save_now(&h, None).unwrap();
            if v.contains('+') {
                break v;
            }
        };
        assert!(s.load_escaped_now(&rails_cookie::escape(&v)).is_ok());
        // A literal `+` is a space to Rack, so an unescaped base64 value with `+` does not decode.
        assert!(matches!(s.load_escaped_now(&v), Err(StoreError::Rejected(_))));
    }

    fn new_id() -> String {
        crate::session::new_session_id()
    }

    #[test]
    fn the_cache_is_bounded() {
        let s = store().with_decode_cache(4, Duration::from_secs(60));
        let mut h = Hash::new();
        for i in 0..20 {
            h.insert("i", Value::Integer(i));
            let v = s.save_now(&h, None).unwrap();
            s.load_now(&v).unwrap();
            assert!(s.cache.as_ref().unwrap().len.load(Ordering::Relaxed) <= 4);
        }
    }

    #[test]
    fn each_thread_caches_its_own_and_the_capacity_is_for_all() {
        let s = Arc::new(store().with_decode_cache(6, Duration::from_secs(60)));
        let mut h = Hash::new();
        h.insert("user_id", Value::Integer(1));
        let v = rails_cookie::escape(&s.save_now(&h, None).unwrap());
        s.load_escaped_now(&v).unwrap();
        let cache = s.cache.clone().unwrap();
        assert!(cache.get(v.as_bytes()).is_some());
        let (other, value) = (cache.clone(), v.clone());
        let missed =
            std::thread::spawn(move || other.get(value.as_bytes()).is_none()).join().unwrap();
        assert!(missed, "another thread's entries are not shared");
        for t in 0..3 {
            let (s, mut h) = (s.clone(), h.clone());
            std::thread::spawn(move || {
                for i in 0..5 {
                    h.insert("i", Value::Integer(t * 10 + i));
                    let v = s.save_now(&h, None).unwrap();
                    assert_eq!(
                        s.load_now(&v).unwrap().data.get("i"),
                        Some(&Value::Integer(t * 10 + i))
                    );
                    assert!(s.cache.as_ref().unwrap().len.load(Ordering::Relaxed) <= 6);
                }
            })
            .join()
            .unwrap();
        }
        let counted: usize = cache
            .shards
            .iter()
            .map(|shard| lock(shard).values().map(Vec::len).sum::<usize>())
            .sum();
        assert_eq!(counted, cache.len.load(Ordering::Relaxed));
    }

    #[test]
    fn symbol_keys_are_stringified() {
        let mut h = Hash::new();
        h.insert_value(Value::Symbol("user_id".into()), 1.into());
        let h = stringify_keys(h);
        assert_eq!(h.entries[0].0, Value::String("user_id".into()));
    }
}
