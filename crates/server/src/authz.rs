//! Authorization: the caller's token as oslo.policy credentials, and enforcement of a
//! named rule against a target, as Keystone's RBAC enforcer does it.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use limen_core::auth::{ResolvedScope, TokenInfo};
use limen_policy::Decision;
use serde_json::{json, Map, Value};

/// The credentials oslo.policy checks see (Keystone's `to_policy_values()` plus the token).
pub fn credentials(t: &TokenInfo) -> Value {
    let (project_id, project_domain_id, domain_id, system) = match &t.scope {
        ResolvedScope::Project { project, .. } => (
            Some(project.id.as_str()),
            Some(project.domain_id.as_str()),
            None,
            None,
        ),
        ResolvedScope::Domain(d) => (None, None, Some(d.id.as_str()), None),
        ResolvedScope::System => (None, None, None, Some("all")),
        ResolvedScope::Unscoped => (None, None, None, None),
    };
    let mut token = Map::new();
    token.insert("user_id".into(), json!(t.user.id));
    token.insert(
        "user".into(),
        json!({"id": t.user.id, "domain": {"id": t.user.domain_id}}),
    );
    match &t.scope {
        ResolvedScope::Project { project, .. } => {
            token.insert(
                "project".into(),
                json!({"id": project.id, "domain": {"id": project.domain_id}}),
            );
        }
        ResolvedScope::Domain(d) => {
            token.insert("domain".into(), json!({"id": d.id, "name": d.name}));
        }
        ResolvedScope::System => {
            token.insert("system".into(), json!({"all": true}));
        }
        ResolvedScope::Unscoped => {}
    }
    json!({
        "user_id": t.user.id,
        "user_domain_id": t.user.domain_id,
        "project_id": project_id,
        "project_domain_id": project_domain_id,
        "domain_id": domain_id,
        "system_scope": system,
        "system": system,
        "roles": t.role_names(),
        "is_admin": false,
        "is_admin_project": false,
        "token": Value::Object(token),
    })
}

/// What a delegated token (see [`TokenInfo::is_delegated`]) is kept away from.
#[derive(Debug, Clone, Copy)]
pub enum Guarded {
    /// `/v3/credentials` and OS-EC2: no delegated token at all.
    Credentials,
    /// Application credentials and access rules: no delegation but an application
    /// credential's own (whose limits its routes check).
    ApplicationCredentials,
    /// A user's OAuth1 access tokens: no delegated token at all.
    OAuthAccessTokens,
    /// Trusts: no token from a delegated login (an application credential, EC2, OAuth1);
    /// a trust-scoped token from a user's own login may read and redelegate.
    Trusts,
}

/// Refuses delegated tokens where Keystone does: a delegation must not turn into a
/// lasting credential that outlives or widens it.
pub fn refuse_delegated(caller: &TokenInfo, what: Guarded) -> ApiResult<()> {
    match what {
        Guarded::Credentials if caller.is_delegated() => Err(ApiError::forbidden_action(
            "Delegated tokens cannot access credentials directly",
        )),
        Guarded::ApplicationCredentials
            if caller.is_delegated() && caller.application_credential.is_none() =>
        {
            Err(ApiError::forbidden_action(
                "Cannot manage application credentials with a token issued via delegation",
            ))
        }
        // Keystone's Forbidden, whose reason is not shown.
        Guarded::OAuthAccessTokens if caller.is_delegated() => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action.",
        )),
        Guarded::Trusts if caller.delegated_method() => Err(ApiError::forbidden_action(
            // Keystone's text, with the period its message format adds.
            "Delegated tokens cannot manage trusts.",
        )),
        _ => Ok(()),
    }
}

/// Enforces `action` for the caller on `target` (`{"target": {...}, ...path args}`).
pub fn enforce(state: &AppState, caller: &TokenInfo, action: &str, target: Value) -> ApiResult<()> {
    let creds = credentials(caller);
    match state.policy().enforce(action, &creds, &target) {
        Decision::Allow => Ok(()),
        Decision::Deny | Decision::ScopeMismatch => {
            tracing::debug!(action, user = %caller.user.id, "policy denied");
            Err(ApiError::forbidden_action(action))
        }
    }
}

/// A target document: `{"target": inner}` plus top-level path arguments.
pub fn target(inner: Value, path_args: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    m.insert("target".into(), inner);
    for (k, v) in path_args {
        m.insert((*k).to_string(), json!(v));
    }
    Value::Object(m)
}
