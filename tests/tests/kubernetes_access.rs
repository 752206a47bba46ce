//! A cluster's authorization rules (`/v3/limen/clusters/{id}/rules`) and the
//! SubjectAccessReview webhook as kube-apiserver calls it (authorization.k8s.io v1 with
//! `groups`, v1beta1 with `group`): allow, deny (which stops the API server's chain) or
//! no opinion; subresources are not their resource; nothing applies to everyone unless it
//! says so; a change applies to the next review, with no restart.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CLUSTERS: &str = "/v3/limen/clusters";

async fn register(s: &TestServer, name: &str) -> (String, String) {
    let (status, v) = s
        .post(
            CLUSTERS,
            &s.admin_token,
            json!({"cluster": {"name": name, "api_server": format!("https://{name}.example.com")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = &v["cluster"];
    (
        c["id"].as_str().unwrap().to_string(),
        c["webhook_token"].as_str().unwrap().to_string(),
    )
}

async fn add_rule(s: &TestServer, cluster: &str, rule: Value) -> (StatusCode, Value) {
    s.post(
        &format!("{CLUSTERS}/{cluster}/rules"),
        &s.admin_token,
        json!({ "rule": rule }),
    )
    .await
}

/// A SubjectAccessReview of `groups` doing `verb` on `attributes`, in `version`.
fn access_review(version: &str, groups: &[&str], attributes: Value) -> Value {
    let groups_key = if version == "v1" { "groups" } else { "group" };
    let mut spec = json!({"user": "limen:Default/alice", "uid": "u-1", "extra": {}});
    spec[groups_key] = json!(groups);
    let key = if attributes.get("path").is_some() {
        "nonResourceAttributes"
    } else {
        "resourceAttributes"
    };
    spec[key] = attributes;
    json!({"apiVersion": format!("authorization.k8s.io/{version}"),
           "kind": "SubjectAccessReview", "spec": spec})
}

async fn review(s: &TestServer, hook: &str, body: &Value) -> (StatusCode, Value) {
    let resp = s
        .http
        .post(s.url("/kubernetes/subjectaccessreview"))
        .bearer_auth(hook)
        .json(body)
        .send()
        .await
        .expect("access review");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `allowed`, `denied` and `reason` of an answered review.
async fn decision(s: &TestServer, hook: &str, body: Value) -> (bool, bool, String) {
    let (status, answer) = review(s, hook, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["apiVersion"], body["apiVersion"]);
    assert_eq!(answer["kind"], "SubjectAccessReview");
    let st = &answer["status"];
    (
        st["allowed"].as_bool().expect("allowed"),
        st["denied"].as_bool().unwrap_or(false),
        st["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn pods(verb: &str, namespace: &str, subresource: &str) -> Value {
    json!({"namespace": namespace, "verb": verb, "group": "", "version": "v1",
           "resource": "pods", "subresource": subresource, "name": "web"})
}

#[tokio::test]
async fn rules_allow_deny_or_leave_it_to_rbac() {
    let s = TestServer::start().await;
    let (cluster, hook) = register(&s, "a").await;
    let (_, other_hook) = register(&s, "b").await;
    let project = s.new_project("team-a").await;
    let member = format!("limen:project:{project}:member");
    let (status, allow) = add_rule(
        &s,
        &cluster,
        json!({"description": "team-a works in dev",
               "subjects": [{"project_id": project, "role": "member"}],
               "verbs": ["get", "list", "create"], "namespaces": ["dev"],
               "api_groups": [""], "resources": ["pods", "pods/log"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{allow}");
    assert_eq!(allow["rule"]["subjects"][0]["group"], json!(member));
    let (status, _) = add_rule(
        &s,
        &cluster,
        json!({"subjects": [{"group": "limen:group:Default/contractors"}], "effect": "deny",
               "verbs": ["*"], "namespaces": ["*"], "api_groups": [""],
               "resources": ["pods/exec", "pods/attach"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = add_rule(
        &s,
        &cluster,
        json!({"subjects": [{"group": "system:authenticated"}], "verbs": ["get"],
               "non_resource_paths": ["/healthz", "/version"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let alice = [member.as_str(), "system:authenticated"];
    let contractor = [
        member.as_str(),
        "limen:group:Default/contractors",
        "system:authenticated",
    ];
    for version in ["v1", "v1beta1"] {
        let (allowed, denied, reason) = decision(
            &s,
            &hook,
            access_review(version, &alice, pods("get", "dev", "")),
        )
        .await;
        assert!(allowed && !denied, "{reason}");
        assert!(reason.contains("team-a works in dev"), "{reason}");
    }
    // pods/log is named; pods/exec is not pods.
    assert!(
        decision(
            &s,
            &hook,
            access_review("v1", &alice, pods("get", "dev", "log"))
        )
        .await
        .0
    );
    let (allowed, denied, reason) = decision(
        &s,
        &hook,
        access_review("v1", &alice, pods("create", "dev", "exec")),
    )
    .await;
    assert!(!allowed && !denied, "no opinion: {reason}");
    // Another namespace, a cluster-scoped request, a verb not named: no opinion.
    for attrs in [
        pods("get", "prod", ""),
        json!({"verb": "list", "group": "", "resource": "nodes"}),
        pods("delete", "dev", ""),
    ] {
        let (allowed, denied, _) = decision(&s, &hook, access_review("v1", &alice, attrs)).await;
        assert!(!allowed && !denied);
    }
    // A deny wins over the allow, and says so.
    let (allowed, denied, reason) = decision(
        &s,
        &hook,
        access_review("v1", &contractor, pods("create", "dev", "exec")),
    )
    .await;
    assert!(!allowed && denied, "{reason}");
    assert!(reason.contains("denied by Limen rule"), "{reason}");
    // A rule for everyone says so (system:authenticated); without it nobody else matches.
    let health = json!({"path": "/healthz", "verb": "get"});
    assert!(
        decision(
            &s,
            &hook,
            access_review("v1", &["system:authenticated"], health.clone())
        )
        .await
        .0
    );
    assert!(
        !decision(&s, &hook, access_review("v1", &["someone"], health.clone()))
            .await
            .0
    );
    // Another cluster's rules are its own.
    assert!(
        !decision(
            &s,
            &other_hook,
            access_review("v1", &alice, pods("get", "dev", ""))
        )
        .await
        .0
    );

    // Removing the allow applies to the next review.
    let rule_id = allow["rule"]["id"].as_str().unwrap();
    let (status, _) = s
        .delete(
            &format!("{CLUSTERS}/{cluster}/rules/{rule_id}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !decision(
            &s,
            &hook,
            access_review("v1", &alice, pods("get", "dev", ""))
        )
        .await
        .0
    );
    let (status, list) = s
        .get(&format!("{CLUSTERS}/{cluster}/rules"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["rules"].as_array().unwrap().len(), 2);
    // A deleted cluster's rules go with it.
    let (status, _) = s
        .delete(&format!("{CLUSTERS}/{cluster}"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .get(&format!("{CLUSTERS}/{cluster}/rules"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A review without a namespace is a cluster-scoped request or the same request across
/// all namespaces (`kubectl get secrets -A`): a rule on `*` except kube-system must not
/// let it read kube-system's secrets, and a deny in kube-system denies it; a rule on `*`
/// without exceptions still covers both (so `nodes` keep working).
#[tokio::test]
async fn requests_without_a_namespace_respect_exceptions_and_denies() {
    let s = TestServer::start().await;
    let (cluster, hook) = register(&s, "a").await;
    let project = s.new_project("team-a").await;
    let member = format!("limen:project:{project}:member");
    let subject = json!([{"project_id": project, "role": "member"}]);
    for rule in [
        json!({"description": "secrets but kube-system's", "subjects": subject,
               "verbs": ["get", "list", "watch"], "namespaces": ["*"],
               "except_namespaces": ["kube-system"], "api_groups": [""], "resources": ["secrets"]}),
        json!({"subjects": subject, "effect": "deny", "verbs": ["*"],
               "namespaces": ["kube-system"], "api_groups": [""], "resources": ["secrets"]}),
        json!({"description": "nodes", "subjects": subject, "verbs": ["get", "list"],
               "namespaces": ["*"], "api_groups": [""], "resources": ["nodes"]}),
        json!({"description": "an exception and no deny",
               "subjects": [{"group": "auditors"}], "verbs": ["list"], "namespaces": ["*"],
               "except_namespaces": ["kube-system"], "api_groups": [""], "resources": ["configmaps"]}),
        json!({"description": "every namespace", "subjects": [{"group": "auditors"}],
               "verbs": ["list"], "namespaces": ["*"], "api_groups": [""],
               "resources": ["events"]}),
    ] {
        let (status, body) = add_rule(&s, &cluster, rule).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let list = |resource: &str, ns: &str| json!({"namespace": ns, "verb": "list", "group": "", "version": "v1", "resource": resource});
    let alice = [member.as_str(), "system:authenticated"];
    let auditor = ["auditors", "system:authenticated"];
    for (groups, attributes, expected) in [
        // kubectl get secrets -A: denied (the deny in kube-system spans it).
        (&alice, list("secrets", ""), (false, true)),
        (&alice, list("secrets", "kube-system"), (false, true)),
        (&alice, list("secrets", "dev"), (true, false)),
        // A rule on `*` without exceptions: cluster scope too.
        (&alice, list("nodes", ""), (true, false)),
        // An exception alone: no allow without a namespace, RBAC decides.
        (&auditor, list("configmaps", ""), (false, false)),
        (&auditor, list("configmaps", "dev"), (true, false)),
        (&auditor, list("configmaps", "kube-system"), (false, false)),
        (&auditor, list("events", ""), (true, false)),
    ] {
        let (allowed, denied, reason) =
            decision(&s, &hook, access_review("v1", groups, attributes.clone())).await;
        assert_eq!(
            (allowed, denied),
            expected,
            "{groups:?} {attributes}: {reason}"
        );
    }
    let (_, _, reason) = decision(
        &s,
        &hook,
        access_review("v1", &auditor, list("configmaps", "")),
    )
    .await;
    assert!(reason.contains("covers only some namespaces"), "{reason}");
}

#[tokio::test]
async fn bad_rules_and_bad_reviews_are_refused_with_a_reason() {
    let s = TestServer::start().await;
    let (cluster, hook) = register(&s, "a").await;
    let base = json!({"subjects": [{"group": "g"}], "verbs": ["get"], "namespaces": ["dev"],
                      "api_groups": [""], "resources": ["pods"]});
    let with = |k: &str, v: Value| {
        let mut r = base.clone();
        r[k] = v;
        r
    };
    for (rule, why) in [
        (with("subjects", json!([])), "names no subject"),
        (
            with("subjects", json!([{"project_id": "p"}])),
            "Invalid subject",
        ),
        (with("verbs", json!([])), "names no verb"),
        (with("namespaces", json!([])), "names no namespace"),
        (with("non_resource_paths", json!(["/healthz"])), "not both"),
        (with("resources", json!(["pods/exec/x"])), "res/sub"),
        (with("effect", json!("maybe")), "allow or deny"),
        (with("colour", json!("red")), "Additional properties"),
    ] {
        let (status, body) = add_rule(&s, &cluster, rule.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rule}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{rule}: {message}");
    }
    // A domain manager of another domain may not add rules to this cluster.
    let (_, other) = s.domain_manager("dom-b").await;
    let (status, _) = s
        .post(
            &format!("{CLUSTERS}/{cluster}/rules"),
            &other,
            json!({ "rule": base }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let body = access_review("v1", &["g"], pods("get", "dev", ""));
    for caller in ["", "x.y"] {
        assert_eq!(review(&s, caller, &body).await.0, StatusCode::UNAUTHORIZED);
    }
    for (bad, why) in [
        (
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"groups": ["g"]}}),
            "exactly one of",
        ),
        (
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"groups": "g", "resourceAttributes": {"verb": "get"}}}),
            "spec.groups",
        ),
        (
            json!({"apiVersion": "authorization.k8s.io/v2", "kind": "SubjectAccessReview",
                "spec": {}}),
            "apiVersion",
        ),
    ] {
        let (status, answer) = review(&s, &hook, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(why),
            "{answer}"
        );
    }
}

/// k8s-keystone-auth's policy (v1 and v2 rules in one list, in its ConfigMap) and sync
/// config imported with `limen cluster import-keystone-auth`: a dry run stores nothing;
/// the import gives k8s-keystone-auth's decisions except where the report says the
/// meaning changed; role mappings reach the TokenReview's groups; extended rules
/// (`except_namespaces`, `except_resources`) come back from the API.
#[tokio::test]
async fn k8s_keystone_auth_policies_are_imported_with_a_report() {
    let s = TestServer::start().await;
    let (cluster, hook) = register(&s, "legacy").await;
    let demo = s.new_project("demo").await;
    let policy = json!([
        {"resource": {"verbs": ["get", "list"], "resources": ["pods", "pods/log"],
                      "version": "*", "namespace": "default"},
         "match": [{"type": "role", "values": ["member"]}, {"type": "project", "values": ["demo"]}]},
        {"users": {"roles": ["member"], "projects": ["demo"]},
         "resource_permissions": {"!kube-system/['deployments']": ["get", "create"]}},
        {"resource_permissions": {"*/*": ["*"]}},
        {"resource": {"verbs": ["get"], "resources": ["pods"], "version": "*", "namespace": "*"},
         "match": [{"type": "user", "values": ["alice"]}]}
    ]);
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "k8s-auth-policy", "namespace": "kube-system"},
        "data": {"policies": policy.to_string()}});
    let policy_file = s.dir.path().join("policy-configmap.yaml");
    std::fs::write(&policy_file, serde_yaml::to_string(&config_map).unwrap()).unwrap();
    let sync_file = s.dir.path().join("sync.yaml");
    std::fs::write(
        &sync_file,
        "role-mappings:\n- keystone-role: member\n  groups: [developers]\n- keystone-role: admin\n  groups: [system:masters]\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "cluster",
            "import-keystone-auth",
            "legacy",
            "--policy",
            policy_file.to_str().unwrap(),
            "--sync-config",
            sync_file.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = s.limen(&refs);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dry = run(args(&["--dry-run"]));
    assert!(
        dry.contains("would import 2 rules and 1 role mappings"),
        "{dry}"
    );
    for said in [
        "policy[2]: not imported: a v2 rule without users applied to every caller",
        "policy[3]: not imported: a match on users",
        "\"deployments\" no longer covers its subresources (scale among them)",
        "no longer covers cluster-scoped resources or requests across all namespaces",
        "role-mappings[1]: not imported: group \"system:masters\"",
        "limen:project:<project id>",
    ] {
        assert!(dry.contains(said), "{said:?} missing from:\n{dry}");
    }
    let (_, listed) = s
        .get(&format!("{CLUSTERS}/{cluster}/rules"), &s.admin_token)
        .await;
    assert_eq!(listed["rules"], json!([]), "a dry run stores nothing");

    let done = run(args(&[]));
    assert!(done.contains("imported 2 rules"), "{done}");
    let (_, listed) = s
        .get(&format!("{CLUSTERS}/{cluster}/rules"), &s.admin_token)
        .await;
    let rules = listed["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert!(
        rules
            .iter()
            .any(|r| r["except_namespaces"] == json!(["kube-system"])),
        "{listed}"
    );

    let member = format!("limen:project:{demo}:member");
    let deployments = |verb: &str, ns: &str| json!({"namespace": ns, "verb": verb, "group": "apps", "version": "v1", "resource": "deployments"});
    for (groups, attributes, allowed) in [
        // k8s-keystone-auth's decisions, kept.
        (vec![member.as_str()], pods("list", "default", ""), true),
        (vec![member.as_str()], pods("get", "default", "log"), true),
        (vec![member.as_str()], pods("get", "other", ""), false),
        (vec![member.as_str()], deployments("create", "dev"), true),
        // `!kube-system` no longer reaches kube-system through all namespaces.
        (vec![member.as_str()], deployments("get", ""), false),
        (
            vec![member.as_str()],
            deployments("create", "kube-system"),
            false,
        ),
        // Changed, as the report says: v1 already told subresources apart; the v2 rule
        // for everyone is gone.
        (
            vec![member.as_str()],
            pods("create", "default", "exec"),
            false,
        ),
        (
            vec!["system:authenticated"],
            pods("get", "default", ""),
            false,
        ),
    ] {
        let (got, denied, reason) =
            decision(&s, &hook, access_review("v1", &groups, attributes.clone())).await;
        assert_eq!(
            (got, denied),
            (allowed, false),
            "{groups:?} {attributes} {reason}"
        );
    }

    // The role mapping: a member of demo gets `developers` on this cluster.
    let (status, c) = s
        .get(&format!("{CLUSTERS}/{cluster}"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        c["cluster"]["role_mappings"],
        json!([{"role": "member", "groups": ["developers"]}])
    );
    let (_, bob_token) = s.new_member("bob", &demo).await;
    let patch = json!({"cluster": {"accept_keystone_tokens": true}});
    let (status, _) = s
        .patch(&format!("{CLUSTERS}/{cluster}"), &s.admin_token, patch)
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = s
        .http
        .post(s.url("/kubernetes/tokenreview"))
        .bearer_auth(&hook)
        .json(
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                      "spec": {"token": bob_token}}),
        )
        .send()
        .await
        .unwrap();
    let reviewed: Value = resp.json().await.unwrap();
    let groups = reviewed["status"]["user"]["groups"].as_array().unwrap();
    assert!(groups.contains(&json!("developers")), "{reviewed}");

    // A reserved group cannot be mapped through the API either.
    let bad =
        json!({"cluster": {"role_mappings": [{"role": "admin", "groups": ["system:masters"]}]}});
    let (status, _) = s
        .patch(&format!("{CLUSTERS}/{cluster}"), &s.admin_token, bad)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
