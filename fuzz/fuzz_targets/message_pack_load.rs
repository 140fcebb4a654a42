//! The MessagePack reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rails_cookie::fuzzing::message_pack_load(data);
});
