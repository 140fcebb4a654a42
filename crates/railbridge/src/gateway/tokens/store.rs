//! Where refresh tokens and revocations live: in this process (one gateway), or in Redis so that several gateway
//! instances agree (`RAILBRIDGE_TOKEN_STORE_URL`). Refresh tokens are kept by the SHA-256 of their value (a leaked
//! store holds no usable token); every entry expires with the longest token lifetime, so the store stays bounded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rails_session::RedisConnection;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// What a refresh token stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefreshRecord {
    /// The family: every token rotated from one exchange. Reusing any spent member revokes the family.
    pub(crate) family: String,
    /// The gateway's `sid` of the Rails session (a keyed hash, never the session id).
    pub(crate) sid: String,
    pub(crate) user: String,
    pub(crate) scope: Option<String>,
    /// Unix seconds: the family's end, fixed at the exchange.
    pub(crate) family_expires_at: u64,
    /// Unix milliseconds: the exchange. A revocation made after it ends the family; one made before does not.
    #[serde(default)]
    pub(crate) family_issued_ms: u64,
    /// How to check, at each refresh, that the Rails login is still there.
    pub(crate) login: Login,
    /// Extra claims (configured identity fields) to carry into each access token.
    #[serde(default)]
    pub(crate) claims: serde_json::Map<String, serde_json::Value>,
}

/// The Rails login behind a token family, as far as the gateway can check it without the browser's cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Login {
    /// A cookie-store session: stateless; only a sign-out seen by the gateway or the revoke hook ends it.
    CookieSession {
        /// SHA-256 of the Devise salt, when a User API can tell a password change.
        salt_digest: Option<String>,
    },
    /// A server-side session: its record must still exist.
    ServerSession {
        /// The session's public id (the cookie value).
        id: String,
        salt_digest: Option<String>,
    },
    /// Rails 8 authentication: its `sessions` row must still exist.
    RailsAuthentication { row: String },
}

/// What spending a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Spent {
    /// First use: here is what it stood for.
    Fresh(RefreshRecord),
    /// Used before: a replay (or a race) — the caller revokes the family.
    Reused(RefreshRecord),
    /// Unknown or expired.
    Missing,
}

/// The store failed (Redis down or slow).
#[derive(Debug, thiserror::Error)]
#[error("token store: {0}")]
pub(crate) struct StoreError(String);

/// The token store.
pub(crate) enum TokenStore {
    Memory(Arc<Memory>),
    Redis(Box<RedisStore>),
}

impl TokenStore {
    /// In memory, entries kept `retention` (the longest token lifetime). A reload passes it on to the new
    /// configuration (see `Tokens::new`).
    pub(crate) fn memory(retention: Duration) -> TokenStore {
        TokenStore::Memory(Arc::new(Memory::new(retention)))
    }

    /// In Redis at `url`, entries kept `retention`.
    pub(crate) fn redis(url: &str, retention: Duration) -> Result<TokenStore, String> {
        Ok(TokenStore::Redis(Box::new(RedisStore::new(url, retention)?)))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            TokenStore::Memory(_) => "memory",
            TokenStore::Redis(_) => "redis",
        }
    }

    /// Keeps a new refresh token (by its hash) until `ttl` from now.
    pub(crate) async fn put(
        &self,
        hash: &str,
        record: &RefreshRecord,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            TokenStore::Memory(m) => {
                let entry = Entry::Refresh { record: Box::new(record.clone()), used: false };
                m.put(format!("rt:{hash}"), entry, ttl);
                Ok(())
            }
            TokenStore::Redis(r) => r.put(hash, record, ttl).await,
        }
    }

    /// Spends a refresh token: atomically marks it used and says whether it was fresh.
    pub(crate) async fn spend(&self, hash: &str) -> Result<Spent, StoreError> {
        match self {
            TokenStore::Memory(m) => Ok(m.spend(&format!("rt:{hash}"))),
            TokenStore::Redis(r) => r.spend(hash).await,
        }
    }

    /// Gives a spent refresh token back (its refresh failed for a reason of the gateway's, not the client's: a
    /// retry must not count as a replay).
    pub(crate) async fn unspend(&self, hash: &str) -> Result<(), StoreError> {
        match self {
            TokenStore::Memory(m) => {
                m.unspend(&format!("rt:{hash}"));
                Ok(())
            }
            TokenStore::Redis(r) => r.unspend(hash).await,
        }
    }

    /// Revokes everything derived from `value` of `kind` (`sid`, `user`, `family`) that was issued before `at_ms`
    /// (Unix milliseconds): tokens issued later — after a new sign-in — live.
    pub(crate) async fn revoke(
        &self,
        kind: &str,
        value: &str,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        match self {
            TokenStore::Memory(m) => {
                m.revoke(format!("rv:{kind}:{value}"), at_ms);
                Ok(())
            }
            TokenStore::Redis(r) => r.revoke(kind, value, at_ms).await,
        }
    }

    /// The latest revocation among these (Unix milliseconds), if any.
    pub(crate) async fn revoked_at(
        &self,
        checks: &[(&str, &str)],
    ) -> Result<Option<u64>, StoreError> {
        match self {
            TokenStore::Memory(m) => {
                Ok(checks.iter().filter_map(|(k, v)| m.revoked_at(&format!("rv:{k}:{v}"))).max())
            }
            TokenStore::Redis(r) => r.revoked_at(checks).await,
        }
    }

    /// One round trip (for `--check`).
    pub(crate) async fn check(&self) -> Result<(), StoreError> {
        match self {
            TokenStore::Memory(_) => Ok(()),
            TokenStore::Redis(r) => r.check().await,
        }
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Refresh {
        record: Box<RefreshRecord>,
        used: bool,
    },
    /// When (Unix milliseconds).
    Revoked(u64),
}

type Map = std::collections::HashMap<String, (Entry, Instant)>;

/// The in-process store: a map with per-entry deadlines, swept as it grows.
pub(crate) struct Memory {
    map: Mutex<Map>,
    /// Milliseconds.
    retention: std::sync::atomic::AtomicU64,
}

impl Memory {
    fn new(retention: Duration) -> Memory {
        let memory = Memory { map: Mutex::new(Map::new()), retention: 0.into() };
        memory.set_retention(retention);
        memory
    }

    pub(crate) fn set_retention(&self, retention: Duration) {
        let ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        self.retention.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn retention(&self) -> Duration {
        Duration::from_millis(self.retention.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, key: String, entry: Entry, ttl: Duration) {
        let now = Instant::now();
        let retention = self.retention();
        let mut map = self.lock();
        // Sweep expired entries now and then: the map never holds more than what lives within the retention.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, (_, until)| *until > now);
        }
        map.insert(key, (entry, now + ttl.min(retention)));
    }

    fn spend(&self, key: &str) -> Spent {
        let now = Instant::now();
        let mut map = self.lock();
        match map.get_mut(key) {
            Some((Entry::Refresh { record, used }, until)) if *until > now => {
                if *used {
                    Spent::Reused((**record).clone())
                } else {
                    *used = true;
                    Spent::Fresh((**record).clone())
                }
            }
            _ => Spent::Missing,
        }
    }

    fn unspend(&self, key: &str) {
        if let Some((Entry::Refresh { used, .. }, _)) = self.lock().get_mut(key) {
            *used = false;
        }
    }

    fn revoke(&self, key: String, at_ms: u64) {
        let latest = self.revoked_at(&key).map_or(at_ms, |t| t.max(at_ms));
        self.put(key, Entry::Revoked(latest), self.retention());
    }

    fn revoked_at(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        match self.lock().get(key) {
            Some((Entry::Revoked(at), until)) if *until > now => Some(*at),
            _ => None,
        }
    }
}

/// Keeps the latest revocation time: `SET` only when newer, the TTL renewed.
const REVOKE: &str = r"
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > t then t = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], tostring(t), 'PX', ARGV[2])
return t
";

/// Marks a refresh token used and returns `[state, record]`: 0 missing, 1 fresh, 2 reused.
const SPEND: &str = r"
local r = redis.call('HMGET', KEYS[1], 'rec', 'used')
if not r[1] then return {0, ''} end
if r[2] == '1' then return {2, r[1]} end
redis.call('HSET', KEYS[1], 'used', '1')
return {1, r[1]}
";

/// Redis: `railbridge:tokens:rt:<hash>` (a hash: `rec`, `used`) and `railbridge:tokens:rv:<kind>:<value>`, each
/// with a TTL. One reconnecting connection on an I/O thread of its own, every command bounded by a timeout.
pub(crate) struct RedisStore {
    redis: RedisConnection,
    retention: Duration,
    spend: redis::Script,
    revoke: redis::Script,
}

impl RedisStore {
    fn new(url: &str, retention: Duration) -> Result<RedisStore, String> {
        let redis = RedisConnection::open(url, Duration::from_secs(1), "railbridge-tokens")
            .map_err(|e| format!("not a Redis URL: {e}"))?;
        Ok(RedisStore {
            redis,
            retention,
            spend: redis::Script::new(SPEND),
            revoke: redis::Script::new(REVOKE),
        })
    }

    async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        self.redis.run(command).await.map_err(StoreError)
    }

    fn ms(ttl: Duration) -> u64 {
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    async fn put(
        &self,
        hash: &str,
        record: &RefreshRecord,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = format!("railbridge:tokens:rt:{hash}");
        let json = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
        let px = Self::ms(ttl.min(self.retention));
        self.run(move |mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&key)
                .arg("rec")
                .arg(json)
                .arg("used")
                .arg("0")
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(px)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn spend(&self, hash: &str) -> Result<Spent, StoreError> {
        let key = format!("railbridge:tokens:rt:{hash}");
        let script = self.spend.clone();
        let (state, json): (i64, String) = self
            .run(move |mut c| async move { script.key(key).invoke_async(&mut c).await })
            .await?;
        let record =
            || serde_json::from_str::<RefreshRecord>(&json).map_err(|e| StoreError(e.to_string()));
        Ok(match state {
            1 => Spent::Fresh(record()?),
            2 => Spent::Reused(record()?),
            _ => Spent::Missing,
        })
    }

    async fn revoke(&self, kind: &str, value: &str, at_ms: u64) -> Result<(), StoreError> {
        let key = format!("railbridge:tokens:rv:{kind}:{value}");
        let px = Self::ms(self.retention);
        let script = self.revoke.clone();
        self.run(move |mut c| async move {
            script.key(key).arg(at_ms).arg(px).invoke_async::<u64>(&mut c).await.map(|_| ())
        })
        .await
    }

    async fn revoked_at(&self, checks: &[(&str, &str)]) -> Result<Option<u64>, StoreError> {
        let keys: Vec<String> =
            checks.iter().map(|(k, v)| format!("railbridge:tokens:rv:{k}:{v}")).collect();
        let times: Vec<Option<u64>> = self
            .run(move |mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await })
            .await?;
        Ok(times.into_iter().flatten().max())
    }

    async fn unspend(&self, hash: &str) -> Result<(), StoreError> {
        let key = format!("railbridge:tokens:rt:{hash}");
        self.run(move |mut c| async move {
            redis::cmd("HSET").arg(key).arg("used").arg("0").query_async::<()>(&mut c).await
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RefreshRecord {
        RefreshRecord {
            family: "f1".into(),
            sid: "s1".into(),
            user: "1".into(),
            scope: Some("user".into()),
            family_expires_at: 4_000_000_000,
            family_issued_ms: 1_000,
            login: Login::CookieSession { salt_digest: None },
            claims: serde_json::Map::new(),
        }
    }

    #[tokio::test]
    async fn memory_spends_once_and_remembers_revocations() {
        let store = TokenStore::memory(Duration::from_secs(60));
        store.put("h", &record(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.spend("h").await.unwrap(), Spent::Fresh(record()));
        assert_eq!(store.spend("h").await.unwrap(), Spent::Reused(record()));
        store.unspend("h").await.unwrap();
        assert_eq!(
            store.spend("h").await.unwrap(),
            Spent::Fresh(record()),
            "given back after a failure of ours"
        );
        assert_eq!(store.spend("other").await.unwrap(), Spent::Missing);
        assert_eq!(store.revoked_at(&[("sid", "s1")]).await.unwrap(), None);
        store.revoke("sid", "s1", 2_000).await.unwrap();
        store.revoke("sid", "s1", 1_500).await.unwrap();
        assert_eq!(
            store.revoked_at(&[("user", "1"), ("sid", "s1")]).await.unwrap(),
            Some(2_000),
            "the latest"
        );
        let short = TokenStore::memory(Duration::from_millis(1));
        short.put("h", &record(), Duration::from_secs(60)).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.spend("h").await.unwrap(), Spent::Missing, "retention bounds every entry");
    }

    #[tokio::test]
    async fn redis_spends_once_across_instances() {
        let Some(redis) = testkit::Redis::start() else { return };
        let a = TokenStore::redis(&redis.url(), Duration::from_secs(60)).unwrap();
        let b = TokenStore::redis(&redis.url(), Duration::from_secs(60)).unwrap();
        a.check().await.unwrap();
        a.put("h", &record(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.spend("h").await.unwrap(), Spent::Fresh(record()));
        assert_eq!(a.spend("h").await.unwrap(), Spent::Reused(record()));
        b.unspend("h").await.unwrap();
        assert_eq!(a.spend("h").await.unwrap(), Spent::Fresh(record()));
        assert_eq!(a.spend("nope").await.unwrap(), Spent::Missing);
        a.revoke("family", "f1", 5_000).await.unwrap();
        b.revoke("family", "f1", 4_000).await.unwrap();
        assert_eq!(b.revoked_at(&[("sid", "x"), ("family", "f1")]).await.unwrap(), Some(5_000));
        assert_eq!(b.revoked_at(&[("sid", "x")]).await.unwrap(), None);
        let pttl = redis.command(&[b"PTTL", b"railbridge:tokens:rv:family:f1"]);
        let pttl: i64 =
            String::from_utf8(pttl).unwrap().trim_start_matches(':').trim().parse().unwrap();
        assert!((59_000..=60_000).contains(&pttl), "{pttl}");
        let down = TokenStore::redis(
            &format!("redis://127.0.0.1:{}/0", testkit::free_port()),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(down.spend("h").await.is_err());
    }
}
