//! Trusts: delegation rules, trust-scoped tokens with and without impersonation, use
//! limits, expiry and deletion.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

struct Setup {
    project: String,
    trustor: String,
    trustor_token: String,
    trustee: String,
    trustee_token: String,
}

async fn setup(s: &TestServer) -> Setup {
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "tp", "domain_id": "default"}),
        )
        .await;
    let trustor = s
        .create(
            "users",
            "user",
            json!({"name": "trustor", "password": "pw-123456"}),
        )
        .await;
    let trustee = s
        .create(
            "users",
            "user",
            json!({"name": "trustee", "password": "pw-123456"}),
        )
        .await;
    let member = s.role_id("member").await;
    s.put(
        &format!(
            "/v3/projects/{}/users/{}/roles/{member}",
            id(&p),
            id(&trustor)
        ),
        &s.admin_token,
    )
    .await;
    let (trustor_token, _) = s
        .token(password_auth_by_id(
            &id(&trustor),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;
    let (trustee_token, _) = s
        .token(password_auth_by_id(&id(&trustee), "pw-123456", None))
        .await;
    Setup {
        project: id(&p),
        trustor: id(&trustor),
        trustor_token,
        trustee: id(&trustee),
        trustee_token,
    }
}

fn trust_body(x: &Setup, extra: Value) -> Value {
    let mut t = json!({"trustor_user_id": x.trustor, "trustee_user_id": x.trustee, "project_id": x.project, "impersonation": false, "roles": [{"name": "member"}]});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    json!({"trust": t})
}

fn trust_scope(trust_id: &str) -> Value {
    json!({"OS-TRUST:trust": {"id": trust_id}})
}

#[tokio::test]
async fn delegation_and_trust_tokens() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    // Only the trustor creates, and only with roles it holds.
    assert_eq!(
        s.post(
            "/v3/OS-TRUST/trusts",
            &s.admin_token,
            trust_body(&x, json!({}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"roles": [{"name": "admin"}]}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"trustee_user_id": "nobody"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"expires_at": "bad.123Z"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"remaining_uses": 0}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );

    let (st, v) = s
        .post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = &v["trust"];
    assert_eq!(t["expires_at"], json!("2099-01-01T00:00:00.000000Z"));
    assert_eq!(t["roles"][0]["name"], json!("member"));
    let tid = id(t);
    // The trustee gets a token acting as itself, with the delegated roles.
    let (tok, b) = s
        .token(token_auth(&x.trustee_token, Some(trust_scope(&tid))))
        .await;
    let tb = &b["token"];
    assert_eq!(tb["user"]["id"], json!(x.trustee));
    assert_eq!(tb["project"]["id"], json!(x.project));
    assert_eq!(tb["OS-TRUST:trust"]["id"], json!(tid));
    assert_eq!(tb["OS-TRUST:trust"]["trustor_user"]["id"], json!(x.trustor));
    let mut roles: Vec<&str> = tb["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, vec!["member", "reader"], "implied roles come along");
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    // Somebody else cannot use it; a trust token cannot be exchanged again.
    let (st, _, _) = s
        .authenticate(token_auth(&x.trustor_token, Some(trust_scope(&tid))))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, v) = s.authenticate(token_auth(&tok, None)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        v["error"]["message"],
        "You are not authorized to perform the requested action: Using trust-scoped token to \
         create another token. Create a new trust-scoped token instead."
    );
    // Listing by trustor and trustee; roles of the trust.
    let (_, l) = s
        .get(
            &format!("/v3/OS-TRUST/trusts?trustor_user_id={}", x.trustor),
            &x.trustor_token,
        )
        .await;
    assert_eq!(l["trusts"].as_array().unwrap().len(), 1);
    let (st, _) = s
        .get(
            &format!("/v3/OS-TRUST/trusts?trustor_user_id={}", x.trustor),
            &x.trustee_token,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The trustor's application credential cannot read or remove its trusts: a
    // delegation does not reach the trust chain.
    let (_, ac_token) = s
        .application_credential_token(&x.trustor, &x.trustor_token, "robot")
        .await;
    for path in [
        format!("/v3/OS-TRUST/trusts?trustor_user_id={}", x.trustor),
        format!("/v3/OS-TRUST/trusts/{tid}"),
        format!("/v3/OS-TRUST/trusts/{tid}/roles"),
    ] {
        let (st, v) = s.get(&path, &ac_token).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    assert_eq!(
        s.delete(&format!("/v3/OS-TRUST/trusts/{tid}"), &ac_token)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let member = s.role_id("member").await;
    assert_eq!(
        s.get(
            &format!("/v3/OS-TRUST/trusts/{tid}/roles/{member}"),
            &x.trustor_token
        )
        .await
        .0,
        StatusCode::OK
    );
    let admin = s.role_id("admin").await;
    assert_eq!(
        s.get(
            &format!("/v3/OS-TRUST/trusts/{tid}/roles/{admin}"),
            &x.trustor_token
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // The trustor losing the role ends the trust's tokens.
    s.delete(
        &format!(
            "/v3/projects/{}/users/{}/roles/{member}",
            x.project, x.trustor
        ),
        &s.admin_token,
    )
    .await;
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    s.put(
        &format!(
            "/v3/projects/{}/users/{}/roles/{member}",
            x.project, x.trustor
        ),
        &s.admin_token,
    )
    .await;
    // Deleting the trust ends them for good.
    let (trustor_token, _) = s
        .token(password_auth_by_id(
            &x.trustor,
            "pw-123456",
            Some(project_scope(&x.project)),
        ))
        .await;
    assert_eq!(
        s.delete(&format!("/v3/OS-TRUST/trusts/{tid}"), &trustor_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/v3/OS-TRUST/trusts/{tid}"), &trustor_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn impersonation_and_use_limits() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let (_, v) = s
        .post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"impersonation": true, "remaining_uses": 2})),
        )
        .await;
    let tid = id(&v["trust"]);
    let (tok, b) = s
        .token(token_auth(&x.trustee_token, Some(trust_scope(&tid))))
        .await;
    assert_eq!(
        b["token"]["user"]["id"],
        json!(x.trustor),
        "impersonation acts as the trustor"
    );
    assert_eq!(b["token"]["OS-TRUST:trust"]["impersonation"], json!(true));
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    let (_, v) = s
        .get(&format!("/v3/OS-TRUST/trusts/{tid}"), &x.trustor_token)
        .await;
    assert_eq!(v["trust"]["remaining_uses"], json!(1));
    // The trustee may also use a password login for the trust scope.
    let body = password_auth_by_id(&x.trustee, "pw-123456", Some(trust_scope(&tid)));
    assert_eq!(s.authenticate(body.clone()).await.0, StatusCode::CREATED);
    // Used up: gone.
    assert_ne!(s.authenticate(body).await.0, StatusCode::CREATED);
    assert_eq!(
        s.get(&format!("/v3/OS-TRUST/trusts/{tid}"), &x.trustor_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn concurrent_uses_never_exceed_the_limit() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let (_, v) = s
        .post(
            "/v3/OS-TRUST/trusts",
            &x.trustor_token,
            trust_body(&x, json!({"remaining_uses": 3})),
        )
        .await;
    let tid = id(&v["trust"]);
    let mut handles = Vec::new();
    for _ in 0..10 {
        let http = s.http.clone();
        let url = s.url("/v3/auth/tokens");
        let body = token_auth(&x.trustee_token, Some(trust_scope(&tid)));
        handles.push(tokio::spawn(async move {
            http.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    let mut issued = 0;
    for h in handles {
        if h.await.unwrap() == StatusCode::CREATED {
            issued += 1;
        }
    }
    assert_eq!(issued, 3, "exactly remaining_uses tokens");
}

/// A server on which trusts may allow redelegation.
async fn redelegating_server() -> TestServer {
    TestServer::start_with(&format!(
        "{DEFAULT_CONFIG}\n[trust]\nallow_redelegation = true\n"
    ))
    .await
}

/// A user with a password and an unscoped token.
async fn new_user(s: &TestServer, name: &str) -> (String, String) {
    let u = s
        .create(
            "users",
            "user",
            json!({"name": name, "password": "pw-123456"}),
        )
        .await;
    let (token, _) = s
        .token(password_auth_by_id(&id(&u), "pw-123456", None))
        .await;
    (id(&u), token)
}

/// `holder_token` (the trustee of `parent`, or the trustor when `parent` is None) creates
/// an impersonating, redelegatable trust of the trustor's to `trustee`; returns its id.
async fn chain_link(
    s: &TestServer,
    x: &Setup,
    holder_token: &str,
    parent: Option<&str>,
    trustee: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let acting = match parent {
        Some(p) => {
            s.token(token_auth(holder_token, Some(trust_scope(p))))
                .await
                .0
        }
        None => holder_token.to_string(),
    };
    let mut body = trust_body(
        x,
        json!({"trustee_user_id": trustee, "impersonation": true, "allow_redelegation": true}),
    );
    for (k, v) in extra.as_object().unwrap() {
        body["trust"][k] = v.clone();
    }
    s.post("/v3/OS-TRUST/trusts", &acting, body).await
}

/// A (the trustor) trusts B, B redelegates to C, C to D: the ids of the three trusts,
/// and C's and D's unscoped tokens.
async fn three_link_chain(s: &TestServer, x: &Setup) -> ([String; 3], String, String) {
    let (b, b_token) = (x.trustee.clone(), x.trustee_token.clone());
    let (c, c_token) = new_user(s, "trustee-c").await;
    let (d, d_token) = new_user(s, "trustee-d").await;
    let (st, v) = chain_link(s, x, &x.trustor_token, None, &b, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let first = id(&v["trust"]);
    let (st, v) = chain_link(s, x, &b_token, Some(&first), &c, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = id(&v["trust"]);
    assert_eq!(v["trust"]["redelegated_trust_id"], json!(first));
    let (st, v) = chain_link(s, x, &c_token, Some(&second), &d, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let third = id(&v["trust"]);
    ([first, second, third], c_token, d_token)
}

#[tokio::test]
async fn deleting_a_trust_ends_its_whole_redelegation_chain() {
    let s = redelegating_server().await;
    let x = setup(&s).await;
    let ([first, second, third], _, d_token) = three_link_chain(&s, &x).await;
    // D acts as the trustor on the trustor's project, through three links.
    let (tok, b) = s
        .token(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_eq!(b["token"]["user"]["id"], json!(x.trustor));
    assert_eq!(b["token"]["project"]["id"], json!(x.project));
    // Validated twice: the second answer may come from the validation cache.
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    assert_eq!(s.validate(&tok).await, StatusCode::OK);

    assert_eq!(
        s.delete(&format!("/v3/OS-TRUST/trusts/{first}"), &x.trustor_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // Every trust below the deleted one is gone, and so is what it issued.
    for t in [&first, &second, &third] {
        let (st, v) = s
            .get(&format!("/v3/OS-TRUST/trusts/{t}"), &x.trustor_token)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{t}: {v}");
    }
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    let (st, _, v) = s
        .authenticate(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_ne!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        s.stored_strings(&format!(
            "SELECT id FROM trusts WHERE id IN ('{first}', '{second}', '{third}')"
        ))
        .await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_redelegated_trust_is_usable_only_while_its_whole_chain_is() {
    let s = redelegating_server().await;
    let x = setup(&s).await;
    let ([first, _, third], _, d_token) = three_link_chain(&s, &x).await;
    let (tok, _) = s
        .token(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    // The user who redelegated the first trust is disabled: the chain below ends (as in
    // Keystone, every agent of the chain must be enabled), cached validations included.
    let (st, v) = s
        .patch(
            &format!("/v3/users/{}", x.trustee),
            &s.admin_token,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    let (st, _, _) = s
        .authenticate(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_ne!(st, StatusCode::CREATED);
    s.patch(
        &format!("/v3/users/{}", x.trustee),
        &s.admin_token,
        json!({"user": {"enabled": true}}),
    )
    .await;
    let (tok, _) = s
        .token(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_eq!(s.validate(&tok).await, StatusCode::OK);
    // Deleting that user removes the first trust (its trustee is gone) but not the
    // trusts redelegated below it: they must not keep acting as the trustor.
    let (st, v) = s
        .delete(&format!("/v3/users/{}", x.trustee), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = s
        .get(&format!("/v3/OS-TRUST/trusts/{first}"), &x.trustor_token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(s.validate(&tok).await, StatusCode::NOT_FOUND);
    let (st, _, v) = s
        .authenticate(token_auth(&d_token, Some(trust_scope(&third))))
        .await;
    assert_ne!(st, StatusCode::CREATED, "{v}");
}

/// Runs `sql` on the server's database (to stage what an older release could store).
async fn store_exec(s: &TestServer, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&s.database_url)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut db).await.unwrap();
}

#[tokio::test]
async fn a_redelegated_trust_never_outspends_its_parent() {
    let s = redelegating_server().await;
    let x = setup(&s).await;
    let (c, c_token) = new_user(&s, "trustee-c").await;
    // As in Keystone: a trust that may be redelegated has no use limit...
    let (st, v) = chain_link(
        &s,
        &x,
        &x.trustor_token,
        None,
        &x.trustee,
        json!({"remaining_uses": 2}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // ...(one that may not be, may)...
    let (st, v) = chain_link(
        &s,
        &x,
        &x.trustor_token,
        None,
        &x.trustee,
        json!({"remaining_uses": 2, "allow_redelegation": false}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // ...and neither has a trust redelegated from it.
    let (st, v) = chain_link(&s, &x, &x.trustor_token, None, &x.trustee, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let first = id(&v["trust"]);
    for uses in [1, 2, 100] {
        let (st, v) = chain_link(
            &s,
            &x,
            &x.trustee_token,
            Some(&first),
            &c,
            json!({"remaining_uses": uses}),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{uses}: {v}");
    }
    let (st, v) = chain_link(&s, &x, &x.trustee_token, Some(&first), &c, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = id(&v["trust"]);

    // A parent limited to 2 uses while redelegated (as an older release could store it):
    // every use of the child takes one of the parent's, so the chain stops after 2.
    let (b_acting, _) = s
        .token(token_auth(&x.trustee_token, Some(trust_scope(&first))))
        .await;
    store_exec(
        &s,
        &format!("UPDATE trusts SET remaining_uses = 2 WHERE id = '{first}'"),
    )
    .await;
    let (st, v) = chain_link(&s, &x, &b_acting, None, &c, json!({})).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a limited trust is not redelegated: {v}"
    );
    let mut issued = 0;
    for _ in 0..4 {
        let (st, _, _) = s
            .authenticate(token_auth(&c_token, Some(trust_scope(&second))))
            .await;
        if st == StatusCode::CREATED {
            issued += 1;
        }
    }
    assert_eq!(issued, 2, "the child used no more than the parent allowed");
    let (st, _) = s
        .get(&format!("/v3/OS-TRUST/trusts/{first}"), &x.trustor_token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "the used-up parent is gone");
}
