//! Keystone's JWS tokens (`[token] provider = jws`): ES256-signed JWTs whose claims carry
//! the token payload (`sub`, `iat`, `exp`, `openstack_*`). Each node signs with its own
//! private key and accepts a token signed by any public key in its public repository, so
//! private keys never leave a node. Keys are re-read when the repositories change.

use crate::reload::Reloading;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use limen_core::token::ReceiptPayload;
use limen_core::token::{FederatedScope, TokenCodec, TokenError, TokenPayload, TokenScope};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use thiserror::Error;
use time::OffsetDateTime;

/// The private key's file name in the private repository (Keystone's name).
pub const PRIVATE_KEY_FILE: &str = "private.pem";

#[derive(Debug, Error)]
pub enum JwsKeyError {
    #[error("JWS key repository {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not a PEM-encoded P-256 key (PKCS#8 private, SPKI public)")]
    BadKey(String),
    #[error("JWS public key repository {0} holds no keys; run `limen keys jws setup`")]
    NoPublicKeys(String),
    #[error("cannot encode a new key: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JwsKeyError + '_ {
    move |source| JwsKeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Keystone's JWS key layout: `<private>/private.pem` (this node's signing key) and any
/// number of public keys in `<public>/` (this node's and every other node's).
#[derive(Debug, Clone)]
pub struct JwsKeyRepository {
    private_dir: PathBuf,
    public_dir: PathBuf,
}

/// A file written readable by its owner only, in a directory only its owner can enter.
fn write_private(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, JwsKeyError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(contents).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(path)
}

/// A public key and its fingerprint (the first 16 hex digits of the SHA-256 of its DER
/// encoding, also its file name in a public repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub fingerprint: String,
    pub pem: String,
}

impl PublicKeyInfo {
    fn of(public: &p256::PublicKey) -> Result<Self, JwsKeyError> {
        let pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| JwsKeyError::Encode(e.to_string()))?;
        let der = public
            .to_public_key_der()
            .map_err(|e| JwsKeyError::Encode(e.to_string()))?;
        Ok(PublicKeyInfo {
            fingerprint: hex::encode(sha2::Sha256::digest(der.as_bytes()))[..16].to_string(),
            pem,
        })
    }
}

/// A freshly generated key pair, not yet installed: rotation across nodes installs (and
/// publishes) the public half well before the private half starts signing.
pub struct NewKeyPair {
    private_pem: String,
    pub public: PublicKeyInfo,
}

impl NewKeyPair {
    pub fn generate() -> Result<Self, JwsKeyError> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let private_pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| JwsKeyError::Encode(e.to_string()))?
            .to_string();
        Ok(NewKeyPair {
            private_pem,
            public: PublicKeyInfo::of(&secret.public_key())?,
        })
    }
}

impl JwsKeyRepository {
    pub fn new(private_dir: impl Into<PathBuf>, public_dir: impl Into<PathBuf>) -> Self {
        JwsKeyRepository {
            private_dir: private_dir.into(),
            public_dir: public_dir.into(),
        }
    }

    pub fn private_key_path(&self) -> PathBuf {
        self.private_dir.join(PRIVATE_KEY_FILE)
    }

    pub fn public_dir(&self) -> &Path {
        &self.public_dir
    }

    /// Creates this node's key pair if it has none; `true` when it did.
    pub fn setup(&self) -> Result<bool, JwsKeyError> {
        if self.private_key_path().exists() {
            return Ok(false);
        }
        self.new_key_pair()?;
        Ok(true)
    }

    /// Replaces this node's signing key with a new one and adds the new public key. The
    /// old public key stays, so tokens signed before keep validating until they expire;
    /// remove it from every node's public repository after that. Returns the public key
    /// file written.
    pub fn rotate(&self) -> Result<PathBuf, JwsKeyError> {
        self.new_key_pair()
    }

    fn new_key_pair(&self) -> Result<PathBuf, JwsKeyError> {
        let pair = NewKeyPair::generate()?;
        // The public key first: a node must never sign with a key it does not trust.
        let public_path = self.install_public(&pair)?;
        self.install_private(&pair)?;
        Ok(public_path)
    }

    /// Adds a new pair's public key to this node's public repository.
    pub fn install_public(&self, pair: &NewKeyPair) -> Result<PathBuf, JwsKeyError> {
        // Named by the key's own fingerprint: unique across nodes, so public directories
        // can be merged by copying files.
        write_private(
            &self.public_dir,
            &format!("{}.pem", pair.public.fingerprint),
            pair.public.pem.as_bytes(),
        )
    }

    /// Makes a new pair's private key this node's signing key.
    pub fn install_private(&self, pair: &NewKeyPair) -> Result<PathBuf, JwsKeyError> {
        write_private(
            &self.private_dir,
            PRIVATE_KEY_FILE,
            pair.private_pem.as_bytes(),
        )
    }

    /// The public half of this node's signing key, if it has one: what it publishes to
    /// the other nodes.
    pub fn signing_public_key(&self) -> Result<Option<PublicKeyInfo>, JwsKeyError> {
        let path = self.private_key_path();
        let pem = match fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let secret = <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem)
            .map_err(|_| JwsKeyError::BadKey(path.display().to_string()))?;
        PublicKeyInfo::of(&secret.public_key()).map(Some)
    }

    /// The signing key, if this node has one (a node may only validate).
    fn signing_key(&self) -> Result<Option<EncodingKey>, JwsKeyError> {
        let path = self.private_key_path();
        let pem = match fs::read(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        EncodingKey::from_ec_pem(&pem)
            .map(Some)
            .map_err(|_| JwsKeyError::BadKey(path.display().to_string()))
    }

    /// Every public key in the public repository (files starting with `.` are skipped).
    fn verifying_keys(&self) -> Result<Vec<DecodingKey>, JwsKeyError> {
        let mut keys = Vec::new();
        let entries = match fs::read_dir(&self.public_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JwsKeyError::NoPublicKeys(
                    self.public_dir.display().to_string(),
                ))
            }
            Err(e) => return Err(io_err(&self.public_dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        paths.sort();
        for path in paths {
            let pem = fs::read(&path).map_err(io_err(&path))?;
            keys.push(
                DecodingKey::from_ec_pem(&pem)
                    .map_err(|_| JwsKeyError::BadKey(path.display().to_string()))?,
            );
        }
        if keys.is_empty() {
            return Err(JwsKeyError::NoPublicKeys(
                self.public_dir.display().to_string(),
            ));
        }
        Ok(keys)
    }

    /// Names, sizes and times of both repositories' files, to notice changes.
    fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let mut out = Vec::new();
        for dir in [&self.private_dir, &self.public_dir] {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.filter_map(Result::ok) {
                let md = e.metadata().ok();
                out.push((
                    e.path(),
                    md.as_ref().map(|m| m.len()).unwrap_or(0),
                    md.and_then(|m| m.modified().ok()),
                ));
            }
        }
        out.sort();
        out
    }
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// This node's signing key (if it has one) and every trusted public key.
struct Keys {
    signing: Option<EncodingKey>,
    verifying: Vec<DecodingKey>,
}

fn load(repo: &JwsKeyRepository) -> Result<(Keys, Fingerprint), JwsKeyError> {
    let fingerprint = repo.fingerprint();
    let keys = Keys {
        signing: repo.signing_key()?,
        verifying: repo.verifying_keys()?,
    };
    Ok((keys, fingerprint))
}

/// One `openstack_group_ids` entry.
#[derive(Debug, Serialize, Deserialize)]
struct GroupId {
    id: String,
}

/// The claims Keystone's JWS tokens carry; absent values are left out, not null.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    openstack_methods: Vec<String>,
    openstack_audit_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_domain_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_trust_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_group_ids: Option<Vec<GroupId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_idp_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_protocol_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_access_token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_app_cred_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openstack_thumbprint: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Claims {
    fn of(p: &TokenPayload) -> Claims {
        let mut c = Claims {
            sub: p.user_id.clone(),
            iat: p.issued_at.unix_timestamp(),
            // Keystone keeps whole seconds.
            exp: p.expires_at.unix_timestamp(),
            openstack_methods: p.methods.clone(),
            openstack_audit_ids: p.audit_ids.clone(),
            ..Claims::default()
        };
        match &p.scope {
            TokenScope::Unscoped => {}
            TokenScope::Project { project_id } => c.openstack_project_id = Some(project_id.clone()),
            TokenScope::Domain { domain_id } => c.openstack_domain_id = Some(domain_id.clone()),
            TokenScope::System => c.openstack_system = Some("all".into()),
            TokenScope::Trust {
                project_id,
                trust_id,
            } => {
                c.openstack_project_id = Some(project_id.clone());
                c.openstack_trust_id = Some(trust_id.clone());
            }
            TokenScope::ApplicationCredential {
                project_id,
                app_cred_id,
            } => {
                c.openstack_project_id = Some(project_id.clone());
                c.openstack_app_cred_id = Some(app_cred_id.clone());
            }
            TokenScope::Federated {
                group_ids,
                idp_id,
                protocol_id,
                scope,
            } => {
                c.openstack_group_ids = Some(
                    group_ids
                        .iter()
                        .map(|id| GroupId { id: id.clone() })
                        .collect(),
                );
                c.openstack_idp_id = Some(idp_id.clone());
                c.openstack_protocol_id = Some(protocol_id.clone());
                match scope {
                    Some(FederatedScope::Project(id)) => c.openstack_project_id = Some(id.clone()),
                    Some(FederatedScope::Domain(id)) => c.openstack_domain_id = Some(id.clone()),
                    None => {}
                }
            }
            TokenScope::OAuth1 {
                project_id,
                access_token_id,
            } => {
                c.openstack_project_id = Some(project_id.clone());
                c.openstack_access_token_id = Some(access_token_id.clone());
            }
            TokenScope::OAuth2Mtls {
                project_id,
                domain_id,
                thumbprint,
            } => {
                c.openstack_project_id = non_empty(project_id);
                c.openstack_domain_id = non_empty(domain_id);
                c.openstack_thumbprint = Some(thumbprint.clone());
            }
        }
        c
    }

    fn scope(&mut self) -> Result<TokenScope, TokenError> {
        let project = self.openstack_project_id.take();
        let domain = self.openstack_domain_id.take();
        let need_project = |what: &str| {
            project
                .clone()
                .ok_or_else(|| TokenError::Invalid(format!("{what} without a project")))
        };
        Ok(if let Some(thumbprint) = self.openstack_thumbprint.take() {
            TokenScope::OAuth2Mtls {
                project_id: project.clone().unwrap_or_default(),
                domain_id: domain.clone().unwrap_or_default(),
                thumbprint,
            }
        } else if let Some(idp_id) = self.openstack_idp_id.take() {
            TokenScope::Federated {
                group_ids: self
                    .openstack_group_ids
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| g.id)
                    .collect(),
                idp_id,
                protocol_id: self.openstack_protocol_id.take().unwrap_or_default(),
                scope: match (&project, &domain) {
                    (Some(p), _) => Some(FederatedScope::Project(p.clone())),
                    (None, Some(d)) => Some(FederatedScope::Domain(d.clone())),
                    (None, None) => None,
                },
            }
        } else if let Some(trust_id) = self.openstack_trust_id.take() {
            TokenScope::Trust {
                project_id: need_project("trust")?,
                trust_id,
            }
        } else if let Some(app_cred_id) = self.openstack_app_cred_id.take() {
            TokenScope::ApplicationCredential {
                project_id: need_project("application credential")?,
                app_cred_id,
            }
        } else if let Some(access_token_id) = self.openstack_access_token_id.take() {
            TokenScope::OAuth1 {
                project_id: need_project("OAuth1 access token")?,
                access_token_id,
            }
        } else if self.openstack_system.take().is_some() {
            TokenScope::System
        } else if let Some(project_id) = project {
            TokenScope::Project { project_id }
        } else if let Some(domain_id) = domain {
            TokenScope::Domain { domain_id }
        } else {
            TokenScope::Unscoped
        })
    }
}

fn time_of(secs: i64) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| TokenError::Invalid("bad time".into()))
}

/// Whether a token has a JWT's shape (three dot-separated parts); Fernet tokens have no
/// dots.
pub fn looks_like_jws(token: &str) -> bool {
    token.split('.').count() == 3
}

pub struct JwsCodec {
    repo: JwsKeyRepository,
    keys: Reloading<Keys, Fingerprint>,
    /// Public keys other nodes published through the store (`[keys] source =
    /// "database"`), trusted besides the public repository's files.
    published: RwLock<Arc<Vec<DecodingKey>>>,
    /// Counts replacements of `published`.
    published_generation: AtomicU64,
}

impl JwsCodec {
    pub fn new(repo: JwsKeyRepository) -> Result<Self, JwsKeyError> {
        let (keys, fingerprint) = load(&repo)?;
        Ok(JwsCodec {
            repo,
            keys: Reloading::new("jws", keys, fingerprint),
            published: RwLock::new(Arc::new(Vec::new())),
            published_generation: AtomicU64::new(0),
        })
    }

    /// Trusts exactly these published public keys (PEM) besides the files; returns how
    /// many were usable. An unusable one is skipped, not fatal: one node's bad key must
    /// not stop the others from validating.
    pub fn set_published(&self, pems: &[String]) -> usize {
        let keys: Vec<DecodingKey> = pems
            .iter()
            .filter_map(|pem| match DecodingKey::from_ec_pem(pem.as_bytes()) {
                Ok(k) => Some(k),
                Err(_) => {
                    tracing::warn!(
                        "a published JWS public key is not a P-256 PEM key; ignoring it"
                    );
                    None
                }
            })
            .collect();
        let n = keys.len();
        let keys = Arc::new(keys);
        match self.published.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        self.published_generation.fetch_add(1, Ordering::SeqCst);
        n
    }

    /// Changes whenever the trusted keys (files or published) or the signing key do.
    pub fn key_generation(&self) -> u64 {
        self.keys
            .generation(|| self.repo.fingerprint(), || load(&self.repo))
            + self.published_generation.load(Ordering::SeqCst)
    }

    fn published(&self) -> Arc<Vec<DecodingKey>> {
        match self.published.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn repository(&self) -> &JwsKeyRepository {
        &self.repo
    }

    /// Whether this node can sign (has a private key).
    pub fn can_sign(&self) -> bool {
        self.with_keys(|k| k.signing.is_some())
    }

    fn with_keys<T>(&self, f: impl FnOnce(&Keys) -> T) -> T {
        self.keys
            .with(|| self.repo.fingerprint(), || load(&self.repo), f)
    }
}

impl TokenCodec for JwsCodec {
    fn encode(&self, p: &TokenPayload) -> Result<String, TokenError> {
        let claims = Claims::of(p);
        self.with_keys(|k| {
            let key = k.signing.as_ref().ok_or_else(|| {
                TokenError::NoKeys(self.repo.private_key_path().display().to_string())
            })?;
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, key)
                .map_err(|e| TokenError::Unencodable(e.to_string()))
        })
    }

    fn decode(&self, token: &str) -> Result<TokenPayload, TokenError> {
        let token = token.trim();
        if token.len() > 8192 || !looks_like_jws(token) {
            return Err(TokenError::Invalid("not a JWS token".into()));
        }
        // Expiry is the domain layer's business (with allow_expired); only the signature
        // and the algorithm are checked here.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let verify = |key: &DecodingKey| {
            jsonwebtoken::decode::<Claims>(token, key, &validation)
                .ok()
                .map(|d| d.claims)
        };
        let mut claims = self
            .with_keys(|k| k.verifying.iter().find_map(verify))
            .or_else(|| self.published().iter().find_map(verify))
            .ok_or_else(|| TokenError::Invalid("no trusted key verifies it".into()))?;
        let scope = claims.scope()?;
        Ok(TokenPayload {
            user_id: claims.sub,
            methods: claims.openstack_methods,
            scope,
            expires_at: time_of(claims.exp)?,
            audit_ids: claims.openstack_audit_ids,
            issued_at: time_of(claims.iat)?,
        })
    }

    fn encode_receipt(&self, _: &ReceiptPayload) -> Result<String, TokenError> {
        Err(TokenError::Unencodable(
            "auth receipts are Fernet-only, as in Keystone".into(),
        ))
    }

    fn decode_receipt(&self, _: &str) -> Result<ReceiptPayload, TokenError> {
        Err(TokenError::Invalid(
            "auth receipts are Fernet-only, as in Keystone".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::RELOAD_CHECK;
    use std::time::Duration;
    use time::macros::datetime;

    fn payload(scope: TokenScope) -> TokenPayload {
        TokenPayload {
            user_id: "u1".into(),
            methods: vec!["password".into(), "totp".into()],
            scope,
            expires_at: datetime!(2030-01-01 01:00:00 UTC),
            audit_ids: vec!["aaaaaaaaaaaaaaaaaaaaaa".into()],
            issued_at: datetime!(2030-01-01 00:00:00 UTC),
        }
    }

    #[test]
    fn every_scope_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let repo = JwsKeyRepository::new(dir.path().join("private"), dir.path().join("public"));
        assert!(repo.setup().unwrap());
        assert!(!repo.setup().unwrap(), "setup is idempotent");
        let codec = JwsCodec::new(repo).unwrap();
        for scope in [
            TokenScope::Unscoped,
            TokenScope::Project {
                project_id: "p".into(),
            },
            TokenScope::Domain {
                domain_id: "d".into(),
            },
            TokenScope::System,
            TokenScope::Trust {
                project_id: "p".into(),
                trust_id: "t".into(),
            },
            TokenScope::ApplicationCredential {
                project_id: "p".into(),
                app_cred_id: "a".into(),
            },
            TokenScope::OAuth1 {
                project_id: "p".into(),
                access_token_id: "x".into(),
            },
            TokenScope::Federated {
                group_ids: vec!["g1".into(), "g2".into()],
                idp_id: "idp".into(),
                protocol_id: "saml2".into(),
                scope: Some(FederatedScope::Domain("d".into())),
            },
            TokenScope::OAuth2Mtls {
                project_id: "p".into(),
                domain_id: String::new(),
                thumbprint: "th".into(),
            },
        ] {
            let p = payload(scope);
            let token = codec.encode(&p).unwrap();
            assert!(looks_like_jws(&token));
            assert_eq!(codec.decode(&token).unwrap(), p);
        }
    }

    /// Two nodes' key repositories (set up) and codecs: ours, and theirs with its repository.
    fn two_nodes() -> (tempfile::TempDir, JwsCodec, JwsKeyRepository, JwsCodec) {
        let dir = tempfile::tempdir().unwrap();
        let ours = JwsKeyRepository::new(dir.path().join("a/private"), dir.path().join("a/public"));
        let theirs =
            JwsKeyRepository::new(dir.path().join("b/private"), dir.path().join("b/public"));
        ours.setup().unwrap();
        theirs.setup().unwrap();
        let ours = JwsCodec::new(ours).unwrap();
        let theirs_codec = JwsCodec::new(theirs.clone()).unwrap();
        (dir, ours, theirs, theirs_codec)
    }

    #[test]
    fn foreign_and_tampered_tokens_fail() {
        let (_dir, ours, _, theirs_codec) = two_nodes();
        let foreign = theirs_codec
            .encode(&payload(TokenScope::Project {
                project_id: "elsewhere".into(),
            }))
            .unwrap();
        assert!(ours.decode(&foreign).is_err());
        let mine = ours.encode(&payload(TokenScope::System)).unwrap();
        let mut parts: Vec<&str> = mine.split('.').collect();
        // Our signature over someone else's claims.
        let other_claims = foreign.split('.').nth(1).unwrap().to_string();
        assert_ne!(parts[1], other_claims);
        parts[1] = &other_claims;
        assert!(ours.decode(&parts.join(".")).is_err());
        assert!(ours.decode("gAAAAABnotajws").is_err());
    }

    #[test]
    fn published_keys_are_trusted_besides_the_files() {
        let (_dir, ours, theirs, theirs_codec) = two_nodes();
        let foreign = theirs_codec.encode(&payload(TokenScope::System)).unwrap();
        assert!(ours.decode(&foreign).is_err());
        let info = theirs.signing_public_key().unwrap().unwrap();
        assert_eq!(info.fingerprint.len(), 16);
        assert!(theirs
            .public_dir()
            .join(format!("{}.pem", info.fingerprint))
            .exists());
        assert_eq!(ours.set_published(&[info.pem.clone(), "junk".into()]), 1);
        assert!(ours.decode(&foreign).is_ok());
        ours.set_published(&[]);
        assert!(ours.decode(&foreign).is_err());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let dir = tempfile::tempdir().unwrap();
        let repo = JwsKeyRepository::new(dir.path().join("private"), dir.path().join("public"));
        repo.setup().unwrap();
        let old_public: Vec<PathBuf> = fs::read_dir(repo.public_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let codec = JwsCodec::new(repo.clone()).unwrap();
        let before = codec.encode(&payload(TokenScope::System)).unwrap();
        repo.rotate().unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        let after = codec.encode(&payload(TokenScope::System)).unwrap();
        assert!(codec.decode(&before).is_ok());
        assert!(codec.decode(&after).is_ok());
        assert_eq!(fs::read_dir(repo.public_dir()).unwrap().count(), 2);
        // Once the old public key is retired, only tokens of the new key validate.
        for p in old_public {
            fs::remove_file(p).unwrap();
        }
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert!(codec.decode(&before).is_err());
        assert!(codec.decode(&after).is_ok());
    }
}
