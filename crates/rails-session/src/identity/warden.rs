//! Warden's session keys, as Devise writes them (`Warden::SessionSerializer`).
//!
//! * `warden.user.<scope>.key` = `[record.to_key, record.authenticatable_salt]`, e.g. `[[1], "$2a$04$…"]` (Devise
//!   2.0+), or the older `["User", [1], "$2a$04$…"]` with the class name first.
//! * `warden.user.<scope>.session` = `{"last_request_at" => epoch seconds}` for `:timeoutable`.

use rails_cookie::Value;
use time::OffsetDateTime;

use super::UserId;

/// `"warden.user.<scope>.key"`.
pub(crate) fn key_name(scope: &str) -> String {
    format!("warden.user.{scope}.key")
}

/// `"warden.user.<scope>.session"`.
pub(crate) fn session_name(scope: &str) -> String {
    format!("warden.user.{scope}.session")
}

/// Reads a serialized Warden key: the record id and the authenticatable salt.
pub(crate) fn parse_key(value: &Value) -> Option<(UserId, Option<&str>)> {
    let parts = value.as_array()?;
    let (ids, salt) = match parts {
        // [[id], salt]
        [ids, salt] => (ids, salt),
        // ["User", [id], salt]
        [class, ids, salt] if class.as_str().is_some() => (ids, salt),
        _ => return None,
    };
    let id = match ids.as_array()? {
        [id] => UserId::from_value(id)?,
        _ => return None,
    };
    let salt = match salt {
        Value::Nil => None,
        s => Some(s.as_str()?),
    };
    Some((id, salt))
}

/// `last_request_at` from the scope's Warden session hash: Integer epoch seconds (Devise 3.3+), or the older
/// String / Time forms.
pub(crate) fn last_request_at(session: &Value) -> Option<i64> {
    match session.as_hash()?.get("last_request_at")? {
        Value::Integer(i) => Some(*i),
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(f) if f.is_finite() => Some(*f as i64),
        Value::Time(t) => Some(t.unix_seconds),
        v => {
            let s = v.as_str()?.trim();
            s.parse::<i64>().ok().or_else(|| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(|t| t.unix_timestamp())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rails_cookie::Hash;

    fn arr(v: Vec<Value>) -> Value {
        Value::Array(v)
    }

    #[test]
    fn both_key_shapes() {
        let salt: Value = "$2a$04$t5oXLMcxWj/RkeIfFyX9r.".into();
        let modern = arr(vec![arr(vec![1.into()]), salt.clone()]);
        assert_eq!(
            parse_key(&modern),
            Some((UserId::Integer(1), Some("$2a$04$t5oXLMcxWj/RkeIfFyX9r.")))
        );
        let old = arr(vec!["User".into(), arr(vec!["b3c1-uuid".into()]), salt]);
        assert_eq!(parse_key(&old).map(|k| k.0), Some(UserId::String("b3c1-uuid".into())));
        let no_salt = arr(vec![arr(vec![2.into()]), Value::Nil]);
        assert_eq!(parse_key(&no_salt), Some((UserId::Integer(2), None)));
        for bad in [
            Value::Nil,
            arr(vec![]),
            arr(vec![arr(vec![1.into(), 2.into()]), Value::Nil]),
            arr(vec![1.into(), 2.into()]),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn last_request_at_forms() {
        let mut h = Hash::new();
        h.insert("last_request_at", 1_795_703_291.into());
        assert_eq!(last_request_at(&Value::Hash(h.clone())), Some(1_795_703_291));
        h.insert("last_request_at", "2026-11-25T10:28:11Z".into());
        assert_eq!(last_request_at(&Value::Hash(h.clone())), Some(1_795_602_491));
        h.insert("last_request_at", "1795703291".into());
        assert_eq!(last_request_at(&Value::Hash(h)), Some(1_795_703_291));
    }
}
