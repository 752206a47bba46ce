//! Users, groups and passwords, with Keystone's `[security_compliance]` rules.

pub mod password;
pub mod source;
pub mod totp;

use crate::authz::Authorized;
use crate::error::{CoreError, CoreResult};
use crate::identity::source::IdentitySource;
use crate::model::{Extra, Group, Password, RevocationEvent, User};
use crate::resource::{conflict_as, merge_extra, merge_options};
use crate::service::Limen;
use crate::store::{GroupFilter, UserFilter};
use crate::token::validation_cache::Dependency;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// `name` with `%` and `/` percent-encoded, so names joined by `/` stay unambiguous.
pub fn name_part(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// `Domain/name` for a name unique only within its domain.
pub fn qualified_name(domain_name: &str, name: &str) -> String {
    format!("{}/{}", name_part(domain_name), name_part(name))
}

/// User options Keystone knows, with whether each takes a boolean (the MFA rules take a
/// list of lists of method names).
pub const USER_OPTIONS: &[(&str, bool)] = &[
    ("ignore_change_password_upon_first_use", true),
    ("ignore_password_expiry", true),
    ("ignore_lockout_failure_attempts", true),
    ("lock_password", true),
    ("ignore_user_inactivity", true),
    ("multi_factor_auth_enabled", true),
    ("multi_factor_auth_rules", false),
];

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub password: Option<String>,
    pub options: Extra,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears the default project.
    pub default_project_id: Option<Option<String>>,
    /// `Some(None)` removes the password.
    pub password: Option<Option<String>>,
    pub options: Option<Extra>,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub extra: Extra,
}

/// Checks option names and value types; `null` values mean "unset" and pass.
pub fn validate_user_options(options: &Extra) -> CoreResult<()> {
    for (name, value) in options {
        let Some((_, is_bool)) = USER_OPTIONS.iter().find(|(n, _)| n == name) else {
            return Err(CoreError::validation(format!(
                "Invalid input for field 'options': Additional properties are not allowed ('{name}' was unexpected)"
            )));
        };
        let ok = match value {
            Value::Null => true,
            Value::Bool(_) => *is_bool,
            Value::Array(rules) => {
                !*is_bool
                    && rules.iter().all(|r| {
                        r.as_array()
                            .is_some_and(|ms| ms.iter().all(|m| m.is_string()))
                    })
            }
            _ => false,
        };
        if !ok {
            return Err(CoreError::validation(format!(
                "Invalid input for field 'options/{name}': {value} is not of the expected type"
            )));
        }
    }
    Ok(())
}

pub fn user_option(user: &User, name: &str) -> bool {
    user.options.get(name).and_then(Value::as_bool) == Some(true)
}

/// The identity area's services: users, groups and memberships, passwords (`limen.identity()`).
#[derive(Clone, Copy)]
pub struct IdentityService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn identity(&self) -> IdentityService<'_> {
        IdentityService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for IdentityService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}

impl IdentityService<'_> {
    /// Where users and groups are read from ([`source::IdentitySource`]): the store for
    /// every domain until a domain can name another source.
    pub fn source(&self) -> source::SqlIdentity<'_> {
        source::SqlIdentity::new(&*self.store)
    }

    /// The ids of the groups `user_id` is a member of (no check that the user exists).
    pub async fn group_ids_of(&self, user_id: &str) -> CoreResult<Vec<String>> {
        Ok(self.source().group_ids_of(user_id).await?)
    }

    /// The ids of the members of `group_id` (no check that the group exists).
    pub async fn member_ids(&self, group_id: &str) -> CoreResult<Vec<String>> {
        Ok(self.source().member_ids(group_id).await?)
    }
}

impl IdentityService<'_> {
    // ---- users ----

    pub async fn create_user(&self, authz: &Authorized, input: NewUser) -> CoreResult<User> {
        authz.require(&["identity:create_user"])?;
        validate_user_options(&input.options)?;
        self.store
            .get_domain(&input.domain_id)
            .await?
            .ok_or_else(|| {
                CoreError::validation(format!("Could not find domain: {}.", input.domain_id))
            })?;
        if self
            .find_user_by_name(&input.domain_id, &input.name)
            .await?
            .is_some()
        {
            return Err(CoreError::conflict(
                "user",
                format!(
                    "Duplicate entry found with name {} at domain ID {}",
                    input.name, input.domain_id
                ),
            ));
        }
        let now = self.clock.now();
        let mut options = input.options;
        options.retain(|_, v| !v.is_null());
        let user = User {
            id: self.new_id(),
            name: input.name,
            domain_id: input.domain_id,
            enabled: input.enabled,
            default_project_id: input.default_project_id,
            options,
            extra: input.extra,
            created_at: now,
            last_active_at: None,
            failed_auth_count: 0,
            failed_auth_at: None,
        };
        let password = match input.password {
            Some(pw) => Some(self.new_password(&user, &pw, false, now).await?),
            None => None,
        };
        self.store
            .create_user(&user, password.as_ref())
            .await
            .map_err(|e| conflict_as("user", &user.name, &user.id, e))?;
        Ok(user)
    }

    /// Builds a password row: checks length and regex, hashes, and sets the expiry that the
    /// security-compliance rules give it.
    async fn new_password(
        &self,
        user: &User,
        password: &str,
        self_service: bool,
        now: OffsetDateTime,
    ) -> CoreResult<Password> {
        self.check_password_rules(password)?;
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(CoreError::Internal)?;
        let sc = &self.config.security;
        let expires_at = if !self_service
            && sc.change_password_upon_first_use
            && !user_option(user, "ignore_change_password_upon_first_use")
        {
            Some(now)
        } else if let (Some(days), false) = (
            sc.password_expires_days,
            user_option(user, "ignore_password_expiry"),
        ) {
            Some(now + Duration::days(days as i64))
        } else {
            None
        };
        Ok(Password {
            user_id: user.id.clone(),
            hash,
            created_at: now,
            expires_at,
            self_service,
        })
    }

    fn check_password_rules(&self, password: &str) -> CoreResult<()> {
        let id = &self.config.identity;
        if password.chars().count() > id.max_password_length {
            return Err(CoreError::validation(format!(
                "Invalid input for field 'password': password is longer than {} characters",
                id.max_password_length
            )));
        }
        if id.strict_password_check && password.len() > 72 {
            return Err(CoreError::forbidden(
                "The password exceeds the 72 bytes bcrypt can use.",
            ));
        }
        if let Some(re) = &self.config.security.password_regex {
            // fancy-regex: Keystone's documented regexes use look-ahead.
            let ok = fancy_regex::Regex::new(re)
                .ok()
                .and_then(|r| r.is_match(password).ok())
                .unwrap_or(false);
            if !ok {
                let detail = self
                    .config
                    .security
                    .password_regex_description
                    .clone()
                    .unwrap_or_default();
                return Err(CoreError::validation(format!(
                    "The password does not meet the requirements: {detail}"
                )));
            }
        }
        Ok(())
    }

    /// Rejects a password that matches one of the last `unique_last_password_count`.
    async fn check_password_history(&self, user_id: &str, password: &str) -> CoreResult<()> {
        let count = self.config.security.unique_last_password_count as usize;
        if count <= 1 {
            return Ok(());
        }
        // The current password counts: the last `count` passwords must all differ.
        let history = self.store.list_passwords(user_id).await?;
        for old in history.iter().take(count) {
            if self.hasher.verify(password, &old.hash).await {
                return Err(CoreError::validation(format!(
                    "The new password cannot be identical to a previous password. The total \
                     number which includes the new password must be unique is {count}."
                )));
            }
        }
        Ok(())
    }

    fn history_to_keep(&self) -> usize {
        (self.config.security.unique_last_password_count as usize).max(1)
    }

    pub async fn get_user(&self, id: &str) -> CoreResult<User> {
        self.source()
            .user(id)
            .await?
            .ok_or_else(|| CoreError::not_found("user", id))
    }

    /// The user, or `None` where [`Self::get_user`] would answer 404.
    pub async fn find_user(&self, id: &str) -> CoreResult<Option<User>> {
        Ok(self.source().user(id).await?)
    }

    pub async fn get_user_by_name(&self, domain_id: &str, name: &str) -> CoreResult<User> {
        self.find_user_by_name(domain_id, name)
            .await?
            .ok_or_else(|| CoreError::not_found("user", name))
    }

    /// The user, or `None` where [`IdentityService::get_user_by_name`] would answer 404.
    pub async fn find_user_by_name(&self, domain_id: &str, name: &str) -> CoreResult<Option<User>> {
        Ok(self.source().user_by_name(domain_id, name).await?)
    }

    pub async fn list_users(&self, filter: &UserFilter) -> CoreResult<Vec<User>> {
        Ok(self.source().users(filter).await?)
    }

    /// The expiry of the user's current password, if it has one.
    pub async fn password_expires_at(&self, user_id: &str) -> CoreResult<Option<OffsetDateTime>> {
        let cache = &self.validations;
        cache
            .derive(&cache.password_expiries, user_id, async {
                let passwords = self.store.list_passwords(user_id).await?;
                let expiry = passwords.first().and_then(|p| p.expires_at);
                Ok::<_, CoreError>((expiry, vec![Dependency::User(user_id.to_string())]))
            })
            .await
    }

    /// Current password expiries of many users in one store call (for list responses).
    pub async fn password_expiries(
        &self,
        users: &[User],
    ) -> CoreResult<std::collections::HashMap<String, Option<OffsetDateTime>>> {
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        Ok(self.store.current_password_expiries(&ids).await?)
    }

    pub async fn update_user(
        &self,
        authz: &Authorized,
        id: &str,
        patch: UserPatch,
    ) -> CoreResult<User> {
        authz.require_on(&["identity:update_user"], &["user"], id)?;
        let mut user = self.get_user(id).await?;
        let was_enabled = user.enabled;
        if let Some(opts) = &patch.options {
            validate_user_options(opts)?;
        }
        if let Some(name) = patch.name {
            if name != user.name {
                if self
                    .find_user_by_name(&user.domain_id, &name)
                    .await?
                    .is_some()
                {
                    return Err(CoreError::conflict(
                        "user",
                        format!(
                            "Duplicate entry found with name {name} at domain ID {}",
                            user.domain_id
                        ),
                    ));
                }
                user.name = name;
            }
        }
        if let Some(e) = patch.enabled {
            user.enabled = e;
            if e && !was_enabled {
                // Re-enabling clears a lockout, as Keystone does.
                user.failed_auth_count = 0;
                user.failed_auth_at = None;
            }
        }
        if let Some(dp) = patch.default_project_id {
            user.default_project_id = dp;
        }
        merge_options(&mut user.options, patch.options);
        merge_extra(&mut user.extra, patch.extra);
        let now = self.clock.now();
        let new_password = match patch.password {
            // An administrator's reset is not held to the history rule (as in Keystone).
            Some(Some(pw)) => Some(self.new_password(&user, &pw, false, now).await?),
            _ => None,
        };
        // The user, a new password and the revocation of old tokens go together.
        self.in_unit(async |unit| {
            unit.store
                .update_user(&user)
                .await
                .map_err(|e| conflict_as("user", &user.name, &user.id, e))?;
            if let Some(p) = &new_password {
                unit.store
                    .set_password(p, unit.identity().history_to_keep())
                    .await?;
            }
            if (was_enabled && !user.enabled) || new_password.is_some() {
                unit.identity().revoke_tokens_of(&user.id).await?;
            }
            Ok(user)
        })
        .await
    }

    pub async fn delete_user(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require_on(&["identity:delete_user"], &["user"], id)?;
        // The user goes with the revocation of its tokens.
        self.in_unit(async |unit| {
            if !unit.store.delete_user(id).await? {
                return Err(CoreError::not_found("user", id));
            }
            unit.identity().revoke_tokens_of(id).await
        })
        .await
    }

    /// Revokes every token of the user issued until now.
    pub async fn revoke_user_tokens(&self, authz: &Authorized, user_id: &str) -> CoreResult<()> {
        authz.require(&["identity:revoke_tokens_for_user"])?;
        self.revoke_tokens_of(user_id).await
    }

    /// What a change to a user's password, state or groups implies for its tokens.
    pub(crate) async fn revoke_tokens_of(&self, user_id: &str) -> CoreResult<()> {
        let mut ev = RevocationEvent::at(self.clock.now());
        ev.user_id = Some(user_id.to_string());
        self.store.add_revocation_event(&ev).await?;
        Ok(())
    }

    /// Self-service password change (`POST /v3/users/{id}/password`).
    pub async fn change_password(
        &self,
        user_id: &str,
        original: &str,
        new_password: &str,
    ) -> CoreResult<()> {
        let user = self.get_user(user_id).await?;
        // Same checks as a password login, so lockout applies here too.
        self.token()
            .check_password_login(&user, original, true)
            .await?;
        if user_option(&user, "lock_password") {
            return Err(CoreError::forbidden(format!(
                "You cannot change your password at this time due to password policy \
                 disallowing password changes. Password for user {user_id} is locked."
            )));
        }
        let now = self.clock.now();
        let min_age = self.config.security.minimum_password_age as i64;
        if min_age > 0 {
            if let Some(current) = self.store.list_passwords(user_id).await?.first() {
                if current.self_service && now < current.created_at + Duration::days(min_age) {
                    return Err(CoreError::validation(format!(
                        "You cannot change your password at this time due to the minimum \
                         password age. Once you change your password, it must be used for {min_age} \
                         day(s) before it can be changed. Please try again in {} day(s) or contact \
                         your administrator to reset your password.",
                        ((current.created_at + Duration::days(min_age)) - now).whole_days() + 1
                    )));
                }
            }
        }
        self.check_password_history(user_id, new_password).await?;
        let pw = self.new_password(&user, new_password, true, now).await?;
        // The new password and the revocation of the old tokens go together.
        self.in_unit(async |unit| {
            unit.store
                .set_password(&pw, unit.identity().history_to_keep())
                .await?;
            unit.identity().revoke_tokens_of(user_id).await
        })
        .await
    }

    // ---- groups ----

    pub async fn create_group(&self, authz: &Authorized, input: NewGroup) -> CoreResult<Group> {
        authz.require(&["identity:create_group"])?;
        self.store
            .get_domain(&input.domain_id)
            .await?
            .ok_or_else(|| {
                CoreError::validation(format!("Could not find domain: {}.", input.domain_id))
            })?;
        let existing = self
            .source()
            .groups(&GroupFilter {
                name: Some(input.name.clone()),
                domain_id: Some(input.domain_id.clone()),
                ids: None,
            })
            .await?;
        if !existing.is_empty() {
            return Err(CoreError::conflict(
                "group",
                format!("Duplicate entry found with name {}", input.name),
            ));
        }
        let group = Group {
            id: self.new_id(),
            name: input.name,
            domain_id: input.domain_id,
            description: input.description,
            extra: input.extra,
        };
        self.store
            .create_group(&group)
            .await
            .map_err(|e| conflict_as("group", &group.name, &group.id, e))?;
        Ok(group)
    }

    pub async fn get_group(&self, id: &str) -> CoreResult<Group> {
        self.source()
            .group(id)
            .await?
            .ok_or_else(|| CoreError::not_found("group", id))
    }

    pub async fn list_groups(&self, filter: &GroupFilter) -> CoreResult<Vec<Group>> {
        Ok(self.source().groups(filter).await?)
    }

    pub async fn update_group(
        &self,
        authz: &Authorized,
        id: &str,
        patch: GroupPatch,
    ) -> CoreResult<Group> {
        authz.require_on(&["identity:update_group"], &["group"], id)?;
        let mut group = self.get_group(id).await?;
        if let Some(name) = patch.name {
            if name != group.name {
                let clash = self
                    .source()
                    .groups(&GroupFilter {
                        name: Some(name.clone()),
                        domain_id: Some(group.domain_id.clone()),
                        ids: None,
                    })
                    .await?;
                if !clash.is_empty() {
                    return Err(CoreError::conflict(
                        "group",
                        format!("Duplicate entry found with name {name}"),
                    ));
                }
                group.name = name;
            }
        }
        if let Some(d) = patch.description {
            group.description = d;
        }
        merge_extra(&mut group.extra, patch.extra);
        self.store
            .update_group(&group)
            .await
            .map_err(|e| conflict_as("group", &group.name, &group.id, e))?;
        Ok(group)
    }

    pub async fn delete_group(&self, authz: &Authorized, id: &str) -> CoreResult<()> {
        authz.require_on(&["identity:delete_group"], &["group"], id)?;
        if !self.store.delete_group(id).await? {
            return Err(CoreError::not_found("group", id));
        }
        Ok(())
    }

    pub async fn add_user_to_group(
        &self,
        authz: &Authorized,
        group_id: &str,
        user_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:add_user_to_group"])?;
        self.get_group(group_id).await?;
        self.get_user(user_id).await?;
        self.store.add_user_to_group(group_id, user_id).await?;
        Ok(())
    }

    pub async fn remove_user_from_group(
        &self,
        authz: &Authorized,
        group_id: &str,
        user_id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:remove_user_from_group"])?;
        self.get_group(group_id).await?;
        self.get_user(user_id).await?;
        // The membership goes with the user's tokens.
        self.in_unit(async |unit| {
            if !unit.store.remove_user_from_group(group_id, user_id).await? {
                return Err(CoreError::NotFoundMessage(format!(
                    "{user_id} is not a member of group {group_id}."
                )));
            }
            // Keystone revokes the user's tokens: they may carry roles held through the group.
            unit.identity().revoke_tokens_of(user_id).await
        })
        .await
    }

    pub async fn check_user_in_group(&self, group_id: &str, user_id: &str) -> CoreResult<()> {
        self.get_group(group_id).await?;
        self.get_user(user_id).await?;
        if !self.source().is_member(group_id, user_id).await? {
            return Err(CoreError::NotFoundMessage(format!(
                "{user_id} is not a member of group {group_id}."
            )));
        }
        Ok(())
    }

    /// The user's groups as `Domain/group` (group names are unique only within a
    /// domain; a `/` or `%` inside a name is percent-encoded, so no two are alike),
    /// sorted. `domain` is the user's, read already.
    pub async fn qualified_group_names(
        &self,
        user_id: &str,
        domain: &crate::model::Domain,
    ) -> CoreResult<Vec<String>> {
        let mut names = Vec::new();
        for g in self.list_groups_for_user(user_id).await? {
            let group_domain = if g.domain_id == domain.id {
                domain.name.clone()
            } else {
                self.resource().get_domain(&g.domain_id).await?.name
            };
            names.push(qualified_name(&group_domain, &g.name));
        }
        names.sort();
        Ok(names)
    }

    pub async fn list_groups_for_user(&self, user_id: &str) -> CoreResult<Vec<Group>> {
        self.get_user(user_id).await?;
        let ids = self.group_ids_of(user_id).await?;
        Ok(self
            .source()
            .groups(&GroupFilter {
                ids: Some(ids),
                ..Default::default()
            })
            .await?)
    }

    pub async fn list_users_in_group(&self, group_id: &str) -> CoreResult<Vec<User>> {
        self.get_group(group_id).await?;
        let ids = self.member_ids(group_id).await?;
        Ok(self
            .source()
            .users(&UserFilter {
                ids: Some(ids),
                ..Default::default()
            })
            .await?)
    }
}
