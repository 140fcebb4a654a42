//! `inspect` on arbitrary input in any of the forms it takes (value, `name=value`, `Cookie:`/`Set-Cookie:` lines):
//! a report or an input error, never a panic; a readable report has a finding and no diagnosis; no run derives more
//! than six keys.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rails_cookie::inspect::{CookieInput, Inspector};
use rails_cookie::SecretKeyBase;

fn inspector() -> &'static Inspector {
    static INSPECTOR: OnceLock<Inspector> = OnceLock::new();
    INSPECTOR.get_or_init(|| {
        Inspector::new()
            .secret_key_base(SecretKeyBase::new("f".repeat(64)).unwrap())
            .secret_token("legacy-secret-token-0123456789abcdef0123456789abcdef")
            .authenticated_encrypted_cookie_salt("fuzz salt")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(input) = CookieInput::parse(text, None) else { return };
    let report = inspector().inspect(input.name.as_deref(), &input.value);
    assert!(report.key_derivations <= 6, "{} keys derived", report.key_derivations);
    if report.is_readable() {
        assert!(report.finding.is_some() && report.diagnosis.is_none());
    } else {
        let diagnosis = report.diagnosis.expect("an unreadable cookie has a diagnosis");
        let _ = diagnosis.to_string();
    }
});
