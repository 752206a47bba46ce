//! OS-EP-FILTER: endpoint groups and the endpoints and groups projects see.

use crate::authz::authorize_caller as allow;
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, drop_same_id, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use axum::Json;
use axum::Router;
use limen_proto::input;
use limen_proto::render::{self, Links};
use serde_json::{json, Value};

fn group_doc(l: &Links, g: &limen_core::catalog::endpoint_filter::EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
        "links": l.self_link(&format!("OS-EP-FILTER/endpoint_groups/{}", g.id)),
    })
}

pub async fn create_endpoint_group(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_endpoint_group")?;
    let g = input::endpoint_group(body, true)?;
    let g = s
        .limen
        .catalog()
        .create_endpoint_group(
            &proof,
            g.name.unwrap_or_default(),
            g.description.flatten(),
            g.filters.unwrap_or_default(),
        )
        .await?;
    Ok(created(json!({"endpoint_group": group_doc(&l, &g)})))
}

pub async fn list_endpoint_groups(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_endpoint_groups")?;
    let items = s
        .limen
        .catalog()
        .list_endpoint_groups(q.get("name"))
        .await?
        .iter()
        .map(|g| group_doc(&l, g))
        .collect();
    paged(
        &s,
        &l,
        "endpoint_groups",
        "OS-EP-FILTER/endpoint_groups",
        &q,
        items,
    )
}

pub async fn get_endpoint_group(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_endpoint_group")?;
    Ok(Json(
        json!({"endpoint_group": group_doc(&l, &s.limen.catalog().get_endpoint_group(&id).await?)}),
    ))
}

pub async fn update_endpoint_group(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_endpoint_group")?;
    drop_same_id(&mut body, "endpoint_group", &id);
    let g = input::endpoint_group(body, false)?;
    let g = s
        .limen
        .catalog()
        .update_endpoint_group(&proof, &id, g.name, g.description, g.filters)
        .await?;
    Ok(Json(json!({"endpoint_group": group_doc(&l, &g)})))
}

pub async fn delete_endpoint_group(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_endpoint_group")?;
    s.limen.catalog().delete_endpoint_group(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn endpoint_group_endpoints(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:list_endpoints_associated_with_endpoint_group",
    )?;
    let items = s
        .limen
        .catalog()
        .endpoints_in_group(&id)
        .await?
        .iter()
        .map(|e| render::endpoint(&l, e))
        .collect();
    paged(
        &s,
        &l,
        "endpoints",
        &format!("OS-EP-FILTER/endpoint_groups/{id}/endpoints"),
        &q,
        items,
    )
}

pub async fn endpoint_group_projects(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(
        &s,
        &auth,
        "identity:list_projects_associated_with_endpoint_group",
    )?;
    let items = s
        .limen
        .catalog()
        .projects_of_endpoint_group(&id)
        .await?
        .iter()
        .map(|p| render::project(&l, p))
        .collect();
    paged(
        &s,
        &l,
        "projects",
        &format!("OS-EP-FILTER/endpoint_groups/{id}/projects"),
        &q,
        items,
    )
}

pub async fn put_group_project(
    State(s): State<AppState>,
    auth: Auth,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:add_endpoint_group_to_project")?;
    s.limen
        .catalog()
        .add_endpoint_group_to_project(&proof, &g, &p)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_group_project(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_endpoint_group_in_project")?;
    s.limen
        .catalog()
        .check_endpoint_group_in_project(&g, &p)
        .await?;
    Ok(Json(json!({"project_endpoint_group": {
        "endpoint_group_id": g,
        "project_id": p,
        "links": l.self_link(&format!("OS-EP-FILTER/endpoint_groups/{g}/projects/{p}")),
    }})))
}

pub async fn delete_group_project(
    State(s): State<AppState>,
    auth: Auth,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:remove_endpoint_group_from_project")?;
    s.limen
        .catalog()
        .remove_endpoint_group_from_project(&proof, &g, &p)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn project_endpoint_groups(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(p): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_endpoint_groups_for_project")?;
    let items = s
        .limen
        .catalog()
        .endpoint_groups_of_project(&p)
        .await?
        .iter()
        .map(|g| group_doc(&l, g))
        .collect();
    paged(
        &s,
        &l,
        "endpoint_groups",
        &format!("OS-EP-FILTER/projects/{p}/endpoint_groups"),
        &q,
        items,
    )
}

pub async fn put_project_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:add_endpoint_to_project")?;
    s.limen
        .catalog()
        .add_endpoint_to_project(&proof, &p, &e)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_project_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    allow(&s, &auth, "identity:check_endpoint_in_project")?;
    s.limen.catalog().check_endpoint_in_project(&p, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_project_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:remove_endpoint_from_project")?;
    s.limen
        .catalog()
        .remove_endpoint_from_project(&proof, &p, &e)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn project_endpoints(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(p): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_endpoints_for_project")?;
    let items = s
        .limen
        .catalog()
        .endpoints_for_project(&p)
        .await?
        .iter()
        .map(|e| render::endpoint(&l, e))
        .collect();
    paged(
        &s,
        &l,
        "endpoints",
        &format!("OS-EP-FILTER/projects/{p}/endpoints"),
        &q,
        items,
    )
}

pub async fn endpoint_projects(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(e): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_projects_for_endpoint")?;
    let items = s
        .limen
        .catalog()
        .projects_of_endpoint(&e)
        .await?
        .iter()
        .map(|p| render::project(&l, p))
        .collect();
    paged(
        &s,
        &l,
        "projects",
        &format!("OS-EP-FILTER/endpoints/{e}/projects"),
        &q,
        items,
    )
}

/// The routes this module serves.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups",
            get(list_endpoint_groups).post(create_endpoint_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}",
            get(get_endpoint_group)
                .patch(update_endpoint_group)
                .delete(delete_endpoint_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints",
            get(endpoint_group_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects",
            get(endpoint_group_projects),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}",
            put(put_group_project)
                .get(get_group_project)
                .delete(delete_group_project),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups",
            get(project_endpoint_groups),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints",
            get(project_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}",
            put(put_project_endpoint)
                .get(check_project_endpoint)
                .delete(delete_project_endpoint),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects",
            get(endpoint_projects),
        )
}
