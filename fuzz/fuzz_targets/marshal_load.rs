//! The Marshal reader on arbitrary bytes; whatever it reads must write and read back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_cookie::fuzzing::{marshal_dump, marshal_load};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = marshal_load(data) {
        if let Ok(bytes) = marshal_dump(&value) {
            let again = marshal_load(&bytes).expect("our own dump must load");
            // NaN != NaN, so compare the tagged JSON text instead of the values.
            assert_eq!(again.to_tagged_json().to_string(), value.to_tagged_json().to_string());
        }
    }
});
