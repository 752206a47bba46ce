//! Domain-specific configuration (`/v3/domains/{id}/config`): per-domain identity and
//! LDAP options, restricted to the options Keystone allows there. Sensitive options
//! (the LDAP password) are stored but never shown.

use crate::authz::Authorized;
use crate::documents::DocumentKind;
use crate::error::{CoreError, CoreResult};
use crate::model::Extra;
use crate::resource::ResourceService;
use serde_json::{Map, Value};

const KIND: DocumentKind = DocumentKind::DomainConfig;

/// Keystone's defaults for the allowed options (read off Keystone 30's configuration).
const DEFAULTS: &str = include_str!("domain_config_defaults.json");

const SENSITIVE: &[(&str, &str)] = &[("ldap", "password")];

fn defaults() -> Map<String, Value> {
    match serde_json::from_str(DEFAULTS) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn invalid(reason: String) -> CoreError {
    CoreError::forbidden(format!("Invalid domain specific configuration: {reason}"))
}

fn is_sensitive(group: &str, option: &str) -> bool {
    SENSITIVE.contains(&(group, option))
}

/// Checks a group (and option) may be used in a domain configuration.
pub fn check_option(group: &str, option: Option<&str>) -> CoreResult<()> {
    let d = defaults();
    let Some(Value::Object(options)) = d.get(group) else {
        return Err(invalid(format!(
            "Group {group} is not supported for domain specific configurations."
        )));
    };
    if let Some(o) = option {
        if !options.contains_key(o) && !is_sensitive(group, o) {
            return Err(invalid(format!(
                "Option {o} in group {group} is not supported for domain specific configurations."
            )));
        }
    }
    Ok(())
}

fn check_config(config: &Extra) -> CoreResult<()> {
    if config.is_empty() {
        return Err(invalid("the configuration is empty.".into()));
    }
    for (group, options) in config {
        check_option(group, None)?;
        let Value::Object(options) = options else {
            return Err(invalid(format!("group {group} is not an object.")));
        };
        for o in options.keys() {
            check_option(group, Some(o))?;
        }
    }
    Ok(())
}

/// The configuration without sensitive options, as the API shows it.
fn visible(config: &Extra) -> Extra {
    let mut out = config.clone();
    for (g, o) in SENSITIVE {
        if let Some(Value::Object(opts)) = out.get_mut(*g) {
            opts.remove(*o);
            if opts.is_empty() {
                out.remove(*g);
            }
        }
    }
    out
}

fn not_found_any(domain_id: &str) -> CoreError {
    CoreError::NotFoundMessage(format!(
        "Could not find any options in domain configuration for domain {domain_id}."
    ))
}

fn not_found_option(group: &str, option: Option<&str>, domain_id: &str) -> CoreError {
    match option {
        Some(o) => CoreError::NotFoundMessage(format!(
            "Could not find option {o} in group {group} in domain configuration for domain {domain_id}."
        )),
        None => CoreError::NotFoundMessage(format!(
            "Could not find group {group} in domain configuration for domain {domain_id}."
        )),
    }
}

impl ResourceService<'_> {
    async fn stored_domain_config(&self, domain_id: &str) -> CoreResult<Option<Extra>> {
        self.get_domain(domain_id).await?;
        self.doc_get(KIND, domain_id).await
    }

    /// Creates or replaces a domain's configuration; returns whether it was new, and what
    /// is visible of it.
    pub async fn put_domain_config(
        &self,
        authz: &Authorized,
        domain_id: &str,
        config: Extra,
    ) -> CoreResult<(bool, Extra)> {
        authz.require(&["identity:create_domain_config"])?;
        check_config(&config)?;
        let existed = self.stored_domain_config(domain_id).await?.is_some();
        self.doc_put(KIND, domain_id, &config, false).await?;
        Ok((!existed, visible(&config)))
    }

    /// Reads a domain's configuration, one group of it, or one option.
    pub async fn get_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> CoreResult<Extra> {
        if let Some(g) = group {
            check_option(g, option)?;
        }
        let config = self
            .stored_domain_config(domain_id)
            .await?
            .ok_or_else(|| not_found_any(domain_id))?;
        let shown = visible(&config);
        let Some(g) = group else {
            return Ok(shown);
        };
        let opts = shown
            .get(g)
            .and_then(Value::as_object)
            .ok_or_else(|| not_found_option(g, option, domain_id))?;
        match option {
            None => {
                let mut m = Map::new();
                m.insert(g.to_string(), Value::Object(opts.clone()));
                Ok(m)
            }
            Some(o) => {
                let v = opts
                    .get(o)
                    .ok_or_else(|| not_found_option(g, Some(o), domain_id))?;
                let mut m = Map::new();
                m.insert(o.to_string(), v.clone());
                Ok(m)
            }
        }
    }

    /// Merges `patch` into the configuration (PATCH on the whole, a group or an option).
    /// `group`/`option` name what the URL addresses; the body must not name anything else.
    pub async fn update_domain_config(
        &self,
        authz: &Authorized,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
        patch: Extra,
    ) -> CoreResult<Extra> {
        authz.require(&["identity:update_domain_config"])?;
        let mut config = self
            .stored_domain_config(domain_id)
            .await?
            .ok_or_else(|| not_found_any(domain_id))?;
        let patch = match (group, option) {
            (Some(g), Some(o)) => {
                check_option(g, Some(o))?;
                if patch.len() != 1 || !patch.contains_key(o) {
                    let other = patch.keys().next().cloned().unwrap_or_default();
                    return Err(invalid(format!(
                        "Trying to update option {o} in group {g}, but config provided contains option {other} instead."
                    )));
                }
                let mut inner = Map::new();
                inner.insert(g.to_string(), Value::Object(patch));
                inner
            }
            (Some(g), None) => {
                check_option(g, None)?;
                if patch.len() != 1 || !patch.contains_key(g) {
                    let other = patch.keys().next().cloned().unwrap_or_default();
                    return Err(invalid(format!(
                        "request to update group {g}, but config provided contains group {other} instead."
                    )));
                }
                patch
            }
            _ => patch,
        };
        check_config(&patch)?;
        for (g, opts) in patch {
            let entry = config.entry(g).or_insert_with(|| Value::Object(Map::new()));
            if let (Value::Object(target), Value::Object(new)) = (entry, opts) {
                for (k, v) in new {
                    target.insert(k, v);
                }
            }
        }
        self.doc_put(KIND, domain_id, &config, false).await?;
        Ok(visible(&config))
    }

    pub async fn delete_domain_config(
        &self,
        authz: &Authorized,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> CoreResult<()> {
        authz.require(&["identity:delete_domain_config"])?;
        if let Some(g) = group {
            check_option(g, option)?;
        }
        // Read and written back as one.
        self.in_unit(async |unit| {
            let mut config = self
                .stored_domain_config(domain_id)
                .await?
                .ok_or_else(|| not_found_any(domain_id))?;
            match (group, option) {
                (None, _) => {
                    unit.doc_delete(KIND, domain_id).await?;
                    return Ok(());
                }
                (Some(g), None) => {
                    config
                        .remove(g)
                        .ok_or_else(|| not_found_option(g, None, domain_id))?;
                }
                (Some(g), Some(o)) => {
                    let opts = config
                        .get_mut(g)
                        .and_then(Value::as_object_mut)
                        .ok_or_else(|| not_found_option(g, Some(o), domain_id))?;
                    opts.remove(o)
                        .ok_or_else(|| not_found_option(g, Some(o), domain_id))?;
                    if opts.is_empty() {
                        config.remove(g);
                    }
                }
            }
            if config.is_empty() {
                unit.doc_delete(KIND, domain_id).await?;
            } else {
                unit.doc_put(KIND, domain_id, &config, false).await?;
            }
            Ok(())
        })
        .await
    }

    /// Keystone's defaults for the allowed options.
    pub fn default_domain_config(
        &self,
        group: Option<&str>,
        option: Option<&str>,
    ) -> CoreResult<Extra> {
        let d = defaults();
        let Some(g) = group else {
            return Ok(d);
        };
        check_option(g, option)?;
        let opts = d
            .get(g)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut m = Map::new();
        match option {
            None => {
                m.insert(g.to_string(), Value::Object(opts));
            }
            Some(o) => {
                let v = opts.get(o).cloned().ok_or_else(|| {
                    invalid(format!(
                        "Reading the default for option {o} in group {g} is not supported"
                    ))
                })?;
                m.insert(o.to_string(), v);
            }
        }
        Ok(m)
    }

    /// The security-compliance settings any user may read for a domain.
    pub async fn security_compliance_config(
        &self,
        domain_id: &str,
        option: Option<&str>,
    ) -> CoreResult<Extra> {
        self.get_domain(domain_id).await?;
        let sc = &self.config.security;
        let mut all = Map::new();
        all.insert(
            "password_regex".into(),
            serde_json::json!(sc.password_regex),
        );
        all.insert(
            "password_regex_description".into(),
            serde_json::json!(sc.password_regex_description),
        );
        match option {
            None => {
                let mut m = Map::new();
                m.insert("security_compliance".into(), Value::Object(all));
                Ok(m)
            }
            Some(o) => {
                let v = all.get(o).cloned().ok_or_else(|| {
                    invalid(format!(
                        "Reading option {o} in group security_compliance is not supported"
                    ))
                })?;
                let mut m = Map::new();
                m.insert(o.to_string(), v);
                Ok(m)
            }
        }
    }
}
