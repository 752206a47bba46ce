//! Roles, implied roles, grants, and the effective roles a user holds on a target.

use crate::authz::Authorized;
use crate::error::{CoreError, CoreResult};
use crate::model::{Actor, Assignment, Extra, ImpliedRole, Project, Role, Target};
use crate::resource::{conflict_as, merge_extra, merge_options};
use crate::service::Limen;
use crate::store::{AssignmentFilter, ProjectFilter, RoleFilter};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Roles that may never be implied by another (Keystone's `prohibited_implied_role`).
pub const PROHIBITED_IMPLIED_ROLES: &[&str] = &["admin"];

#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub options: Option<Extra>,
    pub extra: Extra,
}

/// One row of `/v3/role_assignments`, with what the effective expansion derived it from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleAssignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    /// A stored assignment inherited to the projects below its target (non-effective view).
    pub inherited_to_projects: bool,
    /// The stored assignment this row comes from.
    pub source: Assignment,
    /// Set when the row comes from a group the user is a member of.
    pub via_group: Option<String>,
    /// Set when the role is implied by `prior_role_id`.
    pub prior_role_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleAssignmentQuery {
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub system: bool,
    /// Only assignments inherited to projects.
    pub inherited: bool,
    pub effective: bool,
    /// With `project_id`: also the projects below it.
    pub include_subtree: bool,
}

/// The assignment area's services: roles, implied roles, grants and effective role assignments (`limen.assignment()`).
#[derive(Clone, Copy)]
pub struct AssignmentService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn assignment(&self) -> AssignmentService<'_> {
        AssignmentService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for AssignmentService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl AssignmentService<'_> {
    // ---- roles ----

    pub async fn create_role(&self, authz: &Authorized, input: NewRole) -> CoreResult<Role> {
        authz.require(&["identity:create_role", "identity:create_domain_role"])?;
        if let Some(d) = &input.domain_id {
            self.store
                .get_domain(d)
                .await?
                .ok_or_else(|| CoreError::validation(format!("Could not find domain: {d}.")))?;
        }
        let clash = self
            .store
            .list_roles(&RoleFilter {
                name: Some(input.name.clone()),
                domain_id: Some(input.domain_id.clone()),
            })
            .await?;
        if !clash.is_empty() {
            return Err(CoreError::conflict(
                "role",
                format!("Duplicate entry found with name {}", input.name),
            ));
        }
        let role = Role {
            id: self.new_id(),
            name: input.name,
            domain_id: input.domain_id,
            description: input.description,
            options: input.options,
            extra: input.extra,
        };
        self.store
            .create_role(&role)
            .await
            .map_err(|e| conflict_as("role", &role.name, &role.id, e))?;
        Ok(role)
    }

    pub async fn get_role(&self, id: &str) -> CoreResult<Role> {
        self.store
            .get_role(id)
            .await?
            .ok_or_else(|| CoreError::not_found("role", id))
    }

    pub async fn list_roles(&self, filter: &RoleFilter) -> CoreResult<Vec<Role>> {
        Ok(self.store.list_roles(filter).await?)
    }

    pub async fn update_role(
        &self,
        authz: &Authorized,
        id: &str,
        patch: RolePatch,
    ) -> CoreResult<Role> {
        authz.require(&["identity:update_role", "identity:update_domain_role"])?;
        let mut role = self.get_role(id).await?;
        if let Some(name) = patch.name {
            if name != role.name {
                let clash = self
                    .store
                    .list_roles(&RoleFilter {
                        name: Some(name.clone()),
                        domain_id: Some(role.domain_id.clone()),
                    })
                    .await?;
                if !clash.is_empty() {
                    return Err(CoreError::conflict(
                        "role",
                        format!("Duplicate entry found with name {name}"),
                    ));
                }
                role.name = name;
            }
        }
        if let Some(d) = patch.description {
            role.description = Some(d);
        }
        merge_options(&mut role.options, patch.options);
        merge_extra(&mut role.extra, patch.extra);
        self.store
            .update_role(&role)
            .await
            .map_err(|e| conflict_as("role", &role.name, &role.id, e))?;
        Ok(role)
    }

    pub async fn delete_role(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_role", "identity:delete_domain_role"])?;
        let role = self.get_role(id).await?;
        if role.options.get("immutable").and_then(|v| v.as_bool()) == Some(true) {
            return Err(CoreError::forbidden(format!(
                "Role {id} is immutable and cannot be deleted."
            )));
        }
        self.store.delete_role(id).await?;
        Ok(())
    }

    // ---- implied roles ----

    pub async fn create_implied_role(
        &self,
        authz: &Authorized,
        prior: &str,
        implied: &str,
    ) -> CoreResult<(Role, Role)> {
        authz.require(&["identity:create_implied_role"])?;
        let prior_role = self.get_role(prior).await?;
        let implied_role = self.get_role(implied).await?;
        if PROHIBITED_IMPLIED_ROLES.contains(&implied_role.name.as_str()) {
            return Err(CoreError::forbidden(format!(
                "{} role cannot be an implied role.",
                implied_role.name
            )));
        }
        if prior == implied {
            return Err(CoreError::forbidden(format!(
                "Role {prior} cannot imply itself."
            )));
        }
        if implied_role.domain_id.is_some() && prior_role.domain_id.is_none() {
            return Err(CoreError::forbidden(format!(
                "Global role {prior} cannot imply the domain-specific role {implied}."
            )));
        }
        self.store
            .create_implied_role(&ImpliedRole {
                prior_role_id: prior.into(),
                implied_role_id: implied.into(),
            })
            .await?;
        Ok((prior_role, implied_role))
    }

    pub async fn get_implied_role(&self, prior: &str, implied: &str) -> CoreResult<(Role, Role)> {
        let prior_role = self.get_role(prior).await?;
        let implied_role = self.get_role(implied).await?;
        let rules = self.store.list_implied_roles().await?;
        if !rules
            .iter()
            .any(|r| r.prior_role_id == prior && r.implied_role_id == implied)
        {
            return Err(CoreError::NotFoundMessage(format!(
                "{prior} does not imply {implied}."
            )));
        }
        Ok((prior_role, implied_role))
    }

    pub async fn delete_implied_role(
        &self,
        authz: &Authorized,
        prior: &str,
        implied: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_implied_role"])?;
        self.get_role(prior).await?;
        self.get_role(implied).await?;
        let removed = self
            .store
            .delete_implied_role(&ImpliedRole {
                prior_role_id: prior.into(),
                implied_role_id: implied.into(),
            })
            .await?;
        if !removed {
            return Err(CoreError::NotFoundMessage(format!(
                "{prior} does not imply {implied}."
            )));
        }
        Ok(())
    }

    /// Roles directly implied by `prior` (one level, as Keystone lists them).
    pub async fn list_implied_roles_of(&self, prior: &str) -> CoreResult<(Role, Vec<Role>)> {
        let prior_role = self.get_role(prior).await?;
        let rules = self.store.list_implied_roles().await?;
        let mut implied = Vec::new();
        for r in rules.iter().filter(|r| r.prior_role_id == prior) {
            if let Some(role) = self.store.get_role(&r.implied_role_id).await? {
                implied.push(role);
            }
        }
        Ok((prior_role, implied))
    }

    /// Every inference rule grouped by prior role, for `/v3/role_inferences`.
    pub async fn list_role_inferences(&self) -> CoreResult<Vec<(Role, Vec<Role>)>> {
        let rules = self.store.list_implied_roles().await?;
        let roles: HashMap<String, Role> = self
            .store
            .list_roles(&RoleFilter::default())
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut grouped: Vec<(Role, Vec<Role>)> = Vec::new();
        for rule in rules {
            let (Some(p), Some(i)) = (
                roles.get(&rule.prior_role_id),
                roles.get(&rule.implied_role_id),
            ) else {
                continue;
            };
            match grouped.iter_mut().find(|(prior, _)| prior.id == p.id) {
                Some((_, list)) => list.push(i.clone()),
                None => grouped.push((p.clone(), vec![i.clone()])),
            }
        }
        Ok(grouped)
    }

    // ---- grants ----

    async fn check_actor(&self, actor: &Actor) -> CoreResult<String> {
        match actor {
            Actor::User(id) => Ok(self.identity().get_user(id).await?.domain_id),
            Actor::Group(id) => Ok(self.identity().get_group(id).await?.domain_id),
        }
    }

    /// The domain a target belongs to (`None` for the system).
    async fn check_target(&self, target: &Target) -> CoreResult<Option<String>> {
        match target {
            Target::Project(id) => Ok(Some(self.resource().get_project(id).await?.domain_id)),
            Target::Domain(id) => Ok(Some(self.resource().get_domain(id).await?.id)),
            Target::System => Ok(None),
        }
    }

    pub async fn create_grant(&self, authz: &Authorized, a: &Assignment) -> CoreResult<()> {
        authz.require(&[
            "identity:create_grant",
            "identity:create_system_grant_for_user",
            "identity:create_system_grant_for_group",
        ])?;
        let role = self.get_role(&a.role_id).await?;
        self.check_actor(&a.actor).await?;
        let target_domain = self.check_target(&a.target).await?;
        if a.inherited && a.target == Target::System {
            return Err(CoreError::validation(
                "System role assignments cannot be inherited.",
            ));
        }
        if let Some(role_domain) = &role.domain_id {
            match &a.target {
                Target::System => {
                    return Err(CoreError::validation(format!(
                        "Role {} is a domain-specific role. Unable to use a domain-specific role in a system assignment.",
                        role.id
                    )))
                }
                t if target_domain.as_deref() != Some(role_domain.as_str()) => {
                    let (kind, id) = match t {
                        Target::Project(p) => ("Project", p.as_str()),
                        Target::Domain(d) => ("Domain", d.as_str()),
                        Target::System => ("System", ""),
                    };
                    return Err(CoreError::forbidden(format!(
                        "{kind} {id} must be in the same domain as the role {} being assigned.",
                        role.id
                    )));
                }
                _ => {}
            }
        }
        self.store.create_assignment(a).await?;
        Ok(())
    }

    pub async fn check_grant(&self, a: &Assignment) -> CoreResult<()> {
        self.get_role(&a.role_id).await?;
        self.check_actor(&a.actor).await?;
        self.check_target(&a.target).await?;
        let found = self
            .store
            .list_assignments(&AssignmentFilter {
                actors: Some(vec![a.actor.clone()]),
                targets: Some(vec![a.target.clone()]),
                role_id: Some(a.role_id.clone()),
                inherited: Some(a.inherited),
            })
            .await?;
        if found.is_empty() {
            return Err(assignment_not_found(a));
        }
        Ok(())
    }

    pub async fn delete_grant(&self, authz: &Authorized, a: &Assignment) -> CoreResult<()> {
        authz.require(&[
            "identity:revoke_grant",
            "identity:revoke_system_grant_for_user",
            "identity:revoke_system_grant_for_group",
        ])?;
        self.get_role(&a.role_id).await?;
        self.check_actor(&a.actor).await?;
        self.check_target(&a.target).await?;
        // The grant and the application credentials it carried go together.
        self.in_unit(async |unit| {
            if !unit.store.delete_assignment(a).await? {
                return Err(assignment_not_found(a));
            }
            // Tokens need no event: their roles are recomputed on every validation. Application
            // credentials whose roles are no longer all held are deleted, as in Keystone.
            let users = match &a.actor {
                Actor::User(u) => vec![u.clone()],
                Actor::Group(g) => unit.identity().member_ids(g).await?,
            };
            for u in users {
                for c in unit.store.list_application_credentials(&u, None).await? {
                    if unit
                        .delegation()
                        .application_credential_roles(&c)
                        .await?
                        .is_none()
                    {
                        unit.store.delete_application_credential(&c.id).await?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Roles granted to `actor` on `target` directly (the grants API's list).
    pub async fn list_grants(
        &self,
        actor: &Actor,
        target: &Target,
        inherited: bool,
    ) -> CoreResult<Vec<Role>> {
        self.check_actor(actor).await?;
        self.check_target(target).await?;
        let found = self
            .store
            .list_assignments(&AssignmentFilter {
                actors: Some(vec![actor.clone()]),
                targets: Some(vec![target.clone()]),
                role_id: None,
                inherited: Some(inherited),
            })
            .await?;
        let mut roles = Vec::new();
        for a in found {
            if let Some(r) = self.store.get_role(&a.role_id).await? {
                roles.push(r);
            }
        }
        Ok(roles)
    }

    // ---- effective roles ----

    /// The actors whose assignments count for a user: the user and its groups.
    async fn actors_of_user(&self, user_id: &str) -> CoreResult<Vec<Actor>> {
        let mut actors = vec![Actor::User(user_id.to_string())];
        for g in self.identity().group_ids_of(user_id).await? {
            actors.push(Actor::Group(g));
        }
        Ok(actors)
    }

    /// The ids of every role a user effectively holds on `target` (direct, through groups,
    /// inherited from the domain or parent projects, and implied), without domain-specific
    /// roles (which only lend their implied roles, as in Keystone).
    pub async fn effective_role_ids(
        &self,
        user_id: &str,
        target: &Target,
    ) -> CoreResult<BTreeSet<String>> {
        let actors = self.actors_of_user(user_id).await?;
        let mut direct: BTreeSet<String> = BTreeSet::new();
        match target {
            Target::Project(pid) => {
                let project = self.resource().get_project(pid).await?;
                let mut inherited_targets = vec![Target::Domain(project.domain_id.clone())];
                for a in self.resource().project_ancestors(&project).await? {
                    inherited_targets.push(Target::Project(a.id));
                }
                for a in self
                    .store
                    .list_assignments(&AssignmentFilter {
                        actors: Some(actors.clone()),
                        targets: Some(vec![target.clone()]),
                        role_id: None,
                        inherited: Some(false),
                    })
                    .await?
                {
                    direct.insert(a.role_id);
                }
                for a in self
                    .store
                    .list_assignments(&AssignmentFilter {
                        actors: Some(actors),
                        targets: Some(inherited_targets),
                        role_id: None,
                        inherited: Some(true),
                    })
                    .await?
                {
                    direct.insert(a.role_id);
                }
            }
            Target::Domain(_) | Target::System => {
                for a in self
                    .store
                    .list_assignments(&AssignmentFilter {
                        actors: Some(actors),
                        targets: Some(vec![target.clone()]),
                        role_id: None,
                        inherited: Some(false),
                    })
                    .await?
                {
                    direct.insert(a.role_id);
                }
            }
        }
        if direct.is_empty() {
            return Ok(direct);
        }
        let rules = self.store.list_implied_roles().await?;
        let expanded = expand_implied(&rules, direct);
        let mut out = BTreeSet::new();
        for id in expanded {
            if let Some(role) = self.store.get_role(&id).await? {
                if role.domain_id.is_none() {
                    out.insert(id);
                }
            }
        }
        Ok(out)
    }

    pub async fn effective_roles(&self, user_id: &str, target: &Target) -> CoreResult<Vec<Role>> {
        let ids = self.effective_role_ids(user_id, target).await?;
        let mut roles = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.store.get_role(&id).await? {
                roles.push(r);
            }
        }
        Ok(roles)
    }

    /// Projects where the user holds at least one role (`/v3/auth/projects`,
    /// `/v3/users/{id}/projects`).
    pub async fn projects_for_user(&self, user_id: &str) -> CoreResult<Vec<Project>> {
        let q = RoleAssignmentQuery {
            user_id: Some(user_id.to_string()),
            effective: true,
            ..Default::default()
        };
        let rows = self.list_role_assignments(&q).await?;
        let ids: BTreeSet<String> = rows
            .into_iter()
            .filter_map(|r| match r.target {
                Target::Project(p) => Some(p),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(self
            .store
            .list_projects(&ProjectFilter {
                ids: Some(ids.into_iter().collect()),
                ..Default::default()
            })
            .await?)
    }

    /// Domains where the user holds at least one role (`/v3/auth/domains`).
    pub async fn domains_for_user(&self, user_id: &str) -> CoreResult<Vec<crate::model::Domain>> {
        let q = RoleAssignmentQuery {
            user_id: Some(user_id.to_string()),
            effective: true,
            ..Default::default()
        };
        let rows = self.list_role_assignments(&q).await?;
        let ids: BTreeSet<String> = rows
            .into_iter()
            .filter_map(|r| match r.target {
                Target::Domain(d) => Some(d),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(d) = self.store.get_domain(&id).await? {
                out.push(d);
            }
        }
        Ok(out)
    }

    // ---- /v3/role_assignments ----

    /// The targets of every stored assignment that can yield a row `q` asks for, so the
    /// store reads those and not the whole table (`None`: no scope asked, all of them).
    /// A superset is harmless: the rows are filtered again once expanded.
    async fn contributing_targets(
        &self,
        q: &RoleAssignmentQuery,
    ) -> CoreResult<Option<Vec<Target>>> {
        if q.system {
            return Ok(Some(vec![Target::System]));
        }
        if let Some(d) = &q.domain_id {
            // Inherited assignments on a domain reach its projects, never the domain.
            return Ok(Some(vec![Target::Domain(d.clone())]));
        }
        let Some(p) = &q.project_id else {
            return Ok(None);
        };
        let mut targets = vec![Target::Project(p.clone())];
        if q.include_subtree {
            for child in self.resource().project_subtree(p).await? {
                targets.push(Target::Project(child.id));
            }
        }
        if q.effective {
            // Inherited assignments reach down from the ancestors and the domain.
            if let Some(project) = self.store.get_project(p).await? {
                for a in self.resource().project_ancestors(&project).await? {
                    targets.push(Target::Project(a.id));
                }
                targets.push(Target::Domain(project.domain_id));
            }
        }
        Ok(Some(targets))
    }

    pub async fn list_role_assignments(
        &self,
        q: &RoleAssignmentQuery,
    ) -> CoreResult<Vec<RoleAssignment>> {
        if q.effective && q.group_id.is_some() {
            return Err(CoreError::validation(
                "Combining effective and group filter will always result in an empty list.",
            ));
        }
        if q.include_subtree && q.project_id.is_none() {
            return Err(CoreError::validation(
                "scope.project.id must be specified if include_subtree is also specified",
            ));
        }
        let scope_filters = [q.project_id.is_some(), q.domain_id.is_some(), q.system]
            .iter()
            .filter(|b| **b)
            .count();
        if scope_filters > 1 {
            return Err(CoreError::validation(
                "Specify a project, a domain or the system as scope, not more than one.",
            ));
        }

        // 1. Which stored assignments can contribute.
        let actors = match (&q.user_id, &q.group_id, q.effective) {
            (Some(u), _, true) => Some(self.actors_of_user(u).await?),
            (Some(u), _, false) => Some(vec![Actor::User(u.clone())]),
            (None, Some(g), _) => Some(vec![Actor::Group(g.clone())]),
            (None, None, _) => None,
        };
        let targets = self.contributing_targets(q).await?;
        let stored = self
            .store
            .list_assignments(&AssignmentFilter {
                actors,
                targets,
                role_id: None,
                inherited: None,
            })
            .await?;

        let mut rows: Vec<RoleAssignment> = Vec::new();
        if !q.effective {
            for a in stored {
                rows.push(RoleAssignment {
                    actor: a.actor.clone(),
                    target: a.target.clone(),
                    role_id: a.role_id.clone(),
                    inherited_to_projects: a.inherited,
                    source: a,
                    via_group: None,
                    prior_role_id: None,
                });
            }
        } else {
            // 2. Inherited assignments become assignments on the projects they reach.
            let mut expanded: Vec<RoleAssignment> = Vec::new();
            for a in stored {
                if a.inherited {
                    let projects = match &a.target {
                        Target::Domain(d) => {
                            self.store
                                .list_projects(&ProjectFilter {
                                    domain_id: Some(d.clone()),
                                    ..Default::default()
                                })
                                .await?
                        }
                        Target::Project(p) => self.resource().project_subtree(p).await?,
                        Target::System => vec![],
                    };
                    for p in projects {
                        expanded.push(RoleAssignment {
                            actor: a.actor.clone(),
                            target: Target::Project(p.id),
                            role_id: a.role_id.clone(),
                            // Keystone keeps the marker on rows an inheritance produced.
                            inherited_to_projects: true,
                            source: a.clone(),
                            via_group: None,
                            prior_role_id: None,
                        });
                    }
                } else {
                    expanded.push(RoleAssignment {
                        actor: a.actor.clone(),
                        target: a.target.clone(),
                        role_id: a.role_id.clone(),
                        inherited_to_projects: false,
                        source: a,
                        via_group: None,
                        prior_role_id: None,
                    });
                }
            }
            // 3. Group rows become one row per member.
            for row in expanded {
                match &row.actor {
                    Actor::Group(g) => {
                        let members = self.identity().member_ids(g).await?;
                        for u in members {
                            if q.user_id.as_ref().is_some_and(|want| *want != u) {
                                continue;
                            }
                            rows.push(RoleAssignment {
                                actor: Actor::User(u),
                                via_group: Some(g.clone()),
                                ..row.clone()
                            });
                        }
                    }
                    Actor::User(_) => rows.push(row),
                }
            }
            // 4. Implied roles add rows of their own.
            let rules = self.store.list_implied_roles().await?;
            if !rules.is_empty() {
                let mut with_implied = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut stack = vec![row.role_id.clone()];
                    let mut seen: HashSet<String> = HashSet::new();
                    while let Some(prior) = stack.pop() {
                        for r in rules.iter().filter(|r| r.prior_role_id == prior) {
                            if seen.insert(r.implied_role_id.clone()) {
                                with_implied.push(RoleAssignment {
                                    role_id: r.implied_role_id.clone(),
                                    prior_role_id: Some(prior.clone()),
                                    ..row.clone()
                                });
                                stack.push(r.implied_role_id.clone());
                            }
                        }
                    }
                    with_implied.push(row);
                }
                rows = with_implied;
            }
        }

        // 5. Domain-specific roles never show as effective; only what they imply does.
        if q.effective {
            let mut domain_specific: HashSet<String> = HashSet::new();
            let mut checked: HashSet<String> = HashSet::new();
            for r in &rows {
                if checked.insert(r.role_id.clone()) {
                    if let Some(role) = self.store.get_role(&r.role_id).await? {
                        if role.domain_id.is_some() {
                            domain_specific.insert(role.id);
                        }
                    }
                }
            }
            rows.retain(|r| !domain_specific.contains(&r.role_id));
        }

        // 6. The remaining filters apply to the rows as they now stand.
        let subtree: Option<HashSet<String>> = match (&q.project_id, q.include_subtree) {
            (Some(p), true) => {
                let mut ids: HashSet<String> = self
                    .resource()
                    .project_subtree(p)
                    .await?
                    .into_iter()
                    .map(|p| p.id)
                    .collect();
                ids.insert(p.clone());
                Some(ids)
            }
            _ => None,
        };
        rows.retain(|r| {
            if let Some(role) = &q.role_id {
                if &r.role_id != role {
                    return false;
                }
            }
            if let Some(u) = &q.user_id {
                if r.actor != Actor::User(u.clone()) {
                    return false;
                }
            }
            // Only rows that come from an inherited assignment.
            if q.inherited && !r.source.inherited {
                return false;
            }
            if let Some(p) = &q.project_id {
                match (&r.target, &subtree) {
                    (Target::Project(t), Some(ids)) => {
                        if !ids.contains(t) {
                            return false;
                        }
                    }
                    (Target::Project(t), None) => {
                        if t != p {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
            if let Some(d) = &q.domain_id {
                if r.target != Target::Domain(d.clone()) {
                    return false;
                }
            }
            if q.system && r.target != Target::System {
                return false;
            }
            true
        });
        rows.sort();
        rows.dedup_by(|a, b| {
            a.actor == b.actor
                && a.target == b.target
                && a.role_id == b.role_id
                && a.inherited_to_projects == b.inherited_to_projects
                && q.effective
        });
        Ok(rows)
    }
}

fn assignment_not_found(a: &Assignment) -> CoreError {
    let target = match &a.target {
        Target::Project(p) => p.clone(),
        Target::Domain(d) => d.clone(),
        Target::System => "system".into(),
    };
    CoreError::NotFoundMessage(format!(
        "Could not find role assignment with role: {}, user or group: {}, project, domain, or system: {}.",
        a.role_id,
        a.actor.id(),
        target
    ))
}

/// Adds every role implied (transitively) by the given ones.
pub fn expand_implied(rules: &[ImpliedRole], roles: BTreeSet<String>) -> BTreeSet<String> {
    let mut out = roles.clone();
    let mut stack: Vec<String> = roles.into_iter().collect();
    while let Some(r) = stack.pop() {
        for rule in rules.iter().filter(|x| x.prior_role_id == r) {
            if out.insert(rule.implied_role_id.clone()) {
                stack.push(rule.implied_role_id.clone());
            }
        }
    }
    out
}
