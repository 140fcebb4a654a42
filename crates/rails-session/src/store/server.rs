//! What every server-side store shares (Rack's `PersistedSecure` stores, spec §1): the cookie carries only the public
//! session id; the record lives under the private id (read under either); nothing is read before the session is
//! used; nothing is created for an id the store does not know; a record is written only when the Rust side
//! changed the session (or `expire_after` asks for a sliding expiry); renew and reset delete the old record; and
//! a record deleted after it was loaded is never written back (CVE-2026-126076), so a sign-out at Rails cannot be
//! undone by a Rust request that was in flight.
//!
//! The backends (Redis, memcached, a SQL table) only move bytes; the record formats are [`RecordCodec`]s.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::future::BoxFuture;
use rails_cookie::{Hash, Serializer, Value};
use time::OffsetDateTime;

use super::cache_entry::{self, EntryFormat, Stamp};
use super::session_id::SessionId;
use super::{LoadedSession, SessionStore};
use crate::error::StoreError;

/// How a write treats a record that may have disappeared since it was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Put<'a> {
    /// A new record (a new id: nobody else knows it).
    New,
    /// Only while the record loaded from `loaded_from` (or `key` itself) still exists: atomically where the
    /// backend allows it (Redis: a script; memcached: `replace`; SQL: `UPDATE … WHERE`).
    IfPresent {
        /// The key the session was read from (the public-id key for a record from before the private ids).
        loaded_from: &'a str,
    },
}

/// A backend failure: the store is down, slow, or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BackendError(pub(crate) String);

impl BackendError {
    #[cfg_attr(not(any(feature = "memcached", feature = "database", test)), allow(dead_code))]
    pub(crate) fn new(what: impl fmt::Display) -> Self {
        BackendError(what.to_string())
    }
}

/// Moves record bytes to and from one kind of server.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The record under `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>>;
    /// Writes `value` under `key` with the TTL; `false` when [`Put::IfPresent`] found the record gone.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        put: Put<'a>,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;
    /// Deletes the keys (missing ones are fine).
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Connects and answers one round trip (for `railbridge serve --check`).
    fn check(&self) -> BoxFuture<'_, Result<(), BackendError>>;
}

/// Where a store keeps a session's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyScheme {
    /// `ActionDispatch::Session::CacheStore`: `"#{namespace}:_session_id:#{id}"` (no namespace: no prefix).
    Cache { namespace: Option<String> },
    /// redis-actionpack (`:redis_store`): `"#{namespace}:#{id}"`, namespace `rack:session` by default.
    RedisStore { namespace: String },
    /// redis-session-store: `"#{key_prefix}#{id}"`, a plain concatenation.
    Prefix(String),
    /// activerecord-session_store: the `session_id` column holds the id itself.
    Column,
}

impl KeyScheme {
    pub(crate) fn key(&self, id: &str) -> String {
        match self {
            KeyScheme::Cache { namespace: Some(ns) } => format!("{ns}:_session_id:{id}"),
            KeyScheme::Cache { namespace: None } => format!("_session_id:{id}"),
            KeyScheme::RedisStore { namespace } => format!("{namespace}:{id}"),
            KeyScheme::Prefix(prefix) => format!("{prefix}{id}"),
            KeyScheme::Column => id.to_owned(),
        }
    }
}

/// How a session store's serializer option writes the hash (redis-session-store's and activerecord-session_store's
/// `serializer:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSerializer {
    /// `:marshal`, the default of both gems.
    Marshal,
    /// `:json`.
    Json,
    /// `:hybrid`: reads Marshal and JSON, writes JSON.
    Hybrid,
}

impl StoreSerializer {
    /// `marshal`, `json`, `hybrid`.
    #[must_use]
    pub fn parse(name: &str) -> Option<StoreSerializer> {
        match name.trim().trim_start_matches(':') {
            "marshal" => Some(StoreSerializer::Marshal),
            "json" => Some(StoreSerializer::Json),
            "hybrid" => Some(StoreSerializer::Hybrid),
            _ => None,
        }
    }
}

/// How a session hash becomes a record's bytes, per store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordCodec {
    /// An `ActiveSupport::Cache::Entry` (cache_store); new records in this format, existing ones in theirs.
    CacheEntry(EntryFormat),
    /// `Marshal.dump(hash)` (redis-store).
    Marshal,
    /// The raw serialized hash (redis-session-store).
    Raw(StoreSerializer),
    /// The `data` column (activerecord-session_store): base64 Marshal with 60-character lines, or
    /// `{"value": hash}` JSON.
    Column(StoreSerializer),
}

/// How the record that was read is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteBack {
    Entry(EntryFormat),
    AsConfigured,
}

impl RecordCodec {
    fn decode(
        self,
        bytes: &[u8],
        max_size: usize,
        now: f64,
    ) -> Result<Option<(Hash, WriteBack)>, String> {
        let (value, write_back) = match self {
            RecordCodec::CacheEntry(_) => {
                let entry = cache_entry::decode(bytes, max_size).map_err(|e| e.to_string())?;
                if entry.is_expired(now) {
                    return Ok(None);
                }
                (entry.value, WriteBack::Entry(entry.format))
            }
            RecordCodec::Marshal => (marshal(bytes)?, WriteBack::AsConfigured),
            RecordCodec::Raw(serializer) => {
                let value = match (serializer, bytes) {
                    (StoreSerializer::Marshal | StoreSerializer::Hybrid, [4, 8, ..]) => {
                        marshal(bytes)?
                    }
                    (StoreSerializer::Json | StoreSerializer::Hybrid, _) => json(bytes)?,
                    (StoreSerializer::Marshal, _) => return Err("the record is not Marshal".into()),
                };
                (value, WriteBack::AsConfigured)
            }
            RecordCodec::Column(serializer) => {
                let text =
                    std::str::from_utf8(bytes).map_err(|_| "the data column is not UTF-8")?;
                let is_marshal = text.starts_with("BAh");
                let value = match (serializer, is_marshal) {
                    (StoreSerializer::Marshal | StoreSerializer::Hybrid, true)
                    | (StoreSerializer::Marshal, false) => {
                        let compact: Vec<u8> =
                            bytes.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
                        // Ruby's decode64 is lenient about padding; the gem's data is always padded.
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(compact)
                            .map_err(|_| "the data column is not base64")?;
                        marshal(&raw)?
                    }
                    (StoreSerializer::Json | StoreSerializer::Hybrid, _) => {
                        // `JSON.parse(v).with_indifferent_access[:value]`.
                        let wrapper = json(bytes)?;
                        wrapper
                            .as_hash()
                            .and_then(|h| h.get("value"))
                            .cloned()
                            .unwrap_or(Value::Nil)
                    }
                };
                (value, WriteBack::AsConfigured)
            }
        };
        let hash = match value {
            Value::Hash(h) => h,
            Value::UserClass { value, .. } => match *value {
                Value::Hash(h) => h,
                _ => return Err("the session is not a Hash".into()),
            },
            // activerecord-session_store: a nil `value` is an empty session.
            Value::Nil => Hash::new(),
            _ => return Err("the session is not a Hash".into()),
        };
        Ok(Some((hash, write_back)))
    }

    fn encode(
        self,
        hash: &Hash,
        write_back: Option<WriteBack>,
        stamp: Stamp,
    ) -> Result<Vec<u8>, String> {
        let value = Value::Hash(hash.clone());
        let err = |e: rails_cookie::Error| e.to_string();
        match self {
            RecordCodec::CacheEntry(configured) => {
                let format = match write_back {
                    Some(WriteBack::Entry(read)) => read,
                    _ => configured,
                };
                cache_entry::encode(&value, format, stamp).map_err(|e| e.to_string())
            }
            RecordCodec::Marshal | RecordCodec::Raw(StoreSerializer::Marshal) => {
                Serializer::Marshal.dump(&value).map_err(err)
            }
            RecordCodec::Raw(_) => Serializer::Json.dump(&value).map_err(err),
            RecordCodec::Column(StoreSerializer::Marshal) => {
                Ok(encode64(&Serializer::Marshal.dump(&value).map_err(err)?).into_bytes())
            }
            RecordCodec::Column(_) => {
                let mut wrapper = Hash::new();
                wrapper.insert("value", value);
                Serializer::Json.dump(&Value::Hash(wrapper)).map_err(err)
            }
        }
    }
}

/// Ruby's `Base64.encode64`: RFC 2045 lines of 60 characters, each ending in `\n`.
fn encode64(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for line in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn marshal(bytes: &[u8]) -> Result<Value, String> {
    if !bytes.starts_with(&[4, 8]) {
        return Err("the record is not Marshal 4.8".into());
    }
    Serializer::Marshal.load(bytes).map(|(v, _)| v).map_err(|e| e.to_string())
}

fn json(bytes: &[u8]) -> Result<Value, String> {
    Serializer::Json.load(bytes).map(|(v, _)| v).map_err(|e| e.to_string())
}

/// What a load remembers for the write at the end of the request.
#[derive(Debug)]
struct Origin {
    id: SessionId,
    /// The key the record was read from.
    loaded_from: String,
    write_back: WriteBack,
}

/// Knobs shared by every server-side store.
#[derive(Clone, Debug)]
pub(crate) struct ServerOptions {
    /// `expire_after`: the record's TTL (and the cookie's expiry).
    pub(crate) expire_after: Option<Duration>,
    /// The largest record read or written (inflated).
    pub(crate) max_size: usize,
    /// Also read records keyed by the public id (written before the private ids). activerecord-session_store's
    /// `secure_session_only: true` turns this off.
    pub(crate) read_public_key: bool,
}

/// A server-side session store: one backend, one key scheme, one record format. Cheap to clone (clones share the
/// connections). Build it with [`crate::StoreSettings::build`], or let [`crate::SessionConfig::from_env`] do it.
#[derive(Clone)]
pub struct ServerStore {
    name: &'static str,
    backend: Arc<dyn Backend>,
    keys: KeyScheme,
    codec: RecordCodec,
    options: ServerOptions,
}

impl fmt::Debug for ServerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStore")
            .field("store", &self.name)
            .field("keys", &self.keys)
            .field("codec", &self.codec)
            .field("expire_after", &self.options.expire_after)
            .finish_non_exhaustive()
    }
}

impl ServerStore {
    pub(crate) fn new(
        name: &'static str,
        backend: Arc<dyn Backend>,
        keys: KeyScheme,
        codec: RecordCodec,
        options: ServerOptions,
    ) -> Self {
        ServerStore { name, backend, keys, codec, options }
    }

    /// The Rails name of the store (`cache_store`, `redis_store`, `redis_session_store`, `active_record_store`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Connects and makes one round trip: `Ok` when the store answers (for `railbridge serve --check`).
    pub async fn check(&self) -> Result<(), StoreError> {
        self.backend.check().await.map_err(|e| self.failed("check", &e))
    }

    /// The key a public id's record is written under (for diagnostics and tests).
    #[must_use]
    pub fn record_key(&self, public_id: &str) -> String {
        self.keys.key(SessionId::new(public_id.to_owned()).private_id())
    }

    fn failed(&self, op: &'static str, e: &BackendError) -> StoreError {
        metrics::counter!("rails_session_store_errors_total", "store" => self.name, "op" => op)
            .increment(1);
        tracing::error!(store = self.name, op, error = %e, "the session store failed");
        StoreError::Backend(format!("{}: {op}: {e}", self.name))
    }

    fn round_trip(&self, op: &'static str) {
        metrics::counter!("rails_session_store_operations_total", "store" => self.name, "op" => op)
            .increment(1);
    }

    fn ttl(&self) -> Option<Duration> {
        self.options.expire_after
    }

    fn stamp(&self) -> Stamp {
        Stamp { now: now_f64(), expires_in: self.ttl().map(|d| d.as_secs_f64()) }
    }

    async fn load_id(&self, cookie_value: &str) -> Result<Option<LoadedSession>, StoreError> {
        let Some(id) = SessionId::from_cookie(cookie_value) else { return Ok(None) };
        let mut keys = vec![self.keys.key(id.private_id())];
        if self.options.read_public_key {
            keys.push(self.keys.key(id.public_id()));
        }
        for key in keys {
            self.round_trip("get");
            let Some(bytes) = self.backend.get(&key).await.map_err(|e| self.failed("get", &e))?
            else {
                continue;
            };
            if bytes.len() > self.options.max_size {
                tracing::warn!(
                    store = self.name,
                    size = bytes.len(),
                    "ignoring a session record above the size limit"
                );
                return Ok(None);
            }
            match self.codec.decode(&bytes, self.options.max_size, now_f64()) {
                Ok(Some((mut data, write_back))) => {
                    // The hash never holds the id; the session sees it as Rails' `session.id` does.
                    data.remove("session_id");
                    data.entries
                        .insert(0, ("session_id".into(), Value::String(id.public_id().to_owned())));
                    let origin = Origin { id: id.clone(), loaded_from: key, write_back };
                    return Ok(Some(LoadedSession::new(data, false).with_state(Arc::new(origin))));
                }
                // Expired: a miss, as in Rails (its TTL removes it).
                Ok(None) => return Ok(None),
                Err(why) => {
                    // A record no Rails would read either: a new session, never a 503.
                    tracing::warn!(store = self.name, error = %why, "ignoring an unreadable session record");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    async fn save_with(
        &self,
        session: &Hash,
        origin: Option<&Origin>,
    ) -> Result<Option<String>, StoreError> {
        let id = session.get("session_id").and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut data = session.clone();
        data.remove("session_id");
        let stamp = self.stamp();
        let encode = |write_back| {
            let bytes = self
                .codec
                .encode(&data, write_back, stamp)
                .map_err(|e| StoreError::Record(format!("{}: {e}", self.name)))?;
            if bytes.len() > self.options.max_size {
                // Like CookieOverflow: a 500 for the request that made it, not the store's fault.
                return Err(StoreError::Record(format!(
                    "{}: the session record is {} bytes, above the limit of {}",
                    self.name,
                    bytes.len(),
                    self.options.max_size
                )));
            }
            Ok(bytes)
        };
        match (origin, id) {
            // The same session as loaded: written back where it was, only if it is still there.
            (Some(origin), Some(id)) if id == origin.id.public_id() => {
                let key = self.keys.key(origin.id.private_id());
                let bytes = encode(Some(origin.write_back))?;
                self.round_trip("put");
                let put = Put::IfPresent { loaded_from: &origin.loaded_from };
                let stored = self
                    .backend
                    .put(&key, bytes, self.ttl(), put)
                    .await
                    .map_err(|e| self.failed("put", &e))?;
                if !stored {
                    metrics::counter!("rails_session_store_deleted_while_loaded_total", "store" => self.name)
                        .increment(1);
                    tracing::info!(
                        store = self.name,
                        "the session was deleted during this request (signed out elsewhere): not written back"
                    );
                    return Ok(None);
                }
                Ok(Some(id.to_owned()))
            }
            // Renewed or reset (or a new session): the old record goes, the data moves to a new id.
            (origin, id) => {
                if let Some(origin) = origin {
                    let old = vec![
                        self.keys.key(origin.id.private_id()),
                        self.keys.key(origin.id.public_id()),
                    ];
                    self.round_trip("delete");
                    self.backend.delete(&old).await.map_err(|e| self.failed("delete", &e))?;
                }
                // An id the session layer made (never one a client chose: a load that found nothing keeps none).
                let id = match id {
                    Some(id) if origin.is_some() || SessionId::from_cookie(id).is_some() => {
                        SessionId::new(id.to_owned())
                    }
                    _ => SessionId::generate(),
                };
                let bytes = encode(origin.map(|o| o.write_back))?;
                self.round_trip("put");
                self.backend
                    .put(&self.keys.key(id.private_id()), bytes, self.ttl(), Put::New)
                    .await
                    .map_err(|e| self.failed("put", &e))?;
                Ok(Some(id.public_id().to_owned()))
            }
        }
    }
}

fn now_f64() -> f64 {
    #[allow(clippy::cast_precision_loss)]
    // nanoseconds since 1970 as Ruby's Float: microsecond precision
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as f64;
    nanos / 1e9
}

impl SessionStore for ServerStore {
    async fn load(&self, cookie_value: &str) -> Result<Option<LoadedSession>, StoreError> {
        self.load_id(cookie_value).await
    }

    async fn save(
        &self,
        session: &Hash,
        _expires: Option<OffsetDateTime>,
    ) -> Result<String, StoreError> {
        Ok(self.save_with(session, None).await?.unwrap_or_default())
    }

    async fn save_loaded(
        &self,
        session: &Hash,
        _expires: Option<OffsetDateTime>,
        state: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<Option<String>, StoreError> {
        let origin = state.and_then(|s| s.downcast_ref::<Origin>());
        self.save_with(session, origin).await
    }

    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<(), StoreError> {
        ServerStore::check(self).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A stored value and its TTL.
    pub(crate) type Record = (Vec<u8>, Option<Duration>);

    /// A backend in memory; `down` makes every call fail.
    #[derive(Default)]
    pub(crate) struct Memory {
        pub(crate) records: Mutex<HashMap<String, Record>>,
        pub(crate) down: std::sync::atomic::AtomicBool,
    }

    impl Memory {
        fn check_up(&self) -> Result<(), BackendError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                Err(BackendError::new("connection refused"))
            } else {
                Ok(())
            }
        }
    }

    impl Backend for Memory {
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
            Box::pin(async move {
                self.check_up()?;
                Ok(self.records.lock().unwrap().get(key).map(|(v, _)| v.clone()))
            })
        }
        fn put<'a>(
            &'a self,
            key: &'a str,
            value: Vec<u8>,
            ttl: Option<Duration>,
            put: Put<'a>,
        ) -> BoxFuture<'a, Result<bool, BackendError>> {
            Box::pin(async move {
                self.check_up()?;
                let mut records = self.records.lock().unwrap();
                if let Put::IfPresent { loaded_from } = put {
                    if !records.contains_key(loaded_from) && !records.contains_key(key) {
                        return Ok(false);
                    }
                }
                records.insert(key.to_owned(), (value, ttl));
                Ok(true)
            })
        }
        fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
            Box::pin(async move {
                self.check_up()?;
                let mut records = self.records.lock().unwrap();
                for k in keys {
                    records.remove(k);
                }
                Ok(())
            })
        }
        fn check(&self) -> BoxFuture<'_, Result<(), BackendError>> {
            Box::pin(async move { self.check_up() })
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("the memory backend is ready at once")
    }

    const PUBLIC: &str = "0123456789abcdef0123456789abcdef";
    const PRIVATE_KEY: &str =
        "myapp:_session_id:2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";

    fn store(codec: RecordCodec, keys: KeyScheme) -> (ServerStore, Arc<Memory>) {
        let memory = Arc::new(Memory::default());
        let options = ServerOptions {
            expire_after: Some(Duration::from_secs(3600)),
            max_size: 1 << 20,
            read_public_key: true,
        };
        (ServerStore::new("cache_store", memory.clone(), keys, codec, options), memory)
    }

    fn store_with_limit(codec: RecordCodec, max_size: usize) -> (ServerStore, Arc<Memory>) {
        let memory = Arc::new(Memory::default());
        let options = ServerOptions { expire_after: None, max_size, read_public_key: true };
        let keys = KeyScheme::RedisStore { namespace: "rack:session".into() };
        (ServerStore::new("redis_store", memory.clone(), keys, codec, options), memory)
    }

    fn cache() -> (ServerStore, Arc<Memory>) {
        store(
            RecordCodec::CacheEntry(EntryFormat::F71),
            KeyScheme::Cache { namespace: Some("myapp".into()) },
        )
    }

    fn d() -> Hash {
        let bytes = hex::decode(super::super::cache_entry::tests::MARSHAL_D).unwrap();
        match Serializer::Marshal.load(&bytes).unwrap().0 {
            Value::Hash(h) => h,
            _ => unreachable!(),
        }
    }

    fn put_raw(memory: &Memory, key: &str, bytes: Vec<u8>) {
        memory.records.lock().unwrap().insert(key.into(), (bytes, None));
    }

    #[test]
    fn reads_the_private_key_of_the_spec_vector_in_the_format_it_was_written() {
        let (store, memory) = cache();
        assert_eq!(store.record_key(PUBLIC), PRIVATE_KEY);
        let f70 = cache_entry::encode(
            &Value::Hash(d()),
            EntryFormat::F70,
            Stamp { now: 4e9, expires_in: None },
        )
        .unwrap();
        put_raw(&memory, PRIVATE_KEY, f70);
        let loaded = block_on(store.load(PUBLIC)).unwrap().unwrap();
        assert_eq!(loaded.data.entries[0].1, Value::String(PUBLIC.into()));
        assert_eq!(loaded.data.get("warden.user.user.key"), d().get("warden.user.user.key"));
        // Written back in F70 (what was read), not the configured F71, and without the session_id.
        let mut changed = (*loaded.data).clone();
        changed.insert("counter", 1.into());
        let cookie =
            block_on(store.save_loaded(&changed, None, loaded.state.as_deref())).unwrap().unwrap();
        assert_eq!(cookie, PUBLIC);
        let bytes = memory.records.lock().unwrap()[PRIVATE_KEY].0.clone();
        assert_eq!(bytes[0], 0x00);
        assert_ne!(bytes[1], 0x11);
        let back = cache_entry::decode(&bytes, 1 << 20).unwrap().value;
        let back = back.as_hash().unwrap();
        assert!(back.get("session_id").is_none());
        assert_eq!(back.get("counter"), Some(&Value::Integer(1)));
    }

    #[test]
    fn a_record_deleted_after_loading_is_never_written_back() {
        let (store, memory) = cache();
        put_raw(
            &memory,
            PRIVATE_KEY,
            cache_entry::encode(
                &Value::Hash(d()),
                EntryFormat::F71,
                Stamp { now: 4e9, expires_in: None },
            )
            .unwrap(),
        );
        let loaded = block_on(store.load(PUBLIC)).unwrap().unwrap();
        // Rails signs the user out meanwhile.
        memory.records.lock().unwrap().clear();
        let mut changed = (*loaded.data).clone();
        changed.insert("counter", 1.into());
        assert_eq!(
            block_on(store.save_loaded(&changed, None, loaded.state.as_deref())).unwrap(),
            None
        );
        assert!(memory.records.lock().unwrap().is_empty(), "nothing brought back");
    }

    #[test]
    fn legacy_public_key_records_are_read_and_moved_to_the_private_key() {
        let (store, memory) = cache();
        let public_key = format!("myapp:_session_id:{PUBLIC}");
        put_raw(
            &memory,
            &public_key,
            cache_entry::encode(
                &Value::Hash(d()),
                EntryFormat::F61,
                Stamp { now: 4e9, expires_in: None },
            )
            .unwrap(),
        );
        let loaded = block_on(store.load(PUBLIC)).unwrap().unwrap();
        let mut changed = (*loaded.data).clone();
        changed.insert("x", 1.into());
        block_on(store.save_loaded(&changed, None, loaded.state.as_deref())).unwrap().unwrap();
        let records = memory.records.lock().unwrap();
        let (bytes, ttl) = &records[PRIVATE_KEY];
        assert_eq!(*ttl, Some(Duration::from_secs(3600)));
        assert_eq!(cache_entry::decode(bytes, 1 << 20).unwrap().format, EntryFormat::F61);
        assert!(records.contains_key(&public_key), "left to expire, as Rails leaves it");
    }

    #[test]
    fn unknown_ids_create_nothing_and_a_write_gets_a_fresh_id() {
        let (store, memory) = cache();
        assert!(block_on(store.load(PUBLIC)).unwrap().is_none());
        assert!(block_on(store.load("2::3eb1bd43")).unwrap().is_none());
        assert!(memory.records.lock().unwrap().is_empty());
        // The session layer writes a session that was never loaded: a new id, never the client's.
        let mut h = Hash::new();
        h.insert("session_id", Value::String(PUBLIC.into()));
        h.insert("a", 1.into());
        let id = block_on(store.save_loaded(&h, None, None)).unwrap().unwrap();
        assert_eq!(id, PUBLIC, "an id the session layer generated is kept");
        let mut h = Hash::new();
        h.insert("session_id", Value::String("2::evil".into()));
        let id = block_on(store.save_loaded(&h, None, None)).unwrap().unwrap();
        assert_ne!(id, "2::evil");
        assert_eq!(id.len(), 32);
    }

    #[test]
    fn renew_and_reset_delete_both_old_keys() {
        let (store, memory) = cache();
        put_raw(
            &memory,
            PRIVATE_KEY,
            cache_entry::encode(
                &Value::Hash(d()),
                EntryFormat::F71,
                Stamp { now: 4e9, expires_in: None },
            )
            .unwrap(),
        );
        put_raw(&memory, &format!("myapp:_session_id:{PUBLIC}"), vec![1]);
        let loaded = block_on(store.load(PUBLIC)).unwrap().unwrap();
        let mut renewed = (*loaded.data).clone();
        renewed.insert("session_id", Value::String("f".repeat(32)));
        let id =
            block_on(store.save_loaded(&renewed, None, loaded.state.as_deref())).unwrap().unwrap();
        assert_eq!(id, "f".repeat(32));
        let records = memory.records.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert!(records.contains_key(&store.record_key(&id)));
    }

    #[test]
    fn a_store_that_is_down_is_an_error_never_an_empty_session() {
        let (store, memory) = cache();
        memory.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(block_on(store.load(PUBLIC)), Err(StoreError::Backend(_))));
        assert!(matches!(block_on(store.check()), Err(StoreError::Backend(_))));
    }

    #[test]
    fn unreadable_oversized_and_expired_records_are_misses() {
        let (store, memory) = cache();
        put_raw(&memory, PRIVATE_KEY, b"garbage".to_vec());
        assert!(block_on(store.load(PUBLIC)).unwrap().is_none());
        let (small, small_memory) = store_with_limit(RecordCodec::Marshal, 64);
        let marshal = hex::decode(super::super::cache_entry::tests::MARSHAL_D).unwrap();
        put_raw(&small_memory, &small.record_key(PUBLIC), marshal);
        assert!(block_on(small.load(PUBLIC)).unwrap().is_none(), "205 bytes over a 64-byte limit");
        let expired = cache_entry::encode(
            &Value::Hash(d()),
            EntryFormat::F70,
            Stamp { now: 1.0, expires_in: Some(1.0) },
        )
        .unwrap();
        put_raw(&memory, PRIVATE_KEY, expired);
        assert!(block_on(store.load(PUBLIC)).unwrap().is_none());
    }

    #[test]
    fn redis_session_store_records_from_the_spec() {
        let json = br#"{"_csrf_token":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","warden.user.user.key":[[1],"$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],"warden.user.user.session":{"last_request_at":1795701965}}"#;
        let marshal = hex::decode(super::super::cache_entry::tests::MARSHAL_D).unwrap();
        for (serializer, bytes, readable) in [
            (StoreSerializer::Json, json.to_vec(), true),
            (StoreSerializer::Hybrid, json.to_vec(), true),
            (StoreSerializer::Hybrid, marshal.clone(), true),
            (StoreSerializer::Marshal, marshal.clone(), true),
            (StoreSerializer::Marshal, json.to_vec(), false),
        ] {
            let (store, memory) =
                store(RecordCodec::Raw(serializer), KeyScheme::Prefix("myapp:session:".into()));
            let key =
                "myapp:session:2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";
            put_raw(&memory, key, bytes);
            let loaded = block_on(store.load(PUBLIC)).unwrap();
            assert_eq!(loaded.is_some(), readable, "{serializer:?}");
            let Some(loaded) = loaded else { continue };
            assert_eq!(
                loaded.data.get("warden.user.user.key").unwrap().as_array().unwrap()[1],
                Value::String("$2a$12$KIXe0sYfXJ0x1YQ0b1c2de".into())
            );
            block_on(store.save_loaded(&loaded.data, None, loaded.state.as_deref()))
                .unwrap()
                .unwrap();
            let written = memory.records.lock().unwrap()[key].0.clone();
            if serializer == StoreSerializer::Marshal {
                assert_eq!(written, marshal, "Marshal(D) byte-exact");
            } else {
                assert_eq!(written, json.to_vec(), "JSON byte-exact");
            }
        }
    }

    #[test]
    fn active_record_data_column_from_the_spec() {
        let marshal_column = "BAh7CEkiEF9jc3JmX3Rva2VuBjoGRVRJIjFJQ0VpSXlRbEppY29LU29yTEMw\ndUx6QXhNak0wTlRZM09EazZPenc5UGo4PQY7AEZJIhl3YXJkZW4udXNlci51\nc2VyLmtleQY7AFRbB1sGaQZJIiIkMmEkMTIkS0lYZTBzWWZYSjB4MVlRMGIx\nYzJkZQY7AFRJIh13YXJkZW4udXNlci51c2VyLnNlc3Npb24GOwBUewZJIhRs\nYXN0X3JlcXVlc3RfYXQGOwBUbCsHzTwIaw==\n";
        let json_column = r#"{"value":{"_csrf_token":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","warden.user.user.key":[[1],"$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],"warden.user.user.session":{"last_request_at":1795701965}}}"#;
        for (serializer, column) in
            [(StoreSerializer::Marshal, marshal_column), (StoreSerializer::Json, json_column)]
        {
            let (store, memory) = store(RecordCodec::Column(serializer), KeyScheme::Column);
            let key = "2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";
            put_raw(&memory, key, column.as_bytes().to_vec());
            let loaded = block_on(store.load(PUBLIC)).unwrap().unwrap();
            assert_eq!(loaded.data.len(), 4);
            block_on(store.save_loaded(&loaded.data, None, loaded.state.as_deref()))
                .unwrap()
                .unwrap();
            assert_eq!(
                String::from_utf8(memory.records.lock().unwrap()[key].0.clone()).unwrap(),
                column,
                "{serializer:?} byte-exact"
            );
        }
        assert_eq!(encode64(&[0; 0]), "");
        let (hybrid, memory) =
            store(RecordCodec::Column(StoreSerializer::Hybrid), KeyScheme::Column);
        put_raw(
            &memory,
            "2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9",
            marshal_column.as_bytes().to_vec(),
        );
        assert_eq!(block_on(hybrid.load(PUBLIC)).unwrap().unwrap().data.len(), 4);
        // An empty row as the gem inserts it.
        put_raw(
            &memory,
            "2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9",
            b"BAh7AA==\n".to_vec(),
        );
        assert_eq!(block_on(hybrid.load(PUBLIC)).unwrap().unwrap().data.len(), 1);
    }
}
