//! The metadata envelope reader (both detection modes) and the JSON reader on arbitrary bytes. What the JSON reader
//! accepts must survive a write and a second read unchanged (Integers of any size included); a value that holds an
//! infinite Float is left out, since JSON writes it as null, as ActiveSupport does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_cookie::fuzzing::{envelope_unwrap, json_dump, json_load};
use rails_cookie::Value;

fn has_infinity(v: &Value) -> bool {
    match v {
        Value::Float(f) => !f.is_finite(),
        Value::Array(items) => items.iter().any(has_infinity),
        Value::Hash(h) => h.entries.iter().any(|(_, v)| has_infinity(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = envelope_unwrap(data, true);
    let _ = envelope_unwrap(data, false);
    if let Ok(value) = json_load(data) {
        if !has_infinity(&value) {
            let text = json_dump(&value).expect("a parsed value has a JSON form");
            let again = json_load(&text).expect("our own JSON must parse");
            assert_eq!(again, value, "JSON round trip changed the value of {:?}", String::from_utf8_lossy(data));
        }
    }
});
