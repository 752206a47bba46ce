//! The tenant-isolation attack suite (docs/security.md): two tenants, A and B, each a
//! domain with a manager, a member, a project, a group, an OAuth client and a cluster;
//! A's people also hold an application credential, a credential, a trust, a cluster rule
//! and an identity provider. For each resource type, one [`Row`] lists what B's manager
//! and B's member try against A's object: read, change, delete, reference it from B's own
//! objects, and turn it into a token through the Identity API, the OAuth token endpoint
//! or a cluster's TokenReview. Every attempt must be refused (or, for a list, leak
//! nothing of A's), and A's objects must read the same afterwards.
//!
//! A new resource type that belongs to a domain is one more row.

use crate::oauth::{start_provider, EXCHANGE};
use crate::Api;
use crate::{password_auth_by_id, project_scope, TestServer, USER_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Who makes an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// B's domain manager (a domain-scoped token).
    BManager,
    /// A member of B's project (a project-scoped token).
    BMember,
}

/// One attempt; `{a.…}` and `{b.…}` in paths, bodies and tokens name the tenants' objects.
pub enum Call {
    /// An Identity API call: refused with 400, 401, 403 or 404 (409 where only the
    /// object's existence is learnt is not good enough: it is a failure too).
    Api(Method, &'static str, Option<&'static str>),
    /// A list that may answer 200, but must not name `leak`.
    List(&'static str, &'static str),
    /// A token exchange by `client` of `subject` (empty: the actor's token) for
    /// `audience`, with `scope` if not empty: refused.
    Exchange {
        client: &'static str,
        subject: &'static str,
        audience: &'static str,
        scope: &'static str,
    },
    /// A TokenReview by the cluster with `webhook` of `token`: not authenticated.
    Review {
        webhook: &'static str,
        token: &'static str,
    },
    /// A token request (`POST /v3/auth/tokens`) with this body: refused.
    Login(&'static str),
}

pub struct Attempt {
    pub what: &'static str,
    pub by: Actor,
    pub call: Call,
}

pub struct Row {
    pub kind: &'static str,
    pub attempts: Vec<Attempt>,
}

/// Shorthand for an attempt.
pub fn attempt(what: &'static str, by: Actor, call: Call) -> Attempt {
    Attempt { what, by, call }
}

/// The two tenants and their objects, by template name.
pub struct World {
    pub s: TestServer,
    pub vars: BTreeMap<String, String>,
}

impl World {
    fn fill(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        assert!(
            !out.contains("{a.") && !out.contains("{b."),
            "unknown name in {template}"
        );
        out
    }

    fn token_of(&self, by: Actor) -> String {
        match by {
            Actor::BManager => self.vars["b.manager_token"].clone(),
            Actor::BMember => self.vars["b.member_token"].clone(),
        }
    }

    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.vars.insert(k.to_string(), v.into());
    }

    fn get(&self, k: &str) -> String {
        self.vars[k].clone()
    }
}

async fn created(s: &TestServer, token: &str, path: &str, key: &str, body: Value) -> Value {
    let (status, v) = s.post(path, token, json!({ key: body })).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
    v[key].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// One tenant: a domain with a manager, a member in a project, a group, a public OAuth
/// client that may exchange tokens, and a cluster that takes Keystone tokens and
/// application credentials, logged in to through that client.
async fn tenant(w: &mut World, t: &str) {
    let s = &w.s;
    let admin = s.admin_token.clone();
    let (domain, manager_token) = s.domain_manager(&format!("dom-{t}")).await;
    let project = id(&created(
        s,
        &admin,
        "/v3/projects",
        "project",
        json!({"name": format!("{t}-apps"), "domain_id": domain}),
    )
    .await);
    let member = id(&created(
        s,
        &admin,
        "/v3/users",
        "user",
        json!({"name": format!("{t}-member"), "domain_id": domain, "password": USER_PASSWORD}),
    )
    .await);
    let role = s.role_id("member").await;
    let (status, _) = s
        .put(
            &format!("/v3/projects/{project}/users/{member}/roles/{role}"),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (member_token, _) = s
        .token(password_auth_by_id(
            &member,
            USER_PASSWORD,
            Some(project_scope(&project)),
        ))
        .await;
    let group = id(&created(
        s,
        &admin,
        "/v3/groups",
        "group",
        json!({"name": format!("{t}-devs"), "domain_id": domain}),
    )
    .await);
    let client = id(&created(
        s,
        &manager_token,
        "/v3/limen/oauth_clients",
        "oauth_client",
        json!({"name": format!("{t}-kubectl"), "confidential": false,
               "grant_types": [EXCHANGE], "audiences": [format!("cluster-{t}")]}),
    )
    .await);
    let cluster = created(
        s,
        &manager_token,
        "/v3/limen/clusters",
        "cluster",
        json!({"name": format!("{t}-prod"), "api_server": format!("https://{t}.example.com"),
               "audience": format!("cluster-{t}"), "project_id": project,
               "accept_keystone_tokens": true, "accept_application_credentials": true,
               "login_client_id": client}),
    )
    .await;
    for (k, v) in [
        ("domain", domain),
        ("manager_token", manager_token),
        ("project", project),
        ("member", member),
        ("member_token", member_token),
        ("group", group),
        ("client", client),
        ("cluster", id(&cluster)),
        ("audience", format!("cluster-{t}")),
        (
            "webhook",
            cluster["webhook_token"].as_str().unwrap_or_default().into(),
        ),
        ("role.member", role),
    ] {
        w.set(&format!("{t}.{k}"), v);
    }
}

/// A's further objects: an application credential, a credential, a trust, a cluster
/// rule and an identity provider.
async fn a_objects(w: &mut World) {
    let s = &w.s;
    let admin = s.admin_token.clone();
    let (member, token, project) = (
        w.get("a.member"),
        w.get("a.member_token"),
        w.get("a.project"),
    );
    let cred = created(
        s,
        &token,
        &format!("/v3/users/{member}/application_credentials"),
        "application_credential",
        json!({"name": "a-ci"}),
    )
    .await;
    let credential = created(
        s,
        &token,
        "/v3/credentials",
        "credential",
        json!({"type": "ec2", "user_id": member, "project_id": project,
               "blob": "{\"access\": \"a-access\", \"secret\": \"a-secret\"}"}),
    )
    .await;
    let colleague = id(&created(
        s,
        &admin,
        "/v3/users",
        "user",
        json!({"name": "a-colleague", "domain_id": w.get("a.domain"), "password": USER_PASSWORD}),
    )
    .await);
    let trust = created(
        s,
        &token,
        "/v3/OS-TRUST/trusts",
        "trust",
        json!({"trustor_user_id": member, "trustee_user_id": colleague,
               "project_id": project, "impersonation": false,
               "roles": [{"name": "member"}]}),
    )
    .await;
    let rule = created(
        s,
        &w.get("a.manager_token"),
        &format!("/v3/limen/clusters/{}/rules", w.get("a.cluster")),
        "rule",
        json!({"subjects": [{"project_id": project, "role": "member"}],
               "verbs": ["get"], "namespaces": ["apps"], "api_groups": [""],
               "resources": ["pods"]}),
    )
    .await;
    let (status, v) = s
        .call(
            Method::PUT,
            "/v3/OS-FEDERATION/identity_providers/a-idp",
            Some(&admin),
            Some(json!({"identity_provider": {"domain_id": w.get("a.domain"),
                                              "remote_ids": ["https://idp.a.example"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for (k, v) in [
        ("appcred", id(&cred)),
        (
            "appcred_bearer",
            format!(
                "{}:{}",
                id(&cred),
                cred["secret"].as_str().unwrap_or_default()
            ),
        ),
        ("credential", id(&credential)),
        ("trust", id(&trust)),
        ("rule", id(&rule)),
        ("idp", "a-idp".to_string()),
    ] {
        w.set(&format!("a.{k}"), v);
    }
}

/// Starts a provider with tenants A and B and A's objects.
pub async fn world() -> World {
    let mut w = World {
        s: start_provider("").await,
        vars: BTreeMap::new(),
    };
    tenant(&mut w, "a").await;
    tenant(&mut w, "b").await;
    a_objects(&mut w).await;
    w
}

/// What the cloud administrator reads of A's objects: unchanged by any attack.
async fn snapshot(w: &World) -> Vec<(String, StatusCode, Value)> {
    let mut out = Vec::new();
    for path in [
        "/v3/domains/{a.domain}",
        "/v3/users/{a.member}",
        "/v3/users/{a.member}/groups",
        "/v3/groups/{a.group}",
        "/v3/groups/{a.group}/users",
        "/v3/projects/{a.project}",
        "/v3/projects/{a.project}/users/{a.member}/roles",
        "/v3/role_assignments?scope.project.id={a.project}",
        "/v3/users/{a.member}/application_credentials/{a.appcred}",
        "/v3/credentials/{a.credential}",
        "/v3/OS-TRUST/trusts/{a.trust}",
        "/v3/limen/oauth_clients/{a.client}",
        "/v3/limen/clusters/{a.cluster}",
        "/v3/limen/clusters/{a.cluster}/rules",
        "/v3/OS-FEDERATION/identity_providers/{a.idp}",
    ] {
        let path = w.fill(path);
        let token = if path.contains("application_credentials") || path.contains("OS-TRUST") {
            w.get("a.member_token")
        } else {
            w.s.admin_token.clone()
        };
        let (status, mut body) = w.s.get(&path, &token).await;
        // Links carry no state; drop them so only the objects are compared.
        strip_links(&mut body);
        out.push((path, status, body));
    }
    out
}

fn strip_links(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("links");
            m.values_mut().for_each(strip_links);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_links),
        _ => {}
    }
}

/// Runs a row's attempts against a fresh world and checks that each was refused and that
/// A's objects are as they were.
pub async fn b_cannot_reach_a(row: Row) {
    let w = world().await;
    let before = snapshot(&w).await;
    for (path, status, body) in &before {
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    let mut failures = Vec::new();
    for a in &row.attempts {
        if let Err(why) = run(&w, a).await {
            failures.push(format!("{} ({:?}): {why}", a.what, a.by));
        }
    }
    let after = snapshot(&w).await;
    for (b, a) in before.iter().zip(&after) {
        if b != a {
            failures.push(format!("{} changed: {} -> {}", b.0, b.2, a.2));
        }
    }
    // A's own people are not locked out by anything B did.
    let review =
        w.s.token_review(&w.get("a.webhook"), &w.get("a.member_token"))
            .await;
    if review["authenticated"] != true {
        failures.push(format!("A's member no longer gets in: {review}"));
    }
    assert!(
        failures.is_empty(),
        "{}: B reached A's objects:\n{}",
        row.kind,
        failures.join("\n")
    );
}

async fn run(w: &World, a: &Attempt) -> Result<(), String> {
    let token = w.token_of(a.by);
    match &a.call {
        Call::Api(method, path, body) => {
            let path = w.fill(path);
            let body = body
                .map(|b| serde_json::from_str::<Value>(&w.fill(b)).expect("a JSON body template"));
            let (status, v) = w.s.call(method.clone(), &path, Some(&token), body).await;
            match status.as_u16() {
                400 | 401 | 403 | 404 => Ok(()),
                _ => Err(format!("{method} {path}: {status} {v}")),
            }
        }
        Call::List(path, leak) => {
            let path = w.fill(path);
            let leak = w.fill(leak);
            let (status, v) = w.s.get(&path, &token).await;
            if status.is_success() && v.to_string().contains(&leak) {
                Err(format!("GET {path} shows {leak}: {v}"))
            } else if status.is_success() || status.is_client_error() {
                Ok(())
            } else {
                Err(format!("GET {path}: {status} {v}"))
            }
        }
        Call::Exchange {
            client,
            subject,
            audience,
            scope,
        } => {
            let (client, subject, audience) = (w.fill(client), w.fill(subject), w.fill(audience));
            let subject = if subject.is_empty() { token } else { subject };
            let scope = w.fill(scope);
            let mut extra = vec![("audience", audience.as_str())];
            if !scope.is_empty() {
                extra.push(("scope", scope.as_str()));
            }
            let (status, v) = crate::oauth::exchange(&w.s, &client, &subject, &extra).await;
            if status == StatusCode::OK {
                Err(format!("exchanged for {audience}: {v}"))
            } else {
                Ok(())
            }
        }
        Call::Review { webhook, token: t } => {
            let t = w.fill(t);
            let t = if t.is_empty() { token } else { t };
            let st = w.s.token_review(&w.fill(webhook), &t).await;
            if st["authenticated"] == true {
                Err(format!("authenticated: {st}"))
            } else {
                Ok(())
            }
        }
        Call::Login(body) => {
            let body: Value = serde_json::from_str(&w.fill(body).replace("{token}", &token))
                .expect("a JSON body template");
            let (status, _, v) = w.s.authenticate(body).await;
            if status.is_success() {
                Err(format!("logged in: {v}"))
            } else {
                Ok(())
            }
        }
    }
}
