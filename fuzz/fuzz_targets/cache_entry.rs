//! The ActiveSupport cache entry reader (server-side session records: F61, F70, F71, compressed or not) on arbitrary
//! bytes; whatever it reads must write back, in the same format, to an entry that reads as the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_session::cache_entry::{decode, encode, Stamp};

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = decode(data, 1 << 20) {
        let stamp = Stamp { now: 1_800_000_000.0, expires_in: entry.expires_at.map(|_| 60.0) };
        if let Ok(bytes) = encode(&entry.value, entry.format, stamp) {
            let again = decode(&bytes, 1 << 20).expect("our own entry must read");
            assert_eq!(again.format, entry.format);
            // NaN != NaN, so compare the tagged JSON text instead of the values.
            assert_eq!(again.value.to_tagged_json().to_string(), entry.value.to_tagged_json().to_string());
        }
    }
});
