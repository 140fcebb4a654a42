//! `Rack::Session::SessionId`: the public id a server-side store's cookie carries, and the private id its record is
//! kept under (`"2::" + SHA-256 hex of the public id`, the CVE-2019-16782 fix in rack 2.0.8, Rails 5.2.4.1 and
//! 6.0.2.1), so that a timing attack on store lookups learns nothing about a live cookie.

use std::fmt;

/// A session's ids. The public id is the cookie value; records are written under the private id and read under
/// either (records written before the fix are keyed by the public id).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId {
    public: String,
    private: String,
}

impl SessionId {
    /// The ids of a cookie value. `None` for a value no Rails store would look up: empty, longer than 256 bytes, or
    /// shaped like a private id (`/\A\d+::/`: activerecord-session_store and redis-session-store refuse those, so a
    /// leaked store key cannot be replayed as a cookie; Rails' cache store hashes them again, which misses too).
    #[must_use]
    pub fn from_cookie(public: &str) -> Option<SessionId> {
        if public.is_empty() || public.len() > 256 || looks_private(public) {
            return None;
        }
        Some(SessionId::new(public.to_owned()))
    }

    /// A brand-new id: `SecureRandom.hex(16)`.
    #[must_use]
    pub fn generate() -> SessionId {
        SessionId::new(crate::session::new_session_id())
    }

    pub(crate) fn new(public: String) -> SessionId {
        let digest = ring::digest::digest(&ring::digest::SHA256, public.as_bytes());
        let mut private = String::with_capacity(3 + 64);
        private.push_str("2::");
        for b in digest.as_ref() {
            private.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            private.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        SessionId { public, private }
    }

    /// The cookie value.
    #[must_use]
    pub fn public_id(&self) -> &str {
        &self.public
    }

    /// `"2::" + sha256_hex(public_id)`.
    #[must_use]
    pub fn private_id(&self) -> &str {
        &self.private
    }
}

/// `/\A\d+::/`.
fn looks_private(id: &str) -> bool {
    let digits = id.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && id[digits..].starts_with("::")
}

impl fmt::Debug for SessionId {
    // The public id is a bearer credential: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionId").field("private", &self.private).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_id_of_the_spec_vector() {
        let id = SessionId::from_cookie("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            id.private_id(),
            "2::3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"
        );
        assert!(!format!("{id:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn store_keys_and_junk_are_not_cookies() {
        for bad in ["", "2::3eb1", "12::x", &"a".repeat(257)] {
            assert!(SessionId::from_cookie(bad).is_none(), "{bad:?}");
        }
        for ok in ["::x", "2:x", "a2::b", "x"] {
            assert!(SessionId::from_cookie(ok).is_some(), "{ok:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_lowercase_hex() {
        let id = SessionId::generate();
        assert_eq!(id.public_id().len(), 32);
        assert!(id.public_id().bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(SessionId::generate(), id);
    }
}
