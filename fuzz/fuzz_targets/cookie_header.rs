//! The session layer's `Cookie` header scan (`rails_session::find_cookie`, SIMD over bytes) against a plain
//! reference (Rack's `parse_cookies_header`: split on `;`, leading spaces dropped, split on the first `=`, names
//! form-decoded, first occurrence wins), on up to three headers separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn reference<'h>(headers: &[&'h str], name: &str) -> Option<&'h str> {
    for header in headers {
        for pair in header.split(';') {
            let pair = pair.trim_start_matches(' ');
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == name || (k.contains(['%', '+']) && rails_cookie::unescape(k) == name) {
                return Some(v);
            }
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let headers: Vec<&[u8]> = data.split(|b| *b == 0).take(3).collect();
    for name in ["_app_session", "_s", "a b"] {
        let found = rails_session::find_cookie(headers.iter().copied(), name);
        if let Some(v) = found {
            // A borrowed slice of one of the headers, never a copy or a partial decode.
            let p = v.as_ptr();
            assert!(headers.iter().any(|h| h.as_ptr_range().contains(&p) || (v.is_empty())));
        }
        if let Ok(texts) = headers.iter().map(|h| std::str::from_utf8(h)).collect::<Result<Vec<_>, _>>() {
            assert_eq!(found, reference(&texts, name), "{texts:?}");
        }
    }
});
