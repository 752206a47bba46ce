//! Kubernetes clusters as resources (`/v3/limen/clusters`, `limen cluster`) and the
//! TokenReview webhook as kube-apiserver calls it: with the cluster's webhook token, in
//! authentication.k8s.io v1 or v1beta1, always answered with 200 in the same version.
//! A cluster token from the token exchange names the person, their groups and their
//! project roles; every wrong token gets `authenticated: false` with a reason.

use limen_tests::domain_owned::*;
use limen_tests::in_process::InProcess;
use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CLUSTERS: &str = "/v3/limen/clusters";

async fn register(s: &impl Api, cluster: Value) -> (String, String) {
    let (status, v) = s
        .post(CLUSTERS, s.admin(), json!({ "cluster": cluster }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = &v["cluster"];
    (
        c["id"].as_str().expect("id").to_string(),
        c["webhook_token"]
            .as_str()
            .expect("the webhook token, once")
            .to_string(),
    )
}

/// `POST /kubernetes/tokenreview` as an API server with `webhook_token` sends it.
async fn review(s: &impl Api, webhook_token: &str, body: Value) -> (StatusCode, Value) {
    let bearer = format!("Bearer {webhook_token}");
    let (status, _, text) = s
        .exchange(
            Method::POST,
            "/kubernetes/tokenreview",
            &[("Authorization", &bearer)],
            Some(body),
        )
        .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn token_review(version: &str, token: &str, audiences: &[&str]) -> Value {
    let mut spec = json!({ "token": token });
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    json!({"apiVersion": format!("authentication.k8s.io/{version}"), "kind": "TokenReview",
           "metadata": {"creationTimestamp": null}, "spec": spec})
}

/// The status of a review that must be answered 200 in `version`.
async fn reviewed(
    s: &impl Api,
    webhook_token: &str,
    version: &str,
    token: &str,
    auds: &[&str],
) -> Value {
    let (status, body) = review(s, webhook_token, token_review(version, token, auds)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["apiVersion"],
        format!("authentication.k8s.io/{version}")
    );
    assert_eq!(body["kind"], "TokenReview");
    body["status"].clone()
}

fn rejected_because(status: &Value, why: &str) {
    assert_eq!(status["authenticated"], false, "{status}");
    let error = status["error"].as_str().unwrap_or("");
    assert!(error.contains(why), "expected {why:?} in {status}");
    assert!(status.get("user").is_none(), "{status}");
}

#[tokio::test]
async fn clusters_are_registered_with_a_webhook_token_shown_once() {
    let s = TestServer::start().await;
    let project = s.new_project("platform").await;
    let (status, v) = s
        .post(
            CLUSTERS,
            &s.admin_token,
            json!({"cluster": {"name": "prod", "api_server": "https://k8s.example.com:6443",
                               "project_id": project,
                               "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = &v["cluster"];
    assert_eq!(
        c["audience"], "https://k8s.example.com:6443",
        "defaults to the URL"
    );
    assert_eq!(c["accept_keystone_tokens"], false);
    let id = c["id"].as_str().unwrap().to_string();
    let token = c["webhook_token"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("{id}.")), "{token}");
    let stored = s
        .stored_strings("SELECT body FROM documents WHERE kind = 'k8s_cluster'")
        .await
        .join("\n");
    let secret = token.split_once('.').unwrap().1;
    assert!(
        stored.contains(&id) && !stored.contains(secret),
        "stored in clear"
    );
    let (status, got) = s.get(&format!("{CLUSTERS}/{id}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got["cluster"].get("webhook_token").is_none(), "{got}");

    for (bad, why) in [
        (
            json!({"name": "x", "api_server": "http://k8s.example.com"}),
            "https",
        ),
        (
            json!({"name": "prod", "api_server": "https://other.example.com"}),
            "named \"prod\"",
        ),
        (
            json!({"name": "y", "api_server": "https://y.example.com",
                   "audience": "https://k8s.example.com:6443"}),
            "another cluster's",
        ),
        (
            json!({"name": "z", "api_server": "https://z.example.com", "ca_pem": "junk"}),
            "PEM",
        ),
        (json!({"name": "w"}), "api_server"),
        (
            json!({"name": "v", "api_server": "https://v.example.com", "colour": 1}),
            "Additional properties",
        ),
    ] {
        let (status, body) = s
            .post(CLUSTERS, &s.admin_token, json!({ "cluster": bad.clone() }))
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT,
            "{bad}: {status} {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{bad}: {message}");
    }

    // An update that changes nothing, or the webhook token, is refused.
    for (patch, why) in [
        (json!({}), "does not have enough properties"),
        (
            json!({"webhook_token": "x"}),
            "Cannot change a cluster's webhook_token",
        ),
    ] {
        let (status, body) = s
            .patch(
                &format!("{CLUSTERS}/{id}"),
                &s.admin_token,
                json!({ "cluster": patch }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains(why), "{body}");
    }

    // A new webhook token replaces the old one at once.
    let (status, rotated) = s
        .call(
            Method::POST,
            &format!("{CLUSTERS}/{id}/webhook_token"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_token = rotated["cluster"]["webhook_token"].as_str().unwrap();
    let body = token_review("v1", "whatever", &[]);
    assert_eq!(
        review(&s, &token, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(review(&s, new_token, body).await.0, StatusCode::OK);

    // The CLI lists and shows it.
    let out = s.limen(&["cluster", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&id) && listed.contains("prod"), "{listed}");
    let (status, _) = s.delete(&format!("{CLUSTERS}/{id}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get(&format!("{CLUSTERS}/{id}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_domain_manager_manages_its_own_domains_clusters_only() {
    a_domain_manager_is_confined_to_its_domain(DomainOwned {
        collection: "clusters",
        member: "cluster",
        credential: "webhook_token",
        sample: |n| json!({"name": format!("k{n}"), "api_server": format!("https://k{n}.example.com")}),
    })
    .await;
}

#[tokio::test]
async fn the_cli_registers_a_cluster() {
    let s = TestServer::start().await;
    let out = s.limen(&[
        "cluster",
        "create",
        "--name",
        "edge",
        "--api-server",
        "https://edge.example.com",
        "--audience",
        "edge",
        "--accept-keystone-tokens",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .to_string()
    };
    assert_eq!(field("audience"), "edge");
    let body = token_review("v1", "not-a-token", &[]);
    let (status, answer) = review(&s, &field("webhook_token"), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    rejected_because(
        &answer["status"],
        "neither a valid cluster token nor a valid Keystone token",
    );
    // What the API server needs: the webhook kubeconfig names Limen and a token file,
    // never the token itself; direct JWT trust needs an issuer, which this Limen lacks.
    let out = s.limen(&[
        "cluster",
        "apiserver-config",
        "edge",
        "--part",
        "webhook",
        "--limen-url",
        &s.base,
    ]);
    let kubeconfig = String::from_utf8_lossy(&out.stdout);
    assert!(
        kubeconfig.contains(&format!("server: {}/kubernetes/tokenreview", s.base)),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("tokenFile: /etc/kubernetes/limen/webhook-token"));
    let out = s.limen(&[
        "cluster",
        "apiserver-config",
        "edge",
        "--part",
        "authz-webhook",
        "--limen-url",
        &s.base,
    ]);
    let authz = String::from_utf8_lossy(&out.stdout);
    assert!(
        authz.contains(&format!(
            "server: {}/kubernetes/subjectaccessreview",
            s.base
        )),
        "{authz}"
    );
    assert!(
        !kubeconfig.contains(&field("webhook_token")),
        "a secret printed"
    );
    let out = s.limen_unchecked(&["cluster", "apiserver-config", "edge", "--part", "jwt"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[oidc] issuer"));
    let out = s.limen_unchecked(&["cluster", "apiserver-config", "edge"]);
    assert!(!out.status.success(), "nowhere to send the webhook calls");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--limen-url"));
    let out = s.limen_unchecked(&["cluster", "apiserver-config", "nowhere"]);
    assert!(!out.status.success(), "an unknown cluster");
    let out = s.limen_unchecked(&[
        "cluster",
        "create",
        "--name",
        "x",
        "--api-server",
        "http://x",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

#[tokio::test]
async fn token_review_names_the_person_of_a_cluster_token() {
    let s = start_provider("").await;
    let (client, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-a", "cluster-b"]}),
    )
    .await;
    let (a_id, a_hook) = register(
        &s,
        json!({"name": "a", "api_server": "https://a.example.com", "audience": "cluster-a",
               "login_client_id": client}),
    )
    .await;
    let (_, b_hook) = register(
        &s,
        json!({"name": "b", "api_server": "https://b.example.com", "audience": "cluster-b",
               "accept_keystone_tokens": true}),
    )
    .await;
    let project = s.new_project("team-a").await;
    let (bob, keystone) = s.new_member("bob", &project).await;
    let group = s
        .create("groups", "group", json!({"name": "devs/ops"}))
        .await;
    let gid = group["id"].as_str().unwrap();
    let (st, _) = s
        .put(&format!("/v3/groups/{gid}/users/{bob}"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (status, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cluster_a_token = body["access_token"].as_str().unwrap().to_string();

    for version in ["v1", "v1beta1"] {
        let st = reviewed(&s, &a_hook, version, &cluster_a_token, &["cluster-a"]).await;
        assert_eq!(st["authenticated"], true, "{st}");
        assert_eq!(st["audiences"], json!(["cluster-a"]));
        let user = &st["user"];
        assert_eq!(user["username"], "limen:Default/bob");
        assert_eq!(user["uid"], json!(bob));
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for want in [
            "limen:group:Default/devs%2Fops".to_string(),
            format!("limen:project:{project}"),
            format!("limen:project:{project}:member"),
            format!("limen:project:{project}:reader"),
        ] {
            assert!(groups.contains(&want.as_str()), "{want} not in {groups:?}");
        }
        let extra = &user["extra"];
        assert_eq!(
            extra["alpha.kubernetes.io/identity/project/id"],
            json!([project])
        );
        assert_eq!(
            extra["alpha.kubernetes.io/identity/project/name"],
            json!(["team-a"])
        );
        assert_eq!(
            extra["alpha.kubernetes.io/identity/user/domain/name"],
            json!(["Default"])
        );
        assert!(extra["alpha.kubernetes.io/identity/roles"]
            .as_array()
            .unwrap()
            .contains(&json!("member")));
    }
    // The API server's own audiences (or none) not naming the cluster's: no audience is
    // returned, which the API server reads as its own.
    for auds in [&[][..], &["https://kubernetes.default.svc"][..]] {
        let st = reviewed(&s, &a_hook, "v1", &cluster_a_token, auds).await;
        assert_eq!(st["authenticated"], true, "{st}");
        assert!(st.get("audiences").is_none(), "{st}");
    }

    // Refusals, each with its reason, each a 200.
    let st = reviewed(&s, &b_hook, "v1", &cluster_a_token, &[]).await;
    rejected_because(&st, "not for this cluster");
    let st = reviewed(&s, &a_hook, "v1", &keystone, &[]).await;
    rejected_because(&st, "not a valid Limen token for this cluster");
    // Cluster b takes Keystone tokens: the same person, the token's project.
    let st = reviewed(&s, &b_hook, "v1beta1", &keystone, &[]).await;
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(st["user"]["username"], "limen:Default/bob");

    // Through an application credential limited to reader: only reader reaches the
    // cluster, though bob holds member too.
    let (status, cred) = s
        .post(
            &format!("/v3/users/{bob}/application_credentials"),
            &keystone,
            json!({"application_credential": {"name": "ci", "roles": [{"name": "reader"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cred}");
    let cred = &cred["application_credential"];
    let (status, body) = client_credentials(
        &s,
        cred["id"].as_str().unwrap(),
        cred["secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let limen_access = body["access_token"].as_str().unwrap().to_string();
    // Only the cluster's login client exchanges an application credential's token; a
    // client that merely lists the audience may not.
    let (lister, _) = register_client(
        &s,
        json!({"name": "lister", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-a"]}),
    )
    .await;
    let (status, body) = exchange(&s, &lister, &limen_access, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = exchange(&s, &client, &limen_access, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let st = reviewed(
        &s,
        &a_hook,
        "v1",
        body["access_token"].as_str().unwrap(),
        &[],
    )
    .await;
    let groups = st["user"]["groups"].to_string();
    assert!(
        groups.contains(&format!("limen:project:{project}:reader")),
        "{st}"
    );
    assert!(!groups.contains(":member"), "{st}");

    // The credential itself as a bearer (`<id>:<secret>`): only where the cluster takes
    // application credentials, and only with the right secret.
    let bearer = format!(
        "{}:{}",
        cred["id"].as_str().unwrap(),
        cred["secret"].as_str().unwrap()
    );
    let st = reviewed(&s, &a_hook, "v1", &bearer, &[]).await;
    rejected_because(&st, "not a valid Limen token for this cluster");
    let st = reviewed(&s, &b_hook, "v1", &bearer, &[]).await;
    rejected_because(&st, "nor a valid Keystone token");
    let (st, v) = s
        .patch(
            &format!("{CLUSTERS}/{a_id}"),
            &s.admin_token,
            json!({"cluster": {"accept_application_credentials": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let st = reviewed(&s, &a_hook, "v1", &bearer, &[]).await;
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(st["user"]["uid"], json!(bob));
    let groups = st["user"]["groups"].to_string();
    assert!(
        groups.contains(&format!("limen:project:{project}:reader")),
        "{st}"
    );
    assert!(!groups.contains(":member"), "{st}");
    let wrong = format!("{}:not-the-secret", cred["id"].as_str().unwrap());
    let st = reviewed(&s, &a_hook, "v1", &wrong, &[]).await;
    rejected_because(&st, "not a valid application credential");

    // A role taken away counts at once; the user disabled, too.
    let member = s.role_id("member").await;
    let (st, _) = s
        .delete(
            &format!("/v3/projects/{project}/users/{bob}/roles/{member}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let st = reviewed(&s, &a_hook, "v1", &cluster_a_token, &[]).await;
    rejected_because(&st, "no longer holds a role");
    let (st, _) = s
        .patch(
            &format!("/v3/users/{bob}"),
            &s.admin_token,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let st = reviewed(&s, &a_hook, "v1", &cluster_a_token, &[]).await;
    rejected_because(&st, "disabled or gone");
}

#[tokio::test]
async fn expired_tokens_unknown_callers_and_malformed_reviews_are_refused() {
    let s = InProcess::provider("").await;
    let (client, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-a"], "exchanged_token_lifetime": 1}),
    )
    .await;
    let (_, hook) = register(
        &s,
        json!({"name": "a", "api_server": "https://a.example.com", "audience": "cluster-a"}),
    )
    .await;
    let project = s.new_project("team-a").await;
    let (_, keystone) = s.new_member("carol", &project).await;
    let (_, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-a")]).await;
    let token = body["access_token"]
        .as_str()
        .expect("a cluster token")
        .to_string();
    let st = reviewed(&s, &hook, "v1", &token, &[]).await;
    assert_eq!(st["authenticated"], true, "{st}");
    s.advance(2);
    let st = reviewed(&s, &hook, "v1", &token, &[]).await;
    rejected_because(&st, "expired");

    // Not a registered cluster: a 401 Status, the review unanswered.
    for caller in ["", "nope", "nope.nope", &format!("{}x", hook)] {
        let (status, body) = review(&s, caller, token_review("v1", &token, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{caller}: {body}");
        assert_eq!(body["kind"], "Status");
    }
    let (status, _, _) = s
        .exchange(
            Method::POST,
            "/kubernetes/tokenreview",
            &[],
            Some(token_review("v1", &token, &[])),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Not a review: a 400 Status saying why.
    for (body, why) in [
        (
            json!({"apiVersion": "authentication.k8s.io/v2", "kind": "TokenReview",
                "spec": {"token": "t"}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"token": "t"}}),
            "kind",
        ),
        (
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {}}),
            "spec.token",
        ),
        (
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": "t", "audiences": "a"}}),
            "spec.audiences",
        ),
    ] {
        let (status, answer) = review(&s, &hook, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{body}: {message}");
    }
    let bearer = format!("Bearer {hook}");
    let not_json = ("application/json", b"{not json".to_vec());
    let (status, _, _) = s
        .send_raw(
            Method::POST,
            "/kubernetes/tokenreview",
            &[("Authorization", &bearer)],
            Some(not_json),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `user`'s application credential on its project (through `token`) with access `rules`.
async fn credential_with_rules(
    s: &TestServer,
    user: &str,
    token: &str,
    name: &str,
    rules: Value,
) -> Value {
    let (status, v) = s
        .post(
            &format!("/v3/users/{user}/application_credentials"),
            token,
            json!({"application_credential": {"name": name, "access_rules": rules}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["application_credential"].clone()
}

#[tokio::test]
async fn access_rules_limit_application_credentials_on_clusters() {
    let s = start_provider("").await;
    let (_, hook) = register(
        &s,
        json!({"name": "ruled", "api_server": "https://ruled.example.com",
               "audience": "cluster-ruled", "accept_keystone_tokens": true,
               "accept_application_credentials": true}),
    )
    .await;
    let project = s.new_project("team-ruled").await;
    let (carol, keystone) = s.new_member("carol", &project).await;
    let review_rule =
        json!({"service": "identity", "method": "POST", "path": "/kubernetes/tokenreview"});
    let oauth_rule = json!({"service": "identity", "method": "POST", "path": "/oauth2/token"});
    let compute_rule = json!({"service": "compute", "method": "GET", "path": "/v2.1/servers"});
    for (name, rules, on_clusters, as_oauth_client) in [
        ("servers", json!([compute_rule]), false, false),
        ("kube", json!([review_rule, compute_rule]), true, false),
        ("oauth", json!([oauth_rule]), false, true),
    ] {
        let cred = credential_with_rules(&s, &carol, &keystone, name, rules).await;
        let (id, secret) = (
            cred["id"].as_str().unwrap(),
            cred["secret"].as_str().unwrap(),
        );
        let st = reviewed(&s, &hook, "v1", &format!("{id}:{secret}"), &[]).await;
        if on_clusters {
            assert_eq!(st["authenticated"], true, "{name}: {st}");
            assert_eq!(st["user"]["uid"], json!(carol));
        } else {
            rejected_because(&st, "access rules");
        }
        // Its Keystone token is no way around them.
        let (token, _) = s
            .token(
                json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret}}}}),
            )
            .await;
        let st = reviewed(&s, &hook, "v1", &token, &[]).await;
        rejected_because(&st, "nor a valid Keystone token");
        // Nor is the OAuth client_credentials grant, unless a rule names it.
        let (status, body) = client_credentials(&s, id, secret).await;
        if as_oauth_client {
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
            assert_eq!(body["error"], "unauthorized_client", "{name}: {body}");
        }
    }
}

#[tokio::test]
async fn wrong_application_credential_secrets_are_limited_per_credential() {
    // Default settings: 5 wrong secrets a minute per credential.
    let s = start_provider("").await;
    let (_, hook) = register(
        &s,
        json!({"name": "guessed", "api_server": "https://guessed.example.com",
               "audience": "cluster-guessed", "accept_application_credentials": true}),
    )
    .await;
    let project = s.new_project("team-guessed").await;
    let (dave, keystone) = s.new_member("dave", &project).await;
    let target = credential_with_rules(&s, &dave, &keystone, "target", json!([])).await;
    let other = credential_with_rules(&s, &dave, &keystone, "other", json!([])).await;
    let (id, secret) = (
        target["id"].as_str().unwrap(),
        target["secret"].as_str().unwrap(),
    );

    // Twenty guesses at once, all from the API server's address: at most five are
    // checked, the rest are refused unchecked.
    let guesses = (0..20).map(|i| {
        let s = &s;
        let hook = &hook;
        async move {
            let token = format!("{id}:guess-{i}");
            reviewed(s, hook, "v1", &token, &[]).await
        }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let mut checked = 0;
    for st in &answers {
        assert_eq!(st["authenticated"], false, "{st}");
        let error = st["error"].as_str().unwrap_or_default();
        if error.contains("not a valid application credential") {
            checked += 1;
        } else {
            assert!(error.contains("not checked"), "{st}");
        }
    }
    assert!(checked <= 5, "{checked} guesses were checked");

    // Now not even the right secret is checked, anywhere, and each answer says so.
    let st = reviewed(&s, &hook, "v1", &format!("{id}:{secret}"), &[]).await;
    rejected_because(&st, "not checked");
    let resp = s
        .send(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(
                json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret}}}}),
            ),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{body}"
    );
    let (status, body) = client_credentials(&s, id, secret).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{body}"
    );

    // Other credentials, and the cluster, are not affected.
    let bearer = format!(
        "{}:{}",
        other["id"].as_str().unwrap(),
        other["secret"].as_str().unwrap()
    );
    let st = reviewed(&s, &hook, "v1", &bearer, &[]).await;
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(st["user"]["uid"], json!(dave));
}
