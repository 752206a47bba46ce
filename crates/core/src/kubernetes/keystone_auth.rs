//! Importing k8s-keystone-auth's authorization policy (its v1 and v2 rules, which may
//! share one list) and its sync config's role-mappings into a cluster's Limen rules and
//! role mappings, with a report of every place the meaning changes.
//!
//! The import keeps a rule's meaning where Limen can say it. Where the meaning is one of
//! k8s-keystone-auth's known flaws it takes the narrower reading and says so: a v2 rule
//! without `users` (it applied to every caller) is not imported; a v2 resource no longer
//! covers its subresources (`pods` allowed `pods/exec`); a named namespace, or `!ns`,
//! no longer covers cluster-scoped resources or requests across all namespaces. Nothing
//! imported grants more than the original; whatever Limen cannot say (a user match, two
//! conditions that must hold together) is left out and reported.

use crate::authz::Authorized;
use crate::error::CoreResult;
use crate::kubernetes::cluster::{ClusterPatch, RoleMapping};
use crate::kubernetes::rules::{check_rule, Effect, KubeRule, NewKubeRule, RuleSubject};
use crate::kubernetes::KubernetesService;
use crate::store::ProjectFilter;
use serde_json::Value;

/// Subresources through which a grant on a resource reaches further than reading it.
const REACHING_SUBRESOURCES: [(&str, &str); 6] = [
    (
        "pods",
        "exec, attach, portforward, proxy, log, ephemeralcontainers",
    ),
    ("services", "proxy"),
    ("nodes", "proxy"),
    ("serviceaccounts", "token"),
    ("deployments", "scale"),
    ("statefulsets", "scale"),
];

/// How a report line bears on the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Imported with the same meaning, in Limen's terms.
    Kept,
    /// Imported, with a meaning that differs as said.
    Changed,
    /// Left out.
    NotImported,
    /// For the operator to do elsewhere (RBAC bindings, namespaces).
    Todo,
}

/// One line of the report: where in the input, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: String,
    pub kind: NoteKind,
    pub text: String,
}

/// What the import makes.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub rules: Vec<NewKubeRule>,
    pub role_mappings: Vec<RoleMapping>,
    pub notes: Vec<Note>,
}

/// A project as the import can name it.
#[derive(Debug, Clone)]
pub struct KnownProject {
    pub id: String,
    pub name: String,
}

/// What the import knows of the cloud: the projects of the cluster's domain (by name or
/// id, as k8s-keystone-auth matched them) and the domain's name (for group names).
pub struct ImportContext<'a> {
    pub projects: &'a [KnownProject],
    pub domain_name: &'a str,
}

struct Report<'a> {
    notes: &'a mut Vec<Note>,
    at: String,
}

impl Report<'_> {
    fn note(&mut self, kind: NoteKind, text: impl Into<String>) {
        self.notes.push(Note {
            at: self.at.clone(),
            kind,
            text: text.into(),
        });
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

impl ImportContext<'_> {
    fn project(&self, wanted: &str) -> Option<&KnownProject> {
        self.projects
            .iter()
            .find(|p| p.id == wanted)
            .or_else(|| self.projects.iter().find(|p| p.name == wanted))
    }

    /// The projects named (`*`: all of the domain's, as they are now).
    fn projects_of(&self, values: &[String], r: &mut Report) -> Vec<&KnownProject> {
        if values.iter().any(|v| v == "*") {
            r.note(
                NoteKind::Changed,
                format!(
                    "\"any project\" became the {} projects the domain has now; projects made \
                     later are not covered (import again, or add rules for them)",
                    self.projects.len()
                ),
            );
            return self.projects.iter().collect();
        }
        let mut found = Vec::new();
        for v in values {
            match self.project(v) {
                Some(p) => found.push(p),
                None => r.note(
                    NoteKind::NotImported,
                    format!("there is no project {v:?} in the cluster's domain: left out"),
                ),
            }
        }
        found
    }

    fn keystone_group(&self, name: &str) -> String {
        format!(
            "limen:group:{}",
            crate::identity::qualified_name(self.domain_name, name)
        )
    }
}

/// Holders of any of `roles` (none: of any role) on any of `projects`.
fn project_subjects(projects: &[&KnownProject], roles: &[String]) -> Vec<RuleSubject> {
    let mut out = Vec::new();
    for p in projects {
        if roles.is_empty() {
            out.push(RuleSubject::Group(format!("limen:project:{}", p.id)));
        }
        for role in roles {
            out.push(RuleSubject::ProjectRole {
                project_id: p.id.clone(),
                role: role.clone(),
            });
        }
    }
    out
}

/// Translates a policy's rules.
pub fn import_policy(rules: &[Value], ctx: &ImportContext) -> Imported {
    let mut out = Imported::default();
    for (i, rule) in rules.iter().enumerate() {
        let mut r = Report {
            notes: &mut out.notes,
            at: format!("policy[{i}]"),
        };
        let is_v2 = ["users", "resource_permissions", "nonresource_permissions"]
            .iter()
            .any(|k| rule.get(k).is_some());
        let made = if is_v2 {
            v2_rule(rule, ctx, &mut r)
        } else {
            v1_rule(rule, ctx, &mut r)
        };
        for mut m in made {
            m.description = Some(format!(
                "imported from k8s-keystone-auth policy[{i}] ({})",
                if is_v2 { "v2" } else { "v1" }
            ));
            out.rules.push(m);
        }
    }
    out.notes.push(Note {
        at: "policy".into(),
        kind: NoteKind::Todo,
        text: "as with k8s-keystone-auth, a request no rule allows gets no opinion (allowed: \
               false, not denied), so the next authorizer (RBAC) decides"
            .into(),
    });
    out
}

/// A v1 rule: `{resource: {verbs, resources, version, namespace} | nonresource: {verbs,
/// path}, match: [{type, values}]}`; every match entry must hold.
fn v1_rule(rule: &Value, ctx: &ImportContext, r: &mut Report) -> Vec<NewKubeRule> {
    let Some(subjects) = v1_subjects(&rule["match"], ctx, r) else {
        return Vec::new();
    };
    if let Some(res) = rule.get("resource").filter(|v| !v.is_null()) {
        let (Some(version), Some(namespace)) = (res["version"].as_str(), res["namespace"].as_str())
        else {
            r.note(
                NoteKind::NotImported,
                "a v1 resource rule without version or namespace (k8s-keystone-auth fails on it): left out",
            );
            return Vec::new();
        };
        let (Some(verbs), Some(resources)) = (strings(&res["verbs"]), strings(&res["resources"]))
        else {
            r.note(
                NoteKind::NotImported,
                "a v1 resource rule without verbs or resources: left out",
            );
            return Vec::new();
        };
        if version != "*" {
            r.note(
                NoteKind::Kept,
                format!("v1's `version` is the API group: imported as api_groups [{version:?}]"),
            );
        }
        return vec![NewKubeRule {
            subjects,
            effect: Effect::Allow,
            verbs,
            namespaces: vec![namespace.to_string()],
            api_groups: vec![version.to_string()],
            resources,
            ..NewKubeRule::default()
        }];
    }
    if let Some(non) = rule.get("nonresource").filter(|v| !v.is_null()) {
        let (Some(verbs), Some(path)) = (strings(&non["verbs"]), non["path"].as_str()) else {
            r.note(
                NoteKind::NotImported,
                "a v1 non-resource rule without verbs or path: left out",
            );
            return Vec::new();
        };
        if verbs.iter().any(String::is_empty) {
            r.note(
                NoteKind::NotImported,
                "an empty verb disables this rule in k8s-keystone-auth: left out",
            );
            return Vec::new();
        }
        return vec![NewKubeRule {
            subjects,
            effect: Effect::Allow,
            verbs,
            non_resource_paths: vec![path.to_string()],
            ..NewKubeRule::default()
        }];
    }
    r.note(
        NoteKind::NotImported,
        "neither resource nor nonresource: left out",
    );
    Vec::new()
}

/// The subjects of a v1 `match` list, if Limen can say them.
fn v1_subjects(matches: &Value, ctx: &ImportContext, r: &mut Report) -> Option<Vec<RuleSubject>> {
    let Some(entries) = matches.as_array().filter(|m| !m.is_empty()) else {
        r.note(
            NoteKind::NotImported,
            "no match entries: the rule applied to every caller; to keep that, add a rule for the group system:authenticated",
        );
        return None;
    };
    let (mut projects, mut roles, mut groups) = (None, None, None);
    for e in entries {
        let (Some(kind), Some(values)) = (e["type"].as_str(), strings(&e["values"])) else {
            r.note(
                NoteKind::NotImported,
                format!("a match entry that is not {{type, values}} ({e}): left out"),
            );
            return None;
        };
        let slot = match kind {
            "project" => &mut projects,
            "role" => &mut roles,
            "group" => &mut groups,
            "user" => {
                r.note(
                    NoteKind::NotImported,
                    "a match on users: Limen's rules name projects, roles and groups, so bind the \
                     user with RBAC instead (its username is [kubernetes] username_template, \
                     e.g. limen:Default/alice): left out",
                );
                return None;
            }
            other => {
                r.note(
                    NoteKind::NotImported,
                    format!("match type {other:?} never matched in k8s-keystone-auth: left out"),
                );
                return None;
            }
        };
        if slot.replace(values).is_some() {
            r.note(
                NoteKind::NotImported,
                format!("two {kind} matches that must both hold cannot be said in Limen's rules: left out"),
            );
            return None;
        }
    }
    if let Some(groups) = groups {
        if projects.is_some() || roles.is_some() {
            r.note(
                NoteKind::NotImported,
                "a group match that must hold together with a project or role match cannot be \
                 said in Limen's rules (their subjects are alternatives): left out",
            );
            return None;
        }
        if groups.iter().any(|g| g == "*") {
            r.note(
                NoteKind::NotImported,
                "\"any group\" applied to nearly every caller; to keep that, add a rule for the group system:authenticated: left out",
            );
            return None;
        }
        r.note(
            NoteKind::Changed,
            "Keystone groups are named limen:group:<domain>/<group> on Kubernetes, not by their bare name",
        );
        return Some(
            groups
                .iter()
                .map(|g| RuleSubject::Group(ctx.keystone_group(g)))
                .collect(),
        );
    }
    let roles = roles.unwrap_or_default();
    let any_role = roles.is_empty() || roles.iter().any(|x| x == "*");
    let projects = match projects {
        Some(p) => ctx.projects_of(&p, r),
        None => ctx.projects_of(&["*".to_string()], r),
    };
    let subjects = project_subjects(&projects, if any_role { &[] } else { &roles });
    if subjects.is_empty() {
        r.note(
            NoteKind::NotImported,
            "it names no project Limen knows: left out",
        );
        return None;
    }
    Some(subjects)
}

/// A v2 rule: `{users: {roles, projects}, resource_permissions: {"ns/res": verbs},
/// nonresource_permissions: {path: verbs}}`.
fn v2_rule(rule: &Value, ctx: &ImportContext, r: &mut Report) -> Vec<NewKubeRule> {
    let users = &rule["users"];
    if users.is_null() {
        r.note(
            NoteKind::NotImported,
            "a v2 rule without users applied to every caller (service accounts and anonymous \
             requests that reach the webhook included); to keep that, add a rule for the group \
             system:authenticated: left out",
        );
        return Vec::new();
    }
    let projects = strings(&users["projects"]).unwrap_or_default();
    if projects.is_empty() {
        r.note(
            NoteKind::NotImported,
            "users without projects matched no one in k8s-keystone-auth: left out",
        );
        return Vec::new();
    }
    let roles = strings(&users["roles"]).unwrap_or_default();
    if roles.len() > 1 {
        r.note(
            NoteKind::NotImported,
            format!("it required all of the roles {roles:?} at once, which Limen's rules cannot say (they name one role per subject): left out"),
        );
        return Vec::new();
    }
    let mut found = Vec::new();
    for p in &projects {
        match ctx.project(p) {
            Some(k) => found.push(k),
            None => r.note(
                NoteKind::NotImported,
                format!("there is no project {p:?} in the cluster's domain: left out"),
            ),
        }
    }
    let subjects = project_subjects(&found, &roles);
    if subjects.is_empty() {
        r.note(
            NoteKind::NotImported,
            "it names no project Limen knows: left out",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(perms) = rule["resource_permissions"].as_object() {
        for (key, verbs) in perms {
            if let Some(rule) = v2_resource(key, verbs, &subjects, r) {
                out.push(rule);
            }
        }
    }
    if let Some(perms) = rule["nonresource_permissions"].as_object() {
        for (path, verbs) in perms {
            if path.contains('*') {
                r.note(
                    NoteKind::NotImported,
                    format!("non-resource path {path:?}: k8s-keystone-auth compared it literally, while in Limen a * is a wildcard: left out"),
                );
                continue;
            }
            let all = strings(verbs).unwrap_or_default();
            let (kept, never): (Vec<String>, Vec<String>) =
                all.into_iter().partition(|v| *v == v.to_lowercase());
            if !never.is_empty() {
                r.note(
                    NoteKind::NotImported,
                    format!("non-resource verbs {never:?} for {path:?}: not lower case, they never matched in k8s-keystone-auth: left out"),
                );
            }
            if kept.is_empty() {
                continue;
            }
            out.push(NewKubeRule {
                subjects: subjects.clone(),
                effect: Effect::Allow,
                verbs: kept,
                non_resource_paths: vec![path.clone()],
                ..NewKubeRule::default()
            });
        }
    }
    if out.is_empty() {
        r.note(
            NoteKind::NotImported,
            "it grants nothing Limen can say: left out",
        );
    }
    out
}

/// One side of a v2 permission key: literal, `*`, `!x`, `['a','b']` or `!['a','b']`:
/// (negated, values); `None` if it cannot be read.
fn v2_pattern(text: &str) -> Option<(bool, Vec<String>)> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, text),
    };
    if rest.starts_with('[') {
        let list: Value = serde_json::from_str(&rest.replace('\'', "\"")).ok()?;
        return Some((negated, strings(&list)?));
    }
    (!rest.is_empty()).then(|| (negated, vec![rest.to_string()]))
}

fn v2_resource(
    key: &str,
    verbs: &Value,
    subjects: &[RuleSubject],
    r: &mut Report,
) -> Option<NewKubeRule> {
    let lowered = key.trim().to_lowercase();
    let parts: Vec<&str> = lowered.split('/').collect();
    let [ns, res] = parts[..] else {
        r.note(
            NoteKind::NotImported,
            format!("resource key {key:?} is not <namespace>/<resource>: k8s-keystone-auth ignored it, and so does the import"),
        );
        return None;
    };
    let (Some((ns_not, ns_values)), Some((res_not, res_values))) =
        (v2_pattern(ns), v2_pattern(res))
    else {
        r.note(
            NoteKind::NotImported,
            format!("resource key {key:?} cannot be read: left out"),
        );
        return None;
    };
    let verbs: Vec<String> = strings(verbs)
        .unwrap_or_default()
        .iter()
        .map(|v| v.to_lowercase())
        .collect();
    if verbs.is_empty() {
        r.note(
            NoteKind::NotImported,
            format!("resource key {key:?} grants no verb: left out"),
        );
        return None;
    }
    let any = |v: &[String]| v.iter().any(|x| x == "*");
    if (ns_not && any(&ns_values)) || (res_not && any(&res_values)) {
        r.note(
            NoteKind::NotImported,
            format!("resource key {key:?} excludes everything (!*): it never matched; left out"),
        );
        return None;
    }
    let (namespaces, except_namespaces) = match (ns_not, any(&ns_values)) {
        (true, _) => {
            r.note(
                NoteKind::Changed,
                format!("{key:?}: every namespace but {ns_values:?} no longer covers cluster-scoped resources or requests across all namespaces (k8s-keystone-auth let `kubectl get ... -A` read the excepted namespaces too)"),
            );
            (vec!["*".to_string()], ns_values)
        }
        (false, true) => (vec!["*".to_string()], Vec::new()),
        (false, false) => {
            r.note(
                NoteKind::Changed,
                format!("{key:?}: the namespaces {ns_values:?} no longer cover cluster-scoped resources or requests across all namespaces (k8s-keystone-auth let any namespace pattern match a request without a namespace)"),
            );
            (ns_values, Vec::new())
        }
    };
    r.note(
        NoteKind::Kept,
        format!("{key:?}: k8s-keystone-auth ignored the API group, so it covers every API group's {res_values:?} (api_groups [\"*\"])"),
    );
    let (resources, except_resources) = match (res_not, any(&res_values)) {
        (true, _) => (vec!["*".to_string()], res_values),
        (false, true) => (vec!["*".to_string()], Vec::new()),
        (false, false) => {
            for res in &res_values {
                let reaching = REACHING_SUBRESOURCES
                    .iter()
                    .find(|(name, _)| name == res)
                    .map(|(_, subs)| format!(" ({subs} among them)"))
                    .unwrap_or_default();
                r.note(
                    NoteKind::Changed,
                    format!("{key:?}: {res:?} no longer covers its subresources{reaching}; k8s-keystone-auth ignored subresources. Add \"{res}/<subresource>\" where one is meant"),
                );
            }
            (res_values, Vec::new())
        }
    };
    Some(NewKubeRule {
        subjects: subjects.to_vec(),
        effect: Effect::Allow,
        verbs,
        namespaces,
        api_groups: vec!["*".to_string()],
        resources,
        except_namespaces,
        except_resources,
        ..NewKubeRule::default()
    })
}

/// Reads a sync config (its YAML as JSON) and its role-mappings: `[{keystone-role,
/// username?, groups}]`.
pub fn import_sync_config(doc: &Value) -> Result<Imported, String> {
    let Some(map) = doc.as_object() else {
        return Err("a k8s-keystone-auth sync config is a YAML mapping".into());
    };
    let mut out = Imported::default();
    let mut note = |at: &str, kind, text: String| {
        out.notes.push(Note {
            at: at.to_string(),
            kind,
            text,
        })
    };
    for (key, _) in map {
        match key.as_str() {
            "role-mappings" => {}
            "data-types-to-sync" | "namespace-format" | "projects-blacklist" | "projects-name-blacklist" => note(
                "sync",
                NoteKind::Todo,
                format!("{key}: Limen does not create namespaces or RoleBindings in the cluster; make them with the cluster's own tools (RBAC subjects: limen:project:<id> and limen:project:<id>:<role>)"),
            ),
            underscored if underscored.contains('_') => note(
                "sync",
                NoteKind::NotImported,
                format!("{key}: k8s-keystone-auth reads `{}`, so it ignored this key, and so does the import", key.replace('_', "-")),
            ),
            other => note("sync", NoteKind::NotImported, format!("{other}: not a k8s-keystone-auth sync setting: ignored")),
        }
    }
    let mappings = doc["role-mappings"].as_array().cloned().unwrap_or_default();
    let mut role_mappings: Vec<RoleMapping> = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        let at = format!("role-mappings[{i}]");
        let Some(role) = m["keystone-role"].as_str().filter(|r| !r.is_empty()) else {
            note(
                &at,
                NoteKind::NotImported,
                "no keystone-role: it never applied; left out".into(),
            );
            continue;
        };
        if m.get("username").is_some_and(|u| !u.is_null()) {
            note(
                &at,
                NoteKind::NotImported,
                format!("username {}: renaming every holder of {role:?} to one user loses who did what; not imported (give them a group instead)", m["username"]),
            );
        }
        let mut groups = Vec::new();
        for g in strings(&m["groups"]).unwrap_or_default() {
            if g.starts_with("system:") || g.starts_with("limen:") {
                note(
                    &at,
                    NoteKind::NotImported,
                    format!("group {g:?}: system: and limen: names are reserved (system:masters bypasses every authorizer); bind a ClusterRole to limen:project:<id>:{role} with RBAC instead"),
                );
            } else {
                groups.push(g);
            }
        }
        if groups.is_empty() {
            continue;
        }
        note(
            &at,
            NoteKind::Changed,
            format!("holders of {role:?} get {groups:?} only on a token for a project where they hold it now (as k8s-keystone-auth read the token's roles)"),
        );
        match role_mappings.iter_mut().find(|x| x.role == role) {
            Some(existing) => existing.groups.extend(groups),
            None => role_mappings.push(RoleMapping {
                role: role.to_string(),
                groups,
            }),
        }
    }
    out.role_mappings = role_mappings;
    Ok(out)
}

/// The report's lines, for people.
pub fn render_notes(notes: &[Note]) -> Vec<String> {
    notes
        .iter()
        .map(|n| {
            let kind = match n.kind {
                NoteKind::Kept => "kept",
                NoteKind::Changed => "changed",
                NoteKind::NotImported => "not imported",
                NoteKind::Todo => "to do",
            };
            format!("{}: {kind}: {}", n.at, n.text)
        })
        .collect()
}

/// What stays for RBAC: the names k8s-keystone-auth gave people and their Limen names.
pub fn renamed_subjects(template_example: &str) -> Vec<String> {
    vec![
        format!("RBAC subjects to rewrite: User <keystone user name> → {template_example} ([kubernetes] username_template)"),
        "RBAC subjects to rewrite: Group <keystone group name> → limen:group:<domain name>/<group name>".into(),
        "RBAC subjects to rewrite: Group <project id> (k8s-keystone-auth put the project id in groups) → limen:project:<project id>".into(),
    ]
}

impl KubernetesService<'_> {
    /// Imports k8s-keystone-auth's `policy` rules and, with `sync`, its role-mappings
    /// into cluster `cluster_id`; with `apply`, stores them (after removing the
    /// cluster's rules, with `replace`; role mappings replace the cluster's). What was
    /// (or would be) made, with the report.
    pub async fn import_keystone_auth(
        &self,
        authz: &Authorized,
        cluster_id: &str,
        policy: &[Value],
        sync: Option<&Value>,
        replace: bool,
        apply: bool,
    ) -> CoreResult<Imported> {
        authz.require(&["identity:update_cluster"])?;
        let cluster = self.get_cluster(cluster_id).await?;
        let domain = self.resource().get_domain(&cluster.domain_id).await?;
        let filter = ProjectFilter {
            domain_id: Some(domain.id.clone()),
            ..ProjectFilter::default()
        };
        let projects: Vec<KnownProject> = self
            .resource()
            .list_projects(&filter)
            .await?
            .into_iter()
            .map(|p| KnownProject {
                id: p.id,
                name: p.name,
            })
            .collect();
        let ctx = ImportContext {
            projects: &projects,
            domain_name: &domain.name,
        };
        let mut out = import_policy(policy, &ctx);
        // A rule the store would refuse is reported rather than half-imported.
        let mut valid = Vec::new();
        for rule in std::mem::take(&mut out.rules) {
            match check_rule(&KubeRule::from(rule.clone())) {
                Ok(()) => valid.push(rule),
                Err(e) => out.notes.push(Note {
                    at: rule.description.clone().unwrap_or_default(),
                    kind: NoteKind::NotImported,
                    text: e.to_string(),
                }),
            }
        }
        out.rules = valid;
        if let Some(sync) = sync {
            let mapped = import_sync_config(sync).map_err(crate::error::CoreError::validation)?;
            out.role_mappings = mapped.role_mappings;
            out.notes.extend(mapped.notes);
        }
        if !apply {
            return Ok(out);
        }
        // The whole import lands, or none of it.
        self.in_unit(async |unit| {
            if replace {
                for r in unit.kubernetes().list_kube_rules(cluster_id).await? {
                    unit.kubernetes()
                        .remove_kube_rule(cluster_id, &r.id)
                        .await?;
                }
            }
            for rule in &out.rules {
                unit.kubernetes()
                    .add_kube_rule(cluster_id, rule.clone())
                    .await?;
            }
            if sync.is_some() {
                let patch = ClusterPatch {
                    role_mappings: Some(out.role_mappings.clone()),
                    ..ClusterPatch::default()
                };
                unit.kubernetes().change_cluster(cluster_id, patch).await?;
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::rules::{decide, AccessDecision, AccessRequest, AccessTarget, KubeRule};
    use serde_json::json;

    fn projects() -> Vec<KnownProject> {
        vec![
            KnownProject {
                id: "p-demo".into(),
                name: "demo".into(),
            },
            KnownProject {
                id: "p-ops".into(),
                name: "ops".into(),
            },
        ]
    }

    fn import(policy: Value) -> Imported {
        let projects = projects();
        let ctx = ImportContext {
            projects: &projects,
            domain_name: "Default",
        };
        import_policy(policy.as_array().unwrap(), &ctx)
    }

    fn stored(i: &Imported) -> Vec<KubeRule> {
        i.rules
            .iter()
            .map(|n| KubeRule {
                id: "r".into(),
                subjects: n.subjects.clone(),
                effect: n.effect,
                verbs: n.verbs.clone(),
                namespaces: n.namespaces.clone(),
                api_groups: n.api_groups.clone(),
                resources: n.resources.clone(),
                names: n.names.clone(),
                except_namespaces: n.except_namespaces.clone(),
                except_resources: n.except_resources.clone(),
                non_resource_paths: n.non_resource_paths.clone(),
                ..KubeRule::default()
            })
            .collect()
    }

    /// The decision for someone in `groups` doing `verb` on a resource.
    fn may(
        i: &Imported,
        groups: &[&str],
        verb: &str,
        ns: &str,
        group: &str,
        res: &str,
        sub: &str,
    ) -> bool {
        let req = AccessRequest {
            user: "limen:Default/alice".into(),
            groups: groups
                .iter()
                .map(|g| g.to_string())
                .chain(["system:authenticated".to_string()])
                .collect(),
            verb: verb.into(),
            target: AccessTarget::Resource {
                namespace: ns.into(),
                api_group: group.into(),
                resource: res.into(),
                subresource: sub.into(),
                name: "x".into(),
            },
        };
        matches!(decide(&stored(i), &req), AccessDecision::Allowed { .. })
    }

    fn noted(i: &Imported, kind: NoteKind, text: &str) -> bool {
        i.notes
            .iter()
            .any(|n| n.kind == kind && n.text.contains(text))
    }

    const MEMBER_DEMO: &str = "limen:project:p-demo:member";

    #[test]
    fn v1_rules_keep_their_meaning() {
        let i = import(json!([
            {"resource": {"verbs": ["get", "list"], "resources": ["pods", "pods/log", "deployments/*"],
                          "version": "*", "namespace": "default"},
             "match": [{"type": "role", "values": ["member"]}, {"type": "project", "values": ["demo"]}]},
            {"nonresource": {"verbs": ["get"], "path": "/apis/*"},
             "match": [{"type": "group", "values": ["k8s-users"]}]},
            {"resource": {"verbs": ["*"], "resources": ["*"], "version": "apps", "namespace": "*"},
             "match": [{"type": "project", "values": ["p-ops"]}]}
        ]));
        assert_eq!(i.rules.len(), 3);
        assert!(may(&i, &[MEMBER_DEMO], "get", "default", "", "pods", ""));
        assert!(may(&i, &[MEMBER_DEMO], "get", "default", "", "pods", "log"));
        assert!(
            !may(&i, &[MEMBER_DEMO], "get", "default", "", "pods", "exec"),
            "v1 told subresources apart"
        );
        assert!(may(
            &i,
            &[MEMBER_DEMO],
            "list",
            "default",
            "apps",
            "deployments",
            "scale"
        ));
        assert!(!may(&i, &[MEMBER_DEMO], "get", "other", "", "pods", ""));
        assert!(!may(
            &i,
            &["limen:project:p-ops:member"],
            "get",
            "default",
            "",
            "pods",
            ""
        ));
        assert_eq!(
            i.rules[1].subjects,
            vec![RuleSubject::Group("limen:group:Default/k8s-users".into())]
        );
        // project alone: any role there; API group apps only, cluster scope too.
        assert!(may(
            &i,
            &["limen:project:p-ops"],
            "delete",
            "",
            "apps",
            "deployments",
            ""
        ));
        assert!(!may(
            &i,
            &["limen:project:p-ops"],
            "delete",
            "x",
            "",
            "pods",
            ""
        ));
        assert!(noted(&i, NoteKind::Changed, "limen:group:"));
    }

    #[test]
    fn v1_rules_limen_cannot_say_are_left_out() {
        let i = import(json!([
            {"resource": {"verbs": ["get"], "resources": ["pods"], "version": "*", "namespace": "*"},
             "match": [{"type": "user", "values": ["alice"]}]},
            {"resource": {"verbs": ["get"], "resources": ["pods"], "version": "*", "namespace": "*"},
             "match": [{"type": "group", "values": ["g"]}, {"type": "role", "values": ["member"]}]},
            {"resource": {"verbs": ["get"], "resources": ["pods"], "namespace": "*"},
             "match": [{"type": "role", "values": ["member"]}]},
            {"resource": {"verbs": ["get"], "resources": ["pods"], "version": "*", "namespace": "*"},
             "match": [{"type": "project", "values": ["nowhere"]}]},
            {"nonresource": {"verbs": [""], "path": "/healthz"}, "match": [{"type": "role", "values": ["member"]}]},
        ]));
        assert!(i.rules.is_empty(), "{:?}", i.rules);
        assert!(noted(&i, NoteKind::NotImported, "bind the user with RBAC"));
        assert!(noted(&i, NoteKind::NotImported, "alternatives"));
        assert!(noted(
            &i,
            NoteKind::NotImported,
            "without version or namespace"
        ));
        assert!(noted(&i, NoteKind::NotImported, "no project \"nowhere\""));
        assert!(noted(&i, NoteKind::NotImported, "empty verb"));
    }

    #[test]
    fn v2_rules_lose_their_flaws_and_say_so() {
        let i = import(json!([
            {"users": {"roles": ["member"], "projects": ["demo"]},
             "resource_permissions": {
                "!kube-system/!['namespaces','clusterroles']": ["*"],
                "default/['pods','services']": ["GET", "list"],
                "default/pods/exec": ["create"]},
             "nonresource_permissions": {"/healthz": ["get", "POST"], "/metrics*": ["get"]}},
            {"resource_permissions": {"*/*": ["*"]}},
            {"users": {"roles": ["member"]}, "resource_permissions": {"*/*": ["*"]}}
        ]));
        // Everywhere but kube-system, everything but namespaces and clusterroles.
        assert!(may(
            &i,
            &[MEMBER_DEMO],
            "delete",
            "dev",
            "apps",
            "deployments",
            ""
        ));
        assert!(
            may(&i, &[MEMBER_DEMO], "create", "dev", "", "pods", "exec"),
            "a negation reads `*`"
        );
        // Not without a namespace, which may span kube-system (and so no cluster scope).
        assert!(!may(&i, &[MEMBER_DEMO], "list", "", "", "secrets", ""));
        assert!(!may(
            &i,
            &[MEMBER_DEMO],
            "get",
            "",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            ""
        ));
        assert!(noted(
            &i,
            NoteKind::Changed,
            "no longer covers cluster-scoped resources or requests across all namespaces"
        ));
        assert!(!may(
            &i,
            &[MEMBER_DEMO],
            "get",
            "kube-system",
            "",
            "pods",
            ""
        ));
        assert!(!may(
            &i,
            &[MEMBER_DEMO],
            "get",
            "",
            "rbac.authorization.k8s.io",
            "clusterroles",
            ""
        ));
        // A literal: verbs lower-cased, any API group, but no subresources and no
        // cluster scope any more.
        let rule = i
            .rules
            .iter()
            .find(|r| r.resources == ["pods", "services"])
            .unwrap();
        assert_eq!(rule.verbs, ["get", "list"]);
        assert_eq!(rule.namespaces, ["default"]);
        assert!(noted(
            &i,
            NoteKind::Changed,
            "no longer covers its subresources (exec"
        ));
        assert!(noted(
            &i,
            NoteKind::Changed,
            "no longer cover cluster-scoped"
        ));
        assert!(noted(
            &i,
            NoteKind::NotImported,
            "\"default/pods/exec\" is not <namespace>/<resource>"
        ));
        // Non-resource: exact paths; upper-case verbs and * paths never matched upstream.
        let health = i
            .rules
            .iter()
            .find(|r| r.non_resource_paths == ["/healthz"])
            .unwrap();
        assert_eq!(health.verbs, ["get"]);
        assert!(noted(&i, NoteKind::NotImported, "[\"POST\"]"));
        assert!(noted(&i, NoteKind::NotImported, "\"/metrics*\""));
        // The rule for everyone and the one for no one.
        assert!(noted(
            &i,
            NoteKind::NotImported,
            "without users applied to every caller"
        ));
        assert!(noted(
            &i,
            NoteKind::NotImported,
            "without projects matched no one"
        ));
        assert!(!may(&i, &[], "get", "dev", "", "pods", ""));
        assert_eq!(i.rules.len(), 3);
    }

    #[test]
    fn role_mappings_become_groups_except_reserved_ones() {
        let sync = json!({
            "role-mappings": [
                {"keystone-role": "member", "groups": ["developers"]},
                {"keystone-role": "admin", "username": "root", "groups": ["system:masters", "admins"]}],
            "data-types-to-sync": ["projects"],
            "namespace_format": "%n"});
        let i = import_sync_config(&sync).unwrap();
        assert_eq!(
            i.role_mappings,
            vec![
                RoleMapping {
                    role: "member".into(),
                    groups: vec!["developers".into()]
                },
                RoleMapping {
                    role: "admin".into(),
                    groups: vec!["admins".into()]
                },
            ]
        );
        assert!(noted(&i, NoteKind::NotImported, "\"system:masters\""));
        assert!(noted(&i, NoteKind::NotImported, "username"));
        assert!(noted(&i, NoteKind::Todo, "data-types-to-sync"));
        assert!(noted(
            &i,
            NoteKind::NotImported,
            "namespace_format: k8s-keystone-auth reads `namespace-format`"
        ));
        assert!(import_sync_config(&json!(["not", "a", "mapping"])).is_err());
    }
}
