//! The device authorization grant (RFC 8628): a device without a browser (a CLI, kubectl)
//! shows a short user code; its person signs in on another screen, checks which client
//! asks for what, and approves or denies; the device polls until then. Device codes are
//! opaque 256-bit secrets and user codes 8 letters of RFC 8628's vowel-free alphabet;
//! both are stored only hashed.

use crate::documents::{secret_key, RecordKind};
use crate::error::{CoreError, CoreResult};
use crate::oauth::authorize::parse_scopes;
use crate::oauth::client::{OAuthClient, GRANT_DEVICE_CODE};
use crate::oauth::grant::OAuthError;
use crate::oauth::session::LoginSession;
use crate::oauth::session::SignIn;
use crate::oauth::user_grant::UserTokens;
use crate::oauth::OAuthService;
use serde::{Deserialize, Serialize};

const DEVICE: RecordKind = RecordKind::DeviceCode;
const USER_CODE: RecordKind = RecordKind::UserCode;
const DEVICE_USED: RecordKind = RecordKind::DeviceCodeUsed;
/// A device request's decision, made once (create-only) before it is written.
const DEVICE_DECIDED: RecordKind = RecordKind::DeviceDecided;
/// A device's polling pace: its own record, because polls read the request and write
/// their pace while the person may be deciding; a poll that wrote the whole request
/// back would undo an approval made between its read and its write.
const DEVICE_PACE: RecordKind = RecordKind::DevicePollPace;

/// RFC 8628 §6.1: no vowels (no words), no digits (no 0/O, 1/I confusion).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// How long a decided or expired device code is kept, so a late poll hears
/// `expired_token` or `access_denied` rather than "unknown".
const KEEP_AFTER_EXPIRY: i64 = 600;

/// What the device is told to show and how to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStart {
    pub device_code: String,
    /// As shown: `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Decision {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceRecord {
    client_id: String,
    scopes: Vec<String>,
    user_code: String,
    decision: Decision,
    /// Who approved, when and how they had signed in.
    user_id: Option<String>,
    #[serde(default)]
    signed_in: Option<SignIn>,
    /// The interval the device was told at the start.
    interval: i64,
    expires_at: i64,
}

/// How fast a device may poll: the interval grows by five seconds at each `slow_down`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PollPace {
    interval: i64,
    last_polled_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserCodeRecord {
    device_key: String,
}

/// A device request waiting for its person, as the device page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDevice {
    pub client: OAuthClient,
    pub scopes: Vec<String>,
    /// As shown: `XXXX-XXXX`.
    pub user_code: String,
}

/// A typed user code as compared: capitals of the alphabet only (dashes, spaces and
/// anything else dropped); `None` unless exactly eight remain.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c.is_ascii() && ALPHABET.contains(&(*c as u8)))
        .collect();
    (code.len() == USER_CODE_LEN).then_some(code)
}

/// `XXXXXXXX` as `XXXX-XXXX`.
fn show(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

impl OAuthService<'_> {
    /// Starts a device authorization (RFC 8628 §3.1–3.2) for `client`.
    pub async fn start_device_authorization(
        &self,
        client: &OAuthClient,
        scope: Option<&str>,
    ) -> Result<DeviceStart, OAuthError> {
        if !client.grant_types.iter().any(|g| g == GRANT_DEVICE_CODE) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use the device authorization grant.".into(),
            ));
        }
        let scopes = parse_scopes(scope)
            .map_err(|u| OAuthError::InvalidScope(format!("The scope {u:?} is not supported.")))?;
        let oidc = &self.config.oidc;
        let expires_at = self.now_unix() + oidc.device_code_lifetime;
        let device_code = self.new_opaque_secret();
        let device_key = secret_key(&device_code);
        // A clash with a live user code is about one in 10^10 per outstanding code; try
        // again rather than hand out a code that names two requests.
        let mut user_code = None;
        for _ in 0..5 {
            let candidate = self.new_user_code();
            let link = UserCodeRecord {
                device_key: device_key.clone(),
            };
            match self
                .record_put(USER_CODE, &secret_key(&candidate), &link, expires_at, true)
                .await
            {
                Ok(()) => {
                    user_code = Some(candidate);
                    break;
                }
                Err(CoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let user_code = user_code.ok_or_else(|| {
            OAuthError::TemporarilyUnavailable("No free user code; try again.".into())
        })?;
        let record = DeviceRecord {
            client_id: client.id.clone(),
            scopes,
            user_code: user_code.clone(),
            decision: Decision::Pending,
            user_id: None,
            signed_in: None,
            interval: oidc.device_poll_interval,
            expires_at,
        };
        self.record_put(
            DEVICE,
            &device_key,
            &record,
            expires_at + KEEP_AFTER_EXPIRY,
            true,
        )
        .await?;
        tracing::info!(client = %client.id, "device authorization started");
        Ok(DeviceStart {
            device_code,
            user_code: show(&user_code),
            expires_in: oidc.device_code_lifetime,
            interval: oidc.device_poll_interval,
        })
    }

    fn new_user_code(&self) -> String {
        let mut bytes = [0u8; USER_CODE_LEN];
        let mut code = String::with_capacity(USER_CODE_LEN);
        while code.len() < USER_CODE_LEN {
            self.random.fill(&mut bytes);
            // 240 = 12 × 20: rejecting the rest keeps every letter equally likely.
            for b in bytes.iter().filter(|b| **b < 240) {
                if code.len() < USER_CODE_LEN {
                    code.push(ALPHABET[usize::from(*b % 20)] as char);
                }
            }
        }
        code
    }

    /// A device poll (RFC 8628 §3.4–3.5): tokens once approved, else why not yet.
    pub async fn poll_device_code(
        &self,
        client: &OAuthClient,
        device_code: Option<&str>,
    ) -> Result<UserTokens, OAuthError> {
        let device_code = device_code
            .ok_or_else(|| OAuthError::InvalidRequest("device_code is required.".into()))?;
        let key = secret_key(device_code);
        let unknown = || OAuthError::InvalidGrant("The device code is unknown or used.".into());
        let record: DeviceRecord = self.record_get(DEVICE, &key).await?.ok_or_else(unknown)?;
        if record.client_id != client.id {
            return Err(unknown());
        }
        let now = self.now_unix();
        if now >= record.expires_at {
            return Err(OAuthError::ExpiredToken(
                "The device code expired; start again.".into(),
            ));
        }
        let keep = record.expires_at + KEEP_AFTER_EXPIRY;
        let last: Option<PollPace> = self.record_get(DEVICE_PACE, &key).await?;
        let too_soon = last
            .as_ref()
            .is_some_and(|p| now - p.last_polled_at < p.interval);
        let interval = match &last {
            Some(p) if too_soon => p.interval + 5,
            Some(p) => p.interval,
            None => record.interval,
        };
        let pace = PollPace {
            interval,
            last_polled_at: now,
        };
        self.record_put(DEVICE_PACE, &key, &pace, keep, false)
            .await?;
        if too_soon {
            return Err(OAuthError::SlowDown(format!(
                "Polling too fast: wait {interval} seconds between polls."
            )));
        }
        match record.decision {
            Decision::Pending => Err(OAuthError::AuthorizationPending(
                "The person has not approved the request yet.".into(),
            )),
            Decision::Denied => Err(OAuthError::AccessDenied(
                "The person denied the request.".into(),
            )),
            Decision::Approved => {
                let grant_id = self.new_id();
                let marker = serde_json::json!({ "grant_id": grant_id });
                match self
                    .record_put(DEVICE_USED, &key, &marker, keep, true)
                    .await
                {
                    Ok(()) => {}
                    Err(CoreError::Conflict { .. }) => return Err(unknown()),
                    Err(e) => return Err(e.into()),
                }
                let (Some(user_id), Some(sign_in)) = (record.user_id, record.signed_in) else {
                    return Err(OAuthError::InvalidGrant(
                        "The approval is incomplete; start again.".into(),
                    ));
                };
                let (grant, user) = self
                    .start_grant(grant_id, client, &user_id, record.scopes, sign_in)
                    .await?;
                let scopes = grant.scopes.clone();
                self.user_tokens(&grant, client, &user, &scopes, None).await
            }
        }
    }

    /// The request a typed user code names, if it is still waiting for a decision.
    pub async fn pending_device(&self, typed: &str) -> CoreResult<Option<PendingDevice>> {
        let Some((_, record)) = self.device_by_user_code(typed).await? else {
            return Ok(None);
        };
        if record.decision != Decision::Pending || self.now_unix() >= record.expires_at {
            return Ok(None);
        }
        let client = match self.usable_client(&record.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => return Err(CoreError::Internal(e.to_string())),
        };
        Ok(Some(PendingDevice {
            client,
            scopes: record.scopes,
            user_code: show(&record.user_code),
        }))
    }

    async fn device_by_user_code(&self, typed: &str) -> CoreResult<Option<(String, DeviceRecord)>> {
        let Some(code) = normalize_user_code(typed) else {
            return Ok(None);
        };
        let Some(link) = self
            .record_get::<UserCodeRecord>(USER_CODE, &secret_key(&code))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .record_get::<DeviceRecord>(DEVICE, &link.device_key)
            .await?
            .map(|r| (link.device_key, r)))
    }

    /// Records the person's answer to a waiting device request; false when the code
    /// names none (unknown, expired or decided already).
    pub async fn decide_device(
        &self,
        typed: &str,
        session: &LoginSession,
        approve: bool,
    ) -> CoreResult<bool> {
        let Some((key, mut record)) = self.device_by_user_code(typed).await? else {
            return Ok(false);
        };
        if record.decision != Decision::Pending || self.now_unix() >= record.expires_at {
            return Ok(false);
        }
        let keep = record.expires_at + KEEP_AFTER_EXPIRY;
        // Two tabs answering at once: the first answer is the decision.
        match self
            .record_put(DEVICE_DECIDED, &key, &serde_json::json!({}), keep, true)
            .await
        {
            Ok(()) => {}
            Err(CoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        record.decision = if approve {
            record.user_id = Some(session.user_id.clone());
            record.signed_in = Some(session.sign_in.clone());
            Decision::Approved
        } else {
            Decision::Denied
        };
        self.record_put(DEVICE, &key, &record, keep, false).await?;
        // The user code is done: it cannot be approved twice.
        if let Some(code) = normalize_user_code(typed) {
            self.record_delete(USER_CODE, &secret_key(&code)).await?;
        }
        tracing::info!(client = %record.client_id, user = %session.user_id, approve, "device request decided");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_user_code;

    #[test]
    fn user_codes_are_compared_as_letters_of_the_alphabet() {
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" WDJB MJHT ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJB-MJH"), None);
        // Vowels and digits are not in the alphabet, so they never match.
        assert_eq!(normalize_user_code("WDJB-MJHA"), None);
        assert_eq!(
            normalize_user_code("ÄDJB-MJHTX").as_deref(),
            Some("DJBMJHTX")
        );
    }
}
