//! Authorization in handlers: the policy check of a named rule against a target (done by
//! core, which returns the proof a write needs), and the delegation guards Keystone keeps.

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::state::AppState;
use limen_core::authz::Authorized;
use limen_core::token::auth::TokenInfo;
use serde_json::{json, Map, Value};

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

/// Enforces `action` for the caller on `target` (`{"target": {...}, ...path args}`), for
/// a read; a write needs the proof [`authorize`] returns.
pub fn enforce(state: &AppState, caller: &TokenInfo, action: &str, target: Value) -> ApiResult<()> {
    Ok(state.limen.check(caller, action, &target)?)
}

/// Enforces `action` for the caller on `target` and returns the proof that core's write
/// methods require.
pub fn authorize(
    state: &AppState,
    auth: &Auth,
    action: &str,
    target: Value,
) -> ApiResult<Authorized> {
    Ok(state.limen.authorize(&auth.caller, action, target)?)
}

/// [`authorize`] on an empty target, for the APIs whose rules look at the caller alone.
pub fn authorize_caller(state: &AppState, auth: &Auth, action: &str) -> ApiResult<Authorized> {
    authorize(state, auth, action, target(json!({}), &[]))
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The operator's proof is for the CLI's own commands: no request may write with it.
    #[test]
    fn no_handler_writes_as_the_operator() {
        // Assembled, so that this file does not name it.
        let needle = ["Authorized::", "operator_cli"].concat();
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10);
        let users: Vec<_> = files
            .iter()
            .filter(|f| std::fs::read_to_string(f).unwrap().contains(&needle))
            .collect();
        assert!(users.is_empty(), "{users:?} use {needle}");
    }
}
