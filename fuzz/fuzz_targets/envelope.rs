//! The metadata envelope reader (both detection modes) and the JSON reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_cookie::fuzzing::{envelope_unwrap, json_load};

fuzz_target!(|data: &[u8]| {
    let _ = envelope_unwrap(data, true);
    let _ = envelope_unwrap(data, false);
    let _ = json_load(data);
});
