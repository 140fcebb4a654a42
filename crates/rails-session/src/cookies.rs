//! Rack's cookie header handling: reading `Cookie` (first occurrence wins, form-decoded) and writing `Set-Cookie`
//! in Rack's attribute order, with Rails' `domain:` resolution.

use std::borrow::Cow;

use rails_cookie::RailsVersion;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::config::{CookieDomain, SessionConfig};

/// Finds cookie `name` in `Cookie` header values, as Rack's `parse_cookies_header`: pairs split on `;` and the
/// spaces after it, names form-decoded, the first occurrence of a name wins. Returns the value as sent (still
/// percent-encoded; decode it with [`rails_cookie::unescape`]).
///
/// ```
/// let headers = [&b"a=1; _app%5Fsession=first"[..], b"_app_session=second"];
/// assert_eq!(rails_session::find_cookie(headers, "_app_session"), Some("first"));
/// ```
pub fn find_cookie<'h>(headers: impl IntoIterator<Item = &'h [u8]>, name: &str) -> Option<&'h str> {
    let value =
        headers.into_iter().find_map(|header| Some(&header[locate_cookie(header, name)?]))?;
    std::str::from_utf8(value).ok()
}

/// Where cookie `name`'s value is in one `Cookie` header, without the UTF-8 check of [`find_cookie`]. The session
/// layer keeps only this position and looks the bytes up in its decode cache as they are (a Rails cookie is ASCII; a
/// value that is not UTF-8 simply never matches).
pub(crate) fn locate_cookie(header: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
    // Pairs are found with SIMD `memchr`: the session cookie makes this header ~1 KiB and it is scanned on every
    // request that touches the session.
    let mut start = 0;
    while start < header.len() {
        let end = memchr::memchr(b';', &header[start..]).map_or(header.len(), |i| start + i);
        let mut from = start;
        while header.get(from) == Some(&b' ') && from < end {
            from += 1;
        }
        let pair = &header[from..end];
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(eq) => (&pair[..eq], from + eq + 1..end),
            None => (pair, end..end),
        };
        if name_matches(k, name) {
            return Some(v);
        }
        start = end + 1;
    }
    None
}

/// A cookie name as sent equals `name` once form-decoded.
fn name_matches(sent: &[u8], name: &str) -> bool {
    if sent == name.as_bytes() {
        return true;
    }
    if memchr::memchr2(b'%', b'+', sent).is_none() {
        return false;
    }
    std::str::from_utf8(sent).is_ok_and(|k| rails_cookie::unescape(k) == name)
}

/// The `Set-Cookie` value for the session: `NAME=VALUE; domain=D; path=P; expires=DATE; secure; HttpOnly;
/// SameSite=Lax` (Rack 2's order and casing).
pub(crate) fn set_cookie(
    config: &SessionConfig,
    host: Option<&str>,
    value: &str,
    expires: Option<OffsetDateTime>,
) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 8 + config.key.len() + 96);
    out.push_str(&rails_cookie::escape(&config.key));
    out.push('=');
    out.push_str(&rails_cookie::escape(value));
    if let Some(domain) = resolve_domain(&config.domain, host, config.profile().version()) {
        out.push_str("; domain=");
        out.push_str(&domain);
    }
    out.push_str("; path=");
    out.push_str(&config.path);
    if let Some(expires) = expires {
        out.push_str("; expires=");
        out.push_str(&http_date(expires));
    }
    if config.secure {
        out.push_str("; secure");
    }
    if config.http_only {
        out.push_str("; HttpOnly");
    }
    if let Some(same_site) = config.same_site {
        out.push_str("; SameSite=");
        out.push_str(same_site.as_str());
    }
    out
}

/// `Time#httpdate`: `Wed, 02 Jan 2030 03:04:05 GMT`.
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// Rails' `domain:` option for a request host (port stripped, lowercase).
pub(crate) fn resolve_domain<'a>(
    domain: &'a CookieDomain,
    host: Option<&str>,
    version: RailsVersion,
) -> Option<Cow<'a, str>> {
    match domain {
        CookieDomain::HostOnly => None,
        CookieDomain::Exact(d) => Some(Cow::Borrowed(d)),
        CookieDomain::List(list) => {
            let host = host_without_port(host?);
            list.iter()
                .find(|d| {
                    let bare = d.trim_start_matches('.').to_ascii_lowercase();
                    if version >= RailsVersion::V6_1 {
                        host == bare || host.ends_with(&format!(".{bare}"))
                    } else {
                        host.contains(&bare)
                    }
                })
                .map(|d| Cow::Borrowed(d.as_str()))
        }
        CookieDomain::All { tld_length } => {
            let host = host_without_port(host?);
            let labels: Vec<&str> = host.split('.').collect();
            let is_ip = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if is_ip || labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
                return None;
            }
            let keep = match tld_length {
                Some(n) => (*n).clamp(1, labels.len()),
                None if two_letter_cc_sld(&labels) => 3.min(labels.len()),
                None => 2,
            };
            let registrable = labels[labels.len() - keep..].join(".");
            Some(Cow::Owned(if version >= RailsVersion::V7_1 {
                registrable
            } else {
                format!(".{registrable}")
            }))
        }
    }
}

/// `/\.[^.]{2,3}\.[^.]{2}\z/`: `example.co.uk`-style hosts.
fn two_letter_cc_sld(labels: &[&str]) -> bool {
    match labels {
        [.., _, sld, cc] => (2..=3).contains(&sld.len()) && cc.len() == 2,
        _ => false,
    }
}

fn host_without_port(host: &str) -> String {
    let host = host.trim();
    let bare = if host.starts_with('[') {
        host.split(']').next().map_or(host, |h| h.trim_start_matches('['))
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn first_occurrence_wins_and_names_are_decoded() {
        let h = [&b"a=1; _s=first%2B%3D;  _s=second"[..], b"_s=third"];
        assert_eq!(find_cookie(h, "_s"), Some("first%2B%3D"));
        assert_eq!(find_cookie([&b"x=1;_s=v"[..]], "_s"), Some("v"));
        assert_eq!(find_cookie([&b"x=1"[..]], "_s"), None);
        assert_eq!(find_cookie([&b"%5Fs=v"[..]], "_s"), Some("v"), "names are decoded");
        assert_eq!(find_cookie([&b"_s"[..]], "_s"), Some(""), "a name alone is an empty value");
        assert_eq!(find_cookie([&b";;  _s=v;"[..]], "_s"), Some("v"));
        assert_eq!(
            find_cookie([&b"_s=\xff; _s=ok"[..]], "_s"),
            None,
            "the first, and it is not UTF-8"
        );
        assert_eq!(
            find_cookie([&b"\xff=1; _s=v"[..]], "_s"),
            Some("v"),
            "other pairs need not be UTF-8"
        );
        assert_eq!(find_cookie([&b"_sx=1; x_s=2"[..], b""], "_s"), None);
    }

    #[test]
    fn http_date_is_rubys_httpdate() {
        assert_eq!(http_date(datetime!(2030-01-02 03:04:05 UTC)), "Wed, 02 Jan 2030 03:04:05 GMT");
    }

    #[test]
    fn domain_all_follows_rails() {
        let all = CookieDomain::All { tld_length: None };
        let v61 = RailsVersion::V6_1;
        assert_eq!(
            resolve_domain(&all, Some("www.app.test:3000"), v61).as_deref(),
            Some(".app.test")
        );
        assert_eq!(
            resolve_domain(&all, Some("www.example.co.uk"), v61).as_deref(),
            Some(".example.co.uk")
        );
        assert_eq!(resolve_domain(&all, Some("127.0.0.1:80"), v61), None);
        assert_eq!(resolve_domain(&all, Some("localhost"), v61), None);
        assert_eq!(
            resolve_domain(&all, Some("api.app.test"), RailsVersion::V7_1).as_deref(),
            Some("app.test")
        );
        let tld = CookieDomain::All { tld_length: Some(3) };
        assert_eq!(resolve_domain(&tld, Some("a.b.app.test"), v61).as_deref(), Some(".b.app.test"));
    }

    #[test]
    fn domain_list_picks_the_matching_entry() {
        let list = CookieDomain::List(vec![".one.test".into(), "two.test".into()]);
        let v61 = RailsVersion::V6_1;
        assert_eq!(resolve_domain(&list, Some("api.two.test"), v61).as_deref(), Some("two.test"));
        assert_eq!(resolve_domain(&list, Some("one.test"), v61).as_deref(), Some(".one.test"));
        assert_eq!(resolve_domain(&list, Some("xone.test"), v61), None);
        assert_eq!(
            resolve_domain(&list, Some("xone.test"), RailsVersion::V6_0).as_deref(),
            Some(".one.test")
        );
    }
}
