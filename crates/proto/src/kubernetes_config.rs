//! What a cluster's API server needs to trust Limen, as Kubernetes' own configuration
//! documents: the TokenReview webhook's kubeconfig, or a structured
//! AuthenticationConfiguration that trusts Limen's cluster tokens directly (JWT); and for
//! authorization, the SubjectAccessReview webhook's kubeconfig with a structured
//! AuthorizationConfiguration.

use limen_core::kubernetes::cluster::{Cluster, RoleMapping};
use serde_json::{json, Value};

/// Limen's TokenReview webhook.
pub const TOKEN_REVIEW_PATH: &str = "/kubernetes/tokenreview";
/// Limen's SubjectAccessReview webhook.
pub const ACCESS_REVIEW_PATH: &str = "/kubernetes/subjectaccessreview";

/// A webhook kubeconfig as kube-apiserver reads it: Limen's webhook at `path`, and the
/// cluster's webhook token read from `token_file`.
pub fn webhook_kubeconfig(
    limen_url: &str,
    path: &str,
    limen_ca_pem: Option<&str>,
    token_file: &str,
) -> Value {
    let mut cluster = json!({ "server": format!("{limen_url}{path}") });
    if let Some(pem) = limen_ca_pem {
        cluster["certificate-authority-data"] = json!(base64_of(pem));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "limen", "cluster": cluster}],
        "users": [{"name": "kube-apiserver", "user": {"tokenFile": token_file}}],
        "contexts": [{"name": "limen", "context": {"cluster": "limen", "user": "kube-apiserver"}}],
        "current-context": "limen",
    })
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// A CEL string literal of `s`.
fn cel_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A CEL expression of a name, `%` and `/` percent-encoded as the webhook does.
fn cel_name(expr: &str) -> String {
    format!("{expr}.replace('%', '%25').replace('/', '%2F')")
}

/// The username template as a CEL expression over a cluster token's claims, so a cluster
/// trusting the tokens directly names people as the webhook does.
pub fn username_expression(template: &str) -> String {
    let placeholders = [
        ("{user_name}", cel_name("claims.preferred_username")),
        ("{user_id}", "claims.sub".to_string()),
        ("{domain_name}", cel_name("claims.limen.domain.name")),
        ("{domain_id}", "claims.limen.domain.id".to_string()),
    ];
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = placeholders
            .iter()
            .filter_map(|(p, e)| rest.find(p).map(|at| (at, *p, e)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, p, e)) => {
                if at > 0 {
                    parts.push(cel_literal(&rest[..at]));
                }
                parts.push(e.clone());
                rest = &rest[at + p.len()..];
            }
            None => {
                parts.push(cel_literal(rest));
                rest = "";
            }
        }
    }
    parts.join(" + ")
}

/// The groups as a CEL expression: the token's Keystone groups (`limen:group:` before
/// each), and for a token with a project, `limen:project:<id>` and
/// `limen:project:<id>:<role>` per role, and the groups the cluster's role mappings give
/// the holders of a role.
pub fn groups_expression(role_mappings: &[RoleMapping]) -> String {
    let mut expr =
        "claims.?groups.orValue([]).map(g, 'limen:group:' + g) + (has(claims.limen.project) ? \
     ['limen:project:' + claims.limen.project.id] + claims.?limen.?roles.orValue([])\
     .map(r, 'limen:project:' + claims.limen.project.id + ':' + r) : [])"
            .to_string();
    for m in role_mappings {
        let groups: Vec<String> = m.groups.iter().map(|g| cel_literal(g)).collect();
        expr.push_str(&format!(
            " + (has(claims.limen.project) && claims.?limen.?roles.orValue([]).exists(r, r == {}) ? [{}] : [])",
            cel_literal(&m.role),
            groups.join(", ")
        ));
    }
    expr
}

/// The structured AuthorizationConfiguration (`--authorization-config`, Kubernetes 1.30+;
/// v1 from 1.32) that asks Limen before RBAC, so Limen's explicit denies hold, for the
/// people whose username starts with `username_prefix` (all of them without one).
/// A Limen outage is no opinion: RBAC still decides.
pub fn authorization_config(kubeconfig_file: &str, username_prefix: &str) -> Value {
    let mut webhook = json!({
        "timeout": "3s",
        "authorizedTTL": "30s",
        "unauthorizedTTL": "10s",
        "subjectAccessReviewVersion": "v1",
        "failurePolicy": "NoOpinion",
        "connectionInfo": {"type": "KubeConfigFile", "kubeConfigFile": kubeconfig_file},
    });
    if !username_prefix.is_empty() {
        webhook["matchConditionSubjectAccessReviewVersion"] = json!("v1");
        webhook["matchConditions"] = json!([{
            "expression": format!("request.user.startsWith({})", cel_literal(username_prefix)),
        }]);
    }
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthorizationConfiguration",
        "authorizers": [
            {"type": "Node", "name": "node"},
            {"type": "Webhook", "name": "limen", "webhook": webhook},
            {"type": "RBAC", "name": "rbac"},
        ],
    })
}

/// The literal start of a username template (before its first placeholder).
pub fn username_prefix(template: &str) -> &str {
    &template[..template.find('{').unwrap_or(template.len())]
}

/// The structured AuthenticationConfiguration (`--authentication-config`, Kubernetes
/// 1.30+) that trusts `issuer`'s cluster tokens for `cluster`. `extra` keys live under
/// the issuer's host: Kubernetes refuses keys under kubernetes.io on this path.
pub fn authentication_config(
    issuer: &str,
    issuer_ca_pem: Option<&str>,
    cluster: &Cluster,
    username_template: &str,
) -> Value {
    let host = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("limen");
    let mut issuer_entry = json!({ "url": issuer, "audiences": [cluster.audience] });
    if let Some(pem) = issuer_ca_pem {
        issuer_entry["certificateAuthority"] = json!(pem);
    }
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": issuer_entry,
            "claimMappings": {
                "username": {"expression": username_expression(username_template)},
                "groups": {"expression": groups_expression(&cluster.role_mappings)},
                "uid": {"claim": "sub"},
                "extra": [
                    {"key": format!("{host}/domain-id"),
                     "valueExpression": "claims.limen.domain.id"},
                    {"key": format!("{host}/project-id"),
                     "valueExpression": "claims.?limen.?project.?id.orValue('')"},
                    {"key": format!("{host}/roles"),
                     "valueExpression": "claims.?limen.?roles.orValue([])"},
                ],
            },
            "userValidationRules": [
                {"expression": "!user.username.startsWith('system:')",
                 "message": "Limen names no one system:"},
                {"expression": "user.groups.all(g, !g.startsWith('system:'))",
                 "message": "Limen names no group system:"},
            ],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_templates_become_cel() {
        assert_eq!(
            username_expression("limen:{domain_name}/{user_name}"),
            "'limen:' + claims.limen.domain.name.replace('%', '%25').replace('/', '%2F') + '/' + \
             claims.preferred_username.replace('%', '%25').replace('/', '%2F')"
        );
        assert_eq!(
            username_expression("limen:{user_id}"),
            "'limen:' + claims.sub"
        );
        assert_eq!(
            username_expression("it's {domain_id}"),
            "'it\\'s ' + claims.limen.domain.id"
        );
    }

    #[test]
    fn the_webhook_kubeconfig_reads_the_token_from_a_file() {
        let k = webhook_kubeconfig(
            "https://id.example.com",
            TOKEN_REVIEW_PATH,
            Some("-----BEGIN CERTIFICATE-----\n"),
            "/etc/kubernetes/limen/webhook-token",
        );
        assert_eq!(
            k["clusters"][0]["cluster"]["server"],
            "https://id.example.com/kubernetes/tokenreview"
        );
        assert_eq!(
            k["users"][0]["user"]["tokenFile"],
            "/etc/kubernetes/limen/webhook-token"
        );
        assert!(k["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    }

    #[test]
    fn authorization_asks_limen_before_rbac_for_limens_people() {
        assert_eq!(username_prefix("limen:{domain_name}/{user_name}"), "limen:");
        assert_eq!(username_prefix("{user_id}"), "");
        let c = authorization_config("/etc/k/authz.kubeconfig", "limen:");
        let names: Vec<&str> = c["authorizers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert_eq!(names, ["node", "limen", "rbac"]);
        let webhook = &c["authorizers"][1]["webhook"];
        assert_eq!(
            webhook["matchConditions"][0]["expression"],
            "request.user.startsWith('limen:')"
        );
        let open = authorization_config("/etc/k/authz.kubeconfig", "");
        assert!(open["authorizers"][1]["webhook"]
            .get("matchConditions")
            .is_none());
    }
}
