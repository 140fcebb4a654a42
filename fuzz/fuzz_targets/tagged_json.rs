//! Tagged JSON input (what `railbridge cookie encode` reads): parse, then write back and read again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_cookie::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(value) = Value::from_tagged_json(&json) {
            let again = Value::from_tagged_json(&value.to_tagged_json()).expect("our own output must parse");
            assert_eq!(again.to_tagged_json(), value.to_tagged_json());
        }
    }
});
