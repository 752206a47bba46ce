//! `/v3/credentials` and `/v3/users/{user_id}/credentials/OS-EC2`.

use crate::authz::{authorize, enforce, refuse_delegated, target, Guarded};
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::policy_credentials;
use limen_core::authz::Authorized;
use limen_core::delegation::credential::Credential;
use limen_policy::Decision;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn cred_target(c: &Credential) -> Value {
    target(
        json!({"credential": {"id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.cred_type}}),
        &[("credential_id", &c.id)],
    )
}

async fn checked(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Credential, Authorized)> {
    // Looked up first, as Keystone builds its policy target from the stored entity.
    let c = s.limen.delegation().get_credential(id).await?;
    let proof = authorize(s, auth, action, cred_target(&c))?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    Ok((c, proof))
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let raw = body.get("credential").cloned().unwrap_or(Value::Null);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_credential",
        target(json!({"credential": raw}), &[]),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    let c = s
        .limen
        .delegation()
        .create_credential(&proof, input::credential_create(body)?)
        .await?;
    Ok(created(json!({"credential": render::credential(&l, &c)})))
}

/// Lists what the caller may see: every credential the policy lets it read, and none to
/// a delegated token.
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    if auth.caller.token.is_delegated() {
        return paged(&s, &l, "credentials", "credentials", &q, vec![]);
    }
    let all = s
        .limen
        .delegation()
        .list_credentials(q.get("user_id"), q.get("type"))
        .await?;
    // The caller's policy credentials once, not once per credential.
    let policy = s.limen.policy();
    let creds = policy_credentials(&auth.caller.token);
    let items = all
        .iter()
        .filter(|c| {
            policy.enforce("identity:list_credentials", &creds, &cred_target(c)) == Decision::Allow
        })
        .map(|c| render::credential(&l, c))
        .collect();
    paged(&s, &l, "credentials", "credentials", &q, items)
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (c, _) = checked(&s, &auth, &id, "identity:get_credential").await?;
    Ok(Json(json!({"credential": render::credential(&l, &c)})))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "credential", &id);
    let (current, _) = checked(&s, &auth, &id, "identity:update_credential").await?;
    let patch = input::credential_update(body)?;
    // The credential as it would be must pass too, so it cannot be handed to someone else.
    let after = Credential {
        user_id: patch.user_id.clone().unwrap_or(current.user_id.clone()),
        project_id: patch
            .project_id
            .clone()
            .unwrap_or(current.project_id.clone()),
        cred_type: patch.cred_type.clone().unwrap_or(current.cred_type.clone()),
        ..current
    };
    let proof = authorize(&s, &auth, "identity:update_credential", cred_target(&after))?;
    let c = s
        .limen
        .delegation()
        .update_credential(&proof, &id, patch)
        .await?;
    Ok(Json(json!({"credential": render::credential(&l, &c)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked(&s, &auth, &id, "identity:delete_credential").await?;
    s.limen.delegation().delete_credential(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- OS-EC2 ----

fn ec2_target(user_id: &str) -> Value {
    target(
        json!({"credential": {"user_id": user_id}}),
        &[("user_id", user_id)],
    )
}

pub async fn ec2_create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = authorize(
        &s,
        &auth,
        "identity:ec2_create_credential",
        ec2_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    let project = body
        .get("tenant_id")
        .or_else(|| body.get("project_id"))
        .and_then(Value::as_str)
        .ok_or_else(|| crate::error::ApiError::bad_request("'tenant_id' is a required property"))?
        .to_string();
    s.limen.identity().get_user(&user_id).await?;
    let c = s
        .limen
        .delegation()
        .create_ec2_credential(&proof, &user_id, &project)
        .await?;
    Ok(created(
        json!({"credential": render::ec2_credential(&l, &c)}),
    ))
}

pub async fn ec2_list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(user_id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:ec2_list_credentials",
        ec2_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    let creds = s.limen.delegation().list_ec2_credentials(&user_id).await?;
    let items: Vec<Value> = creds
        .iter()
        .map(|c| render::ec2_credential(&l, c))
        .collect();
    let _ = q;
    Ok(Json(l.collection(
        "credentials",
        &format!("users/{user_id}/credentials/OS-EC2"),
        items,
    )))
}

pub async fn ec2_get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((user_id, access)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:ec2_get_credential",
        ec2_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    let c = s
        .limen
        .delegation()
        .get_ec2_credential(&user_id, &access)
        .await?;
    Ok(Json(json!({"credential": render::ec2_credential(&l, &c)})))
}

pub async fn ec2_delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((user_id, access)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:ec2_delete_credential",
        ec2_target(&user_id),
    )?;
    refuse_delegated(&auth.caller.token, Guarded::Credentials)?;
    s.limen
        .delegation()
        .delete_ec2_credential(&proof, &user_id, &access)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/credentials", routing::get(list).post(create))
        .route(
            "/v3/credentials/{credential_id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            routing::get(ec2_list).post(ec2_create),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}",
            routing::get(ec2_get).delete(ec2_delete),
        )
}
