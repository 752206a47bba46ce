//! Tokens for signed EC2 and S3 requests (`/v3/ec2tokens`, `/v3/s3tokens`): an EC2 or S3
//! front end forwards a request signed with a user's EC2 credential, and gets back a
//! project-scoped token for that user, marked with the `ec2credential` method.

use crate::delegation::aws_signature::{
    ec2_signature, ec2_signed_times, s3_signature, s3_signed_time, Ec2Request, SignedTime,
};
use crate::delegation::credential::ec2_credential_id;
use crate::delegation::DelegationService;
use crate::error::{CoreError, CoreResult};
use crate::model::Target;
use crate::token::auth::{IssuedToken, Minting, ResolvedScope};
use serde_json::Value;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// The auth method EC2 and S3 tokens carry.
pub const EC2_METHOD: &str = "ec2credential";

/// What was signed, and how.
#[derive(Debug, Clone)]
pub enum SignedRequest {
    /// An EC2 API request (signature versions 0, 1, 2 or 4).
    Ec2(Ec2Request),
    /// An S3 request: the string to sign, as the S3 front end built it.
    S3 { string_to_sign: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct SignedCredentials {
    pub access: String,
    pub signature: Option<String>,
    pub request: SignedRequest,
}

fn auth_failed() -> CoreError {
    CoreError::unauthorized("The request you have made requires authentication.")
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Checks the signature against the secret. Some EC2 clients sign the host without its
/// port, so a v2 mismatch is retried with the bare host name.
fn signature_matches(secret: &str, creds: &SignedCredentials) -> bool {
    let Some(given) = creds.signature.as_deref().filter(|s| !s.is_empty()) else {
        return false;
    };
    match &creds.request {
        SignedRequest::S3 { string_to_sign } => {
            s3_signature(secret, string_to_sign).is_ok_and(|s| same(given, &s))
        }
        SignedRequest::Ec2(req) => {
            if ec2_signature(secret, req).is_ok_and(|s| same(given, &s)) {
                return true;
            }
            let Some(bare) = bare_host(&req.host) else {
                return false;
            };
            let retry = Ec2Request {
                host: bare,
                ..req.clone()
            };
            ec2_signature(secret, &retry).is_ok_and(|s| same(given, &s))
        }
    }
}

/// `host:port` without the port, lowercased (Python's `urlsplit('//' + host).hostname`).
fn bare_host(host: &str) -> Option<String> {
    if !host.contains(':') {
        return None;
    }
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    Some(h.to_lowercase())
}

/// Parses the request's ISO 8601 time: extended (`2025-01-01T00:00:00Z`, fractions and
/// offsets allowed) or basic (`20250101T000000Z`, as in `X-Amz-Date`). No zone means UTC.
pub fn parse_request_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{iso8601, Iso8601, Rfc3339};
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t);
    }
    const BASIC: iso8601::EncodedConfig =
        iso8601::Config::DEFAULT.set_use_separators(false).encode();
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::<BASIC>) {
        return Some(t);
    }
    PrimitiveDateTime::parse(s, &Iso8601::DEFAULT)
        .or_else(|_| PrimitiveDateTime::parse(s, &Iso8601::<BASIC>))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Parses an HTTP date as S3 v1 signers write it (`Tue, 01 Jan 2025 00:00:00 GMT`).
fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc2822;
    OffsetDateTime::parse(s.trim(), &Rfc2822).ok()
}

/// Whether every time the signature covers lets the request be used at `now`: a signing
/// time at most `ttl` away from `now` in either direction, a deadline not yet passed.
/// A request whose signature covers no time, or one that cannot be read, is refused.
fn fresh(times: &[SignedTime<'_>], now: OffsetDateTime, ttl: Duration) -> bool {
    !times.is_empty()
        && times.iter().all(|t| {
            let (at, deadline) = match *t {
                SignedTime::Signed(s) => (parse_request_time(s), false),
                SignedTime::SignedHttpDate(s) => (parse_http_date(s), false),
                SignedTime::Expires(s) => (parse_request_time(s), true),
                SignedTime::ExpiresEpoch(s) => (
                    s.parse::<i64>()
                        .ok()
                        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok()),
                    true,
                ),
            };
            match at {
                None => false,
                Some(at) if deadline => now <= at,
                Some(at) => at - ttl <= now && now <= at + ttl,
            }
        })
}

impl SignedCredentials {
    /// The times the signature covers: only those, since anything unsigned in the
    /// request can be changed by whoever replays it.
    fn signed_times(&self) -> Vec<SignedTime<'_>> {
        match &self.request {
            SignedRequest::Ec2(req) => ec2_signed_times(req).unwrap_or_default(),
            SignedRequest::S3 { string_to_sign } => {
                s3_signed_time(string_to_sign).map_or_else(|_| vec![], |t| vec![t])
            }
        }
    }
}

impl DelegationService<'_> {
    /// Issues a token for a request signed with an EC2 credential.
    pub async fn authenticate_signed(&self, creds: SignedCredentials) -> CoreResult<IssuedToken> {
        if !self.config.auth_methods.iter().any(|m| m == EC2_METHOD) {
            return Err(CoreError::Unavailable(format!(
                "Cannot issue a token for an EC2 or S3 credential: the {EC2_METHOD} auth \
                 method is not enabled ([auth] methods)."
            )));
        }
        let not_found = || CoreError::NotFoundMessage("EC2 access key not found.".into());
        let cred = self
            .get_credential(&ec2_credential_id(&creds.access))
            .await
            .map_err(|e| match e {
                CoreError::NotFound { .. } => not_found(),
                e => e,
            })?;
        if cred.cred_type != "ec2" {
            return Err(not_found());
        }
        let blob: Value = serde_json::from_str(&cred.blob).unwrap_or(Value::Null);
        let secret = blob.get("secret").and_then(Value::as_str).unwrap_or("");
        if secret.is_empty() || !signature_matches(secret, &creds) {
            return Err(auth_failed());
        }
        // A credential bound to a delegation (a trust, an application credential, an
        // OAuth1 access token) would need its own narrower token; Limen never makes such
        // credentials, and does not mint full user tokens for them.
        let delegated = ["trust_id", "app_cred_id", "access_token_id"]
            .iter()
            .any(|k| blob.get(*k).is_some_and(|v| !v.is_null()));
        if delegated {
            return Err(auth_failed());
        }
        let project_id = cred.project_id.clone().ok_or_else(auth_failed)?;
        let scope = self
            .token()
            .enabled_project_scope(&project_id)
            .await?
            .ok_or_else(auth_failed)?;
        let user = self
            .identity()
            .find_user(&cred.user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(auth_failed)?;
        let domain = self.resource().get_domain(&user.domain_id).await?;
        if !domain.enabled {
            return Err(auth_failed());
        }
        // Replays: the signed time must be within `[credential] auth_ttl` of now, either
        // way (Keystone checks only the past, and lets an unsigned `Timestamp` stand in
        // for the signed `X-Amz-Date`).
        let ttl = Duration::minutes(self.config.credential_auth_ttl_minutes);
        if !fresh(&creds.signed_times(), self.clock.now(), ttl) {
            return Err(auth_failed());
        }
        let roles = self
            .assignment()
            .effective_roles(&user.id, &Target::Project(project_id))
            .await?;
        if roles.is_empty() {
            return Err(auth_failed());
        }
        debug_assert!(matches!(scope, ResolvedScope::Project { .. }));
        self.token()
            .mint(Minting {
                user,
                known_domain: Some(domain),
                scope,
                roles,
                methods: vec![EC2_METHOD.to_string()],
                parent: None,
                app_cred: None,
                trust: None,
                access_token: None,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn request_times() {
        let t = datetime!(2025-01-01 00:00:00 UTC);
        for s in [
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00.000Z",
            "2025-01-01T01:00:00+01:00",
            "20250101T000000Z",
            "2025-01-01T00:00:00",
        ] {
            assert_eq!(parse_request_time(s), Some(t), "{s}");
        }
        assert_eq!(parse_request_time("yesterday"), None);
    }

    #[test]
    fn freshness() {
        let now = datetime!(2025-01-01 00:00:00 UTC);
        let ttl = Duration::minutes(15);
        let ok = |t: SignedTime<'_>| fresh(&[t], now, ttl);
        assert!(ok(SignedTime::Signed("2024-12-31T23:46:00Z")));
        assert!(ok(SignedTime::Signed("20250101T001400Z")));
        assert!(!ok(SignedTime::Signed("2024-12-31T23:44:00Z")));
        assert!(!ok(SignedTime::Signed("2025-01-01T00:16:00Z")));
        assert!(!ok(SignedTime::Signed("soon")));
        assert!(ok(SignedTime::SignedHttpDate(
            "Wed, 01 Jan 2025 00:05:00 GMT"
        )));
        assert!(!ok(SignedTime::SignedHttpDate(
            "Tue, 01 Jan 2030 00:00:00 GMT"
        )));
        assert!(ok(SignedTime::Expires("2025-06-01T00:00:00Z")));
        assert!(!ok(SignedTime::Expires("2024-12-31T23:59:00Z")));
        assert!(ok(SignedTime::ExpiresEpoch("1735693200")));
        assert!(!ok(SignedTime::ExpiresEpoch("1735686000")));
        assert!(!fresh(&[], now, ttl));
        assert!(!fresh(
            &[
                SignedTime::Signed("2025-01-01T00:00:00Z"),
                SignedTime::Expires("2024-01-01T00:00:00Z")
            ],
            now,
            ttl
        ));
    }

    #[test]
    fn bare_hosts() {
        assert_eq!(
            bare_host("Example.org:8773").as_deref(),
            Some("example.org")
        );
        assert_eq!(bare_host("[::1]:8773").as_deref(), Some("::1"));
        assert_eq!(bare_host("example.org"), None);
    }
}
