//! Keystone's smaller APIs: legacy policies (with `OS-ENDPOINT-POLICY`), OAuth1 consumers,
//! endpoint filtering (`OS-EP-FILTER`), domain configuration and unified limits.

use crate::authz::{authorize, enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::{created, drop_same_id, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::limits::{Limit, LimitFilter, RegisteredLimit};
use limen_core::policyblob::PolicyAssociation;
use limen_proto::input;
use limen_proto::render::{self, Links};
use serde_json::{json, Map, Value};

/// The policy check on an empty target (these APIs' rules look at the caller only).
fn allow(s: &AppState, auth: &Auth, action: &str) -> ApiResult<Authorized> {
    authorize(s, auth, action, target(json!({}), &[]))
}

fn with_links(l: &Links, path: &str, mut v: Map<String, Value>) -> Value {
    v.insert("links".into(), l.self_link(path));
    Value::Object(v)
}

// ---- /v3/policies ----

fn policy_doc(l: &Links, p: &limen_core::policyblob::PolicyBlob) -> Value {
    let mut m = p.extra.clone();
    m.insert("id".into(), json!(p.id));
    m.insert("blob".into(), json!(p.blob));
    m.insert("type".into(), json!(p.policy_type));
    with_links(l, &format!("policies/{}", p.id), m)
}

pub async fn create_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_policy")?;
    let (blob, t, extra) = input::policy_create(body)?;
    let p = s.limen.create_policy(&proof, blob, t, extra).await?;
    Ok(created(json!({"policy": policy_doc(&l, &p)})))
}

pub async fn list_policies(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_policies")?;
    let items = s
        .limen
        .list_policies(q.get("type"))
        .await?
        .iter()
        .map(|p| policy_doc(&l, p))
        .collect();
    paged(&s, &l, "policies", "policies", &q, items)
}

pub async fn get_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_policy")?;
    Ok(Json(
        json!({"policy": policy_doc(&l, &s.limen.get_policy(&id).await?)}),
    ))
}

pub async fn update_policy(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_policy")?;
    drop_same_id(&mut body, "policy", &id);
    let p = s
        .limen
        .update_policy(&proof, &id, input::policy_update(body)?)
        .await?;
    Ok(Json(json!({"policy": policy_doc(&l, &p)})))
}

pub async fn delete_policy(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_policy")?;
    s.limen.delete_policy(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which `OS-ENDPOINT-POLICY` association a route addresses.
#[derive(Clone, Copy)]
pub enum AssociationKind {
    Endpoint,
    Service,
    RegionAndService,
}

fn association(kind: AssociationKind, p: &[String]) -> ApiResult<PolicyAssociation> {
    let get = |i: usize| {
        p.get(i)
            .cloned()
            .ok_or_else(|| ApiError::not_found("Not Found"))
    };
    Ok(match kind {
        AssociationKind::Endpoint => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: Some(get(1)?),
            service_id: None,
            region_id: None,
        },
        AssociationKind::Service => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: None,
            service_id: Some(get(1)?),
            region_id: None,
        },
        AssociationKind::RegionAndService => PolicyAssociation {
            policy_id: get(0)?,
            endpoint_id: None,
            service_id: Some(get(1)?),
            region_id: Some(get(2)?),
        },
    })
}

fn association_action(kind: AssociationKind, verb: &str) -> String {
    let what = match kind {
        AssociationKind::Endpoint => "endpoint",
        AssociationKind::Service => "service",
        AssociationKind::RegionAndService => "region_and_service",
    };
    format!("identity:{verb}_policy_association_for_{what}")
}

pub async fn put_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, &association_action(kind, "create"))?;
    s.limen
        .create_policy_association(&proof, association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    allow(&s, &auth, &association_action(kind, "check"))?;
    s.limen
        .check_policy_association(&association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_association(
    kind: AssociationKind,
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, &association_action(kind, "delete"))?;
    s.limen
        .delete_policy_association(&proof, &association(kind, &p)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn policy_endpoints(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_endpoints_for_policy")?;
    let items = s
        .limen
        .endpoints_for_policy(&id)
        .await?
        .iter()
        .map(|e| render::endpoint(&l, e))
        .collect();
    paged(
        &s,
        &l,
        "endpoints",
        &format!("policies/{id}/OS-ENDPOINT-POLICY/endpoints"),
        &q,
        items,
    )
}

// ---- OS-OAUTH1 consumers ----

fn consumer_doc(l: &Links, c: &limen_core::oauth1::Consumer, secret: Option<&str>) -> Value {
    let mut m = c.extra.clone();
    m.insert("id".into(), json!(c.id));
    m.insert("description".into(), json!(c.description));
    if let Some(s) = secret {
        m.insert("secret".into(), json!(s));
    }
    with_links(l, &format!("OS-OAUTH1/consumers/{}", c.id), m)
}

pub async fn create_consumer(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_consumer")?;
    let body = if body.is_null() {
        json!({"consumer": {}})
    } else {
        body
    };
    let (description, extra) = input::consumer_create(body)?;
    let (c, secret) = s.limen.create_consumer(&proof, description, extra).await?;
    Ok(created(
        json!({"consumer": consumer_doc(&l, &c, Some(&secret))}),
    ))
}

pub async fn list_consumers(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_consumers")?;
    let items = s
        .limen
        .list_consumers()
        .await?
        .iter()
        .map(|c| consumer_doc(&l, c, None))
        .collect();
    paged(&s, &l, "consumers", "OS-OAUTH1/consumers", &q, items)
}

pub async fn get_consumer(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_consumer")?;
    Ok(Json(
        json!({"consumer": consumer_doc(&l, &s.limen.get_consumer(&id).await?, None)}),
    ))
}

pub async fn update_consumer(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_consumer")?;
    drop_same_id(&mut body, "consumer", &id);
    let (description, extra) = input::consumer_update(body)?;
    let c = s
        .limen
        .update_consumer(&proof, &id, description, extra)
        .await?;
    Ok(Json(json!({"consumer": consumer_doc(&l, &c, None)})))
}

pub async fn delete_consumer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_consumer")?;
    s.limen.delete_consumer(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- OS-EP-FILTER ----

fn group_doc(l: &Links, g: &limen_core::endpoint_filter::EndpointGroup) -> Value {
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
        json!({"endpoint_group": group_doc(&l, &s.limen.get_endpoint_group(&id).await?)}),
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
    s.limen.delete_endpoint_group(&proof, &id).await?;
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
    s.limen.check_endpoint_group_in_project(&g, &p).await?;
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
    s.limen.add_endpoint_to_project(&proof, &p, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_project_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    allow(&s, &auth, "identity:check_endpoint_in_project")?;
    s.limen.check_endpoint_in_project(&p, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_project_endpoint(
    State(s): State<AppState>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:remove_endpoint_from_project")?;
    s.limen.remove_endpoint_from_project(&proof, &p, &e).await?;
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

// ---- domain configuration ----

fn config_parts(p: &[String]) -> (String, Option<String>, Option<String>) {
    (
        p.first().cloned().unwrap_or_default(),
        p.get(1).cloned(),
        p.get(2).cloned(),
    )
}

pub async fn put_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_domain_config")?;
    let (new, config) = s
        .limen
        .put_domain_config(&proof, &id, input::domain_config(body)?)
        .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"config": config}))).into_response())
}

pub async fn get_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    let (id, group, option) = config_parts(&p);
    if group.as_deref() == Some("security_compliance") {
        allow(&s, &auth, "identity:get_security_compliance_domain_config")?;
        return Ok(Json(
            json!({"config": s.limen.security_compliance_config(&id, option.as_deref()).await?}),
        ));
    }
    allow(&s, &auth, "identity:get_domain_config")?;
    let c = s
        .limen
        .get_domain_config(&id, group.as_deref(), option.as_deref())
        .await?;
    Ok(Json(json!({"config": c})))
}

pub async fn update_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_domain_config")?;
    let (id, group, option) = config_parts(&p);
    let c = s
        .limen
        .update_domain_config(
            &proof,
            &id,
            group.as_deref(),
            option.as_deref(),
            input::domain_config(body)?,
        )
        .await?;
    Ok(Json(json!({"config": c})))
}

pub async fn delete_domain_config(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_domain_config")?;
    let (id, group, option) = config_parts(&p);
    s.limen
        .delete_domain_config(&proof, &id, group.as_deref(), option.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn default_domain_config(
    State(s): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_domain_config_default")?;
    Ok(Json(
        json!({"config": s.limen.default_domain_config(None, None)?}),
    ))
}

pub async fn default_domain_config_part(
    State(s): State<AppState>,
    auth: Auth,
    Path(p): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_domain_config_default")?;
    let c = s
        .limen
        .default_domain_config(p.first().map(String::as_str), p.get(1).map(String::as_str))?;
    Ok(Json(json!({"config": c})))
}

// ---- limits ----

fn registered_doc(l: &Links, r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id, "service_id": r.service_id, "region_id": r.region_id,
        "resource_name": r.resource_name, "default_limit": r.default_limit,
        "description": r.description,
        "links": l.self_link(&format!("registered_limits/{}", r.id)),
    })
}

fn limit_doc(l: &Links, x: &Limit) -> Value {
    json!({
        "id": x.id, "project_id": x.project_id, "domain_id": x.domain_id,
        "resource_limit": x.resource_limit, "description": x.description,
        "service_id": x.service_id, "region_id": x.region_id, "resource_name": x.resource_name,
        "links": l.self_link(&format!("limits/{}", x.id)),
    })
}

fn limit_filter(q: &Query) -> LimitFilter {
    let g = |k: &str| q.get(k).map(str::to_string);
    LimitFilter {
        service_id: g("service_id"),
        region_id: g("region_id"),
        resource_name: g("resource_name"),
        project_id: g("project_id"),
        domain_id: g("domain_id"),
    }
}

pub async fn limit_model(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_limit_model")?;
    Ok(Json(json!({"model": {
        "name": "flat",
        "description": "Limit enforcement and validation does not take project hierarchy into consideration.",
    }})))
}

pub async fn create_registered_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_registered_limits")?;
    let out = s
        .limen
        .create_registered_limits(&proof, input::registered_limits(body)?)
        .await?;
    Ok(created(
        json!({"registered_limits": out.iter().map(|r| registered_doc(&l, r)).collect::<Vec<_>>()}),
    ))
}

pub async fn list_registered_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_registered_limits")?;
    let items = s
        .limen
        .list_registered_limits(&limit_filter(&q))
        .await?
        .iter()
        .map(|r| registered_doc(&l, r))
        .collect();
    paged(&s, &l, "registered_limits", "registered_limits", &q, items)
}

pub async fn get_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:get_registered_limit")?;
    Ok(Json(
        json!({"registered_limit": registered_doc(&l, &s.limen.get_registered_limit(&id).await?)}),
    ))
}

pub async fn update_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_registered_limit")?;
    drop_same_id(&mut body, "registered_limit", &id);
    let r = s
        .limen
        .update_registered_limit(&proof, &id, input::registered_limit_update(body)?)
        .await?;
    Ok(Json(json!({"registered_limit": registered_doc(&l, &r)})))
}

pub async fn delete_registered_limit(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_registered_limit")?;
    s.limen.delete_registered_limit(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let proof = allow(&s, &auth, "identity:create_limits")?;
    let out = s.limen.create_limits(&proof, input::limits(body)?).await?;
    Ok(created(
        json!({"limits": out.iter().map(|x| limit_doc(&l, x)).collect::<Vec<_>>()}),
    ))
}

/// Lists limits; a project-scoped caller sees only its project's (Keystone filters the
/// list the same way).
pub async fn list_limits(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    allow(&s, &auth, "identity:list_limits")?;
    let mut f = limit_filter(&q);
    let is_admin = auth.info.role_names().contains(&"admin") || auth.info.is_system();
    if !is_admin {
        match (auth.info.project_id(), auth.info.domain_scope_id()) {
            (Some(p), _) => f.project_id = Some(p.to_string()),
            (_, Some(d)) => f.domain_id = Some(d.to_string()),
            _ => return Ok(Json(l.collection("limits", "limits", vec![]))),
        }
    }
    let items = s
        .limen
        .list_limits(&f)
        .await?
        .iter()
        .map(|x| limit_doc(&l, x))
        .collect();
    paged(&s, &l, "limits", "limits", &q, items)
}

pub async fn get_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let x = s.limen.get_limit(&id).await?;
    let project_domain = match &x.project_id {
        Some(p) => s.limen.get_project(p).await.ok().map(|p| p.domain_id),
        None => None,
    };
    let t = json!({"limit": {
        "id": x.id,
        "project_id": x.project_id,
        "domain": {"id": x.domain_id},
        "project": {"domain_id": project_domain},
    }});
    enforce(&s, &auth.info, "identity:get_limit", target(t, &[]))?;
    Ok(Json(json!({"limit": limit_doc(&l, &x)})))
}

pub async fn update_limit(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let proof = allow(&s, &auth, "identity:update_limit")?;
    drop_same_id(&mut body, "limit", &id);
    let (r, d) = input::limit_update(body)?;
    Ok(Json(
        json!({"limit": limit_doc(&l, &s.limen.update_limit(&proof, &id, r, d).await?)}),
    ))
}

pub async fn delete_limit(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let proof = allow(&s, &auth, "identity:delete_limit")?;
    s.limen.delete_limit(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
