//! The legacy policies API (`/v3/policies`): opaque policy blobs Keystone stores for
//! other services, and their `OS-ENDPOINT-POLICY` associations.

use crate::authz::Authorized;
use crate::catalog::CatalogService;
use crate::documents::DocumentKind;
use crate::error::{CoreError, CoreResult};
use crate::model::Extra;
use serde::{Deserialize, Serialize};

const KIND: DocumentKind = DocumentKind::Policy;
const ASSOCIATION: DocumentKind = DocumentKind::PolicyAssociation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyBlob {
    pub id: String,
    pub blob: String,
    #[serde(rename = "type")]
    pub policy_type: String,
    #[serde(default)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub blob: Option<String>,
    pub policy_type: Option<String>,
    pub extra: Extra,
}

/// What a policy is associated with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAssociation {
    pub policy_id: String,
    pub endpoint_id: Option<String>,
    pub service_id: Option<String>,
    pub region_id: Option<String>,
}

impl PolicyAssociation {
    fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.policy_id,
            self.endpoint_id.as_deref().unwrap_or(""),
            self.service_id.as_deref().unwrap_or(""),
            self.region_id.as_deref().unwrap_or("")
        )
    }
}

impl CatalogService<'_> {
    pub async fn create_policy(
        &self,
        authz: &Authorized,
        blob: String,
        policy_type: String,
        extra: Extra,
    ) -> CoreResult<PolicyBlob> {
        authz.require(&["identity:create_policy"])?;
        let p = PolicyBlob {
            id: self.new_id(),
            blob,
            policy_type,
            extra,
        };
        self.doc_put(KIND, &p.id, &p, true).await?;
        Ok(p)
    }

    pub async fn get_policy(&self, id: &str) -> CoreResult<PolicyBlob> {
        self.doc_get(KIND, id)
            .await?
            .ok_or_else(|| CoreError::not_found("policy", id))
    }

    pub async fn list_policies(&self, policy_type: Option<&str>) -> CoreResult<Vec<PolicyBlob>> {
        let mut all: Vec<PolicyBlob> = self.doc_list(KIND).await?;
        if let Some(t) = policy_type {
            all.retain(|p| p.policy_type == t);
        }
        Ok(all)
    }

    pub async fn update_policy(
        &self,
        authz: &Authorized,
        id: &str,
        patch: PolicyPatch,
    ) -> CoreResult<PolicyBlob> {
        authz.require(&["identity:update_policy"])?;
        let mut p = self.get_policy(id).await?;
        if let Some(b) = patch.blob {
            p.blob = b;
        }
        if let Some(t) = patch.policy_type {
            p.policy_type = t;
        }
        crate::resource::merge_extra(&mut p.extra, patch.extra);
        self.doc_put(KIND, id, &p, false).await?;
        Ok(p)
    }

    pub async fn delete_policy(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_policy"])?;
        // A policy goes with its associations.
        self.in_unit(async |unit| {
            if !unit.doc_delete(KIND, id).await? {
                return Err(CoreError::not_found("policy", id));
            }
            for a in unit.doc_list::<PolicyAssociation>(ASSOCIATION).await? {
                if a.policy_id == id {
                    unit.doc_delete(ASSOCIATION, &a.key()).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn check_association(&self, a: &PolicyAssociation) -> CoreResult<()> {
        self.get_policy(&a.policy_id).await?;
        if let Some(e) = &a.endpoint_id {
            self.get_endpoint(e).await?;
        }
        if let Some(s) = &a.service_id {
            self.get_service(s).await?;
        }
        if let Some(r) = &a.region_id {
            self.get_region(r).await?;
        }
        Ok(())
    }

    pub async fn create_policy_association(
        &self,
        authz: &Authorized,
        a: PolicyAssociation,
    ) -> CoreResult<()> {
        authz.require(&[
            "identity:create_policy_association_for_endpoint",
            "identity:create_policy_association_for_service",
            "identity:create_policy_association_for_region_and_service",
        ])?;
        self.check_association(&a).await?;
        self.doc_put(ASSOCIATION, &a.key(), &a, false).await
    }

    pub async fn check_policy_association(&self, a: &PolicyAssociation) -> CoreResult<()> {
        self.check_association(a).await?;
        match self
            .doc_get::<PolicyAssociation>(ASSOCIATION, &a.key())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(CoreError::NotFoundMessage(format!(
                "Could not find policy association for policy {}.",
                a.policy_id
            ))),
        }
    }

    pub async fn delete_policy_association(
        &self,
        authz: &Authorized,
        a: &PolicyAssociation,
    ) -> CoreResult<()> {
        authz.require(&[
            "identity:delete_policy_association_for_endpoint",
            "identity:delete_policy_association_for_service",
            "identity:delete_policy_association_for_region_and_service",
        ])?;
        self.check_association(a).await?;
        if !self.doc_delete(ASSOCIATION, &a.key()).await? {
            return Err(CoreError::NotFoundMessage(format!(
                "Could not find policy association for policy {}.",
                a.policy_id
            )));
        }
        Ok(())
    }

    /// Endpoints a policy applies to: associated directly, through their service, or
    /// through their service in a region.
    pub async fn endpoints_for_policy(
        &self,
        policy_id: &str,
    ) -> CoreResult<Vec<crate::model::Endpoint>> {
        self.get_policy(policy_id).await?;
        let assocs: Vec<PolicyAssociation> = self
            .doc_list::<PolicyAssociation>(ASSOCIATION)
            .await?
            .into_iter()
            .filter(|a| a.policy_id == policy_id)
            .collect();
        let endpoints = self.list_endpoints(&Default::default()).await?;
        Ok(endpoints
            .into_iter()
            .filter(|e| {
                assocs
                    .iter()
                    .any(|a| match (&a.endpoint_id, &a.service_id, &a.region_id) {
                        (Some(id), _, _) => *id == e.id,
                        (None, Some(s), None) => *s == e.service_id,
                        (None, Some(s), Some(r)) => {
                            *s == e.service_id && e.region_id.as_ref() == Some(r)
                        }
                        _ => false,
                    })
            })
            .collect())
    }
}
