//! The identity cache: a signed-in session cookie seen moments ago on the same route, whose session needed no
//! refresh, gets the same identity headers without being decrypted again. One cache per route, keyed by the cookie
//! value as sent, so a lookup needs no key to be built.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::Duration;

use super::IdentityList;

/// Identity headers by session cookie value.
pub(crate) type IdentityCache = moka::sync::Cache<String, IdentityList, TailHash>;

/// Most sessions a route remembers.
const CAPACITY: u64 = 10_000;

/// A route's identity cache, entries living `ttl`.
pub(crate) fn identity_cache(ttl: Duration) -> IdentityCache {
    moka::sync::Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(ttl)
        .build_with_hasher(TailHash { seed: RandomState::new().hash_one(0x7a11_u64) })
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
        cache.insert(format!("a{tail}"), identity);
        assert!(cache.get(format!("a{tail}").as_str()).is_some());
        assert!(cache.get(format!("b{tail}").as_str()).is_none());
    }
}
