//! OAuth1 delegation (`OS-OAUTH1`). A consumer (a registered client) gets a request token
//! for a project; a project admin authorizes it with some of their roles there and hands
//! the consumer a verifier; the consumer trades request token and verifier for an access
//! token, and requests signed with that access token get tokens (method `oauth1`) that act
//! as the authorizing user with the delegated roles.
//!
//! The secrets of consumers and tokens are needed in clear to check HMAC signatures, so
//! they are kept encrypted with the credential keys; tokens live in the document store.

pub mod signature;

use crate::assignment::expand_implied;
use crate::authz::Authorized;
use crate::clock::whole_seconds;
use crate::delegation::appcred::RoleRef;
use crate::delegation::credential::{CredentialCipher, SealedBlob};
use crate::delegation::DelegationService;
use crate::documents::{DocumentKind, Indexed, RecordKind};
use crate::error::{CoreError, CoreResult};
use crate::model::{Extra, Role, Target};
use crate::token::auth::{AuthRequest, IssuedToken, Minting};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

pub use signature::{ProtocolError, SignedRequest};

/// The auth method of tokens issued for requests signed with an access token.
pub const OAUTH1_METHOD: &str = "oauth1";

pub(crate) const CONSUMER: DocumentKind = DocumentKind::OAuth1Consumer;
const REQUEST_TOKEN: DocumentKind = DocumentKind::OAuth1RequestToken;
pub(crate) const ACCESS_TOKEN: DocumentKind = DocumentKind::OAuth1AccessToken;
/// Record kind (in the store's expiring OAuth records) of a nonce a signed request used.
const NONCE: RecordKind = RecordKind::OAuth1Nonce;
/// How long past its timestamp's window a nonce is kept, for nodes whose clocks lag.
const NONCE_CLOCK_MARGIN: i64 = 60;

/// Keystone's verifier alphabet: letters and digits without the look-alikes `jiIl1oO0`.
const VERIFIER_CHARS: &[u8] = b"abcdefghkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const VERIFIER_LEN: usize = 8;

/// A secret encrypted with the credential keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SealedSecret {
    ciphertext: String,
    key_hash: String,
}

impl SealedSecret {
    fn blob(&self) -> SealedBlob {
        SealedBlob {
            ciphertext: self.ciphertext.clone(),
            key_hash: self.key_hash.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub description: Option<String>,
    /// `None` when no credential keys were set up at creation: such a consumer cannot
    /// sign requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<SealedSecret>,
    #[serde(default)]
    pub extra: Extra,
}

/// A request token as stored: unauthorized until a user authorizes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestToken {
    id: String,
    secret: SealedSecret,
    consumer_id: String,
    project_id: String,
    /// Unix seconds; `None`: never expires.
    expires_at: Option<i64>,
    #[serde(default)]
    authorizing_user_id: Option<String>,
    /// SHA-256 (hex) of the verifier the authorization gave out.
    #[serde(default)]
    verifier_hash: Option<String>,
    #[serde(default)]
    role_ids: Vec<String>,
}

impl Indexed for RequestToken {
    const KIND: DocumentKind = REQUEST_TOKEN;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.consumer_id
    }
}

/// An access token: the delegation a user made to a consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: String,
    secret: SealedSecret,
    pub consumer_id: String,
    pub authorizing_user_id: String,
    pub project_id: String,
    /// The delegated roles, as authorized (implied roles come on top in tokens).
    pub role_ids: Vec<String>,
    /// Unix seconds; `None`: never expires.
    expires_at: Option<i64>,
}

impl Indexed for AccessToken {
    const KIND: DocumentKind = ACCESS_TOKEN;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.consumer_id
    }
}

impl AccessToken {
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
    }

    fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at().is_some_and(|e| now > e)
    }
}

/// A request or access token as handed to the consumer (form-encoded by the HTTP layer).
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub key: String,
    pub secret: String,
    pub expires_at: Option<OffsetDateTime>,
}

/// What an `oauth1` token shows of its delegation.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth1TokenInfo {
    pub access_token_id: String,
    pub consumer_id: String,
}

fn auth_failed() -> CoreError {
    CoreError::unauthorized("The request you have made requires authentication.")
}

fn expecting(what: &str) -> CoreError {
    CoreError::validation(format!(
        "Expecting to find {what} in request. The server could not comply with the request \
         since it is either malformed or otherwise incorrect. The client is assumed to be in \
         error."
    ))
}

fn request_token_not_found() -> CoreError {
    CoreError::NotFoundMessage("Request token not found".into())
}

fn access_token_not_found() -> CoreError {
    CoreError::NotFoundMessage("Access token not found".into())
}

fn protocol(e: ProtocolError) -> CoreError {
    CoreError::validation(e.to_string())
}

fn invalid_request(description: &str) -> CoreError {
    protocol(ProtocolError {
        error: "invalid_request",
        description: description.into(),
    })
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn is_verifier(v: &str) -> bool {
    v.len() == VERIFIER_LEN && v.bytes().all(|b| VERIFIER_CHARS.contains(&b))
}

fn expired(expires_at: Option<i64>, now: OffsetDateTime) -> bool {
    expires_at.is_some_and(|e| now.unix_timestamp() > e)
}

/// A non-empty protocol parameter of the Authorization header.
fn param<'a>(req: &'a SignedRequest, name: &str) -> Option<&'a str> {
    req.oauth_param(name).filter(|v| !v.is_empty())
}

impl DelegationService<'_> {
    /// Records the nonce of a request signed by the consumer with `token` (a request or
    /// access token key; empty for a request token request); the same nonce and
    /// timestamp again is a replay, refused with 401. Kept in the store, shared by every
    /// node, until the timestamp can no longer pass [`signature::check_protocol`]; the
    /// store's periodic prune of expired OAuth records removes it after that. Call only
    /// once the signature is verified, so forged requests cannot burn a client's nonces.
    async fn record_nonce(&self, req: &SignedRequest, token: &str) -> CoreResult<()> {
        let consumer = param(req, "oauth_consumer_key").unwrap_or("");
        let nonce = param(req, "oauth_nonce").unwrap_or("");
        let timestamp: i64 = param(req, "oauth_timestamp")
            .and_then(|t| t.parse().ok())
            .ok_or_else(auth_failed)?;
        let key = sha256_hex(&format!("{consumer}\n{token}\n{nonce}\n{timestamp}"));
        let keep_until = timestamp + signature::TIMESTAMP_LIFETIME + NONCE_CLOCK_MARGIN;
        match self
            .record_put(NONCE, &key, &serde_json::json!({}), keep_until, true)
            .await
        {
            Ok(()) => Ok(()),
            Err(CoreError::Conflict { .. }) => Err(auth_failed()),
            Err(e) => Err(e),
        }
    }

    fn oauth_cipher(&self) -> CoreResult<&dyn CredentialCipher> {
        self.credentials.as_deref().ok_or_else(|| {
            CoreError::Unavailable(
                "OAuth1 is unavailable: no credential key repository is set up \
                 (limen keys credential setup)."
                    .into(),
            )
        })
    }

    fn seal_secret(&self, secret: &str) -> CoreResult<SealedSecret> {
        let b = self
            .oauth_cipher()?
            .seal(secret.as_bytes())
            .map_err(CoreError::Internal)?;
        Ok(SealedSecret {
            ciphertext: b.ciphertext,
            key_hash: b.key_hash,
        })
    }

    fn open_secret(&self, s: &SealedSecret) -> CoreResult<String> {
        let plain = self
            .oauth_cipher()?
            .open(&s.blob())
            .map_err(CoreError::Internal)?;
        String::from_utf8(plain)
            .map_err(|_| CoreError::Internal("a sealed OAuth1 secret is not UTF-8".into()))
    }

    /// `now + seconds`, to the second; `None` for a duration of 0 (no expiry).
    fn expiry_in(&self, seconds: u32) -> Option<OffsetDateTime> {
        (seconds > 0)
            .then(|| whole_seconds(self.clock.now()) + Duration::seconds(i64::from(seconds)))
    }

    /// Eight characters of Keystone's verifier alphabet, uniformly drawn.
    fn new_verifier(&self) -> String {
        let n = VERIFIER_CHARS.len();
        // Bytes at or above the largest multiple of the alphabet size are redrawn.
        let limit = 256 - 256 % n;
        let mut out = String::with_capacity(VERIFIER_LEN);
        while out.len() < VERIFIER_LEN {
            let mut b = [0u8; 16];
            self.random.fill(&mut b);
            for x in b {
                if (x as usize) < limit && out.len() < VERIFIER_LEN {
                    out.push(VERIFIER_CHARS[x as usize % n] as char);
                }
            }
        }
        out
    }

    // ---- consumers ----

    /// Creates a consumer; the secret is returned once and kept encrypted.
    pub async fn create_consumer(
        &self,
        authz: &Authorized,
        description: Option<String>,
        extra: Extra,
    ) -> CoreResult<(Consumer, String)> {
        authz.require(&["identity:create_consumer"])?;
        let secret = self.new_id();
        let sealed = if self.credentials.is_some() {
            Some(self.seal_secret(&secret)?)
        } else {
            tracing::warn!(
                "OAuth1 consumer created without credential keys: it cannot sign requests"
            );
            None
        };
        let c = Consumer {
            id: self.new_id(),
            description,
            secret: sealed,
            extra,
        };
        self.doc_put(CONSUMER, &c.id, &c, true).await?;
        Ok((c, secret))
    }

    pub async fn get_consumer(&self, id: &str) -> CoreResult<Consumer> {
        self.doc_get(CONSUMER, id)
            .await?
            .ok_or_else(|| CoreError::NotFoundMessage("Consumer not found".into()))
    }

    pub async fn list_consumers(&self) -> CoreResult<Vec<Consumer>> {
        self.doc_list(CONSUMER).await
    }

    pub async fn update_consumer(
        &self,
        authz: &Authorized,
        id: &str,
        description: Option<Option<String>>,
        extra: Extra,
    ) -> CoreResult<Consumer> {
        authz.require(&["identity:update_consumer"])?;
        let mut c = self.get_consumer(id).await?;
        if let Some(d) = description {
            c.description = d;
        }
        crate::resource::merge_extra(&mut c.extra, extra);
        self.doc_put(CONSUMER, id, &c, false).await?;
        Ok(c)
    }

    /// Deletes a consumer with its request and access tokens (whose tokens then stop
    /// validating).
    pub async fn delete_consumer(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_consumer"])?;
        // A consumer goes with its tokens.
        self.in_unit(async |unit| {
            if !unit.doc_delete(CONSUMER, id).await? {
                return Err(CoreError::NotFoundMessage("Consumer not found".into()));
            }
            unit.doc_delete_of::<RequestToken>(id).await?;
            unit.doc_delete_of::<AccessToken>(id).await?;
            Ok(())
        })
        .await
    }

    /// The consumer's secret in clear; `None` (with a warning) for a consumer created
    /// without credential keys.
    fn consumer_secret(&self, c: &Consumer) -> CoreResult<Option<String>> {
        match &c.secret {
            Some(s) => self.open_secret(s).map(Some),
            None => {
                tracing::warn!(consumer = %c.id, "OAuth1 consumer has no usable secret (created without credential keys)");
                Ok(None)
            }
        }
    }

    // ---- the delegation flow ----

    /// `POST /v3/OS-OAUTH1/request_token`: a consumer asks for a request token for a
    /// project, signing with its own secret.
    pub async fn create_request_token(
        &self,
        req: &SignedRequest,
        requested_project_id: Option<&str>,
    ) -> CoreResult<TokenGrant> {
        let consumer_id =
            param(req, "oauth_consumer_key").ok_or_else(|| expecting("oauth_consumer_key"))?;
        let project_id = requested_project_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| expecting("Requested-Project-Id"))?;
        self.resource().get_project(project_id).await?;
        let consumer = self.get_consumer(consumer_id).await?;
        self.oauth_cipher()?;
        let now = self.clock.now();
        signature::check_protocol(req, now).map_err(protocol)?;
        if param(req, "oauth_callback").is_none() {
            return Err(invalid_request("Missing callback URI."));
        }
        let consumer_secret = self.consumer_secret(&consumer)?.ok_or_else(auth_failed)?;
        if !signature::verify(req, &consumer_secret, "") {
            return Err(auth_failed());
        }
        self.record_nonce(req, "").await?;
        self.purge_expired_request_tokens(now).await?;
        let secret = self.new_id();
        let expires_at = self.expiry_in(self.config.oauth1.request_token_duration);
        let rt = RequestToken {
            id: self.new_id(),
            secret: self.seal_secret(&secret)?,
            consumer_id: consumer.id,
            project_id: project_id.to_string(),
            expires_at: expires_at.map(OffsetDateTime::unix_timestamp),
            authorizing_user_id: None,
            verifier_hash: None,
            role_ids: vec![],
        };
        self.doc_save(&rt, true).await?;
        Ok(TokenGrant {
            key: rt.id,
            secret,
            expires_at,
        })
    }

    /// Request tokens past their expiry are of no use to anyone; they go when new ones
    /// are made.
    async fn purge_expired_request_tokens(&self, now: OffsetDateTime) -> CoreResult<()> {
        for rt in self.doc_list::<RequestToken>(REQUEST_TOKEN).await? {
            if expired(rt.expires_at, now) {
                self.doc_delete(REQUEST_TOKEN, &rt.id).await?;
            }
        }
        Ok(())
    }

    async fn request_token(&self, id: &str) -> CoreResult<RequestToken> {
        self.doc_get(REQUEST_TOKEN, id)
            .await?
            .ok_or_else(request_token_not_found)
    }

    /// `PUT /v3/OS-OAUTH1/authorize/{request_token_id}`: the caller delegates `roles` (each
    /// held on the request token's project) to the consumer; returns the verifier the
    /// consumer needs for its access token. Authorizing again replaces the roles and the
    /// verifier.
    pub async fn authorize_request_token(
        &self,
        authz: &Authorized,
        caller: &crate::token::auth::TokenInfo,
        request_token_id: &str,
        roles: &[RoleRef],
    ) -> CoreResult<String> {
        authz.require(&["identity:authorize_request_token"])?;
        // A delegation must not mint another, independent one.
        if caller.is_delegated() {
            return Err(CoreError::forbidden(
                "You are not authorized to perform the requested action.",
            ));
        }
        let mut rt = self.request_token(request_token_id).await?;
        if expired(rt.expires_at, self.clock.now()) {
            return Err(auth_failed());
        }
        let mut role_ids: Vec<String> = Vec::new();
        let mut all_roles: Option<Vec<Role>> = None;
        for r in roles {
            let id = match r {
                RoleRef::Id(id) => id.clone(),
                RoleRef::Name(name) => {
                    if all_roles.is_none() {
                        all_roles = Some(self.store.list_roles(&Default::default()).await?);
                    }
                    all_roles
                        .iter()
                        .flatten()
                        .find(|x| x.name == *name && x.domain_id.is_none())
                        .map(|x| x.id.clone())
                        .ok_or_else(|| {
                            CoreError::NotFoundMessage(format!("Role {name} is not defined"))
                        })?
                }
            };
            if !role_ids.contains(&id) {
                role_ids.push(id);
            }
        }
        let held = self
            .assignment()
            .effective_role_ids(&caller.user.id, &Target::Project(rt.project_id.clone()))
            .await?;
        if role_ids.iter().any(|r| !held.contains(r)) {
            return Err(auth_failed());
        }
        let verifier = self.new_verifier();
        rt.authorizing_user_id = Some(caller.user.id.clone());
        rt.role_ids = role_ids;
        rt.verifier_hash = Some(sha256_hex(&verifier));
        self.doc_save(&rt, false).await?;
        Ok(verifier)
    }

    /// `POST /v3/OS-OAUTH1/access_token`: the consumer trades an authorized request token
    /// and its verifier for an access token, signing with both secrets. The request token
    /// is used up.
    pub async fn create_access_token(&self, req: &SignedRequest) -> CoreResult<TokenGrant> {
        let consumer_id =
            param(req, "oauth_consumer_key").ok_or_else(|| expecting("oauth_consumer_key"))?;
        let rt_id = param(req, "oauth_token").ok_or_else(|| expecting("oauth_token"))?;
        let verifier = param(req, "oauth_verifier").ok_or_else(|| expecting("oauth_verifier"))?;
        let rt = self.request_token(rt_id).await?;
        let now = self.clock.now();
        if expired(rt.expires_at, now) {
            return Err(auth_failed());
        }
        self.oauth_cipher()?;
        signature::check_protocol(req, now).map_err(protocol)?;
        if !signature::is_key(rt_id) {
            return Err(invalid_request("Invalid resource owner key format."));
        }
        if !is_verifier(verifier) {
            return Err(invalid_request("Invalid verifier format."));
        }
        let consumer = match self.get_consumer(consumer_id).await {
            Ok(c) => c,
            Err(CoreError::NotFoundMessage(_)) => return Err(auth_failed()),
            Err(e) => return Err(e),
        };
        if rt.consumer_id != consumer.id {
            return Err(auth_failed());
        }
        let (Some(user_id), Some(expected)) = (&rt.authorizing_user_id, &rt.verifier_hash) else {
            return Err(auth_failed());
        };
        if !same(&sha256_hex(verifier), expected) {
            return Err(auth_failed());
        }
        let consumer_secret = self.consumer_secret(&consumer)?.ok_or_else(auth_failed)?;
        let token_secret = self.open_secret(&rt.secret)?;
        if !signature::verify(req, &consumer_secret, &token_secret) {
            return Err(auth_failed());
        }
        self.record_nonce(req, rt_id).await?;
        // The request token is traded for the access token: both or neither.
        self.in_unit(async |unit| {
            // Taking the request token is what makes it single-use, even when two trades race.
            if !unit.doc_delete(REQUEST_TOKEN, &rt.id).await? {
                return Err(request_token_not_found());
            }
            let secret = unit.new_id();
            let expires_at = unit
                .delegation()
                .expiry_in(unit.config.oauth1.access_token_duration);
            let at = AccessToken {
                id: unit.new_id(),
                secret: unit.delegation().seal_secret(&secret)?,
                consumer_id: consumer.id,
                authorizing_user_id: user_id.clone(),
                project_id: rt.project_id,
                role_ids: rt.role_ids,
                expires_at: expires_at.map(OffsetDateTime::unix_timestamp),
            };
            unit.doc_save(&at, true).await?;
            Ok(TokenGrant {
                key: at.id,
                secret,
                expires_at,
            })
        })
        .await
    }

    /// `POST /v3/auth/tokens` with the `oauth1` method: a token for a request signed with
    /// an access token, scoped to its project with the delegated roles the authorizing
    /// user still holds there. A scope in the body is ignored, as in Keystone.
    pub(crate) async fn authenticate_oauth1(&self, req: &AuthRequest) -> CoreResult<IssuedToken> {
        if req.methods.iter().any(|m| m != OAUTH1_METHOD) {
            return Err(CoreError::unauthorized(
                "The oauth1 method cannot be combined with other methods.",
            ));
        }
        if !self.config.auth_methods.iter().any(|m| m == OAUTH1_METHOD) {
            return Err(CoreError::unauthorized(
                "Attempted to authenticate with an unsupported method.",
            ));
        }
        let signed = req.oauth1.as_ref().ok_or_else(auth_failed)?;
        let at_id = param(signed, "oauth_token").ok_or_else(|| expecting("oauth_token"))?;
        let at = self
            .find_access_token(at_id)
            .await?
            .ok_or_else(access_token_not_found)?;
        let now = self.clock.now();
        if at.expired(now) {
            return Err(auth_failed());
        }
        // As for any protected resource, a malformed signed request is simply not
        // authenticated.
        if signature::check_protocol(signed, now).is_err() || !signature::is_key(at_id) {
            return Err(auth_failed());
        }
        if param(signed, "oauth_consumer_key") != Some(at.consumer_id.as_str()) {
            return Err(auth_failed());
        }
        let consumer = match self.get_consumer(&at.consumer_id).await {
            Ok(c) => c,
            Err(CoreError::NotFoundMessage(_)) => return Err(auth_failed()),
            Err(e) => return Err(e),
        };
        let consumer_secret = self.consumer_secret(&consumer)?.ok_or_else(auth_failed)?;
        let token_secret = self.open_secret(&at.secret)?;
        if !signature::verify(signed, &consumer_secret, &token_secret) {
            return Err(auth_failed());
        }
        // A captured login replayed within the timestamp window is refused.
        self.record_nonce(signed, at_id).await?;
        let user = self
            .identity()
            .find_user(&at.authorizing_user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(auth_failed)?;
        let domain = self
            .store
            .get_domain(&user.domain_id)
            .await?
            .filter(|d| d.enabled)
            .ok_or_else(auth_failed)?;
        let scope = self
            .token()
            .enabled_project_scope(&at.project_id)
            .await?
            .ok_or_else(auth_failed)?;
        let roles = self.access_token_effective_roles(&at).await?;
        if roles.is_empty() {
            return Err(CoreError::unauthorized(format!(
                "User {} has no access to project {}",
                user.id, at.project_id
            )));
        }
        self.token()
            .mint(Minting {
                user,
                known_domain: Some(domain),
                scope,
                roles,
                methods: vec![OAUTH1_METHOD.to_string()],
                parent: None,
                app_cred: None,
                trust: None,
                access_token: Some(&at),
            })
            .await
    }

    /// The roles an access token's tokens carry: the delegated roles with the roles they
    /// imply, as far as the authorizing user still holds them on the project.
    pub(crate) async fn access_token_effective_roles(
        &self,
        at: &AccessToken,
    ) -> CoreResult<Vec<Role>> {
        let held = self
            .assignment()
            .effective_role_ids(
                &at.authorizing_user_id,
                &Target::Project(at.project_id.clone()),
            )
            .await?;
        let rules = self.store.list_implied_roles().await?;
        let delegated = expand_implied(&rules, at.role_ids.iter().cloned().collect());
        let mut roles = Vec::new();
        for id in delegated.intersection(&held) {
            if let Some(r) = self.store.get_role(id).await? {
                roles.push(r);
            }
        }
        Ok(roles)
    }

    /// The access token behind an `oauth1` token, if it still exists for that user and
    /// project, its consumer too, and it has not expired (unless `allow_expired`).
    pub(crate) async fn live_access_token(
        &self,
        id: &str,
        user_id: &str,
        project_id: &str,
        allow_expired: bool,
    ) -> CoreResult<Option<AccessToken>> {
        let Some(at) = self.find_access_token(id).await? else {
            return Ok(None);
        };
        if at.authorizing_user_id != user_id
            || at.project_id != project_id
            || (at.expired(self.clock.now()) && !allow_expired)
        {
            return Ok(None);
        }
        if self
            .doc_get::<Consumer>(CONSUMER, &at.consumer_id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        Ok(Some(at))
    }

    async fn find_access_token(&self, id: &str) -> CoreResult<Option<AccessToken>> {
        self.doc_get(ACCESS_TOKEN, id).await
    }

    // ---- a user's access tokens ----

    /// The access tokens `user_id` authorized.
    pub async fn list_access_tokens(&self, user_id: &str) -> CoreResult<Vec<AccessToken>> {
        let mut all: Vec<AccessToken> = self.doc_list(ACCESS_TOKEN).await?;
        all.retain(|t| t.authorizing_user_id == user_id);
        Ok(all)
    }

    /// One access token of `user_id`; another user's is as absent as a missing one.
    pub async fn get_access_token(&self, user_id: &str, id: &str) -> CoreResult<AccessToken> {
        self.find_access_token(id)
            .await?
            .filter(|t| t.authorizing_user_id == user_id)
            .ok_or_else(access_token_not_found)
    }

    /// Revokes an access token: its `oauth1` tokens stop validating.
    pub async fn delete_access_token(
        &self,
        authz: &Authorized,
        user_id: &str,
        id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_access_token"])?;
        self.get_access_token(user_id, id).await?;
        if !self.doc_delete(ACCESS_TOKEN, id).await? {
            return Err(access_token_not_found());
        }
        Ok(())
    }

    /// The roles delegated by an access token, as authorized (roles deleted since are
    /// left out).
    pub async fn access_token_roles(&self, user_id: &str, id: &str) -> CoreResult<Vec<Role>> {
        let at = self.get_access_token(user_id, id).await?;
        let mut roles = Vec::new();
        for r in &at.role_ids {
            if let Some(role) = self.store.get_role(r).await? {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    /// One delegated role of an access token.
    pub async fn access_token_role(
        &self,
        user_id: &str,
        id: &str,
        role_id: &str,
    ) -> CoreResult<Role> {
        let at = self.get_access_token(user_id, id).await?;
        if !at.role_ids.iter().any(|r| r == role_id) {
            return Err(CoreError::not_found("role", role_id));
        }
        self.assignment().get_role(role_id).await
    }

    // ---- key rotation ----

    /// Re-encrypts the OAuth1 secrets not sealed by the primary credential key (after a
    /// rotation). Returns how many changed.
    pub(crate) async fn reencrypt_oauth1_secrets(&self) -> CoreResult<usize> {
        let cipher = self.oauth_cipher()?;
        let primary = cipher.primary_key_hash().map_err(CoreError::Internal)?;
        let reseal = |s: &mut SealedSecret| -> CoreResult<bool> {
            if s.key_hash == primary {
                return Ok(false);
            }
            let plain = cipher.open(&s.blob()).map_err(CoreError::Internal)?;
            let b = cipher.seal(&plain).map_err(CoreError::Internal)?;
            *s = SealedSecret {
                ciphertext: b.ciphertext,
                key_hash: b.key_hash,
            };
            Ok(true)
        };
        let mut changed = 0;
        for mut c in self.doc_list::<Consumer>(CONSUMER).await? {
            if let Some(s) = c.secret.as_mut() {
                if reseal(s)? {
                    self.doc_put(CONSUMER, &c.id.clone(), &c, false).await?;
                    changed += 1;
                }
            }
        }
        for mut rt in self.doc_list::<RequestToken>(REQUEST_TOKEN).await? {
            if reseal(&mut rt.secret)? {
                self.doc_save(&rt, false).await?;
                changed += 1;
            }
        }
        for mut at in self.doc_list::<AccessToken>(ACCESS_TOKEN).await? {
            if reseal(&mut at.secret)? {
                self.doc_save(&at, false).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}
