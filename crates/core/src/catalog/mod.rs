//! Regions, services, endpoints, and the service catalog tokens carry.

pub mod endpoint_filter;
pub mod policies;

use crate::authz::Authorized;
use crate::error::{CoreError, CoreResult};
use crate::model::{Endpoint, Extra, Interface, Region, Service};
use crate::resource::{conflict_as, merge_extra};
use crate::service::Limen;
use crate::store::EndpointFilter;
use crate::token::validation_cache::Dependency;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct NewRegion {
    pub id: Option<String>,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct RegionPatch {
    pub description: Option<String>,
    /// `Some(None)` detaches the region from its parent.
    pub parent_region_id: Option<Option<String>>,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct NewService {
    pub service_type: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub service_type: Option<String>,
    pub enabled: Option<bool>,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub service_id: String,
    pub region_id: Option<String>,
    pub interface: Interface,
    pub url: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub service_id: Option<String>,
    pub region_id: Option<Option<String>>,
    pub interface: Option<Interface>,
    pub url: Option<String>,
    pub enabled: Option<bool>,
    pub extra: Extra,
}

/// One service of a token's catalog with its usable endpoints.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub service: Service,
    pub endpoints: Vec<Endpoint>,
}

fn expecting_endpoint(what: &str) -> CoreError {
    CoreError::validation(format!(
        "Expecting to find endpoint {what}. The server could not comply with the request since \
         it is either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

/// The catalog's services: regions, services, endpoints, endpoint filters and endpoint policies (`limen.catalog()`).
#[derive(Clone, Copy)]
pub struct CatalogService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn catalog(&self) -> CatalogService<'_> {
        CatalogService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for CatalogService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl CatalogService<'_> {
    // ---- regions ----

    pub async fn create_region(&self, authz: &Authorized, input: NewRegion) -> CoreResult<Region> {
        // The legacy `region` of an endpoint, created or updated, makes the region on the fly.
        authz.require(&[
            "identity:create_region",
            "identity:create_endpoint",
            "identity:update_endpoint",
        ])?;
        let id = input.id.unwrap_or_else(|| self.new_id());
        if self.store.get_region(&id).await?.is_some() {
            return Err(CoreError::conflict(
                "region",
                format!("Duplicate ID, {id}."),
            ));
        }
        if let Some(parent) = &input.parent_region_id {
            if parent == &id {
                return Err(CoreError::validation(format!(
                    "Circular reference or a repeated entry found in region tree - {id}."
                )));
            }
            self.store
                .get_region(parent)
                .await?
                .ok_or_else(|| CoreError::not_found("region", parent))?;
        }
        let region = Region {
            id,
            description: input.description,
            parent_region_id: input.parent_region_id,
            extra: input.extra,
        };
        self.store
            .create_region(&region)
            .await
            .map_err(|e| conflict_as("region", &region.id, &region.id, e))?;
        Ok(region)
    }

    pub async fn get_region(&self, id: &str) -> CoreResult<Region> {
        self.store
            .get_region(id)
            .await?
            .ok_or_else(|| CoreError::not_found("region", id))
    }

    /// The region, or `None` where [`Self::get_region`] would answer 404.
    pub async fn find_region(&self, id: &str) -> CoreResult<Option<Region>> {
        Ok(self.store.get_region(id).await?)
    }

    pub async fn list_regions(&self, parent: Option<&str>) -> CoreResult<Vec<Region>> {
        Ok(self.store.list_regions(parent).await?)
    }

    pub async fn update_region(
        &self,
        authz: &Authorized,
        id: &str,
        patch: RegionPatch,
    ) -> CoreResult<Region> {
        authz.require(&["identity:update_region"])?;
        let mut region = self.get_region(id).await?;
        if let Some(d) = patch.description {
            region.description = d;
        }
        if let Some(parent) = patch.parent_region_id {
            if let Some(p) = &parent {
                self.store
                    .get_region(p)
                    .await?
                    .ok_or_else(|| CoreError::validation(format!("Could not find region: {p}.")))?;
                // Walk up from the new parent; meeting this region would close a loop.
                let mut cursor = Some(p.clone());
                let mut steps = 0;
                while let Some(c) = cursor {
                    if c == region.id || steps > 1000 {
                        return Err(CoreError::validation(format!(
                            "The specified parent region {} would create a circular region hierarchy.",
                            region.id
                        )));
                    }
                    steps += 1;
                    cursor = self
                        .store
                        .get_region(&c)
                        .await?
                        .and_then(|r| r.parent_region_id);
                }
            }
            region.parent_region_id = parent;
        }
        merge_extra(&mut region.extra, patch.extra);
        self.store.update_region(&region).await?;
        Ok(region)
    }

    pub async fn delete_region(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_region"])?;
        self.get_region(id).await?;
        let children = self.store.list_regions(Some(id)).await?;
        if !children.is_empty() {
            return Err(CoreError::forbidden(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            )));
        }
        let endpoints = self
            .store
            .list_endpoints(&EndpointFilter {
                region_id: Some(id.to_string()),
                ..Default::default()
            })
            .await?;
        if !endpoints.is_empty() {
            return Err(CoreError::forbidden(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            )));
        }
        self.store.delete_region(id).await?;
        Ok(())
    }

    // ---- services ----

    pub async fn create_service(
        &self,
        authz: &Authorized,
        input: NewService,
    ) -> CoreResult<Service> {
        authz.require(&["identity:create_service"])?;
        let service = Service {
            id: self.new_id(),
            service_type: input.service_type,
            enabled: input.enabled,
            extra: input.extra,
        };
        self.store.create_service(&service).await?;
        Ok(service)
    }

    pub async fn get_service(&self, id: &str) -> CoreResult<Service> {
        self.store
            .get_service(id)
            .await?
            .ok_or_else(|| CoreError::not_found("service", id))
    }

    pub async fn list_services(&self) -> CoreResult<Vec<Service>> {
        Ok(self.store.list_services().await?)
    }

    pub async fn update_service(
        &self,
        authz: &Authorized,
        id: &str,
        patch: ServicePatch,
    ) -> CoreResult<Service> {
        authz.require(&["identity:update_service"])?;
        let mut s = self.get_service(id).await?;
        if let Some(t) = patch.service_type {
            s.service_type = t;
        }
        if let Some(e) = patch.enabled {
            s.enabled = e;
        }
        merge_extra(&mut s.extra, patch.extra);
        self.store.update_service(&s).await?;
        Ok(s)
    }

    pub async fn delete_service(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_service"])?;
        if !self.store.delete_service(id).await? {
            return Err(CoreError::not_found("service", id));
        }
        Ok(())
    }

    // ---- endpoints ----

    pub async fn create_endpoint(
        &self,
        authz: &Authorized,
        input: NewEndpoint,
    ) -> CoreResult<Endpoint> {
        authz.require(&["identity:create_endpoint"])?;
        if self.store.get_service(&input.service_id).await?.is_none() {
            return Err(expecting_endpoint("service_id in service table"));
        }
        if let Some(r) = &input.region_id {
            if self.store.get_region(r).await?.is_none() {
                return Err(expecting_endpoint("region_id in region table"));
            }
        }
        let e = Endpoint {
            id: self.new_id(),
            service_id: input.service_id,
            region_id: input.region_id,
            interface: input.interface,
            url: input.url,
            enabled: input.enabled,
            extra: input.extra,
        };
        self.store.create_endpoint(&e).await?;
        Ok(e)
    }

    pub async fn get_endpoint(&self, id: &str) -> CoreResult<Endpoint> {
        self.store
            .get_endpoint(id)
            .await?
            .ok_or_else(|| CoreError::not_found("endpoint", id))
    }

    pub async fn list_endpoints(&self, f: &EndpointFilter) -> CoreResult<Vec<Endpoint>> {
        Ok(self.store.list_endpoints(f).await?)
    }

    pub async fn update_endpoint(
        &self,
        authz: &Authorized,
        id: &str,
        patch: EndpointPatch,
    ) -> CoreResult<Endpoint> {
        authz.require(&["identity:update_endpoint"])?;
        let mut e = self.get_endpoint(id).await?;
        if let Some(s) = patch.service_id {
            if self.store.get_service(&s).await?.is_none() {
                return Err(expecting_endpoint("service_id in service table"));
            }
            e.service_id = s;
        }
        if let Some(r) = patch.region_id {
            if let Some(rid) = &r {
                if self.store.get_region(rid).await?.is_none() {
                    return Err(expecting_endpoint("region_id in region table"));
                }
            }
            e.region_id = r;
        }
        if let Some(i) = patch.interface {
            e.interface = i;
        }
        if let Some(u) = patch.url {
            e.url = u;
        }
        if let Some(en) = patch.enabled {
            e.enabled = en;
        }
        merge_extra(&mut e.extra, patch.extra);
        self.store.update_endpoint(&e).await?;
        Ok(e)
    }

    pub async fn delete_endpoint(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_endpoint"])?;
        if !self.store.delete_endpoint(id).await? {
            return Err(CoreError::not_found("endpoint", id));
        }
        Ok(())
    }

    /// The catalog a token shows: enabled services with their enabled endpoints,
    /// restricted to a project's endpoint associations where it has any. Cached like
    /// validations, and invalidated the same way by catalog and endpoint-filter changes.
    pub async fn token_catalog(
        &self,
        project_id: Option<&str>,
    ) -> CoreResult<Arc<Vec<CatalogEntry>>> {
        let cache = &self.validations;
        cache
            .derive(&cache.catalogs, project_id.unwrap_or(""), async {
                let catalog = self.read_catalog(project_id).await?;
                Ok((Arc::new(catalog), vec![Dependency::Catalog]))
            })
            .await
    }

    async fn read_catalog(&self, project_id: Option<&str>) -> CoreResult<Vec<CatalogEntry>> {
        let services = self.store.list_services().await?;
        let mut endpoints = self
            .store
            .list_endpoints(&EndpointFilter::default())
            .await?;
        let mut filtered = false;
        if let Some(p) = project_id {
            if let Some(allowed) = self.filtered_endpoint_ids(p).await? {
                endpoints.retain(|e| allowed.contains(&e.id));
                filtered = true;
            }
        }
        Ok(services
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| CatalogEntry {
                endpoints: endpoints
                    .iter()
                    .filter(|e| e.enabled && e.service_id == s.id)
                    .cloned()
                    .collect(),
                service: s,
            })
            // As in Keystone: a filtered catalog leaves out services with no endpoint left.
            .filter(|c| !filtered || !c.endpoints.is_empty())
            .collect())
    }
}
