//! Who is signed in, according to the session: Devise/Warden's `warden.user.<scope>.key` for any scope, or a
//! plain session key (`user_id`) for apps without Warden; Devise `:timeoutable` on top.

#[cfg(feature = "database")]
pub(crate) mod database;
mod rails_authentication;
mod warden;

#[cfg(feature = "database")]
pub use database::{DatabaseAuthSessions, DatabaseError};

#[cfg(any(feature = "user-api", feature = "database"))]
pub use rails_authentication::CachedAuthSessions;
pub use rails_authentication::{FindAuthSession, RailsAuthentication};

use std::fmt;
use std::time::Duration;

use rails_cookie::{Hash, Value};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::session::Session;

/// A record id as `to_key` gives it: an Integer, or a String for UUID primary keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum UserId {
    /// An Integer id.
    Integer(i64),
    /// A String id (UUID keys).
    String(String),
}

impl UserId {
    /// A record id as a session or a signed cookie holds one: an Integer, or a non-empty String (UUID keys).
    ///
    /// ```
    /// use rails_session::{rails_cookie::Value, UserId};
    /// assert_eq!(UserId::from_value(&Value::Integer(42)), Some(UserId::Integer(42)));
    /// assert_eq!(UserId::from_value(&Value::Nil), None);
    /// ```
    #[must_use]
    pub fn from_value(v: &Value) -> Option<UserId> {
        match v {
            Value::Integer(i) => Some(UserId::Integer(*i)),
            v => v.as_str().filter(|s| !s.is_empty()).map(|s| UserId::String(s.to_owned())),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Integer(i) => write!(f, "{i}"),
            UserId::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for UserId {
    fn from(i: i64) -> Self {
        UserId::Integer(i)
    }
}

impl From<&str> for UserId {
    fn from(s: &str) -> Self {
        UserId::String(s.to_owned())
    }
}

/// Where the session says who is signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// Devise/Warden: `warden.user.<scope>.key`.
    Warden {
        /// The Devise scope (`user`, `admin`, …).
        scope: String,
    },
    /// A path of session keys whose value is the user id (`session[:user_id] = user.id`).
    SessionPath(Vec<String>),
    /// Rails 8's authentication generator: a signed cookie naming a row of the `sessions` table.
    RailsAuthentication(RailsAuthentication),
}

/// How to find the signed-in user in the session.
///
/// ```
/// use std::time::Duration;
/// use rails_session::IdentityConfig;
/// // Devise's :admin scope with :timeoutable (timeout_in = 30 minutes).
/// let devise = IdentityConfig::warden("admin").timeout_in(Duration::from_secs(1800));
/// // An app that does `session[:user_id] = user.id` itself.
/// let plain = IdentityConfig::session_path(["user_id"]);
/// # let _ = (devise, plain);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct IdentityConfig {
    pub(crate) source: IdentitySource,
    /// The Warden scope's names, built once rather than per request.
    names: Option<WardenNames>,
    pub(crate) timeout_in: Option<Duration>,
    pub(crate) touch: bool,
}

impl IdentityConfig {
    /// Devise/Warden scope `scope`.
    pub fn warden(scope: impl Into<String>) -> Self {
        let scope = scope.into();
        let names = Some(WardenNames {
            key: warden::key_name(&scope),
            session: warden::session_name(&scope),
        });
        IdentityConfig {
            source: IdentitySource::Warden { scope },
            names,
            timeout_in: None,
            touch: true,
        }
    }

    /// A plain session key, or a path into nested hashes (`["auth", "user_id"]`).
    pub fn session_path<I, S>(path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        IdentityConfig {
            source: IdentitySource::SessionPath(path.into_iter().map(Into::into).collect()),
            names: None,
            timeout_in: None,
            touch: true,
        }
    }

    /// Rails 8's authentication generator (`bin/rails generate authentication`): the signed `session_id` cookie
    /// names a row of the `sessions` table, looked up through `auth`.
    pub fn rails_authentication(auth: RailsAuthentication) -> Self {
        IdentityConfig {
            source: IdentitySource::RailsAuthentication(auth),
            names: None,
            timeout_in: None,
            touch: false,
        }
    }

    /// Devise `:timeoutable`: a session whose `last_request_at` is `timeout_in` or more in the past is signed
    /// out. Like Devise, each authenticated request then records a new `last_request_at` (see
    /// [`IdentityConfig::touch_last_request_at`]). Only for Warden sources.
    pub fn timeout_in(mut self, timeout: Duration) -> Self {
        self.timeout_in = Some(timeout);
        self
    }

    /// Whether an authenticated request updates `last_request_at` as Devise does (default on when a timeout is
    /// set). Off, a user active only on the Rust side times out on the Rails side.
    pub fn touch_last_request_at(mut self, touch: bool) -> Self {
        self.touch = touch;
        self
    }

    /// The signed-in user a decoded session records, read as the layers read it (Devise `:timeoutable` against
    /// the current time): for tools that hold a session outside a request, such as `railbridge cookie inspect`.
    /// Always `None` for Rails 8 authentication, whose login is a cookie of its own and a database row.
    ///
    /// ```
    /// use rails_session::rails_cookie::{Hash, Value};
    /// use rails_session::{IdentityConfig, UserId};
    /// let mut session = Hash::new();
    /// session.insert("warden.user.admin.key", Value::Array(vec![Value::Array(vec![7.into()]), "$2a$12$salt".into()]));
    /// let identity = IdentityConfig::warden("admin").find_in(&session).expect("signed in");
    /// assert_eq!((&identity.id, identity.scope()), (&UserId::Integer(7), Some("admin")));
    /// assert!(IdentityConfig::warden("user").find_in(&session).is_none());
    /// ```
    #[must_use]
    pub fn find_in(&self, session: &Hash) -> Option<Identity> {
        identity_in(session, self, now)
    }

    /// The source.
    #[must_use]
    pub fn source(&self) -> &IdentitySource {
        &self.source
    }

    /// The cookie of its own that carries the login, beside the session cookie: Rails 8 authentication's signed
    /// `session_id`. `None` for logins kept in the session.
    #[must_use]
    pub fn login_cookie(&self) -> Option<&str> {
        match &self.source {
            IdentitySource::RailsAuthentication(auth) => Some(auth.cookie_name()),
            _ => None,
        }
    }
}

/// `warden.user.<scope>.key` and `warden.user.<scope>.session` of one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WardenNames {
    key: String,
    session: String,
}

/// The signed-in user as the session records it: id, Devise scope and the authenticatable salt. Cheap to clone
/// (the strings are shared).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The user id.
    pub id: UserId,
    scope: Option<SmallStr>,
    salt: Option<SmallStr>,
    /// The `sessions` row of a Rails 8 authentication login.
    auth_session: Option<UserId>,
}

/// A short string kept inline: an identity is built on every authenticated request, and its scope (`user`) and
/// Devise salt (29 bytes) fit. Neither a heap allocation nor a reference count shared between threads (whose
/// cache line would bounce between cores on every request). Longer strings go to the heap.
#[derive(Clone)]
enum SmallStr {
    Inline { len: u8, bytes: [u8; SMALL_STR_INLINE] },
    Heap(Box<str>),
}

const SMALL_STR_INLINE: usize = 32;

impl SmallStr {
    fn new(s: &str) -> SmallStr {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= SMALL_STR_INLINE => {
                let mut bytes = [0; SMALL_STR_INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                SmallStr::Inline { len, bytes }
            }
            _ => SmallStr::Heap(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` whole, so always valid UTF-8.
            SmallStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            SmallStr::Heap(s) => s,
        }
    }
}

impl PartialEq for SmallStr {
    fn eq(&self, other: &SmallStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallStr {}

impl Identity {
    /// An identity (for tests and custom loaders).
    #[must_use]
    pub fn new(id: UserId, scope: Option<String>, authenticatable_salt: Option<String>) -> Self {
        Identity {
            id,
            scope: scope.as_deref().map(SmallStr::new),
            salt: authenticatable_salt.as_deref().map(SmallStr::new),
            auth_session: None,
        }
    }

    /// The user of a Rails 8 authentication login, and the id of its `sessions` row.
    pub(crate) fn of_auth_session(user: UserId, auth_session: UserId) -> Self {
        Identity { id: user, scope: None, salt: None, auth_session: Some(auth_session) }
    }

    /// For a Rails 8 authentication login: the id of its `sessions` row (what the signed `session_id` cookie
    /// holds).
    #[must_use]
    pub fn auth_session_id(&self) -> Option<&UserId> {
        self.auth_session.as_ref()
    }

    /// The Devise scope, for Warden sources.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_ref().map(SmallStr::as_str)
    }

    /// The `authenticatable_salt` Warden stored (the first 29 characters of the bcrypt hash at sign-in).
    #[must_use]
    pub fn authenticatable_salt(&self) -> Option<&str> {
        self.salt.as_ref().map(SmallStr::as_str)
    }

    /// Whether the identity came from Warden (and so carries a salt to check).
    #[must_use]
    pub fn is_warden(&self) -> bool {
        self.scope.is_some()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .field("scope", &self.scope())
            .field("authenticatable_salt", &self.salt.as_ref().map(|_| "[redacted]"))
            .field("auth_session", &self.auth_session)
            .finish()
    }
}

impl Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Identity", 2)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("scope", &self.scope())?;
        s.end()
    }
}

/// Reads the identity from the session, applying the Devise timeout (or, for Rails 8 authentication, from the
/// signed cookie and its `sessions` row).
pub(crate) async fn identity(
    session: &Session,
) -> Result<Option<Identity>, crate::user::AuthError> {
    let config = &session.config().identity;
    if let IdentitySource::RailsAuthentication(auth) = &config.source {
        return rails_authentication::identity(session, auth).await;
    }
    let found = session.with_data(|data| identity_in(data, config, now)).await;
    match session.failure_now() {
        Some(e) => Err(crate::user::AuthError::SessionStoreUnavailable(e)),
        None => Ok(found),
    }
}

/// [`identity`] without waiting: `None` when the session has yet to come from an asynchronous store, or the login
/// needs a lookup.
pub(crate) fn identity_now(session: &Session) -> Option<Option<Identity>> {
    let config = &session.config().identity;
    if matches!(config.source, IdentitySource::RailsAuthentication(_)) {
        return None;
    }
    session.with_data_now(|data| identity_in(data, config, now)).ok()
}

/// The clock, read only when a timeout needs it.
fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn identity_in(data: &Hash, config: &IdentityConfig, now: fn() -> i64) -> Option<Identity> {
    match &config.source {
        IdentitySource::Warden { scope } => {
            let names = config.names.as_ref()?;
            let raw = data.get(&names.key)?;
            let Some((id, salt)) = warden::parse_key(raw) else {
                tracing::warn!(scope = %scope, "unreadable warden.user.{scope}.key in the session; treating as signed out");
                return None;
            };
            if let Some(timeout) = config.timeout_in {
                let last = data.get(&names.session).and_then(warden::last_request_at);
                let timeout = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
                // Devise: timedout if last_request_at <= timeout_in.ago.
                if last.is_some_and(|last| last <= now().saturating_sub(timeout)) {
                    tracing::debug!(scope = %scope, "Devise session timed out");
                    return None;
                }
            }
            Some(Identity {
                id,
                scope: Some(SmallStr::new(scope)),
                salt: salt.map(SmallStr::new),
                auth_session: None,
            })
        }
        IdentitySource::SessionPath(path) => {
            let (last, parents) = path.split_last()?;
            let mut hash = data;
            for key in parents {
                hash = hash.get(key)?.as_hash()?;
            }
            let id = UserId::from_value(hash.get(last)?)?;
            Some(Identity { id, scope: None, salt: None, auth_session: None })
        }
        // Not in the session: resolved by `identity` before this is reached.
        IdentitySource::RailsAuthentication(_) => None,
    }
}

/// Devise `:timeoutable`'s `record.timeout_in` hook: record this request in `last_request_at`.
pub(crate) async fn touch(session: &Session, identity: &Identity) {
    if let Some(record) = touching(session, identity) {
        session.update(record).await;
    }
}

/// [`touch`] without waiting: `None` when the session has yet to come from an asynchronous store.
pub(crate) fn touch_now(session: &Session, identity: &Identity) -> Option<()> {
    match touching(session, identity) {
        Some(record) => session.update_now(record).ok(),
        None => Some(()),
    }
}

/// What the hook writes, if the configuration asks for it.
fn touching(session: &Session, identity: &Identity) -> Option<impl FnOnce(&mut Hash)> {
    let config = &session.config().identity;
    // The configuration first: it is cheaper to read than the scope.
    let (Some(_), true) = (config.timeout_in, config.touch) else { return None };
    let scope = identity.scope()?;
    let now = now();
    let name = warden::session_name(scope);
    Some(move |data: &mut Hash| {
        let mut scoped = data.get(&name).and_then(Value::as_hash).cloned().unwrap_or_default();
        scoped.insert("last_request_at", Value::Integer(now));
        data.insert(name, Value::Hash(scoped));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warden_session(last_request_at: Option<i64>) -> Hash {
        let mut h = Hash::new();
        h.insert("session_id", "a".repeat(32).into());
        h.insert(
            "warden.user.admin.key",
            Value::Array(vec![
                Value::Array(vec![5.into()]),
                "$2a$04$t5oXLMcxWj/RkeIfFyX9r.".into(),
            ]),
        );
        if let Some(t) = last_request_at {
            let mut s = Hash::new();
            s.insert("last_request_at", t.into());
            h.insert("warden.user.admin.session", Value::Hash(s));
        }
        h
    }

    fn at_1000() -> i64 {
        1000
    }

    #[test]
    fn warden_scope_and_timeout() {
        let cfg = IdentityConfig::warden("admin");
        let id = identity_in(&warden_session(None), &cfg, at_1000).unwrap();
        assert_eq!((id.id.clone(), id.scope()), (UserId::Integer(5), Some("admin")));
        assert!(
            identity_in(&warden_session(None), &IdentityConfig::warden("user"), at_1000).is_none()
        );
        let cfg = cfg.timeout_in(Duration::from_secs(100));
        assert!(identity_in(&warden_session(Some(950)), &cfg, at_1000).is_some());
        assert!(
            identity_in(&warden_session(Some(900)), &cfg, at_1000).is_none(),
            "last <= now - timeout"
        );
        assert!(
            identity_in(&warden_session(None), &cfg, at_1000).is_some(),
            "no timestamp, no timeout"
        );
    }

    #[test]
    fn session_path() {
        let mut inner = Hash::new();
        inner.insert("user_id", "u-1".into());
        let mut h = Hash::new();
        h.insert("auth", Value::Hash(inner));
        h.insert("user_id", 9.into());
        assert_eq!(
            identity_in(&h, &IdentityConfig::session_path(["user_id"]), at_1000).unwrap().id,
            UserId::Integer(9)
        );
        let nested = IdentityConfig::session_path(["auth", "user_id"]);
        assert_eq!(identity_in(&h, &nested, at_1000).unwrap().id, UserId::from("u-1"));
    }

    #[test]
    fn salts_inline_and_shared() {
        for salt in ["", "$2a$04$t5oXLMcxWj/RkeIfFyX9r.", &"s".repeat(32), &"é".repeat(40)] {
            let id = Identity::new(1.into(), Some("user".into()), Some(salt.to_owned()));
            assert_eq!(id.authenticatable_salt(), Some(salt));
            assert_eq!(id.clone(), id);
        }
        let a = Identity::new(1.into(), None, Some("a".into()));
        assert_ne!(a, Identity::new(1.into(), None, Some("b".into())));
        assert_ne!(a, Identity::new(1.into(), None, None));
    }

    #[test]
    fn debug_redacts_the_salt() {
        let id = Identity::new(1.into(), Some("user".into()), Some("$2a$04$secret".into()));
        assert!(!format!("{id:?}").contains("secret"));
        assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"id":1,"scope":"user"}"#);
    }
}
