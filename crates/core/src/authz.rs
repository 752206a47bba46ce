//! Authorization as a value. A write in core takes an [`Authorized`]: the proof that the
//! policy allowed an action for a caller, or the named kind of system actor doing it.
//! Only [`Limen::authorize`] (the policy check) and the system-actor constructors below
//! make one. A handler writes like this:
//!
//! ```no_run
//! # async fn handler(limen: &limen_core::Limen, caller: &limen_core::authz::Caller)
//! #     -> limen_core::CoreResult<()> {
//! let target = serde_json::json!({"target": {"user": {"id": "0123"}}, "user_id": "0123"});
//! let proof = limen.authorize(caller, "identity:delete_user", target)?;
//! limen.identity().delete_user(&proof, "0123").await
//! # }
//! ```
//!
//! and one that forgot its policy check does not compile:
//!
//! ```compile_fail
//! # async fn handler(limen: &limen_core::Limen) -> limen_core::CoreResult<()> {
//! limen.identity().delete_user("0123").await
//! # }
//! ```
//!
//! nor does one that makes up a proof:
//!
//! ```compile_fail
//! # async fn handler(limen: &limen_core::Limen) -> limen_core::CoreResult<()> {
//! let forged = limen_core::authz::Authorized {
//!     actor: limen_core::authz::Actor::System(limen_core::authz::SystemActor::Bootstrap),
//!     action: "identity:delete_user".into(),
//!     target: serde_json::Value::Null,
//! };
//! limen.identity().delete_user(&forged, "0123").await
//! # }
//! ```
//!
//! ```compile_fail
//! let bootstrap = limen_core::authz::Authorized::bootstrap("identity:create_user");
//! ```
//!
//! A proof is also checked when used: a write refuses a proof for another action, and a
//! system actor's proof for anything outside its kind ([`SystemActor`]).
//!
//! The proof carries the caller, the action and the target the policy saw, which is what
//! a later audit record needs, from one place.

use crate::error::{CoreError, CoreResult};
use crate::token::auth::{ResolvedScope, TokenInfo};
use crate::Limen;
use limen_policy::{Decision, Policy};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::sync::{Arc, RwLock};

/// Who is asking: the validated token of the request and the request's id (what a log
/// line or an audit record names).
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Arc<TokenInfo>,
    pub request_id: Option<Arc<str>>,
}

impl Caller {
    pub fn new(token: Arc<TokenInfo>, request_id: Option<Arc<str>>) -> Self {
        Caller { token, request_id }
    }
}

/// Writers without a person behind them, one per kind. Each may do only the actions
/// listed in [`SystemActor::may`], and gets its proof from its own constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemActor {
    /// `limen bootstrap` and a server's first start: the admin, its project and role,
    /// the default domain, the identity endpoint.
    Bootstrap,
    /// The operator's commands that write to the store directly (`limen cluster`,
    /// `limen oauth-client`, re-encrypting credentials after a key rotation), run by
    /// whoever holds the server's configuration and keys.
    OperatorCli,
}

impl SystemActor {
    /// The actions this kind of actor does.
    fn may(self, action: &str) -> bool {
        match self {
            SystemActor::Bootstrap => matches!(
                action,
                "identity:create_role"
                    | "identity:create_domain"
                    | "identity:create_project"
                    | "identity:create_implied_role"
                    | "identity:create_user"
                    | "identity:update_user"
                    | "identity:create_region"
                    | "identity:create_service"
                    | "identity:create_endpoint"
                    | "identity:update_endpoint"
            ),
            SystemActor::OperatorCli => matches!(
                action,
                "identity:create_cluster"
                    | "identity:update_cluster"
                    | "identity:delete_cluster"
                    | "identity:create_oauth_client"
                    | "identity:update_oauth_client"
                    | "identity:delete_oauth_client"
                    // No policy rule names it: only the operator re-encrypts.
                    | "limen:reencrypt_credentials"
            ),
        }
    }
}

/// Who a write is done for.
#[derive(Debug, Clone)]
pub enum Actor {
    Person(Caller),
    System(SystemActor),
}

/// The proof that `actor` may do `action` on `target`. Fields are private: it is made by
/// the policy check ([`Limen::authorize`]) or by a system actor's constructor, nowhere
/// else.
#[derive(Debug, Clone)]
pub struct Authorized {
    actor: Actor,
    action: Cow<'static, str>,
    target: Value,
}

impl Authorized {
    /// `limen bootstrap` and a server's first start.
    pub(crate) fn bootstrap(action: &'static str) -> Authorized {
        Authorized::system(SystemActor::Bootstrap, action)
    }

    /// An operator's command run against the store (`limen cluster …`,
    /// `limen oauth-client …`). Public because the CLI is its own crate; the server
    /// never uses it (a test in `limen-server` checks its sources).
    pub fn operator_cli(action: &'static str) -> Authorized {
        Authorized::system(SystemActor::OperatorCli, action)
    }

    fn system(actor: SystemActor, action: &'static str) -> Authorized {
        Authorized {
            actor: Actor::System(actor),
            action: Cow::Borrowed(action),
            target: Value::Null,
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    /// The target document the policy check saw (`Null` for a system actor).
    pub fn target(&self) -> &Value {
        &self.target
    }

    /// The person behind the write, if any.
    pub fn caller(&self) -> Option<&Caller> {
        match &self.actor {
            Actor::Person(c) => Some(c),
            Actor::System(_) => None,
        }
    }

    /// Checks that this proof is for one of `actions` (what a write method is allowed by):
    /// a proof for another action is refused, as is a system actor outside its kind.
    /// [`Authorized::require`], and that the object the policy saw is the one written:
    /// a person's proof must name `id` as the id of one of `kinds` in its target
    /// (`{"target": {"user": {"id": …}}}`). A handler that checked one object and
    /// writes another is refused. System actors' proofs name no object.
    pub(crate) fn require_on(&self, actions: &[&str], kinds: &[&str], id: &str) -> CoreResult<()> {
        self.require(actions)?;
        let Actor::Person(caller) = &self.actor else {
            return Ok(());
        };
        let named = kinds
            .iter()
            .any(|k| self.target["target"][*k]["id"].as_str() == Some(id));
        if named {
            return Ok(());
        }
        tracing::error!(proof = %self.action, wanted = ?kinds, id, actor = %caller.token.user.id,
            "a write was given a proof checked against another object");
        Err(forbidden(actions.first().copied().unwrap_or(&self.action)))
    }

    pub(crate) fn require(&self, actions: &[&str]) -> CoreResult<()> {
        let action = self.action.as_ref();
        let allowed = actions.contains(&action)
            && match &self.actor {
                Actor::Person(_) => true,
                Actor::System(kind) => kind.may(action),
            };
        if allowed {
            Ok(())
        } else {
            // The caller by user id only: a token's details do not belong in a log line.
            let actor = match &self.actor {
                Actor::Person(c) => c.token.user.id.clone(),
                Actor::System(kind) => format!("{kind:?}"),
            };
            tracing::error!(proof = action, wanted = ?actions, %actor,
                "a write was given a proof for another action");
            Err(forbidden(actions.first().copied().unwrap_or(action)))
        }
    }
}

fn forbidden(action: &str) -> CoreError {
    CoreError::Forbidden(format!(
        "You are not authorized to perform the requested action: {action}."
    ))
}

/// The policy in force, replaceable while the server runs (the policy file is re-read
/// when it changes).
pub(crate) struct LivePolicy(RwLock<Arc<Policy>>);

impl LivePolicy {
    pub(crate) fn new(p: Policy) -> Self {
        LivePolicy(RwLock::new(Arc::new(p)))
    }

    fn current(&self) -> Arc<Policy> {
        match self.0.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, p: Policy) {
        match self.0.write() {
            Ok(mut slot) => *slot = Arc::new(p),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(p),
        }
    }
}

impl Limen {
    /// Checks `action` for `caller` on `target` (`{"target": {...}, ...path args}`) against
    /// the policy, as Keystone's RBAC enforcer does, and returns the proof a write needs.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        target: Value,
    ) -> CoreResult<Authorized> {
        self.check(&caller.token, action, &target)?;
        Ok(Authorized {
            actor: Actor::Person(caller.clone()),
            action: Cow::Owned(action.to_string()),
            target,
        })
    }

    /// The policy check without a proof, for a read: Keystone's 403 when it denies.
    pub fn check(&self, token: &TokenInfo, action: &str, target: &Value) -> CoreResult<()> {
        if self.allows(token, action, target) {
            Ok(())
        } else {
            tracing::debug!(action, user = %token.user.id, "policy denied");
            Err(forbidden(action))
        }
    }

    /// Whether the policy allows `action` for the token's holder on `target`.
    pub fn allows(&self, token: &TokenInfo, action: &str, target: &Value) -> bool {
        let creds = policy_credentials(token);
        self.policy.current().enforce(action, &creds, target) == Decision::Allow
    }

    /// The policy in force, for reads that filter many items (with the caller's
    /// [`policy_credentials`] computed once).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.current()
    }

    /// Puts `p` in force from the next check on.
    pub fn set_policy(&self, p: Policy) {
        self.policy.replace(p);
    }
}

/// The credentials oslo.policy checks see (Keystone's `to_policy_values()` plus the token).
pub fn policy_credentials(t: &TokenInfo) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_for_its_action_only() {
        let p = Authorized::operator_cli("identity:delete_cluster");
        assert!(p.require(&["identity:delete_cluster"]).is_ok());
        assert!(p.require(&["identity:delete_user"]).is_err());
    }

    #[test]
    fn a_system_actor_does_only_its_kind_of_write() {
        // The operator's commands manage clusters and OAuth clients, never users.
        let p = Authorized::operator_cli("identity:delete_user");
        assert!(p.require(&["identity:delete_user"]).is_err());
        let p = Authorized::bootstrap("identity:delete_user");
        assert!(p.require(&["identity:delete_user"]).is_err());
        assert!(Authorized::bootstrap("identity:create_user")
            .require(&["identity:create_user"])
            .is_ok());
    }
}
