//! The key set: which key signs, and the public keys published at `/.well-known/jwks.json` (all of them, so a
//! key being rotated in or out still verifies).

use std::sync::Arc;

use bytes::Bytes;
use jsonwebtoken::jwk::JwkSet;

use super::keys::SigningKey;

/// The configured keys: one signs, all are published.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    signing: usize,
    jwks: Bytes,
}

impl KeySet {
    /// A key set; `signing` is the index of the key that signs. `None` if `keys` is empty, `signing` is out of
    /// range, or two keys share a `kid`.
    pub(crate) fn new(keys: Vec<SigningKey>, signing: usize) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("no key".into());
        }
        if signing >= keys.len() {
            return Err("the signing key is not in the set".into());
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid() == k.kid()) {
                return Err(format!("two keys have the kid {:?}", k.kid()));
            }
        }
        let set = JwkSet { keys: keys.iter().map(|k| k.jwk().clone()).collect() };
        let jwks = serde_json::to_vec(&set).map_err(|e| e.to_string())?;
        Ok(KeySet {
            keys: keys.into_iter().map(Arc::new).collect(),
            signing,
            jwks: Bytes::from(jwks),
        })
    }

    /// The key that signs.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.keys[self.signing]
    }

    /// All keys.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().map(|k| &**k)
    }

    /// The JWKS document (`{"keys": [...]}`), serialized once.
    #[must_use]
    pub fn jwks_json(&self) -> Bytes {
        self.jwks.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::keys::tests::ED25519_PEM;

    #[test]
    fn jwks_lists_every_key_and_refuses_duplicate_kids() {
        let a = SigningKey::from_pem(ED25519_PEM.as_bytes(), Some("a".into())).unwrap();
        let b = SigningKey::from_pem(ED25519_PEM.as_bytes(), Some("b".into())).unwrap();
        let set = KeySet::new(vec![a, b], 1).unwrap();
        assert_eq!(set.signing_key().kid(), "b");
        let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json()).unwrap();
        let kids: Vec<_> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["a", "b"]);
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert!(jwks["keys"][0].get("d").is_none(), "no private part");
        let a = SigningKey::from_pem(ED25519_PEM.as_bytes(), Some("a".into())).unwrap();
        let a2 = SigningKey::from_pem(ED25519_PEM.as_bytes(), Some("a".into())).unwrap();
        assert!(KeySet::new(vec![a, a2], 0).is_err());
    }
}
