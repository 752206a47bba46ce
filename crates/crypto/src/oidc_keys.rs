//! Signing keys of Limen's OpenID Provider (see `docs/design/oidc-provider.md`): a key
//! *slot* holds one RS256 key (RSA 2048) and one ES256 key (P-256), because
//! kube-apiserver accepts RS, ES and PS algorithms and its legacy flags RS256 alone. The
//! public halves are published as a JWK set (RFC 7517/7518) whose `kid`s are RFC 7638
//! thumbprints, and every JWT names the `kid` that signed it.
//!
//! A slot is stored as JSON holding both private keys as PKCS#8 PEM; where it is kept
//! (a file, or sealed in the database) is the caller's business.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// RSA modulus size: RFC 7518 §3.3 asks for at least 2048 bits.
const RSA_BITS: usize = 2048;

#[derive(Debug, Error)]
pub enum OidcKeyError {
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    #[error("stored OIDC signing key is unreadable: {0}")]
    BadKey(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// The algorithms a slot signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
        }
    }
}

/// The stored form of a slot.
#[derive(Serialize, Deserialize)]
struct StoredSlot {
    rs256: String,
    es256: String,
}

/// One RS256 and one ES256 private key, with their public JWKs worked out once.
pub struct SigningSlot {
    rs256_pem: String,
    es256_pem: String,
    rs256_jwk: Value,
    es256_jwk: Value,
}

impl SigningSlot {
    /// A new slot from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, OidcKeyError> {
        let gen = |e: &dyn std::fmt::Display| OidcKeyError::Generate(e.to_string());
        let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(|e| gen(&e))?;
        let ec = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let rs256 = rsa.to_pkcs8_pem(LineEnding::LF).map_err(|e| gen(&e))?;
        let es256 = ec.to_pkcs8_pem(LineEnding::LF).map_err(|e| gen(&e))?;
        Self::from_pems(rs256.to_string(), es256.to_string())
    }

    /// Reads a slot written by [`SigningSlot::to_stored`].
    pub fn from_stored(stored: &str) -> Result<Self, OidcKeyError> {
        let s: StoredSlot =
            serde_json::from_str(stored).map_err(|e| OidcKeyError::BadKey(e.to_string()))?;
        Self::from_pems(s.rs256, s.es256)
    }

    /// The slot as stored: JSON with both private keys (PKCS#8 PEM). Secret.
    pub fn to_stored(&self) -> String {
        json!({"rs256": self.rs256_pem, "es256": self.es256_pem}).to_string()
    }

    fn from_pems(rs256_pem: String, es256_pem: String) -> Result<Self, OidcKeyError> {
        let bad = |e: &dyn std::fmt::Display| OidcKeyError::BadKey(e.to_string());
        let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(&rs256_pem).map_err(|e| bad(&e))?;
        if rsa.size() * 8 < RSA_BITS {
            return Err(OidcKeyError::BadKey(format!(
                "the RSA key has {} bits; at least {RSA_BITS} are required",
                rsa.size() * 8
            )));
        }
        let ec = p256::SecretKey::from_pkcs8_pem(&es256_pem).map_err(|e| bad(&e))?;
        Ok(SigningSlot {
            rs256_jwk: rsa_jwk(&rsa.to_public_key()),
            es256_jwk: ec_jwk(&ec.public_key()),
            rs256_pem,
            es256_pem,
        })
    }

    /// The public JWKs of both keys.
    pub fn public_jwks(&self) -> [&Value; 2] {
        [&self.rs256_jwk, &self.es256_jwk]
    }

    /// The `kid` of the key for `alg`.
    pub fn kid(&self, alg: SigningAlg) -> &str {
        let jwk = match alg {
            SigningAlg::RS256 => &self.rs256_jwk,
            SigningAlg::ES256 => &self.es256_jwk,
        };
        jwk["kid"].as_str().unwrap_or_default()
    }

    /// A JWT of `claims` signed with the key for `alg`, its `kid` in the header.
    pub fn sign<C: Serialize>(&self, alg: SigningAlg, claims: &C) -> Result<String, OidcKeyError> {
        let sign = |e: jsonwebtoken::errors::Error| OidcKeyError::Sign(e.to_string());
        let (algorithm, key) = match alg {
            SigningAlg::RS256 => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(self.rs256_pem.as_bytes()).map_err(sign)?,
            ),
            SigningAlg::ES256 => (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(self.es256_pem.as_bytes()).map_err(sign)?,
            ),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(self.kid(alg).to_string());
        jsonwebtoken::encode(&header, claims, &key).map_err(sign)
    }
}

/// The JWK set of `slots` (what `jwks_uri` serves).
pub fn jwk_set<'a>(slots: impl IntoIterator<Item = &'a SigningSlot>) -> Value {
    let keys: Vec<&Value> = slots.into_iter().flat_map(|s| s.public_jwks()).collect();
    json!({ "keys": keys })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638: the SHA-256 of the required members in lexicographic order, without
/// white space. The members' values are base64url or fixed names, so nothing needs
/// escaping.
fn thumbprint(canonical: &str) -> String {
    b64(&Sha256::digest(canonical.as_bytes()))
}

fn rsa_jwk(public: &rsa::RsaPublicKey) -> Value {
    let n = b64(&public.n().to_bytes_be());
    let e = b64(&public.e().to_bytes_be());
    let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e})
}

fn ec_jwk(public: &p256::PublicKey) -> Value {
    let point = public.to_encoded_point(false);
    // Uncompressed points always carry both coordinates, 32 octets each.
    let x = b64(point.x().map(|x| x.as_slice()).unwrap_or_default());
    let y = b64(point.y().map(|y| y.as_slice()).unwrap_or_default());
    let kid = thumbprint(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
    ));
    json!({"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid, "x": x, "y": y})
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // The example of RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(
            thumbprint(&canonical),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn slots_round_trip_and_publish_well_formed_keys() {
        let slot = SigningSlot::generate().unwrap();
        let again = SigningSlot::from_stored(&slot.to_stored()).unwrap();
        assert_eq!(again.public_jwks(), slot.public_jwks());
        let [rs, es] = slot.public_jwks();
        assert_eq!(rs["kty"], "RSA");
        assert_eq!(rs["e"], "AQAB");
        assert_eq!(URL_SAFE_NO_PAD.decode(rs["n"].as_str().unwrap()).unwrap().len(), 256);
        assert_eq!(es["crv"], "P-256");
        for c in ["x", "y"] {
            let octets = URL_SAFE_NO_PAD.decode(es[c].as_str().unwrap()).unwrap();
            assert_eq!(octets.len(), 32, "{c} is 32 octets");
        }
        assert_ne!(rs["kid"], es["kid"]);
        let set = jwk_set([&slot, &again]);
        assert_eq!(set["keys"].as_array().unwrap().len(), 4);
        // No private member leaks into the published keys.
        for k in set["keys"].as_array().unwrap() {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(k.get(private).is_none(), "{private} published");
            }
        }
    }

    #[test]
    fn tokens_verify_against_the_published_jwk_of_their_kid() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Claims {
            sub: String,
            exp: u64,
        }
        let slot = SigningSlot::generate().unwrap();
        let other = SigningSlot::generate().unwrap();
        let claims = Claims {
            sub: "u1".into(),
            exp: 4_000_000_000,
        };
        for alg in [SigningAlg::RS256, SigningAlg::ES256] {
            let token = slot.sign(alg, &claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(slot.kid(alg)));
            // An independent JWK parser (jsonwebtoken's) reads what Limen publishes.
            let set = jwk_set([&other, &slot]);
            let jwk_value = set["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == header.kid.clone().unwrap())
                .unwrap()
                .clone();
            let jwk: Jwk = serde_json::from_value(jwk_value).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = Validation::new(header.alg);
            v.validate_aud = false;
            let got = jsonwebtoken::decode::<Claims>(&token, &key, &v).unwrap();
            assert_eq!(got.claims, claims);
            // The other slot's key of the same kind does not verify it.
            let [ors, oes] = other.public_jwks();
            let wrong: Jwk = serde_json::from_value(
                if alg == SigningAlg::RS256 { ors } else { oes }.clone(),
            )
            .unwrap();
            let wrong = DecodingKey::from_jwk(&wrong).unwrap();
            assert!(jsonwebtoken::decode::<Claims>(&token, &wrong, &v).is_err());
        }
    }

    #[test]
    fn unreadable_or_weak_keys_are_refused() {
        assert!(SigningSlot::from_stored("{}").is_err());
        assert!(SigningSlot::from_stored(r#"{"rs256":"x","es256":"y"}"#).is_err());
        let weak = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let weak = weak.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let ec = p256::SecretKey::random(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string();
        let stored = json!({"rs256": weak, "es256": ec}).to_string();
        assert!(matches!(
            SigningSlot::from_stored(&stored),
            Err(OidcKeyError::BadKey(_))
        ));
    }
}
