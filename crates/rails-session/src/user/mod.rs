//! Loading the signed-in user: the [`LoadUser`] trait (Warden's `serialize_from_session`), the salt check that
//! makes a password change in Rails sign the user out here too, and the [`CurrentUser`] it produces.

#[cfg(feature = "user-api")]
mod http;

#[cfg(feature = "user-api")]
pub use http::{ApiUser, HttpUserLoader, HttpUserLoaderBuilder, UserApiError};

use std::any::{Any, TypeId};
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use subtle::ConstantTimeEq as _;

use crate::identity::{self, Identity, UserId};
use crate::session::Session;

/// Loads a user record by the id the session names — Warden's `serialize_from_session`. Implement it over your
/// database, or use the built-in [`HttpUserLoader`] (feature `user-api`).
///
/// ```
/// use rails_session::{LoadUser, UserId};
///
/// #[derive(Clone)]
/// struct User { id: i64, encrypted_password: String }
///
/// struct Db;
///
/// impl LoadUser for Db {
///     type User = User;
///     type Error = std::io::Error;
///
///     async fn load_user(&self, id: &UserId) -> Result<Option<User>, std::io::Error> {
///         Ok(match id {
///             UserId::Integer(1) => Some(User { id: 1, encrypted_password: "$2a$04$abcdefghijklmnopqrstuvwxyz0123456789".into() }),
///             _ => None,
///         })
///     }
///
///     // Devise's authenticatable_salt: with it, a password change in Rails signs the user out here too.
///     fn authenticatable_salt<'u>(&self, user: &'u User) -> Option<&'u str> {
///         user.encrypted_password.get(..29)
///     }
/// }
/// ```
pub trait LoadUser: Send + Sync + 'static {
    /// The user record.
    type User: Clone + Send + Sync + 'static;
    /// Why a lookup failed (the backend is down, …). A missing user is `Ok(None)`, not an error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The user with this id, or `None` if there is none (deleted since sign-in).
    fn load_user(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Option<Self::User>, Self::Error>> + Send;

    /// Devise's `authenticatable_salt` of the record (the first 29 characters of its bcrypt hash), if known.
    /// When it is given, the salt stored at sign-in must match it, exactly as Warden checks.
    fn authenticatable_salt<'u>(&self, user: &'u Self::User) -> Option<&'u str> {
        let _ = user;
        None
    }
}

/// The signed-in user: the record the loader returned (or the [`Identity`] itself when no loader is configured),
/// and the identity the session holds. Dereferences to the user.
#[derive(Clone, Debug)]
pub struct CurrentUser<U> {
    user: U,
    identity: Identity,
}

impl<U> CurrentUser<U> {
    /// The user record.
    pub fn user(&self) -> &U {
        &self.user
    }

    /// The identity from the session (id, scope).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The user record, by value.
    pub fn into_inner(self) -> U {
        self.user
    }
}

impl<U> Deref for CurrentUser<U> {
    type Target = U;

    fn deref(&self) -> &U {
        &self.user
    }
}

/// Why the current user could not be determined (as opposed to: nobody is signed in).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The user loader failed (the User API is down). Answered with 503 by default.
    #[error("the user could not be loaded: {0}")]
    Unavailable(String),
    /// The server-side session store could not be read (down, or slower than its timeout): nobody can say who is
    /// signed in. Always answered with 503 (fail-closed), whatever [`OnLoaderError`] says.
    #[error("the session store is unavailable: {0}")]
    SessionStoreUnavailable(String),
    /// `CurrentUser<U>` was asked for a user type no loader produces.
    #[error(
        "no user loader produces `{0}`: call SessionConfig::user_loader with a LoadUser whose User is this type, \
         or extract CurrentUser<Identity>"
    )]
    NoLoader(&'static str),
}

/// What to do when the user loader fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnLoaderError {
    /// Fail closed with `503 Service Unavailable` (default).
    #[default]
    ServiceUnavailable,
    /// Treat the request as signed out (`401` where a user is required, `None` for `Option<CurrentUser<_>>`).
    SignedOut,
}

impl OnLoaderError {
    /// What a failed lookup (`error`) answers: 503, or nobody signed in.
    pub(crate) fn outcome<T>(self, error: String) -> Result<Option<T>, AuthError> {
        match self {
            OnLoaderError::ServiceUnavailable => Err(AuthError::Unavailable(error)),
            OnLoaderError::SignedOut => Ok(None),
        }
    }
}

/// Resolves the current user of one user type.
pub(crate) trait ResolveUser<U>: Send + Sync + 'static {
    fn resolve<'a>(
        &'a self,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Option<CurrentUser<U>>, AuthError>>;
}

/// Resolves "is anyone signed in", whatever the user type.
pub(crate) trait ResolveAny: Send + Sync + 'static {
    fn resolve_identity<'a>(
        &'a self,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Option<Identity>, AuthError>>;
}

/// The resolvers a configuration knows: one per user type, and the primary one behind `logged_in`.
#[derive(Clone)]
pub(crate) struct Resolvers {
    by_type: Vec<(TypeId, &'static str, Arc<dyn Any + Send + Sync>)>,
    primary: Arc<dyn ResolveAny>,
    /// `CurrentUser<Identity>` is the built-in resolver (no loader registered for `Identity`).
    builtin_identity: bool,
}

impl Default for Resolvers {
    fn default() -> Self {
        let identity: Arc<dyn ResolveUser<Identity>> = Arc::new(IdentityResolver);
        Resolvers {
            by_type: vec![(
                TypeId::of::<Identity>(),
                std::any::type_name::<Identity>(),
                Arc::new(identity.clone()),
            )],
            primary: Arc::new(Primary(identity)),
            builtin_identity: true,
        }
    }
}

impl Resolvers {
    pub(crate) fn add<L: LoadUser>(&mut self, loader: L, on_error: OnLoaderError) {
        let resolver: Arc<dyn ResolveUser<L::User>> = Arc::new(LoaderResolver { loader, on_error });
        self.by_type.retain(|(id, _, _)| *id != TypeId::of::<L::User>());
        self.by_type.push((
            TypeId::of::<L::User>(),
            std::any::type_name::<L::User>(),
            Arc::new(resolver.clone()),
        ));
        self.primary = Arc::new(Primary(resolver));
        if TypeId::of::<L::User>() == TypeId::of::<Identity>() {
            self.builtin_identity = false;
        }
    }

    fn get<U: 'static>(&self) -> Option<Arc<dyn ResolveUser<U>>> {
        self.by_type
            .iter()
            .find(|(id, _, _)| *id == TypeId::of::<U>())
            .and_then(|(_, _, r)| r.downcast_ref::<Arc<dyn ResolveUser<U>>>().cloned())
    }
}

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_type.iter().map(|(_, name, _)| name)).finish()
    }
}

struct Primary<U>(Arc<dyn ResolveUser<U>>);

impl<U: Send + Sync + 'static> ResolveAny for Primary<U> {
    fn resolve_identity<'a>(
        &'a self,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        Box::pin(async move { Ok(self.0.resolve(session).await?.map(|u| u.identity)) })
    }
}

struct IdentityResolver;

impl ResolveUser<Identity> for IdentityResolver {
    fn resolve<'a>(
        &'a self,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Option<CurrentUser<Identity>>, AuthError>> {
        Box::pin(identity_user(session))
    }
}

/// `CurrentUser<Identity>`: the identity the session holds, no loader.
async fn identity_user(session: &Session) -> Result<Option<CurrentUser<Identity>>, AuthError> {
    let Some(identity) = identity::identity(session).await? else { return Ok(None) };
    identity::touch(session, &identity).await;
    Ok(Some(CurrentUser { user: identity.clone(), identity }))
}

struct LoaderResolver<L> {
    loader: L,
    on_error: OnLoaderError,
}

impl<L: LoadUser> ResolveUser<L::User> for LoaderResolver<L> {
    fn resolve<'a>(
        &'a self,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Option<CurrentUser<L::User>>, AuthError>> {
        Box::pin(async move {
            let Some(identity) = identity::identity(session).await? else { return Ok(None) };
            let user = match self.loader.load_user(&identity.id).await {
                Ok(Some(user)) => user,
                Ok(None) => {
                    tracing::info!(user_id = %identity.id, "the session's user no longer exists; treating as signed out");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::error!(user_id = %identity.id, error = %e, "user lookup failed");
                    return self.on_error.outcome(e.to_string());
                }
            };
            if identity.is_warden() {
                if let Some(current) = self.loader.authenticatable_salt(&user) {
                    if !salt_matches(identity.authenticatable_salt(), current) {
                        tracing::info!(user_id = %identity.id, "authenticatable salt changed (password changed); treating as signed out");
                        return Ok(None);
                    }
                }
            }
            identity::touch(session, &identity).await;
            Ok(Some(CurrentUser { user, identity }))
        })
    }
}

/// The built-in user as `CurrentUser<U>` for a `U` that was checked to be `Identity` (`Any` hands the value over;
/// for any other `U` this is `None`).
fn as_user<U: 'static>(user: Option<CurrentUser<Identity>>) -> Option<CurrentUser<U>> {
    let mut user = Some(user);
    (&mut user as &mut dyn Any).downcast_mut::<Option<Option<CurrentUser<U>>>>()?.take().flatten()
}

/// Warden: `record.authenticatable_salt == salt`, in constant time.
fn salt_matches(stored: Option<&str>, current: &str) -> bool {
    stored.is_some_and(|s| bool::from(s.as_bytes().ct_eq(current.as_bytes())))
}

pub(crate) type Memo<U> = Result<Option<CurrentUser<U>>, AuthError>;

impl Session {
    /// The signed-in user of type `U` — `Identity` always works; any other type needs a loader registered with
    /// [`crate::SessionConfig::user_loader`]. Resolved once per request.
    pub async fn current_user<U: Clone + Send + Sync + 'static>(
        &self,
    ) -> Result<Option<CurrentUser<U>>, AuthError> {
        if let Some(now) = self.current_user_now::<U>() {
            return now;
        }
        if TypeId::of::<U>() == TypeId::of::<Identity>() && self.config().resolvers.builtin_identity
        {
            // Resolved inline (no boxed resolver, no memo: reading the decoded session is cheaper).
            return identity_user(self).await.map(as_user);
        }
        if let Some(memo) = self.memo::<Memo<U>>() {
            return memo;
        }
        let resolver = self
            .config()
            .resolvers
            .get::<U>()
            .ok_or_else(|| AuthError::NoLoader(std::any::type_name::<U>()))?;
        let result = resolver.resolve(self).await;
        self.set_memo::<Memo<U>>(result.clone());
        result
    }

    /// [`Session::current_user`] when it needs no waiting — `CurrentUser<Identity>` (no loader) from the cookie
    /// store, the most common extractor on every request: answered synchronously, without a future. `None` when
    /// it needs to wait (a loader, an asynchronous store).
    pub(crate) fn current_user_now<U: 'static>(&self) -> Option<Memo<U>> {
        if TypeId::of::<U>() != TypeId::of::<Identity>()
            || !self.config().resolvers.builtin_identity
        {
            return None;
        }
        let user = match identity::identity_now(self)? {
            Some(identity) => {
                identity::touch_now(self, &identity)?;
                Some(CurrentUser { user: identity.clone(), identity })
            }
            None => None,
        };
        Some(Ok(as_user(user)))
    }

    /// Whether a user is signed in (through the configured loader and its salt check, if any).
    pub async fn logged_in(&self) -> Result<bool, AuthError> {
        Ok(self.current_identity().await?.is_some())
    }

    /// The identity of the signed-in user (through the configured loader and its salt check, if any).
    pub async fn current_identity(&self) -> Result<Option<Identity>, AuthError> {
        if let Some(memo) = self.memo::<Result<Option<Identity>, AuthError>>() {
            return memo;
        }
        let result = self.config().resolvers.primary.resolve_identity(self).await;
        self.set_memo(result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;
    use rails_cookie::{Hash, Profile, SecretKeyBase, Value};

    #[derive(Clone, Debug, PartialEq)]
    struct User {
        id: i64,
        salt: &'static str,
    }

    struct Fixed(Result<Option<User>, std::io::ErrorKind>);

    impl LoadUser for Fixed {
        type User = User;
        type Error = std::io::Error;
        async fn load_user(&self, _id: &UserId) -> Result<Option<User>, std::io::Error> {
            self.0.clone().map_err(std::io::Error::from)
        }
        fn authenticatable_salt<'u>(&self, user: &'u User) -> Option<&'u str> {
            Some(user.salt)
        }
    }

    const SALT: &str = "$2a$04$t5oXLMcxWj/RkeIfFyX9r.";

    fn session(loader: Fixed, on_error: OnLoaderError) -> Session {
        let config = SessionConfig::new(
            Profile::rails_6_1(),
            SecretKeyBase::new("k".repeat(64)).unwrap(),
            "_s",
        )
        .unwrap()
        .user_loader_with(loader, on_error);
        let mut h = Hash::new();
        h.insert("session_id", "a".repeat(32).into());
        h.insert(
            "warden.user.user.key",
            Value::Array(vec![Value::Array(vec![1.into()]), SALT.into()]),
        );
        let cookie =
            crate::store::CookieStore::new(config.codec.clone(), "_s").save_now(&h, None).unwrap();
        Session::new(Arc::new(config), Some(cookie), None)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).unwrap()
    }

    #[test]
    fn salt_must_match() {
        let s = session(Fixed(Ok(Some(User { id: 1, salt: SALT }))), OnLoaderError::default());
        assert_eq!(block_on(s.current_user::<User>()).unwrap().unwrap().id, 1);
        assert!(block_on(s.logged_in()).unwrap());
        let s = session(
            Fixed(Ok(Some(User { id: 1, salt: "$2a$04$otherotherotherotherot" }))),
            OnLoaderError::default(),
        );
        assert!(block_on(s.current_user::<User>()).unwrap().is_none());
        assert!(!block_on(s.logged_in()).unwrap());
    }

    #[test]
    fn loader_errors_fail_closed_or_sign_out() {
        let down = || Fixed(Err(std::io::ErrorKind::ConnectionRefused));
        let s = session(down(), OnLoaderError::ServiceUnavailable);
        assert!(matches!(block_on(s.current_user::<User>()), Err(AuthError::Unavailable(_))));
        let s = session(down(), OnLoaderError::SignedOut);
        assert!(block_on(s.current_user::<User>()).unwrap().is_none());
    }

    #[test]
    fn identity_needs_no_loader_and_unknown_types_are_an_error() {
        let s = session(Fixed(Ok(None)), OnLoaderError::default());
        let id = block_on(s.current_user::<Identity>()).unwrap().unwrap();
        assert_eq!(id.id, UserId::Integer(1));
        assert!(block_on(s.current_user::<User>()).unwrap().is_none(), "deleted user");
        assert!(matches!(block_on(s.current_user::<String>()), Err(AuthError::NoLoader(_))));
    }
}
