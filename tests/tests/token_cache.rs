//! The validated-token cache on two nodes of one cloud (two `limen serve` processes on one
//! database): every change that affects a token is seen by the node that made it at once
//! and by the other node within a second, while tokens it does not affect stay valid.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The bound the issue sets: every node rejects an affected token within a second.
const PROPAGATION: Duration = Duration::from_secs(1);

struct Cloud {
    a: TestServer,
    b: TestServer,
    project: String,
    user: String,
    token: String,
    /// A token of another user on another project, which no change here touches.
    bystander: String,
    member_role: String,
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Node `b` shares node `a`'s database and copies of its key files.
async fn second_node(a: &TestServer, config: &str) -> TestServer {
    let from = a.dir.path().to_path_buf();
    a.join_prepared(config, |dir| {
        for keys in ["fernet-keys", "credential-keys"] {
            copy_dir(&from.join(keys), &dir.join(keys));
        }
    })
    .await
}

async fn cloud() -> Cloud {
    cloud_with(DEFAULT_CONFIG).await
}

/// [`cloud`] with both nodes on this configuration.
async fn cloud_with(config: &str) -> Cloud {
    let a = TestServer::start_with(config).await;
    let b = second_node(&a, config).await;
    let p = a
        .create(
            "projects",
            "project",
            json!({"name": "p1", "domain_id": "default"}),
        )
        .await;
    let other = a
        .create(
            "projects",
            "project",
            json!({"name": "p2", "domain_id": "default"}),
        )
        .await;
    let (user, token) = a.new_member("alice", &id(&p)).await;
    let (_, bystander) = a.new_member("bob", &id(&other)).await;
    let member_role = a.role_id("member").await;
    let c = Cloud {
        a,
        b,
        project: id(&p),
        user,
        token,
        bystander,
        member_role,
    };
    c.warm(&[&c.token, &c.bystander]).await;
    c
}

impl Cloud {
    /// `method path` on node `on` with `token`, which must succeed.
    async fn act(
        &self,
        on: &TestServer,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) {
        let (s, v) = on.call(method, path, Some(token), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
    }

    /// Validates each token twice on both nodes, so both have it cached.
    async fn warm(&self, tokens: &[&str]) {
        for t in tokens {
            for node in [&self.a, &self.b] {
                for _ in 0..2 {
                    assert_eq!(node.validate(t).await, StatusCode::OK);
                }
            }
        }
    }

    /// `changed_on` rejects `token` at once, the other node within [`PROPAGATION`]; the
    /// bystander stays valid on both.
    async fn assert_rejected(&self, changed_on: &TestServer, token: &str) {
        assert_eq!(
            changed_on.validate(token).await,
            StatusCode::NOT_FOUND,
            "the node that made the change still accepts the token"
        );
        tokio::time::sleep(PROPAGATION).await;
        for (name, node) in [("a", &self.a), ("b", &self.b)] {
            assert_eq!(
                node.validate(token).await,
                StatusCode::NOT_FOUND,
                "node {name} still accepts the token a second after the change"
            );
            assert_eq!(
                node.validate(&self.bystander).await,
                StatusCode::OK,
                "node {name} rejects an unaffected token"
            );
        }
    }
}

/// `node`'s validation of `token` (with its admin token): must be 200; the body.
async fn validated_body(node: &TestServer, token: &str) -> Value {
    let resp = node
        .http
        .get(node.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &node.admin_token)
        .header("X-Subject-Token", token)
        .send()
        .await
        .expect("validate");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn revoking_a_token_reaches_every_node() {
    let c = cloud().await;
    // Revoked on b, checked on a as well.
    assert_eq!(c.b.revoke(&c.token).await, StatusCode::NO_CONTENT);
    c.assert_rejected(&c.b, &c.token).await;
}

/// On a fresh two-node cloud, node `on` (0 or 1) carries out `method path body` as admin
/// (path and body built from the cloud's ids): the user's token must be rejected.
async fn change_rejects_the_token(
    on: usize,
    method: Method,
    path: fn(&Cloud) -> String,
    body: Option<Value>,
) {
    let c = cloud().await;
    let node = [&c.a, &c.b][on];
    c.act(node, method, &path(&c), &node.admin_token, body)
        .await;
    c.assert_rejected(node, &c.token).await;
}

#[tokio::test]
async fn disabling_a_user_reaches_every_node() {
    let disable = json!({"user": {"enabled": false}});
    change_rejects_the_token(
        0,
        Method::PATCH,
        |c| format!("/v3/users/{}", c.user),
        Some(disable),
    )
    .await;
}

#[tokio::test]
async fn deleting_a_user_reaches_every_node() {
    change_rejects_the_token(1, Method::DELETE, |c| format!("/v3/users/{}", c.user), None).await;
}

#[tokio::test]
async fn changing_a_password_reaches_every_node() {
    let reset = json!({"user": {"password": "pw-new-654321"}});
    change_rejects_the_token(
        0,
        Method::PATCH,
        |c| format!("/v3/users/{}", c.user),
        Some(reset),
    )
    .await;
}

#[tokio::test]
async fn disabling_a_project_reaches_every_node() {
    let disable = json!({"project": {"enabled": false}});
    change_rejects_the_token(
        1,
        Method::PATCH,
        |c| format!("/v3/projects/{}", c.project),
        Some(disable),
    )
    .await;
}

#[tokio::test]
async fn disabling_a_domain_reaches_every_node() {
    let c = cloud().await;
    let d = c.a.create("domains", "domain", json!({"name": "d1"})).await;
    let p =
        c.a.create(
            "projects",
            "project",
            json!({"name": "dp", "domain_id": id(&d)}),
        )
        .await;
    let u =
        c.a.create(
            "users",
            "user",
            json!({"name": "carol", "domain_id": id(&d), "password": USER_PASSWORD}),
        )
        .await;
    let member = c.a.role_id("member").await;
    let (s, _) =
        c.a.put(
            &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
            &c.a.admin_token,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (token, _) =
        c.a.token(password_auth_by_id(
            &id(&u),
            USER_PASSWORD,
            Some(project_scope(&id(&p))),
        ))
        .await;
    c.warm(&[&token]).await;
    c.act(
        &c.a,
        Method::PATCH,
        &format!("/v3/domains/{}", id(&d)),
        &c.a.admin_token,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    c.assert_rejected(&c.a, &token).await;
}

#[tokio::test]
async fn removing_a_grant_reaches_every_node() {
    // The harness gives members the role `member`, whose id is looked up by name.
    change_rejects_the_token(
        1,
        Method::DELETE,
        |c| {
            format!(
                "/v3/projects/{}/users/{}/roles/{}",
                c.project, c.user, c.member_role
            )
        },
        None,
    )
    .await;
}

#[tokio::test]
async fn removing_a_group_member_reaches_every_node() {
    let c = cloud().await;
    let g =
        c.a.create(
            "groups",
            "group",
            json!({"name": "ops", "domain_id": "default"}),
        )
        .await;
    let p =
        c.a.create(
            "projects",
            "project",
            json!({"name": "gp", "domain_id": "default"}),
        )
        .await;
    let member = c.a.role_id("member").await;
    for path in [
        format!("/v3/groups/{}/users/{}", id(&g), c.user),
        format!("/v3/projects/{}/groups/{}/roles/{member}", id(&p), id(&g)),
    ] {
        let (s, v) = c.a.put(&path, &c.a.admin_token).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{path}: {v}");
    }
    let (token, _) =
        c.a.token(password_auth_by_id(
            &c.user,
            USER_PASSWORD,
            Some(project_scope(&id(&p))),
        ))
        .await;
    c.warm(&[&token]).await;
    c.act(
        &c.b,
        Method::DELETE,
        &format!("/v3/groups/{}/users/{}", id(&g), c.user),
        &c.b.admin_token,
        None,
    )
    .await;
    c.assert_rejected(&c.b, &token).await;
    // As in Keystone, leaving a group revokes all of the user's tokens.
    assert_eq!(c.a.validate(&c.token).await, StatusCode::NOT_FOUND);
    assert_eq!(c.b.validate(&c.token).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_an_application_credential_reaches_every_node() {
    let c = cloud().await;
    let (ac, token) =
        c.a.application_credential_token(&c.user, &c.token, "ci")
            .await;
    c.warm(&[&token]).await;
    c.act(
        &c.a,
        Method::DELETE,
        &format!("/v3/users/{}/application_credentials/{}", c.user, id(&ac)),
        &c.token,
        None,
    )
    .await;
    c.assert_rejected(&c.a, &token).await;
}

#[tokio::test]
async fn deleting_a_trust_reaches_every_node() {
    let c = cloud().await;
    let trustee =
        c.a.create(
            "users",
            "user",
            json!({"name": "trustee", "password": USER_PASSWORD}),
        )
        .await;
    let (s, v) =
        c.a.post(
            "/v3/OS-TRUST/trusts",
            &c.token,
            json!({"trust": {"trustor_user_id": c.user, "trustee_user_id": id(&trustee),
                "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let trust = id(&v["trust"]);
    let (trustee_token, _) =
        c.a.token(password_auth_by_id(&id(&trustee), USER_PASSWORD, None))
            .await;
    let (token, _) =
        c.a.token(token_auth(
            &trustee_token,
            Some(json!({"OS-TRUST:trust": {"id": trust}})),
        ))
        .await;
    c.warm(&[&token]).await;
    c.act(
        &c.b,
        Method::DELETE,
        &format!("/v3/OS-TRUST/trusts/{trust}"),
        &c.b.admin_token,
        None,
    )
    .await;
    c.assert_rejected(&c.b, &token).await;
}

#[tokio::test]
async fn deleting_a_trust_ends_its_redelegated_trusts_on_every_node() {
    let c = cloud_with(&format!(
        "{DEFAULT_CONFIG}\n[trust]\nallow_redelegation = true\n"
    ))
    .await;
    // The trustor trusts B, B redelegates to C, C to D, each impersonating.
    let mut holders = vec![(c.user.clone(), c.token.clone())];
    let mut trusts: Vec<String> = Vec::new();
    for name in ["b", "c", "d"] {
        let user = id(&c
            .a
            .create(
                "users",
                "user",
                json!({"name": name, "password": USER_PASSWORD}),
            )
            .await);
        let (token, _) =
            c.a.token(password_auth_by_id(&user, USER_PASSWORD, None))
                .await;
        let holder_token = &holders[holders.len() - 1].1;
        let acting = match trusts.last() {
            Some(t) => {
                c.a.token(token_auth(
                    holder_token,
                    Some(json!({"OS-TRUST:trust": {"id": t}})),
                ))
                .await
                .0
            }
            None => holder_token.clone(),
        };
        let (s, v) =
            c.a.post(
                "/v3/OS-TRUST/trusts",
                &acting,
                json!({"trust": {"trustor_user_id": c.user, "trustee_user_id": user,
                    "project_id": c.project, "impersonation": true,
                    "allow_redelegation": true, "roles": [{"name": "member"}]}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        trusts.push(id(&v["trust"]));
        holders.push((user, token));
    }
    let (token, _) =
        c.a.token(token_auth(
            &holders[3].1,
            Some(json!({"OS-TRUST:trust": {"id": trusts[2]}})),
        ))
        .await;
    c.warm(&[&token]).await;
    c.act(
        &c.b,
        Method::DELETE,
        &format!("/v3/OS-TRUST/trusts/{}", trusts[0]),
        &c.b.admin_token,
        None,
    )
    .await;
    c.assert_rejected(&c.b, &token).await;
}

/// Not only rejections: a validated body shows a new grant on every node within a second.
#[tokio::test]
async fn a_new_grant_shows_in_validations_on_every_node() {
    let c = cloud().await;
    c.grant_new_role(&c.a, "auditor").await;
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        let body = validated_body(node, &c.token).await;
        assert!(role_names(&body).contains(&"auditor"), "{body}");
    }
}

/// The names of the roles in a token body.
fn role_names(body: &Value) -> Vec<&str> {
    body["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect()
}

impl Cloud {
    /// Creates role `name` and grants it to the user on the project, on node `on`.
    async fn grant_new_role(&self, on: &TestServer, name: &str) {
        let role = on.create("roles", "role", json!({ "name": name })).await;
        let grant = format!(
            "/v3/projects/{}/users/{}/roles/{}",
            self.project,
            self.user,
            id(&role)
        );
        let (s, v) = on.put(&grant, &on.admin_token).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
}

/// The cache is really used: a write behind Limen's back (straight into the database, so
/// no change is published) is not seen until the entry's `cache_time` runs out.
#[tokio::test]
async fn cached_validations_live_at_most_cache_time() {
    let config = format!("{DEFAULT_CONFIG}\n[token]\ncache_time = 3\n");
    let a = TestServer::start_with(&config).await;
    let p = a
        .create(
            "projects",
            "project",
            json!({"name": "p1", "domain_id": "default"}),
        )
        .await;
    let (user, token) = a.new_member("alice", &id(&p)).await;
    assert_eq!(a.validate(&token).await, StatusCode::OK);
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&a.database_url)
        .await
        .expect("connect to the database");
    sqlx::query("UPDATE users SET enabled = 0 WHERE id = $1")
        .bind(&user)
        .execute(&mut db)
        .await
        .expect("disable behind Limen's back");
    assert_eq!(
        a.validate(&token).await,
        StatusCode::OK,
        "the validation was not served from the cache"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.validate(&token).await, StatusCode::NOT_FOUND);
}

/// A cached validation does not outlive the key that vouched for it: once the Fernet
/// repository is replaced, the token stops validating although its entry is still fresh.
#[tokio::test]
async fn cached_validations_end_with_their_keys() {
    let a = TestServer::start().await;
    let p = a
        .create(
            "projects",
            "project",
            json!({"name": "p1", "domain_id": "default"}),
        )
        .await;
    let (_, token) = a.new_member("alice", &id(&p)).await;
    let self_validate = || async {
        a.http
            .get(a.url("/v3/auth/tokens"))
            .header("X-Auth-Token", &token)
            .header("X-Subject-Token", &token)
            .send()
            .await
            .expect("validate")
            .status()
    };
    assert_eq!(self_validate().await, StatusCode::OK);
    assert_eq!(self_validate().await, StatusCode::OK);
    let repo = a.dir.path().join("fernet-keys");
    std::fs::rename(&repo, a.dir.path().join("old-fernet-keys")).expect("move keys away");
    a.limen(&["keys", "fernet", "setup"]);
    // Key files are looked at once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(self_validate().await, StatusCode::UNAUTHORIZED);
}

/// Token bodies carry the catalog and the service providers, which are cached too: a new
/// endpoint shows in validations on every node within a second, and so do a project's
/// endpoint filter and a new service provider.
#[tokio::test]
async fn catalog_and_service_provider_changes_show_in_validations_on_every_node() {
    let c = cloud().await;
    let catalog_names = |body: &Value| -> Vec<String> {
        body["token"]["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()
    };
    for node in [&c.a, &c.b] {
        assert!(
            !catalog_names(&validated_body(node, &c.token).await).contains(&"images".to_string())
        );
    }
    let svc =
        c.a.create(
            "services",
            "service",
            json!({"type": "image", "name": "images"}),
        )
        .await;
    let ep =
        c.a.create(
            "endpoints",
            "endpoint",
            json!({"service_id": id(&svc), "interface": "public", "url": "http://glance:9292"}),
        )
        .await;
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        assert!(
            catalog_names(&validated_body(node, &c.token).await).contains(&"images".to_string())
        );
    }
    // Filtering the project's endpoints down to another one hides the new service.
    let identity =
        c.a.get("/v3/endpoints?interface=public", &c.a.admin_token)
            .await
            .1["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["id"] != ep["id"])
            .map(id)
            .expect("identity endpoint");
    c.act(
        &c.b,
        Method::PUT,
        &format!(
            "/v3/OS-EP-FILTER/projects/{}/endpoints/{identity}",
            c.project
        ),
        &c.b.admin_token,
        None,
    )
    .await;
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        assert!(
            !catalog_names(&validated_body(node, &c.token).await).contains(&"images".to_string())
        );
    }
    for node in [&c.a, &c.b] {
        assert!(validated_body(node, &c.token).await["token"]
            .get("service_providers")
            .is_none());
    }
    let sp = json!({"service_provider": {
        "auth_url": "https://sp.example/v3/OS-FEDERATION/identity_providers/us/protocols/saml2/auth",
        "sp_url": "https://sp.example/Shibboleth.sso/SAML2/ECP", "enabled": true}});
    c.act(
        &c.a,
        Method::PUT,
        "/v3/OS-FEDERATION/service_providers/sp1",
        &c.a.admin_token,
        Some(sp),
    )
    .await;
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        let body = validated_body(node, &c.token).await;
        assert_eq!(body["token"]["service_providers"][0]["id"], json!("sp1"));
    }
}

/// Issuing caches too: a user's scope and roles on it are resolved once per node, and a
/// change is seen by rescoping (and password logins) as it is by validations.
impl Cloud {
    /// Rescopes the user's unscoped `token` to the cloud's project on `node`: the status
    /// and the body.
    async fn rescope(&self, node: &TestServer, token: &str) -> (StatusCode, Value) {
        let (s, _, body) = node
            .authenticate(token_auth(token, Some(project_scope(&self.project))))
            .await;
        (s, body)
    }

    /// An unscoped token of the user, rescoped twice on both nodes (so both have the
    /// scope cached).
    async fn warm_rescoping(&self) -> String {
        let (unscoped, _) = self
            .a
            .token(password_auth_by_id(&self.user, USER_PASSWORD, None))
            .await;
        for node in [&self.a, &self.b] {
            for _ in 0..2 {
                let (s, body) = self.rescope(node, &unscoped).await;
                assert_eq!(s, StatusCode::CREATED, "{body}");
            }
        }
        unscoped
    }
}

/// After `change` (made on node `on`), rescoping the user's unscoped token to the project
/// fails with 401 on that node at once and on the other within [`PROPAGATION`].
async fn change_refuses_rescoping(on: usize, method: Method, path: fn(&Cloud) -> String) {
    let c = cloud().await;
    let unscoped = c.warm_rescoping().await;
    let node = [&c.a, &c.b][on];
    c.act(node, method, &path(&c), &node.admin_token, None)
        .await;
    let (s, body) = c.rescope(node, &unscoped).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    tokio::time::sleep(PROPAGATION).await;
    for (name, n) in [("a", &c.a), ("b", &c.b)] {
        let (s, body) = c.rescope(n, &unscoped).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "node {name} still rescopes a second after the change: {body}"
        );
    }
}

#[tokio::test]
async fn rescoping_sees_a_removed_grant_on_every_node() {
    change_refuses_rescoping(1, Method::DELETE, |c| {
        format!(
            "/v3/projects/{}/users/{}/roles/{}",
            c.project, c.user, c.member_role
        )
    })
    .await;
}

#[tokio::test]
async fn rescoping_sees_a_disabled_project_on_every_node() {
    let c = cloud().await;
    let unscoped = c.warm_rescoping().await;
    c.act(
        &c.a,
        Method::PATCH,
        &format!("/v3/projects/{}", c.project),
        &c.a.admin_token,
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(c.rescope(&c.a, &unscoped).await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        assert_eq!(c.rescope(node, &unscoped).await.0, StatusCode::UNAUTHORIZED);
    }
}

/// A new grant shows in the roles of tokens rescoped on every node within a second.
#[tokio::test]
async fn rescoping_sees_a_new_grant_on_every_node() {
    let c = cloud().await;
    let unscoped = c.warm_rescoping().await;
    c.grant_new_role(&c.b, "auditor").await;
    tokio::time::sleep(PROPAGATION).await;
    for node in [&c.a, &c.b] {
        let (s, body) = c.rescope(node, &unscoped).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert!(role_names(&body).contains(&"auditor"), "{body}");
    }
}

/// Token times are whole seconds, so a token issued in the same second as a revocation
/// that names its user must neither be caught by that revocation (it came after) nor
/// escape a revocation made after it (it came before). Each round issues tokens right
/// after the previous round's revocation and revokes them again at once. The node's view
/// of recent revocation events must also be refreshed by each revocation, not kept from
/// the logins before it.
#[tokio::test]
async fn a_token_issued_right_after_a_revocation_is_valid() {
    let c = cloud().await;
    for _ in 0..3 {
        let unscoped = c.warm_rescoping().await;
        let (s, _) =
            c.a.call(
                Method::DELETE,
                &format!("/v3/users/{}/tokens", c.user),
                Some(&c.a.admin_token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            c.a.validate(&unscoped).await,
            StatusCode::NOT_FOUND,
            "a token issued before the revocation escaped it"
        );
        let (fresh, _) =
            c.a.token(password_auth_by_id(
                &c.user,
                USER_PASSWORD,
                Some(project_scope(&c.project)),
            ))
            .await;
        assert_eq!(
            c.a.validate(&fresh).await,
            StatusCode::OK,
            "a token issued after the revocation was caught by it"
        );
    }
}
