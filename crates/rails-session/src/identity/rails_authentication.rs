//! Logins of Rails 8's authentication generator (`bin/rails generate authentication`): a permanent **signed**
//! cookie `session_id` holding the id of a row of the `sessions` table, whose `user_id` is the signed-in user.
//!
//! The generator's `resume_session` is `Session.find_by(id: cookies.signed[:session_id])`: the cookie is verified
//! with the app's signed-cookie key and the purpose/expiry envelope of its Rails version (every rotation the
//! configuration has included), then the row is looked up. Sign-out destroys the row, so a lookup that finds
//! nothing is a signed-out request; lookups are cached for a short time ([`CachedAuthSessions`]), which bounds how
//! long a sign-out takes to show here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Identity, UserId};
use crate::session::Session;
use crate::user::{AuthError, OnLoaderError};

/// Finds the user of an authentication session row: `Session.find_by(id:)&.user_id`. Implemented over the app's
/// database by [`DatabaseAuthSessions`](crate::DatabaseAuthSessions) (feature `database`); implement it yourself
/// to ask another service.
///
/// ```
/// use rails_session::{FindAuthSession, UserId};
///
/// struct Fixed;
///
/// impl FindAuthSession for Fixed {
///     type Error = std::io::Error;
///
///     async fn user_of_session(&self, session: &UserId) -> Result<Option<UserId>, std::io::Error> {
///         Ok((session == &UserId::Integer(7)).then_some(UserId::Integer(1)))
///     }
/// }
/// ```
pub trait FindAuthSession: Send + Sync + 'static {
    /// Why a lookup failed (the database is down, …). A missing row is `Ok(None)`, not an error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The `user_id` of the row with this id, or `None` when there is no such row (signed out).
    fn user_of_session(
        &self,
        session: &UserId,
    ) -> impl Future<Output = Result<Option<UserId>, Self::Error>> + Send;
}

/// [`FindAuthSession`] with its error as text, behind a pointer (the configuration holds any implementation).
pub(crate) trait DynFindAuthSession: Send + Sync + 'static {
    fn user_of_session<'a>(
        &'a self,
        session: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<UserId>, String>>;
}

impl<F: FindAuthSession> DynFindAuthSession for F {
    fn user_of_session<'a>(
        &'a self,
        session: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<UserId>, String>> {
        Box::pin(async move {
            FindAuthSession::user_of_session(self, session).await.map_err(|e| e.to_string())
        })
    }
}

/// Where a Rails 8 authentication login lives and how to look it up.
#[derive(Clone)]
pub struct RailsAuthentication {
    pub(crate) cookie: String,
    pub(crate) sessions: Arc<dyn DynFindAuthSession>,
    pub(crate) on_error: OnLoaderError,
}

impl RailsAuthentication {
    /// The generator's cookie (`session_id`), looked up through `sessions`; a failed lookup answers 503
    /// (fail-closed) unless [`RailsAuthentication::on_error`] says otherwise.
    pub fn new(sessions: impl FindAuthSession) -> Self {
        RailsAuthentication {
            cookie: "session_id".into(),
            sessions: Arc::new(sessions),
            on_error: OnLoaderError::ServiceUnavailable,
        }
    }

    /// The signed cookie's name, when the app renamed it.
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = name.into();
        self
    }

    /// What a failed lookup means: 503 (default) or signed out.
    pub fn on_error(mut self, on_error: OnLoaderError) -> Self {
        self.on_error = on_error;
        self
    }

    /// The signed cookie's name.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// Runs one lookup (of a row id no generator writes) to see that the sessions can be read: for start-up
    /// checks such as `railbridge serve --check`. The id is a String, which the database reader compares as text
    /// on PostgreSQL, so the check fits integer and UUID keys alike.
    pub async fn check(&self) -> Result<(), String> {
        self.sessions.user_of_session(&UserId::String("0".into())).await.map(|_| ())
    }

    /// The `user_id` of the `sessions` row `row`, or `None` once it is gone (signed out): for checks made without
    /// the browser's cookie, such as a gateway refreshing a token derived from this login.
    pub async fn user_of_session(&self, row: &UserId) -> Result<Option<UserId>, String> {
        self.sessions.user_of_session(row).await
    }
}

impl fmt::Debug for RailsAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RailsAuthentication")
            .field("cookie", &self.cookie)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RailsAuthentication {
    fn eq(&self, other: &Self) -> bool {
        self.cookie == other.cookie
            && self.on_error == other.on_error
            && Arc::ptr_eq(&self.sessions, &other.sessions)
    }
}

impl Eq for RailsAuthentication {}

/// What one request found, so that the guard and the extractors of one request make one lookup and agree.
#[derive(Clone)]
struct Resolved(Result<Option<Identity>, AuthError>);

/// `resume_session`: the signed cookie, then the row — once per request.
pub(crate) async fn identity(
    session: &Session,
    auth: &RailsAuthentication,
) -> Result<Option<Identity>, AuthError> {
    if let Some(Resolved(done)) = session.memo::<Resolved>() {
        return done;
    }
    let result = lookup(session, auth).await;
    session.set_memo(Resolved(result.clone()));
    result
}

async fn lookup(
    session: &Session,
    auth: &RailsAuthentication,
) -> Result<Option<Identity>, AuthError> {
    let Some(id) = auth_session_id(session, &auth.cookie) else { return Ok(None) };
    match auth.sessions.user_of_session(&id).await {
        Ok(Some(user)) => Ok(Some(Identity::of_auth_session(user, id))),
        Ok(None) => {
            tracing::debug!(auth_session = %id, "no such authentication session (signed out); treating as signed out");
            Ok(None)
        }
        Err(e) => {
            tracing::error!(error = %e, "authentication session lookup failed");
            auth.on_error.outcome(e)
        }
    }
}

/// `cookies.signed[name]` as an id: verified with the configuration's signed-cookie verifiers (its rotations
/// included), purpose `cookie.<name>`, expiry checked. Any other cookie — missing, tampered, expired, another
/// purpose, not an id — is no login.
fn auth_session_id(session: &Session, name: &str) -> Option<UserId> {
    let raw = session.request_cookie(name)?;
    let codec = &session.config().codec;
    let decoded = match codec.decode_signed_at(
        name,
        &rails_cookie::unescape(&raw),
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(
                cookie = name,
                reason = e.kind(),
                "signed authentication cookie refused"
            );
            return None;
        }
    };
    // An Integer, or a String for UUID primary keys: a record id as `session[:user_id]` holds one.
    UserId::from_value(&decoded.value)
}

#[cfg(any(feature = "user-api", feature = "database"))]
pub use cache::CachedAuthSessions;

#[cfg(any(feature = "user-api", feature = "database"))]
mod cache {
    use std::fmt;
    use std::sync::Arc;
    use std::time::Duration;

    use super::FindAuthSession;
    use crate::identity::UserId;

    /// Remembers lookups for a short time, so that a signed-in user costs one query per `ttl` rather than one per
    /// request. A sign-out (the row deleted) shows here within `ttl`. Failed lookups are not remembered; concurrent
    /// lookups of the same id make one query.
    pub struct CachedAuthSessions<F> {
        inner: Arc<F>,
        cache: moka::future::Cache<UserId, Option<UserId>>,
        ttl: Duration,
    }

    impl<F: FindAuthSession> CachedAuthSessions<F> {
        /// At most `capacity` ids, each for `ttl` (zero: no caching).
        pub fn new(inner: F, capacity: u64, ttl: Duration) -> Self {
            let cache = moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_nanos(1)))
                .build();
            CachedAuthSessions { inner: Arc::new(inner), cache, ttl }
        }
    }

    impl<F> fmt::Debug for CachedAuthSessions<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CachedAuthSessions").field("ttl", &self.ttl).finish_non_exhaustive()
        }
    }

    impl<F: FindAuthSession> FindAuthSession for CachedAuthSessions<F> {
        type Error = Arc<F::Error>;

        async fn user_of_session(&self, session: &UserId) -> Result<Option<UserId>, Self::Error> {
            if self.ttl.is_zero() {
                return self.inner.user_of_session(session).await.map_err(Arc::new);
            }
            let inner = Arc::clone(&self.inner);
            let id = session.clone();
            self.cache
                .try_get_with(session.clone(), async move { inner.user_of_session(&id).await })
                .await
        }
    }

    #[cfg(test)]
    mod tests {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::*;

        struct Counting(AtomicUsize, Result<Option<UserId>, std::io::ErrorKind>);

        impl FindAuthSession for Counting {
            type Error = std::io::Error;
            async fn user_of_session(&self, _: &UserId) -> Result<Option<UserId>, std::io::Error> {
                self.0.fetch_add(1, Ordering::SeqCst);
                self.1.clone().map_err(std::io::Error::from)
            }
        }

        fn block_on<T>(f: impl Future<Output = T>) -> T {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
        }

        #[test]
        fn the_cache_remembers_answers_for_its_ttl_but_not_failures() {
            block_on(async {
                let cached = CachedAuthSessions::new(
                    Counting(AtomicUsize::new(0), Ok(Some(1.into()))),
                    100,
                    Duration::from_millis(300),
                );
                for _ in 0..3 {
                    assert_eq!(cached.user_of_session(&7.into()).await.unwrap(), Some(1.into()));
                }
                assert_eq!(cached.inner.0.load(Ordering::SeqCst), 1);
                tokio::time::sleep(Duration::from_millis(400)).await;
                cached.user_of_session(&7.into()).await.unwrap();
                assert_eq!(cached.inner.0.load(Ordering::SeqCst), 2, "asked again after the TTL");

                let down = CachedAuthSessions::new(
                    Counting(AtomicUsize::new(0), Err(std::io::ErrorKind::ConnectionRefused)),
                    100,
                    Duration::from_secs(2),
                );
                assert!(down.user_of_session(&7.into()).await.is_err());
                assert!(down.user_of_session(&7.into()).await.is_err());
                assert_eq!(down.inner.0.load(Ordering::SeqCst), 2, "failures are not cached");

                let uncached = CachedAuthSessions::new(
                    Counting(AtomicUsize::new(0), Ok(None)),
                    100,
                    Duration::ZERO,
                );
                uncached.user_of_session(&7.into()).await.unwrap();
                uncached.user_of_session(&7.into()).await.unwrap();
                assert_eq!(uncached.inner.0.load(Ordering::SeqCst), 2, "TTL 0 asks every time");
            });
        }
    }
}
