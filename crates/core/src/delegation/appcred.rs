//! Application credentials: a user's secret for one project with a subset of the user's
//! roles, optionally limited to access rules and an expiry.

use crate::authz::Authorized;
use crate::delegation::DelegationService;
use crate::error::{CoreError, CoreResult};
use crate::model::{AccessRule, ApplicationCredential, Role, Target};
use crate::token::auth::TokenInfo;
use base64::Engine;

/// A role named by id or by name when creating a credential.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleRef {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessRuleInput {
    pub id: Option<String>,
    pub service: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewApplicationCredential {
    pub name: String,
    pub description: Option<String>,
    /// Generated when absent.
    pub secret: Option<String>,
    pub expires_at: Option<time::OffsetDateTime>,
    /// Default: every role of the creating token.
    pub roles: Option<Vec<RoleRef>>,
    pub unrestricted: bool,
    pub access_rules: Option<Vec<AccessRuleInput>>,
}

/// A created credential with its secret, shown exactly once.
#[derive(Debug, Clone)]
pub struct CreatedApplicationCredential {
    pub credential: ApplicationCredential,
    pub secret: String,
    pub roles: Vec<Role>,
    pub access_rules: Vec<AccessRule>,
}

impl DelegationService<'_> {
    /// Creates a credential for the caller on the caller's project.
    pub async fn create_application_credential(
        &self,
        authz: &Authorized,
        caller: &TokenInfo,
        user_id: &str,
        input: NewApplicationCredential,
    ) -> CoreResult<CreatedApplicationCredential> {
        authz.require(&["identity:create_application_credential"])?;
        if caller.user.id != user_id {
            return Err(CoreError::forbidden(
                "Application credentials can only be created for yourself.",
            ));
        }
        if let Some(ac) = &caller.application_credential {
            if !ac.unrestricted {
                return Err(CoreError::forbidden(
                    "Using method 'application_credential' is not allowed for managing \
                     additional application credentials.",
                ));
            }
        }
        if caller.trust.is_some() {
            return Err(CoreError::forbidden(
                "Using method 'trust' is not allowed for managing application credentials.",
            ));
        }
        let Some(project_id) = caller.project_id().map(str::to_string) else {
            return Err(CoreError::forbidden(
                "Application credentials need a project-scoped token.",
            ));
        };
        let now = self.clock.now();
        if let Some(exp) = input.expires_at {
            if exp <= now {
                return Err(CoreError::validation(
                    "The expiration time of an application credential must be in the future.",
                ));
            }
        }
        if !self
            .store
            .list_application_credentials(user_id, Some(&input.name))
            .await?
            .is_empty()
        {
            return Err(CoreError::conflict(
                "application_credential",
                format!("Duplicate entry found with name {}", input.name),
            ));
        }
        // Roles: a subset of what the token holds.
        let held = &caller.roles;
        let roles: Vec<Role> = match input.roles {
            None => held.clone(),
            Some(wanted) => {
                let mut out = Vec::new();
                for w in wanted {
                    let found = held.iter().find(|r| match &w {
                        RoleRef::Id(id) => &r.id == id,
                        RoleRef::Name(n) => &r.name == n,
                    });
                    match found {
                        Some(r) if !out.iter().any(|x: &Role| x.id == r.id) => out.push(r.clone()),
                        Some(_) => {}
                        None => {
                            let shown = match &w {
                                RoleRef::Id(v) | RoleRef::Name(v) => v.clone(),
                            };
                            return Err(CoreError::forbidden(format!(
                                "Cannot create an application credential with a role the user does not have: {shown}"
                            )));
                        }
                    }
                }
                out
            }
        };
        if roles.is_empty() {
            return Err(CoreError::validation(
                "An application credential needs at least one role.",
            ));
        }
        // Access rules: reuse the user's stored rules, store new ones.
        let existing = self.store.list_access_rules(user_id).await?;
        let mut rules: Vec<AccessRule> = Vec::new();
        let mut new_rules: Vec<AccessRule> = Vec::new();
        for a in input.access_rules.unwrap_or_default() {
            if let Some(id) = &a.id {
                let r = existing
                    .iter()
                    .find(|r| &r.id == id)
                    .ok_or_else(|| CoreError::not_found("access_rule", id))?;
                rules.push(r.clone());
                continue;
            }
            let (Some(service), Some(path), Some(method)) = (a.service, a.path, a.method) else {
                return Err(CoreError::validation(
                    "An access rule needs an id, or a service, a path and a method.",
                ));
            };
            let rule = match existing
                .iter()
                .chain(new_rules.iter())
                .find(|r| r.service == service && r.path == path && r.method == method)
            {
                Some(r) => r.clone(),
                None => {
                    let r = AccessRule {
                        id: self.new_id(),
                        user_id: user_id.to_string(),
                        service,
                        path,
                        method,
                    };
                    new_rules.push(r.clone());
                    r
                }
            };
            if !rules.iter().any(|x| x.id == rule.id) {
                rules.push(rule);
            }
        }
        let secret = match input.secret {
            Some(s) if !s.is_empty() => s,
            _ => {
                let mut b = [0u8; 64];
                self.random.fill(&mut b);
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
            }
        };
        let secret_hash = self
            .hasher
            .hash(&secret)
            .await
            .map_err(CoreError::Internal)?;
        let credential = ApplicationCredential {
            id: self.new_id(),
            name: input.name,
            user_id: user_id.to_string(),
            project_id,
            description: input.description,
            secret_hash,
            expires_at: input.expires_at,
            unrestricted: input.unrestricted,
            role_ids: roles.iter().map(|r| r.id.clone()).collect(),
            access_rule_ids: rules.iter().map(|r| r.id.clone()).collect(),
            created_at: now,
        };
        self.store
            .create_application_credential(&credential, &new_rules)
            .await
            .map_err(|e| {
                crate::resource::conflict_as(
                    "application_credential",
                    &credential.name,
                    &credential.id,
                    e,
                )
            })?;
        Ok(CreatedApplicationCredential {
            credential,
            secret,
            roles,
            access_rules: rules,
        })
    }

    pub async fn get_application_credential(&self, id: &str) -> CoreResult<ApplicationCredential> {
        self.store
            .get_application_credential(id)
            .await?
            .ok_or_else(|| CoreError::not_found("application credential", id))
    }

    pub async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> CoreResult<Vec<ApplicationCredential>> {
        self.identity().get_user(user_id).await?;
        Ok(self
            .store
            .list_application_credentials(user_id, name)
            .await?)
    }

    /// Deletes a credential; an application-credential token may only delete itself when
    /// restricted.
    pub async fn delete_application_credential(
        &self,
        authz: &Authorized,
        caller: &TokenInfo,
        id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_application_credential"])?;
        if let Some(ac) = &caller.application_credential {
            if !ac.unrestricted && ac.id != id {
                return Err(CoreError::forbidden(
                    "Using method 'application_credential' is not allowed for managing \
                     additional application credentials.",
                ));
            }
        }
        if !self.store.delete_application_credential(id).await? {
            return Err(CoreError::not_found("application credential", id));
        }
        Ok(())
    }

    /// The roles and access rules of a credential, as stored.
    pub async fn application_credential_details(
        &self,
        c: &ApplicationCredential,
    ) -> CoreResult<(Vec<Role>, Vec<AccessRule>)> {
        let mut roles = Vec::new();
        for id in &c.role_ids {
            if let Some(r) = self.store.get_role(id).await? {
                roles.push(r);
            }
        }
        let all = self.store.list_access_rules(&c.user_id).await?;
        let rules = all
            .into_iter()
            .filter(|r| c.access_rule_ids.contains(&r.id))
            .collect();
        Ok((roles, rules))
    }

    /// The roles a credential still confers: its roles, as long as the user still holds
    /// every one of them on the project (losing one invalidates the credential, as
    /// Keystone deletes such credentials).
    pub(crate) async fn application_credential_roles(
        &self,
        c: &ApplicationCredential,
    ) -> CoreResult<Option<Vec<Role>>> {
        let held = self
            .assignment()
            .effective_role_ids(&c.user_id, &Target::Project(c.project_id.clone()))
            .await?;
        if c.role_ids.iter().any(|r| !held.contains(r)) {
            return Ok(None);
        }
        let mut roles = Vec::new();
        for id in &c.role_ids {
            if let Some(r) = self.store.get_role(id).await? {
                roles.push(r);
            }
        }
        Ok(Some(roles))
    }

    pub async fn list_access_rules(&self, user_id: &str) -> CoreResult<Vec<AccessRule>> {
        self.identity().get_user(user_id).await?;
        Ok(self.store.list_access_rules(user_id).await?)
    }

    pub async fn get_access_rule(&self, user_id: &str, id: &str) -> CoreResult<AccessRule> {
        self.list_access_rules(user_id)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("access_rule", id))
    }

    /// Deletes an access rule no credential uses.
    pub async fn delete_access_rule(
        &self,
        authz: &Authorized,
        user_id: &str,
        id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_access_rule"])?;
        self.get_access_rule(user_id, id).await?;
        let in_use = self
            .store
            .list_application_credentials(user_id, None)
            .await?
            .iter()
            .any(|c| c.access_rule_ids.iter().any(|r| r == id));
        if in_use {
            return Err(CoreError::forbidden(format!(
                "Access rule {id} is in use by an application credential and cannot be deleted."
            )));
        }
        self.store.delete_access_rule(id).await?;
        Ok(())
    }
}
