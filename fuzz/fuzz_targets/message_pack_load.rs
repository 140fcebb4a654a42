//! The MessagePack reader on arbitrary bytes. What it accepts (ActiveSupport's extension types included) must be
//! written back and read again as the same value (compared in tagged JSON form, where NaN equals NaN).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rails_cookie::fuzzing::{message_pack_dump, message_pack_load};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = message_pack_load(data) {
        let bytes = message_pack_dump(&value).expect("a value read from MessagePack can be written back");
        let again = message_pack_load(&bytes).expect("our own MessagePack must parse");
        assert_eq!(again.to_tagged_json(), value.to_tagged_json());
    }
});
