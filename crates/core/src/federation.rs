//! The federation registry (`OS-FEDERATION`): identity providers with their protocols,
//! attribute mappings, and service providers. Limen stores and serves them as Keystone
//! does; federated login itself (mapping assertions to users) is not offered yet.

use crate::authz::Authorized;
use crate::documents::{DocumentKind, Indexed};
use crate::error::{CoreError, CoreResult};
use crate::resource::NewDomain;
use crate::service::Limen;
use crate::token::validation_cache::Dependency;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

const IDP: DocumentKind = DocumentKind::IdentityProvider;
const PROTOCOL: DocumentKind = DocumentKind::Protocol;
const MAPPING: DocumentKind = DocumentKind::Mapping;
pub(crate) const SP: DocumentKind = DocumentKind::ServiceProvider;

/// Keystone's `[saml] relay_state_prefix` default.
pub const DEFAULT_RELAY_STATE_PREFIX: &str = "ss:mem:";
/// Keystone's `[federation] attribute_mapping_default_schema_version`.
pub const DEFAULT_MAPPING_SCHEMA_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityProvider {
    pub id: String,
    /// The domain federated users of this provider live in.
    pub domain_id: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub remote_ids: Vec<String>,
    /// Minutes group memberships from the mapping last (`None`: the server default).
    pub authorization_ttl: Option<i64>,
}

impl Indexed for IdentityProvider {
    const KIND: DocumentKind = IDP;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.domain_id
    }
    /// A remote id names exactly one provider.
    fn claims(&self) -> Vec<String> {
        self.remote_ids
            .iter()
            .map(|r| format!("remote:{r}"))
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewIdentityProvider {
    /// `None`: a domain is created for the provider.
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub remote_ids: Vec<String>,
    pub authorization_ttl: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct IdentityProviderPatch {
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub remote_ids: Option<Vec<String>>,
    pub authorization_ttl: Option<Option<i64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub id: String,
    pub idp_id: String,
    pub mapping_id: String,
    pub remote_id_attribute: Option<String>,
}

impl Indexed for Protocol {
    const KIND: DocumentKind = PROTOCOL;
    fn key(&self) -> String {
        protocol_key(&self.idp_id, &self.id)
    }
    fn owner(&self) -> &str {
        &self.idp_id
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub id: String,
    /// The rules as validated against Keystone's mapping schema.
    pub rules: Value,
    pub schema_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceProvider {
    pub id: String,
    pub auth_url: String,
    pub sp_url: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub relay_state_prefix: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceProviderPatch {
    pub auth_url: Option<String>,
    pub sp_url: Option<String>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub relay_state_prefix: Option<Option<String>>,
}

fn protocol_key(idp_id: &str, protocol_id: &str) -> String {
    format!("{idp_id}/{protocol_id}")
}

fn idp_not_found(id: &str) -> CoreError {
    CoreError::NotFoundMessage(format!("Could not find Identity Provider: {id}."))
}

/// Federation's services: identity providers, protocols, mappings and service providers (`limen.federation()`).
#[derive(Clone, Copy)]
pub struct FederationService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn federation(&self) -> FederationService<'_> {
        FederationService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for FederationService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl FederationService<'_> {
    // ---- identity providers ----

    /// Remote ids are unique across providers: an assertion names exactly one.
    async fn check_remote_ids_free(&self, idp_id: &str, remote_ids: &[String]) -> CoreResult<()> {
        for other in self.list_identity_providers().await? {
            if other.id == idp_id {
                continue;
            }
            if let Some(taken) = remote_ids.iter().find(|r| other.remote_ids.contains(r)) {
                return Err(CoreError::conflict(
                    IDP.name(),
                    format!("Duplicate remote ID: {taken}"),
                ));
            }
        }
        Ok(())
    }

    pub async fn create_identity_provider(
        &self,
        authz: &Authorized,
        id: &str,
        input: NewIdentityProvider,
    ) -> CoreResult<IdentityProvider> {
        authz.require(&["identity:create_identity_provider"])?;
        // A provider and the domain made for it are created together.
        self.in_unit(async |unit| {
            if unit.doc_get::<IdentityProvider>(IDP, id).await?.is_some() {
                return Err(CoreError::conflict(
                    IDP.name(),
                    format!("Duplicate entry: {id}"),
                ));
            }
            unit.federation()
                .check_remote_ids_free(id, &input.remote_ids)
                .await?;
            let domain_id = match input.domain_id {
                Some(d) => unit.resource().get_domain(&d).await?.id,
                None => {
                    // Keystone gives each provider without a domain one of its own.
                    let domain_id = unit.new_id();
                    unit.resource()
                        .add_domain(NewDomain {
                            id: Some(domain_id.clone()),
                            name: domain_id.clone(),
                            description: format!(
                                "Auto generated federated domain for Identity Provider: {id}"
                            ),
                            enabled: true,
                            ..Default::default()
                        })
                        .await?
                        .id
                }
            };
            let idp = IdentityProvider {
                id: id.to_string(),
                domain_id,
                description: input.description,
                enabled: input.enabled,
                remote_ids: input.remote_ids,
                authorization_ttl: input.authorization_ttl,
            };
            unit.doc_save(&idp, true).await?;
            Ok(idp)
        })
        .await
    }

    pub async fn get_identity_provider(&self, id: &str) -> CoreResult<IdentityProvider> {
        self.doc_get(IDP, id)
            .await?
            .ok_or_else(|| idp_not_found(id))
    }

    pub async fn list_identity_providers(&self) -> CoreResult<Vec<IdentityProvider>> {
        let mut all: Vec<IdentityProvider> = self.doc_list(IDP).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub async fn update_identity_provider(
        &self,
        authz: &Authorized,
        id: &str,
        patch: IdentityProviderPatch,
    ) -> CoreResult<IdentityProvider> {
        authz.require(&["identity:update_identity_provider"])?;
        let mut idp = self.get_identity_provider(id).await?;
        if let Some(r) = patch.remote_ids {
            self.check_remote_ids_free(id, &r).await?;
            idp.remote_ids = r;
        }
        if let Some(d) = patch.description {
            idp.description = d;
        }
        if let Some(e) = patch.enabled {
            idp.enabled = e;
        }
        if let Some(t) = patch.authorization_ttl {
            idp.authorization_ttl = t;
        }
        self.doc_save(&idp, false).await?;
        Ok(idp)
    }

    /// Deletes a provider with its protocols; its domain stays.
    pub async fn delete_identity_provider(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_identity_provider"])?;
        self.remove_identity_provider(id).await
    }

    /// [`Self::delete_identity_provider`] once authorized, or as part of another write.
    pub(crate) async fn remove_identity_provider(&self, id: &str) -> CoreResult<()> {
        self.get_identity_provider(id).await?;
        // A provider goes with its protocols.
        self.in_unit(async |unit| {
            unit.doc_delete_of::<Protocol>(id).await?;
            unit.doc_delete(IDP, id).await?;
            Ok(())
        })
        .await
    }

    /// A deleted domain takes its identity providers along.
    pub(crate) async fn forget_identity_providers_of(&self, domain_id: &str) -> CoreResult<()> {
        for idp in self.doc_list_of::<IdentityProvider>(domain_id).await? {
            self.remove_identity_provider(&idp.id).await?;
        }
        Ok(())
    }

    // ---- protocols ----

    async fn require_mapping(&self, mapping_id: &str) -> CoreResult<()> {
        if self
            .doc_get::<Mapping>(MAPPING, mapping_id)
            .await?
            .is_none()
        {
            return Err(CoreError::validation(format!(
                "Invalid mapping id: {mapping_id}"
            )));
        }
        Ok(())
    }

    pub async fn create_protocol(
        &self,
        authz: &Authorized,
        idp_id: &str,
        protocol_id: &str,
        mapping_id: String,
        remote_id_attribute: Option<String>,
    ) -> CoreResult<Protocol> {
        authz.require(&["identity:create_protocol"])?;
        self.get_identity_provider(idp_id).await?;
        self.require_mapping(&mapping_id).await?;
        let p = Protocol {
            id: protocol_id.to_string(),
            idp_id: idp_id.to_string(),
            mapping_id,
            remote_id_attribute,
        };
        self.doc_save(&p, true).await?;
        Ok(p)
    }

    pub async fn get_protocol(&self, idp_id: &str, protocol_id: &str) -> CoreResult<Protocol> {
        self.get_identity_provider(idp_id).await?;
        self.doc_get(PROTOCOL, &protocol_key(idp_id, protocol_id))
            .await?
            .ok_or_else(|| {
                CoreError::NotFoundMessage(format!(
                    "Could not find federated protocol {protocol_id} for Identity Provider: \
                     {idp_id}."
                ))
            })
    }

    pub async fn list_protocols(&self, idp_id: &str) -> CoreResult<Vec<Protocol>> {
        self.get_identity_provider(idp_id).await?;
        let mut all: Vec<Protocol> = self.doc_list_of(idp_id).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub async fn update_protocol(
        &self,
        authz: &Authorized,
        idp_id: &str,
        protocol_id: &str,
        mapping_id: String,
        remote_id_attribute: Option<String>,
    ) -> CoreResult<Protocol> {
        authz.require(&["identity:update_protocol"])?;
        let mut p = self.get_protocol(idp_id, protocol_id).await?;
        self.require_mapping(&mapping_id).await?;
        p.mapping_id = mapping_id;
        if remote_id_attribute.is_some() {
            p.remote_id_attribute = remote_id_attribute;
        }
        self.doc_save(&p, false).await?;
        Ok(p)
    }

    pub async fn delete_protocol(
        &self,
        authz: &Authorized,
        idp_id: &str,
        protocol_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_protocol"])?;
        self.get_protocol(idp_id, protocol_id).await?;
        self.doc_delete(PROTOCOL, &protocol_key(idp_id, protocol_id))
            .await?;
        Ok(())
    }

    // ---- mappings ----

    /// Stores a mapping (the rules already validated by the caller's wire layer).
    pub async fn put_mapping(
        &self,
        authz: &Authorized,
        mapping: Mapping,
        create: bool,
    ) -> CoreResult<Mapping> {
        authz.require(&["identity:create_mapping", "identity:update_mapping"])?;
        if !create {
            self.get_mapping(&mapping.id).await?;
        }
        self.doc_put(MAPPING, &mapping.id, &mapping, create).await?;
        Ok(mapping)
    }

    pub async fn get_mapping(&self, id: &str) -> CoreResult<Mapping> {
        self.doc_get(MAPPING, id)
            .await?
            .ok_or_else(|| CoreError::NotFoundMessage(format!("Could not find mapping: {id}.")))
    }

    pub async fn list_mappings(&self) -> CoreResult<Vec<Mapping>> {
        let mut all: Vec<Mapping> = self.doc_list(MAPPING).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub async fn delete_mapping(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_mapping"])?;
        self.get_mapping(id).await?;
        self.doc_delete(MAPPING, id).await?;
        Ok(())
    }

    // ---- service providers ----

    pub async fn create_service_provider(
        &self,
        authz: &Authorized,
        sp: ServiceProvider,
    ) -> CoreResult<ServiceProvider> {
        authz.require(&["identity:create_service_provider"])?;
        if self.doc_get::<ServiceProvider>(SP, &sp.id).await?.is_some() {
            return Err(CoreError::conflict(
                SP.name(),
                format!("Duplicate entry: {}", sp.id),
            ));
        }
        self.doc_put(SP, &sp.id, &sp, true).await?;
        Ok(sp)
    }

    pub async fn get_service_provider(&self, id: &str) -> CoreResult<ServiceProvider> {
        self.doc_get(SP, id).await?.ok_or_else(|| {
            CoreError::NotFoundMessage(format!("Could not find Service Provider: {id}."))
        })
    }

    pub async fn list_service_providers(&self) -> CoreResult<Vec<ServiceProvider>> {
        let mut all: Vec<ServiceProvider> = self.doc_list(SP).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub async fn update_service_provider(
        &self,
        authz: &Authorized,
        id: &str,
        patch: ServiceProviderPatch,
    ) -> CoreResult<ServiceProvider> {
        authz.require(&["identity:update_service_provider"])?;
        let mut sp = self.get_service_provider(id).await?;
        if let Some(v) = patch.auth_url {
            sp.auth_url = v;
        }
        if let Some(v) = patch.sp_url {
            sp.sp_url = v;
        }
        if let Some(v) = patch.description {
            sp.description = v;
        }
        if let Some(v) = patch.enabled {
            sp.enabled = v;
        }
        if let Some(v) = patch.relay_state_prefix {
            sp.relay_state_prefix = v;
        }
        self.doc_put(SP, id, &sp, false).await?;
        Ok(sp)
    }

    pub async fn delete_service_provider(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_service_provider"])?;
        self.get_service_provider(id).await?;
        self.doc_delete(SP, id).await?;
        Ok(())
    }

    /// The enabled service providers every token lists (`service_providers`).
    /// Cached like validations (every token body carries the list).
    pub async fn enabled_service_providers(&self) -> CoreResult<Arc<Vec<ServiceProvider>>> {
        let cache = &self.validations;
        cache
            .derive(&cache.service_providers, "", async {
                let mut all = self.list_service_providers().await?;
                all.retain(|sp| sp.enabled);
                Ok((Arc::new(all), vec![Dependency::ServiceProviders]))
            })
            .await
    }
}
