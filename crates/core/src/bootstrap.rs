//! Bootstrap, like `keystone-manage bootstrap`: the default domain, the admin project,
//! user and roles, role implications, the region and the identity service with its
//! endpoints. Running it again changes nothing but what is missing (and the admin's
//! password, if a different one is given).

use crate::assignment::NewRole;
use crate::authz::Authorized;
use crate::catalog::{NewEndpoint, NewRegion, NewService};
use crate::error::CoreResult;
use crate::identity::{NewUser, UserPatch};
use crate::model::{Actor, Assignment, Extra, Interface, Role, Target, DEFAULT_DOMAIN_ID};
use crate::resource::{NewDomain, NewProject};
use crate::service::Limen;
use crate::store::{EndpointFilter, RoleFilter};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct BootstrapInput {
    pub admin_username: String,
    pub admin_password: String,
    pub project_name: String,
    pub region_id: String,
    pub public_url: Option<String>,
    pub internal_url: Option<String>,
    pub admin_url: Option<String>,
}

/// What bootstrap created or found.
#[derive(Debug, Clone, Default)]
pub struct BootstrapReport {
    pub created: Vec<String>,
    pub admin_user_id: String,
    pub admin_project_id: String,
}

/// Roles bootstrap creates, each implying the next (admin ⇒ manager ⇒ member ⇒ reader),
/// plus `service`.
pub const DEFAULT_ROLES: &[&str] = &["admin", "manager", "member", "reader"];

fn immutable() -> Extra {
    let mut m = Extra::new();
    m.insert("immutable".into(), Value::Bool(true));
    m
}

impl Limen {
    async fn ensure_role(&self, name: &str, report: &mut BootstrapReport) -> CoreResult<Role> {
        let found = self
            .store
            .list_roles(&RoleFilter {
                name: Some(name.to_string()),
                domain_id: Some(None),
            })
            .await?;
        if let Some(r) = found.into_iter().next() {
            return Ok(r);
        }
        report.created.push(format!("role {name}"));
        self.assignment()
            .create_role(
                &Authorized::bootstrap("identity:create_role"),
                NewRole {
                    name: name.to_string(),
                    domain_id: None,
                    description: None,
                    options: immutable(),
                    extra: Extra::new(),
                },
            )
            .await
    }

    pub async fn bootstrap(&self, input: BootstrapInput) -> CoreResult<BootstrapReport> {
        let mut report = BootstrapReport::default();
        if self.store.get_domain(DEFAULT_DOMAIN_ID).await?.is_none() {
            self.resource()
                .create_domain(
                    &Authorized::bootstrap("identity:create_domain"),
                    NewDomain {
                        id: Some(DEFAULT_DOMAIN_ID.into()),
                        name: "Default".into(),
                        description: "The default domain".into(),
                        enabled: true,
                        ..Default::default()
                    },
                )
                .await?;
            report.created.push("domain Default".into());
        }
        let project = match self
            .store
            .get_project_by_name(DEFAULT_DOMAIN_ID, &input.project_name)
            .await?
        {
            Some(p) => p,
            None => {
                report
                    .created
                    .push(format!("project {}", input.project_name));
                self.resource()
                    .create_project(
                        &Authorized::bootstrap("identity:create_project"),
                        NewProject {
                            name: input.project_name.clone(),
                            domain_id: DEFAULT_DOMAIN_ID.into(),
                            description: "Bootstrap project for initializing the cloud.".into(),
                            enabled: true,
                            ..Default::default()
                        },
                    )
                    .await?
            }
        };
        let mut roles = Vec::new();
        for name in DEFAULT_ROLES {
            roles.push(self.ensure_role(name, &mut report).await?);
        }
        self.ensure_role("service", &mut report).await?;
        let implied = self.store.list_implied_roles().await?;
        for pair in roles.windows(2) {
            let exists = implied
                .iter()
                .any(|i| i.prior_role_id == pair[0].id && i.implied_role_id == pair[1].id);
            if !exists {
                self.assignment()
                    .create_implied_role(
                        &Authorized::bootstrap("identity:create_implied_role"),
                        &pair[0].id,
                        &pair[1].id,
                    )
                    .await?;
                report
                    .created
                    .push(format!("implication {} => {}", pair[0].name, pair[1].name));
            }
        }
        let admin_role = &roles[0];

        let user = match self
            .identity()
            .find_user_by_name(DEFAULT_DOMAIN_ID, &input.admin_username)
            .await?
        {
            Some(u) => {
                let current = self.store.list_passwords(&u.id).await?;
                let matches = match current.first() {
                    Some(p) => self.hasher.verify(&input.admin_password, &p.hash).await,
                    None => false,
                };
                if !matches || !u.enabled {
                    self.identity()
                        .update_user(
                            &Authorized::bootstrap("identity:update_user"),
                            &u.id,
                            UserPatch {
                                enabled: Some(true),
                                password: Some(Some(input.admin_password.clone())),
                                ..Default::default()
                            },
                        )
                        .await?;
                    report.created.push(format!("password of {}", u.name));
                }
                u
            }
            None => {
                report
                    .created
                    .push(format!("user {}", input.admin_username));
                // The operator chose this password; it is not a first-use password.
                let mut options = Extra::new();
                options.insert("ignore_change_password_upon_first_use".into(), json!(true));
                self.identity()
                    .create_user(
                        &Authorized::bootstrap("identity:create_user"),
                        NewUser {
                            name: input.admin_username.clone(),
                            domain_id: DEFAULT_DOMAIN_ID.into(),
                            enabled: true,
                            password: Some(input.admin_password.clone()),
                            options,
                            ..Default::default()
                        },
                    )
                    .await?
            }
        };
        for target in [Target::Project(project.id.clone()), Target::System] {
            let a = Assignment {
                actor: Actor::User(user.id.clone()),
                target,
                role_id: admin_role.id.clone(),
                inherited: false,
            };
            self.store.create_assignment(&a).await?;
        }

        if self.store.get_region(&input.region_id).await?.is_none() {
            self.catalog()
                .create_region(
                    &Authorized::bootstrap("identity:create_region"),
                    NewRegion {
                        id: Some(input.region_id.clone()),
                        ..Default::default()
                    },
                )
                .await?;
            report.created.push(format!("region {}", input.region_id));
        }
        let services = self.store.list_services().await?;
        let service = match services.into_iter().find(|s| s.service_type == "identity") {
            Some(s) => s,
            None => {
                let mut extra = Extra::new();
                extra.insert("name".into(), json!("keystone"));
                report.created.push("service keystone (identity)".into());
                self.catalog()
                    .create_service(
                        &Authorized::bootstrap("identity:create_service"),
                        NewService {
                            service_type: "identity".into(),
                            enabled: true,
                            extra,
                        },
                    )
                    .await?
            }
        };
        let existing = self
            .store
            .list_endpoints(&EndpointFilter {
                service_id: Some(service.id.clone()),
                ..Default::default()
            })
            .await?;
        let urls = [
            (Interface::Public, input.public_url.clone()),
            (
                Interface::Internal,
                input.internal_url.clone().or(input.public_url.clone()),
            ),
            (
                Interface::Admin,
                input.admin_url.clone().or(input.public_url.clone()),
            ),
        ];
        for (iface, url) in urls {
            let Some(url) = url else { continue };
            let present = existing.iter().find(|e| {
                e.interface == iface && e.region_id.as_deref() == Some(input.region_id.as_str())
            });
            match present {
                Some(e) if e.url == url => {}
                Some(e) => {
                    self.catalog()
                        .update_endpoint(
                            &Authorized::bootstrap("identity:update_endpoint"),
                            &e.id,
                            crate::catalog::EndpointPatch {
                                url: Some(url.clone()),
                                ..Default::default()
                            },
                        )
                        .await?;
                    report
                        .created
                        .push(format!("{} endpoint url {url}", iface.as_str()));
                }
                None => {
                    self.catalog()
                        .create_endpoint(
                            &Authorized::bootstrap("identity:create_endpoint"),
                            NewEndpoint {
                                service_id: service.id.clone(),
                                region_id: Some(input.region_id.clone()),
                                interface: iface,
                                url: url.clone(),
                                enabled: true,
                                extra: Extra::new(),
                            },
                        )
                        .await?;
                    report
                        .created
                        .push(format!("{} endpoint {url}", iface.as_str()));
                }
            }
        }
        report.admin_user_id = user.id;
        report.admin_project_id = project.id;
        Ok(report)
    }
}
