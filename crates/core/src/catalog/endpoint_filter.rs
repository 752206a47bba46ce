//! `OS-EP-FILTER`: endpoint groups and project–endpoint associations. A project with
//! associations sees only those endpoints in its tokens' catalogs (as Keystone's catalog
//! does); a project without any sees every endpoint.

use crate::authz::Authorized;
use crate::catalog::CatalogService;
use crate::documents::DocumentKind;
use crate::error::{CoreError, CoreResult};
use crate::model::{Endpoint, Extra, Interface, Project};
use crate::store::{EndpointFilter, ProjectFilter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const GROUP: DocumentKind = DocumentKind::EndpointGroup;
const GROUP_PROJECT: DocumentKind = DocumentKind::ProjectEndpointGroup;
const PROJECT_ENDPOINT: DocumentKind = DocumentKind::ProjectEndpoint;
/// The documents a project's catalog depends on.
pub(crate) const CATALOG_DOCUMENTS: [DocumentKind; 3] = [GROUP, GROUP_PROJECT, PROJECT_ENDPOINT];

/// The attributes an endpoint group may filter on.
pub const FILTER_KEYS: &[&str] = &["service_id", "region_id", "interface"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub filters: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GroupProject {
    endpoint_group_id: String,
    project_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProjectEndpoint {
    project_id: String,
    endpoint_id: String,
}

fn pair(a: &str, b: &str) -> String {
    format!("{a}:{b}")
}

/// Checks filter keys and values.
pub fn validate_filters(filters: &Extra) -> CoreResult<()> {
    if filters.is_empty() {
        return Err(CoreError::validation(
            "filters field is required and cannot be empty",
        ));
    }
    for (k, v) in filters {
        if !FILTER_KEYS.contains(&k.as_str()) {
            return Err(CoreError::validation(
                "Expecting to find service_id or region_id or interface in endpoint_group. The \
                 server could not comply with the request since it is either malformed or \
                 otherwise incorrect. The client is assumed to be in error.",
            ));
        }
        let Some(s) = v.as_str() else {
            return Err(CoreError::validation(format!(
                "Invalid input for field/attribute {k}: not a string"
            )));
        };
        if k == "interface" && Interface::parse(s).is_none() {
            return Err(CoreError::validation(format!(
                "Invalid input for field/attribute interface. Value: {s}. '{s}' is not one of ['admin', 'internal', 'public']"
            )));
        }
    }
    Ok(())
}

fn matches(e: &Endpoint, filters: &Extra) -> bool {
    filters.iter().all(|(k, v)| {
        let v = v.as_str().unwrap_or("");
        match k.as_str() {
            "service_id" => e.service_id == v,
            "region_id" => e.region_id.as_deref() == Some(v),
            "interface" => e.interface.as_str() == v,
            _ => false,
        }
    })
}

impl CatalogService<'_> {
    pub async fn create_endpoint_group(
        &self,
        authz: &Authorized,
        name: String,
        description: Option<String>,
        filters: Extra,
    ) -> CoreResult<EndpointGroup> {
        authz.require(&["identity:create_endpoint_group"])?;
        validate_filters(&filters)?;
        let g = EndpointGroup {
            id: self.new_id(),
            name,
            description,
            filters,
        };
        self.doc_put(GROUP, &g.id, &g, true).await?;
        Ok(g)
    }

    pub async fn get_endpoint_group(&self, id: &str) -> CoreResult<EndpointGroup> {
        self.doc_get(GROUP, id)
            .await?
            .ok_or_else(|| CoreError::not_found("Endpoint Group", id))
    }

    pub async fn list_endpoint_groups(&self, name: Option<&str>) -> CoreResult<Vec<EndpointGroup>> {
        let mut all: Vec<EndpointGroup> = self.doc_list(GROUP).await?;
        if let Some(n) = name {
            all.retain(|g| g.name == n);
        }
        Ok(all)
    }

    pub async fn update_endpoint_group(
        &self,
        authz: &Authorized,
        id: &str,
        name: Option<String>,
        description: Option<Option<String>>,
        filters: Option<Extra>,
    ) -> CoreResult<EndpointGroup> {
        authz.require(&["identity:update_endpoint_group"])?;
        let mut g = self.get_endpoint_group(id).await?;
        if let Some(n) = name {
            g.name = n;
        }
        if let Some(d) = description {
            g.description = d;
        }
        if let Some(f) = filters {
            validate_filters(&f)?;
            g.filters = f;
        }
        self.doc_put(GROUP, id, &g, false).await?;
        Ok(g)
    }

    pub async fn delete_endpoint_group(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_endpoint_group"])?;
        // The group goes with its project associations.
        self.in_unit(async |unit| {
            if !unit.doc_delete(GROUP, id).await? {
                return Err(CoreError::not_found("Endpoint Group", id));
            }
            for a in unit.doc_list::<GroupProject>(GROUP_PROJECT).await? {
                if a.endpoint_group_id == id {
                    unit.doc_delete(GROUP_PROJECT, &pair(id, &a.project_id))
                        .await?;
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn endpoints_in_group(&self, id: &str) -> CoreResult<Vec<Endpoint>> {
        let g = self.get_endpoint_group(id).await?;
        let all = self.list_endpoints(&EndpointFilter::default()).await?;
        Ok(all.into_iter().filter(|e| matches(e, &g.filters)).collect())
    }

    pub async fn add_endpoint_group_to_project(
        &self,
        authz: &Authorized,
        group_id: &str,
        project_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:add_endpoint_group_to_project"])?;
        self.get_endpoint_group(group_id).await?;
        self.resource().get_project(project_id).await?;
        let a = GroupProject {
            endpoint_group_id: group_id.into(),
            project_id: project_id.into(),
        };
        self.doc_put(GROUP_PROJECT, &pair(group_id, project_id), &a, true)
            .await
    }

    pub async fn check_endpoint_group_in_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> CoreResult<()> {
        self.get_endpoint_group(group_id).await?;
        self.resource().get_project(project_id).await?;
        match self
            .doc_get::<GroupProject>(GROUP_PROJECT, &pair(group_id, project_id))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(CoreError::NotFoundMessage(
                "Endpoint Group Project Association not found".into(),
            )),
        }
    }

    pub async fn remove_endpoint_group_from_project(
        &self,
        authz: &Authorized,
        group_id: &str,
        project_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:remove_endpoint_group_from_project"])?;
        self.check_endpoint_group_in_project(group_id, project_id)
            .await?;
        self.doc_delete(GROUP_PROJECT, &pair(group_id, project_id))
            .await?;
        Ok(())
    }

    pub async fn projects_of_endpoint_group(&self, group_id: &str) -> CoreResult<Vec<Project>> {
        self.get_endpoint_group(group_id).await?;
        let ids: Vec<String> = self
            .doc_list::<GroupProject>(GROUP_PROJECT)
            .await?
            .into_iter()
            .filter(|a| a.endpoint_group_id == group_id)
            .map(|a| a.project_id)
            .collect();
        self.projects_by_ids(ids).await
    }

    pub async fn endpoint_groups_of_project(
        &self,
        project_id: &str,
    ) -> CoreResult<Vec<EndpointGroup>> {
        self.resource().get_project(project_id).await?;
        let mut out = Vec::new();
        for a in self.doc_list::<GroupProject>(GROUP_PROJECT).await? {
            if a.project_id == project_id {
                if let Some(g) = self
                    .doc_get::<EndpointGroup>(GROUP, &a.endpoint_group_id)
                    .await?
                {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    async fn projects_by_ids(&self, ids: Vec<String>) -> CoreResult<Vec<Project>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(self
            .store
            .list_projects(&ProjectFilter {
                ids: Some(ids),
                ..Default::default()
            })
            .await?)
    }

    pub async fn add_endpoint_to_project(
        &self,
        authz: &Authorized,
        project_id: &str,
        endpoint_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:add_endpoint_to_project"])?;
        self.resource().get_project(project_id).await?;
        self.get_endpoint(endpoint_id).await?;
        let a = ProjectEndpoint {
            project_id: project_id.into(),
            endpoint_id: endpoint_id.into(),
        };
        self.doc_put(PROJECT_ENDPOINT, &pair(project_id, endpoint_id), &a, false)
            .await
    }

    pub async fn check_endpoint_in_project(
        &self,
        project_id: &str,
        endpoint_id: &str,
    ) -> CoreResult<()> {
        self.resource().get_project(project_id).await?;
        self.get_endpoint(endpoint_id).await?;
        match self
            .doc_get::<ProjectEndpoint>(PROJECT_ENDPOINT, &pair(project_id, endpoint_id))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(CoreError::NotFoundMessage(format!(
                "Endpoint {endpoint_id} not found in project {project_id}"
            ))),
        }
    }

    pub async fn remove_endpoint_from_project(
        &self,
        authz: &Authorized,
        project_id: &str,
        endpoint_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:remove_endpoint_from_project"])?;
        self.check_endpoint_in_project(project_id, endpoint_id)
            .await?;
        self.doc_delete(PROJECT_ENDPOINT, &pair(project_id, endpoint_id))
            .await?;
        Ok(())
    }

    pub async fn projects_of_endpoint(&self, endpoint_id: &str) -> CoreResult<Vec<Project>> {
        self.get_endpoint(endpoint_id).await?;
        let ids: Vec<String> = self
            .doc_list::<ProjectEndpoint>(PROJECT_ENDPOINT)
            .await?
            .into_iter()
            .filter(|a| a.endpoint_id == endpoint_id)
            .map(|a| a.project_id)
            .collect();
        self.projects_by_ids(ids).await
    }

    /// Endpoints associated with a project, directly or through endpoint groups; `None`
    /// when the project has no association at all (it then sees every endpoint).
    pub async fn filtered_endpoint_ids(
        &self,
        project_id: &str,
    ) -> CoreResult<Option<BTreeSet<String>>> {
        let direct: Vec<ProjectEndpoint> = self
            .doc_list::<ProjectEndpoint>(PROJECT_ENDPOINT)
            .await?
            .into_iter()
            .filter(|a| a.project_id == project_id)
            .collect();
        let groups = self
            .endpoint_groups_of_project(project_id)
            .await
            .unwrap_or_default();
        if direct.is_empty() && groups.is_empty() {
            return Ok(None);
        }
        let mut ids: BTreeSet<String> = direct.into_iter().map(|a| a.endpoint_id).collect();
        if !groups.is_empty() {
            for e in self.list_endpoints(&EndpointFilter::default()).await? {
                if groups.iter().any(|g| matches(&e, &g.filters)) {
                    ids.insert(e.id);
                }
            }
        }
        Ok(Some(ids))
    }

    /// Drops a deleted project's endpoint associations.
    pub(crate) async fn forget_project_endpoints(&self, project_id: &str) -> CoreResult<()> {
        for a in self.doc_list::<ProjectEndpoint>(PROJECT_ENDPOINT).await? {
            if a.project_id == project_id {
                self.doc_delete(PROJECT_ENDPOINT, &pair(project_id, &a.endpoint_id))
                    .await?;
            }
        }
        for a in self.doc_list::<GroupProject>(GROUP_PROJECT).await? {
            if a.project_id == project_id {
                self.doc_delete(GROUP_PROJECT, &pair(&a.endpoint_group_id, project_id))
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn endpoints_for_project(&self, project_id: &str) -> CoreResult<Vec<Endpoint>> {
        self.resource().get_project(project_id).await?;
        let ids = self
            .filtered_endpoint_ids(project_id)
            .await?
            .unwrap_or_default();
        let all = self.list_endpoints(&EndpointFilter::default()).await?;
        Ok(all.into_iter().filter(|e| ids.contains(&e.id)).collect())
    }
}
