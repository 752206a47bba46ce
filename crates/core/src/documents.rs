//! Typed access to the store's JSON documents, for small configuration resources.

use crate::error::{CoreError, CoreResult};
use crate::service::Limen;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn corrupt(kind: &str, e: serde_json::Error) -> CoreError {
    CoreError::Internal(format!("stored {kind} document does not parse: {e}"))
}

impl Limen {
    pub(crate) async fn doc_get<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> CoreResult<Option<T>> {
        match self.store.get_document(kind, id).await? {
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| corrupt(kind, e)),
            None => Ok(None),
        }
    }

    pub(crate) async fn doc_list<T: DeserializeOwned>(&self, kind: &str) -> CoreResult<Vec<T>> {
        self.store
            .list_documents(kind)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| corrupt(kind, e)))
            .collect()
    }

    /// Stores a document; with `create_only` an existing one is a 409.
    pub(crate) async fn doc_put<T: Serialize>(
        &self,
        kind: &'static str,
        id: &str,
        value: &T,
        create_only: bool,
    ) -> CoreResult<()> {
        let body = serde_json::to_value(value).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store
            .put_document(kind, id, &body, create_only)
            .await
            .map_err(|e| match e {
                crate::error::StoreError::Duplicate { .. } => {
                    CoreError::conflict(kind, "Duplicate entry.".to_string())
                }
                other => other.into(),
            })
    }

    pub(crate) async fn doc_delete(&self, kind: &str, id: &str) -> CoreResult<bool> {
        Ok(self.store.delete_document(kind, id).await?)
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
        kind: &str,
        id: &str,
    ) -> CoreResult<Option<T>> {
        match self
            .store
            .get_oauth_record(kind, id, self.now_unix())
            .await?
        {
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| corrupt(kind, e)),
            None => Ok(None),
        }
    }

    /// Stores a record until `expires_at`; with `create_only` an existing one is a
    /// conflict (exactly one of racing writers wins).
    pub(crate) async fn record_put<T: Serialize>(
        &self,
        kind: &'static str,
        id: &str,
        value: &T,
        expires_at: i64,
        create_only: bool,
    ) -> CoreResult<()> {
        let body = serde_json::to_value(value).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store
            .put_oauth_record(kind, id, &body, expires_at, create_only)
            .await
            .map_err(|e| match e {
                crate::error::StoreError::Duplicate { .. } => {
                    CoreError::conflict(kind, "Duplicate entry.".to_string())
                }
                other => other.into(),
            })
    }

    pub(crate) async fn record_delete(&self, kind: &str, id: &str) -> CoreResult<bool> {
        Ok(self.store.delete_oauth_record(kind, id).await?)
    }

    /// Drops every OpenID Provider record that has expired.
    pub async fn prune_oauth_records(&self) -> CoreResult<u64> {
        Ok(self.store.prune_oauth_records(self.now_unix()).await?)
    }
}
