//! Credentials and EC2 credentials: encrypted at rest, owner-scoped, and readable across
//! key rotation.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn stored_blobs(s: &TestServer) -> Vec<(String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    let rows = sqlx::query("SELECT encrypted_blob, key_hash FROM credentials")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

#[tokio::test]
async fn credentials_are_encrypted_owned_and_survive_rotation() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "cp", "domain_id": "default"}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "cu", "password": "pw-123456"}),
        )
        .await;
    let member = s.role_id("member").await;
    s.put(
        &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
        t,
    )
    .await;
    let (ut, _) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&p))),
        ))
        .await;

    let blob = r#"{"access": "AKIA-secret-looking", "secret": "very-secret-value"}"#;
    let (st, v) = s.post("/v3/credentials", &ut, json!({"credential": {"user_id": id(&u), "project_id": id(&p), "type": "ec2", "blob": blob}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let c = &v["credential"];
    assert_eq!(c["blob"], json!(blob));
    assert_eq!(
        c["id"].as_str().unwrap().len(),
        64,
        "ec2 ids are sha256(access)"
    );
    // Not in clear in the store.
    let stored = stored_blobs(&s).await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].0.contains("very-secret-value"));
    assert_eq!(stored[0].1.len(), 40);
    // Somebody else's credential: not theirs to make or see.
    let (st, _) = s
        .post(
            "/v3/credentials",
            &ut,
            json!({"credential": {"user_id": "someone-else", "type": "cert", "blob": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, admins) = s.get("/v3/users?name=admin", t).await;
    let admin_id = admins["users"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .post(
            "/v3/credentials",
            t,
            json!({"credential": {"user_id": admin_id, "type": "cert", "blob": "pem"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, listed) = s.get("/v3/credentials", &ut).await;
    let mine = listed["credentials"].as_array().unwrap();
    assert_eq!(
        mine.len(),
        1,
        "the admin's credential is not listed for the user"
    );
    assert_eq!(mine[0]["user_id"], json!(id(&u)));
    // Validation.
    let (st, _) = s
        .post(
            "/v3/credentials",
            t,
            json!({"credential": {"user_id": id(&u), "type": "ec2", "blob": blob}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "ec2 needs a project");
    let (st, _) = s.post("/v3/credentials", t, json!({"credential": {"user_id": id(&u), "project_id": id(&p), "type": "ec2", "blob": "not json"}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .patch(
            &format!("/v3/credentials/{}", id(c)),
            t,
            json!({"credential": {"type": "cert"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "type is fixed");

    // Rotation re-encrypts with the new primary; blobs stay readable.
    let before = stored_blobs(&s).await;
    s.limen(&["keys", "credential", "rotate"]);
    let after = stored_blobs(&s).await;
    assert_eq!(after.len(), 2);
    for (old, new) in before.iter().zip(after.iter()) {
        assert_ne!(old.1, new.1, "re-encrypted under the new primary key");
    }
    s.limen(&["keys", "credential", "rotate"]);
    s.limen(&["keys", "credential", "rotate"]);
    let (st, v) = s.get(&format!("/v3/credentials/{}", id(c)), &ut).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["credential"]["blob"], json!(blob));

    // Update the blob, then delete.
    let (st, v) = s
        .patch(
            &format!("/v3/credentials/{}", id(c)),
            &ut,
            json!({"credential": {"blob": r#"{"access": "new", "secret": "s2"}"#}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["credential"]["id"], c["id"]);
    assert_eq!(
        s.delete(&format!("/v3/credentials/{}", id(c)), &ut).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v3/credentials/{}", id(c)), &ut).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ec2_credentials_api() {
    let s = TestServer::start().await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "ep", "domain_id": "default"}),
        )
        .await;
    let (user_id, ut) = s.new_member("eu", &id(&p)).await;
    let base = format!("/v3/users/{user_id}/credentials/OS-EC2");
    let (st, v) = s.post(&base, &ut, json!({"tenant_id": id(&p)})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let c = &v["credential"];
    assert_eq!(c["tenant_id"], json!(id(&p)));
    assert_eq!(c["user_id"], json!(user_id));
    let access = c["access"].as_str().unwrap().to_string();
    assert!(!c["secret"].as_str().unwrap().is_empty());
    let (_, v) = s.get(&format!("{base}/{access}"), &ut).await;
    assert_eq!(v["credential"]["secret"], c["secret"]);
    let (_, v) = s.get(&base, &ut).await;
    assert_eq!(v["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.post(&base, &ut, json!({"tenant_id": "nope"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete(&format!("{base}/{access}"), &ut).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("{base}/{access}"), &ut).await.0,
        StatusCode::NOT_FOUND
    );
}
