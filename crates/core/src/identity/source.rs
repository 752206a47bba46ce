//! Where users and groups come from. Every read of a user, a group or a membership goes
//! through an [`IdentitySource`]: the identity area's own operations, authentication,
//! effective role assignments, Kubernetes names. Limen's own store is the source of
//! every domain today ([`SqlIdentity`]); a domain whose configuration says
//! `[identity] driver = ldap` gets a directory-backed source in its place, read-only as
//! in Keystone, while grants, projects and everything else stay in the store.

use crate::error::StoreResult;
use crate::model::{Group, User};
use crate::store::{GroupFilter, Store, UserFilter};
use async_trait::async_trait;

#[async_trait]
pub trait IdentitySource: Send + Sync {
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>>;
    async fn users(&self, filter: &UserFilter) -> StoreResult<Vec<User>>;
    async fn group(&self, id: &str) -> StoreResult<Option<Group>>;
    async fn groups(&self, filter: &GroupFilter) -> StoreResult<Vec<Group>>;
    /// The ids of the groups `user_id` is a member of.
    async fn group_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// The ids of the members of `group_id`.
    async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>>;
    async fn is_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
}

/// Users and groups kept in Limen's own store (SQL), as written through the API.
pub struct SqlIdentity<'a> {
    store: &'a dyn Store,
}

impl<'a> SqlIdentity<'a> {
    pub fn new(store: &'a dyn Store) -> Self {
        SqlIdentity { store }
    }
}

#[async_trait]
impl IdentitySource for SqlIdentity<'_> {
    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.store.get_user(id).await
    }

    async fn user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>> {
        self.store.get_user_by_name(domain_id, name).await
    }

    async fn users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        self.store.list_users(filter).await
    }

    async fn group(&self, id: &str) -> StoreResult<Option<Group>> {
        self.store.get_group(id).await
    }

    async fn groups(&self, filter: &GroupFilter) -> StoreResult<Vec<Group>> {
        self.store.list_groups(filter).await
    }

    async fn group_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.store.list_group_ids_for_user(user_id).await
    }

    async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>> {
        self.store.list_user_ids_in_group(group_id).await
    }

    async fn is_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        self.store.is_user_in_group(group_id, user_id).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// A read that went to the store directly would bypass a domain's own source.
    #[test]
    fn users_and_groups_are_read_only_through_the_source() {
        let reads = [
            "get_user(",
            "get_user_by_name(",
            "list_users(",
            "get_group(",
            "list_groups(",
            "list_user_ids_in_group(",
            "list_group_ids_for_user(",
            "is_user_in_group(",
        ];
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 30);
        let mut found = Vec::new();
        for f in &files {
            let name = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
            // The source itself, and the store's wrapper that names what writes invalidate.
            if name == "identity/source.rs" || name == "change_tracking.rs" || name == "store.rs" {
                continue;
            }
            // Without whitespace, so that a call chained over lines is seen too.
            let text: String = std::fs::read_to_string(f)
                .unwrap()
                .split_whitespace()
                .collect();
            for r in reads {
                if text.contains(&format!("store.{r}")) || text.contains(&format!("store().{r}")) {
                    found.push(format!("{name}: store.{r}"));
                }
            }
        }
        assert!(found.is_empty(), "{found:?}");
    }
}
