//! A value's shape, read without any key: Rails' layouts, their parts, and what is wrong with a damaged one.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::MAX_INSPECTED_SIZE;
use crate::digest::Digest;
use crate::encoding;
use crate::message_encryptor::Cipher;
use crate::message_verifier::split_last_separator;
use crate::metadata;
use crate::profile::CookieKind;

/// The layout of a value Rails' signed or encrypted jar writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// `b64(ciphertext)--b64(iv)--b64(tag)`: AES-256-GCM, 12-byte IV, 16-byte tag (Rails 5.2+).
    Gcm,
    /// `b64(b64(ciphertext)--b64(iv))--hex(hmac)`: AES-256-CBC with an HMAC over the outer base64 (4.2–5.1, and
    /// 5.2+ with `use_authenticated_cookie_encryption = false`).
    Cbc,
    /// `b64(message)--hex(hmac)`: the signed jar, or a legacy `secret_token` session.
    Signed,
}

impl Layout {
    /// The jar that writes this layout.
    #[must_use]
    pub fn kind(self) -> CookieKind {
        match self {
            Layout::Gcm | Layout::Cbc => CookieKind::Encrypted,
            Layout::Signed => CookieKind::Signed,
        }
    }

    /// The cipher, for encrypted layouts.
    #[must_use]
    pub fn cipher(self) -> Option<Cipher> {
        match self {
            Layout::Gcm => Some(Cipher::Aes256Gcm),
            Layout::Cbc => Some(Cipher::Aes256Cbc),
            Layout::Signed => None,
        }
    }

    pub(super) fn phrase(self, hmac: Option<Digest>) -> String {
        let hmac = hmac.map_or_else(String::new, |d| format!(", HMAC-{d}"));
        match self {
            Layout::Gcm => "an encrypted AES-256-GCM cookie (ciphertext--iv--tag)".to_owned(),
            Layout::Cbc => format!("an encrypted AES-256-CBC cookie (data--digest{hmac})"),
            Layout::Signed => format!("a signed cookie (data--digest{hmac})"),
        }
    }
}

/// What one `--`-separated part of a value holds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartContent {
    /// Strict base64 of this many bytes.
    Base64 {
        /// Decoded length.
        bytes: usize,
    },
    /// A lowercase hex digest; `digest` names the HMAC its length belongs to.
    Hex {
        /// SHA1 for 40 characters, SHA256 for 64, …; `None` for any other length.
        digest: Option<Digest>,
    },
    /// Neither: why not.
    Invalid {
        /// E.g. `"the character '-' at 12 is not in base64's standard alphabet"`.
        reason: String,
    },
}

/// One `--`-separated part of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Part {
    /// Its length in characters.
    pub len: usize,
    /// What it holds.
    pub content: PartContent,
}

/// Why a value cannot be verified, whatever the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeProblem {
    /// Not a value Rails' signed or encrypted jars write.
    NotRails(String),
    /// One of Rails' layouts ([`Shape::layout`]), damaged: cut short, re-encoded, changed.
    Damaged(String),
    /// Over [`MAX_INSPECTED_SIZE`] bytes.
    TooLarge,
}

/// What a value looks like, read without any key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shape {
    /// The Rails layout it has or, when damaged, resembles.
    pub layout: Option<Layout>,
    /// The HMAC digest its hex digest's length names (CBC and signed values).
    pub hmac: Option<Digest>,
    /// Why it cannot be verified; `None` when it can.
    pub problem: Option<ShapeProblem>,
    /// Length as given.
    pub raw_len: usize,
    /// Length after percent-decoding: what Rails counts against its 4096 bytes.
    pub len: usize,
    /// It carried `%XX` escapes, as a `Cookie` header does.
    pub percent_encoded: bool,
    /// Its `--`-separated parts.
    pub parts: Vec<Part>,
}

impl Shape {
    /// Reads the shape of a value as a `Cookie` header carries it (percent-encoded or not).
    ///
    /// ```
    /// use rails_cookie::inspect::{Layout, Shape};
    /// let shape = Shape::of("eyJ0aGVtZSI6ImRhcmsifQ%3D%3D--ad2560fdf01a00b011a6a99e64f16f85f6aa047399c1094311d3c21b901cf61d");
    /// assert_eq!(shape.layout, Some(Layout::Signed));
    /// assert_eq!(shape.hmac, Some(rails_cookie::Digest::Sha256));
    /// assert!(shape.percent_encoded && shape.problem.is_none());
    /// assert!(Shape::of("hello").problem.is_some());
    /// ```
    #[must_use]
    pub fn of(raw: &str) -> Shape {
        analyse(raw).0
    }

    /// Whether some key could verify it.
    #[must_use]
    pub fn is_verifiable(&self) -> bool {
        self.layout.is_some() && self.problem.is_none()
    }
}

pub(super) fn analyse(raw: &str) -> (Shape, Cow<'_, str>) {
    let mut shape = Shape {
        layout: None,
        hmac: None,
        problem: None,
        raw_len: raw.len(),
        len: raw.len(),
        percent_encoded: false,
        parts: Vec::new(),
    };
    // Each escape is 3 bytes for 1: beyond 3× the limit the decoded value cannot fit either.
    if raw.len() > 3 * MAX_INSPECTED_SIZE {
        shape.problem = Some(ShapeProblem::TooLarge);
        return (shape, Cow::Borrowed(""));
    }
    let value = encoding::unescape(raw);
    shape.len = value.len();
    shape.percent_encoded = raw.contains('%') && value.len() != raw.len();
    if value.len() > MAX_INSPECTED_SIZE {
        shape.problem = Some(ShapeProblem::TooLarge);
        return (shape, value);
    }
    let (layout, hmac, problem, parts) = layout_of(&value, raw);
    shape.layout = layout;
    shape.hmac = hmac;
    shape.problem = problem;
    shape.parts = parts;
    (shape, value)
}

fn digest_of_hex_len(len: usize) -> Option<Digest> {
    match len {
        40 => Some(Digest::Sha1),
        64 => Some(Digest::Sha256),
        96 => Some(Digest::Sha384),
        128 => Some(Digest::Sha512),
        _ => None,
    }
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Strict base64 (`Base64.strict_decode64`), with the reason a part is not.
fn base64_part(part: &str, raw: &str) -> Result<Vec<u8>, String> {
    if part.is_empty() {
        return Err("empty".into());
    }
    if let Some(i) = part.find(' ') {
        return Err(if raw.contains('+') {
            format!(
                "a space at {i} where base64 has `+`: the value carries a literal `+`, which a Cookie header's \
                 form decoding turns into a space (Rack does; Rails then refuses it) — a browser sends `%2B`"
            )
        } else {
            format!("a space at {i}: base64 has none")
        });
    }
    if let Some(i) = part.find(['-', '_']) {
        return Err(format!(
            "URL-safe base64 (`-` or `_` at {i}): Rails writes standard base64 (`+`, `/`)"
        ));
    }
    if let Some(i) = part.find(|c: char| c.is_whitespace()) {
        return Err(format!("whitespace at {i}: strict base64 has none"));
    }
    STANDARD.decode(part).map_err(|e| match e {
        base64::DecodeError::InvalidByte(i, b'=') => {
            format!("`=` padding at {i}, before the end")
        }
        base64::DecodeError::InvalidByte(i, b) => {
            format!("the byte {:?} at {i} is not in base64's alphabet", char::from(b))
        }
        base64::DecodeError::InvalidLength(n) => format!(
            "{n} base64 characters, not a multiple of 4 (cut short, or its `=` padding removed)"
        ),
        base64::DecodeError::InvalidLastSymbol(i, _) => {
            format!("the last character (at {i}) leaves non-zero bits: strict base64 refuses it")
        }
        base64::DecodeError::InvalidPadding => "wrong `=` padding".into(),
    })
}

fn part_of(text: &str, content: PartContent) -> Part {
    Part { len: text.len(), content }
}

type Layouts = (Option<Layout>, Option<Digest>, Option<ShapeProblem>, Vec<Part>);

fn layout_of(value: &str, raw: &str) -> Layouts {
    let not_rails =
        |reason: &str| (None, None, Some(ShapeProblem::NotRails(reason.into())), vec![]);
    if value.is_empty() {
        return not_rails("the value is empty");
    }
    if !value.contains("--") {
        if let Some(layout) = digestless_data(value) {
            let parts = vec![part_of(
                value,
                PartContent::Base64 { bytes: STANDARD.decode(value).map_or(0, |b| b.len()) },
            )];
            let reason = "the `--digest` part is missing: the value was cut short".to_owned();
            return (Some(layout), None, Some(ShapeProblem::Damaged(reason)), parts);
        }
        let reason = if value.len() == 32 && is_lower_hex(value) {
            "32 hex characters: a bare session id, as Rails' server-side session stores (cache_store, redis_store, \
             active_record_store) put in the cookie — the session lives in the store, not in the cookie"
        } else if value.split('.').count() == 3
            && value.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        {
            "three dot-separated base64url parts: a JWT, not a Rails cookie"
        } else {
            "no `--` separator: Rails' signed and encrypted cookies are `data--digest` or `ciphertext--iv--tag`"
        };
        return not_rails(reason);
    }
    let texts: Vec<&str> = value.split("--").collect();
    match texts.as_slice() {
        [ct, iv, tag] => gcm_layout(ct, iv, tag, raw),
        [data, digest] => two_part_layout(data, digest, raw),
        more => {
            let parts = more
                .iter()
                .map(|t| {
                    let content = match base64_part(t, raw) {
                        Ok(b) => PartContent::Base64 { bytes: b.len() },
                        Err(reason) => PartContent::Invalid { reason },
                    };
                    part_of(t, content)
                })
                .collect();
            let looks_gcm = more.last().is_some_and(|t| t.len() == 24 && t.ends_with("=="));
            (
                looks_gcm.then_some(Layout::Gcm),
                None,
                Some(if looks_gcm {
                    ShapeProblem::Damaged(format!(
                        "{} `--`-separated parts where GCM has 3: something was added to the value",
                        more.len()
                    ))
                } else {
                    ShapeProblem::NotRails(format!(
                        "{} `--`-separated parts: Rails writes 2 (signed, CBC) or 3 (GCM)",
                        more.len()
                    ))
                }),
                parts,
            )
        }
    }
}

/// The data half of a signed or CBC value whose `--digest` was cut off: base64 of `b64--b64` with a 16-byte IV
/// (CBC), or of an envelope, a Marshal payload or a JSON object (signed).
fn digestless_data(value: &str) -> Option<Layout> {
    let data = STANDARD.decode(value).ok()?;
    let cbc = std::str::from_utf8(&data)
        .ok()
        .and_then(|inner| split_last_separator(inner.as_bytes()))
        .is_some_and(|(ct, iv)| {
            STANDARD.decode(ct).is_ok() && STANDARD.decode(iv).is_ok_and(|iv| iv.len() == 16)
        });
    if cbc {
        return Some(Layout::Cbc);
    }
    (data.starts_with(metadata::ENVELOPE_PREFIX)
        || data.starts_with(&[4, 8])
        || data.starts_with(b"{\""))
    .then_some(Layout::Signed)
}

fn gcm_layout(ct: &str, iv: &str, tag: &str, raw: &str) -> Layouts {
    let mut problems = Vec::new();
    let mut parts = Vec::new();
    for (name, text, want) in
        [("ciphertext", ct, None), ("IV", iv, Some(12)), ("tag", tag, Some(16))]
    {
        match base64_part(text, raw) {
            Ok(bytes) => {
                if let Some(want) = want.filter(|w| *w != bytes.len()) {
                    problems.push(match (name, bytes.len()) {
                        ("IV", 16) => "the IV is 16 bytes, CBC's size; GCM's is 12".to_owned(),
                        ("tag", n) if n < want => {
                            format!("the tag is {n} bytes where GCM's is {want}: the value was cut short")
                        }
                        (_, n) => format!("the {name} is {n} bytes where GCM's is {want}"),
                    });
                }
                parts.push(part_of(text, PartContent::Base64 { bytes: bytes.len() }));
            }
            Err(reason) => {
                problems.push(format!("the {name} is not strict base64: {reason}"));
                parts.push(part_of(text, PartContent::Invalid { reason }));
            }
        }
    }
    let problem = (!problems.is_empty()).then(|| ShapeProblem::Damaged(problems.join("; ")));
    (Some(Layout::Gcm), None, problem, parts)
}

fn two_part_layout(data: &str, digest: &str, raw: &str) -> Layouts {
    let data_part = |content| part_of(data, content);
    let decoded = base64_part(data, raw);
    let data_content = match &decoded {
        Ok(b) => PartContent::Base64 { bytes: b.len() },
        Err(reason) => PartContent::Invalid { reason: reason.clone() },
    };
    if !is_lower_hex(digest) {
        // Not `data--hexdigest`: a GCM value missing a part, an uppercased digest, or something else.
        let looks_iv = STANDARD.decode(digest).is_ok_and(|b| b.len() == 12);
        let upper_hex = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
        let content = match base64_part(digest, raw) {
            Ok(b) => PartContent::Base64 { bytes: b.len() },
            Err(reason) => PartContent::Invalid { reason },
        };
        let parts = vec![data_part(data_content), part_of(digest, content)];
        let (layout, problem) = if looks_iv {
            (Some(Layout::Gcm), ShapeProblem::Damaged("two parts, the second a 12-byte IV: a GCM value whose tag (third part) is missing".into()))
        } else if upper_hex && digest_of_hex_len(digest.len()).is_some() {
            (
                Some(Layout::Signed),
                ShapeProblem::Damaged(
                    "the digest is uppercase hex: Rails writes and compares lowercase".into(),
                ),
            )
        } else if digest.is_empty() {
            (Some(Layout::Signed), ShapeProblem::Damaged("the digest after `--` is empty".into()))
        } else {
            (
                None,
                ShapeProblem::NotRails(
                    "the part after `--` is neither a hex digest (signed, CBC) nor a GCM IV".into(),
                ),
            )
        };
        return (layout, None, Some(problem), parts);
    }
    let hmac = digest_of_hex_len(digest.len());
    let digest_part = part_of(digest, PartContent::Hex { digest: hmac });
    // CBC's data is the base64 of `b64(ciphertext)--b64(iv)` with a 16-byte IV; anything else is a signed message.
    let cbc =
        decoded.as_ref().ok().and_then(|d| std::str::from_utf8(d).ok()).is_some_and(|inner| {
            split_last_separator(inner.as_bytes()).is_some_and(|(ct, iv)| {
                !ct.is_empty()
                    && STANDARD.decode(ct).is_ok()
                    && STANDARD.decode(iv).is_ok_and(|iv| iv.len() == 16)
            })
        });
    let layout = if cbc { Layout::Cbc } else { Layout::Signed };
    let parts = vec![data_part(data_content), digest_part];
    let problem = match (&decoded, hmac) {
        (Err(reason), _) => Some(format!("the data before `--` is not strict base64: {reason}")),
        (Ok(_), None) => Some(format!(
            "the digest is {} hex characters; HMAC-SHA1's is 40, -SHA256's 64, -SHA384's 96, -SHA512's 128: {}",
            digest.len(),
            if digest.len() < 40 { "cut short" } else { "changed" }
        )),
        (Ok(_), Some(_)) => None,
    };
    (Some(layout), hmac, problem.map(ShapeProblem::Damaged), parts)
}
