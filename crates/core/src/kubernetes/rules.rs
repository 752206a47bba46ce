//! Limen's authorization rules for a Kubernetes cluster (the decision behind the
//! SubjectAccessReview webhook). A rule names who (Kubernetes groups, which is how
//! Limen's people reach a cluster: `limen:project:<id>:<role>` for a project role,
//! `limen:group:Domain/group` for a Keystone group), what (namespaces, API groups,
//! resources with their subresources, names, or non-resource paths) and the verbs, and
//! allows or denies. Nothing applies to everyone unless it says so (the group
//! `system:authenticated`); a deny beats an allow; where no rule applies Limen has no
//! opinion and the cluster's next authorizer (RBAC) decides.

use crate::authz::Authorized;
use crate::documents::{DocumentKind, Indexed};
use crate::error::{CoreError, CoreResult};
use crate::kubernetes::cluster::Cluster;
use crate::kubernetes::KubernetesService;
use serde::{Deserialize, Serialize};

const KIND: DocumentKind = DocumentKind::KubeRule;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSubject {
    /// Holders of a role on a project (the group `limen:project:<id>:<role>`).
    ProjectRole { project_id: String, role: String },
    /// A Kubernetes group, as the cluster's authenticators name it.
    Group(String),
}

impl RuleSubject {
    /// The Kubernetes group the subject stands for.
    pub fn group(&self) -> String {
        match self {
            RuleSubject::ProjectRole { project_id, role } => {
                format!("limen:project:{project_id}:{role}")
            }
            RuleSubject::Group(g) => g.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeRule {
    pub id: String,
    pub cluster_id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub subjects: Vec<RuleSubject>,
    pub effect: Effect,
    pub verbs: Vec<String>,
    /// Namespace names, or `*` for every namespace. A request without a namespace (a
    /// cluster-scoped resource, or all namespaces at once) is allowed only by `*` without
    /// `except_namespaces`, and denied by a deny that names any namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// API groups (`""` is the core group), or `*`.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// `pods` (the resource alone), `pods/exec`, `pods/*` (every subresource), `*/scale`,
    /// or `*` (everything).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty: any.
    #[serde(default)]
    pub names: Vec<String>,
    /// Namespaces `namespaces: ["*"]` does not cover here (k8s-keystone-auth's
    /// `!kube-system`).
    #[serde(default)]
    pub except_namespaces: Vec<String>,
    /// Resources (with all their subresources) `resources` does not cover here.
    #[serde(default)]
    pub except_resources: Vec<String>,
    /// Non-resource URL paths (`/healthz`, `/metrics/*`); a rule has these or resources.
    #[serde(default)]
    pub non_resource_paths: Vec<String>,
    pub created_at: i64,
}

impl Indexed for KubeRule {
    const KIND: DocumentKind = KIND;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn owner(&self) -> &str {
        &self.cluster_id
    }
}

/// What a new rule is made of.
#[derive(Debug, Clone, Default)]
pub struct NewKubeRule {
    pub description: Option<String>,
    pub subjects: Vec<RuleSubject>,
    pub effect: Effect,
    pub verbs: Vec<String>,
    pub namespaces: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub names: Vec<String>,
    pub except_namespaces: Vec<String>,
    pub except_resources: Vec<String>,
    pub non_resource_paths: Vec<String>,
}

/// What a SubjectAccessReview asks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRequest {
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    pub target: AccessTarget,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccessTarget {
    Resource {
        /// Empty: a cluster-scoped resource, or a namespaced one across all namespaces
        /// (the review does not say which).
        namespace: String,
        api_group: String,
        resource: String,
        subresource: String,
        name: String,
    },
    NonResource {
        path: String,
    },
}

impl Default for AccessTarget {
    fn default() -> Self {
        AccessTarget::NonResource { path: "/".into() }
    }
}

/// Limen's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision {
    Allowed { reason: String },
    Denied { reason: String },
    NoOpinion { reason: String },
}

fn any_or(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

/// Whether a rule's resource pattern covers `resource` with `subresource` (maybe "").
fn resource_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (p_res, p_sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    let res_ok = p_res == "*" || p_res == resource;
    let sub_ok = if subresource.is_empty() {
        p_sub.is_empty()
    } else {
        p_sub == "*" || p_sub == subresource
    };
    res_ok && sub_ok
}

/// Whether a path pattern (`/healthz`, `/metrics/*`, `*`) covers `path`.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

impl KubeRule {
    fn covers(&self, req: &AccessRequest) -> bool {
        self.covers_ignoring_namespace(req)
            && match &req.target {
                AccessTarget::Resource { namespace, .. } if namespace.is_empty() => {
                    match self.effect {
                        Effect::Allow => self.covers_every_namespace(),
                        Effect::Deny => self.covers_some_namespace(),
                    }
                }
                AccessTarget::Resource { namespace, .. } => self.covers_namespace(namespace),
                AccessTarget::NonResource { .. } => true,
            }
    }

    /// Whether the rule covers `req` in some namespace: everything but the namespace.
    fn covers_ignoring_namespace(&self, req: &AccessRequest) -> bool {
        let subjects = self
            .subjects
            .iter()
            .any(|s| req.groups.iter().any(|g| *g == s.group()));
        if !subjects || !any_or(&self.verbs, &req.verb) {
            return false;
        }
        match &req.target {
            AccessTarget::Resource {
                namespace: _,
                api_group,
                resource,
                subresource,
                name,
            } => {
                any_or(&self.api_groups, api_group)
                    && self
                        .resources
                        .iter()
                        .any(|p| resource_matches(p, resource, subresource))
                    && !self.except_resources.iter().any(|r| r == resource)
                    && (self.names.is_empty() || self.names.iter().any(|n| n == name))
            }
            AccessTarget::NonResource { path } => self
                .non_resource_paths
                .iter()
                .any(|p| path_matches(p, path)),
        }
    }

    fn covers_namespace(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
            && !self.except_namespaces.iter().any(|n| n == namespace)
    }

    /// `*` with no exception: the only namespaces that cover a request without a namespace
    /// for an allow. A SubjectAccessReview cannot tell a cluster-scoped request from the
    /// same request across all namespaces (`kubectl get secrets -A`), whose answer holds
    /// every namespace's objects, the excepted ones too.
    fn covers_every_namespace(&self) -> bool {
        self.except_namespaces.is_empty() && self.namespaces.iter().any(|n| n == "*")
    }

    /// Whether the rule names at least one namespace: a deny there also denies the same
    /// request without a namespace, whose answer would include that namespace's objects.
    fn covers_some_namespace(&self) -> bool {
        // `*` leaves out finitely many namespaces, so it always covers some.
        self.namespaces
            .iter()
            .any(|n| n == "*" || (!n.is_empty() && !self.except_namespaces.iter().any(|x| x == n)))
    }

    fn label(&self) -> String {
        match &self.description {
            Some(d) => format!("Limen rule {} ({d})", self.id),
            None => format!("Limen rule {}", self.id),
        }
    }
}

/// The decision of `rules` on `req`: a matching deny, else a matching allow, else none.
pub fn decide(rules: &[KubeRule], req: &AccessRequest) -> AccessDecision {
    let matching: Vec<&KubeRule> = rules.iter().filter(|r| r.covers(req)).collect();
    let without_namespace =
        matches!(&req.target, AccessTarget::Resource { namespace, .. } if namespace.is_empty());
    if let Some(r) = matching.iter().find(|r| r.effect == Effect::Deny) {
        let spanning = if without_namespace && !r.covers_every_namespace() {
            " (a request without a namespace spans the namespaces it denies)"
        } else {
            ""
        };
        return AccessDecision::Denied {
            reason: format!("denied by {}{spanning}", r.label()),
        };
    }
    if let Some(r) = matching.first() {
        return AccessDecision::Allowed {
            reason: format!("allowed by {}", r.label()),
        };
    }
    if without_namespace {
        // Say which allow the missing namespace left out, so the operator sees why.
        let partial = rules.iter().find(|r| {
            r.effect == Effect::Allow
                && r.covers_some_namespace()
                && r.covers_ignoring_namespace(req)
        });
        if let Some(r) = partial {
            return AccessDecision::NoOpinion {
                reason: format!(
                    "no Limen rule applies: {} covers only some namespaces, and a request without a namespace may span them all",
                    r.label()
                ),
            };
        }
    }
    AccessDecision::NoOpinion {
        reason: "no Limen rule applies".into(),
    }
}

pub(crate) fn check_rule(r: &KubeRule) -> CoreResult<()> {
    let bad = |why: &str| Err(CoreError::validation(format!("Invalid rule: {why}.")));
    if r.subjects.is_empty() {
        return bad("it names no subject (to mean everyone, name the group system:authenticated)");
    }
    if r.subjects.iter().any(|s| s.group().trim().is_empty()) {
        return bad("a subject is empty");
    }
    if r.verbs.is_empty() {
        return bad("it names no verb (use * for every verb)");
    }
    let resources = !r.resources.is_empty();
    let paths = !r.non_resource_paths.is_empty();
    if resources == paths {
        return bad("it names either resources or non_resource_paths, not both, not neither");
    }
    if resources && r.namespaces.is_empty() {
        return bad(
            "it names no namespace (use * for all namespaces and cluster-scoped resources)",
        );
    }
    if resources && r.api_groups.is_empty() {
        return bad("it names no API group (\"\" is the core group, * is every group)");
    }
    if paths
        && (!r.namespaces.is_empty()
            || !r.api_groups.is_empty()
            || !r.names.is_empty()
            || !r.except_namespaces.is_empty()
            || !r.except_resources.is_empty())
    {
        return bad("a non-resource rule names no namespaces, API groups, resources or names");
    }
    if r.except_resources
        .iter()
        .any(|x| x.is_empty() || x.contains('/') || x == "*")
    {
        return bad("an excepted resource is a resource's name (it takes its subresources along)");
    }
    if r.except_namespaces.iter().any(|x| x.is_empty() || x == "*") {
        return bad("an excepted namespace is a namespace's name");
    }
    if r.resources
        .iter()
        .any(|p| p.is_empty() || p.matches('/').count() > 1)
    {
        return bad("a resource is `res`, `res/sub`, `res/*`, `*/sub` or `*`");
    }
    if r.non_resource_paths
        .iter()
        .any(|p| !(p.starts_with('/') || p == "*"))
    {
        return bad("a non-resource path starts with /");
    }
    Ok(())
}

impl KubernetesService<'_> {
    /// Adds a rule to cluster `cluster_id`.
    pub async fn create_kube_rule(
        &self,
        authz: &Authorized,
        cluster_id: &str,
        new: NewKubeRule,
    ) -> CoreResult<KubeRule> {
        authz.require(&["identity:update_cluster"])?;
        self.add_kube_rule(cluster_id, new).await
    }

    /// [`Self::create_kube_rule`] once authorized, or as part of another write.
    pub(crate) async fn add_kube_rule(
        &self,
        cluster_id: &str,
        new: NewKubeRule,
    ) -> CoreResult<KubeRule> {
        let cluster = self.get_cluster(cluster_id).await?;
        let rule = KubeRule {
            id: self.new_id(),
            cluster_id: cluster_id.to_string(),
            created_at: self.now_unix(),
            ..KubeRule::from(new)
        };
        check_rule(&rule)?;
        self.check_rule_projects(&cluster, &rule).await?;
        self.doc_save(&rule, true).await?;
        Ok(rule)
    }

    /// A rule names only projects the cluster can admit people for: its own domain's or a
    /// trusted domain's (docs/security.md). Another domain's project would be a
    /// reference across tenants, and a way to learn which project ids exist.
    async fn check_rule_projects(&self, cluster: &Cluster, rule: &KubeRule) -> CoreResult<()> {
        for s in &rule.subjects {
            let RuleSubject::ProjectRole { project_id, .. } = s else {
                continue;
            };
            let domain = match self.resource().get_project(project_id).await {
                Ok(p) => Some(p.domain_id),
                Err(CoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            let admitted = domain
                .is_some_and(|d| d == cluster.domain_id || cluster.trusted_domains.contains(&d));
            if !admitted {
                return Err(CoreError::validation(format!(
                    "A rule may name only projects of the cluster's domain or of a domain it \
                     trusts; {project_id} is none of them."
                )));
            }
        }
        Ok(())
    }

    /// A cluster's rules, oldest first.
    pub async fn list_kube_rules(&self, cluster_id: &str) -> CoreResult<Vec<KubeRule>> {
        let mut rules: Vec<KubeRule> = self.doc_list_of(cluster_id).await?;
        rules.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(rules)
    }

    /// Rule `id` of cluster `cluster_id`.
    pub async fn get_kube_rule(&self, cluster_id: &str, id: &str) -> CoreResult<KubeRule> {
        match self.doc_get::<KubeRule>(KIND, id).await? {
            Some(r) if r.cluster_id == cluster_id => Ok(r),
            _ => Err(CoreError::not_found("rule", id)),
        }
    }

    pub async fn delete_kube_rule(
        &self,
        authz: &Authorized,
        cluster_id: &str,
        id: &str,
    ) -> CoreResult<()> {
        authz.require(&["identity:update_cluster"])?;
        self.remove_kube_rule(cluster_id, id).await
    }

    /// [`Self::delete_kube_rule`] once authorized, or as part of another write.
    pub(crate) async fn remove_kube_rule(&self, cluster_id: &str, id: &str) -> CoreResult<()> {
        self.get_kube_rule(cluster_id, id).await?;
        self.doc_delete(KIND, id).await?;
        Ok(())
    }

    /// Removes a deleted cluster's rules.
    pub(crate) async fn forget_kube_rules_of(&self, cluster_id: &str) -> CoreResult<()> {
        self.doc_delete_of::<KubeRule>(cluster_id).await?;
        Ok(())
    }

    /// What `cluster_id`'s rules say about `req`, read now (a change applies at once).
    pub async fn review_access(
        &self,
        cluster_id: &str,
        req: &AccessRequest,
    ) -> CoreResult<AccessDecision> {
        Ok(decide(&self.list_kube_rules(cluster_id).await?, req))
    }
}

impl From<NewKubeRule> for KubeRule {
    /// The rule as it would be stored (without id, cluster and time).
    fn from(new: NewKubeRule) -> KubeRule {
        KubeRule {
            description: new.description,
            subjects: new.subjects,
            effect: new.effect,
            verbs: new.verbs,
            namespaces: new.namespaces,
            api_groups: new.api_groups,
            resources: new.resources,
            names: new.names,
            except_namespaces: new.except_namespaces,
            except_resources: new.except_resources,
            non_resource_paths: new.non_resource_paths,
            ..KubeRule::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(effect: Effect, resources: &[&str]) -> KubeRule {
        KubeRule {
            id: "r".into(),
            subjects: vec![RuleSubject::ProjectRole {
                project_id: "p1".into(),
                role: "member".into(),
            }],
            effect,
            verbs: vec!["get".into(), "create".into()],
            namespaces: vec!["dev".into()],
            api_groups: vec!["".into()],
            resources: resources.iter().map(|s| s.to_string()).collect(),
            ..KubeRule::default()
        }
    }

    fn pods(verb: &str, namespace: &str, subresource: &str) -> AccessRequest {
        AccessRequest {
            user: "limen:Default/alice".into(),
            groups: vec![
                "limen:project:p1:member".into(),
                "system:authenticated".into(),
            ],
            verb: verb.into(),
            target: AccessTarget::Resource {
                namespace: namespace.into(),
                api_group: "".into(),
                resource: "pods".into(),
                subresource: subresource.into(),
                name: "web".into(),
            },
        }
    }

    fn allowed(d: &AccessDecision) -> bool {
        matches!(d, AccessDecision::Allowed { .. })
    }

    #[test]
    fn subresources_are_not_their_resource() {
        let rules = [rule(Effect::Allow, &["pods"])];
        assert!(allowed(&decide(&rules, &pods("create", "dev", ""))));
        assert!(!allowed(&decide(&rules, &pods("create", "dev", "exec"))));
        let rules = [rule(Effect::Allow, &["pods/*"])];
        assert!(allowed(&decide(&rules, &pods("create", "dev", "exec"))));
        assert!(!allowed(&decide(&rules, &pods("create", "dev", ""))));
    }

    #[test]
    fn deny_beats_allow_and_no_rule_is_no_opinion() {
        let rules = [
            rule(Effect::Allow, &["*"]),
            rule(Effect::Deny, &["pods/exec"]),
        ];
        assert!(allowed(&decide(&rules, &pods("get", "dev", ""))));
        assert!(matches!(
            decide(&rules, &pods("create", "dev", "exec")),
            AccessDecision::Denied { .. }
        ));
        // Another namespace, a cluster-scoped request, another verb, another person.
        for req in [
            pods("get", "prod", ""),
            pods("get", "", ""),
            pods("delete", "dev", ""),
            AccessRequest {
                groups: vec!["system:authenticated".into()],
                ..pods("get", "dev", "")
            },
        ] {
            assert!(
                matches!(decide(&rules, &req), AccessDecision::NoOpinion { .. }),
                "{req:?}"
            );
        }
    }

    #[test]
    fn exceptions_leave_namespaces_and_resources_out() {
        let everywhere_but = KubeRule {
            namespaces: vec!["*".into()],
            except_namespaces: vec!["kube-system".into()],
            resources: vec!["*".into()],
            except_resources: vec!["pods".into()],
            ..rule(Effect::Allow, &[])
        };
        let secrets = |namespace: &str| AccessRequest {
            target: AccessTarget::Resource {
                namespace: namespace.into(),
                api_group: "".into(),
                resource: "secrets".into(),
                subresource: "".into(),
                name: "".into(),
            },
            ..pods("get", namespace, "")
        };
        let rules = [everywhere_but];
        assert!(allowed(&decide(&rules, &secrets("dev"))));
        // Without a namespace the request may span kube-system (`kubectl get secrets -A`).
        assert!(matches!(
            decide(&rules, &secrets("")),
            AccessDecision::NoOpinion { reason } if reason.contains("covers only some namespaces")
        ));
        assert!(!allowed(&decide(&rules, &secrets("kube-system"))));
        assert!(!allowed(&decide(&rules, &pods("get", "dev", ""))));
        assert!(
            !allowed(&decide(&rules, &pods("get", "dev", "log"))),
            "with its subresources"
        );
    }

    /// A SubjectAccessReview without a namespace is a cluster-scoped request or the same
    /// request across all namespaces: only an allow of every namespace allows it, and a
    /// deny in any namespace denies it.
    #[test]
    fn requests_without_a_namespace_need_every_namespace() {
        let request = |resource: &str, namespace: &str| AccessRequest {
            target: AccessTarget::Resource {
                namespace: namespace.into(),
                api_group: "".into(),
                resource: resource.into(),
                subresource: "".into(),
                name: "".into(),
            },
            ..pods("get", namespace, "")
        };
        let everywhere = KubeRule {
            namespaces: vec!["*".into()],
            ..rule(Effect::Allow, &["*"])
        };
        let all_but_kube_system = KubeRule {
            except_namespaces: vec!["kube-system".into()],
            ..everywhere.clone()
        };
        let deny_in = |namespaces: &[&str], except: &[&str]| KubeRule {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            except_namespaces: except.iter().map(|s| s.to_string()).collect(),
            ..rule(Effect::Deny, &["secrets"])
        };
        let denied = |d: &AccessDecision| matches!(d, AccessDecision::Denied { .. });

        // `*` without exceptions: namespaced and cluster-scoped resources alike.
        let rules = [everywhere.clone()];
        assert!(allowed(&decide(&rules, &request("secrets", ""))));
        assert!(allowed(&decide(&rules, &request("nodes", ""))));
        // `*` with an exception: in the namespaces it covers only.
        let rules = [all_but_kube_system];
        assert!(allowed(&decide(&rules, &request("secrets", "dev"))));
        for req in [request("secrets", ""), request("nodes", "")] {
            assert!(
                matches!(decide(&rules, &req), AccessDecision::NoOpinion { .. }),
                "{req:?}"
            );
        }
        // A deny in one namespace denies the request without a namespace, and only for
        // what it denies.
        let rules = [everywhere.clone(), deny_in(&["kube-system"], &[])];
        let all = decide(&rules, &request("secrets", ""));
        assert!(denied(&all), "{all:?}");
        assert!(
            matches!(&all, AccessDecision::Denied { reason } if reason.contains("spans")),
            "{all:?}"
        );
        assert!(denied(&decide(&rules, &request("secrets", "kube-system"))));
        assert!(allowed(&decide(&rules, &request("secrets", "dev"))));
        assert!(allowed(&decide(&rules, &request("nodes", ""))));
        // A deny of `*` but some namespaces still covers others.
        let rules = [everywhere.clone(), deny_in(&["*"], &["dev"])];
        assert!(denied(&decide(&rules, &request("secrets", ""))));
        assert!(allowed(&decide(&rules, &request("secrets", "dev"))));
        // A deny whose only namespace is excepted covers none.
        let rules = [everywhere, deny_in(&["dev"], &["dev"])];
        assert!(allowed(&decide(&rules, &request("secrets", ""))));
    }

    #[test]
    fn rules_must_say_whom_and_what() {
        assert!(check_rule(&rule(Effect::Allow, &["pods"])).is_ok());
        for broken in [
            KubeRule {
                subjects: vec![],
                ..rule(Effect::Allow, &["pods"])
            },
            KubeRule {
                verbs: vec![],
                ..rule(Effect::Allow, &["pods"])
            },
            KubeRule {
                namespaces: vec![],
                ..rule(Effect::Allow, &["pods"])
            },
            rule(Effect::Allow, &[]),
            rule(Effect::Allow, &["pods/exec/x"]),
            KubeRule {
                except_resources: vec!["pods/exec".into()],
                ..rule(Effect::Allow, &["*"])
            },
        ] {
            assert!(check_rule(&broken).is_err(), "{broken:?}");
        }
    }

    /// For random rule sets and requests: whatever Limen allows without a namespace (a
    /// cluster-scoped request or all namespaces at once), it allows in every namespace,
    /// the ones the rules except or deny included.
    mod all_namespaces {
        use super::super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::select;

        const GROUPS: [&str; 3] = ["g1", "g2", "system:authenticated"];
        const NAMESPACES: [&str; 5] = ["*", "dev", "prod", "kube-system", "default"];
        const NAMED_NAMESPACES: [&str; 4] = ["dev", "kube-system", "default", "other"];
        const VERBS: [&str; 4] = ["get", "list", "create", "*"];
        const API_GROUPS: [&str; 3] = ["", "apps", "*"];
        const PATTERNS: [&str; 8] = [
            "pods",
            "pods/exec",
            "pods/*",
            "*/scale",
            "*",
            "secrets",
            "nodes",
            "deployments/scale",
        ];
        const RESOURCES: [&str; 4] = ["pods", "secrets", "nodes", "deployments"];
        const SUBRESOURCES: [&str; 4] = ["", "exec", "scale", "log"];
        const OBJECT_NAMES: [&str; 2] = ["web", "db"];

        fn some_of(list: &'static [&'static str], min: usize) -> BoxedStrategy<Vec<String>> {
            vec(select(list), min..=2)
                .prop_map(|v| v.into_iter().map(String::from).collect())
                .boxed()
        }

        fn rules() -> impl Strategy<Value = Vec<KubeRule>> {
            let rule = (
                (
                    some_of(&GROUPS, 1),
                    prop_oneof![Just(Effect::Allow), Just(Effect::Deny)],
                    some_of(&VERBS, 1),
                    some_of(&NAMESPACES, 1),
                    some_of(&NAMED_NAMESPACES, 0),
                ),
                (
                    some_of(&API_GROUPS, 1),
                    some_of(&PATTERNS, 1),
                    some_of(&["pods", "secrets"], 0),
                    some_of(&OBJECT_NAMES, 0),
                ),
            )
                .prop_map(
                    |(
                        (groups, effect, verbs, namespaces, except_namespaces),
                        (api_groups, resources, except_resources, names),
                    )| KubeRule {
                        id: "r".into(),
                        subjects: groups.into_iter().map(RuleSubject::Group).collect(),
                        effect,
                        verbs,
                        namespaces,
                        except_namespaces,
                        api_groups,
                        resources,
                        except_resources,
                        names,
                        ..KubeRule::default()
                    },
                );
            vec(rule, 0..6)
        }

        fn requests() -> impl Strategy<Value = AccessRequest> {
            (
                some_of(&GROUPS, 0),
                select(&VERBS[..3]),
                select(&API_GROUPS[..2]),
                select(&RESOURCES[..]),
                select(&SUBRESOURCES[..]),
                prop_oneof![Just(""), select(&OBJECT_NAMES[..])],
            )
                .prop_map(|(groups, verb, api_group, resource, subresource, name)| {
                    AccessRequest {
                        user: "u".into(),
                        groups,
                        verb: verb.into(),
                        target: AccessTarget::Resource {
                            namespace: String::new(),
                            api_group: api_group.into(),
                            resource: resource.into(),
                            subresource: subresource.into(),
                            name: name.into(),
                        },
                    }
                })
        }

        fn in_namespace(req: &AccessRequest, ns: &str) -> AccessRequest {
            let mut req = req.clone();
            if let AccessTarget::Resource { namespace, .. } = &mut req.target {
                *namespace = ns.to_string();
            }
            req
        }

        proptest! {
            #[test]
            fn an_allow_without_namespace_is_an_allow_in_every_namespace(
                rules in rules(),
                req in requests(),
            ) {
                let all = decide(&rules, &req);
                if matches!(all, AccessDecision::Allowed { .. }) {
                    let named = rules
                        .iter()
                        .flat_map(|r| r.namespaces.iter().chain(&r.except_namespaces))
                        .filter(|n| *n != "*");
                    for ns in NAMED_NAMESPACES.iter().copied().chain(["unnamed"]).chain(named.map(String::as_str)) {
                        let one = decide(&rules, &in_namespace(&req, ns));
                        prop_assert!(
                            matches!(one, AccessDecision::Allowed { .. }),
                            "allowed without a namespace ({all:?}) but not in {ns}: {one:?}"
                        );
                    }
                }
            }
        }
    }
}
