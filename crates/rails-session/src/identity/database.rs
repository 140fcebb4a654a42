//! The `sessions` table of Rails 8's authentication generator, read in the Rails app's own database: SQLite,
//! PostgreSQL or MySQL/MariaDB, named as Rails names it (`DATABASE_URL`).

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row as _;
use tokio::sync::OnceCell;

use super::rails_authentication::FindAuthSession;
use super::UserId;
use crate::error::ConfigError;

/// Why a `sessions` lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// The database did not answer within the timeout.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// The database refused the connection or the query.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The row's `user_id` is neither an Integer nor a String.
    #[error("the sessions row's user id has a type this reader does not know")]
    UserIdType,
}

/// `Session.find_by(id:)&.user_id` over the Rails app's database, read-only, through a small pool: the connection
/// is made on first use (the service starts while the database is down, and answers 503 until it is up), every
/// lookup is bounded by a timeout, and table and column names are checked identifiers (never spliced from input).
///
/// ```no_run
/// use std::time::Duration;
/// use rails_session::{CachedAuthSessions, DatabaseAuthSessions, IdentityConfig, RailsAuthentication};
///
/// let sessions = DatabaseAuthSessions::from_database_url("postgres://app:secret@127.0.0.1/app_production")?;
/// // At most one query per signed-in user per 2 s: a sign-out in Rails shows within 2 s.
/// let sessions = CachedAuthSessions::new(sessions, 100_000, Duration::from_secs(2));
/// let identity = IdentityConfig::rails_authentication(RailsAuthentication::new(sessions));
/// # let _ = identity;
/// # Ok::<(), rails_session::ConfigError>(())
/// ```
pub struct DatabaseAuthSessions {
    options: Options,
    pool: OnceCell<Pool>,
    query: String,
    timeout: Duration,
    max_connections: u32,
}

enum Options {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl DatabaseAuthSessions {
    /// Rails' `DATABASE_URL`: `sqlite3:path` (relative to the working directory) or `sqlite3:///absolute/path`,
    /// `postgres://…` / `postgresql://…`, `mysql2://…` (or `mysql://…`). The table is `sessions` with columns `id`
    /// and `user_id`; the timeout 2 s.
    pub fn from_database_url(url: &str) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::invalid("DATABASE_URL", why);
        let options = if let Some(path) =
            url.strip_prefix("sqlite3:").or_else(|| url.strip_prefix("sqlite:"))
        {
            // `sqlite3:///abs` and `sqlite3://abs` name a path after the slashes Rails' URL form adds.
            let path = path.strip_prefix("//").unwrap_or(path);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(bad(
                    "a sqlite3: URL needs the path of the Rails app's database file".into()
                ));
            }
            // Read-only: this reader never writes to the app's database.
            Options::Sqlite(SqliteConnectOptions::new().filename(path).read_only(true))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
            // Every transaction read-only, on the server's side too.
            Options::Postgres(o.options([("default_transaction_read_only", "on")]))
        } else if let Some(rest) =
            url.strip_prefix("mysql2://").or_else(|| url.strip_prefix("mysql://"))
        {
            let o = MySqlConnectOptions::from_str(&format!("mysql://{rest}"))
                .map_err(|e| bad(format!("not a MySQL URL: {e}")))?;
            Options::MySql(o)
        } else {
            let scheme = url.split(':').next().unwrap_or("");
            return Err(bad(format!(
                "unsupported database {scheme:?}; expected sqlite3:, postgres://, postgresql:// or mysql2://"
            )));
        };
        let mut this = DatabaseAuthSessions {
            options,
            pool: OnceCell::new(),
            query: String::new(),
            timeout: Duration::from_secs(2),
            max_connections: 5,
        };
        this = this.table("sessions", "id", "user_id")?;
        Ok(this)
    }

    /// The table and its id and user id columns, when the app renamed them. Each must be an SQL identifier
    /// (letters, digits, `_`; a table may be `schema.table`).
    pub fn table(mut self, table: &str, id: &str, user_id: &str) -> Result<Self, ConfigError> {
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !table.split('.').all(ident) || table.split('.').count() > 2 {
            return Err(ConfigError::invalid(
                "RAILS_AUTH_SESSIONS_TABLE",
                format!("{table:?} is not a table name"),
            ));
        }
        for (what, c) in [("id column", id), ("user id column", user_id)] {
            if !ident(c) {
                return Err(ConfigError::invalid(
                    "RAILS_AUTH_SESSIONS_TABLE",
                    format!("{c:?} is not a {what} name"),
                ));
            }
        }
        let (quote, placeholder) = match self.options {
            Options::MySql(_) => ('`', "?"),
            Options::Postgres(_) => ('"', "$1"),
            Options::Sqlite(_) => ('"', "?1"),
        };
        let q = |s: &str| {
            s.split('.').map(|p| format!("{quote}{p}{quote}")).collect::<Vec<_>>().join(".")
        };
        self.query = format!(
            "SELECT {} FROM {} WHERE {} = {placeholder} LIMIT 1",
            q(user_id),
            q(table),
            q(id)
        );
        Ok(self)
    }

    /// How long a lookup (a connection from the pool and the query) may take before it fails (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The pool's size (default 5).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The database kind, for diagnostics (`sqlite`, `postgres`, `mysql`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self.options {
            Options::Sqlite(_) => "sqlite",
            Options::Postgres(_) => "postgres",
            Options::MySql(_) => "mysql",
        }
    }

    async fn pool(&self) -> &Pool {
        self.pool
            .get_or_init(|| async {
                let (n, t) = (self.max_connections, self.timeout);
                // Lazy: connections are made by the queries, each within the timeout.
                match &self.options {
                    Options::Sqlite(o) => Pool::Sqlite(
                        SqlitePoolOptions::new()
                            .max_connections(n)
                            .acquire_timeout(t)
                            .connect_lazy_with(o.clone()),
                    ),
                    Options::Postgres(o) => Pool::Postgres(
                        PgPoolOptions::new()
                            .max_connections(n)
                            .acquire_timeout(t)
                            .connect_lazy_with(o.clone()),
                    ),
                    Options::MySql(o) => Pool::MySql(
                        MySqlPoolOptions::new()
                            .max_connections(n)
                            .acquire_timeout(t)
                            .connect_lazy_with(o.clone()),
                    ),
                }
            })
            .await
    }

    /// Connects and runs the lookup once (for `railbridge serve --check`): `Ok` when the table answers.
    pub async fn check(&self) -> Result<(), DatabaseError> {
        self.user_of_session(&UserId::Integer(0)).await.map(|_| ())
    }

    async fn lookup(&self, session: &UserId) -> Result<Option<UserId>, DatabaseError> {
        macro_rules! run {
            ($pool:expr) => {{
                let query = sqlx::query(&self.query);
                let query = match session {
                    UserId::Integer(i) => query.bind(*i),
                    UserId::String(s) => query.bind(s.as_str()),
                };
                match query.fetch_optional($pool).await? {
                    None => None,
                    Some(row) => Some(if let Ok(i) = row.try_get::<i64, _>(0) {
                        UserId::Integer(i)
                    } else if let Ok(s) = row.try_get::<String, _>(0) {
                        UserId::String(s)
                    } else {
                        return Err(DatabaseError::UserIdType);
                    }),
                }
            }};
        }
        Ok(match self.pool().await {
            Pool::Sqlite(p) => run!(p),
            Pool::Postgres(p) => run!(p),
            Pool::MySql(p) => run!(p),
        })
    }
}

impl FindAuthSession for DatabaseAuthSessions {
    type Error = DatabaseError;

    async fn user_of_session(&self, session: &UserId) -> Result<Option<UserId>, DatabaseError> {
        match tokio::time::timeout(self.timeout, self.lookup(session)).await {
            Ok(result) => result,
            Err(_) => Err(DatabaseError::Timeout(self.timeout)),
        }
    }
}

impl fmt::Debug for DatabaseAuthSessions {
    // The connect options hold the password: only the kind and the query are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseAuthSessions")
            .field("kind", &self.kind())
            .field("query", &self.query)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn database_urls_as_rails_writes_them() {
        let q =
            |url: &str| DatabaseAuthSessions::from_database_url(url).map(|d| (d.kind(), d.query));
        assert_eq!(
            q("sqlite3:db/production.sqlite3").unwrap(),
            ("sqlite", r#"SELECT "user_id" FROM "sessions" WHERE "id" = ?1 LIMIT 1"#.to_owned())
        );
        assert_eq!(q("sqlite3:///var/app/db.sqlite3").unwrap().0, "sqlite");
        assert_eq!(
            q("postgresql://u:p@127.0.0.1:5432/app").unwrap(),
            ("postgres", r#"SELECT "user_id" FROM "sessions" WHERE "id" = $1 LIMIT 1"#.to_owned())
        );
        assert_eq!(
            q("mysql2://u:p@127.0.0.1/app").unwrap(),
            ("mysql", "SELECT `user_id` FROM `sessions` WHERE `id` = ? LIMIT 1".to_owned())
        );
        for bad in ["redis://x", "sqlite3:", "sqlite3::memory:", "", "postgres://[bad"] {
            assert!(q(bad).is_err(), "{bad}");
        }
        let d = DatabaseAuthSessions::from_database_url("postgres://u:secret@h/app").unwrap();
        assert!(!format!("{d:?}").contains("secret"));
    }

    #[test]
    fn names_are_identifiers_never_sql() {
        let d = || DatabaseAuthSessions::from_database_url("postgres://u@h/app").unwrap();
        assert!(d()
            .table("auth.sessions", "id", "user_id")
            .unwrap()
            .query
            .contains(r#""auth"."sessions""#));
        for (t, i, u) in [
            ("sessions; drop table users", "id", "user_id"),
            ("s", "id\"", "user_id"),
            ("s", "id", ""),
            ("a.b.c", "id", "u"),
        ] {
            assert!(d().table(t, i, u).is_err(), "{t} {i} {u}");
        }
    }

    #[test]
    fn a_sqlite_database_is_read_and_a_missing_one_is_an_error_not_a_hang() {
        let dir = std::env::temp_dir().join(format!("rails-session-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.sqlite3");
        block_on(async {
            let rw = SqlitePool::connect_with(
                SqliteConnectOptions::new().filename(&path).create_if_missing(true),
            )
            .await
            .unwrap();
            sqlx::query("CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, ip_address TEXT)")
                .execute(&rw)
                .await
                .unwrap();
            sqlx::query("INSERT INTO sessions (id, user_id) VALUES (7, 1), (8, 2)")
                .execute(&rw)
                .await
                .unwrap();
            let db =
                DatabaseAuthSessions::from_database_url(&format!("sqlite3://{}", path.display()))
                    .unwrap();
            assert_eq!(db.user_of_session(&7.into()).await.unwrap(), Some(1.into()));
            assert_eq!(db.user_of_session(&8.into()).await.unwrap(), Some(2.into()));
            assert_eq!(db.user_of_session(&9.into()).await.unwrap(), None);
            assert_eq!(db.user_of_session(&"7x".into()).await.unwrap(), None);
            db.check().await.unwrap();
            // Sign-out in Rails deletes the row.
            sqlx::query("DELETE FROM sessions WHERE id = 7").execute(&rw).await.unwrap();
            assert_eq!(db.user_of_session(&7.into()).await.unwrap(), None);

            let missing = DatabaseAuthSessions::from_database_url(&format!(
                "sqlite3:{}/nope.sqlite3",
                dir.display()
            ))
            .unwrap()
            .timeout(Duration::from_millis(500));
            assert!(missing.user_of_session(&7.into()).await.is_err());
            // Nothing listens on this port: refused or timed out, never a hang.
            let down = DatabaseAuthSessions::from_database_url("postgres://u:p@127.0.0.1:1/app")
                .unwrap()
                .timeout(Duration::from_millis(500));
            let started = std::time::Instant::now();
            assert!(down.user_of_session(&7.into()).await.is_err());
            assert!(started.elapsed() < Duration::from_secs(3));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
