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
                crate::error::StoreError::Duplicate(_) => {
                    CoreError::conflict(kind, "Duplicate entry.".to_string())
                }
                other => other.into(),
            })
    }

    pub(crate) async fn doc_delete(&self, kind: &str, id: &str) -> CoreResult<bool> {
        Ok(self.store.delete_document(kind, id).await?)
    }
}
