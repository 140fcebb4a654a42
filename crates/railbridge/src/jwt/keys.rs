//! Signing keys: a PEM file in, a parsed `ring` key pair and its public JWK out. The algorithm follows the key
//! type — Ed25519 → `EdDSA`, P-256 → `ES256`, RSA → `RS256`. Keys are parsed once, when the configuration is
//! loaded; the private half never leaves this module and never appears in `Debug` output.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};

/// Why a key file could not be used. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a private key this gateway can sign with.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Signing failed (should not happen with a key that loaded).
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs assertions, with its `kid` and public JWK.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pair: Pair,
    jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Reads a PEM private key from `path`; `kid` defaults to the key's RFC 7638 thumbprint.
    pub fn from_file(path: &Path, kid: Option<String>) -> Result<Self, KeyError> {
        let pem = std::fs::read(path)
            .map_err(|source| KeyError::Read { path: path.display().to_string(), source })?;
        Self::from_pem(&pem, kid)
            .map_err(|reason| KeyError::Unsupported { path: path.display().to_string(), reason })
    }

    /// Parses a PEM private key: PKCS#8 Ed25519, PKCS#8 P-256, or RSA (PKCS#1 or PKCS#8, at least 2048 bits).
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<Self, String> {
        let (alg, pair) = if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.inner())
                .map_err(|e| format!("not a usable Ed25519 key ({e})"))?;
            (Algorithm::EdDSA, Pair::Ed(pair))
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                key.inner(),
                &SystemRandom::new(),
            )
            .map_err(|e| format!("only P-256 (ES256) EC keys in PKCS#8 are supported ({e})"))?;
            (Algorithm::ES256, Pair::Ec(pair))
        } else if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            let pair = RsaKeyPair::from_der(key.inner()).map_err(|e| {
                format!("not a usable RSA key; at least 2048 bits are needed ({e})")
            })?;
            (Algorithm::RS256, Pair::Rsa(pair))
        } else {
            return Err("not a PEM private key: expected PKCS#8 Ed25519 or P-256 (\"BEGIN PRIVATE KEY\"), or RSA \
                        (\"BEGIN RSA PRIVATE KEY\" or PKCS#8); encrypted keys are not supported"
                .into());
        };
        let params = match &pair {
            Pair::Ed(p) => AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64(p.public_key().as_ref()),
            }),
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
                let (x, y) = point.get(1..).ok_or("empty EC public key")?.split_at(32);
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: b64(x),
                    y: b64(y),
                })
            }
            Pair::Rsa(p) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(p.public());
                AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: b64(&c.n),
                    e: b64(&c.e),
                })
            }
        };
        let kid = match kid {
            Some(k) if !k.trim().is_empty() => k,
            _ => thumbprint(&params),
        };
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(match alg {
                    Algorithm::EdDSA => KeyAlgorithm::EdDSA,
                    Algorithm::ES256 => KeyAlgorithm::ES256,
                    _ => KeyAlgorithm::RS256,
                }),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: params,
        };
        Ok(SigningKey { kid, alg, pair, jwk })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK (with `kid`, `alg`, `use`).
    #[must_use]
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `message` (the JWS signing input).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Ec(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Pair::Rsa(p) => {
                let mut out = vec![0; p.public().modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut out)
                    .map_err(|_| KeyError::Sign)?;
                Ok(out)
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 JWK thumbprint (SHA-256): the required members in lexicographic order, no whitespace.
fn thumbprint(params: &AlgorithmParameters) -> String {
    let canonical = match params {
        AlgorithmParameters::OctetKeyPair(p) => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, p.x)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, p.x, p.y)
        }
        AlgorithmParameters::RSA(p) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p.e, p.n),
        AlgorithmParameters::OctetKey(_) => String::new(),
    };
    b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The Ed25519 key of RFC 8037 A.1 as PKCS#8 PEM (a published test key).
    pub(crate) const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn ed25519_key_and_rfc8037_thumbprint() {
        // RFC 8037 A.1/A.3: this private key has x = 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo and the RFC 7638
        // thumbprint kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k.
        let key = SigningKey::from_pem(ED25519_PEM.as_bytes(), None).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        let AlgorithmParameters::OctetKeyPair(p) = &key.jwk().algorithm else { panic!("not OKP") };
        assert_eq!(p.x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(key.sign(b"x").unwrap().len(), 64);
    }

    #[test]
    fn garbage_is_refused_with_a_reason_and_debug_is_redacted() {
        let err = SigningKey::from_pem(b"not a key", None).unwrap_err();
        assert!(err.contains("not a PEM private key"), "{err}");
        let key = SigningKey::from_pem(ED25519_PEM.as_bytes(), Some("k1".into())).unwrap();
        assert_eq!(key.kid(), "k1");
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]") && !debug.contains("MC4C"), "{debug}");
    }
}
