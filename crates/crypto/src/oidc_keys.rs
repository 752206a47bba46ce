//! Signing keys of Limen's OpenID Provider (see `docs/design/oidc-provider.md`): a key
//! *slot* holds one RS256 key (RSA 2048) and one ES256 key (P-256), because
//! kube-apiserver accepts RS, ES and PS algorithms and its legacy flags RS256 alone. The
//! public halves are published as a JWK set (RFC 7517/7518) whose `kid`s are RFC 7638
//! thumbprints, and every JWT names the `kid` that signed it.
//!
//! A slot is stored as JSON holding both private keys as PKCS#8 PEM (and, once retired,
//! when). [`OidcKeyRepository`] keeps slots as files in Keystone's Fernet layout: `0` is
//! staged (already published, so relying parties know it before it signs), the highest
//! number is primary, the others are retired and stay published until every token they
//! signed has expired.

use crate::reload::Reloading;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

/// RSA modulus size: RFC 7518 §3.3 asks for at least 2048 bits.
const RSA_BITS: usize = 2048;

#[derive(Debug, Error)]
pub enum OidcKeyError {
    #[error("OIDC key repository {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("OIDC key repository {0} holds no keys; run `limen keys oidc setup`")]
    NoKeys(String),
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
    /// When the slot stopped signing (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

/// One RS256 and one ES256 private key, with their public JWKs worked out once.
pub struct SigningSlot {
    /// When the slot stopped signing (unix seconds); `None` while staged or primary.
    pub retired_at: Option<i64>,
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
        let mut slot = Self::from_pems(s.rs256, s.es256)?;
        slot.retired_at = s.retired_at;
        Ok(slot)
    }

    /// The slot as stored: JSON with both private keys (PKCS#8 PEM). Secret.
    pub fn to_stored(&self) -> String {
        let stored = StoredSlot {
            rs256: self.rs256_pem.clone(),
            es256: self.es256_pem.clone(),
            retired_at: self.retired_at,
        };
        serde_json::to_string(&stored).unwrap_or_default()
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
            retired_at: None,
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

    /// A JWT of `claims` signed with the key for `alg`, its `kid` in the header, and
    /// `typ` (`JWT`, or `at+jwt` for access tokens per RFC 9068).
    pub fn sign<C: Serialize>(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &C,
    ) -> Result<String, OidcKeyError> {
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
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &key).map_err(sign)
    }
}

/// The JWK set of `slots` (what `jwks_uri` serves).
pub fn jwk_set<'a>(slots: impl IntoIterator<Item = &'a SigningSlot>) -> Value {
    let keys: Vec<&Value> = slots.into_iter().flat_map(|s| s.public_jwks()).collect();
    json!({ "keys": keys })
}

/// Why a JWT does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum JwtRejection {
    /// Not a JWT, or not signed by a key kept here.
    #[error("not a token this provider signed")]
    NotOurs,
    #[error("the token has expired")]
    Expired,
    #[error("the token is for another audience")]
    OtherAudience,
    /// A bad signature, issuer or type, or a malformed claim.
    #[error("the token is not valid")]
    Invalid,
}

/// The keys a node signs and publishes with.
pub struct OidcKeys {
    /// The slot that signs.
    pub primary: SigningSlot,
    /// The staged and the retired slots (published, not signing).
    pub others: Vec<SigningSlot>,
}

impl OidcKeys {
    /// The keys of numbered slots: the highest number signs.
    pub fn from_slots(mut slots: Vec<(u64, SigningSlot)>) -> Option<Self> {
        slots.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        let mut slots = slots.into_iter();
        let (number, primary) = slots.next()?;
        if number == 0 {
            return None;
        }
        Some(OidcKeys {
            primary,
            others: slots.map(|(_, s)| s).collect(),
        })
    }

    /// The claims of an access token these keys signed (any slot kept), if its signature,
    /// `typ` (`at+jwt`), issuer and audience (both `issuer`) hold and it has not expired
    /// at `now` (unix seconds, by Limen's clock; no leeway).
    pub fn verify_access_token(&self, token: &str, issuer: &str, now: i64) -> Option<Value> {
        self.verify(token, "at+jwt", issuer, issuer, now).ok()
    }

    /// The claims of an ID token these keys signed for `client_id` (its `aud`), if its
    /// signature, `typ` (`JWT`) and issuer hold and it has not expired at `now`.
    pub fn verify_id_token(
        &self,
        token: &str,
        issuer: &str,
        client_id: &str,
        now: i64,
    ) -> Option<Value> {
        self.verify(token, "JWT", issuer, client_id, now).ok()
    }

    /// The claims of a JWT of type `typ` these keys signed for `audience`, or why not:
    /// for telling a Kubernetes cluster what is wrong with a token it was given.
    pub fn verify_jwt_for(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<Value, JwtRejection> {
        self.verify(token, typ, issuer, audience, now)
    }

    /// The expiry is checked against `now` here, not by the JWT library (which reads the
    /// system clock): the services' clock decides, as everywhere else.
    fn verify(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<Value, JwtRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRejection::NotOurs)?;
        let kid = header.kid.as_deref().ok_or(JwtRejection::NotOurs)?;
        let jwk = std::iter::once(&self.primary)
            .chain(&self.others)
            .flat_map(|s| s.public_jwks())
            .find(|k| k["kid"].as_str() == Some(kid))
            .ok_or(JwtRejection::NotOurs)?;
        if header.typ.as_deref() != Some(typ) {
            return Err(JwtRejection::Invalid);
        }
        let part = |name: &str| jwk[name].as_str().unwrap_or_default();
        let (algorithm, key) = match part("kty") {
            "RSA" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(part("n"), part("e")),
            ),
            "EC" => (
                Algorithm::ES256,
                DecodingKey::from_ec_components(part("x"), part("y")),
            ),
            _ => return Err(JwtRejection::Invalid),
        };
        let key = key.map_err(|_| JwtRejection::Invalid)?;
        if header.alg != algorithm {
            return Err(JwtRejection::Invalid);
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAudience => JwtRejection::OtherAudience,
                _ => JwtRejection::Invalid,
            })?;
        match claims["exp"].as_i64() {
            Some(exp) if exp >= now => Ok(claims),
            Some(_) => Err(JwtRejection::Expired),
            None => Err(JwtRejection::Invalid),
        }
    }

    /// The JWK set: every slot kept, primary first.
    pub fn jwk_set(&self) -> Value {
        jwk_set(std::iter::once(&self.primary).chain(&self.others))
    }
}

/// The slots after a rotation at `now`: the staged slot becomes primary (the highest
/// number + 1), `new_staged` is staged, the old primary is marked retired at `now`, and
/// retired slots older than `retention` go. Wherever slots are kept, this is the rule.
pub fn rotate_slots(
    mut slots: Vec<(u64, SigningSlot)>,
    new_staged: SigningSlot,
    now: OffsetDateTime,
    retention: Duration,
    place: &str,
) -> Result<Vec<(u64, SigningSlot)>, OidcKeyError> {
    slots.sort_by_key(|(n, _)| *n);
    let primary = match (slots.first(), slots.last()) {
        (Some((0, _)), Some((p, _))) if *p != 0 => *p,
        _ => return Err(OidcKeyError::NoKeys(place.to_string())),
    };
    let now_s = now.unix_timestamp();
    let mut out = Vec::with_capacity(slots.len() + 1);
    for (n, mut slot) in slots {
        match n {
            0 => out.push((primary + 1, slot)),
            n if n == primary => {
                slot.retired_at = Some(now_s);
                out.push((n, slot));
            }
            n => {
                let expired = slot
                    .retired_at
                    .is_some_and(|at| now_s - at >= retention.whole_seconds());
                if !expired {
                    out.push((n, slot));
                }
            }
        }
    }
    out.push((0, new_staged));
    out.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    Ok(out)
}

/// What `limen keys oidc list` shows of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub number: u64,
    pub role: &'static str,
    pub retired_at: Option<i64>,
    pub kids: [String; 2],
}

/// What `limen keys oidc list` shows of numbered slots, primary first.
pub fn slot_infos(slots: &[(u64, SigningSlot)]) -> Vec<SlotInfo> {
    let mut sorted: Vec<&(u64, SigningSlot)> = slots.iter().collect();
    sorted.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let primary = sorted.first().map(|(n, _)| *n).filter(|&n| n != 0);
    sorted
        .into_iter()
        .map(|(n, slot)| SlotInfo {
            number: *n,
            role: match *n {
                0 => "staged",
                n if Some(n) == primary => "primary",
                _ => "retired",
            },
            retired_at: slot.retired_at,
            kids: [
                slot.kid(SigningAlg::RS256).to_string(),
                slot.kid(SigningAlg::ES256).to_string(),
            ],
        })
        .collect()
}

/// Slots as files `<dir>/<number>` (0600, in a directory only the owner can enter).
#[derive(Debug, Clone)]
pub struct OidcKeyRepository {
    dir: PathBuf,
}

impl OidcKeyRepository {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        OidcKeyRepository { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> OidcKeyError + '_ {
        move |source| OidcKeyError::Io {
            path: self.dir.display().to_string(),
            source,
        }
    }

    /// The slot numbers present, ascending; none when the directory does not exist.
    fn numbers(&self) -> Result<Vec<u64>, OidcKeyError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io()(e)),
        };
        let mut numbers: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn read(&self, number: u64) -> Result<SigningSlot, OidcKeyError> {
        let text = fs::read_to_string(self.dir.join(number.to_string())).map_err(self.io())?;
        SigningSlot::from_stored(&text)
    }

    /// Writes a slot file atomically (a temporary file renamed into place), owner-only.
    fn write(&self, number: u64, slot: &SigningSlot) -> Result<(), OidcKeyError> {
        fs::create_dir_all(&self.dir).map_err(self.io())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(self.io())?;
        }
        let tmp = self.dir.join(format!(".{number}.tmp"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(self.io())?;
        f.write_all(slot.to_stored().as_bytes())
            .map_err(self.io())?;
        f.sync_all().map_err(self.io())?;
        fs::rename(&tmp, self.dir.join(number.to_string())).map_err(self.io())
    }

    /// Creates a staged (`0`) and a primary (`1`) slot if the repository holds none;
    /// false when it already had keys.
    pub fn setup(&self) -> Result<bool, OidcKeyError> {
        if !self.numbers()?.is_empty() {
            return Ok(false);
        }
        self.write(0, &SigningSlot::generate()?)?;
        self.write(1, &SigningSlot::generate()?)?;
        Ok(true)
    }

    /// Promotes the staged slot to primary, stages a new one, marks the old primary
    /// retired at `now`, and removes retired slots older than `retention` (the longest
    /// lifetime of a token Limen signs). Returns the new primary's number.
    pub fn rotate(&self, now: OffsetDateTime, retention: Duration) -> Result<u64, OidcKeyError> {
        let before = self.numbers()?;
        let slots = before
            .iter()
            .map(|&n| Ok((n, self.read(n)?)))
            .collect::<Result<Vec<_>, OidcKeyError>>()?;
        let place = self.dir.display().to_string();
        let after = rotate_slots(slots, SigningSlot::generate()?, now, retention, &place)?;
        // The new primary first, the new staged slot last: a crash in between leaves the
        // old staged key in two files, which is harmless.
        for (n, slot) in &after {
            self.write(*n, slot)?;
        }
        for n in before
            .iter()
            .filter(|n| !after.iter().any(|(m, _)| m == *n))
        {
            fs::remove_file(self.dir.join(n.to_string())).map_err(self.io())?;
        }
        Ok(after.first().map_or(0, |(n, _)| *n))
    }

    /// The slots in use: the highest number signs, the others are published.
    pub fn load(&self) -> Result<OidcKeys, OidcKeyError> {
        let slots = self
            .numbers()?
            .into_iter()
            .map(|n| Ok((n, self.read(n)?)))
            .collect::<Result<Vec<_>, OidcKeyError>>()?;
        OidcKeys::from_slots(slots)
            .ok_or_else(|| OidcKeyError::NoKeys(self.dir.display().to_string()))
    }

    /// Every slot with its role and key ids, primary first.
    pub fn list(&self) -> Result<Vec<SlotInfo>, OidcKeyError> {
        let slots = self
            .numbers()?
            .into_iter()
            .map(|n| Ok((n, self.read(n)?)))
            .collect::<Result<Vec<_>, OidcKeyError>>()?;
        Ok(slot_infos(&slots))
    }

    /// Names, sizes and modification times of the files: what reloading compares.
    pub fn fingerprint(&self) -> Option<Vec<(String, u64, std::time::SystemTime)>> {
        crate::reload::dir_fingerprint(&self.dir)
    }
}

type Fingerprint = Option<Vec<(String, u64, std::time::SystemTime)>>;

/// The keys a running server signs and publishes with: from a repository, re-read when
/// its files change (a rotation or keys copied in take effect without a restart), or
/// from the database, replaced by whoever follows the store's change feed.
pub struct LiveOidcKeys {
    source: Source,
}

enum Source {
    Files {
        repo: OidcKeyRepository,
        keys: Reloading<Option<Arc<OidcKeys>>, Fingerprint>,
    },
    Database(RwLock<Option<Arc<OidcKeys>>>),
}

impl LiveOidcKeys {
    /// Reads the repository; it may hold no keys yet (then [`LiveOidcKeys::current`] is
    /// `None` until `limen keys oidc setup` has run).
    pub fn files(repo: OidcKeyRepository) -> Result<Self, OidcKeyError> {
        let (keys, fingerprint) = Self::read(&repo)?;
        Ok(LiveOidcKeys {
            source: Source::Files {
                keys: Reloading::new("oidc", keys, fingerprint),
                repo,
            },
        })
    }

    /// Keys kept in the database, as last read from it.
    pub fn database(keys: Option<OidcKeys>) -> Self {
        LiveOidcKeys {
            source: Source::Database(RwLock::new(keys.map(Arc::new))),
        }
    }

    /// Replaces keys kept in the database with what was read from it again.
    pub fn replace(&self, keys: Option<OidcKeys>) {
        if let Source::Database(current) = &self.source {
            let mut current = current.write().unwrap_or_else(|p| p.into_inner());
            *current = keys.map(Arc::new);
        }
    }

    fn read(
        repo: &OidcKeyRepository,
    ) -> Result<(Option<Arc<OidcKeys>>, Fingerprint), OidcKeyError> {
        let fingerprint = repo.fingerprint();
        match repo.load() {
            Ok(keys) => Ok((Some(Arc::new(keys)), fingerprint)),
            Err(OidcKeyError::NoKeys(_)) => Ok((None, fingerprint)),
            Err(e) => Err(e),
        }
    }

    /// The keys in use, if there are any.
    pub fn current(&self) -> Option<Arc<OidcKeys>> {
        match &self.source {
            Source::Files { repo, keys } => {
                keys.with(|| repo.fingerprint(), || Self::read(repo), |k| k.clone())
            }
            Source::Database(current) => current
                .read()
                .map(|k| k.clone())
                .unwrap_or_else(|p| p.into_inner().clone()),
        }
    }
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
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(rs["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
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
            let token = slot.sign(alg, "JWT", &claims).unwrap();
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
            let wrong: Jwk =
                serde_json::from_value(if alg == SigningAlg::RS256 { ors } else { oes }.clone())
                    .unwrap();
            let wrong = DecodingKey::from_jwk(&wrong).unwrap();
            assert!(jsonwebtoken::decode::<Claims>(&token, &wrong, &v).is_err());
        }
    }

    #[test]
    fn the_repository_stages_promotes_and_keeps_retired_keys_for_their_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let repo = OidcKeyRepository::new(dir.path().join("oidc-keys"));
        assert!(matches!(repo.load(), Err(OidcKeyError::NoKeys(_))));
        assert!(repo.setup().unwrap());
        assert!(!repo.setup().unwrap(), "setup keeps existing keys");
        let before = repo.load().unwrap();
        let staged_kid = before.others[0].kid(SigningAlg::RS256).to_string();
        let first_kid = before.primary.kid(SigningAlg::RS256).to_string();
        // The staged key is published before it signs.
        assert!(before.jwk_set().to_string().contains(&staged_kid));

        let day = Duration::days(1);
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(repo.rotate(t0, day).unwrap(), 2);
        let after = repo.load().unwrap();
        assert_eq!(after.primary.kid(SigningAlg::RS256), staged_kid);
        let set = after.jwk_set().to_string();
        assert!(
            set.contains(&first_kid),
            "the retired key is still published"
        );
        let roles: Vec<_> = repo
            .list()
            .unwrap()
            .iter()
            .map(|s| (s.number, s.role))
            .collect();
        assert_eq!(roles, vec![(2, "primary"), (1, "retired"), (0, "staged")]);
        assert_eq!(
            repo.list().unwrap()[1].retired_at,
            Some(t0.unix_timestamp())
        );

        // Within the retention the retired key stays; after it, the next rotation drops it.
        repo.rotate(t0 + Duration::hours(1), day).unwrap();
        assert!(repo
            .load()
            .unwrap()
            .jwk_set()
            .to_string()
            .contains(&first_kid));
        repo.rotate(t0 + day, day).unwrap();
        assert!(!repo
            .load()
            .unwrap()
            .jwk_set()
            .to_string()
            .contains(&first_kid));
        let numbers: Vec<u64> = repo.list().unwrap().iter().map(|s| s.number).collect();
        assert_eq!(numbers, vec![4, 3, 2, 0]);
        // Only the owner can read the keys.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(repo.dir().join("4"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "slot file mode {mode:o}");
        }
    }

    #[test]
    fn access_tokens_verify_only_as_issued() {
        let keys = OidcKeys {
            primary: SigningSlot::generate().unwrap(),
            others: vec![],
        };
        let stranger = SigningSlot::generate().unwrap();
        let iss = "https://id.example";
        let claims = json!({"iss": iss, "aud": iss, "sub": "c", "exp": 2_000_000_000u64});
        let now = 1_900_000_000;
        for alg in [SigningAlg::RS256, SigningAlg::ES256] {
            let token = keys.primary.sign(alg, "at+jwt", &claims).unwrap();
            assert_eq!(
                keys.verify_access_token(&token, iss, now).unwrap()["sub"],
                "c"
            );
            // Until its expiry by the clock it is given, whatever the system clock says.
            assert!(keys
                .verify_access_token(&token, iss, 2_000_000_000)
                .is_some());
            assert!(keys
                .verify_access_token(&token, iss, 2_000_000_001)
                .is_none());
            // Another issuer, another typ, another key, an expired token: no.
            assert!(keys
                .verify_access_token(&token, "https://other", now)
                .is_none());
            let id_token = keys.primary.sign(alg, "JWT", &claims).unwrap();
            assert!(keys.verify_access_token(&id_token, iss, now).is_none());
            let forged = stranger.sign(alg, "at+jwt", &claims).unwrap();
            assert!(keys.verify_access_token(&forged, iss, now).is_none());
            let mut old = claims.clone();
            old["exp"] = json!(1_000_000_000u64);
            let expired = keys.primary.sign(alg, "at+jwt", &old).unwrap();
            assert!(keys.verify_access_token(&expired, iss, now).is_none());
        }
        assert!(keys.verify_access_token("not.a.jwt", iss, now).is_none());
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
