//! Login sessions of the OpenID Provider's pages: who logged in, when and how, for the
//! authorization and device pages. A session id is an opaque secret kept only hashed; a
//! session ends at logout, after `[oidc] session_lifetime`, after
//! `session_idle_timeout` without use, when its user is disabled or deleted, or when the
//! user's password changes (as Keystone revokes a user's tokens then).

use crate::documents::{secret_key, RecordKind};
use crate::error::CoreResult;
use crate::model::User;
use crate::oauth::OAuthService;
use crate::token::auth::{
    AuthRequest, DomainRef, PasswordCredentials, ScopeRequest, TotpCredentials, UserRef,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const SESSION: RecordKind = RecordKind::Session;

/// How stale `last_seen` may get before a use writes it again.
const TOUCH_EVERY: i64 = 60;

/// How a person signed in; it travels from the session into codes, device approvals and
/// grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignIn {
    /// When the person authenticated (unix seconds): an ID token's `auth_time`.
    pub auth_time: i64,
    /// How they authenticated (`pwd`, `otp`): an ID token's `amr`.
    pub amr: Vec<String>,
    /// Which password they signed in with (a digest of its stored hash): once it is
    /// changed or reset, what this sign-in gave ends.
    #[serde(default)]
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSession {
    pub user_id: String,
    #[serde(flatten)]
    pub sign_in: SignIn,
    /// The anti-forgery token every form of this session carries.
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// What a person types into the login page.
#[derive(Debug, Clone, Default)]
pub struct PageLogin {
    pub user_name: String,
    pub domain_name: String,
    pub password: String,
    /// A TOTP passcode, when the user's MFA rules ask for one.
    pub passcode: Option<String>,
}

impl OAuthService<'_> {
    /// A new anti-forgery token for a page that comes before any session.
    pub fn new_page_token(&self) -> String {
        self.new_opaque_secret()
    }

    /// Checks a login typed into the pages as a Keystone password (and TOTP) login is
    /// checked (lockout, password expiry, MFA rules) and starts a session: the raw id for
    /// the cookie, and the session. An MFA rule that needs a passcode not given is
    /// `AdditionalAuthRequired`.
    pub async fn start_page_session(&self, login: PageLogin) -> CoreResult<(String, LoginSession)> {
        let user = UserRef::Name {
            name: login.user_name,
            domain: DomainRef::Name(login.domain_name),
        };
        let mut methods = vec!["password".to_string()];
        let totp = login.passcode.map(|passcode| {
            methods.push("totp".into());
            TotpCredentials {
                user: user.clone(),
                passcode,
            }
        });
        let request = AuthRequest {
            methods,
            password: Some(PasswordCredentials {
                user,
                password: login.password,
            }),
            token: None,
            application_credential: None,
            totp,
            receipt: None,
            oauth1: None,
            scope: ScopeRequest::Unscoped,
        };
        let info = self.token().authenticate(request).await?.info;
        let amr = info
            .payload
            .methods
            .iter()
            .map(|m| if m == "totp" { "otp" } else { "pwd" }.to_string())
            .collect();
        let now = self.now_unix();
        let session = LoginSession {
            user_id: info.user.id.clone(),
            sign_in: SignIn {
                auth_time: now,
                amr,
                credential: self.password_digest(&info.user.id).await?,
            },
            csrf: self.new_opaque_secret(),
            created_at: now,
            last_seen: now,
        };
        let raw = self.new_opaque_secret();
        self.record_put(
            SESSION,
            &secret_key(&raw),
            &session,
            self.session_ends(&session),
            true,
        )
        .await?;
        tracing::info!(user = %session.user_id, "login session started");
        Ok((raw, session))
    }

    /// When a session ends unless it is used again.
    fn session_ends(&self, s: &LoginSession) -> i64 {
        let oidc = &self.config.oidc;
        (s.created_at + oidc.session_lifetime).min(s.last_seen + oidc.session_idle_timeout)
    }

    /// The live session `raw` names and its user (enabled, in an enabled domain, its
    /// password unchanged).
    pub async fn page_session(&self, raw: &str) -> CoreResult<Option<(LoginSession, User)>> {
        let key = secret_key(raw);
        let Some(mut session) = self.record_get::<LoginSession>(SESSION, &key).await? else {
            return Ok(None);
        };
        let Some(user) = self
            .signed_in_user(&session.user_id, &session.sign_in)
            .await?
        else {
            self.record_delete(SESSION, &key).await?;
            return Ok(None);
        };
        let now = self.now_unix();
        if now - session.last_seen >= TOUCH_EVERY {
            session.last_seen = now;
            self.record_put(SESSION, &key, &session, self.session_ends(&session), false)
                .await?;
        }
        Ok(Some((session, user)))
    }

    /// A digest of `user_id`'s current password hash (`-` without a password). The hash
    /// is salted afresh at every change, so a change or reset always gives a new digest.
    pub(crate) async fn password_digest(&self, user_id: &str) -> CoreResult<String> {
        let passwords = self.store.list_passwords(user_id).await?;
        Ok(passwords.iter().max_by_key(|p| p.created_at).map_or_else(
            || "-".to_string(),
            |p| hex::encode(&Sha256::digest(p.hash.as_bytes())[..16]),
        ))
    }

    /// The user `user_id` if usable and still holding the password of `sign_in`.
    pub(crate) async fn signed_in_user(
        &self,
        user_id: &str,
        sign_in: &SignIn,
    ) -> CoreResult<Option<User>> {
        let Some(user) = self.usable_user(user_id).await? else {
            return Ok(None);
        };
        let current = self.password_digest(user_id).await?;
        let same = bool::from(subtle::ConstantTimeEq::ct_eq(
            current.as_bytes(),
            sign_in.credential.as_bytes(),
        ));
        Ok(same.then_some(user))
    }

    /// Ends the session `raw` names (if any).
    pub async fn end_page_session(&self, raw: &str) -> CoreResult<()> {
        if self.record_delete(SESSION, &secret_key(raw)).await? {
            tracing::info!("login session ended");
        }
        Ok(())
    }
}
