//! The gateway's public keys: a JWKS document (RFC 7517) parsed into `ring` verification keys, and JWS signature
//! verification (RFC 7515, algorithms of RFC 7518 §3.3–3.4 and RFC 8037).
//!
//! Parsing is lenient per key and strict per document: a key this verifier cannot use (another `kty` or curve,
//! `use` other than `sig`, no `kid`, a bad parameter) is skipped with a warning, but a document that is not
//! `{"keys": [...]}` or holds no usable key is refused, so a garbled answer never replaces good keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256,
};
use serde::Deserialize;

use super::error::{clip, AssertionError};

/// The most keys a JWKS may hold.
const MAX_KEYS: usize = 100;

/// The JWS algorithms the gateway signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    EdDsa,
    Es256,
    Rs256,
}

impl Alg {
    /// The algorithm a header names; `None` for every other (`none`, `HS256`, `PS256`, `ES384`, …).
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        match name {
            "EdDSA" => Some(Alg::EdDsa),
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
}

enum Material {
    /// The 32-byte Ed25519 public key (`x`).
    Ed25519(Vec<u8>),
    /// The uncompressed P-256 point, `0x04 ‖ x ‖ y`.
    P256(Vec<u8>),
    /// `n` and `e`, big-endian without leading zeros.
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
}

/// One public key of the set.
pub(crate) struct VerifyingKey {
    kid: String,
    /// The JWK's own `alg`, if it names one.
    alg: Option<String>,
    material: Material,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match self.material {
            Material::Ed25519(_) => "OKP/Ed25519",
            Material::P256(_) => "EC/P-256",
            Material::Rsa(_) => "RSA",
        };
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &kty)
            .finish()
    }
}

impl VerifyingKey {
    /// Checks `signature` over `message` for a token whose header names `alg`: the algorithm must fit the key's
    /// type and, when the JWK names an `alg`, be that one.
    pub(crate) fn verify(
        &self,
        alg: Alg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), AssertionError> {
        if self.alg.as_deref().is_some_and(|own| own != alg.name()) {
            return Err(AssertionError::unsupported(alg.name()));
        }
        let checked = match (&self.material, alg) {
            (Material::Ed25519(x), Alg::EdDsa) => {
                UnparsedPublicKey::new(&ED25519, x).verify(message, signature)
            }
            (Material::P256(point), Alg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
            }
            (Material::Rsa(components), Alg::Rs256) => {
                components.verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            }
            _ => return Err(AssertionError::unsupported(alg.name())),
        };
        checked.map_err(|_| AssertionError::BadSignature)
    }
}

/// A parsed key set, looked up by `kid`.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// The key with this `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses a JWKS document. Unusable keys are skipped (and logged); a document with no usable key is an
    /// error.
    pub(crate) fn from_json(json: &[u8]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(json)
            .map_err(|e| format!("not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
        if document.keys.len() > MAX_KEYS {
            return Err(format!("{} keys; at most {MAX_KEYS} are accepted", document.keys.len()));
        }
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(document.keys.len());
        for (i, value) in document.keys.into_iter().enumerate() {
            match parse_key(value) {
                Ok(key) if keys.iter().any(|k| k.kid == key.kid) => {
                    tracing::warn!(kid = %key.kid, "JWKS: a second key with the same kid is ignored");
                }
                Ok(key) => keys.push(key),
                Err(why) => tracing::warn!(index = i, reason = %why, "JWKS: key skipped"),
            }
        }
        if keys.is_empty() {
            return Err("no usable key (EdDSA/Ed25519, ES256/P-256 or RS256 with a kid)".into());
        }
        Ok(KeySet { keys })
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

fn parse_key(value: serde_json::Value) -> Result<VerifyingKey, String> {
    let raw: RawJwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    let kid = raw.kid.filter(|k| !k.is_empty()).ok_or("no kid")?;
    if raw.public_key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(format!("kid {:?}: not a signature key (use)", clip(&kid)));
    }
    if raw.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
        return Err(format!("kid {:?}: key_ops does not allow verify", clip(&kid)));
    }
    let material = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => Material::Ed25519(fixed(raw.x.as_deref(), 32, "x")?),
        ("EC", Some("P-256")) => {
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend(fixed(raw.x.as_deref(), 32, "x")?);
            point.extend(fixed(raw.y.as_deref(), 32, "y")?);
            Material::P256(point)
        }
        ("RSA", _) => {
            let n = unsigned(raw.n.as_deref(), "n")?;
            let e = unsigned(raw.e.as_deref(), "e")?;
            if !(256..=1024).contains(&n.len()) {
                return Err(format!(
                    "kid {:?}: RSA modulus of {} bits; 2048 to 8192 are accepted",
                    clip(&kid),
                    n.len() * 8
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(format!("kid {:?}: unusable RSA exponent", clip(&kid)));
            }
            Material::Rsa(RsaPublicKeyComponents { n, e })
        }
        (kty, crv) => {
            return Err(format!(
                "kid {:?}: unsupported key type {:?}{}",
                clip(&kid),
                clip(kty),
                crv.map(|c| format!(" curve {:?}", clip(c))).unwrap_or_default()
            ))
        }
    };
    Ok(VerifyingKey { kid, alg: raw.alg, material })
}

fn decode(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("no {name}"))?;
    URL_SAFE_NO_PAD.decode(value).map_err(|_| format!("{name} is not base64url"))
}

fn fixed(value: Option<&str>, len: usize, name: &str) -> Result<Vec<u8>, String> {
    let bytes = decode(value, name)?;
    if bytes.len() != len {
        return Err(format!("{name} has {} bytes, not {len}", bytes.len()));
    }
    Ok(bytes)
}

/// A big-endian unsigned integer, leading zeros stripped (`ring` wants none).
fn unsigned(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let mut bytes = decode(value, name)?;
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    fn ed_jwk(kid: &str, x: &[u8]) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(x)})
    }

    #[test]
    fn unusable_keys_are_skipped_and_an_empty_set_is_refused() {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
        let x = pair.public_key().as_ref();
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "AAAA"},
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": URL_SAFE_NO_PAD.encode(x)},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x)},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": URL_SAFE_NO_PAD.encode(x)},
            {"kty": "RSA", "kid": "small", "n": URL_SAFE_NO_PAD.encode([0xff; 128]), "e": "AQAB"},
            "not an object",
            ed_jwk("good", x),
            ed_jwk("good", &[0; 32]),
        ]});
        let set = KeySet::from_json(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1);
        let key = set.get("good").unwrap();
        let sig = pair.sign(b"m");
        key.verify(Alg::EdDsa, b"m", sig.as_ref()).unwrap();
        assert_eq!(key.verify(Alg::EdDsa, b"n", sig.as_ref()), Err(AssertionError::BadSignature));
        assert_eq!(
            key.verify(Alg::Rs256, b"m", sig.as_ref()).unwrap_err().reason(),
            "unsupported_algorithm"
        );
        assert!(format!("{key:?}").contains("OKP/Ed25519"));

        assert!(KeySet::from_json(br#"{"keys": []}"#).is_err());
        assert!(KeySet::from_json(br#"{"keys": [{"kty": "oct"}]}"#).is_err());
        assert!(KeySet::from_json(b"[]").is_err());
        assert!(KeySet::from_json(b"").is_err());
        let many: Vec<_> = (0..=MAX_KEYS).map(|i| ed_jwk(&i.to_string(), x)).collect();
        assert!(
            KeySet::from_json(serde_json::json!({ "keys": many }).to_string().as_bytes()).is_err()
        );
    }

    #[test]
    fn the_jwk_alg_must_match_the_header() {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
        let mut jwk = ed_jwk("k", pair.public_key().as_ref());
        jwk["alg"] = "Ed25519".into();
        let set =
            KeySet::from_json(serde_json::json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap();
        let sig = pair.sign(b"m");
        assert_eq!(
            set.get("k").unwrap().verify(Alg::EdDsa, b"m", sig.as_ref()),
            Err(AssertionError::UnsupportedAlgorithm("EdDSA".into()))
        );
    }
}
