//! The whole session-cookie decode path (gcm): arbitrary bytes must give a value or a typed error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rails_cookie::{CookieCodec, Profile, SecretKeyBase};

fn codec() -> &'static CookieCodec {
    static CODEC: OnceLock<CookieCodec> = OnceLock::new();
    CODEC.get_or_init(|| CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new("f".repeat(64)).unwrap()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = codec().decode("_app_session", &rails_cookie::unescape(s));
    }
});
