//! A cookie pasted in any of the forms people copy one in.

/// Where [`CookieInput`] found the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputForm {
    /// A bare value, as in a `Cookie` header.
    Value,
    /// `name=value`.
    Pair,
    /// A `Cookie:` header line (or its value: `a=1; b=2`).
    CookieHeader,
    /// A `Set-Cookie:` header line (or its value: `name=value; path=/; HttpOnly`).
    SetCookieHeader,
}

/// A cookie pasted in any of the forms people copy one in: a bare value, `name=value`, a `Cookie:` header (several
/// cookies) or a `Set-Cookie:` header (one cookie and its attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieInput {
    /// The cookie's name, when the input gives one.
    pub name: Option<String>,
    /// Its value, as the header carries it (not yet percent-decoded).
    pub value: String,
    /// The form it came in.
    pub form: InputForm,
}

/// Why no cookie value could be taken from an input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Nothing but whitespace.
    #[error("no cookie value in the input")]
    Empty,
    /// The name asked for is not in the header.
    #[error("no cookie named {name:?} in the input (it has: {})", .found.join(", "))]
    Missing {
        /// The name asked for.
        name: String,
        /// The names the input has.
        found: Vec<String>,
    },
    /// Several cookies of Rails' shape, and no name to choose one.
    #[error("the input has several cookies ({}): name the one to inspect", .found.join(", "))]
    Ambiguous {
        /// Their names.
        found: Vec<String>,
    },
}

const SET_COOKIE_ATTRIBUTES: [&str; 8] =
    ["path", "domain", "expires", "max-age", "secure", "httponly", "samesite", "partitioned"];

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// A cookie name as RFC 6265 allows it (a token: no separators, no spaces).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

impl CookieInput {
    /// Takes the cookie out of `text` (surrounding whitespace ignored). `name`, when given, chooses among the
    /// cookies of a `Cookie` header and is stripped from a `name=value` pair; without it, a header's cookie is the
    /// only one, or the only one of Rails' shape.
    ///
    /// ```
    /// use rails_cookie::inspect::{CookieInput, InputForm};
    /// let input = CookieInput::parse("Cookie: theme=dark; _app_session=abc%3D%3D--0123; other=1", Some("_app_session"))?;
    /// assert_eq!((input.name.as_deref(), input.value.as_str()), (Some("_app_session"), "abc%3D%3D--0123"));
    /// // A bare value's base64 padding is not mistaken for `name=value`.
    /// let bare = CookieInput::parse("eyJ0aGVtZSI6ImRhcmsifQ==--ad25", None)?;
    /// assert_eq!((bare.form, bare.name), (InputForm::Value, None));
    /// # Ok::<(), rails_cookie::inspect::InputError>(())
    /// ```
    pub fn parse(text: &str, name: Option<&str>) -> Result<CookieInput, InputError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::Empty);
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "set-cookie:") {
            return Self::from_pairs(rest, name, InputForm::SetCookieHeader);
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "cookie:") {
            return Self::from_pairs(rest, name, InputForm::CookieHeader);
        }
        if text.contains(';') {
            let attribute = text.split(';').skip(1).any(|a| {
                let key = a.split('=').next().unwrap_or_default().trim();
                SET_COOKIE_ATTRIBUTES.iter().any(|k| k.eq_ignore_ascii_case(key))
            });
            let form = if attribute { InputForm::SetCookieHeader } else { InputForm::CookieHeader };
            return Self::from_pairs(text, name, form);
        }
        if let Some(n) = name {
            if let Some(value) = text.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                return Self::one(Some(n), value, InputForm::Pair);
            }
        }
        // `name=value`, unless what precedes the first `=` is base64 followed by padding or by `--`.
        if let Some((n, value)) = text.split_once('=') {
            if is_token(n) && !n.contains("--") && !value.starts_with(['=', '-']) {
                if let Some(want) = name {
                    if want != n {
                        return Err(InputError::Missing {
                            name: want.into(),
                            found: vec![n.into()],
                        });
                    }
                }
                return Self::one(Some(n), value, InputForm::Pair);
            }
        }
        Self::one(None, text, InputForm::Value)
    }

    fn one(name: Option<&str>, value: &str, form: InputForm) -> Result<CookieInput, InputError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(InputError::Empty);
        }
        Ok(CookieInput { name: name.map(str::to_owned), value: value.to_owned(), form })
    }

    fn from_pairs(
        text: &str,
        name: Option<&str>,
        form: InputForm,
    ) -> Result<CookieInput, InputError> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for item in text.split(';') {
            let Some((n, v)) = item.split_once('=') else { continue };
            let n = n.trim();
            // Rack: the first occurrence of a name wins.
            if !n.is_empty() && !pairs.iter().any(|(have, _)| *have == n) {
                pairs.push((n, v.trim()));
            }
            if form == InputForm::SetCookieHeader {
                break;
            }
        }
        let found = || pairs.iter().map(|(n, _)| (*n).to_owned()).collect::<Vec<_>>();
        let chosen = match name {
            Some(want) => pairs
                .iter()
                .find(|(n, _)| *n == want)
                .ok_or_else(|| InputError::Missing { name: want.into(), found: found() })?,
            None if pairs.len() == 1 => &pairs[0],
            None if pairs.is_empty() => return Err(InputError::Empty),
            None => {
                let rails: Vec<_> = pairs.iter().filter(|(_, v)| v.contains("--")).collect();
                match rails.as_slice() {
                    [one] => *one,
                    _ => return Err(InputError::Ambiguous { found: found() }),
                }
            }
        };
        Self::one(Some(chosen.0), chosen.1, form)
    }
}
