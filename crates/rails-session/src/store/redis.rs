//! Redis for `cache_store` (`RedisCacheStore`), `redis_store` and `redis_session_store`: one multiplexed connection
//! per process that reconnects by itself (`redis::aio::ConnectionManager`), driven by its own I/O thread, every
//! command bounded by the store timeout.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::io_thread::IoThread;
use super::server::{Backend, BackendError, Put};
use super::settings::StoreSettings;
use crate::error::ConfigError;

/// Writes only while the record the session was loaded from (KEYS[2]), or the target itself, still exists: the
/// check and the write are one atomic step on the server, so a sign-out that deleted the record cannot be undone.
const SET_IF_PRESENT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[2] == '0' then
    redis.call('SET', KEYS[1], ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  end
  return 1
end
return 0
";

/// One Redis connection for a service that runs several tokio runtimes: multiplexed, reconnecting by itself
/// (`redis::aio::ConnectionManager`), made on first use and driven by an I/O thread of its own ([`crate::IoThread`]);
/// every command, connecting included, bounded by a timeout. The session stores use it, and so can anything else in
/// the service that talks to Redis the same way (the railbridge gateway's token store does).
pub struct RedisConnection {
    client: redis::Client,
    timeout: Duration,
    thread_name: &'static str,
    io: OnceCell<IoThread>,
    connection: Arc<OnceCell<ConnectionManager>>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to `url` (`redis://…`, `rediss://…`), made on first use; its I/O thread is named
    /// `thread_name`. Only the URL is checked here.
    pub fn open(
        url: &str,
        timeout: Duration,
        thread_name: &'static str,
    ) -> redis::RedisResult<Self> {
        Ok(RedisConnection {
            client: redis::Client::open(url)?,
            timeout,
            thread_name,
            io: OnceCell::new(),
            connection: Arc::new(OnceCell::new()),
        })
    }

    /// Runs `command` on the I/O thread, connecting first if needed, within the timeout. The error says what
    /// failed, prefixed `redis:`.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        let name = self.thread_name;
        let io = self
            .io
            .get_or_try_init(|| async { IoThread::start(name) })
            .await
            .map_err(|e| e.to_string())?;
        let (client, cell, timeout) = (self.client.clone(), self.connection.clone(), self.timeout);
        let work = async move {
            let connection = cell
                .get_or_try_init(|| async {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(timeout)
                        .set_response_timeout(timeout)
                        .set_number_of_retries(1);
                    ConnectionManager::new_with_config(client, config).await
                })
                .await?
                .clone();
            command(connection).await
        };
        match io.run(timeout, work).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(e) => Err(format!("redis: {e}")),
        }
    }
}

pub(crate) struct RedisBackend {
    redis: RedisConnection,
    script: redis::Script,
}

impl RedisBackend {
    pub(crate) fn new(settings: &StoreSettings) -> Result<Self, ConfigError> {
        let redis = RedisConnection::open(&settings.url, settings.timeout, "rails-session-redis")
            .map_err(|e| {
            ConfigError::invalid("SESSION_STORE_URL", format!("not a Redis URL: {e}"))
        })?;
        Ok(RedisBackend { redis, script: redis::Script::new(SET_IF_PRESENT) })
    }

    /// Runs a command on the I/O thread, connecting first if needed, within the timeout.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        self.redis.run(command).await.map_err(BackendError)
    }
}

/// `PX` in milliseconds, rounded up as Rails does (`(expires_in * 1000).ceil`); `0` for none.
fn px(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |d| u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX).max(1))
}

impl Backend for RedisBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        let key = key.to_owned();
        Box::pin(self.run(move |mut c| async move {
            redis::cmd("GET").arg(key).query_async::<Option<Vec<u8>>>(&mut c).await
        }))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        put: Put<'a>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = key.to_owned();
        let px = px(ttl);
        match put {
            Put::New => Box::pin(self.run(move |mut c| async move {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(value);
                if px > 0 {
                    cmd.arg("PX").arg(px);
                }
                cmd.query_async::<()>(&mut c).await.map(|()| true)
            })),
            Put::IfPresent { loaded_from } => {
                let loaded_from = loaded_from.to_owned();
                let script = self.script.clone();
                Box::pin(self.run(move |mut c| async move {
                    let stored: i64 = script
                        .key(key)
                        .key(loaded_from)
                        .arg(value)
                        .arg(px)
                        .invoke_async(&mut c)
                        .await?;
                    Ok(stored == 1)
                }))
            }
        }
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        let keys = keys.to_vec();
        Box::pin(self.run(move |mut c| async move {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut c).await
        }))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(
            self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_rounds_up_as_rails_does() {
        assert_eq!(px(None), 0);
        assert_eq!(px(Some(Duration::from_secs(3600))), 3_600_000);
        assert_eq!(px(Some(Duration::from_micros(1500))), 2);
        assert_eq!(px(Some(Duration::from_nanos(1))), 1);
    }
}
