//! memcached for `cache_store` (`MemCacheStore` through Dalli): Dalli's value wrapping and flags, memcached's key
//! rules, and a small pool of connections on the store's own I/O thread. The protocol client is
//! `async-memcached` (text and meta protocols); it has no pool, so the pool here bounds the connections, drops any
//! connection an interrupted operation left unusable, and makes new ones on demand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_memcached::{AsciiProtocol as _, Client, Error, MetaProtocol as _, Status};
use futures_util::future::BoxFuture;
use rails_cookie::{Encoding, RString, Serializer, Value};
use tokio::sync::{OnceCell, Semaphore};

use super::cache_entry::inflate;
use super::io_thread::IoThread;
use super::server::{Backend, BackendError, Put};
use super::settings::StoreSettings;
use crate::error::ConfigError;

/// Dalli's flag bits: the value is `Marshal.dump(obj)`; the value is zlib-compressed.
const FLAG_SERIALIZED: u32 = 0x1;
const FLAG_COMPRESSED: u32 = 0x2;
/// memcached's limit on relative expiry: above it, an expiry is an absolute epoch (Dalli converts).
const MAX_RELATIVE_TTL: u64 = 30 * 24 * 60 * 60;

pub(crate) struct MemcachedBackend {
    address: String,
    timeout: Duration,
    max_size: usize,
    io: OnceCell<IoThread>,
    pool: Arc<Pool>,
}

struct Pool {
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

impl MemcachedBackend {
    pub(crate) fn new(settings: &StoreSettings) -> Result<Self, ConfigError> {
        let rest = settings.url.strip_prefix("memcached://").unwrap_or(&settings.url);
        let address = rest.trim_end_matches('/');
        if address.is_empty() || address.contains(['/', '@', ',']) {
            return Err(ConfigError::invalid(
                "SESSION_STORE_URL",
                "a memcached URL is memcached://host:port (one server; Dalli's ring of several is not supported)",
            ));
        }
        let address =
            if address.contains(':') { address.to_owned() } else { format!("{address}:11211") };
        let permits = usize::try_from(settings.pool_size).unwrap_or(16);
        Ok(MemcachedBackend {
            address,
            timeout: settings.timeout,
            max_size: settings.max_size,
            io: OnceCell::new(),
            pool: Arc::new(Pool { idle: Mutex::new(Vec::new()), permits: Semaphore::new(permits) }),
        })
    }

    /// Runs `op` with a pooled connection on the I/O thread, within the timeout.
    async fn run<T, F>(&self, op: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, Result<T, Error>> + Send + 'static,
    {
        let io = self
            .io
            .get_or_try_init(|| async { IoThread::start("rails-session-memcached") })
            .await
            .map_err(BackendError::new)?;
        let (pool, address) = (self.pool.clone(), self.address.clone());
        let work = async move {
            let _permit = pool.permits.acquire().await.map_err(|_| Error::ConnectionClosed)?;
            let idle = pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            let mut client = match idle {
                Some(c) => c,
                None => Client::new(format!("tcp://{address}")).await?,
            };
            let out = op(&mut client).await;
            // A connection whose reply was not read to the end is closed by the client: never reused.
            if !client.is_closed() && !matches!(out, Err(Error::Io(_) | Error::ConnectionClosed)) {
                pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(client);
            }
            out
        };
        match io.run(self.timeout, work).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(BackendError::new(format!("memcached: {e}"))),
            Err(e) => Err(BackendError::new(format!("memcached: {e}"))),
        }
    }

    /// The raw value of `key` (the entry bytes, Dalli's wrapping removed).
    fn unwrap_value(&self, flags: u32, data: Vec<u8>) -> Result<Vec<u8>, BackendError> {
        let data = if flags & FLAG_COMPRESSED != 0 {
            inflate(&data, self.max_size).map_err(BackendError::new)?
        } else {
            data
        };
        if flags & FLAG_SERIALIZED == 0 {
            return Ok(data);
        }
        // A marshalled Entry (the 6.1 format) is the entry itself; 7.0+ formats are a marshalled binary String.
        if data.starts_with(&[4, 8, b'o']) {
            return Ok(data);
        }
        match Serializer::Marshal.load(&data) {
            Ok((Value::RubyString(s), _)) => Ok(s.bytes),
            Ok((Value::String(s), _)) => Ok(s.into_bytes()),
            // Anything else is no cache entry: the entry decoder says why.
            _ => Ok(data),
        }
    }
}

/// Dalli's wrapping of what `MemCacheStore` hands it: the 6.1 format is a Marshal object already; 7.0+ entries
/// are binary Strings that Dalli marshals once more.
fn wrap_value(entry: Vec<u8>) -> Result<Vec<u8>, BackendError> {
    if entry.starts_with(&[4, 8]) {
        return Ok(entry);
    }
    Serializer::Marshal
        .dump(&Value::RubyString(RString::new(entry, Encoding::Binary)))
        .map_err(BackendError::new)
}

/// memcached's key rules as `MemCacheStore#normalize_key` applies them: every byte in `\x00-\x20`, `%` and
/// `\x7F-\xFF` becomes `%XX`.
fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b <= 0x20 || b == b'%' || b >= 0x7F {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Dalli's exptime: whole seconds (`to_i`), an absolute epoch beyond 30 days, 0 for never.
fn exptime(ttl: Option<Duration>) -> i64 {
    match ttl {
        None => 0,
        Some(d) if d.as_secs() > MAX_RELATIVE_TTL => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        }
        Some(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1),
    }
}

impl Backend for MemcachedBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        let key = escape_key(key);
        Box::pin(async move {
            let got = self.run(move |c| Box::pin(async move { c.get(key).await })).await?;
            match got.and_then(|v| Some((v.flags.unwrap_or(0), v.data?))) {
                None => Ok(None),
                Some((flags, data)) => self.unwrap_value(flags, data).map(Some),
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        put: Put<'a>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = escape_key(key);
        Box::pin(async move {
            let value = wrap_value(value)?;
            let exptime = exptime(ttl);
            let flags = FLAG_SERIALIZED;
            match put {
                Put::New => {
                    self.run(move |c| {
                        Box::pin(async move {
                            c.set(key, value.as_slice(), Some(exptime), Some(flags)).await
                        })
                    })
                    .await?;
                    Ok(true)
                }
                // Replace-only: memcached refuses (NS) when the record is gone, atomically.
                Put::IfPresent { loaded_from } if escape_key(loaded_from) == key => {
                    self.run(move |c| {
                        Box::pin(async move {
                            let meta =
                                [format!("F{flags}"), format!("T{exptime}"), "MR".to_owned()];
                            let meta: Vec<&str> = meta.iter().map(String::as_str).collect();
                            match c.meta_set(key, value.as_slice(), false, None, Some(&meta)).await
                            {
                                Ok(_) => Ok(true),
                                Err(Error::Protocol(Status::NotStored)) => Ok(false),
                                Err(e) => Err(e),
                            }
                        })
                    })
                    .await
                }
                // Read from the public-id key (a record older than the private ids): write the private key only
                // while that record exists. Two steps: a sign-out between them is the one race left, as in Rails.
                Put::IfPresent { loaded_from } => {
                    let from = escape_key(loaded_from);
                    self.run(move |c| {
                        Box::pin(async move {
                            if c.get(&from).await?.is_none() {
                                return Ok(false);
                            }
                            c.set(key, value.as_slice(), Some(exptime), Some(flags))
                                .await
                                .map(|()| true)
                        })
                    })
                    .await
                }
            }
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        let keys: Vec<String> = keys.iter().map(|k| escape_key(k)).collect();
        Box::pin(self.run(move |c| {
            Box::pin(async move {
                for key in keys {
                    match c.delete(key).await {
                        Ok(()) | Err(Error::Protocol(Status::NotFound)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        }))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(self.run(|c| Box::pin(async move { c.version().await.map(|_| ()) })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_as_mem_cache_store_escapes_them() {
        assert_eq!(escape_key("my app:_session_id:2::ab"), "my%20app:_session_id:2::ab");
        assert_eq!(escape_key("100%é"), "100%25%C3%A9");
    }

    #[test]
    fn dalli_wrapping_of_7_x_entries() {
        // Spec §8: Rails 7.1 on memcached stores `04 08 22 <len> <F71 bytes>`, flags 1.
        let f71 = hex::decode("00110176d15b1a13c2da41ffffffff04087b00").unwrap();
        let wrapped = wrap_value(f71.clone()).unwrap();
        assert_eq!(hex::encode(&wrapped[..4]), format!("040822{:02x}", f71.len() + 5));
        let backend = MemcachedBackend::new(&StoreSettings::new(
            super::super::StoreKind::CacheStore,
            "memcached://127.0.0.1:1",
        ))
        .unwrap();
        assert_eq!(backend.unwrap_value(FLAG_SERIALIZED, wrapped).unwrap(), f71);
        let f61 = vec![4, 8, b'o', 0];
        assert_eq!(wrap_value(f61.clone()).unwrap(), f61, "a 6.1 entry is stored as is");
        assert_eq!(backend.unwrap_value(FLAG_SERIALIZED, f61.clone()).unwrap(), f61);
    }

    #[test]
    fn expiry_in_dalli_terms() {
        assert_eq!(exptime(None), 0);
        assert_eq!(exptime(Some(Duration::from_secs(3600))), 3600);
        assert_eq!(exptime(Some(Duration::from_millis(200))), 1);
        assert!(exptime(Some(Duration::from_secs(MAX_RELATIVE_TTL + 1))) > 1_700_000_000);
    }

    #[test]
    fn urls() {
        use super::super::StoreKind::CacheStore;
        for bad in ["memcached://", "memcached://a:1,b:2", "memcached://u@h:1"] {
            assert!(MemcachedBackend::new(&StoreSettings::new(CacheStore, bad)).is_err(), "{bad}");
        }
        let b =
            MemcachedBackend::new(&StoreSettings::new(CacheStore, "memcached://cache.internal"))
                .unwrap();
        assert_eq!(b.address, "cache.internal:11211");
    }
}
