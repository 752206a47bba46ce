//! Unified limits: registered (default) limits per service, region and resource, and
//! project or domain limits overriding them (Keystone's flat enforcement model).

use crate::authz::Authorized;
use crate::documents::{DocumentKind, Indexed};
use crate::error::{CoreError, CoreResult};
use crate::resource::ResourceService;
use serde::{Deserialize, Serialize};

const REGISTERED: DocumentKind = DocumentKind::RegisteredLimit;
const LIMIT: DocumentKind = DocumentKind::Limit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredLimit {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub default_limit: i64,
    pub description: Option<String>,
}

impl Indexed for RegisteredLimit {
    const KIND: DocumentKind = REGISTERED;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.service_id
    }
    /// One registered limit per service, region and resource.
    fn claims(&self) -> Vec<String> {
        vec![format!(
            "{}/{}/{}",
            self.service_id,
            self.region_id.as_deref().unwrap_or(""),
            self.resource_name
        )]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub id: String,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub resource_limit: i64,
    pub description: Option<String>,
}

impl Indexed for Limit {
    const KIND: DocumentKind = LIMIT;
    fn key(&self) -> String {
        self.id.clone()
    }
    /// The project or domain it limits.
    fn owner(&self) -> &str {
        self.project_id
            .as_deref()
            .or(self.domain_id.as_deref())
            .unwrap_or("")
    }
    /// One limit per project or domain, service, region and resource.
    fn claims(&self) -> Vec<String> {
        vec![format!(
            "{}/{}/{}/{}",
            self.owner(),
            self.service_id,
            self.region_id.as_deref().unwrap_or(""),
            self.resource_name
        )]
    }
}

#[derive(Debug, Clone, Default)]
pub struct RegisteredLimitPatch {
    pub service_id: Option<String>,
    pub region_id: Option<Option<String>>,
    pub resource_name: Option<String>,
    pub default_limit: Option<i64>,
    pub description: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct LimitFilter {
    pub service_id: Option<String>,
    pub region_id: Option<String>,
    pub resource_name: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
}

fn expecting(what: &str, entity: &str) -> CoreError {
    CoreError::validation(format!(
        "Expecting to find {what} in {entity}. The server could not comply with the request \
         since it is either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

fn in_use(id: &str) -> CoreError {
    CoreError::forbidden(format!(
        "Unable to update or delete registered limit {id} because there are project limits associated with it."
    ))
}

impl ResourceService<'_> {
    async fn check_service_region(
        &self,
        service_id: &str,
        region_id: Option<&str>,
        entity: &str,
    ) -> CoreResult<()> {
        if self.store.get_service(service_id).await?.is_none() {
            return Err(expecting("service_id", entity));
        }
        if let Some(r) = region_id {
            if self.store.get_region(r).await?.is_none() {
                return Err(expecting("region_id", entity));
            }
        }
        Ok(())
    }

    /// Creates registered limits all or nothing.
    pub async fn create_registered_limits(
        &self,
        authz: &Authorized,
        items: Vec<RegisteredLimit>,
    ) -> CoreResult<Vec<RegisteredLimit>> {
        authz.require(&["identity:create_registered_limits"])?;
        let existing: Vec<RegisteredLimit> = self.doc_list(REGISTERED).await?;
        let mut out: Vec<RegisteredLimit> = Vec::with_capacity(items.len());
        for mut r in items {
            self.check_service_region(&r.service_id, r.region_id.as_deref(), "registered_limit")
                .await?;
            let clash = |x: &RegisteredLimit| {
                x.service_id == r.service_id
                    && x.region_id == r.region_id
                    && x.resource_name == r.resource_name
            };
            if existing.iter().any(clash) || out.iter().any(clash) {
                return Err(CoreError::conflict("registered_limit", "Duplicate entry."));
            }
            r.id = self.new_id();
            out.push(r);
        }
        for r in &out {
            self.doc_save(r, true).await?;
        }
        Ok(out)
    }

    pub async fn get_registered_limit(&self, id: &str) -> CoreResult<RegisteredLimit> {
        self.doc_get(REGISTERED, id).await?.ok_or_else(|| {
            CoreError::NotFoundMessage(format!("Could not find registered limit for {id}."))
        })
    }

    pub async fn list_registered_limits(
        &self,
        f: &LimitFilter,
    ) -> CoreResult<Vec<RegisteredLimit>> {
        let mut all: Vec<RegisteredLimit> = self.doc_list(REGISTERED).await?;
        all.retain(|r| {
            f.service_id.as_ref().is_none_or(|s| *s == r.service_id)
                && f.region_id
                    .as_ref()
                    .is_none_or(|x| Some(x) == r.region_id.as_ref())
                && f.resource_name
                    .as_ref()
                    .is_none_or(|n| *n == r.resource_name)
        });
        Ok(all)
    }

    fn limits_of<'a>(limits: &'a [Limit], r: &RegisteredLimit) -> impl Iterator<Item = &'a Limit> {
        let (s, reg, n) = (
            r.service_id.clone(),
            r.region_id.clone(),
            r.resource_name.clone(),
        );
        limits
            .iter()
            .filter(move |l| l.service_id == s && l.region_id == reg && l.resource_name == n)
    }

    pub async fn update_registered_limit(
        &self,
        authz: &Authorized,
        id: &str,
        p: RegisteredLimitPatch,
    ) -> CoreResult<RegisteredLimit> {
        authz.require(&["identity:update_registered_limit"])?;
        let mut r = self.get_registered_limit(id).await?;
        let limits: Vec<Limit> = self.doc_list(LIMIT).await?;
        let changes_identity =
            p.service_id.is_some() || p.region_id.is_some() || p.resource_name.is_some();
        if changes_identity && Self::limits_of(&limits, &r).next().is_some() {
            return Err(in_use(id));
        }
        if let Some(s) = p.service_id {
            r.service_id = s;
        }
        if let Some(x) = p.region_id {
            r.region_id = x;
        }
        if let Some(n) = p.resource_name {
            r.resource_name = n;
        }
        if let Some(d) = p.default_limit {
            r.default_limit = d;
        }
        if let Some(d) = p.description {
            r.description = d;
        }
        self.check_service_region(&r.service_id, r.region_id.as_deref(), "registered_limit")
            .await?;
        let others: Vec<RegisteredLimit> = self.doc_list(REGISTERED).await?;
        if others.iter().any(|x| {
            x.id != r.id
                && x.service_id == r.service_id
                && x.region_id == r.region_id
                && x.resource_name == r.resource_name
        }) {
            return Err(CoreError::conflict("registered_limit", "Duplicate entry."));
        }
        self.doc_save(&r, false).await?;
        Ok(r)
    }

    pub async fn delete_registered_limit(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_registered_limit"])?;
        let r = self.get_registered_limit(id).await?;
        let limits: Vec<Limit> = self.doc_list(LIMIT).await?;
        if Self::limits_of(&limits, &r).next().is_some() {
            return Err(in_use(id));
        }
        self.doc_delete(REGISTERED, id).await?;
        Ok(())
    }

    /// Creates project or domain limits all or nothing; each needs a registered limit.
    pub async fn create_limits(
        &self,
        authz: &Authorized,
        items: Vec<Limit>,
    ) -> CoreResult<Vec<Limit>> {
        authz.require(&["identity:create_limits"])?;
        let registered: Vec<RegisteredLimit> = self.doc_list(REGISTERED).await?;
        let existing: Vec<Limit> = self.doc_list(LIMIT).await?;
        let mut out: Vec<Limit> = Vec::with_capacity(items.len());
        for mut l in items {
            self.check_service_region(&l.service_id, l.region_id.as_deref(), "limit")
                .await?;
            if let Some(p) = &l.project_id {
                if self.store.get_project(p).await?.is_none() {
                    return Err(expecting("project_id", "limit"));
                }
            }
            if let Some(d) = &l.domain_id {
                if self.store.get_domain(d).await?.is_none() {
                    return Err(expecting("domain_id", "limit"));
                }
            }
            if !registered.iter().any(|r| {
                r.service_id == l.service_id
                    && r.region_id == l.region_id
                    && r.resource_name == l.resource_name
            }) {
                return Err(CoreError::forbidden(
                    "Unable to create a limit that has no corresponding registered limit.",
                ));
            }
            let clash = |x: &Limit| {
                x.service_id == l.service_id
                    && x.region_id == l.region_id
                    && x.resource_name == l.resource_name
                    && x.project_id == l.project_id
                    && x.domain_id == l.domain_id
            };
            if existing.iter().any(clash) || out.iter().any(clash) {
                return Err(CoreError::conflict("limit", "Duplicate entry."));
            }
            l.id = self.new_id();
            out.push(l);
        }
        for l in &out {
            self.doc_save(l, true).await?;
        }
        Ok(out)
    }

    pub async fn get_limit(&self, id: &str) -> CoreResult<Limit> {
        self.doc_get(LIMIT, id)
            .await?
            .ok_or_else(|| CoreError::NotFoundMessage(format!("Could not find limit for {id}.")))
    }

    pub async fn list_limits(&self, f: &LimitFilter) -> CoreResult<Vec<Limit>> {
        let mut all: Vec<Limit> = self.doc_list(LIMIT).await?;
        all.retain(|l| {
            f.service_id.as_ref().is_none_or(|s| *s == l.service_id)
                && f.region_id
                    .as_ref()
                    .is_none_or(|x| Some(x) == l.region_id.as_ref())
                && f.resource_name
                    .as_ref()
                    .is_none_or(|n| *n == l.resource_name)
                && f.project_id
                    .as_ref()
                    .is_none_or(|p| Some(p) == l.project_id.as_ref())
                && f.domain_id
                    .as_ref()
                    .is_none_or(|d| Some(d) == l.domain_id.as_ref())
        });
        Ok(all)
    }

    pub async fn update_limit(
        &self,
        authz: &Authorized,
        id: &str,
        resource_limit: Option<i64>,
        description: Option<Option<String>>,
    ) -> CoreResult<Limit> {
        authz.require(&["identity:update_limit"])?;
        let mut l = self.get_limit(id).await?;
        if let Some(r) = resource_limit {
            l.resource_limit = r;
        }
        if let Some(d) = description {
            l.description = d;
        }
        self.doc_save(&l, false).await?;
        Ok(l)
    }

    /// Drops the limits of a deleted project or domain.
    pub(crate) async fn forget_limits_of(&self, project_or_domain: &str) -> CoreResult<()> {
        self.doc_delete_of::<Limit>(project_or_domain).await?;
        Ok(())
    }

    pub async fn delete_limit(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_limit"])?;
        if !self.doc_delete(LIMIT, id).await? {
            return Err(CoreError::NotFoundMessage(format!(
                "Could not find limit for {id}."
            )));
        }
        Ok(())
    }
}
