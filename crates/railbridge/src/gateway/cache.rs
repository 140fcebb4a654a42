//! The identity cache: a signed-in session cookie seen moments ago on the same route, whose session needed no
//! refresh, gets the same identity headers without being decrypted again. One cache per route, keyed by the cookie
//! value as sent, so a lookup needs no key to be built.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{Duration, Instant};

use super::IdentityList;

/// Identity headers by session cookie value, each entry living `ttl` from when its identity was read — not from
/// when the response came back (an upstream may take seconds; a sign-out must show within `ttl` all the same).
#[derive(Clone, Debug)]
pub(crate) struct IdentityCache {
    entries: moka::sync::Cache<String, Cached, TailHash>,
    ttl: Duration,
}

#[derive(Clone, Debug)]
struct Cached {
    identity: IdentityList,
    until: Instant,
}

/// Each entry expires at its own deadline.
struct Deadline;

impl moka::Expiry<String, Cached> for Deadline {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.until.saturating_duration_since(created_at))
    }
}

impl IdentityCache {
    pub(crate) fn get(&self, key: &str) -> Option<IdentityList> {
        // The deadline is checked here too: moka's expiry is exact only to its own clock's resolution.
        self.entries.get(key).filter(|c| Instant::now() < c.until).map(|c| c.identity)
    }

    /// Remembers `identity`, read at `read_at`, until `read_at + ttl`; nothing when that has passed.
    pub(crate) fn insert(&self, key: String, identity: IdentityList, read_at: Instant) {
        let until = read_at + self.ttl;
        if Instant::now() < until {
            self.entries.insert(key, Cached { identity, until });
        }
    }
}

/// Most sessions a route remembers.
const CAPACITY: u64 = 10_000;

/// A route's identity cache, entries living `ttl`.
pub(crate) fn identity_cache(ttl: Duration) -> IdentityCache {
    let entries = moka::sync::Cache::builder()
        .max_capacity(CAPACITY)
        .expire_after(Deadline)
        .build_with_hasher(TailHash { seed: RandomState::new().hash_one(0x7a11_u64) });
    IdentityCache { entries, ttl }
}

/// How many trailing bytes of a key are hashed.
const TAIL: usize = 32;

/// Hashes a cookie value by its last [`TAIL`] bytes and its length, seeded per process: the tail of a session
/// cookie is its GCM tag or HMAC, random and impossible to choose for a cookie that decodes (only those are
/// cached), so this spreads keys as well as hashing all ~1 KiB would, for a fraction of the work on every request.
/// Equal keys are still compared whole.
#[derive(Clone, Debug)]
pub(crate) struct TailHash {
    seed: u64,
}

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.seed)
    }
}

#[derive(Debug)]
pub(crate) struct TailHasher(u64);

impl TailHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

impl Hasher for TailHasher {
    fn finish(&self) -> u64 {
        // One more round so the low bits (bucket index) depend on every input bit.
        (self.0 ^ (self.0 >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64);
        for chunk in bytes[bytes.len().saturating_sub(TAIL)..].chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(h: &TailHash, s: &str) -> u64 {
        h.hash_one(s)
    }

    #[test]
    fn tails_and_lengths_decide() {
        let h = TailHash { seed: 1 };
        let tail = "x".repeat(40);
        assert_eq!(hash(&h, &format!("a{tail}")), hash(&h, &format!("b{tail}")), "only the tail");
        assert_ne!(hash(&h, &format!("{tail}a")), hash(&h, &format!("{tail}b")));
        assert_ne!(hash(&h, &tail), hash(&h, &format!("{tail}x")), "the length counts");
        assert_ne!(hash(&h, "abc"), hash(&TailHash { seed: 2 }, "abc"), "seeded");
    }

    #[test]
    fn equal_tails_are_still_different_keys() {
        let cache = identity_cache(Duration::from_secs(60));
        let tail = "t".repeat(40);
        let identity: IdentityList = std::sync::Arc::new([]);
        cache.insert(format!("a{tail}"), identity, Instant::now());
        assert!(cache.get(format!("a{tail}").as_str()).is_some());
        assert!(cache.get(format!("b{tail}").as_str()).is_none());
    }

    #[test]
    fn an_entry_lives_ttl_from_when_its_identity_was_read() {
        let cache = identity_cache(Duration::from_millis(300));
        let identity: IdentityList = std::sync::Arc::new([]);
        // Read 200 ms before the response came back: 100 ms left.
        cache.insert("k".into(), identity.clone(), Instant::now() - Duration::from_millis(200));
        assert!(cache.get("k").is_some());
        std::thread::sleep(Duration::from_millis(150));
        assert!(cache.get("k").is_none(), "expired 300 ms after the read, not after the insert");
        // Read longer ago than the TTL: not remembered at all.
        cache.insert("old".into(), identity, Instant::now() - Duration::from_millis(400));
        assert!(cache.get("old").is_none());
    }
}
