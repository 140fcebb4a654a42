//! Tagged JSON input (what `railbridge cookie encode` reads): parse, then write back and read again — through
//! `serde_json::Value` and through the text form with Integers of any size.
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
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(value) = Value::from_tagged_json_str(text) {
            let again = Value::from_tagged_json_str(&value.to_tagged_json_string()).expect("our own text must parse");
            assert_eq!(again.to_tagged_json(), value.to_tagged_json());
        }
    }
});
