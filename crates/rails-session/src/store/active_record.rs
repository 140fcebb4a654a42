//! activerecord-session_store's `sessions` table (`session_id`, `data`, `created_at`, `updated_at`) through sqlx:
//! SQLite, PostgreSQL, MySQL/MariaDB, the pool on the store's own I/O thread. Names are checked identifiers; values
//! are always bound, never spliced.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::io_thread::IoThread;
use super::server::{Backend, BackendError, Put};
use super::settings::StoreSettings;
use crate::error::ConfigError;
use crate::identity::database::{connect_options, lazy_pool, Options, Pool};

pub(crate) struct ActiveRecordBackend {
    options: Options,
    pool_size: u32,
    timeout: Duration,
    io: OnceCell<IoThread>,
    pool: OnceCell<Pool>,
    sql: Arc<Sql>,
}

/// The statements, made once for the table and the database's dialect.
struct Sql {
    select: String,
    insert: String,
    update: String,
    delete: String,
}

impl ActiveRecordBackend {
    pub(crate) fn new(settings: &StoreSettings) -> Result<Self, ConfigError> {
        let options = connect_options(&settings.url, false, "SESSION_STORE_URL")?;
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let table = settings.table.as_str();
        if !table.split('.').all(ident) || table.split('.').count() > 2 {
            return Err(ConfigError::invalid(
                "SESSION_STORE_TABLE",
                format!("{table:?} is not a table name"),
            ));
        }
        let (quote, now, p): (char, &str, fn(usize) -> String) = match options {
            Options::MySql(_) => ('`', "UTC_TIMESTAMP(6)", |_| "?".to_owned()),
            Options::Postgres(_) => ('"', "(now() AT TIME ZONE 'UTC')", |i| format!("${i}")),
            Options::Sqlite(_) => {
                ('"', "strftime('%Y-%m-%d %H:%M:%f', 'now')", |i| format!("?{i}"))
            }
        };
        let t =
            table.split('.').map(|s| format!("{quote}{s}{quote}")).collect::<Vec<_>>().join(".");
        let sql = Sql {
            select: format!("SELECT data FROM {t} WHERE session_id = {} LIMIT 1", p(1)),
            insert: format!(
                "INSERT INTO {t} (session_id, data, created_at, updated_at) VALUES ({}, {}, {now}, {now})",
                p(1),
                p(2)
            ),
            update: format!(
                "UPDATE {t} SET session_id = {}, data = {}, updated_at = {now} WHERE session_id = {}",
                p(1),
                p(2),
                p(3)
            ),
            delete: format!("DELETE FROM {t} WHERE session_id = {}", p(1)),
        };
        Ok(ActiveRecordBackend {
            options,
            pool_size: settings.pool_size,
            timeout: settings.timeout,
            io: OnceCell::new(),
            pool: OnceCell::new(),
            sql: Arc::new(sql),
        })
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(Pool, Arc<Sql>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    {
        let io = self
            .io
            .get_or_try_init(|| async { IoThread::start("rails-session-ar") })
            .await
            .map_err(BackendError::new)?;
        let pool = self
            .pool
            .get_or_try_init(|| async {
                let (options, n, t) = (self.options.clone(), self.pool_size, self.timeout);
                io.run(t, async move { lazy_pool(options, n, t) }).await
            })
            .await
            .map_err(BackendError::new)?
            .clone();
        match io.run(self.timeout, op(pool, self.sql.clone())).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(BackendError::new(format!("database: {e}"))),
            Err(e) => Err(BackendError::new(format!("database: {e}"))),
        }
    }
}

/// Runs one statement on whichever database the pool is.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
            Pool::MySql($p) => $body,
        }
    };
}

impl Backend for ActiveRecordBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        let key = key.to_owned();
        Box::pin(self.run(move |pool, sql| async move {
            let data: Option<Option<String>> = on_pool!(&pool, |p| {
                sqlx::query_scalar(&sql.select).bind(&key).fetch_optional(p).await?
            });
            // A row with a NULL data column is an empty session.
            Ok(data.map(|d| d.unwrap_or_default().into_bytes()))
        }))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        _ttl: Option<Duration>,
        put: Put<'a>,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = key.to_owned();
        let loaded_from = match put {
            Put::New => None,
            Put::IfPresent { loaded_from } => Some(loaded_from.to_owned()),
        };
        Box::pin(async move {
            let data = String::from_utf8(value)
                .map_err(|_| BackendError::new("the data column must be text"))?;
            self.run(move |pool, sql| async move {
                let affected = match loaded_from {
                    None => on_pool!(&pool, |p| {
                        sqlx::query(&sql.insert)
                            .bind(&key)
                            .bind(&data)
                            .execute(p)
                            .await?
                            .rows_affected()
                    }),
                    // The row, moved to the private id if it was found under the public one; nothing when it is
                    // gone (signed out while this request ran).
                    Some(from) => on_pool!(&pool, |p| {
                        sqlx::query(&sql.update)
                            .bind(&key)
                            .bind(&data)
                            .bind(&from)
                            .execute(p)
                            .await?
                            .rows_affected()
                    }),
                };
                Ok(affected > 0)
            })
            .await
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        let keys = keys.to_vec();
        Box::pin(self.run(move |pool, sql| async move {
            for key in keys {
                on_pool!(&pool, |p| {
                    sqlx::query(&sql.delete).bind(&key).execute(p).await.map(|_| ())?
                });
            }
            Ok(())
        }))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move { self.get("").await.map(|_| ()) })
    }
}
