//! Login sessions of the OpenID Provider's pages: who logged in, when and how, for the
//! authorization and device pages. A session id is an opaque secret kept only hashed; a
//! session ends at logout, after `[oidc] session_lifetime`, after
//! `session_idle_timeout` without use, or when its user is disabled or deleted.

use crate::auth::{
    AuthRequest, DomainRef, PasswordCredentials, ScopeRequest, TotpCredentials, UserRef,
};
use crate::documents::secret_key;
use crate::error::CoreResult;
use crate::model::User;
use crate::service::Limen;
use serde::{Deserialize, Serialize};

const SESSION: &str = "oauth_session";

/// How stale `last_seen` may get before a use writes it again.
const TOUCH_EVERY: i64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSession {
    pub user_id: String,
    /// When the person authenticated (unix seconds): an ID token's `auth_time`.
    pub auth_time: i64,
    /// How they authenticated (`pwd`, `otp`): an ID token's `amr`.
    pub amr: Vec<String>,
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

impl Limen {
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
        let info = self.authenticate(request).await?.info;
        let amr = info
            .payload
            .methods
            .iter()
            .map(|m| if m == "totp" { "otp" } else { "pwd" }.to_string())
            .collect();
        let now = self.now_unix();
        let session = LoginSession {
            user_id: info.user.id.clone(),
            auth_time: now,
            amr,
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

    /// The live session `raw` names and its user (enabled, in an enabled domain).
    pub async fn page_session(&self, raw: &str) -> CoreResult<Option<(LoginSession, User)>> {
        let key = secret_key(raw);
        let Some(mut session) = self.record_get::<LoginSession>(SESSION, &key).await? else {
            return Ok(None);
        };
        let Some(user) = self.usable_user(&session.user_id).await? else {
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

    /// Ends the session `raw` names (if any).
    pub async fn end_page_session(&self, raw: &str) -> CoreResult<()> {
        if self.record_delete(SESSION, &secret_key(raw)).await? {
            tracing::info!("login session ended");
        }
        Ok(())
    }
}
