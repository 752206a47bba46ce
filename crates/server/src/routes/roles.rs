//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use crate::authz::{authorize, enforce, target};
use crate::error::ApiResult;
use crate::extract::Path;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::{created, filter_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::Role;
use limen_core::store::RoleFilter;
use limen_proto::{input, render};
use serde_json::{json, Value};

fn role_target(r: &Role) -> Value {
    json!({"role": {"id": r.id, "name": r.name, "domain_id": r.domain_id}})
}

/// A role with the policy check done; domain-specific roles use the `*_domain_role` rules.
async fn checked_role(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Role, Authorized)> {
    let r = s.limen.assignment().get_role(id).await?;
    let (t, domain_role) = (role_target(&r), r.domain_id.is_some());
    let action = if domain_role {
        action.replace("_role", "_domain_role")
    } else {
        action.to_string()
    };
    let proof = authorize(s, auth, &action, target(t, &[("role_id", id)]))?;
    Ok((r, proof))
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let domain = q.get("domain_id").map(str::to_string);
    let action = if domain.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    enforce(&s, &auth.caller.token, action, target(json!({}), &[]))?;
    let roles = s
        .limen
        .assignment()
        .list_roles(&RoleFilter {
            name: q.get("name").map(str::to_string),
            domain_id: Some(domain),
        })
        .await?;
    let items = filter_name(roles, &q, |r| &r.name)?
        .iter()
        .map(|r| render::role(&l, r))
        .collect();
    crate::routes::paged(&s, &l, "roles", "roles", &q, items)
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let raw = body.get("role").cloned().unwrap_or(Value::Null);
    let domain_role = raw.get("domain_id").is_some_and(|d| !d.is_null());
    let action = if domain_role {
        "identity:create_domain_role"
    } else {
        "identity:create_role"
    };
    let proof = authorize(&s, &auth, action, target(json!({"role": raw}), &[]))?;
    let r = s
        .limen
        .assignment()
        .create_role(&proof, input::role_create(body)?)
        .await?;
    Ok(created(json!({"role": render::role(&l, &r)})))
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (r, _) = checked_role(&s, &auth, &id, "identity:get_role").await?;
    Ok(Json(json!({"role": render::role(&l, &r)})))
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "role", &id);
    let (r, proof) = checked_role(&s, &auth, &id, "identity:update_role").await?;
    if let Some(m) = body.get_mut("role").and_then(Value::as_object_mut) {
        if m.get("domain_id") == Some(&json!(r.domain_id)) {
            m.remove("domain_id");
        }
    }
    let r = s
        .limen
        .assignment()
        .update_role(&proof, &id, input::role_update(body)?)
        .await?;
    Ok(Json(json!({"role": render::role(&l, &r)})))
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = checked_role(&s, &auth, &id, "identity:delete_role").await?;
    s.limen.assignment().delete_role(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- implied roles ----

fn inference_doc(l: &limen_proto::render::Links, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": {
            "prior_role": render::role_ref(l, prior),
            "implies": render::role_ref(l, implied),
        },
        "links": {"self": l.url(&format!("roles/{}/implies/{}", prior.id, implied.id))},
    })
}

pub async fn list_implied(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(prior): Path<String>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_implied_roles",
        target(json!({}), &[("prior_role_id", &prior)]),
    )?;
    let (p, implied) = s.limen.assignment().list_implied_roles_of(&prior).await?;
    Ok(Json(json!({
        "role_inference": render::implied_role(&l, &p, &implied),
        "links": {"self": l.url(&format!("roles/{prior}/implies"))},
    })))
}

pub async fn create_implied(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Response> {
    let proof = authorize(
        &s,
        &auth,
        "identity:create_implied_role",
        target(
            json!({}),
            &[("prior_role_id", &prior), ("implied_role_id", &implied)],
        ),
    )?;
    let (p, i) = s
        .limen
        .assignment()
        .create_implied_role(&proof, &prior, &implied)
        .await?;
    Ok(created(inference_doc(&l, &p, &i)))
}

pub async fn get_implied(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_implied_role",
        target(
            json!({}),
            &[("prior_role_id", &prior), ("implied_role_id", &implied)],
        ),
    )?;
    let (p, i) = s
        .limen
        .assignment()
        .get_implied_role(&prior, &implied)
        .await?;
    Ok(Json(inference_doc(&l, &p, &i)))
}

pub async fn check_implied(
    State(s): State<AppState>,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:check_implied_role",
        target(
            json!({}),
            &[("prior_role_id", &prior), ("implied_role_id", &implied)],
        ),
    )?;
    s.limen
        .assignment()
        .get_implied_role(&prior, &implied)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_implied(
    State(s): State<AppState>,
    auth: Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_implied_role",
        target(
            json!({}),
            &[("prior_role_id", &prior), ("implied_role_id", &implied)],
        ),
    )?;
    s.limen
        .assignment()
        .delete_implied_role(&proof, &prior, &implied)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn inferences(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_role_inference_rules",
        target(json!({}), &[]),
    )?;
    let rules = s.limen.assignment().list_role_inferences().await?;
    Ok(Json(json!({
        "role_inferences": rules.iter().map(|(p, i)| render::implied_role(&l, p, i)).collect::<Vec<_>>(),
        "links": {"self": l.url("role_inferences")},
    })))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/roles", routing::get(list).post(create))
        .route(
            "/v3/roles/{role_id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/roles/{prior_role_id}/implies",
            routing::get(list_implied),
        )
        .route(
            "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
            routing::put(create_implied)
                .get(get_implied)
                .delete(delete_implied)
                .merge(routing::head(check_implied)),
        )
        .route("/v3/role_inferences", routing::get(inferences))
}
