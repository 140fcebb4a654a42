//! The `sessions` table of Rails 8's authentication generator, read in the Rails app's own database: SQLite,
//! PostgreSQL or MySQL/MariaDB, named as Rails names it (`DATABASE_URL`).

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::OnceCell;

use super::rails_authentication::FindAuthSession;
use super::UserId;
use crate::error::ConfigError;
use crate::store::io_thread::IoThread;

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
    /// The thread that runs the database connections could not be started.
    #[error("cannot start the database thread: {0}")]
    Runtime(std::io::Error),
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
    pool: OnceCell<Option<Pool>>,
    /// The runtime the pool lives on (see [`IoThread`]).
    io: OnceCell<IoThread>,
    /// `SELECT user_id … WHERE id = ?` for Integer ids.
    query: String,
    /// The same for String ids (UUID keys): on PostgreSQL the id column is compared as text, so that one query
    /// serves `uuid`, `varchar` and `bigint` keys alike.
    query_text: String,
    timeout: Duration,
    max_connections: u32,
}

#[derive(Clone)]
pub(crate) enum Options {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

fn thread_ended() -> DatabaseError {
    DatabaseError::Runtime(std::io::Error::other("the database thread ended"))
}

/// Rails' `DATABASE_URL` as connection options: `sqlite3:path` or `sqlite3:///absolute/path`, `postgres://…` /
/// `postgresql://…`, `mysql2://…` / `trilogy://…` / `mysql://…`. `read_only`: SQLite opened read-only, PostgreSQL
/// transactions read-only on the server's side.
pub(crate) fn connect_options(
    url: &str,
    read_only: bool,
    setting: &'static str,
) -> Result<Options, ConfigError> {
    let bad = |why: String| ConfigError::invalid(setting, why);
    Ok(if let Some(path) = url.strip_prefix("sqlite3:").or_else(|| url.strip_prefix("sqlite:")) {
        // `sqlite3:///abs` and `sqlite3://abs` name a path after the slashes Rails' URL form adds.
        let path = path.strip_prefix("//").unwrap_or(path);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return Err(bad(
                "a sqlite3: URL needs the path of the Rails app's database file".into()
            ));
        }
        Options::Sqlite(SqliteConnectOptions::new().filename(path).read_only(read_only))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let o = PgConnectOptions::from_str(url)
            .map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
        if read_only {
            Options::Postgres(o.options([("default_transaction_read_only", "on")]))
        } else {
            Options::Postgres(o)
        }
    } else if let Some(rest) = url
        .strip_prefix("mysql2://")
        .or_else(|| url.strip_prefix("trilogy://"))
        .or_else(|| url.strip_prefix("mysql://"))
    {
        let o = MySqlConnectOptions::from_str(&format!("mysql://{rest}"))
            .map_err(|e| bad(format!("not a MySQL URL: {e}")))?;
        Options::MySql(o)
    } else {
        let scheme = url.split(':').next().unwrap_or("");
        return Err(bad(format!(
            "unsupported database {scheme:?}; expected sqlite3:, postgres://, postgresql:// or mysql2://"
        )));
    })
}

/// A lazy pool (connections are made by the queries, each within the timeout); call it on the I/O thread, where
/// the pool's own tasks then run.
pub(crate) fn lazy_pool(options: Options, n: u32, timeout: Duration) -> Pool {
    match options {
        Options::Sqlite(o) => Pool::Sqlite(
            SqlitePoolOptions::new()
                .max_connections(n)
                .acquire_timeout(timeout)
                .connect_lazy_with(o),
        ),
        Options::Postgres(o) => Pool::Postgres(
            PgPoolOptions::new().max_connections(n).acquire_timeout(timeout).connect_lazy_with(o),
        ),
        Options::MySql(o) => Pool::MySql(
            MySqlPoolOptions::new()
                .max_connections(n)
                .acquire_timeout(timeout)
                .connect_lazy_with(o),
        ),
    }
}

impl DatabaseAuthSessions {
    /// Rails' `DATABASE_URL`: `sqlite3:path` (relative to this process's working directory, where Rails resolves it
    /// from `Rails.root`: give an absolute path) or `sqlite3:///absolute/path`, `postgres://…` / `postgresql://…`,
    /// `mysql2://…` / `trilogy://…` (or `mysql://…`). The table is `sessions` with columns `id` and `user_id`; the
    /// timeout 2 s. PostgreSQL connections ask for read-only transactions with a startup parameter, which PgBouncer
    /// refuses unless it lists `options` in `ignore_startup_parameters`.
    pub fn from_database_url(url: &str) -> Result<Self, ConfigError> {
        let options = connect_options(url, true, "DATABASE_URL")?;
        let mut this = DatabaseAuthSessions {
            options,
            pool: OnceCell::new(),
            io: OnceCell::new(),
            query: String::new(),
            query_text: String::new(),
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
        // PostgreSQL: the user id is read as text, whatever its type (bigint, uuid); the other databases convert
        // it themselves.
        let user = match self.options {
            Options::Postgres(_) => format!("{}::text", q(user_id)),
            _ => q(user_id),
        };
        self.query =
            format!("SELECT {user} FROM {} WHERE {} = {placeholder} LIMIT 1", q(table), q(id));
        self.query_text = match self.options {
            Options::Postgres(_) => {
                format!(
                    "SELECT {user} FROM {} WHERE {}::text = {placeholder} LIMIT 1",
                    q(table),
                    q(id)
                )
            }
            _ => self.query.clone(),
        };
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

    async fn io(&self) -> Result<&IoThread, DatabaseError> {
        self.io
            .get_or_try_init(|| async {
                IoThread::start("rails-session-db").map_err(DatabaseError::Runtime)
            })
            .await
    }

    async fn pool(&self) -> Result<Pool, DatabaseError> {
        let io = self.io().await?;
        let pool = self
            .pool
            .get_or_init(|| async {
                let (n, t, options) = (self.max_connections, self.timeout, self.options.clone());
                // Made on the database thread: the pool's own tasks run there.
                let made = io.handle().spawn(async move { lazy_pool(options, n, t) });
                made.await.ok()
            })
            .await;
        pool.clone().ok_or_else(thread_ended)
    }

    /// Connects and runs the lookup once (for `railbridge serve --check`): `Ok` when the table answers.
    pub async fn check(&self) -> Result<(), DatabaseError> {
        // A String id: compared as text on PostgreSQL, it fits any key type.
        self.user_of_session(&UserId::String("0".into())).await.map(|_| ())
    }

    async fn lookup(&self, session: &UserId) -> Result<Option<UserId>, DatabaseError> {
        let pool = self.pool().await?;
        let io = self.io().await?;
        let query = match session {
            UserId::Integer(_) => self.query.clone(),
            UserId::String(_) => self.query_text.clone(),
        };
        let session = session.clone();
        let run = io.handle().spawn(async move {
            macro_rules! run {
                ($pool:expr, $row:ty) => {{
                    let q = sqlx::query(&query);
                    let q = match &session {
                        UserId::Integer(i) => q.bind(*i),
                        UserId::String(s) => q.bind(s.clone()),
                    };
                    let row: Option<$row> = q.fetch_optional($pool).await?;
                    match row {
                        None => None,
                        Some(row) => user_id(&row)?,
                    }
                }};
            }
            Ok::<_, DatabaseError>(match &pool {
                Pool::Sqlite(p) => run!(p, sqlx::sqlite::SqliteRow),
                Pool::Postgres(p) => run!(p, sqlx::postgres::PgRow),
                Pool::MySql(p) => run!(p, sqlx::mysql::MySqlRow),
            })
        });
        run.await.map_err(|_| thread_ended())?
    }
}

/// The row's `user_id`: an Integer, a String (UUID keys), or NULL — a row that names no user is no login.
fn user_id<R: sqlx::Row>(row: &R) -> Result<Option<UserId>, DatabaseError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        return Ok(v.map(UserId::Integer));
    }
    match row.try_get::<Option<String>, _>(0) {
        // PostgreSQL reads it as text: an integer id comes back as its digits.
        Ok(Some(s)) => Ok(Some(s.parse::<i64>().map_or(UserId::String(s), UserId::Integer))),
        Ok(None) => Ok(None),
        Err(_) => Err(DatabaseError::UserIdType),
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
            (
                "postgres",
                r#"SELECT "user_id"::text FROM "sessions" WHERE "id" = $1 LIMIT 1"#.to_owned()
            )
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
    fn postgresql_keys_of_any_type_and_rows_without_a_user() {
        let Some(pg) = testkit::Postgres::start() else { return };
        pg.psql(
            "CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id bigint);
             INSERT INTO sessions (id, user_id) VALUES (7, 1), (8, NULL);
             CREATE TABLE uuid_sessions (id uuid PRIMARY KEY, user_id uuid NOT NULL);
             INSERT INTO uuid_sessions VALUES ('6f1c2f8e-2b1a-4c57-9e0f-1d2c3b4a5f60', '0b7c4d9a-8e2f-4a13-b6d5-7c8e9f0a1b2c');",
        );
        block_on(async {
            let db = DatabaseAuthSessions::from_database_url(&pg.url()).unwrap();
            assert_eq!(db.user_of_session(&7.into()).await.unwrap(), Some(1.into()));
            assert_eq!(
                db.user_of_session(&8.into()).await.unwrap(),
                None,
                "NULL user_id: no login"
            );
            assert_eq!(db.user_of_session(&"7".into()).await.unwrap(), Some(1.into()));
            db.check().await.unwrap();
            let uuid = DatabaseAuthSessions::from_database_url(&pg.url())
                .unwrap()
                .table("uuid_sessions", "id", "user_id")
                .unwrap();
            assert_eq!(
                uuid.user_of_session(&"6f1c2f8e-2b1a-4c57-9e0f-1d2c3b4a5f60".into()).await.unwrap(),
                Some("0b7c4d9a-8e2f-4a13-b6d5-7c8e9f0a1b2c".into())
            );
            assert_eq!(uuid.user_of_session(&"not-a-uuid".into()).await.unwrap(), None);
            uuid.check().await.unwrap();
            // What `railbridge serve --check` runs, through the cache.
            let table = DatabaseAuthSessions::from_database_url(&pg.url())
                .unwrap()
                .table("uuid_sessions", "id", "user_id")
                .unwrap();
            let auth = crate::identity::RailsAuthentication::new(
                crate::identity::CachedAuthSessions::new(table, 10, Duration::from_secs(2)),
            );
            auth.check().await.unwrap();
        });
        // Lookups from several runtimes at once (the gateway runs one per worker): the pool lives on its own thread.
        let db = std::sync::Arc::new(DatabaseAuthSessions::from_database_url(&pg.url()).unwrap());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let db = db.clone();
                std::thread::spawn(move || {
                    block_on(async {
                        for _ in 0..20 {
                            assert_eq!(
                                db.user_of_session(&7.into()).await.unwrap(),
                                Some(1.into())
                            );
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
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
