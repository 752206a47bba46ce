//! Domains and projects: the resource tree.

pub mod domain_config;
pub mod limits;

use crate::authz::Authorized;
use crate::error::{CoreError, CoreResult};
use crate::model::{Domain, Extra, Project, RevocationEvent};
use crate::service::Limen;
use crate::store::{DomainFilter, ProjectFilter};

/// Keystone's `[DEFAULT] max_project_tree_depth`.
pub const MAX_PROJECT_TREE_DEPTH: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct NewDomain {
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct DomainPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub options: Option<Extra>,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub options: Option<Extra>,
    pub extra: Extra,
}

/// Merges free-form attributes; a `null` is stored as `null`, as Keystone does.
pub fn merge_extra(target: &mut Extra, patch: Extra) {
    for (k, v) in patch {
        target.insert(k, v);
    }
}

/// Keystone's options merge: a `null` value unsets the option.
pub fn merge_options(target: &mut Extra, patch: Option<Extra>) {
    for (k, v) in patch.unwrap_or_default() {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

/// The resource area's services: domains, projects and their tags, domain configurations, limits (`limen.resource()`).
#[derive(Clone, Copy)]
pub struct ResourceService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn resource(&self) -> ResourceService<'_> {
        ResourceService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for ResourceService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl ResourceService<'_> {
    // ---- domains ----

    pub async fn create_domain(&self, authz: &Authorized, input: NewDomain) -> CoreResult<Domain> {
        authz.require(&["identity:create_domain", "identity:create_project"])?;
        self.add_domain(input).await
    }

    /// A domain made as part of another write (an identity provider's own domain).
    pub(crate) async fn add_domain(&self, input: NewDomain) -> CoreResult<Domain> {
        if self.store.get_domain_by_name(&input.name).await?.is_some() {
            return Err(CoreError::conflict(
                "domain",
                format!("Duplicate entry found with name {}", input.name),
            ));
        }
        let domain = Domain {
            id: input.id.unwrap_or_else(|| self.new_id()),
            name: input.name,
            description: input.description,
            enabled: input.enabled,
            tags: dedup_tags(input.tags),
            options: input.options,
            extra: input.extra,
        };
        self.store
            .create_domain(&domain)
            .await
            .map_err(|e| conflict_as("domain", &domain.name, &domain.id, e))?;
        Ok(domain)
    }

    pub async fn get_domain(&self, id: &str) -> CoreResult<Domain> {
        self.store
            .get_domain(id)
            .await?
            .ok_or_else(|| CoreError::not_found("domain", id))
    }

    /// The domain, or `None` where [`Self::get_domain`] would answer 404.
    pub async fn find_domain(&self, id: &str) -> CoreResult<Option<Domain>> {
        Ok(self.store.get_domain(id).await?)
    }

    /// Whether domain `id` exists and is enabled: what its users, OAuth clients and
    /// clusters need to act.
    pub async fn domain_enabled(&self, id: &str) -> CoreResult<bool> {
        Ok(self.store.get_domain(id).await?.is_some_and(|d| d.enabled))
    }

    pub async fn get_domain_by_name(&self, name: &str) -> CoreResult<Domain> {
        self.store
            .get_domain_by_name(name)
            .await?
            .ok_or_else(|| CoreError::not_found("domain", name))
    }

    pub async fn list_domains(&self, filter: &DomainFilter) -> CoreResult<Vec<Domain>> {
        Ok(self.store.list_domains(filter).await?)
    }

    pub async fn update_domain(
        &self,
        authz: &Authorized,
        id: &str,
        patch: DomainPatch,
    ) -> CoreResult<Domain> {
        authz.require_on(
            &["identity:update_domain", "identity:update_project"],
            &["domain", "project"],
            id,
        )?;
        let mut domain = self.get_domain(id).await?;
        let was_enabled = domain.enabled;
        if let Some(name) = patch.name {
            if name != domain.name {
                if self.store.get_domain_by_name(&name).await?.is_some() {
                    return Err(CoreError::conflict(
                        "domain",
                        format!("Duplicate entry found with name {name}"),
                    ));
                }
                domain.name = name;
            }
        }
        if let Some(d) = patch.description {
            domain.description = d;
        }
        if let Some(e) = patch.enabled {
            domain.enabled = e;
        }
        if let Some(t) = patch.tags {
            domain.tags = dedup_tags(t);
        }
        merge_options(&mut domain.options, patch.options);
        merge_extra(&mut domain.extra, patch.extra);
        self.store
            .update_domain(&domain)
            .await
            .map_err(|e| conflict_as("domain", &domain.name, &domain.id, e))?;
        if was_enabled && !domain.enabled {
            let mut ev = RevocationEvent::at(self.clock.now());
            ev.domain_id = Some(domain.id.clone());
            self.store.add_revocation_event(&ev).await?;
        }
        Ok(domain)
    }

    pub async fn delete_domain(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require_on(
            &["identity:delete_domain", "identity:delete_project"],
            &["domain", "project"],
            id,
        )?;
        let domain = self.get_domain(id).await?;
        if domain.enabled {
            return Err(CoreError::forbidden(
                "Cannot delete a domain that is enabled, please disable it first.",
            ));
        }
        // The domain and everything of it go together, or nothing does.
        self.in_unit(async |unit| {
            // Documents keyed by the domain's projects go with them.
            let projects = unit
                .store
                .list_projects(&ProjectFilter {
                    domain_id: Some(id.to_string()),
                    ..Default::default()
                })
                .await?;
            unit.store.delete_domain(id).await?;
            for p in projects {
                unit.catalog().forget_project_endpoints(&p.id).await?;
                unit.resource().forget_limits_of(&p.id).await?;
            }
            unit.resource().forget_limits_of(id).await?;
            unit.doc_delete(crate::documents::DocumentKind::DomainConfig, id)
                .await?;
            unit.federation().forget_identity_providers_of(id).await?;
            unit.oauth().forget_oauth_clients_of(id).await?;
            unit.kubernetes().forget_clusters_of(id).await?;
            let mut ev = RevocationEvent::at(unit.clock.now());
            ev.domain_id = Some(domain.id);
            unit.store.add_revocation_event(&ev).await?;
            Ok(())
        })
        .await
    }

    // ---- projects ----

    pub async fn create_project(
        &self,
        authz: &Authorized,
        input: NewProject,
    ) -> CoreResult<Project> {
        authz.require(&["identity:create_project"])?;
        let domain = self
            .store
            .get_domain(&input.domain_id)
            .await?
            .ok_or_else(|| {
                CoreError::validation(format!("Could not find domain: {}.", input.domain_id))
            })?;
        let parent_id = match input.parent_id {
            Some(pid) if pid != domain.id => {
                let parent = self.store.get_project(&pid).await?.ok_or_else(|| {
                    CoreError::validation(format!("Could not find project: {pid}."))
                })?;
                if parent.domain_id != domain.id {
                    return Err(CoreError::validation(
                        "Cannot create project, the parent project is in a different domain.",
                    ));
                }
                let depth = self.project_ancestors(&parent).await?.len() + 2;
                if depth > MAX_PROJECT_TREE_DEPTH {
                    return Err(CoreError::forbidden(format!(
                        "Max hierarchy depth reached for {} branch.",
                        parent.id
                    )));
                }
                parent.id
            }
            _ => domain.id.clone(),
        };
        if self
            .store
            .get_project_by_name(&domain.id, &input.name)
            .await?
            .is_some()
        {
            return Err(CoreError::conflict(
                "project",
                format!("Duplicate entry found with name {}", input.name),
            ));
        }
        let project = Project {
            id: self.new_id(),
            name: input.name,
            domain_id: domain.id,
            parent_id,
            description: input.description,
            enabled: input.enabled,
            tags: dedup_tags(input.tags),
            options: input.options,
            extra: input.extra,
        };
        self.store
            .create_project(&project)
            .await
            .map_err(|e| conflict_as("project", &project.name, &project.id, e))?;
        Ok(project)
    }

    pub async fn get_project(&self, id: &str) -> CoreResult<Project> {
        self.store
            .get_project(id)
            .await?
            .ok_or_else(|| CoreError::not_found("project", id))
    }

    /// The project, or `None` where [`Self::get_project`] would answer 404.
    pub async fn find_project(&self, id: &str) -> CoreResult<Option<Project>> {
        Ok(self.store.get_project(id).await?)
    }

    pub async fn get_project_by_name(&self, domain_id: &str, name: &str) -> CoreResult<Project> {
        self.store
            .get_project_by_name(domain_id, name)
            .await?
            .ok_or_else(|| CoreError::not_found("project", name))
    }

    pub async fn list_projects(&self, filter: &ProjectFilter) -> CoreResult<Vec<Project>> {
        Ok(self.store.list_projects(filter).await?)
    }

    /// The chain of parent projects, nearest first (the domain is not included).
    pub async fn project_ancestors(&self, project: &Project) -> CoreResult<Vec<Project>> {
        let mut out = Vec::new();
        let mut parent_id = project.parent_id.clone();
        while parent_id != project.domain_id {
            // A loop guard: the tree is never deeper than the limit, a corrupt chain stops.
            if out.len() > MAX_PROJECT_TREE_DEPTH * 4 {
                break;
            }
            match self.store.get_project(&parent_id).await? {
                Some(p) => {
                    parent_id = p.parent_id.clone();
                    out.push(p);
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Every project below `project_id`, breadth first.
    pub async fn project_subtree(&self, project_id: &str) -> CoreResult<Vec<Project>> {
        let mut out: Vec<Project> = Vec::new();
        let mut frontier = vec![project_id.to_string()];
        while let Some(pid) = frontier.pop() {
            let children = self
                .store
                .list_projects(&ProjectFilter {
                    parent_id: Some(pid),
                    ..Default::default()
                })
                .await?;
            for c in children {
                frontier.push(c.id.clone());
                out.push(c);
            }
            if out.len() > 100_000 {
                break;
            }
        }
        Ok(out)
    }

    pub async fn update_project(
        &self,
        authz: &Authorized,
        id: &str,
        patch: ProjectPatch,
    ) -> CoreResult<Project> {
        authz.require_on(&["identity:update_project"], &["project"], id)?;
        let mut project = self.get_project(id).await?;
        let was_enabled = project.enabled;
        if let Some(name) = patch.name {
            if name != project.name {
                if self
                    .store
                    .get_project_by_name(&project.domain_id, &name)
                    .await?
                    .is_some()
                {
                    return Err(CoreError::conflict(
                        "project",
                        format!("Duplicate entry found with name {name}"),
                    ));
                }
                project.name = name;
            }
        }
        if let Some(d) = patch.description {
            project.description = d;
        }
        if let Some(e) = patch.enabled {
            if e && !was_enabled {
                for a in self.project_ancestors(&project).await? {
                    if !a.enabled {
                        return Err(CoreError::forbidden(format!(
                            "Cannot enable project {} since it has disabled parents",
                            project.id
                        )));
                    }
                }
            }
            if !e && was_enabled {
                let subtree = self.project_subtree(&project.id).await?;
                if subtree.iter().any(|p| p.enabled) {
                    return Err(CoreError::forbidden(format!(
                        "Cannot disable project {} since its subtree contains enabled projects.",
                        project.id
                    )));
                }
            }
            project.enabled = e;
        }
        if let Some(tags) = patch.tags {
            project.tags = dedup_tags(tags);
        }
        merge_options(&mut project.options, patch.options);
        merge_extra(&mut project.extra, patch.extra);
        self.store
            .update_project(&project)
            .await
            .map_err(|e| conflict_as("project", &project.name, &project.id, e))?;
        if was_enabled && !project.enabled {
            let mut ev = RevocationEvent::at(self.clock.now());
            ev.project_id = Some(project.id.clone());
            self.store.add_revocation_event(&ev).await?;
        }
        Ok(project)
    }

    /// Deletes a project; with `cascade` its whole (disabled) subtree goes too.
    pub async fn delete_project(
        &self,
        authz: &Authorized,
        id: &str,
        cascade: bool,
    ) -> CoreResult<()> {
        authz.require_on(&["identity:delete_project"], &["project"], id)?;
        let project = self.get_project(id).await?;
        let subtree = self.project_subtree(id).await?;
        if !subtree.is_empty() {
            if !cascade {
                return Err(CoreError::forbidden(format!(
                    "Cannot delete the project {id} since it is not a leaf in the hierarchy. \
                     Use the cascade option if you want to delete a whole subtree."
                )));
            }
            if let Some(enabled) = subtree.iter().find(|p| p.enabled) {
                return Err(CoreError::forbidden(format!(
                    "Cannot delete project {} since its child {} is enabled.",
                    id, enabled.id
                )));
            }
        }
        // The subtree goes as one.
        self.in_unit(async |unit| {
            // Leaves first, so no parent is ever removed before its children.
            for p in subtree.iter().rev() {
                unit.store.delete_project(&p.id).await?;
                unit.resource().revoke_project(&p.id).await?;
            }
            unit.store.delete_project(&project.id).await?;
            unit.resource().revoke_project(&project.id).await?;
            Ok(())
        })
        .await
    }

    async fn revoke_project(&self, project_id: &str) -> CoreResult<()> {
        self.catalog().forget_project_endpoints(project_id).await?;
        self.forget_limits_of(project_id).await?;
        let mut ev = RevocationEvent::at(self.clock.now());
        ev.project_id = Some(project_id.to_string());
        self.store.add_revocation_event(&ev).await?;
        Ok(())
    }

    // ---- project tags ----

    pub async fn add_project_tag(
        &self,
        authz: &Authorized,
        project_id: &str,
        tag: &str,
    ) -> CoreResult<Project> {
        authz.require(&["identity:create_project_tag"])?;
        let mut p = self.get_project(project_id).await?;
        if !p.tags.iter().any(|t| t == tag) {
            if p.tags.len() >= MAX_PROJECT_TAGS {
                return Err(CoreError::validation(format!(
                    "The number of tags is limited to {MAX_PROJECT_TAGS}."
                )));
            }
            p.tags.push(tag.to_string());
            self.store.update_project(&p).await?;
        }
        Ok(p)
    }

    pub async fn remove_project_tag(
        &self,
        authz: &Authorized,
        project_id: &str,
        tag: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_project_tag"])?;
        let mut p = self.get_project(project_id).await?;
        let before = p.tags.len();
        p.tags.retain(|t| t != tag);
        if p.tags.len() == before {
            return Err(CoreError::NotFoundMessage(format!("Tag {tag} not found")));
        }
        self.store.update_project(&p).await?;
        Ok(())
    }

    pub async fn set_project_tags(
        &self,
        authz: &Authorized,
        project_id: &str,
        tags: Vec<String>,
    ) -> CoreResult<Project> {
        authz.require(&[
            "identity:update_project_tags",
            "identity:delete_project_tags",
        ])?;
        let mut p = self.get_project(project_id).await?;
        p.tags = dedup_tags(tags);
        self.store.update_project(&p).await?;
        Ok(p)
    }
}

/// Keystone's limit on tags per project.
pub const MAX_PROJECT_TAGS: usize = 80;

fn dedup_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A uniqueness violation the store caught (a race with a concurrent create, or an id
/// chosen by the caller that is taken) becomes the 409 Keystone gives, naming what
/// collided: the id or the name.
pub(crate) fn conflict_as(
    kind: &'static str,
    name: &str,
    id: &str,
    e: crate::error::StoreError,
) -> CoreError {
    match e {
        crate::error::StoreError::Duplicate {
            primary_key: true, ..
        } => CoreError::conflict(kind, format!("Duplicate entry found with ID {id}")),
        crate::error::StoreError::Duplicate { .. } => {
            CoreError::conflict(kind, format!("Duplicate entry found with name {name}"))
        }
        other => other.into(),
    }
}
