//! Authentication and tokens: `POST /v3/auth/tokens` and validation.

use crate::authz::Authorized;
use crate::clock::whole_seconds;
use crate::delegation::guess_limit::{Admission, SecretCheck, WAIT_AT_MOST, WAIT_STEP};
use crate::delegation::oauth1::{AccessToken, OAuth1TokenInfo, OAUTH1_METHOD};
use crate::error::{CoreError, CoreResult};
use crate::identity::user_option;
use crate::model::{Domain, Project, Role, Target, User};
use crate::token::revoke::TokenFacts;
use crate::token::validation_cache::Dependency;
use crate::token::TokenService;
use crate::token::{TokenPayload, TokenScope};
use base64::Engine;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, PartialEq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ScopeRequest {
    /// No scope asked for: the user's default project if usable, else unscoped.
    #[default]
    Default,
    /// Explicitly unscoped (`"scope": "unscoped"`).
    Unscoped,
    Project(ProjectRef),
    Domain(DomainRef),
    System,
    /// `OS-TRUST:trust`: act under a trust.
    Trust(String),
}

#[derive(Debug, Clone)]
pub struct PasswordCredentials {
    pub user: UserRef,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AppCredRef {
    Id(String),
    Name { name: String, user: UserRef },
}

#[derive(Debug, Clone)]
pub struct AppCredCredentials {
    pub credential: AppCredRef,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct TotpCredentials {
    pub user: UserRef,
    pub passcode: String,
}

#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The method names as requested, in order.
    pub methods: Vec<String>,
    pub password: Option<PasswordCredentials>,
    pub token: Option<String>,
    pub application_credential: Option<AppCredCredentials>,
    pub totp: Option<TotpCredentials>,
    /// An `Openstack-Auth-Receipt` from an earlier, partial MFA login.
    pub receipt: Option<String>,
    /// For the `oauth1` method: the request as signed with an access token (the HTTP
    /// layer fills it in from the `Authorization` header).
    pub oauth1: Option<crate::delegation::oauth1::SignedRequest>,
    pub scope: ScopeRequest,
}

/// How long an MFA auth receipt lasts (Keystone's `[receipt] expiration`).
pub const RECEIPT_SECONDS: i64 = 300;

/// A partial MFA login: the receipt to send back and what it records.
#[derive(Debug, Clone)]
pub struct AuthReceipt {
    pub id: String,
    pub payload: crate::token::ReceiptPayload,
    pub user: User,
    pub user_domain: Domain,
    /// The user's rules, as method sets, one of which must be met.
    pub required: Vec<Vec<String>>,
}

/// What a token issued through an application credential shows of it.
#[derive(Debug, Clone)]
pub struct AppCredTokenInfo {
    pub id: String,
    pub name: String,
    pub unrestricted: bool,
    pub access_rules: Vec<crate::model::AccessRule>,
    /// Whether the credential is limited by access rules. Read from the credential's own
    /// list of rule ids, so a rule that went missing limits it to nothing rather than
    /// lifting the limit.
    pub limited_by_rules: bool,
}

/// What a token resolves to: the scope with the entities it names.
#[derive(Debug, Clone)]
pub enum ResolvedScope {
    Unscoped,
    Project { project: Project, domain: Domain },
    Domain(Domain),
    System,
}

impl ResolvedScope {
    pub fn target(&self) -> Option<Target> {
        match self {
            ResolvedScope::Unscoped => None,
            ResolvedScope::Project { project, .. } => Some(Target::Project(project.id.clone())),
            ResolvedScope::Domain(d) => Some(Target::Domain(d.id.clone())),
            ResolvedScope::System => Some(Target::System),
        }
    }
}

/// A valid token with everything its body shows.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub payload: TokenPayload,
    pub user: User,
    pub user_domain: Domain,
    pub scope: ResolvedScope,
    pub roles: Vec<Role>,
    pub password_expires_at: Option<OffsetDateTime>,
    /// Set for tokens issued through an application credential.
    pub application_credential: Option<AppCredTokenInfo>,
    /// Set for trust-scoped tokens.
    pub trust: Option<TrustTokenInfo>,
    /// Set for tokens issued for a request signed with an OAuth1 access token.
    pub oauth1: Option<OAuth1TokenInfo>,
}

/// What a trust-scoped token shows of its trust.
#[derive(Debug, Clone)]
pub struct TrustTokenInfo {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub impersonation: bool,
    /// The trusts this one was redelegated from, nearest first: the token rests on each.
    pub ancestor_ids: Vec<String>,
    /// The trustors and trustees of those trusts.
    pub ancestor_user_ids: Vec<String>,
}

impl TrustTokenInfo {
    fn of(t: &crate::model::Trust, ancestors: &[crate::model::Trust]) -> Self {
        TrustTokenInfo {
            id: t.id.clone(),
            trustor_user_id: t.trustor_user_id.clone(),
            trustee_user_id: t.trustee_user_id.clone(),
            impersonation: t.impersonation,
            ancestor_ids: ancestors.iter().map(|a| a.id.clone()).collect(),
            ancestor_user_ids: ancestors
                .iter()
                .flat_map(|a| [a.trustor_user_id.clone(), a.trustee_user_id.clone()])
                .collect(),
        }
    }
}

impl TokenInfo {
    /// Everything stored this validation rests on (see [`crate::token::validation_cache`]).
    pub fn dependencies(&self) -> Vec<Dependency> {
        let mut d = vec![
            Dependency::User(self.user.id.clone()),
            Dependency::Domain(self.user.domain_id.clone()),
        ];
        match &self.scope {
            ResolvedScope::Project { project, domain } => {
                d.push(Dependency::Project(project.id.clone()));
                d.push(Dependency::Domain(domain.id.clone()));
            }
            ResolvedScope::Domain(domain) => d.push(Dependency::Domain(domain.id.clone())),
            ResolvedScope::Unscoped | ResolvedScope::System => {}
        }
        for a in &self.payload.audit_ids {
            d.push(Dependency::Audit(a.clone()));
        }
        if let Some(t) = &self.trust {
            d.push(Dependency::Trust(t.id.clone()));
            // The trustor's roles back the delegation, the trustee acts.
            d.push(Dependency::User(t.trustor_user_id.clone()));
            d.push(Dependency::User(t.trustee_user_id.clone()));
            // A redelegated trust lives only while its whole chain does.
            d.extend(t.ancestor_ids.iter().cloned().map(Dependency::Trust));
            d.extend(t.ancestor_user_ids.iter().cloned().map(Dependency::User));
        }
        if let Some(c) = &self.application_credential {
            d.push(Dependency::ApplicationCredential(c.id.clone()));
        }
        if let Some(o) = &self.oauth1 {
            d.push(Dependency::OAuth1AccessToken(o.access_token_id.clone()));
            d.push(Dependency::OAuth1Consumer(o.consumer_id.clone()));
        }
        d
    }

    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            ResolvedScope::Project { project, .. } => Some(&project.id),
            _ => None,
        }
    }

    pub fn domain_scope_id(&self) -> Option<&str> {
        match &self.scope {
            ResolvedScope::Domain(d) => Some(&d.id),
            _ => None,
        }
    }

    pub fn is_system(&self) -> bool {
        matches!(self.scope, ResolvedScope::System)
    }

    /// The access rules the token is limited to, if its application credential has any
    /// (see [`crate::delegation::access_rules`]).
    pub fn access_rules(&self) -> Option<&[crate::model::AccessRule]> {
        self.application_credential
            .as_ref()
            .filter(|c| c.limited_by_rules)
            .map(|c| c.access_rules.as_slice())
    }

    /// Whether the token may make `request` on Limen's own APIs: always without access
    /// rules, else only as one of them allows.
    pub fn allows_request(&self, request: crate::delegation::access_rules::ApiRequest<'_>) -> bool {
        self.access_rules()
            .is_none_or(|rules| crate::delegation::access_rules::allows(rules, request))
    }

    /// Whether the token acts on a delegation (a trust, an application credential, an
    /// EC2/S3 or OAuth1 credential) rather than on the user's own login. Keystone counts
    /// every method outside its primary logins as delegated, and so an empty method list.
    pub fn is_delegated(&self) -> bool {
        self.trust.is_some() || self.application_credential.is_some() || self.delegated_method()
    }

    /// Whether the token's methods (not its scope) make it a delegation: an empty list or
    /// a method outside Keystone's primary logins (an application credential, an EC2 or
    /// OAuth1 credential). A trust-scoped token from a password login is not.
    pub fn delegated_method(&self) -> bool {
        const PRIMARY: [&str; 9] = [
            "external", "kerberos", "mapped", "openid", "password", "saml2", "token", "totp",
            "x509",
        ];
        self.payload.methods.is_empty()
            || self
                .payload
                .methods
                .iter()
                .any(|m| !PRIMARY.contains(&m.as_str()))
    }

    pub fn role_names(&self) -> Vec<&str> {
        self.roles.iter().map(|r| r.name.as_str()).collect()
    }
}

/// Everything a new token is made of, once the caller is authenticated.
pub(crate) struct Minting<'a> {
    pub user: User,
    /// The user's domain when the caller already has it at hand.
    pub known_domain: Option<Domain>,
    pub scope: ResolvedScope,
    pub roles: Vec<Role>,
    pub methods: Vec<String>,
    /// The token this one is exchanged from: its expiry and audit chain carry over.
    pub parent: Option<&'a TokenPayload>,
    pub app_cred: Option<&'a crate::model::ApplicationCredential>,
    /// The trust, with the trusts it was redelegated from (nearest first).
    pub trust: Option<(&'a crate::model::Trust, &'a [crate::model::Trust])>,
    /// The OAuth1 access token a request was signed with.
    pub access_token: Option<&'a AccessToken>,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: String,
    pub info: TokenInfo,
}

/// Why validation failed; the HTTP layer answers 401 for the caller's own token and 404 for
/// a subject token, so the reason stays internal.
const TOKEN_NOT_FOUND: &str = "token";

fn auth_failed() -> CoreError {
    CoreError::unauthorized("The request you have made requires authentication.")
}

impl TokenService<'_> {
    // ---- issuing ----

    pub async fn authenticate(&self, req: AuthRequest) -> CoreResult<IssuedToken> {
        if req.methods.is_empty() {
            return Err(auth_failed());
        }
        if req.methods.iter().any(|m| m == OAUTH1_METHOD) {
            return self.delegation().authenticate_oauth1(&req).await;
        }
        let mut methods: Vec<String> = Vec::new();
        let mut user: Option<User> = None;
        let mut parent: Option<Arc<TokenInfo>> = None;
        let mut app_cred: Option<crate::model::ApplicationCredential> = None;
        for m in &req.methods {
            match m.as_str() {
                "password" => {
                    let creds = req.password.as_ref().ok_or_else(|| {
                        CoreError::validation(
                            "Invalid input for field 'identity': 'password' is a required property",
                        )
                    })?;
                    let u = self.resolve_user(&creds.user).await?;
                    self.check_password_login(&u, &creds.password, false)
                        .await?;
                    merge_user(&mut user, u)?;
                }
                "token" => {
                    let t = req.token.as_deref().ok_or_else(|| {
                        CoreError::validation(
                            "Invalid input for field 'identity': 'token' is a required property",
                        )
                    })?;
                    // Keystone answers 404 for a token that does not validate here.
                    let info = self.validate_token(t, false).await.map_err(|e| match e {
                        CoreError::Internal(m) => CoreError::Internal(m),
                        _ => CoreError::NotFoundMessage("Failed to validate token".into()),
                    })?;
                    if info.oauth1.is_some() {
                        return Err(CoreError::forbidden(
                            "You are not authorized to perform the requested action: Using \
                             OAuth-scoped token to create another token. Create a new \
                             OAuth-scoped token instead.",
                        ));
                    }
                    if info.trust.is_some() {
                        return Err(CoreError::forbidden(
                            "You are not authorized to perform the requested action: Using \
                             trust-scoped token to create another token. Create a new \
                             trust-scoped token instead.",
                        ));
                    }
                    if info.is_delegated() {
                        // Keystone's text, double period included.
                        return Err(CoreError::forbidden(
                            "You are not authorized to perform the requested action: Using a \
                             delegated token to create another token is not allowed..",
                        ));
                    }
                    if !matches!(info.scope, ResolvedScope::Unscoped)
                        && !self.config.token.allow_rescope_scoped_token
                    {
                        return Err(CoreError::forbidden(
                            "Re-scoping a scoped token is not allowed.",
                        ));
                    }
                    for pm in &info.payload.methods {
                        if !methods.contains(pm) {
                            methods.push(pm.clone());
                        }
                    }
                    merge_user(&mut user, info.user.clone())?;
                    parent = Some(info);
                }
                "totp" => {
                    let creds = req.totp.as_ref().ok_or_else(|| {
                        CoreError::validation(
                            "Invalid input for field 'identity': 'totp' is a required property",
                        )
                    })?;
                    let u = self.resolve_user(&creds.user).await?;
                    if !u.enabled || !self.check_totp(&u, &creds.passcode).await? {
                        return Err(auth_failed());
                    }
                    merge_user(&mut user, u)?;
                }
                "application_credential" => {
                    let creds = req.application_credential.as_ref().ok_or_else(|| {
                        CoreError::validation("Invalid input for field 'identity': 'application_credential' is a required property")
                    })?;
                    let (cred, u) = self.check_application_credential(creds).await?;
                    merge_user(&mut user, u)?;
                    app_cred = Some(cred);
                }
                _ => {
                    return Err(CoreError::unauthorized(
                        "Attempted to authenticate with an unsupported method.",
                    ))
                }
            }
            if !methods.contains(m) {
                methods.insert(0, m.clone());
            }
        }
        let user = user.ok_or_else(auth_failed)?;
        // A token just validated shows its user's domain (as fresh as the validation).
        let authenticated_domain = match &parent {
            Some(p) if p.user_domain.id == user.domain_id => p.user_domain.clone(),
            _ => self.resource().get_domain(&user.domain_id).await?,
        };
        if !authenticated_domain.enabled {
            return Err(auth_failed());
        }
        // MFA rules govern how users log in; an application credential is a delegation
        // the user already made.
        if app_cred.is_none() {
            self.enforce_mfa(
                &user,
                &authenticated_domain,
                &mut methods,
                req.receipt.as_deref(),
            )
            .await?;
        }

        let (user, scope, roles, trust) = match &req.scope {
            ScopeRequest::Trust(trust_id) => {
                if app_cred.is_some() {
                    return Err(CoreError::unauthorized(
                        "Application credentials cannot request a scope.",
                    ));
                }
                let (t, ancestors, token_user, scope, roles) =
                    self.trust_scope(&user, trust_id).await?;
                (token_user, scope, roles, Some((t, ancestors)))
            }
            _ => {
                let (scope, roles) = self
                    .plain_scope(&user, &req.scope, parent.is_some(), app_cred.as_ref())
                    .await?;
                (user, scope, roles, None)
            }
        };
        self.mint(Minting {
            user,
            known_domain: Some(authenticated_domain),
            scope,
            roles,
            methods,
            parent: parent.as_ref().map(|p| &p.payload),
            app_cred: app_cred.as_ref(),
            trust: trust
                .as_ref()
                .map(|(t, ancestors)| (t, ancestors.as_slice())),
            access_token: None,
        })
        .await
    }

    /// Stamps and encodes a token for an authenticated user, scope and roles.
    pub(crate) async fn mint(&self, m: Minting<'_>) -> CoreResult<IssuedToken> {
        let Minting {
            user,
            known_domain,
            scope,
            roles,
            methods,
            parent,
            app_cred,
            trust,
            access_token,
        } = m;
        let user_domain = match known_domain {
            Some(d) if d.id == user.domain_id => d,
            _ => self.resource().get_domain(&user.domain_id).await?,
        };
        let now = self.clock.now();
        // Token times are whole seconds. A revocation earlier in this same second (a
        // password change, a grant removed) would also match a token stamped with this
        // second. Stamping the next second ahead of time would let a revocation later in
        // this second miss the token; so the issue waits for the next second instead.
        let mut issued_at = whole_seconds(now);
        if self
            .revoked_this_second(&user, &scope, &roles, issued_at)
            .await?
        {
            issued_at += Duration::seconds(1);
            self.clock.wait_until(issued_at).await;
        }
        let mut audit_ids = vec![self.new_audit_id()];
        let expires_at = match parent {
            Some(p) => {
                if let Some(chain) = p.audit_ids.last() {
                    audit_ids.push(chain.clone());
                }
                p.expires_at
            }
            None => issued_at + Duration::seconds(self.config.token.expiration),
        };
        // A credential's, a trust's or an access token's own expiry caps its tokens.
        let limit = app_cred
            .and_then(|c| c.expires_at)
            .or(trust.and_then(|(t, _)| t.expires_at))
            .or(access_token.and_then(AccessToken::expires_at));
        let expires_at = match limit {
            Some(limit) if limit < expires_at => limit,
            _ => expires_at,
        };
        let payload = TokenPayload {
            user_id: user.id.clone(),
            methods,
            scope: match &scope {
                ResolvedScope::Unscoped => TokenScope::Unscoped,
                ResolvedScope::Project { project, .. } => match (app_cred, trust, access_token) {
                    (Some(c), _, _) => TokenScope::ApplicationCredential {
                        project_id: project.id.clone(),
                        app_cred_id: c.id.clone(),
                    },
                    (None, Some((t, _)), _) => TokenScope::Trust {
                        project_id: project.id.clone(),
                        trust_id: t.id.clone(),
                    },
                    (None, None, Some(a)) => TokenScope::OAuth1 {
                        project_id: project.id.clone(),
                        access_token_id: a.id.clone(),
                    },
                    (None, None, None) => TokenScope::Project {
                        project_id: project.id.clone(),
                    },
                },
                ResolvedScope::Domain(d) => TokenScope::Domain {
                    domain_id: d.id.clone(),
                },
                ResolvedScope::System => TokenScope::System,
            },
            expires_at,
            audit_ids,
            issued_at,
        };
        let id = self
            .tokens
            .encode(&payload)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let password_expires_at = self.identity().password_expires_at(&user.id).await?;
        let application_credential = match app_cred {
            Some(c) => Some(self.app_cred_token_info(c).await?),
            None => None,
        };
        Ok(IssuedToken {
            id,
            info: TokenInfo {
                payload,
                user,
                user_domain,
                scope,
                roles,
                password_expires_at,
                application_credential,
                trust: trust.map(|(t, ancestors)| TrustTokenInfo::of(t, ancestors)),
                oauth1: access_token.map(|a| OAuth1TokenInfo {
                    access_token_id: a.id.clone(),
                    consumer_id: a.consumer_id.clone(),
                }),
            },
        })
    }

    /// Checks the user's TOTP credentials for the passcode at the current time.
    async fn check_totp(&self, user: &User, passcode: &str) -> CoreResult<bool> {
        if self.credentials.is_none() {
            return Ok(false);
        }
        let now = self.clock.now();
        Ok(self
            .delegation()
            .list_credentials(Some(&user.id), Some("totp"))
            .await?
            .iter()
            .any(|c| crate::identity::totp::verify(&c.blob, passcode, now)))
    }

    /// The user's MFA rules reduced to enabled methods (Keystone ignores rules naming
    /// only methods it does not offer); empty when MFA does not apply.
    fn mfa_rules(&self, user: &User) -> Vec<Vec<String>> {
        if user.options.get("multi_factor_auth_enabled") == Some(&serde_json::Value::Bool(false)) {
            return vec![];
        }
        let Some(rules) = user
            .options
            .get("multi_factor_auth_rules")
            .and_then(|v| v.as_array())
        else {
            return vec![];
        };
        rules
            .iter()
            .filter_map(|r| r.as_array())
            .map(|r| {
                let mut set: Vec<String> = r
                    .iter()
                    .filter_map(|m| m.as_str())
                    .filter(|m| self.config.auth_methods.iter().any(|k| k == m))
                    .map(str::to_string)
                    .collect();
                set.sort();
                set.dedup();
                set
            })
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// Passes when the methods used (with those of a valid receipt) meet one of the
    /// user's MFA rules; otherwise answers with a new receipt.
    async fn enforce_mfa(
        &self,
        user: &User,
        user_domain: &Domain,
        methods: &mut Vec<String>,
        receipt: Option<&str>,
    ) -> CoreResult<()> {
        let now = self.clock.now();
        if let Some(r) = receipt {
            let bad = || CoreError::unauthorized(format!("Could not find auth receipt: {r}."));
            let p = self.tokens.decode_receipt(r).map_err(|_| bad())?;
            if p.user_id != user.id || p.expires_at <= now {
                return Err(bad());
            }
            for m in p.methods {
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
        }
        let rules = self.mfa_rules(user);
        if rules.is_empty() || rules.iter().any(|r| r.iter().all(|m| methods.contains(m))) {
            return Ok(());
        }
        let issued_at = whole_seconds(now);
        let payload = crate::token::ReceiptPayload {
            user_id: user.id.clone(),
            methods: methods.clone(),
            expires_at: issued_at + Duration::seconds(RECEIPT_SECONDS),
            issued_at,
        };
        let id = self
            .tokens
            .encode_receipt(&payload)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Err(CoreError::AdditionalAuthRequired(Box::new(AuthReceipt {
            id,
            payload,
            user: user.clone(),
            user_domain: user_domain.clone(),
            required: rules,
        })))
    }

    /// Scope and roles of a token that is not trust-scoped.
    async fn plain_scope(
        &self,
        user: &User,
        requested: &ScopeRequest,
        exchanged_token: bool,
        app_cred: Option<&crate::model::ApplicationCredential>,
    ) -> CoreResult<(ResolvedScope, Vec<Role>)> {
        // A token exchanged without a scope gives an unscoped token, as in Keystone; only
        // a password login falls back to the default project.
        let scope_req = match (requested, exchanged_token, app_cred) {
            // An application credential always scopes to its own project.
            (ScopeRequest::Default, _, Some(c)) => {
                ScopeRequest::Project(ProjectRef::Id(c.project_id.clone()))
            }
            (ScopeRequest::Project(ProjectRef::Id(p)), _, Some(c)) if *p == c.project_id => {
                requested.clone()
            }
            (_, _, Some(_)) => {
                return Err(CoreError::unauthorized(
                    "Application credentials cannot request a scope.",
                ))
            }
            (ScopeRequest::Default, true, None) => ScopeRequest::Unscoped,
            (s, _, None) => s.clone(),
        };
        let Some(c) = app_cred else {
            let own = self.own_scope(user, &scope_req).await?;
            return Ok((own.0.clone(), own.1.clone()));
        };
        let scope = self.resolve_scope(user, &scope_req).await?;
        let roles = self
            .delegation()
            .application_credential_roles(c)
            .await?
            .filter(|r| !r.is_empty())
            .ok_or_else(auth_failed)?;
        Ok((scope, roles))
    }

    /// The scope a user asks for on their own behalf and their roles on it: an error
    /// when the scope is unusable or gives no role. Cached for scopes named by id (what
    /// rescoping and validation ask for), until the user, the project or a domain on the
    /// way changes.
    async fn own_scope(
        &self,
        user: &User,
        req: &ScopeRequest,
    ) -> CoreResult<Arc<(ResolvedScope, Vec<Role>)>> {
        let key = match req {
            ScopeRequest::Project(ProjectRef::Id(id)) => format!("{}/project/{id}", user.id),
            ScopeRequest::Domain(DomainRef::Id(id)) => format!("{}/domain/{id}", user.id),
            ScopeRequest::System => format!("{}/system", user.id),
            _ => return Ok(Arc::new(self.resolve_own_scope(user, req).await?)),
        };
        let cache = &self.validations;
        cache
            .derive(&cache.scopes, &key, async {
                let resolved = self.resolve_own_scope(user, req).await?;
                let mut dependencies = vec![Dependency::User(user.id.clone())];
                match &resolved.0 {
                    ResolvedScope::Project { project, domain } => {
                        dependencies.push(Dependency::Project(project.id.clone()));
                        dependencies.push(Dependency::Domain(domain.id.clone()));
                    }
                    ResolvedScope::Domain(d) => dependencies.push(Dependency::Domain(d.id.clone())),
                    ResolvedScope::Unscoped | ResolvedScope::System => {}
                }
                Ok((Arc::new(resolved), dependencies))
            })
            .await
    }

    async fn resolve_own_scope(
        &self,
        user: &User,
        req: &ScopeRequest,
    ) -> CoreResult<(ResolvedScope, Vec<Role>)> {
        let scope = self.resolve_scope(user, req).await?;
        let Some(target) = scope.target() else {
            return Ok((scope, vec![]));
        };
        let roles = self.assignment().effective_roles(&user.id, &target).await?;
        if roles.is_empty() {
            return Err(CoreError::unauthorized(no_access_message(user, &scope)));
        }
        Ok((scope, roles))
    }

    /// A trust-scoped token for the trustee `user`: the trust's project and roles, acting
    /// as the trustor when the trust impersonates. Takes one use of the trust. Also
    /// returns the trusts it was redelegated from, nearest first.
    #[allow(clippy::type_complexity)]
    async fn trust_scope(
        &self,
        user: &User,
        trust_id: &str,
    ) -> CoreResult<(
        crate::model::Trust,
        Vec<crate::model::Trust>,
        User,
        ResolvedScope,
        Vec<Role>,
    )> {
        let (t, ancestors) = self.delegation().get_trust_with_ancestors(trust_id).await?;
        if t.trustee_user_id != user.id {
            return Err(CoreError::forbidden(format!(
                "User {} is not a trustee of trust {trust_id}.",
                user.id
            )));
        }
        let trustor = self
            .identity()
            .find_user(&t.trustor_user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(|| CoreError::forbidden("The trustor is disabled or gone."))?;
        let project_id = t.project_id.clone().ok_or_else(|| {
            CoreError::forbidden("A trust without a project cannot scope a token.")
        })?;
        let scope = self
            .enabled_project_scope(&project_id)
            .await?
            .ok_or_else(|| CoreError::forbidden("The trust's project is disabled or gone."))?;
        let roles = self
            .delegation()
            .trust_effective_roles(&t, &ancestors)
            .await?
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                CoreError::forbidden("The trustor no longer holds the delegated roles.")
            })?;
        self.delegation().consume_trust(&t, &ancestors).await?;
        let token_user = if t.impersonation {
            trustor
        } else {
            user.clone()
        };
        Ok((t, ancestors, token_user, scope, roles))
    }

    fn new_audit_id(&self) -> String {
        let mut b = [0u8; 16];
        self.random.fill(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    async fn app_cred_token_info(
        &self,
        c: &crate::model::ApplicationCredential,
    ) -> CoreResult<AppCredTokenInfo> {
        let (_, access_rules) = self.delegation().application_credential_details(c).await?;
        Ok(AppCredTokenInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            unrestricted: c.unrestricted,
            access_rules,
            limited_by_rules: !c.access_rule_ids.is_empty(),
        })
    }

    /// Leave to compare a secret presented for application credential `id`: waits while
    /// the credential's allowance is held by checks under way, and refuses (429, "not
    /// checked") once wrong secrets have used it up (see [`crate::delegation::guess_limit`]).
    async fn secret_check(&self, id: &str) -> CoreResult<Option<SecretCheck<'_>>> {
        let Some(limiter) = self.guesses.as_deref() else {
            return Ok(None);
        };
        let started = self.clock.now();
        loop {
            let now = self.clock.now();
            let retry_after_secs = match limiter.admit(id, now) {
                Admission::Check => return Ok(Some(SecretCheck::held(limiter, id))),
                Admission::Wait if now - started < WAIT_AT_MOST => {
                    self.clock.wait_until(now + WAIT_STEP).await;
                    continue;
                }
                Admission::Wait => 1,
                Admission::Refuse { retry_after_secs } => retry_after_secs,
            };
            return Err(CoreError::TooManyAttempts {
                message: format!(
                    "Too many wrong secrets for this application credential recently: the \
                     secret was not checked. Try again in {retry_after_secs} s."
                ),
                retry_after_secs,
            });
        }
    }

    /// Finds an application credential and checks its secret and expiry; returns it with
    /// its user. Every failure is the same 401, but for a credential whose wrong-secret
    /// allowance is used up: 429, the secret not checked.
    async fn check_application_credential(
        &self,
        creds: &AppCredCredentials,
    ) -> CoreResult<(crate::model::ApplicationCredential, User)> {
        let cred = match &creds.credential {
            AppCredRef::Id(id) => self.store.get_application_credential(id).await?,
            AppCredRef::Name { name, user } => {
                let u = self.resolve_user(user).await?;
                self.store
                    .list_application_credentials(&u.id, Some(name))
                    .await?
                    .into_iter()
                    .next()
            }
        };
        let Some(cred) = cred else {
            let _ = self.hasher.verify(&creds.secret, DUMMY_HASH).await;
            return Err(auth_failed());
        };
        let check = self.secret_check(&cred.id).await?;
        let right = self.hasher.verify(&creds.secret, &cred.secret_hash).await;
        if let Some(check) = check {
            if check.finish(self.clock.now(), !right) {
                tracing::warn!(credential = %cred.id, user = %cred.user_id,
                    "application credential: wrong secrets used up its allowance; \
                     its secret goes unchecked for a while");
            }
        }
        if !right {
            return Err(auth_failed());
        }
        if cred.expires_at.is_some_and(|e| e <= self.clock.now()) {
            return Err(auth_failed());
        }
        let user = self
            .identity()
            .find_user(&cred.user_id)
            .await?
            .ok_or_else(auth_failed)?;
        if !user.enabled {
            return Err(auth_failed());
        }
        Ok((cred, user))
    }

    async fn resolve_domain(&self, d: &DomainRef) -> CoreResult<Domain> {
        let found = match d {
            DomainRef::Id(id) => self.store.get_domain(id).await?,
            DomainRef::Name(n) => self.store.get_domain_by_name(n).await?,
        };
        found.ok_or_else(auth_failed)
    }

    async fn resolve_user(&self, u: &UserRef) -> CoreResult<User> {
        let found = match u {
            UserRef::Id(id) => self.identity().find_user(id).await?,
            UserRef::Name { name, domain } => {
                let d = self.resolve_domain(domain).await?;
                self.identity().find_user_by_name(&d.id, name).await?
            }
        };
        found.ok_or_else(auth_failed)
    }

    /// Checks a password login: lockout, the password itself, enabled state and expiry.
    /// `for_password_change` lets an expired password through (it is being replaced).
    pub(crate) async fn check_password_login(
        &self,
        user: &User,
        password: &str,
        for_password_change: bool,
    ) -> CoreResult<()> {
        let now = self.clock.now();
        let sc = &self.config.security;
        let lockout = sc
            .lockout_failure_attempts
            .filter(|_| !user_option(user, "ignore_lockout_failure_attempts"));
        if let Some(max) = lockout {
            if user.failed_auth_count >= max as i64 {
                let locked_until = user
                    .failed_auth_at
                    .map(|t| t + Duration::seconds(sc.lockout_duration));
                if locked_until.is_some_and(|t| now < t) {
                    return Err(CoreError::unauthorized(format!(
                        "The account is locked for user: {}.",
                        user.id
                    )));
                }
                self.store.record_auth_failure(&user.id, 0, None).await?;
            }
        }
        let passwords = self.store.list_passwords(&user.id).await?;
        let ok = match passwords.first() {
            Some(p) => self.hasher.verify(password, &p.hash).await,
            None => {
                // Spend the same time as a real check, so absent passwords don't show.
                let _ = self.hasher.verify(password, DUMMY_HASH).await;
                false
            }
        };
        if !ok {
            if lockout.is_some() {
                let fresh = self.identity().find_user(&user.id).await?;
                let count = fresh.map(|u| u.failed_auth_count).unwrap_or(0) + 1;
                self.store
                    .record_auth_failure(&user.id, count, Some(now))
                    .await?;
            }
            return Err(auth_failed());
        }
        if !user.enabled {
            return Err(CoreError::unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        if !for_password_change && !user_option(user, "ignore_password_expiry") {
            if let Some(exp) = passwords.first().and_then(|p| p.expires_at) {
                if exp <= now {
                    return Err(CoreError::unauthorized(format!(
                        "The password is expired and needs to be changed for user: {}.",
                        user.id
                    )));
                }
            }
        }
        if user.failed_auth_count > 0 || lockout.is_some() {
            self.store.record_auth_success(&user.id, now).await?;
        }
        Ok(())
    }

    async fn resolve_scope(&self, user: &User, req: &ScopeRequest) -> CoreResult<ResolvedScope> {
        match req {
            ScopeRequest::Unscoped => Ok(ResolvedScope::Unscoped),
            ScopeRequest::Default => {
                // Keystone scopes to the default project when it is usable, else unscoped.
                let Some(pid) = &user.default_project_id else {
                    return Ok(ResolvedScope::Unscoped);
                };
                let Some(project) = self.store.get_project(pid).await? else {
                    return Ok(ResolvedScope::Unscoped);
                };
                let Some(domain) = self.store.get_domain(&project.domain_id).await? else {
                    return Ok(ResolvedScope::Unscoped);
                };
                if !project.enabled || !domain.enabled {
                    return Ok(ResolvedScope::Unscoped);
                }
                let target = Target::Project(project.id.clone());
                if self
                    .assignment()
                    .effective_role_ids(&user.id, &target)
                    .await?
                    .is_empty()
                {
                    return Ok(ResolvedScope::Unscoped);
                }
                Ok(ResolvedScope::Project { project, domain })
            }
            ScopeRequest::Project(p) => {
                let project = match p {
                    ProjectRef::Id(id) => self.store.get_project(id).await?,
                    ProjectRef::Name { name, domain } => {
                        let d = self.resolve_domain(domain).await?;
                        self.store.get_project_by_name(&d.id, name).await?
                    }
                };
                let project = project.ok_or_else(auth_failed)?;
                let domain = self.resource().get_domain(&project.domain_id).await?;
                if !project.enabled || !domain.enabled {
                    return Err(auth_failed());
                }
                Ok(ResolvedScope::Project { project, domain })
            }
            ScopeRequest::Domain(d) => {
                let domain = self.resolve_domain(d).await?;
                if !domain.enabled {
                    return Err(auth_failed());
                }
                Ok(ResolvedScope::Domain(domain))
            }
            ScopeRequest::System => Ok(ResolvedScope::System),
            // Trust scopes are resolved by `trust_scope`.
            ScopeRequest::Trust(_) => Err(auth_failed()),
        }
    }

    // ---- validating ----

    /// Validates a token (see [`Self::validate_token_with_access_rules`]) for a use that
    /// does not enforce access rules: a token limited by them is refused as not found, as
    /// Keystone refuses it to a validator that does not announce access-rules support.
    pub async fn validate_token(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> CoreResult<Arc<TokenInfo>> {
        let info = self
            .validate_token_with_access_rules(token, allow_expired)
            .await?;
        if info.access_rules().is_some() {
            return Err(CoreError::not_found(TOKEN_NOT_FOUND, token_hint(token)));
        }
        Ok(info)
    }

    /// Validates a token: authentic, not expired (unless `allow_expired` and within the
    /// window), not revoked, and everything it names still exists, is enabled and still
    /// grants roles. Any failure is `NotFound("token")`. A token limited by access rules
    /// is returned too: the caller enforces them ([`TokenInfo::allows_request`]) or shows
    /// them only to a validator that does.
    pub async fn validate_token_with_access_rules(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> CoreResult<Arc<TokenInfo>> {
        let now = self.clock.now();
        let keys = self.tokens.key_generation();
        if let Some(info) = self.validations.get(token, now, keys) {
            return Ok(info);
        }
        // Taken before anything is read, so a change seen meanwhile rejects this entry.
        let ticket = self.validations.ticket(keys);
        let not_found = || CoreError::not_found(TOKEN_NOT_FOUND, token_hint(token));
        let payload = self.tokens.decode(token).map_err(|_| not_found())?;
        if now >= payload.expires_at {
            let window = Duration::seconds(self.config.token.allow_expired_window);
            if !allow_expired || now >= payload.expires_at + window {
                return Err(not_found());
            }
        }
        let user = self
            .identity()
            .find_user(&payload.user_id)
            .await?
            .ok_or_else(not_found)?;
        if !user.enabled {
            return Err(not_found());
        }
        let user_domain = self
            .store
            .get_domain(&user.domain_id)
            .await?
            .filter(|d| d.enabled)
            .ok_or_else(not_found)?;
        // A token on the user's own roles resolves as issuing does (and shares its cache).
        let own_request = match &payload.scope {
            TokenScope::Project { project_id } => {
                Some(ScopeRequest::Project(ProjectRef::Id(project_id.clone())))
            }
            TokenScope::Domain { domain_id } => {
                Some(ScopeRequest::Domain(DomainRef::Id(domain_id.clone())))
            }
            TokenScope::System => Some(ScopeRequest::System),
            _ => None,
        };
        let own = match &own_request {
            Some(req) => Some(self.own_scope(&user, req).await.map_err(|e| match e {
                CoreError::Internal(m) => CoreError::Internal(m),
                _ => not_found(),
            })?),
            None => None,
        };
        let scope = match (&own, &payload.scope) {
            (Some(own), _) => own.0.clone(),
            (None, TokenScope::Unscoped) => ResolvedScope::Unscoped,
            (
                None,
                TokenScope::ApplicationCredential { project_id, .. }
                | TokenScope::Trust { project_id, .. }
                | TokenScope::OAuth1 { project_id, .. },
            ) => self
                .enabled_project_scope(project_id)
                .await?
                .ok_or_else(not_found)?,
            // Kinds Limen reads but does not honour yet.
            _ => return Err(not_found()),
        };
        let app_cred = match &payload.scope {
            TokenScope::ApplicationCredential { app_cred_id, .. } => {
                let c = self
                    .store
                    .get_application_credential(app_cred_id)
                    .await?
                    .filter(|c| c.user_id == user.id)
                    .filter(|c| c.expires_at.is_none_or(|e| now < e || allow_expired))
                    .ok_or_else(not_found)?;
                Some(c)
            }
            _ => None,
        };
        let trust = match &payload.scope {
            TokenScope::Trust { trust_id, .. } => {
                let t = self
                    .store
                    .get_trust(trust_id)
                    .await?
                    .filter(|t| t.expires_at.is_none_or(|e| now < e || allow_expired))
                    .ok_or_else(not_found)?;
                let acting_as = if t.impersonation {
                    &t.trustor_user_id
                } else {
                    &t.trustee_user_id
                };
                if *acting_as != user.id {
                    return Err(not_found());
                }
                let ancestors = self
                    .delegation()
                    .trust_ancestors(&t, allow_expired)
                    .await?
                    .ok_or_else(not_found)?;
                Some((t, ancestors))
            }
            _ => None,
        };
        let access_token = match &payload.scope {
            TokenScope::OAuth1 {
                project_id,
                access_token_id,
            } => Some(
                self.delegation()
                    .live_access_token(access_token_id, &user.id, project_id, allow_expired)
                    .await?
                    .ok_or_else(not_found)?,
            ),
            _ => None,
        };
        let roles = match (&own, &app_cred, &trust, &access_token) {
            (Some(own), _, _, _) => own.1.clone(),
            (None, Some(c), _, _) => self
                .delegation()
                .application_credential_roles(c)
                .await?
                .filter(|r| !r.is_empty())
                .ok_or_else(not_found)?,
            (None, None, Some((t, ancestors)), _) => self
                .delegation()
                .trust_effective_roles(t, ancestors)
                .await?
                .filter(|r| !r.is_empty())
                .ok_or_else(not_found)?,
            (None, None, None, Some(a)) => {
                let r = self.delegation().access_token_effective_roles(a).await?;
                if r.is_empty() {
                    return Err(not_found());
                }
                r
            }
            // Unscoped: no roles.
            (None, None, None, None) => vec![],
        };
        let mut domain_ids = vec![user.domain_id.as_str()];
        match &scope {
            ResolvedScope::Project { project, .. } => domain_ids.push(&project.domain_id),
            ResolvedScope::Domain(d) => domain_ids.push(&d.id),
            _ => {}
        }
        let facts = TokenFacts {
            user_id: &user.id,
            project_id: match &scope {
                ResolvedScope::Project { project, .. } => Some(&project.id),
                _ => None,
            },
            domain_ids,
            role_ids: roles.iter().map(|r| r.id.as_str()).collect(),
            trust_id: trust.as_ref().map(|(t, _)| t.id.as_str()),
            audit_id: payload.audit_ids.first().map(String::as_str),
            audit_chain_id: payload.audit_ids.last().map(String::as_str),
            expires_at: payload.expires_at,
            issued_at: payload.issued_at,
        };
        if self.is_revoked(&facts).await? {
            return Err(not_found());
        }
        let password_expires_at = self.identity().password_expires_at(&user.id).await?;
        let application_credential = match &app_cred {
            Some(c) => Some(self.app_cred_token_info(c).await?),
            None => None,
        };
        let valid_until = [
            Some(payload.expires_at),
            app_cred.as_ref().and_then(|c| c.expires_at),
            access_token.as_ref().and_then(|a| a.expires_at()),
        ]
        .into_iter()
        .chain(trust.iter().flat_map(|(t, ancestors)| {
            std::iter::once(t)
                .chain(ancestors)
                .map(|link| link.expires_at)
        }))
        .flatten()
        .min()
        .unwrap_or(payload.expires_at);
        let info = Arc::new(TokenInfo {
            payload,
            user,
            user_domain,
            scope,
            roles,
            password_expires_at,
            application_credential,
            trust: trust
                .as_ref()
                .map(|(t, ancestors)| TrustTokenInfo::of(t, ancestors)),
            oauth1: access_token.map(|a| OAuth1TokenInfo {
                access_token_id: a.id,
                consumer_id: a.consumer_id,
            }),
        });
        if now < valid_until {
            self.validations
                .insert(token, ticket, &info, info.dependencies(), valid_until);
        }
        Ok(info)
    }

    async fn revoked_this_second(
        &self,
        user: &User,
        scope: &ResolvedScope,
        roles: &[Role],
        second: OffsetDateTime,
    ) -> CoreResult<bool> {
        let mut domain_ids = vec![user.domain_id.as_str()];
        let project_id = match scope {
            ResolvedScope::Project { project, .. } => {
                domain_ids.push(&project.domain_id);
                Some(project.id.as_str())
            }
            ResolvedScope::Domain(d) => {
                domain_ids.push(&d.id);
                None
            }
            _ => None,
        };
        let facts = TokenFacts {
            user_id: &user.id,
            project_id,
            domain_ids,
            role_ids: roles.iter().map(|r| r.id.as_str()).collect(),
            trust_id: None,
            audit_id: None,
            audit_chain_id: None,
            expires_at: second,
            issued_at: second,
        };
        self.revoked_at_stamp(&facts).await
    }

    /// A project scope whose project and domain are both enabled, if so.
    pub(crate) async fn enabled_project_scope(
        &self,
        project_id: &str,
    ) -> CoreResult<Option<ResolvedScope>> {
        let Some(project) = self
            .store
            .get_project(project_id)
            .await?
            .filter(|p| p.enabled)
        else {
            return Ok(None);
        };
        let Some(domain) = self
            .store
            .get_domain(&project.domain_id)
            .await?
            .filter(|d| d.enabled)
        else {
            return Ok(None);
        };
        Ok(Some(ResolvedScope::Project { project, domain }))
    }

    /// Revokes a token (`DELETE /v3/auth/tokens`) and, with `cascade`, every token whose
    /// audit chain starts at it (the tokens rescoped from it), as Keystone 30 does.
    pub async fn revoke_token(
        &self,
        authz: &Authorized,
        info: &TokenInfo,
        cascade: bool,
    ) -> CoreResult<()> {
        authz.require(&["identity:revoke_token"])?;
        let Some(a) = info.payload.audit_ids.first() else {
            return Ok(());
        };
        self.revoke_audit_id(a).await?;
        if cascade {
            self.revoke_audit_chain(a).await?;
        }
        Ok(())
    }
}

/// A well-formed bcrypt hash of a random string: verifying against it costs what a real
/// check costs.
const DUMMY_HASH: &str = "$2b$12$WqkPLnOjCsNGBaxszueYuOXn0nGZ/2Fpk/Srqa9hwkLsd3jjmkPjy";

fn merge_user(slot: &mut Option<User>, u: User) -> CoreResult<()> {
    match slot {
        Some(existing) if existing.id != u.id => Err(CoreError::unauthorized(
            "The methods identify different users.",
        )),
        Some(_) => Ok(()),
        None => {
            *slot = Some(u);
            Ok(())
        }
    }
}

fn no_access_message(user: &User, scope: &ResolvedScope) -> String {
    match scope {
        ResolvedScope::Project { project, .. } => {
            format!("User {} has no access to project {}", user.id, project.id)
        }
        ResolvedScope::Domain(d) => {
            format!("User {} has no access to domain {}", user.id, d.id)
        }
        ResolvedScope::System => format!("User {} has no access to the system", user.id),
        ResolvedScope::Unscoped => "The request you have made requires authentication.".into(),
    }
}

/// Error messages never echo a whole token.
fn token_hint(token: &str) -> String {
    let prefix: String = token.chars().take(8).collect();
    format!("{prefix}…")
}
