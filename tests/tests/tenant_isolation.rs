//! Tenant isolation at the borders between domains that the OpenID Provider and the
//! Kubernetes webhooks open (docs/security.md): one domain's OAuth client cannot mint
//! tokens for another domain's cluster, a Limen token is exchanged only by the client
//! it was issued to, a cluster admits only people of its own domain (or domains it
//! trusts), and a cluster token dies with what it was exchanged from.

use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CLUSTERS: &str = "/v3/limen/clusters";
const CLIENTS: &str = "/v3/limen/oauth_clients";
const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

/// Registers a cluster with `token` (an admin's or a domain manager's): id and webhook
/// token.
async fn register_cluster(s: &TestServer, token: &str, cluster: Value) -> (String, String) {
    let (status, v) = s.post(CLUSTERS, token, json!({ "cluster": cluster })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = &v["cluster"];
    (
        c["id"].as_str().expect("id").to_string(),
        c["webhook_token"]
            .as_str()
            .expect("webhook token")
            .to_string(),
    )
}

/// Registers an OAuth client with `token`: the status and body.
async fn client_as(s: &TestServer, token: &str, client: Value) -> (StatusCode, Value) {
    s.post(CLIENTS, token, json!({ "oauth_client": client }))
        .await
}

fn refused_because(status: &Value, why: &str) {
    assert_eq!(status["authenticated"], false, "{status}");
    let error = status["error"].as_str().unwrap_or("");
    assert!(error.contains(why), "expected {why:?} in {status}");
}

/// A project `name` in `domain`, made by the admin.
async fn project_in(s: &TestServer, domain: &str, name: &str) -> String {
    s.create(
        "projects",
        "project",
        json!({"name": name, "domain_id": domain}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Grants `role` to `user` on `project`.
async fn grant(s: &TestServer, user: &str, project: &str, role: &str) {
    let role = s.role_id(role).await;
    let (status, v) = s
        .put(
            &format!("/v3/projects/{project}/users/{user}/roles/{role}"),
            &s.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
}

#[tokio::test]
async fn a_clusters_audience_is_minted_only_for_clients_the_cluster_trusts() {
    let s = start_provider("device_poll_interval = 1").await;
    let (_a, a_manager) = s.domain_manager("dom-a").await;
    let (b, b_manager) = s.domain_manager("dom-b").await;
    let pb = project_in(&s, &b, "b-apps").await;
    // bob (Default domain) works in B's project.
    let bob = s
        .create(
            "users",
            "user",
            json!({"name": "bob", "password": USER_PASSWORD}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    grant(&s, &bob, &pb, "member").await;
    let (_, b_webhook) = register_cluster(
        &s,
        &b_manager,
        json!({"name": "b-prod", "api_server": "https://b.example.com", "audience": "cluster-b",
               "project_id": pb}),
    )
    .await;

    // A's manager cannot list B's cluster among its client's audiences.
    let evil = json!({"name": "kubectl-a", "confidential": false,
                      "grant_types": [DEVICE, "refresh_token", EXCHANGE],
                      "audiences": ["cluster-b"]});
    let (status, body) = client_as(&s, &a_manager, evil.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Listed before B's cluster took the audience, it is refused where it is used.
    let mut early = evil.clone();
    early["audiences"] = json!(["cluster-late"]);
    let (status, body) = client_as(&s, &a_manager, early).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let a_client = body["oauth_client"]["id"].as_str().unwrap().to_string();
    let (_, late_webhook) = register_cluster(
        &s,
        &b_manager,
        json!({"name": "b-late", "api_server": "https://late.example.com",
               "audience": "cluster-late", "project_id": pb}),
    )
    .await;

    // bob signs in to A's app; the consent (device) page named no cluster of B.
    let tokens = device_login(&s, &a_client, "bob").await;
    let access = tokens["access_token"].as_str().unwrap();
    let scope = format!("project:{pb}");
    for audience in ["cluster-late", "cluster-b"] {
        let (status, body) = exchange(
            &s,
            &a_client,
            access,
            &[("audience", audience), ("scope", &scope)],
        )
        .await;
        assert_eq!(
            (status, error_of(&body)),
            (StatusCode::BAD_REQUEST, "invalid_target"),
            "{audience}: {body}"
        );
    }

    // A client of B that lists the cluster cannot exchange a token issued to A's client.
    let (status, body) = client_as(
        &s,
        &b_manager,
        json!({"name": "b-tool", "confidential": false, "grant_types": [EXCHANGE],
               "audiences": ["cluster-b"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let b_client = body["oauth_client"]["id"].as_str().unwrap().to_string();
    let (status, body) = exchange(
        &s,
        &b_client,
        access,
        &[("audience", "cluster-b"), ("scope", &scope)],
    )
    .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    // But a Keystone token of bob's is a bearer credential already: B's own client may.
    let (keystone, _) = s
        .token(password_auth_by_id(
            &bob,
            USER_PASSWORD,
            Some(project_scope(&pb)),
        ))
        .await;
    let (status, body) = exchange(&s, &b_client, &keystone, &[("audience", "cluster-b")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cluster_token = body["access_token"].as_str().unwrap();
    // Exchanged tokens carry their own typ: no ID-token check takes them.
    assert_eq!(
        jsonwebtoken::decode_header(cluster_token)
            .unwrap()
            .typ
            .as_deref(),
        Some(EXCHANGED_TYP)
    );
    let set = fetch_jwk_set(&s).await;
    assert!(verify_jwt(&set, cluster_token, &s.base, "cluster-b", "JWT").is_err());
    assert_eq!(
        s.token_review(&b_webhook, cluster_token).await["authenticated"],
        true
    );

    // B's managers allow A's client explicitly: now it may, and the consent shows it.
    let (_, clusters) = s.get(CLUSTERS, &b_manager).await;
    let late = clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "b-late")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = s
        .patch(
            &format!("{CLUSTERS}/{late}"),
            &b_manager,
            json!({"cluster": {"exchange_clients": [a_client]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cluster"]["exchange_clients"], json!([a_client]));
    let (status, body) = exchange(
        &s,
        &a_client,
        access,
        &[("audience", "cluster-late"), ("scope", &scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let late_token = body["access_token"].as_str().unwrap();
    let person = s.token_review(&late_webhook, late_token).await;
    assert_eq!(person["authenticated"], true, "{person}");
    let d = s
        .http
        .post(s.url("/oauth2/device_authorization"))
        .form(&[("client_id", a_client.as_str())])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut browser = PageClient::new();
    let page = browser
        .get(d["verification_uri_complete"].as_str().unwrap())
        .await;
    let login = browser.log_in(page.location(), "bob", USER_PASSWORD).await;
    let confirm = browser.get(login.location()).await;
    assert!(
        confirm.body.contains("b-late") && confirm.body.contains("cluster-late"),
        "the consent names what the login can become: {}",
        confirm.body
    );
    assert!(!confirm.body.contains("b-prod"), "{}", confirm.body);

    // An audience can never be another client's id, nor the issuer.
    for audience in [b_client.as_str(), s.base.as_str()] {
        let mut c = evil.clone();
        c["audiences"] = json!([audience]);
        let (status, body) = client_as(&s, &a_manager, c).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{audience}: {body}");
        let (status, body) = s
            .patch(
                &format!("{CLIENTS}/{a_client}"),
                &a_manager,
                json!({"oauth_client": {"audiences": [audience]}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{audience}: {body}");
    }
}

#[tokio::test]
async fn a_cluster_admits_only_people_of_its_domain_or_of_domains_it_trusts() {
    let s = start_provider("").await;
    let (a, _) = s.domain_manager("dom-a").await;
    let (b, _) = s.domain_manager("dom-b").await;
    let pa = project_in(&s, &a, "a-apps").await;
    let pc = project_in(&s, &b, "b-apps").await;
    let (login, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false, "grant_types": [EXCHANGE]}),
    )
    .await;
    let (cluster, webhook) = register_cluster(
        &s,
        &s.admin_token,
        json!({"name": "a-prod", "domain_id": a, "api_server": "https://a.example.com",
               "audience": "cluster-a", "accept_keystone_tokens": true,
               "accept_application_credentials": true, "login_client_id": login}),
    )
    .await;
    // carol of domain B works in B's project only.
    let carol = s
        .create(
            "users",
            "user",
            json!({"name": "carol", "domain_id": b, "password": USER_PASSWORD}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    grant(&s, &carol, &pc, "member").await;
    let (in_b, _) = s
        .token(password_auth_by_id(
            &carol,
            USER_PASSWORD,
            Some(project_scope(&pc)),
        ))
        .await;
    let (cred, _) = s.application_credential_token(&carol, &in_b, "ci").await;
    let cred_bearer = format!(
        "{}:{}",
        cred["id"].as_str().unwrap(),
        cred["secret"].as_str().unwrap()
    );
    for token in [in_b.as_str(), cred_bearer.as_str()] {
        refused_because(&s.token_review(&webhook, token).await, "does not admit");
    }
    let (status, body) = exchange(&s, &login, &in_b, &[("audience", "cluster-a")]).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_target"),
        "{body}"
    );

    // A role in A's domain (a cross-domain grant) lets her in, for A's projects only.
    grant(&s, &carol, &pa, "reader").await;
    let (in_a, _) = s
        .token(password_auth_by_id(
            &carol,
            USER_PASSWORD,
            Some(project_scope(&pa)),
        ))
        .await;
    assert_eq!(s.token_review(&webhook, &in_a).await["authenticated"], true);
    refused_because(&s.token_review(&webhook, &in_b).await, "does not admit");
    let (status, body) = exchange(&s, &login, &in_a, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The cluster trusts domain B: B's people and projects are in.
    let (status, body) = s
        .patch(
            &format!("{CLUSTERS}/{cluster}"),
            &s.admin_token,
            json!({"cluster": {"trusted_domains": [b]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.token_review(&webhook, &in_b).await["authenticated"], true);
    assert_eq!(
        s.token_review(&webhook, &cred_bearer).await["authenticated"],
        true
    );
    let (status, body) = s
        .patch(
            &format!("{CLUSTERS}/{cluster}"),
            &s.admin_token,
            json!({"cluster": {"trusted_domains": ["no-such-domain"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_cluster_token_dies_with_what_it_was_exchanged_from() {
    let s = start_provider("device_poll_interval = 1").await;
    let project = s.new_project("apps").await;
    let (_, keystone) = s.new_member("bob", &project).await;
    let (client, _) = register_client(
        &s,
        json!({"name": "kubectl", "confidential": false,
               "grant_types": [DEVICE, "refresh_token", EXCHANGE]}),
    )
    .await;
    let (_, webhook) = register_cluster(
        &s,
        &s.admin_token,
        json!({"name": "prod", "api_server": "https://k.example.com", "audience": "cluster-a",
               "project_id": project, "login_client_id": client}),
    )
    .await;

    // From a Keystone token: revoking it ends the cluster token.
    let (status, body) = exchange(&s, &client, &keystone, &[("audience", "cluster-a")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let from_keystone = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.token_review(&webhook, &from_keystone).await["authenticated"],
        true
    );
    assert_eq!(s.revoke(&keystone).await, StatusCode::NO_CONTENT);
    refused_because(&s.token_review(&webhook, &from_keystone).await, "has ended");

    // From a device login: revoking its refresh token (the grant) ends the cluster token.
    let tokens = device_login(&s, &client, "bob").await;
    let (status, body) = exchange(
        &s,
        &client,
        tokens["access_token"].as_str().unwrap(),
        &[("audience", "cluster-a")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let from_login = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.token_review(&webhook, &from_login).await["authenticated"],
        true
    );
    let resp = s
        .http
        .post(s.url("/oauth2/revoke"))
        .form(&[
            ("client_id", client.as_str()),
            ("token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    refused_because(&s.token_review(&webhook, &from_login).await, "has ended");
}
