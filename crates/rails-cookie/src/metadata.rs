//! The metadata envelope (`ActiveSupport::Messages::Metadata`): purpose and expiry around the payload.
//!
//! ```text
//! {"_rails":{"message":"<base64 payload>","exp":null|"2030-01-02T03:04:05.000Z","pur":null|"cookie.<name>"}}
//! ```
//! Rails 5.2 writes it (with `pur: null`) only for cookies with an expiry; 6.0+ also when
//! `use_cookies_with_metadata` is on. Reading checks the purpose twice — once expecting `cookie.<name>`, once expecting
//! none — so a message is accepted when its `pur` is the expected one or empty, and refused when it names another.

use std::borrow::Cow;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::encoding;
use crate::error::{Error, Result};
use crate::serializer::json;

/// The exact prefix Rails 7.1+ requires before it treats a message as an envelope.
pub(crate) const ENVELOPE_PREFIX: &[u8] = br#"{"_rails":{"message":"#;

/// How a reader recognises an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeDetection {
    /// Rails 5.2 – 7.0: the message is JSON-parsed, and any Hash with a `"_rails"` key is an envelope.
    Parse,
    /// Rails 7.1+: only a message starting with exactly `{"_rails":{"message":` is an envelope.
    Prefix,
}

#[derive(Deserialize)]
struct Outer<'a> {
    #[serde(borrow, rename = "_rails")]
    rails: Inner<'a>,
}

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(default, borrow)]
    exp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pur: Option<Cow<'a, str>>,
}

/// Formats an expiry as Rails does (`Time#utc.iso8601(3)`: milliseconds truncated, `Z`).
pub(crate) fn format_exp(exp: OffsetDateTime) -> String {
    let t = exp.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Wraps a serialized payload in the envelope, byte for byte as `ActiveSupport::Messages::Metadata.wrap`.
pub(crate) fn wrap(
    payload: &[u8],
    exp: Option<OffsetDateTime>,
    purpose: Option<&str>,
    escapes: json::Escapes,
) -> Vec<u8> {
    let mut out = String::with_capacity(payload.len() * 4 / 3 + 64 + purpose.map_or(0, str::len));
    out.push_str(r#"{"_rails":{"message":""#);
    encoding::b64_encode_into(payload, &mut out);
    out.push_str(r#"","exp":"#);
    match exp {
        Some(exp) => {
            out.push('"');
            out.push_str(&format_exp(exp));
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str(r#","pur":"#);
    match purpose {
        Some(p) => json::write_str_with(p, &mut out, escapes),
        None => out.push_str("null"),
    }
    out.push_str("}}");
    out.into_bytes()
}

/// Opens an envelope (when there is one), checking purpose and expiry; returns the payload bytes.
pub(crate) fn unwrap<'a>(
    plain: &'a [u8],
    detection: EnvelopeDetection,
    expected_purpose: &str,
    now: OffsetDateTime,
) -> Result<Cow<'a, [u8]>> {
    if plain.starts_with(ENVELOPE_PREFIX) {
        let outer: Outer<'_> = serde_json::from_slice(plain)
            .map_err(|_| Error::Malformed("unreadable metadata envelope"))?;
        return open(&outer.rails, expected_purpose, now).map(Cow::Owned);
    }
    if detection == EnvelopeDetection::Parse
        && plain.trim_ascii_start().starts_with(b"{")
        && may_hold_rails_key(plain)
    {
        // Rails <= 7.0 parse the whole message; any Hash with "_rails" counts, whatever its layout.
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(plain)
        {
            if let Some(rails) = map.get("_rails") {
                let inner = Inner::deserialize(rails)
                    .map_err(|_| Error::Malformed("unreadable metadata envelope"))?;
                return open(&inner, expected_purpose, now).map(Cow::Owned);
            }
        }
    }
    Ok(Cow::Borrowed(plain))
}

/// Whether a JSON text can have a `"_rails"` key: it holds the bytes `_rails`, or a `\u` escape that could spell
/// them. Checked before Rails <= 7.0's whole-message parse, which then runs only when it can find something (a
/// session without the word is parsed once, by its serializer, not twice).
fn may_hold_rails_key(plain: &[u8]) -> bool {
    plain.windows(6).any(|w| w == b"_rails") || plain.windows(2).any(|w| w == b"\\u")
}

/// An envelope's fields, read without checking purpose or expiry (for [`crate::inspect`]).
pub(crate) struct Opened {
    pub(crate) payload: Vec<u8>,
    pub(crate) exp: Option<String>,
    pub(crate) pur: Option<String>,
    /// In Rails' exact byte layout, the only one 7.1+ recognises.
    pub(crate) canonical: bool,
}

/// Opens an envelope without judging it: `None` when the message is not one by the lenient rule of Rails <= 7.0
/// (which also finds every envelope in the exact layout 7.1+ requires).
pub(crate) fn open_unchecked(plain: &[u8]) -> Option<Result<Opened>> {
    let unreadable = || Error::Malformed("unreadable metadata envelope");
    if plain.starts_with(ENVELOPE_PREFIX) {
        return Some(match serde_json::from_slice::<Outer<'_>>(plain) {
            Ok(outer) => opened(&outer.rails, true),
            Err(_) => Err(unreadable()),
        });
    }
    if plain.trim_ascii_start().starts_with(b"{") && may_hold_rails_key(plain) {
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(plain)
        {
            if let Some(rails) = map.get("_rails") {
                return Some(match Inner::deserialize(rails) {
                    Ok(inner) => opened(&inner, false),
                    Err(_) => Err(unreadable()),
                });
            }
        }
    }
    None
}

fn opened(inner: &Inner<'_>, canonical: bool) -> Result<Opened> {
    Ok(Opened {
        payload: encoding::b64_decode(inner.message.as_bytes())?,
        exp: inner.exp.as_deref().map(str::to_owned),
        pur: inner.pur.as_deref().filter(|p| !p.is_empty()).map(str::to_owned),
        canonical,
    })
}

fn open(inner: &Inner<'_>, expected_purpose: &str, now: OffsetDateTime) -> Result<Vec<u8>> {
    match inner.pur.as_deref() {
        None | Some("") => {}
        Some(p) if p == expected_purpose => {}
        Some(_) => return Err(Error::PurposeMismatch),
    }
    if let Some(exp) = inner.exp.as_deref() {
        let at = OffsetDateTime::parse(exp, &Rfc3339)
            .map_err(|_| Error::Malformed("unreadable expiry"))?;
        if now >= at {
            return Err(Error::Expired(exp.to_owned()));
        }
    }
    encoding::b64_decode(inner.message.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn wrap_is_byte_exact() {
        // Spec vector T3's envelope for a short payload, and T5's expiry format.
        assert_eq!(
            String::from_utf8(wrap(b"{}", None, Some("cookie._app_session"), json::Escapes::ALL))
                .unwrap(),
            r#"{"_rails":{"message":"e30=","exp":null,"pur":"cookie._app_session"}}"#
        );
        assert_eq!(
            String::from_utf8(wrap(
                b"{}",
                Some(datetime!(2030-01-02 03:04:05.999999 UTC)),
                None,
                json::Escapes::ALL
            ))
            .unwrap(),
            r#"{"_rails":{"message":"e30=","exp":"2030-01-02T03:04:05.999Z","pur":null}}"#
        );
        assert_eq!(
            String::from_utf8(wrap(b"", None, Some("cookie.<&>"), json::Escapes::ALL)).unwrap(),
            r#"{"_rails":{"message":"","exp":null,"pur":"cookie.\u003c\u0026\u003e"}}"#
        );
    }

    #[test]
    fn parse_detection_finds_the_key_however_it_is_spelled() {
        let p = "cookie._app_session";
        let plain = |s: &str| {
            unwrap(s.as_bytes(), EnvelopeDetection::Parse, p, NOW).map(|c| c.into_owned())
        };
        // Not an envelope: returned as is.
        assert_eq!(plain(r#"{"user_id":1}"#).unwrap(), br#"{"user_id":1}"#);
        // Rails <= 7.0 take any Hash with "_rails" as an envelope, escaped or not, in any position.
        let env =
            r#"{"a":1,"_rails":{"message":"eyJ4IjoxfQ==","exp":null,"pur":"cookie._app_session"}}"#;
        assert_eq!(plain(env).unwrap(), br#"{"x":1}"#);
        let escaped = env.replace("_rails", "\\u005frails");
        assert_eq!(plain(&escaped).unwrap(), br#"{"x":1}"#);
        let other = env.replace("cookie._app_session", "cookie.other");
        assert!(matches!(plain(&other), Err(Error::PurposeMismatch)));
    }

    #[test]
    fn purpose_rules() {
        let p = "cookie._app_session";
        let ok = |m: &[u8]| unwrap(m, EnvelopeDetection::Prefix, p, NOW).map(|c| c.into_owned());
        assert_eq!(ok(&wrap(b"x", None, Some(p), json::Escapes::ALL)).unwrap(), b"x");
        assert_eq!(ok(&wrap(b"x", None, None, json::Escapes::ALL)).unwrap(), b"x");
        assert_eq!(ok(&wrap(b"x", None, Some(""), json::Escapes::ALL)).unwrap(), b"x");
        assert!(matches!(
            ok(&wrap(b"x", None, Some("cookie.other"), json::Escapes::ALL)),
            Err(Error::PurposeMismatch)
        ));
        assert_eq!(ok(b"bare").unwrap(), b"bare");
    }

    #[test]
    fn expiry_rules() {
        let p = "cookie.a";
        let past = wrap(b"x", Some(datetime!(2020-01-01 00:00 UTC)), Some(p), json::Escapes::ALL);
        let future = wrap(b"x", Some(datetime!(2099-01-01 00:00 UTC)), Some(p), json::Escapes::ALL);
        let exactly_now = wrap(b"x", Some(NOW), Some(p), json::Escapes::ALL);
        assert!(matches!(unwrap(&past, EnvelopeDetection::Prefix, p, NOW), Err(Error::Expired(_))));
        assert!(matches!(
            unwrap(&exactly_now, EnvelopeDetection::Prefix, p, NOW),
            Err(Error::Expired(_))
        ));
        assert_eq!(&*unwrap(&future, EnvelopeDetection::Prefix, p, NOW).unwrap(), b"x");
    }

    #[test]
    fn detection_differs_between_7_0_and_7_1() {
        let reordered = br#"{"_rails":{"exp":null,"pur":null,"message":"eyJhIjoxfQ=="}}"#;
        let spaced = br#"{ "_rails": {"message": "eyJhIjoxfQ=="}}"#;
        for m in [&reordered[..], &spaced[..]] {
            assert_eq!(&*unwrap(m, EnvelopeDetection::Parse, "p", NOW).unwrap(), br#"{"a":1}"#);
            assert_eq!(&*unwrap(m, EnvelopeDetection::Prefix, "p", NOW).unwrap(), m);
        }
    }

    #[test]
    fn broken_envelopes_are_errors() {
        for m in [
            &br#"{"_rails":{"message":"e30","exp":null,"pur":null}}"#[..],
            br#"{"_rails":{"message":"e30=","exp":"yesterday","pur":null}}"#,
            br#"{"_rails":{"message":"#,
            br#"{"_rails":{"message":1}}"#,
        ] {
            assert!(unwrap(m, EnvelopeDetection::Prefix, "p", NOW).is_err());
        }
    }
}
