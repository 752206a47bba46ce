//! The authorization endpoint's decisions (RFC 6749 §4.1, RFC 7636, OpenID Connect Core
//! §3.1.2): whether a request can be trusted enough to answer at the client's redirect
//! URI, what it asks for, whether the person already consented, and the single-use
//! authorization code that ends it.

use crate::documents::{secret_key, RecordKind};
use crate::error::{CoreError, CoreResult};
use crate::oauth::client::{OAuthClient, GRANT_AUTHORIZATION_CODE};
use crate::oauth::session::LoginSession;
use crate::oauth::session::SignIn;
use crate::oauth::OAuthService;
use serde::{Deserialize, Serialize};

pub(crate) const CODE: RecordKind = RecordKind::AuthorizationCode;
const CONSENT: RecordKind = RecordKind::Consent;

/// Seconds an authorization code lives (RFC 6749 recommends at most ten minutes; the
/// client redeems it at once).
const CODE_LIFETIME: i64 = 60;

/// Seconds a consent is remembered.
const CONSENT_LIFETIME: i64 = 180 * 86_400;

/// The scopes the provider knows; `openid` makes it an OpenID Connect request.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// An authorization request as received (each parameter at most once; `repeated` names
/// those given more than once).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub repeated: Vec<String>,
}

/// Why an authorization request is refused, and where the refusal goes.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeRejection {
    /// The client or its redirect URI cannot be trusted: an error page, never a redirect
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// An error response at the client's redirect URI.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    /// The store failed: a 503 page.
    Unavailable,
}

impl From<CoreError> for AuthorizeRejection {
    fn from(e: CoreError) -> Self {
        tracing::error!(error = %e, "authorization request failed on the store");
        AuthorizeRejection::Unavailable
    }
}

/// A request that passed every check: what the person is asked to allow.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// `prompt=none`: answer without showing a page, or fail.
    pub no_prompt: bool,
    /// `prompt=login`: authenticate again even with a session.
    pub force_login: bool,
    /// `prompt=consent`: ask again even if the person consented before.
    pub force_consent: bool,
    /// `max_age`: a session older than this many seconds must log in again.
    pub max_age: Option<i64>,
}

impl AuthorizeRequest {
    /// An error response at the client's redirect URI.
    pub fn reject(&self, error: &'static str, description: &str) -> AuthorizeRejection {
        AuthorizeRejection::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description: description.to_string(),
            state: self.state.clone(),
        }
    }

    /// Whether `session` is recent enough for this request (`prompt=login` aside).
    pub fn session_fresh_enough(&self, session: &LoginSession, now: i64) -> bool {
        self.max_age
            .is_none_or(|max| now - session.sign_in.auth_time <= max)
    }
}

/// A PKCE challenge (RFC 7636 §4.2: BASE64URL of a SHA-256, 43 characters).
fn challenge_well_formed(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a code stands for until it is redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    #[serde(flatten)]
    pub sign_in: SignIn,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConsentRecord {
    scopes: Vec<String>,
    /// The audiences the client could exchange the login for when the person allowed
    /// it; a new one asks again.
    #[serde(default)]
    audiences: Vec<String>,
}

impl OAuthService<'_> {
    /// Checks an authorization request in RFC 6749's order: client and redirect URI
    /// first (an error page), then everything else (an error at the redirect URI).
    pub async fn check_authorize(
        &self,
        p: AuthorizeParams,
    ) -> Result<AuthorizeRequest, AuthorizeRejection> {
        let page = |m: &str| Err(AuthorizeRejection::Page(m.to_string()));
        if p.repeated
            .iter()
            .any(|k| k == "client_id" || k == "redirect_uri")
        {
            return page("The request names its client or redirect URI more than once.");
        }
        let Some(client_id) = p.client_id else {
            return page("The request names no client (client_id).");
        };
        let client = match self.usable_client(&client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return page("The application that sent you here is unknown or disabled."),
            Err(_) => return Err(AuthorizeRejection::Unavailable),
        };
        let Some(redirect_uri) = p.redirect_uri else {
            return page("The request names no redirect URI (redirect_uri).");
        };
        // Exact string match (RFC 9700 §4.1.3): no prefix, no normalisation.
        if !client.redirect_uris.contains(&redirect_uri) {
            return page("The redirect URI is not registered for this application.");
        }
        let mut req = AuthorizeRequest {
            client,
            redirect_uri,
            scopes: Vec::new(),
            state: p.state,
            nonce: p.nonce,
            code_challenge: String::new(),
            no_prompt: false,
            force_login: false,
            force_consent: false,
            max_age: None,
        };
        if let Some(k) = p.repeated.first() {
            return Err(req.reject(
                "invalid_request",
                &format!("The parameter {k} is given more than once."),
            ));
        }
        if p.response_type.as_deref() != Some("code") {
            return Err(req.reject(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ));
        }
        if !req
            .client
            .grant_types
            .iter()
            .any(|g| g == GRANT_AUTHORIZATION_CODE)
        {
            return Err(req.reject(
                "unauthorized_client",
                "This client may not use the authorization code grant.",
            ));
        }
        match (p.code_challenge, p.code_challenge_method.as_deref()) {
            (Some(c), Some("S256")) if challenge_well_formed(&c) => req.code_challenge = c,
            (Some(_), Some("S256")) => {
                return Err(req.reject(
                    "invalid_request",
                    "code_challenge must be 43 characters of base64url (RFC 7636).",
                ))
            }
            (None, _) => {
                return Err(req.reject(
                    "invalid_request",
                    "PKCE is required: send code_challenge with code_challenge_method=S256.",
                ))
            }
            _ => {
                return Err(req.reject(
                    "invalid_request",
                    "Only code_challenge_method=S256 is supported.",
                ))
            }
        }
        req.scopes = match parse_scopes(p.scope.as_deref()) {
            Ok(s) => s,
            Err(unknown) => {
                return Err(req.reject(
                    "invalid_scope",
                    &format!("The scope {unknown:?} is not supported."),
                ))
            }
        };
        if let Some(prompt) = p.prompt {
            let values: Vec<&str> = prompt.split_whitespace().collect();
            if values.contains(&"none") && values.len() > 1 {
                return Err(req.reject(
                    "invalid_request",
                    "prompt=none cannot be combined with other values.",
                ));
            }
            for v in values {
                match v {
                    "none" => req.no_prompt = true,
                    "login" => req.force_login = true,
                    "consent" => req.force_consent = true,
                    "select_account" => {}
                    other => {
                        return Err(req.reject(
                            "invalid_request",
                            &format!("The prompt value {other:?} is not supported."),
                        ))
                    }
                }
            }
        }
        if let Some(max_age) = p.max_age {
            match max_age.parse::<i64>() {
                Ok(v) if v >= 0 => req.max_age = Some(v),
                _ => {
                    return Err(
                        req.reject("invalid_request", "max_age must be a number of seconds.")
                    )
                }
            }
        }
        Ok(req)
    }

    /// Whether `user_id` already allowed this client every scope asked for, and every
    /// audience it may now exchange the login for.
    pub async fn consented(&self, user_id: &str, req: &AuthorizeRequest) -> CoreResult<bool> {
        let key = format!("{user_id}/{}", req.client.id);
        let Some(c) = self.record_get::<ConsentRecord>(CONSENT, &key).await? else {
            return Ok(false);
        };
        let audiences = self.exchange_targets(&req.client).await?;
        Ok(req.scopes.iter().all(|s| c.scopes.contains(s))
            && audiences.iter().all(|t| c.audiences.contains(&t.audience)))
    }

    /// Remembers that `user_id` allowed this client these scopes.
    pub async fn remember_consent(&self, user_id: &str, req: &AuthorizeRequest) -> CoreResult<()> {
        let key = format!("{user_id}/{}", req.client.id);
        let mut scopes = self
            .record_get::<ConsentRecord>(CONSENT, &key)
            .await?
            .map(|c| c.scopes)
            .unwrap_or_default();
        for s in &req.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let audiences = self
            .exchange_targets(&req.client)
            .await?
            .into_iter()
            .map(|t| t.audience)
            .collect();
        let until = self.now_unix() + CONSENT_LIFETIME;
        let record = ConsentRecord { scopes, audiences };
        self.record_put(CONSENT, &key, &record, until, false).await
    }

    /// A single-use authorization code for what `session`'s user allowed.
    pub async fn issue_authorization_code(
        &self,
        req: &AuthorizeRequest,
        session: &LoginSession,
    ) -> CoreResult<String> {
        let code = self.new_opaque_secret();
        let expires_at = self.now_unix() + CODE_LIFETIME;
        let record = CodeRecord {
            client_id: req.client.id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            sign_in: session.sign_in.clone(),
            expires_at,
        };
        self.record_put(CODE, &secret_key(&code), &record, expires_at, true)
            .await?;
        tracing::info!(client = %req.client.id, user = %session.user_id, "authorization code issued");
        Ok(code)
    }
}

/// The scopes of a `scope` parameter, in order, without repeats; the first unknown one
/// is the error.
pub fn parse_scopes(scope: Option<&str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or("").split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(s.to_string());
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}
