//! Credentials (`/v3/credentials`) and EC2 credentials (`OS-EC2`): secrets a user keeps in
//! the identity service, encrypted at rest by a [`CredentialCipher`].

use crate::authz::Authorized;
use crate::delegation::DelegationService;
use crate::error::{CoreError, CoreResult};
use crate::model::Extra;
use serde_json::Value;

/// A blob encrypted at rest, with the hash of the key that sealed it.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBlob {
    pub ciphertext: String,
    pub key_hash: String,
}

pub trait CredentialCipher: Send + Sync {
    fn seal(&self, plain: &[u8]) -> Result<SealedBlob, String>;
    fn open(&self, sealed: &SealedBlob) -> Result<Vec<u8>, String>;
    /// The hash blobs sealed now carry.
    fn primary_key_hash(&self) -> Result<String, String>;
}

/// A credential as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCredential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub cred_type: String,
    pub sealed: SealedBlob,
    pub extra: Extra,
}

/// A credential as the API shows it (blob in clear).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub cred_type: String,
    pub blob: String,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    pub user_id: String,
    pub project_id: Option<String>,
    pub cred_type: String,
    pub blob: String,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct CredentialPatch {
    pub user_id: Option<String>,
    pub project_id: Option<Option<String>>,
    pub cred_type: Option<String>,
    pub blob: Option<String>,
    pub extra: Extra,
}

/// The `access` of an EC2 blob.
fn ec2_access(blob: &str) -> CoreResult<String> {
    serde_json::from_str::<Value>(blob)
        .ok()
        .and_then(|v| v.get("access").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| {
            CoreError::validation(
                "Invalid blob in credential: an ec2 blob is JSON with an 'access' key.",
            )
        })
}

/// Keystone derives an EC2 credential's id from its access key.
pub fn ec2_credential_id(access: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(access.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl DelegationService<'_> {
    fn cipher(&self) -> CoreResult<&dyn CredentialCipher> {
        self.credentials.as_deref().ok_or_else(|| {
            CoreError::Unavailable(
                "Credentials are unavailable: no credential key repository is set up \
                 (limen keys credential setup)."
                    .into(),
            )
        })
    }

    fn open_credential(&self, s: StoredCredential) -> CoreResult<Credential> {
        let plain = self
            .cipher()?
            .open(&s.sealed)
            .map_err(CoreError::Internal)?;
        Ok(Credential {
            id: s.id,
            user_id: s.user_id,
            project_id: s.project_id,
            cred_type: s.cred_type,
            blob: String::from_utf8_lossy(&plain).into_owned(),
            extra: s.extra,
        })
    }

    pub async fn create_credential(
        &self,
        authz: &Authorized,
        input: NewCredential,
    ) -> CoreResult<Credential> {
        authz.require(&["identity:create_credential"])?;
        self.add_credential(input).await
    }

    /// [`Self::create_credential`] once authorized, or as part of another write.
    pub(crate) async fn add_credential(&self, input: NewCredential) -> CoreResult<Credential> {
        self.identity().get_user(&input.user_id).await?;
        let id = if input.cred_type == "ec2" {
            if input.project_id.is_none() {
                return Err(CoreError::validation("Invalid input for field/attribute credential: 'project_id' is a required property for ec2 credentials"));
            }
            ec2_credential_id(&ec2_access(&input.blob)?)
        } else {
            self.new_id()
        };
        if let Some(p) = &input.project_id {
            self.resource()
                .get_project(p)
                .await
                .map_err(|_| CoreError::validation(format!("Could not find project: {p}.")))?;
        }
        if self.store.get_credential(&id).await?.is_some() {
            return Err(CoreError::conflict(
                "credential",
                format!("Duplicate ID, {id}."),
            ));
        }
        let sealed = self
            .cipher()?
            .seal(input.blob.as_bytes())
            .map_err(CoreError::Internal)?;
        let stored = StoredCredential {
            id,
            user_id: input.user_id,
            project_id: input.project_id,
            cred_type: input.cred_type,
            sealed,
            extra: input.extra,
        };
        self.store.create_credential(&stored).await?;
        self.open_credential(stored)
    }

    pub async fn get_credential(&self, id: &str) -> CoreResult<Credential> {
        let s = self
            .store
            .get_credential(id)
            .await?
            .ok_or_else(|| CoreError::not_found("credential", id))?;
        self.open_credential(s)
    }

    pub async fn list_credentials(
        &self,
        user_id: Option<&str>,
        cred_type: Option<&str>,
    ) -> CoreResult<Vec<Credential>> {
        self.store
            .list_credentials(user_id, cred_type)
            .await?
            .into_iter()
            .map(|s| self.open_credential(s))
            .collect()
    }

    /// Updates a credential's blob (and free-form attributes). Owner, project and type
    /// are fixed once created, as in Keystone.
    pub async fn update_credential(
        &self,
        authz: &Authorized,
        id: &str,
        patch: CredentialPatch,
    ) -> CoreResult<Credential> {
        authz.require(&["identity:update_credential"])?;
        let mut c = self.get_credential(id).await?;
        let fixed = [
            (
                "user_id",
                patch.user_id.as_ref().map(|u| Some(u.clone())),
                Some(c.user_id.clone()),
            ),
            ("project_id", patch.project_id.clone(), c.project_id.clone()),
            (
                "type",
                patch.cred_type.as_ref().map(|t| Some(t.clone())),
                Some(c.cred_type.clone()),
            ),
        ];
        for (name, wanted, current) in fixed {
            if let Some(w) = wanted {
                if w != current {
                    return Err(CoreError::validation(format!(
                        "Cannot change the {name} of a credential."
                    )));
                }
            }
        }
        if let Some(b) = patch.blob {
            if c.cred_type == "ec2" {
                ec2_access(&b)?;
            }
            c.blob = b;
        }
        crate::resource::merge_extra(&mut c.extra, patch.extra);
        let sealed = self
            .cipher()?
            .seal(c.blob.as_bytes())
            .map_err(CoreError::Internal)?;
        self.store
            .update_credential(&StoredCredential {
                id: c.id.clone(),
                user_id: c.user_id.clone(),
                project_id: c.project_id.clone(),
                cred_type: c.cred_type.clone(),
                sealed,
                extra: c.extra.clone(),
            })
            .await?;
        Ok(c)
    }

    pub async fn delete_credential(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require(&["identity:delete_credential"])?;
        self.remove_credential(id).await
    }

    /// [`Self::delete_credential`] once authorized, or as part of another write.
    pub(crate) async fn remove_credential(&self, id: &str) -> CoreResult<()> {
        if !self.store.delete_credential(id).await? {
            return Err(CoreError::not_found("credential", id));
        }
        Ok(())
    }

    /// Re-encrypts every credential not sealed by the primary key (after a rotation), so
    /// the next rotation can drop old keys safely. Returns how many changed.
    pub async fn reencrypt_credentials(&self, authz: &Authorized) -> CoreResult<usize> {
        authz.require(&["limen:reencrypt_credentials"])?;
        let cipher = self.cipher()?;
        let primary = cipher.primary_key_hash().map_err(CoreError::Internal)?;
        let mut changed = 0;
        for mut c in self.store.list_credentials(None, None).await? {
            if c.sealed.key_hash == primary {
                continue;
            }
            let plain = cipher.open(&c.sealed).map_err(CoreError::Internal)?;
            c.sealed = cipher.seal(&plain).map_err(CoreError::Internal)?;
            self.store.update_credential(&c).await?;
            changed += 1;
        }
        changed += self.reencrypt_oauth1_secrets().await?;
        Ok(changed)
    }

    // ---- OS-EC2 ----

    /// Creates an EC2 key pair for the user on a project.
    pub async fn create_ec2_credential(
        &self,
        authz: &Authorized,
        user_id: &str,
        project_id: &str,
    ) -> CoreResult<Credential> {
        authz.require(&["identity:ec2_create_credential"])?;
        self.resource().get_project(project_id).await?;
        let access = self.new_id();
        let secret = self.new_id();
        let blob =
            serde_json::json!({"access": access, "secret": secret, "trust_id": null}).to_string();
        self.add_credential(NewCredential {
            user_id: user_id.to_string(),
            project_id: Some(project_id.to_string()),
            cred_type: "ec2".into(),
            blob,
            extra: Extra::new(),
        })
        .await
    }

    pub async fn list_ec2_credentials(&self, user_id: &str) -> CoreResult<Vec<Credential>> {
        self.identity().get_user(user_id).await?;
        self.list_credentials(Some(user_id), Some("ec2")).await
    }

    /// An EC2 credential of `user_id` by its access key.
    pub async fn get_ec2_credential(&self, user_id: &str, access: &str) -> CoreResult<Credential> {
        let c = self
            .get_credential(&ec2_credential_id(access))
            .await
            .map_err(|_| CoreError::not_found("credential", access))?;
        if c.user_id != user_id || c.cred_type != "ec2" {
            return Err(CoreError::not_found("credential", access));
        }
        Ok(c)
    }

    pub async fn delete_ec2_credential(
        &self,
        authz: &Authorized,
        user_id: &str,
        access: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:ec2_delete_credential"])?;
        let c = self.get_ec2_credential(user_id, access).await?;
        self.remove_credential(&c.id).await
    }
}

/// The access and secret of an EC2 credential's blob.
pub fn ec2_keys(c: &Credential) -> (String, String) {
    let v: Value = serde_json::from_str(&c.blob).unwrap_or(Value::Null);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (s("access"), s("secret"))
}
