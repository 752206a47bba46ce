//! Request bodies: Keystone's JSON schemas, checked by hand, turned into domain inputs.
//! Attributes a schema does not name are kept as `extra`, as Keystone keeps them.

use crate::{Invalid, ProtoResult};
use limen_core::assignment::{NewRole, RolePatch};
use limen_core::catalog::{EndpointPatch, NewRegion, NewService, RegionPatch, ServicePatch};
use limen_core::delegation::appcred::{AccessRuleInput, NewApplicationCredential, RoleRef};
use limen_core::identity::{GroupPatch, NewGroup, UserPatch};
use limen_core::model::{Extra, Interface};
use limen_core::resource::{DomainPatch, ProjectPatch};
use limen_core::token::auth::{
    AppCredCredentials, AppCredRef, AuthRequest, DomainRef, PasswordCredentials, ProjectRef,
    ScopeRequest, TotpCredentials, UserRef,
};
use serde_json::{Map, Value};

fn invalid(field: &str, value: &Value, reason: impl AsRef<str>) -> Invalid {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Invalid(format!(
        "Invalid input for field/attribute {field}. Value: {shown}. {}",
        reason.as_ref()
    ))
}

/// Takes the single wrapper object (`{"user": {...}}`) out of a body.
pub fn unwrap(body: Value, key: &str) -> ProtoResult<Map<String, Value>> {
    let Value::Object(mut top) = body else {
        return Err(Invalid(
            "Expecting to find valid JSON in request body.".into(),
        ));
    };
    if let Some(extra) = top.keys().find(|k| k.as_str() != key) {
        return Err(Invalid(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    match top.remove(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid(key, &other, "is not of type 'object'")),
        None => Err(Invalid(format!("'{key}' is a required property"))),
    }
}

/// A wrapper object's fields, consumed as they are read; what remains is `extra`.
pub struct Fields {
    entity: &'static str,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(entity: &'static str, map: Map<String, Value>) -> Self {
        Fields { entity, map }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Refuses an update that changes nothing, with Keystone's message.
    pub fn not_empty(&self) -> ProtoResult<()> {
        if self.map.is_empty() {
            return Err(Invalid(format!(
                "Invalid input for field/attribute {}. Value: {{}}. {{}} does not have enough \
                 properties",
                self.entity
            )));
        }
        Ok(())
    }

    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    pub(crate) fn take(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k)
    }

    pub fn required(&self, k: &str) -> ProtoResult<()> {
        if self.map.contains_key(k) {
            Ok(())
        } else {
            Err(invalid(
                self.entity,
                &Value::Object(self.map.clone()),
                format!("'{k}' is a required property"),
            ))
        }
    }

    /// A string of `min..=max` characters (absent: `None`; `null` rejected).
    pub fn string(&mut self, k: &str, min: usize, max: usize) -> ProtoResult<Option<String>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min {
                    Err(invalid(
                        k,
                        &Value::String(s.clone()),
                        format!("'{s}' should be non-empty"),
                    ))
                } else if n > max {
                    Err(invalid(
                        k,
                        &Value::String(s.clone()),
                        format!("'{s}' is too long"),
                    ))
                } else {
                    Ok(Some(s))
                }
            }
            Some(v) => Err(invalid(k, &v, format!("{v} is not of type 'string'"))),
        }
    }

    /// A name: a non-empty string that is not only white space.
    pub fn name(&mut self, k: &str, max: usize) -> ProtoResult<Option<String>> {
        let s = self.string(k, 1, max)?;
        if let Some(n) = &s {
            if n.trim().is_empty() {
                return Err(invalid(
                    k,
                    &Value::String(n.clone()),
                    "Names must not be blank",
                ));
            }
        }
        Ok(s)
    }

    /// A string or `null`: `None` absent, `Some(None)` null.
    pub fn nullable_string(&mut self, k: &str, max: usize) -> ProtoResult<Option<Option<String>>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(Some(s))),
            Some(Value::String(s)) => Err(invalid(
                k,
                &Value::String(s.clone()),
                format!("'{s}' is too long"),
            )),
            Some(v) => Err(invalid(
                k,
                &v,
                format!("{v} is not of type 'string', 'null'"),
            )),
        }
    }

    /// A whole number or `null`: `None` absent, `Some(None)` null. The range is the
    /// domain's to check.
    pub fn nullable_integer(&mut self, k: &str) -> ProtoResult<Option<Option<i64>>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(Some(n.as_i64())),
            Some(v) => Err(invalid(
                k,
                &v,
                format!("{v} is not of type 'integer', 'null'"),
            )),
        }
    }

    /// A list of strings, each `1..=max` characters (absent: `None`).
    pub fn strings(&mut self, k: &str, max: usize) -> ProtoResult<Option<Vec<String>>> {
        let Some(v) = self.take(k) else {
            return Ok(None);
        };
        let Value::Array(items) = &v else {
            return Err(invalid(k, &v, format!("{v} is not of type 'array'")));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() && s.chars().count() <= max => Ok(s.clone()),
                other => Err(invalid(
                    k,
                    &v,
                    format!("{other} is not a string of 1 to {max} characters"),
                )),
            })
            .collect::<ProtoResult<Vec<String>>>()
            .map(Some)
    }

    pub fn boolean(&mut self, k: &str) -> ProtoResult<Option<bool>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(invalid(k, &v, format!("{v} is not of type 'boolean'"))),
        }
    }

    pub fn object(&mut self, k: &str) -> ProtoResult<Option<Extra>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(invalid(k, &v, format!("{v} is not of type 'object'"))),
        }
    }

    /// Rejects a field that may not be changed, with Keystone's message.
    pub fn immutable(&mut self, k: &str, message: &str) -> ProtoResult<()> {
        if self.map.contains_key(k) {
            return Err(Invalid(message.to_string()));
        }
        Ok(())
    }

    pub fn extra(self) -> Extra {
        self.map
    }

    /// Rejects whatever is left (schemas with `additionalProperties: false`).
    pub fn closed(self) -> ProtoResult<()> {
        match self.map.keys().next() {
            Some(k) => Err(invalid(
                self.entity,
                &Value::Object(self.map.clone()),
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            )),
            None => Ok(()),
        }
    }
}

/// Project (and domain) tags: unique, at most 80, each 1–255 characters without `/` or `,`.
pub fn tags(v: Value) -> ProtoResult<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(invalid("tags", &v, format!("{v} is not of type 'array'")));
    };
    if items.len() > limen_core::resource::MAX_PROJECT_TAGS {
        return Err(Invalid(format!(
            "The number of tags is limited to {}.",
            limen_core::resource::MAX_PROJECT_TAGS
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, t) in items.into_iter().enumerate() {
        let s = tag(&i.to_string(), t)?;
        if out.contains(&s) {
            return Err(Invalid(format!("Tags must be unique; '{s}' is repeated.")));
        }
        out.push(s);
    }
    Ok(out)
}

pub fn tag(field: &str, v: Value) -> ProtoResult<String> {
    let Value::String(s) = v else {
        return Err(invalid(field, &v, format!("{v} is not of type 'string'")));
    };
    let n = s.chars().count();
    if n == 0 || n > 255 {
        return Err(invalid(
            field,
            &Value::String(s.clone()),
            "tags must be 1 to 255 characters",
        ));
    }
    if s.contains('/') || s.contains(',') {
        return Err(invalid(
            field,
            &Value::String(s.clone()),
            format!("'{s}' does not match '^[^,/]*$'"),
        ));
    }
    Ok(s)
}

// ---- domains ----

pub struct DomainCreate {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

pub fn domain_create(body: Value) -> ProtoResult<DomainCreate> {
    let mut f = Fields::new("domain", unwrap(body, "domain")?);
    f.required("name")?;
    let name = f.name("name", 64)?.unwrap_or_default();
    let description = f
        .nullable_string("description", 65_535)?
        .flatten()
        .unwrap_or_default();
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let options = f.object("options")?.unwrap_or_default();
    let tags = f.take("tags").map(tags).transpose()?.unwrap_or_default();
    f.take("id");
    Ok(DomainCreate {
        name,
        description,
        enabled,
        tags,
        options,
        extra: f.extra(),
    })
}

pub fn domain_update(body: Value) -> ProtoResult<DomainPatch> {
    let map = unwrap(body, "domain")?;
    if map.is_empty() {
        return Err(invalid(
            "domain",
            &Value::Object(map),
            "{} should be non-empty",
        ));
    }
    let mut f = Fields::new("domain", map);
    f.immutable("id", "Cannot change ID")?;
    let name = f.name("name", 64)?;
    let description = f
        .nullable_string("description", 65_535)?
        .map(Option::unwrap_or_default);
    let enabled = f.boolean("enabled")?;
    let options = f.object("options")?;
    let tags = f.take("tags").map(tags).transpose()?;
    Ok(DomainPatch {
        name,
        description,
        enabled,
        tags,
        options,
        extra: f.extra(),
    })
}

// ---- projects ----

pub struct ProjectCreate {
    pub name: String,
    /// Absent or `null`: the server picks (parent's domain, or the token's).
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub is_domain: bool,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub options: Extra,
    pub extra: Extra,
}

pub fn project_create(body: Value) -> ProtoResult<ProjectCreate> {
    let mut f = Fields::new("project", unwrap(body, "project")?);
    f.required("name")?;
    let name = f.name("name", 64)?.unwrap_or_default();
    let domain_id = f.nullable_string("domain_id", 64)?.flatten();
    let parent_id = f.nullable_string("parent_id", 64)?.flatten();
    let is_domain = f.boolean("is_domain")?.unwrap_or(false);
    let description = f
        .nullable_string("description", 65_535)?
        .flatten()
        .unwrap_or_default();
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let options = f.object("options")?.unwrap_or_default();
    let tags = match f.take("tags") {
        Some(t) => tags(t)?,
        None => vec![],
    };
    f.take("id");
    Ok(ProjectCreate {
        name,
        domain_id,
        parent_id,
        is_domain,
        description,
        enabled,
        tags,
        options,
        extra: f.extra(),
    })
}

pub fn project_update(body: Value) -> ProtoResult<ProjectPatch> {
    let map = unwrap(body, "project")?;
    if map.is_empty() {
        return Err(invalid(
            "project",
            &Value::Object(map),
            "{} should be non-empty",
        ));
    }
    let mut f = Fields::new("project", map);
    f.immutable("id", "Cannot change ID")?;
    f.immutable("domain_id", "Cannot change Domain ID")?;
    f.immutable("is_domain", "Update of `is_domain` is not allowed.")?;
    let name = f.name("name", 64)?;
    let description = f
        .nullable_string("description", 65_535)?
        .map(Option::unwrap_or_default);
    let enabled = f.boolean("enabled")?;
    let options = f.object("options")?;
    let tags = f.take("tags").map(tags).transpose()?;
    Ok(ProjectPatch {
        name,
        description,
        enabled,
        tags,
        options,
        extra: f.extra(),
    })
}

// ---- users ----

pub struct UserCreate {
    pub name: String,
    pub domain_id: Option<String>,
    pub default_project_id: Option<String>,
    pub enabled: bool,
    pub password: Option<String>,
    pub options: Extra,
    pub extra: Extra,
}

pub fn user_create(body: Value) -> ProtoResult<UserCreate> {
    let mut f = Fields::new("user", unwrap(body, "user")?);
    f.required("name")?;
    let name = f.name("name", 255)?.unwrap_or_default();
    let domain_id = f.nullable_string("domain_id", 64)?.flatten();
    let default_project_id = f.nullable_string("default_project_id", 64)?.flatten();
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let password = f.nullable_string("password", usize::MAX)?.flatten();
    let options = f.object("options")?.unwrap_or_default();
    f.take("id");
    Ok(UserCreate {
        name,
        domain_id,
        default_project_id,
        enabled,
        password,
        options,
        extra: f.extra(),
    })
}

pub fn user_update(body: Value) -> ProtoResult<UserPatch> {
    let mut f = Fields::new("user", unwrap(body, "user")?);
    f.immutable("id", "Cannot change ID")?;
    f.immutable("domain_id", "Cannot change Domain ID")?;
    let name = f.name("name", 255)?;
    let default_project_id = f.nullable_string("default_project_id", 64)?;
    let enabled = f.boolean("enabled")?;
    let password = f.nullable_string("password", usize::MAX)?;
    let options = f.object("options")?;
    Ok(UserPatch {
        name,
        enabled,
        default_project_id,
        password,
        options,
        extra: f.extra(),
    })
}

pub struct PasswordChange {
    pub original_password: String,
    pub password: String,
}

pub fn password_change(body: Value) -> ProtoResult<PasswordChange> {
    let mut f = Fields::new("user", unwrap(body, "user")?);
    if !f.has("original_password") {
        return Err(Invalid("'original_password' is a required property".into()));
    }
    if !f.has("password") {
        return Err(Invalid("'password' is a required property".into()));
    }
    let original_password = f
        .string("original_password", 0, usize::MAX)?
        .unwrap_or_default();
    let password = f.string("password", 0, usize::MAX)?.unwrap_or_default();
    if let Some(k) = f.map.keys().next() {
        return Err(Invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(PasswordChange {
        original_password,
        password,
    })
}

// ---- groups ----

pub fn group_create(body: Value) -> ProtoResult<(NewGroup, Option<String>)> {
    let mut f = Fields::new("group", unwrap(body, "group")?);
    f.required("name")?;
    let name = f.name("name", 64)?.unwrap_or_default();
    let domain_id = f.nullable_string("domain_id", 64)?.flatten();
    let description = f
        .nullable_string("description", 65_535)?
        .flatten()
        .unwrap_or_default();
    f.take("id");
    Ok((
        NewGroup {
            name,
            domain_id: String::new(),
            description,
            extra: f.extra(),
        },
        domain_id,
    ))
}

pub fn group_update(body: Value) -> ProtoResult<GroupPatch> {
    let mut f = Fields::new("group", unwrap(body, "group")?);
    f.immutable("id", "Cannot change ID")?;
    f.immutable("domain_id", "Cannot change Domain ID")?;
    let name = f.name("name", 64)?;
    let description = f
        .nullable_string("description", 65_535)?
        .map(Option::unwrap_or_default);
    Ok(GroupPatch {
        name,
        description,
        extra: f.extra(),
    })
}

// ---- roles ----

pub fn role_create(body: Value) -> ProtoResult<NewRole> {
    let mut f = Fields::new("role", unwrap(body, "role")?);
    f.required("name")?;
    let name = f.name("name", 255)?.unwrap_or_default();
    let domain_id = f.nullable_string("domain_id", 64)?.flatten();
    let description = f.nullable_string("description", 255)?.flatten();
    let options = f.object("options")?.unwrap_or_default();
    check_role_options(&options)?;
    f.take("id");
    Ok(NewRole {
        name,
        domain_id,
        description,
        options,
        extra: f.extra(),
    })
}

pub fn role_update(body: Value) -> ProtoResult<RolePatch> {
    let mut f = Fields::new("role", unwrap(body, "role")?);
    f.immutable("id", "Cannot change ID")?;
    f.immutable("domain_id", "Cannot change Domain ID")?;
    let name = f.name("name", 255)?;
    let description = f
        .nullable_string("description", 255)?
        .map(Option::unwrap_or_default);
    let options = f.object("options")?;
    if let Some(o) = &options {
        check_role_options(o)?;
    }
    Ok(RolePatch {
        name,
        description,
        options,
        extra: f.extra(),
    })
}

fn check_role_options(o: &Extra) -> ProtoResult<()> {
    for (k, v) in o {
        match (k.as_str(), v) {
            ("immutable", Value::Bool(_) | Value::Null) => {}
            ("immutable", v) => return Err(invalid("options/immutable", v, "is not of type 'boolean'")),
            (k, _) => {
                return Err(Invalid(format!(
                    "Invalid input for field 'options': Additional properties are not allowed ('{k}' was unexpected)"
                )))
            }
        }
    }
    Ok(())
}

// ---- catalog ----

pub fn region_create(body: Value, path_id: Option<&str>) -> ProtoResult<NewRegion> {
    let mut f = Fields::new("region", unwrap(body, "region")?);
    let id = f.string("id", 1, 255)?;
    let id = match (path_id, id) {
        (Some(p), Some(b)) if p != b => {
            return Err(Invalid(format!(
                "Conflicting region IDs specified: \"{p}\" != \"{b}\""
            )))
        }
        (Some(p), _) => Some(p.to_string()),
        (None, b) => b,
    };
    let description = f
        .nullable_string("description", 255)?
        .flatten()
        .unwrap_or_default();
    let parent_region_id = f.nullable_string("parent_region_id", 255)?.flatten();
    Ok(NewRegion {
        id,
        description,
        parent_region_id,
        extra: f.extra(),
    })
}

pub fn region_update(body: Value) -> ProtoResult<RegionPatch> {
    let mut f = Fields::new("region", unwrap(body, "region")?);
    f.immutable("id", "Cannot change ID")?;
    let description = f
        .nullable_string("description", 255)?
        .map(Option::unwrap_or_default);
    let parent_region_id = f.nullable_string("parent_region_id", 255)?;
    Ok(RegionPatch {
        description,
        parent_region_id,
        extra: f.extra(),
    })
}

pub fn service_create(body: Value) -> ProtoResult<NewService> {
    let mut f = Fields::new("service", unwrap(body, "service")?);
    f.required("type")?;
    let service_type = f.string("type", 1, 255)?.unwrap_or_default();
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    check_optional_string(&f, "name", 255)?;
    f.take("id");
    Ok(NewService {
        service_type,
        enabled,
        extra: f.extra(),
    })
}

pub fn service_update(body: Value) -> ProtoResult<ServicePatch> {
    let mut f = Fields::new("service", unwrap(body, "service")?);
    f.immutable("id", "Cannot change ID")?;
    let service_type = f.string("type", 1, 255)?;
    let enabled = f.boolean("enabled")?;
    check_optional_string(&f, "name", 255)?;
    Ok(ServicePatch {
        service_type,
        enabled,
        extra: f.extra(),
    })
}

fn check_optional_string(f: &Fields, k: &str, max: usize) -> ProtoResult<()> {
    match f.map.get(k) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(()),
        Some(v) => Err(invalid(k, v, "is not a string of at most 255 characters")),
    }
}

/// An endpoint create: besides the fields, the legacy `region` (a region to create on the
/// fly when it does not exist).
pub struct EndpointCreate {
    pub service_id: String,
    pub region_id: Option<String>,
    pub interface: Interface,
    pub url: String,
    pub enabled: bool,
    pub extra: Extra,
}

fn interface(v: Option<String>) -> ProtoResult<Option<Interface>> {
    match v {
        None => Ok(None),
        Some(s) => Interface::parse(&s).map(Some).ok_or_else(|| {
            invalid(
                "interface",
                &Value::String(s.clone()),
                format!("'{s}' is not one of ['admin', 'internal', 'public']"),
            )
        }),
    }
}

fn check_url(url: &str) -> ProtoResult<()> {
    // Keystone substitutes only $(tenant_id)s-style names it knows; anything else is invalid.
    const KNOWN: &[&str] = &[
        "tenant_id",
        "project_id",
        "user_id",
        "public_bind_host",
        "admin_bind_host",
        "compute_host",
        "compute_port",
        "admin_port",
        "public_port",
    ];
    let mut rest = url;
    while let Some(i) = rest.find("$(") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(")s") else {
            return Err(Invalid(format!(
                "Cannot create an endpoint with an invalid URL: {url}."
            )));
        };
        if !KNOWN.contains(&&after[..end]) {
            return Err(Invalid(format!(
                "Cannot create an endpoint with an invalid URL: {url}."
            )));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn legacy_region(f: &mut Fields) -> ProtoResult<Option<Option<String>>> {
    let region_id = f.nullable_string("region_id", 255)?;
    let legacy = f.nullable_string("region", 255)?;
    Ok(match (region_id, legacy) {
        (Some(r), _) => Some(r),
        (None, l) => l,
    })
}

pub fn endpoint_create(body: Value) -> ProtoResult<EndpointCreate> {
    let mut f = Fields::new("endpoint", unwrap(body, "endpoint")?);
    f.required("service_id")?;
    f.required("interface")?;
    f.required("url")?;
    let service_id = f.string("service_id", 1, 64)?.unwrap_or_default();
    let iface = interface(f.string("interface", 1, 255)?)?.unwrap_or(Interface::Public);
    let url = f.string("url", 1, 225)?.unwrap_or_default();
    check_url(&url)?;
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let region_id = legacy_region(&mut f)?.flatten();
    f.take("id");
    Ok(EndpointCreate {
        service_id,
        region_id,
        interface: iface,
        url,
        enabled,
        extra: f.extra(),
    })
}

pub fn endpoint_update(body: Value) -> ProtoResult<EndpointPatch> {
    let mut f = Fields::new("endpoint", unwrap(body, "endpoint")?);
    f.immutable("id", "Cannot change ID")?;
    let service_id = f.string("service_id", 1, 64)?;
    let iface = interface(f.string("interface", 1, 255)?)?;
    let url = f.string("url", 1, 225)?;
    if let Some(u) = &url {
        check_url(u)?;
    }
    let enabled = f.boolean("enabled")?;
    let region_id = legacy_region(&mut f)?;
    Ok(EndpointPatch {
        service_id,
        region_id,
        interface: iface,
        url,
        enabled,
        extra: f.extra(),
    })
}

// ---- credentials ----

pub fn credential_create(
    body: Value,
) -> ProtoResult<limen_core::delegation::credential::NewCredential> {
    let mut f = Fields::new("credential", unwrap(body, "credential")?);
    for k in ["user_id", "type", "blob"] {
        f.required(k)?;
    }
    let user_id = f.string("user_id", 1, 64)?.unwrap_or_default();
    let cred_type = f.string("type", 1, 255)?.unwrap_or_default();
    let blob = f.string("blob", 1, 65_535)?.unwrap_or_default();
    let project_id = f.nullable_string("project_id", 64)?.flatten();
    f.take("id");
    Ok(limen_core::delegation::credential::NewCredential {
        user_id,
        project_id,
        cred_type,
        blob,
        extra: f.extra(),
    })
}

pub fn credential_update(
    body: Value,
) -> ProtoResult<limen_core::delegation::credential::CredentialPatch> {
    let mut f = Fields::new("credential", unwrap(body, "credential")?);
    f.immutable("id", "Cannot change ID")?;
    Ok(limen_core::delegation::credential::CredentialPatch {
        user_id: f.string("user_id", 1, 64)?,
        project_id: f.nullable_string("project_id", 64)?,
        cred_type: f.string("type", 1, 255)?,
        blob: f.string("blob", 1, 65_535)?,
        extra: f.extra(),
    })
}

// ---- trusts ----

pub fn trust_create(body: Value) -> ProtoResult<limen_core::delegation::trust::NewTrust> {
    let mut f = Fields::new("trust", unwrap(body, "trust")?);
    for k in ["trustor_user_id", "trustee_user_id", "impersonation"] {
        f.required(k)?;
    }
    let trustor_user_id = f.string("trustor_user_id", 1, 64)?.unwrap_or_default();
    let trustee_user_id = f.string("trustee_user_id", 1, 64)?.unwrap_or_default();
    let project_id = f.nullable_string("project_id", 64)?.flatten();
    let impersonation = f.boolean("impersonation")?.unwrap_or(false);
    let expires_at = match f.take("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::times::parse(&s).ok_or_else(|| {
            Invalid(format!("Invalid input for field/attribute expires_at. Value: {s}. '{s}' is not a 'date-time'"))
        })?),
        Some(v) => return Err(invalid("expires_at", &v, "is not of type 'string', 'null'")),
    };
    let remaining_uses = match f.take("remaining_uses") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => {
            let v = n.as_i64().unwrap_or_default();
            if v < 1 {
                return Err(invalid(
                    "remaining_uses",
                    &Value::Number(n),
                    format!("{v} is less than the minimum of 1"),
                ));
            }
            Some(v)
        }
        Some(v) => {
            return Err(invalid(
                "remaining_uses",
                &v,
                format!("{v} is not of type 'integer', 'null'"),
            ))
        }
    };
    let roles = match f.take("roles") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|r| {
                match (
                    r.get("id").and_then(Value::as_str),
                    r.get("name").and_then(Value::as_str),
                ) {
                    (Some(id), _) => Ok(RoleRef::Id(id.to_string())),
                    (None, Some(n)) => Ok(RoleRef::Name(n.to_string())),
                    _ => Err(invalid("roles", &r, "each role needs an id or a name")),
                }
            })
            .collect::<ProtoResult<Vec<_>>>()?,
        Some(v) => return Err(invalid("roles", &v, "is not of type 'array'")),
    };
    let allow_redelegation = match f.take("allow_redelegation") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(v) => {
            return Err(invalid(
                "allow_redelegation",
                &v,
                "is not of type 'boolean'",
            ))
        }
    };
    let redelegation_count = match f.take("redelegation_count") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(v) => {
            return Err(invalid(
                "redelegation_count",
                &v,
                "is not of type 'integer'",
            ))
        }
    };
    f.take("id");
    Ok(limen_core::delegation::trust::NewTrust {
        trustor_user_id,
        trustee_user_id,
        project_id,
        impersonation,
        expires_at,
        remaining_uses,
        roles,
        allow_redelegation,
        redelegation_count,
        extra: f.extra(),
    })
}

// ---- application credentials ----

pub fn application_credential_create(body: Value) -> ProtoResult<NewApplicationCredential> {
    let mut f = Fields::new(
        "application_credential",
        unwrap(body, "application_credential")?,
    );
    f.required("name")?;
    let name = f.name("name", 255)?.unwrap_or_default();
    let description = f.nullable_string("description", 255)?.flatten();
    let secret = f.nullable_string("secret", 4096)?.flatten();
    let expires_at = match f.take("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::times::parse(&s).ok_or_else(|| {
            invalid(
                "expires_at",
                &Value::String(s.clone()),
                "is not a valid date-time",
            )
        })?),
        Some(v) => return Err(invalid("expires_at", &v, "is not of type 'string', 'null'")),
    };
    let unrestricted = match f.take("unrestricted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(v) => return Err(invalid("unrestricted", &v, "is not of type 'boolean'")),
    };
    let roles = match f.take("roles") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|r| {
                    match (
                        r.get("id").and_then(Value::as_str),
                        r.get("name").and_then(Value::as_str),
                    ) {
                        (Some(id), _) => Ok(RoleRef::Id(id.to_string())),
                        (None, Some(n)) => Ok(RoleRef::Name(n.to_string())),
                        _ => Err(invalid("roles", &r, "each role needs an id or a name")),
                    }
                })
                .collect::<ProtoResult<Vec<_>>>()?,
        ),
        Some(v) => return Err(invalid("roles", &v, "is not of type 'array'")),
    };
    let access_rules = match f.take("access_rules") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|r| {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                    let method = s("method");
                    if let Some(m) = &method {
                        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str())
                        {
                            return Err(invalid(
                                "access_rules/method",
                                &Value::String(m.clone()),
                                "is not a valid HTTP method",
                            ));
                        }
                    }
                    Ok(AccessRuleInput {
                        id: s("id"),
                        service: s("service"),
                        path: s("path"),
                        method,
                    })
                })
                .collect::<ProtoResult<Vec<_>>>()?,
        ),
        Some(v) => return Err(invalid("access_rules", &v, "is not of type 'array'")),
    };
    f.take("id");
    f.take("system");
    f.take("project_id");
    if let Some(k) = f.extra().keys().next() {
        return Err(Invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(NewApplicationCredential {
        name,
        description,
        secret,
        expires_at,
        roles,
        unrestricted,
        access_rules,
    })
}

// ---- authentication ----

fn expecting(what: &str, inside: &str) -> Invalid {
    Invalid(format!(
        "Expecting to find {what} in {inside}. The server could not comply with the request since \
         it is either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

fn obj<'a>(v: &'a Value, field: &str) -> ProtoResult<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        Invalid(format!(
            "Invalid input for field '{field}': {v} is not of type 'object'"
        ))
    })
}

fn str_field(m: &Map<String, Value>, k: &str, path: &str) -> ProtoResult<Option<String>> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(Invalid(format!(
            "Invalid input for field '{path}/{k}': {v} is not of type 'string'"
        ))),
    }
}

fn domain_ref(m: &Map<String, Value>, path: &str) -> ProtoResult<Option<DomainRef>> {
    let Some(d) = m.get("domain") else {
        return Ok(None);
    };
    let d = obj(d, &format!("{path}/domain"))?;
    if let Some(id) = str_field(d, "id", &format!("{path}/domain"))? {
        return Ok(Some(DomainRef::Id(id)));
    }
    if let Some(name) = str_field(d, "name", &format!("{path}/domain"))? {
        return Ok(Some(DomainRef::Name(name)));
    }
    Err(Invalid(format!(
        "Invalid input for field '{path}/domain': it needs an 'id' or a 'name'"
    )))
}

/// `POST /v3/auth/tokens` body.
pub fn auth_request(body: Value) -> ProtoResult<AuthRequest> {
    let Value::Object(top) = body else {
        return Err(Invalid(
            "Expecting to find valid JSON in request body.".into(),
        ));
    };
    let auth = top
        .get("auth")
        .ok_or_else(|| expecting("auth", "request body"))?;
    let auth = obj(auth, "auth")?;
    let identity = auth
        .get("identity")
        .ok_or_else(|| Invalid("'identity' is a required property".into()))?;
    let identity = obj(identity, "identity")?;
    let methods = match identity.get("methods") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| {
                m.as_str().map(str::to_string).ok_or_else(|| {
                    Invalid(format!(
                        "Invalid input for field 'identity/methods': {m} is not of type 'string'"
                    ))
                })
            })
            .collect::<ProtoResult<Vec<_>>>()?,
        Some(v) => {
            return Err(Invalid(format!(
                "Invalid input for field 'identity/methods': {v} is not of type 'array'"
            )))
        }
        None => return Err(Invalid("'methods' is a required property".into())),
    };
    let mut password = None;
    let mut token = None;
    let mut application_credential = None;
    let mut totp = None;
    for m in &methods {
        match m.as_str() {
            "password" => {
                let p = identity
                    .get("password")
                    .ok_or_else(|| expecting("password", "identity"))?;
                let p = obj(p, "identity/password")?;
                let u = p.get("user").ok_or_else(|| expecting("user", "password"))?;
                let u = obj(u, "identity/password/user")?;
                let path = "identity/password/user";
                let pw = match u.get("password") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => {
                        return Err(Invalid(format!(
                            "Invalid input for field '{path}/password': {v} is not of type 'string'"
                        )))
                    }
                    None => return Err(expecting("password", "user")),
                };
                let user = if let Some(id) = str_field(u, "id", path)? {
                    UserRef::Id(id)
                } else if let Some(name) = str_field(u, "name", path)? {
                    let domain = domain_ref(u, path)?.ok_or_else(|| expecting("domain", "user"))?;
                    UserRef::Name { name, domain }
                } else {
                    return Err(expecting("id or name", "user"));
                };
                password = Some(PasswordCredentials { user, password: pw });
            }
            "token" => {
                let t = identity
                    .get("token")
                    .ok_or_else(|| expecting("token", "identity"))?;
                let t = obj(t, "identity/token")?;
                token = Some(str_field(t, "id", "identity/token")?.ok_or_else(|| {
                    Invalid(
                        "Invalid input for field 'identity/token': 'id' is a required property"
                            .into(),
                    )
                })?);
            }
            "totp" => {
                let t = identity
                    .get("totp")
                    .ok_or_else(|| expecting("totp", "identity"))?;
                let t = obj(t, "identity/totp")?;
                let u = t.get("user").ok_or_else(|| expecting("user", "totp"))?;
                let path = "identity/totp/user";
                let u = obj(u, path)?;
                let passcode = str_field(u, "passcode", path)?.unwrap_or_default();
                let user = if let Some(id) = str_field(u, "id", path)? {
                    UserRef::Id(id)
                } else if let Some(name) = str_field(u, "name", path)? {
                    let domain = domain_ref(u, path)?.ok_or_else(|| expecting("domain", "user"))?;
                    UserRef::Name { name, domain }
                } else {
                    return Err(expecting("id or name", "user"));
                };
                totp = Some(TotpCredentials { user, passcode });
            }
            "application_credential" => {
                let a = identity
                    .get("application_credential")
                    .ok_or_else(|| expecting("application_credential", "identity"))?;
                let path = "identity/application_credential";
                let a = obj(a, path)?;
                let secret = str_field(a, "secret", path)?.ok_or_else(|| {
                    Invalid(format!(
                        "Invalid input for field '{path}': 'secret' is a required property"
                    ))
                })?;
                let credential = if let Some(id) = str_field(a, "id", path)? {
                    AppCredRef::Id(id)
                } else if let Some(name) = str_field(a, "name", path)? {
                    let u = a
                        .get("user")
                        .ok_or_else(|| expecting("user", "application credential"))?;
                    let u = obj(u, &format!("{path}/user"))?;
                    let user = if let Some(id) = str_field(u, "id", path)? {
                        UserRef::Id(id)
                    } else if let Some(name) = str_field(u, "name", path)? {
                        let domain =
                            domain_ref(u, path)?.ok_or_else(|| expecting("domain", "user"))?;
                        UserRef::Name { name, domain }
                    } else {
                        return Err(expecting("id or name", "user"));
                    };
                    AppCredRef::Name { name, user }
                } else {
                    return Err(expecting("id or name", "application credential"));
                };
                application_credential = Some(AppCredCredentials { credential, secret });
            }
            _ => {}
        }
    }
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => ScopeRequest::Default,
        Some(Value::String(s)) if s == "unscoped" => ScopeRequest::Unscoped,
        Some(s) => {
            let s = obj(s, "scope")?;
            let kinds = ["project", "domain", "system", "OS-TRUST:trust"]
                .iter()
                .filter(|k| s.contains_key(**k))
                .count();
            if kinds != 1 {
                return Err(expecting(
                    "system, project, domain, OS-TRUST:trust or unscoped",
                    "scope",
                ));
            }
            if let Some(p) = s.get("project") {
                let p = obj(p, "scope/project")?;
                if let Some(id) = str_field(p, "id", "scope/project")? {
                    ScopeRequest::Project(ProjectRef::Id(id))
                } else if let Some(name) = str_field(p, "name", "scope/project")? {
                    let domain = domain_ref(p, "scope/project")?
                        .ok_or_else(|| expecting("domain", "project"))?;
                    ScopeRequest::Project(ProjectRef::Name { name, domain })
                } else {
                    return Err(expecting("id or name", "project"));
                }
            } else if let Some(d) = s.get("domain") {
                let d = obj(d, "scope/domain")?;
                if let Some(id) = str_field(d, "id", "scope/domain")? {
                    ScopeRequest::Domain(DomainRef::Id(id))
                } else if let Some(name) = str_field(d, "name", "scope/domain")? {
                    ScopeRequest::Domain(DomainRef::Name(name))
                } else {
                    return Err(expecting("id or name", "domain"));
                }
            } else if let Some(sys) = s.get("system") {
                let sys = obj(sys, "scope/system")?;
                match sys.get("all") {
                    Some(Value::Bool(true)) => ScopeRequest::System,
                    _ => return Err(expecting("system all", "scope")),
                }
            } else if let Some(t) = s.get("OS-TRUST:trust") {
                let t = obj(t, "scope/OS-TRUST:trust")?;
                match str_field(t, "id", "scope/OS-TRUST:trust")? {
                    Some(id) => ScopeRequest::Trust(id),
                    None => return Err(expecting("trust_id", "trust")),
                }
            } else {
                return Err(expecting(
                    "system, project, domain, OS-TRUST:trust or unscoped",
                    "scope",
                ));
            }
        }
    };
    Ok(AuthRequest {
        methods,
        password,
        token,
        application_credential,
        totp,
        receipt: None,
        oauth1: None,
        scope,
    })
}

// ---- legacy policies, OAuth1 consumers, endpoint groups, limits ----

pub fn policy_create(body: Value) -> ProtoResult<(String, String, Extra)> {
    let mut f = Fields::new("policy", unwrap(body, "policy")?);
    f.required("blob")?;
    f.required("type")?;
    let blob = f.string("blob", 0, 65_535)?.unwrap_or_default();
    let policy_type = f.string("type", 1, 255)?.unwrap_or_default();
    f.take("id");
    Ok((blob, policy_type, f.extra()))
}

pub fn policy_update(body: Value) -> ProtoResult<limen_core::catalog::policies::PolicyPatch> {
    let mut f = Fields::new("policy", unwrap(body, "policy")?);
    f.immutable("id", "Cannot change ID")?;
    Ok(limen_core::catalog::policies::PolicyPatch {
        blob: f.string("blob", 0, 65_535)?,
        policy_type: f.string("type", 1, 255)?,
        extra: f.extra(),
    })
}

pub fn consumer_create(body: Value) -> ProtoResult<(Option<String>, Extra)> {
    let mut f = Fields::new("consumer", unwrap(body, "consumer")?);
    if f.has("secret") {
        return Err(Invalid(
            "A consumer's secret is generated, not given.".into(),
        ));
    }
    let description = f.nullable_string("description", 65_535)?.flatten();
    f.take("id");
    Ok((description, f.extra()))
}

pub fn consumer_update(body: Value) -> ProtoResult<(Option<Option<String>>, Extra)> {
    let map = unwrap(body, "consumer")?;
    if map.is_empty() {
        return Err(invalid(
            "consumer",
            &Value::Object(map),
            "{} should be non-empty",
        ));
    }
    let mut f = Fields::new("consumer", map);
    f.immutable("id", "Cannot change ID")?;
    if f.has("secret") {
        return Err(Invalid("A consumer's secret cannot be changed.".into()));
    }
    let description = f.nullable_string("description", 65_535)?;
    Ok((description, f.extra()))
}

pub struct EndpointGroupInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub filters: Option<Extra>,
}

pub fn endpoint_group(body: Value, create: bool) -> ProtoResult<EndpointGroupInput> {
    let mut f = Fields::new("endpoint_group", unwrap(body, "endpoint_group")?);
    if create {
        f.required("filters")?;
        f.required("name")?;
    }
    f.immutable("id", "Cannot change ID")?;
    let name = f.name("name", 255)?;
    let description = f.nullable_string("description", 65_535)?;
    let filters = f.object("filters")?;
    if let Some(k) = f.extra().keys().next() {
        return Err(Invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(EndpointGroupInput {
        name,
        description,
        filters,
    })
}

fn limit_items(body: Value, key: &str) -> ProtoResult<Vec<Map<String, Value>>> {
    let Value::Object(mut top) = body else {
        return Err(Invalid(format!("'{key}' is a required property")));
    };
    let items = match top.remove(key) {
        Some(Value::Array(a)) => a,
        Some(v) => return Err(invalid(key, &v, "is not of type 'array'")),
        None => return Err(Invalid(format!("'{key}' is a required property"))),
    };
    if items.is_empty() {
        return Err(invalid(
            key,
            &Value::Array(vec![]),
            "[] should be non-empty",
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            other => Err(invalid(&i.to_string(), &other, "is not of type 'object'")),
        })
        .collect()
}

fn int_field(f: &mut Fields, k: &str, min: i64) -> ProtoResult<Option<i64>> {
    match f.take(k) {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => {
            let v = n.as_i64().unwrap_or_default();
            if v < min {
                return Err(invalid(
                    k,
                    &Value::Number(n),
                    format!("{v} is less than the minimum of {min}"),
                ));
            }
            Ok(Some(v))
        }
        Some(v) => Err(invalid(k, &v, format!("{v} is not of type 'integer'"))),
    }
}

pub fn registered_limits(
    body: Value,
) -> ProtoResult<Vec<limen_core::resource::limits::RegisteredLimit>> {
    limit_items(body, "registered_limits")?
        .into_iter()
        .map(|m| {
            let mut f = Fields::new("registered_limit", m);
            for k in ["service_id", "resource_name", "default_limit"] {
                f.required(k)?;
            }
            Ok(limen_core::resource::limits::RegisteredLimit {
                id: String::new(),
                service_id: f.string("service_id", 1, 255)?.unwrap_or_default(),
                region_id: f.nullable_string("region_id", 255)?.flatten(),
                resource_name: f.string("resource_name", 1, 255)?.unwrap_or_default(),
                default_limit: int_field(&mut f, "default_limit", -1)?.unwrap_or_default(),
                description: f.nullable_string("description", 65_535)?.flatten(),
            })
        })
        .collect()
}

pub fn registered_limit_update(
    body: Value,
) -> ProtoResult<limen_core::resource::limits::RegisteredLimitPatch> {
    let mut f = Fields::new("registered_limit", unwrap(body, "registered_limit")?);
    f.immutable("id", "Cannot change ID")?;
    Ok(limen_core::resource::limits::RegisteredLimitPatch {
        service_id: f.string("service_id", 1, 255)?,
        region_id: f.nullable_string("region_id", 255)?,
        resource_name: f.string("resource_name", 1, 255)?,
        default_limit: int_field(&mut f, "default_limit", -1)?,
        description: f.nullable_string("description", 65_535)?,
    })
}

pub fn limits(body: Value) -> ProtoResult<Vec<limen_core::resource::limits::Limit>> {
    limit_items(body, "limits")?
        .into_iter()
        .map(|m| {
            let mut f = Fields::new("limit", m);
            for k in ["service_id", "resource_name", "resource_limit"] {
                f.required(k)?;
            }
            let project_id = f.nullable_string("project_id", 64)?.flatten();
            let domain_id = f.nullable_string("domain_id", 64)?.flatten();
            if project_id.is_some() == domain_id.is_some() {
                return Err(Invalid(
                    "A limit names a project_id or a domain_id, not both and not neither.".into(),
                ));
            }
            Ok(limen_core::resource::limits::Limit {
                id: String::new(),
                project_id,
                domain_id,
                service_id: f.string("service_id", 1, 255)?.unwrap_or_default(),
                region_id: f.nullable_string("region_id", 255)?.flatten(),
                resource_name: f.string("resource_name", 1, 255)?.unwrap_or_default(),
                resource_limit: int_field(&mut f, "resource_limit", -1)?.unwrap_or_default(),
                description: f.nullable_string("description", 65_535)?.flatten(),
            })
        })
        .collect()
}

pub fn limit_update(body: Value) -> ProtoResult<(Option<i64>, Option<Option<String>>)> {
    let mut f = Fields::new("limit", unwrap(body, "limit")?);
    f.immutable("id", "Cannot change ID")?;
    let r = int_field(&mut f, "resource_limit", -1)?;
    let d = f.nullable_string("description", 65_535)?;
    if let Some(k) = f.extra().keys().next() {
        return Err(Invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok((r, d))
}

/// `{"config": {...}}` bodies of the domain configuration API.
pub fn domain_config(body: Value) -> ProtoResult<Extra> {
    let Value::Object(mut top) = body else {
        return Err(Invalid("'config' is a required property".into()));
    };
    match top.remove("config") {
        Some(Value::Object(m)) => Ok(m),
        Some(v) => Err(invalid("config", &v, "is not of type 'object'")),
        None => Err(Invalid("'config' is a required property".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrapper_and_extra() {
        let u =
            user_create(json!({"user": {"name": "a", "email": "a@x", "enabled": false}})).unwrap();
        assert_eq!(u.name, "a");
        assert!(!u.enabled);
        assert_eq!(u.extra.get("email"), Some(&json!("a@x")));
        assert!(user_create(json!({"user": {"name": "a"}, "x": 1})).is_err());
        assert!(user_create(json!({"name": "a"})).is_err());
        assert!(user_create(json!({"user": {}})).is_err());
        assert!(user_create(json!({"user": {"name": ""}})).is_err());
        assert!(user_create(json!({"user": {"name": "a", "enabled": "yes"}})).is_err());
        assert!(user_update(json!({"user": {"domain_id": "x"}})).is_err());
    }

    #[test]
    fn names_and_tags() {
        assert!(project_create(json!({"project": {"name": "n".repeat(65)}})).is_err());
        assert!(project_create(json!({"project": {"name": "n".repeat(64)}})).is_ok());
        assert!(project_create(json!({"project": {"name": "p", "tags": ["a/b"]}})).is_err());
        assert!(project_create(json!({"project": {"name": "p", "tags": ["a", "a"]}})).is_err());
        let many: Vec<String> = (0..81).map(|i| format!("t{i}")).collect();
        assert!(project_create(json!({"project": {"name": "p", "tags": many}})).is_err());
    }

    #[test]
    fn auth_bodies() {
        let r = auth_request(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u", "domain": {"name": "Default"}, "password": "p"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})).unwrap();
        assert_eq!(
            r.scope,
            ScopeRequest::Project(ProjectRef::Name {
                name: "admin".into(),
                domain: DomainRef::Id("default".into())
            })
        );
        assert!(auth_request(json!({})).is_err());
        assert!(auth_request(json!({"auth": {"identity": {"methods": ["password"]}}})).is_err());
        assert!(auth_request(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u", "password": "p"}}}}})).is_err());
        assert!(
            auth_request(json!({"auth": {"identity": {"methods": ["token"], "token": {}}}}))
                .is_err()
        );
        let both = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": {"project": {"id": "p"}, "domain": {"id": "d"}}}});
        assert!(auth_request(both).is_err());
        let sys = auth_request(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": {"system": {"all": true}}}})).unwrap();
        assert_eq!(sys.scope, ScopeRequest::System);
    }

    #[test]
    fn endpoints() {
        let e = endpoint_create(json!({"endpoint": {"service_id": "s", "interface": "public", "url": "http://x/$(project_id)s", "region": "R"}})).unwrap();
        assert_eq!(e.region_id.as_deref(), Some("R"));
        assert!(endpoint_create(
            json!({"endpoint": {"service_id": "s", "interface": "private", "url": "http://x"}})
        )
        .is_err());
        assert!(endpoint_create(json!({"endpoint": {"service_id": "s", "interface": "public", "url": "http://x/$(bogus)s"}})).is_err());
        assert!(endpoint_create(json!({"endpoint": {"service_id": "s", "interface": "public", "url": "http://x", "enabled": "False"}})).is_err());
    }
}
