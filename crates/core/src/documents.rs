//! Typed access to the store's JSON documents (small configuration resources) and to
//! the OpenID Provider's short-lived records: one enum names every kind of each.
//!
//! Documents listed by what they belong to (a cluster's rules, a domain's clients) or
//! holding values that must stay unique (a cluster's audience) are [`Indexed`]: written
//! with [`Limen::doc_save`], which keeps their owner and claims in the store's index, so
//! listing them reads only theirs and a race cannot make a unique value twice.

use crate::error::{CoreError, CoreResult, StoreError};
use crate::service::Limen;
use crate::store::DocumentWrite;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Every kind of document, by the name stored in its rows' `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentKind {
    Cluster,
    KubeRule,
    OAuthClient,
    DomainConfig,
    EndpointGroup,
    ProjectEndpointGroup,
    ProjectEndpoint,
    IdentityProvider,
    Protocol,
    Mapping,
    ServiceProvider,
    RegisteredLimit,
    Limit,
    OAuth1Consumer,
    OAuth1RequestToken,
    OAuth1AccessToken,
    Policy,
    PolicyAssociation,
}

impl DocumentKind {
    const ALL: [DocumentKind; 18] = [
        DocumentKind::Cluster,
        DocumentKind::KubeRule,
        DocumentKind::OAuthClient,
        DocumentKind::DomainConfig,
        DocumentKind::EndpointGroup,
        DocumentKind::ProjectEndpointGroup,
        DocumentKind::ProjectEndpoint,
        DocumentKind::IdentityProvider,
        DocumentKind::Protocol,
        DocumentKind::Mapping,
        DocumentKind::ServiceProvider,
        DocumentKind::RegisteredLimit,
        DocumentKind::Limit,
        DocumentKind::OAuth1Consumer,
        DocumentKind::OAuth1RequestToken,
        DocumentKind::OAuth1AccessToken,
        DocumentKind::Policy,
        DocumentKind::PolicyAssociation,
    ];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            DocumentKind::Cluster => "k8s_cluster",
            DocumentKind::KubeRule => "k8s_rule",
            DocumentKind::OAuthClient => "oauth_client",
            DocumentKind::DomainConfig => "domain_config",
            DocumentKind::EndpointGroup => "endpoint_group",
            DocumentKind::ProjectEndpointGroup => "project_endpoint_group",
            DocumentKind::ProjectEndpoint => "project_endpoint",
            DocumentKind::IdentityProvider => "identity_provider",
            DocumentKind::Protocol => "federation_protocol",
            DocumentKind::Mapping => "mapping",
            DocumentKind::ServiceProvider => "service_provider",
            DocumentKind::RegisteredLimit => "registered_limit",
            DocumentKind::Limit => "limit",
            DocumentKind::OAuth1Consumer => "oauth1_consumer",
            DocumentKind::OAuth1RequestToken => "oauth1_request_token",
            DocumentKind::OAuth1AccessToken => "oauth1_access_token",
            DocumentKind::Policy => "policy",
            DocumentKind::PolicyAssociation => "policy_association",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<DocumentKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Kinds written only through [`Limen::doc_save`].
    fn is_indexed(self) -> bool {
        matches!(
            self,
            DocumentKind::Cluster
                | DocumentKind::KubeRule
                | DocumentKind::OAuthClient
                | DocumentKind::IdentityProvider
                | DocumentKind::Protocol
                | DocumentKind::RegisteredLimit
                | DocumentKind::Limit
                | DocumentKind::OAuth1RequestToken
                | DocumentKind::OAuth1AccessToken
        )
    }
}

/// Every kind of the OpenID Provider's short-lived records (`oauth_records`), by the name
/// stored in its rows' `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    AuthorizationCode,
    Consent,
    DeviceCode,
    UserCode,
    DeviceCodeUsed,
    DeviceDecided,
    DevicePollPace,
    RevokedAccessToken,
    Session,
    Grant,
    RefreshToken,
    AuthorizationCodeUsed,
    RefreshTokenUsed,
    OAuth1Nonce,
}

impl RecordKind {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            RecordKind::AuthorizationCode => "oauth_code",
            RecordKind::Consent => "oauth_consent",
            RecordKind::DeviceCode => "oauth_device_code",
            RecordKind::UserCode => "oauth_user_code",
            RecordKind::DeviceCodeUsed => "oauth_device_code_used",
            RecordKind::DeviceDecided => "oauth_device_code_decided",
            RecordKind::DevicePollPace => "oauth_device_poll_pace",
            RecordKind::RevokedAccessToken => "oauth_revoked_access_token",
            RecordKind::Session => "oauth_session",
            RecordKind::Grant => "oauth_grant",
            RecordKind::RefreshToken => "oauth_refresh_token",
            RecordKind::AuthorizationCodeUsed => "oauth_code_used",
            RecordKind::RefreshTokenUsed => "oauth_refresh_token_used",
            RecordKind::OAuth1Nonce => "oauth1_nonce",
        }
    }
}

/// A document listed by what it belongs to, and holding values no other document of its
/// kind may hold.
pub(crate) trait Indexed: Serialize + DeserializeOwned {
    const KIND: DocumentKind;
    /// Its id among the documents of its kind.
    fn key(&self) -> String;
    /// What it belongs to (a domain, a cluster, a provider, a project), listed by.
    fn owner(&self) -> &str;
    /// Values unique among the documents of its kind.
    fn claims(&self) -> Vec<String> {
        Vec::new()
    }
}

fn corrupt(kind: DocumentKind, e: serde_json::Error) -> CoreError {
    CoreError::Internal(format!(
        "stored {} document does not parse: {e}",
        kind.name()
    ))
}

fn corrupt_record(kind: RecordKind, e: serde_json::Error) -> CoreError {
    CoreError::Internal(format!("stored {} record does not parse: {e}", kind.name()))
}

fn parse_all<T: DeserializeOwned>(
    kind: DocumentKind,
    bodies: Vec<serde_json::Value>,
) -> CoreResult<Vec<T>> {
    bodies
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| corrupt(kind, e)))
        .collect()
}

impl Limen {
    pub(crate) async fn doc_get<T: DeserializeOwned>(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> CoreResult<Option<T>> {
        match self.store.get_document(kind.name(), id).await? {
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| corrupt(kind, e)),
            None => Ok(None),
        }
    }

    /// Every document of `kind`.
    pub(crate) async fn doc_list<T: DeserializeOwned>(
        &self,
        kind: DocumentKind,
    ) -> CoreResult<Vec<T>> {
        parse_all(kind, self.store.list_documents(kind.name()).await?)
    }

    /// The documents of `T`'s kind that belong to `owner`.
    pub(crate) async fn doc_list_of<T: Indexed>(&self, owner: &str) -> CoreResult<Vec<T>> {
        parse_all(
            T::KIND,
            self.store.list_documents_of(T::KIND.name(), owner).await?,
        )
    }

    /// Stores a document of a kind that is not [`Indexed`]; with `create_only` an existing
    /// one is a 409.
    pub(crate) async fn doc_put<T: Serialize>(
        &self,
        kind: DocumentKind,
        id: &str,
        value: &T,
        create_only: bool,
    ) -> CoreResult<()> {
        if kind.is_indexed() {
            return Err(CoreError::Internal(format!(
                "a {} document is written with its index (doc_save)",
                kind.name()
            )));
        }
        self.write_document(kind, id, "", &[], value, create_only)
            .await
    }

    /// Stores an [`Indexed`] document with its owner and claims; with `create_only` an
    /// existing one is a 409, as is a claim another document holds.
    pub(crate) async fn doc_save<T: Indexed>(&self, doc: &T, create_only: bool) -> CoreResult<()> {
        self.write_document(
            T::KIND,
            &doc.key(),
            doc.owner(),
            &doc.claims(),
            doc,
            create_only,
        )
        .await
    }

    async fn write_document<T: Serialize>(
        &self,
        kind: DocumentKind,
        id: &str,
        owner: &str,
        claims: &[String],
        value: &T,
        create_only: bool,
    ) -> CoreResult<()> {
        let body = serde_json::to_value(value).map_err(|e| CoreError::Internal(e.to_string()))?;
        let doc = DocumentWrite {
            kind: kind.name(),
            id,
            owner,
            claims,
            body: &body,
            create_only,
        };
        self.store.put_document(&doc).await.map_err(|e| match e {
            StoreError::Duplicate { .. } => {
                CoreError::conflict(kind.name(), "Duplicate entry.".to_string())
            }
            other => other.into(),
        })
    }

    pub(crate) async fn doc_delete(&self, kind: DocumentKind, id: &str) -> CoreResult<bool> {
        Ok(self.store.delete_document(kind.name(), id).await?)
    }

    /// Deletes the documents of `T`'s kind that belong to `owner`; how many went.
    pub(crate) async fn doc_delete_of<T: Indexed>(&self, owner: &str) -> CoreResult<usize> {
        Ok(self
            .store
            .delete_documents_of(T::KIND.name(), owner)
            .await?
            .len())
    }

    /// Fills in the index (owners and claims) of documents written before it existed; a
    /// server calls this at start. Returns how many documents it wrote.
    pub async fn index_documents(&self) -> CoreResult<usize> {
        use crate::delegation::oauth1::{AccessToken, RequestToken};
        use crate::federation::{IdentityProvider, Protocol};
        use crate::kubernetes::cluster::Cluster;
        use crate::kubernetes::rules::KubeRule;
        use crate::oauth::client::OAuthClient;
        use crate::resource::limits::{Limit, RegisteredLimit};
        Ok(self.reindex::<Cluster>().await?
            + self.reindex::<KubeRule>().await?
            + self.reindex::<OAuthClient>().await?
            + self.reindex::<IdentityProvider>().await?
            + self.reindex::<Protocol>().await?
            + self.reindex::<RegisteredLimit>().await?
            + self.reindex::<Limit>().await?
            + self.reindex::<RequestToken>().await?
            + self.reindex::<AccessToken>().await?)
    }

    /// Writes documents of `T`'s kind stored before owners and claims were kept again,
    /// with both. A document whose claim another holds (made by a race before claims
    /// existed) is left as it was and reported.
    async fn reindex<T: Indexed>(&self) -> CoreResult<usize> {
        let mut done = 0;
        for doc in parse_all::<T>(
            T::KIND,
            self.store.list_unindexed_documents(T::KIND.name()).await?,
        )? {
            if doc.owner().is_empty() {
                continue;
            }
            match self.doc_save(&doc, false).await {
                Ok(()) => done += 1,
                Err(CoreError::Conflict { .. }) => tracing::error!(
                    kind = T::KIND.name(),
                    id = %doc.key(),
                    "a stored document holds a value another one holds too; fix one of them"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// The store's key for an opaque secret (a code, a refresh token, a session id): the hex
/// SHA-256 of it, so a read of the database gives no usable secret.
pub(crate) fn secret_key(raw: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Typed access to the OpenID Provider's short-lived records (`oauth_records`).
impl Limen {
    /// A new opaque secret: 32 random bytes, base64url.
    pub(crate) fn new_opaque_secret(&self) -> String {
        use base64::Engine;
        let mut b = [0u8; 32];
        self.random.fill(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    pub(crate) fn now_unix(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The record if it is alive now.
    pub(crate) async fn record_get<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        id: &str,
    ) -> CoreResult<Option<T>> {
        match self
            .store
            .get_oauth_record(kind.name(), id, self.now_unix())
            .await?
        {
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| corrupt_record(kind, e)),
            None => Ok(None),
        }
    }

    /// Stores a record until `expires_at`; with `create_only` an existing one is a
    /// conflict (exactly one of racing writers wins).
    pub(crate) async fn record_put<T: Serialize>(
        &self,
        kind: RecordKind,
        id: &str,
        value: &T,
        expires_at: i64,
        create_only: bool,
    ) -> CoreResult<()> {
        let body = serde_json::to_value(value).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store
            .put_oauth_record(kind.name(), id, &body, expires_at, create_only)
            .await
            .map_err(|e| match e {
                crate::error::StoreError::Duplicate { .. } => {
                    CoreError::conflict(kind.name(), "Duplicate entry.".to_string())
                }
                other => other.into(),
            })
    }

    pub(crate) async fn record_delete(&self, kind: RecordKind, id: &str) -> CoreResult<bool> {
        Ok(self.store.delete_oauth_record(kind.name(), id).await?)
    }

    /// Drops every OpenID Provider record that has expired.
    pub async fn prune_oauth_records(&self) -> CoreResult<u64> {
        Ok(self.store.prune_oauth_records(self.now_unix()).await?)
    }
}
