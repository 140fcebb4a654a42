//! Static header lists: hop-by-hop headers (RFC 9110 §7.6.1) and the identity namespace (`X-Railbridge-*`), which
//! is stripped from every client request — in any case, and with `_` in place of `-` — before the gateway sets it.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `X-Railbridge-User`: the user id.
pub(crate) const X_RAILBRIDGE_USER: HeaderName = HeaderName::from_static("x-railbridge-user");
/// `X-Railbridge-Scope`: the Warden scope.
pub(crate) const X_RAILBRIDGE_SCOPE: HeaderName = HeaderName::from_static("x-railbridge-scope");
/// `X-Railbridge-Session`: a keyed hash of the session id.
pub(crate) const X_RAILBRIDGE_SESSION: HeaderName = HeaderName::from_static("x-railbridge-session");
/// `X-Railbridge-Assertion`: the signed JWT.
pub(crate) const X_RAILBRIDGE_ASSERTION: HeaderName =
    HeaderName::from_static("x-railbridge-assertion");

/// The identity headers the gateway itself sets.
pub(crate) const IDENTITY_HEADERS: [HeaderName; 4] =
    [X_RAILBRIDGE_USER, X_RAILBRIDGE_SCOPE, X_RAILBRIDGE_SESSION, X_RAILBRIDGE_ASSERTION];

const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// Hop-by-hop headers: meaningful for one connection only, never forwarded (plus any header the `Connection`
/// header names).
pub(crate) const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether a header name is in the identity namespace: `x-railbridge-…`, compared case-insensitively with `_`
/// counted as `-` (some servers and CGI-style frameworks fold the two together).
pub(crate) fn is_identity_header(name: &str) -> bool {
    const PREFIX: &[u8] = b"x-railbridge";
    let name = name.as_bytes();
    if name.len() < PREFIX.len() {
        return false;
    }
    let fold = |b: u8| if b == b'_' { b'-' } else { b.to_ascii_lowercase() };
    name.iter().zip(PREFIX).all(|(a, b)| fold(*a) == *b)
        && name.get(PREFIX.len()).is_none_or(|b| fold(*b) == b'-')
}

/// Removes every header in the identity namespace; returns how many there were (a client sending them is
/// attempting to forge an identity, or is misconfigured).
pub(crate) fn strip_identity(headers: &mut HeaderMap) -> usize {
    let forged: Vec<HeaderName> =
        headers.keys().filter(|n| is_identity_header(n.as_str())).cloned().collect();
    let mut count = 0;
    for name in forged {
        if let header::Entry::Occupied(e) = headers.entry(name) {
            count += e.remove_entry_mult().1.count();
        }
    }
    count
}

/// Whether the request asks for a protocol upgrade (WebSocket): `Connection: upgrade` and an `Upgrade` header.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers and those the `Connection` header lists. With `upgrade`, keeps `Upgrade` and sets
/// `Connection: upgrade` (the one hop-by-hop exchange a proxy passes on).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<HeaderName> =
        connection_tokens(headers).filter_map(|t| HeaderName::try_from(t).ok()).collect();
    for name in listed {
        if !(upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if !(upgrade && *name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes cookie `name` from the `Cookie` header(s), keeping the others (one header, `; `-joined).
pub(crate) fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut removed = false;
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    for value in &values {
        let Ok(text) = value.to_str() else {
            // Not text: cannot tell the pairs apart safely, so drop the whole header.
            removed = true;
            continue;
        };
        for pair in text.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if key == name || (key.contains(['%', '+']) && rails_cookie::unescape(key) == name) {
                removed = true;
            } else {
                kept.push(pair);
            }
        }
    }
    if !removed {
        return;
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::try_from(kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// The raw (still percent-encoded) value of cookie `name`, chosen as Rack chooses it.
pub(crate) fn session_cookie_raw<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    rails_session::find_cookie(
        headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
        name,
    )
}

/// Whether the request carries cookie `name` at all.
pub(crate) fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    session_cookie_raw(headers, name).is_some()
}

/// A header value for an identity string: visible ASCII is kept, anything else is percent-encoded (so a
/// String user id or a session value can never inject a header or a control character).
pub(crate) fn identity_value(text: &str) -> HeaderValue {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if ((0x21..=0x7e).contains(&b) && b != b'%') || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    let mut value =
        HeaderValue::try_from(out.trim()).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_namespace_in_every_spelling() {
        for n in [
            "x-railbridge-user",
            "X-Railbridge-User",
            "X_RAILBRIDGE_USER",
            "x-railbridge_scope",
            "x_railbridge-assertion",
            "x-railbridge",
            "x-railbridge-anything-else",
        ] {
            assert!(is_identity_header(n), "{n}");
        }
        for n in ["x-railbridgeuser", "x-rail", "railbridge-user", "x-forwarded-for"] {
            assert!(!is_identity_header(n), "{n}");
        }
        let mut h = HeaderMap::new();
        h.append("x-railbridge-user", HeaderValue::from_static("1"));
        h.append("x-railbridge-user", HeaderValue::from_static("2"));
        h.append("x_railbridge_scope", HeaderValue::from_static("admin"));
        h.append("accept", HeaderValue::from_static("*/*"));
        assert_eq!(strip_identity(&mut h), 3);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["accept"]);

        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }

    #[test]
    fn session_cookie_removed_others_kept() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; _app_session=abc%3D%3D; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert!(has_cookie(&h, "_app_session"));
        remove_cookie(&mut h, "_app_session");
        assert_eq!(h.get_all(header::COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2; c=3"]);
        assert!(!has_cookie(&h, "_app_session"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=1; _app%5Fsession=first; _app_session=second"),
        );
        assert_eq!(
            session_cookie_raw(&h, "_app_session"),
            Some("first"),
            "as Rack: first occurrence, decoded names"
        );
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("_app_session=x"));
        remove_cookie(&mut h, "_app_session");
        assert!(h.is_empty());
    }

    #[test]
    fn identity_values_are_safe() {
        assert_eq!(identity_value("42"), "42");
        assert_eq!(identity_value("a\r\nX-Evil: 1"), "a%0D%0AX-Evil: 1");
        assert_eq!(identity_value("é"), "%C3%A9");
        assert!(identity_value("1").is_sensitive());
    }
}
