//! OAuth1 consumers (`OS-OAUTH1`). Limen keeps the consumer registry; the delegation
//! flow itself is not offered (tokens of payload 7 still decode).

use crate::error::{CoreError, CoreResult};
use crate::model::Extra;
use crate::service::Limen;
use serde::{Deserialize, Serialize};

const KIND: &str = "oauth1_consumer";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub description: Option<String>,
    pub secret_hash: String,
    #[serde(default)]
    pub extra: Extra,
}

impl Limen {
    /// Creates a consumer; the secret is returned once and stored hashed.
    pub async fn create_consumer(
        &self,
        description: Option<String>,
        extra: Extra,
    ) -> CoreResult<(Consumer, String)> {
        let secret = self.new_id();
        let secret_hash = self
            .hasher
            .hash(&secret)
            .await
            .map_err(CoreError::Internal)?;
        let c = Consumer {
            id: self.new_id(),
            description,
            secret_hash,
            extra,
        };
        self.doc_put(KIND, &c.id, &c, true).await?;
        Ok((c, secret))
    }

    pub async fn get_consumer(&self, id: &str) -> CoreResult<Consumer> {
        self.doc_get(KIND, id)
            .await?
            .ok_or_else(|| CoreError::NotFoundMessage("Consumer not found".into()))
    }

    pub async fn list_consumers(&self) -> CoreResult<Vec<Consumer>> {
        self.doc_list(KIND).await
    }

    pub async fn update_consumer(
        &self,
        id: &str,
        description: Option<Option<String>>,
        extra: Extra,
    ) -> CoreResult<Consumer> {
        let mut c = self.get_consumer(id).await?;
        if let Some(d) = description {
            c.description = d;
        }
        crate::resource::merge_extra(&mut c.extra, extra);
        self.doc_put(KIND, id, &c, false).await?;
        Ok(c)
    }

    pub async fn delete_consumer(&self, id: &str) -> CoreResult<()> {
        if !self.doc_delete(KIND, id).await? {
            return Err(CoreError::NotFoundMessage("Consumer not found".into()));
        }
        Ok(())
    }
}
