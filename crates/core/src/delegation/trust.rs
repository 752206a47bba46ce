//! Trusts (`OS-TRUST`): a trustor delegates some of its roles on a project to a trustee,
//! optionally letting the trustee act as the trustor (impersonation), for a limited time
//! or number of uses, and optionally allowing the trustee to redelegate.

use crate::assignment::expand_implied;
use crate::authz::Authorized;
use crate::delegation::appcred::RoleRef;
use crate::delegation::DelegationService;
use crate::error::{CoreError, CoreResult};
use crate::model::{Extra, Role, Target, Trust};
use crate::token::auth::TokenInfo;
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Keystone's `[trust] max_redelegation_count`.
pub const MAX_REDELEGATION_COUNT: i64 = 3;

#[derive(Debug, Clone, Default)]
pub struct NewTrust {
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    pub expires_at: Option<OffsetDateTime>,
    pub remaining_uses: Option<i64>,
    pub roles: Vec<RoleRef>,
    pub allow_redelegation: bool,
    pub redelegation_count: Option<i64>,
    pub extra: Extra,
}

fn role_not_found(r: &RoleRef) -> CoreError {
    let shown = match r {
        RoleRef::Id(v) | RoleRef::Name(v) => v.clone(),
    };
    CoreError::not_found("role", shown)
}

impl DelegationService<'_> {
    /// Creates a trust for the caller (who must be the trustor); a trust-scoped caller
    /// redelegates its own trust.
    pub async fn create_trust(
        &self,
        authz: &Authorized,
        caller: &TokenInfo,
        input: NewTrust,
    ) -> CoreResult<(Trust, Vec<Role>)> {
        authz.require(&["identity:create_trust"])?;
        if caller.application_credential.is_some() || caller.delegated_method() {
            return Err(CoreError::forbidden(
                "Delegated tokens cannot manage trusts.",
            ));
        }
        if caller.user.id != input.trustor_user_id {
            return Err(CoreError::forbidden("Only the trustor can create a trust."));
        }
        self.identity().get_user(&input.trustee_user_id).await?;
        if let Some(p) = &input.project_id {
            self.resource().get_project(p).await?;
        }
        let now = self.clock.now();
        if input.expires_at.is_some_and(|e| e <= now) {
            return Err(CoreError::validation(
                "The expiration time of a trust must be in the future.",
            ));
        }
        if input.project_id.is_some() && input.roles.is_empty() {
            return Err(CoreError::forbidden(
                "At least one role should be specified.",
            ));
        }
        // Redelegation: the parent trust bounds everything the new one grants.
        let parent = match &caller.trust {
            Some(t) => Some(self.get_trust(&t.id).await?),
            None => None,
        };
        if let Some(p) = &parent {
            if p.redelegation_count < 1 {
                return Err(CoreError::forbidden(
                    "Redelegation of this trust is not allowed.",
                ));
            }
            // A limited parent (only trusts stored before the rule above can be both
            // limited and redelegatable) is not redelegated: its child could never be
            // used more often than the parent has uses left.
            if p.remaining_uses.is_some() {
                return Err(CoreError::forbidden(
                    "A trust with limited uses cannot be redelegated.",
                ));
            }
            // As Keystone: a redelegated trust takes no use limit of its own.
            if let Some(uses) = input.remaining_uses {
                return Err(CoreError::forbidden(format!(
                    "Field \"remaining_uses\" is set to {uses} while it must not be set in \
                     order to redelegate a trust."
                )));
            }
            if input.project_id != p.project_id {
                return Err(CoreError::forbidden(
                    "A redelegated trust must keep the project of its parent.",
                ));
            }
            if input.expires_at.is_none() && p.expires_at.is_some()
                || matches!((input.expires_at, p.expires_at), (Some(a), Some(b)) if a > b)
            {
                return Err(CoreError::forbidden(
                    "A redelegated trust cannot outlive its parent.",
                ));
            }
            if !p.impersonation && input.impersonation {
                return Err(CoreError::forbidden(
                    "A redelegated trust cannot add impersonation.",
                ));
            }
        }
        let redelegation_count = match (&parent, input.allow_redelegation) {
            (Some(p), _) => p.redelegation_count - 1,
            (None, true) => {
                let c = input.redelegation_count.unwrap_or(MAX_REDELEGATION_COUNT);
                if !self.config.trust.allow_redelegation {
                    return Err(CoreError::forbidden(
                        "Redelegation is not allowed on this cloud.",
                    ));
                }
                if !(0..=MAX_REDELEGATION_COUNT).contains(&c) {
                    return Err(CoreError::forbidden(format!(
                        "Remaining redelegation depth of {c} out of allowed range of [0..{MAX_REDELEGATION_COUNT}]."
                    )));
                }
                // As Keystone: a use limit and redelegation do not mix, since trusts
                // redelegated from a limited trust could outspend it.
                if c > 0 && input.remaining_uses.is_some() {
                    return Err(CoreError::validation(
                        "remaining_uses must not be set if redelegation is allowed.",
                    ));
                }
                c
            }
            (None, false) => 0,
        };
        // Roles: each held by the trustor on the project (or by the parent trust).
        let mut roles: Vec<Role> = Vec::new();
        if !input.roles.is_empty() {
            let held: BTreeSet<String> = match (&parent, &input.project_id) {
                (Some(p), _) => p.role_ids.iter().cloned().collect(),
                (None, Some(pid)) => {
                    self.assignment()
                        .effective_role_ids(&input.trustor_user_id, &Target::Project(pid.clone()))
                        .await?
                }
                (None, None) => BTreeSet::new(),
            };
            let all = self.store.list_roles(&Default::default()).await?;
            for r in &input.roles {
                let role = all
                    .iter()
                    .find(|x| match r {
                        RoleRef::Id(id) => &x.id == id,
                        RoleRef::Name(n) => &x.name == n && x.domain_id.is_none(),
                    })
                    .ok_or_else(|| role_not_found(r))?;
                if !held.contains(&role.id) {
                    return Err(CoreError::not_found("role", &role.id));
                }
                if !roles.iter().any(|x| x.id == role.id) {
                    roles.push(role.clone());
                }
            }
        }
        let trust = Trust {
            id: self.new_id(),
            trustor_user_id: input.trustor_user_id,
            trustee_user_id: input.trustee_user_id,
            project_id: input.project_id,
            impersonation: input.impersonation,
            expires_at: input.expires_at,
            remaining_uses: input.remaining_uses,
            redelegated_trust_id: parent.map(|p| p.id),
            redelegation_count,
            role_ids: roles.iter().map(|r| r.id.clone()).collect(),
            extra: input.extra,
            created_at: now,
        };
        self.store.create_trust(&trust).await?;
        Ok((trust, roles))
    }

    /// A trust that exists, has not expired, and whose whole redelegation chain is intact.
    pub async fn get_trust(&self, id: &str) -> CoreResult<Trust> {
        self.get_trust_with_ancestors(id)
            .await
            .map(|(trust, _)| trust)
    }

    /// [`Self::get_trust`] with the trusts it was redelegated from, nearest first.
    pub(crate) async fn get_trust_with_ancestors(
        &self,
        id: &str,
    ) -> CoreResult<(Trust, Vec<Trust>)> {
        let t = self
            .store
            .get_trust(id)
            .await?
            .ok_or_else(|| CoreError::not_found("trust", id))?;
        if t.expires_at.is_some_and(|e| e <= self.clock.now()) {
            return Err(CoreError::not_found("trust", id));
        }
        let ancestors = self
            .trust_ancestors(&t, false)
            .await?
            .ok_or_else(|| CoreError::not_found("trust", id))?;
        Ok((t, ancestors))
    }

    /// The trusts `t` was redelegated from, nearest first, when the chain is intact: each
    /// still exists, has not expired (unless `allow_expired`), keeps the project, and the
    /// trustee who redelegated it is still enabled. `None` when a link is broken: a trust
    /// confers nothing once anything it was redelegated from is gone, even if deleting
    /// the subtree was interrupted or raced with a redelegation.
    pub(crate) async fn trust_ancestors(
        &self,
        t: &Trust,
        allow_expired: bool,
    ) -> CoreResult<Option<Vec<Trust>>> {
        let now = self.clock.now();
        let mut ancestors: Vec<Trust> = Vec::new();
        let mut next = t.redelegated_trust_id.clone();
        while let Some(parent_id) = next {
            // Deeper chains cannot be created; a longer one is a cycle or damage.
            if ancestors.len() >= MAX_REDELEGATION_COUNT as usize {
                return Ok(None);
            }
            let Some(parent) = self.store.get_trust(&parent_id).await? else {
                return Ok(None);
            };
            if parent.expires_at.is_some_and(|e| e <= now) && !allow_expired {
                return Ok(None);
            }
            if parent.project_id != t.project_id {
                return Ok(None);
            }
            let redelegator_enabled = self
                .identity()
                .find_user(&parent.trustee_user_id)
                .await?
                .is_some_and(|u| u.enabled);
            if !redelegator_enabled {
                return Ok(None);
            }
            next = parent.redelegated_trust_id.clone();
            ancestors.push(parent);
        }
        Ok(Some(ancestors))
    }

    pub async fn list_trusts(
        &self,
        trustor: Option<&str>,
        trustee: Option<&str>,
    ) -> CoreResult<Vec<Trust>> {
        let now = self.clock.now();
        Ok(self
            .store
            .list_trusts(trustor, trustee)
            .await?
            .into_iter()
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .collect())
    }

    pub async fn trust_roles(&self, t: &Trust) -> CoreResult<Vec<Role>> {
        let mut out = Vec::new();
        for id in &t.role_ids {
            if let Some(r) = self.store.get_role(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub async fn delete_trust(
        &self,
        authz: &Authorized,
        caller: &TokenInfo,
        id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_trust"])?;
        if caller.trust.is_some() || caller.application_credential.is_some() {
            return Err(CoreError::forbidden(
                "Delegated tokens cannot manage trusts.",
            ));
        }
        self.get_trust(id).await?;
        self.delete_trust_tree(id).await
    }

    /// Deletes a trust and every trust redelegated from it, at any depth, each with its
    /// revocation event. Each deletion goes through the tracking store, so cached
    /// validations of their tokens end at once on every node.
    async fn delete_trust_tree(&self, id: &str) -> CoreResult<()> {
        let all = self.store.list_trusts(None, None).await?;
        let mut doomed = vec![id.to_string()];
        let mut i = 0;
        while i < doomed.len() {
            for t in &all {
                if t.redelegated_trust_id.as_deref() == Some(doomed[i].as_str())
                    && !doomed.contains(&t.id)
                {
                    doomed.push(t.id.clone());
                }
            }
            i += 1;
        }
        for trust_id in &doomed {
            self.store.delete_trust(trust_id).await?;
            self.revoke_trust_tokens(trust_id).await?;
        }
        Ok(())
    }

    /// Keystone records a revocation event for a deleted trust (its tokens also fail
    /// because the trust is gone; the event is what `/v3/OS-REVOKE/events` shows).
    async fn revoke_trust_tokens(&self, trust_id: &str) -> CoreResult<()> {
        let mut ev = crate::model::RevocationEvent::at(self.clock.now());
        ev.trust_id = Some(trust_id.to_string());
        self.store.add_revocation_event(&ev).await?;
        Ok(())
    }

    /// The roles a trust still confers: its roles (and what they imply) as long as the
    /// original trustor (of the first trust in its chain; `ancestors` nearest first) still
    /// holds every one on the project. `None` when it no longer can.
    pub(crate) async fn trust_effective_roles(
        &self,
        t: &Trust,
        ancestors: &[Trust],
    ) -> CoreResult<Option<Vec<Role>>> {
        let Some(pid) = &t.project_id else {
            return Ok(Some(vec![]));
        };
        let original_trustor = ancestors.last().unwrap_or(t).trustor_user_id.as_str();
        let held = self
            .assignment()
            .effective_role_ids(original_trustor, &Target::Project(pid.clone()))
            .await?;
        if t.role_ids.iter().any(|r| !held.contains(r)) {
            return Ok(None);
        }
        let rules = self.store.list_implied_roles().await?;
        let ids = expand_implied(&rules, t.role_ids.iter().cloned().collect());
        let mut roles = Vec::new();
        for id in ids {
            if let Some(r) = self.store.get_role(&id).await? {
                if r.domain_id.is_none() {
                    roles.push(r);
                }
            }
        }
        Ok(Some(roles))
    }

    /// Takes one use of the trust for a new token, and one of every limited trust it was
    /// redelegated from (`ancestors`, nearest first; only trusts stored before use limits
    /// and redelegation were made exclusive can have one), so a chain never issues more
    /// tokens than any of its links allows. An exhausted trust goes away with everything
    /// redelegated from it.
    pub(crate) async fn consume_trust(&self, t: &Trust, ancestors: &[Trust]) -> CoreResult<()> {
        let root_first: Vec<&Trust> = ancestors.iter().rev().chain([t]).collect();
        for link in &root_first {
            if !self.store.consume_trust_use(&link.id).await? {
                return Err(CoreError::forbidden("The trust has no uses left."));
            }
        }
        // The first exhausted link's subtree holds every later one.
        if let Some(exhausted) = root_first.iter().find(|l| l.remaining_uses == Some(1)) {
            self.delete_trust_tree(&exhausted.id).await?;
        }
        Ok(())
    }
}
