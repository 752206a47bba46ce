//! `/v3/projects` and project tags.

use crate::authz::{authorize, enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::extract::{Auth, Base, JsonBody, Query};
use crate::routes::{created, filter_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use limen_core::authz::Authorized;
use limen_core::model::{Project, DEFAULT_DOMAIN_ID};
use limen_core::resource::{NewDomain, NewProject};
use limen_core::store::{DomainFilter, ProjectFilter};
use limen_core::token::auth::ResolvedScope;
use limen_proto::render::Links;
use limen_proto::{input, render};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

fn project_target(p: &Project) -> Value {
    json!({"project": {"id": p.id, "name": p.name, "domain_id": p.domain_id, "parent_id": p.parent_id}})
}

fn split_tags(v: Option<&str>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
}

pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    let token_domain = auth.caller.token.domain_scope_id().map(str::to_string);
    let t = match &token_domain {
        Some(d) => json!({"domain_id": d}),
        None => json!({}),
    };
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_projects",
        target(t, &[]),
    )?;
    if q.bool("is_domain")? == Some(true) {
        let domains = s
            .limen
            .resource()
            .list_domains(&DomainFilter {
                name: q.get("name").map(str::to_string),
                enabled: q.bool("enabled")?,
            })
            .await?;
        let items = domains
            .iter()
            .filter(|d| token_domain.as_ref().is_none_or(|t| *t == d.id))
            .map(|d| render::domain_as_project(&l, d))
            .collect();
        return crate::routes::paged(&s, &l, "projects", "projects", &q, items);
    }
    let Some(domain_id) = crate::routes::listed_domain(token_domain.as_deref(), &q) else {
        return crate::routes::paged(&s, &l, "projects", "projects", &q, vec![]);
    };
    let mut filter = ProjectFilter {
        name: q.get("name").map(str::to_string),
        domain_id,
        parent_id: q.get("parent_id").map(str::to_string),
        enabled: q.bool("enabled")?,
        ids: None,
        page: None,
    };
    // A page is cut by the database unless tags or name patterns have to be applied first.
    let in_memory = q
        .pairs
        .iter()
        .any(|(k, _)| k.starts_with("name__") || k.contains("tags"));
    if let (Some(p), false) = (crate::routes::paging(&s, &q)?, in_memory) {
        if let Some(m) = &p.marker {
            let marker = s.limen.resource().find_project(m).await?;
            let listed = marker.is_some_and(|x| {
                filter.domain_id.as_ref().is_none_or(|d| *d == x.domain_id)
                    && filter
                        .parent_id
                        .as_ref()
                        .is_none_or(|pid| x.parent_id == *pid)
            });
            if !listed {
                return Err(crate::routes::marker_not_found(m));
            }
        }
        filter.page = Some(crate::routes::store_page(&p));
        let (projects, truncated) =
            crate::routes::cut_page(s.limen.resource().list_projects(&filter).await?, &p);
        let items = projects.iter().map(|x| render::project(&l, x)).collect();
        return Ok(Json(crate::routes::page_document(
            &l, "projects", "projects", &q, items, p.limit, truncated,
        )));
    }
    let mut projects = s.limen.resource().list_projects(&filter).await?;
    if let Some(all) = split_tags(q.get("tags")) {
        projects.retain(|p| all.iter().all(|t| p.tags.contains(t)));
    }
    if let Some(any) = split_tags(q.get("tags-any")) {
        projects.retain(|p| any.iter().any(|t| p.tags.contains(t)));
    }
    if let Some(all) = split_tags(q.get("not-tags")) {
        projects.retain(|p| !all.iter().all(|t| p.tags.contains(t)));
    }
    if let Some(any) = split_tags(q.get("not-tags-any")) {
        projects.retain(|p| !any.iter().any(|t| p.tags.contains(t)));
    }
    let items = filter_name(projects, &q, |p| &p.name)?
        .iter()
        .map(|p| render::project(&l, p))
        .collect();
    crate::routes::paged(&s, &l, "projects", "projects", &q, items)
}

pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    // Authorized against the body as sent, before any default is filled in.
    let raw = body.get("project").cloned().unwrap_or(Value::Null);
    let proof = authorize(
        &s,
        &auth,
        "identity:create_project",
        target(json!({"project": raw}), &[]),
    )?;
    let p = input::project_create(body)?;
    if p.is_domain {
        // A parent defaults to the domain named, and a domain must be a root.
        if p.domain_id.is_some() || p.parent_id.is_some() {
            return Err(ApiError::bad_request(
                "only root projects are allowed to act as domains.",
            ));
        }
        let d = s
            .limen
            .resource()
            .create_domain(
                &proof,
                NewDomain {
                    id: None,
                    name: p.name,
                    description: p.description,
                    enabled: p.enabled,
                    tags: p.tags,
                    options: p.options,
                    extra: p.extra,
                },
            )
            .await?;
        return Ok(created(
            json!({"project": render::domain_as_project(&l, &d)}),
        ));
    }
    let domain_id = match p.domain_id {
        Some(d) => d,
        None => match &auth.caller.token.scope {
            ResolvedScope::Domain(d) => d.id.clone(),
            _ => DEFAULT_DOMAIN_ID.to_string(),
        },
    };
    let project = s
        .limen
        .resource()
        .create_project(
            &proof,
            NewProject {
                name: p.name,
                domain_id,
                parent_id: p.parent_id,
                description: p.description,
                enabled: p.enabled,
                tags: p.tags,
                options: p.options,
                extra: p.extra,
            },
        )
        .await?;
    Ok(created(json!({"project": render::project(&l, &project)})))
}

/// A project, or a domain shown as a project (`is_domain`), by id.
enum Found {
    Project(Project),
    Domain(limen_core::model::Domain),
}

async fn find(s: &AppState, id: &str) -> ApiResult<Found> {
    match s.limen.resource().get_project(id).await {
        Ok(p) => Ok(Found::Project(p)),
        Err(e) => match s.limen.resource().find_domain(id).await {
            Ok(Some(d)) => Ok(Found::Domain(d)),
            _ => Err(e.into()),
        },
    }
}

pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Json<Value>> {
    let found = find(&s, &id).await?;
    let t = match &found {
        Found::Project(p) => project_target(p),
        Found::Domain(d) => json!({"project": {"id": d.id, "domain_id": null}}),
    };
    enforce(
        &s,
        &auth.caller.token,
        "identity:get_project",
        target(t, &[("project_id", &id)]),
    )?;
    let project = match found {
        Found::Project(p) => p,
        Found::Domain(d) => return Ok(Json(json!({"project": render::domain_as_project(&l, &d)}))),
    };
    let parents_as_ids = q.flag("parents_as_ids")?;
    let parents_as_list = q.flag("parents_as_list")?;
    let subtree_as_ids = q.flag("subtree_as_ids")?;
    let subtree_as_list = q.flag("subtree_as_list")?;
    if parents_as_ids && parents_as_list {
        return Err(ApiError::bad_request(
            "Cannot use parents_as_list and parents_as_ids query params at the same time.",
        ));
    }
    if subtree_as_ids && subtree_as_list {
        return Err(ApiError::bad_request(
            "Cannot use subtree_as_list and subtree_as_ids query params at the same time.",
        ));
    }
    let mut doc = render::project(&l, &project);
    if parents_as_ids || parents_as_list {
        let parents = s.limen.resource().project_ancestors(&project).await?;
        let value = if parents_as_ids {
            // Nested from the nearest parent up to the domain, which ends in null.
            let mut v = json!({project.domain_id.clone(): null});
            for p in parents.iter().rev() {
                let mut m = Map::new();
                m.insert(p.id.clone(), v);
                v = Value::Object(m);
            }
            v
        } else {
            let visible = visible_projects(&s, &auth.caller.token.user.id).await?;
            Value::Array(
                parents
                    .iter()
                    .filter(|p| visible.contains(&p.id))
                    .map(|p| json!({"project": render::project(&l, p)}))
                    .collect(),
            )
        };
        doc["parents"] = value;
    }
    if subtree_as_ids || subtree_as_list {
        let subtree = s.limen.resource().project_subtree(&project.id).await?;
        let value = if subtree_as_ids {
            subtree_ids(&project.id, &subtree)
        } else {
            let visible = visible_projects(&s, &auth.caller.token.user.id).await?;
            Value::Array(
                subtree
                    .iter()
                    .filter(|p| visible.contains(&p.id))
                    .map(|p| json!({"project": render::project(&l, p)}))
                    .collect(),
            )
        };
        doc["subtree"] = value;
    }
    Ok(Json(json!({"project": doc})))
}

/// Projects the user holds a role on (Keystone lists only those in `*_as_list`).
async fn visible_projects(s: &AppState, user_id: &str) -> ApiResult<HashSet<String>> {
    Ok(s.limen
        .assignment()
        .projects_for_user(user_id)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

fn subtree_ids(root: &str, all: &[Project]) -> Value {
    let children: Vec<&Project> = all.iter().filter(|p| p.parent_id == root).collect();
    if children.is_empty() {
        return Value::Null;
    }
    let mut m = Map::new();
    for c in children {
        m.insert(c.id.clone(), subtree_ids(&c.id, all));
    }
    Value::Object(m)
}

pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    crate::routes::drop_same_id(&mut body, "project", &id);
    let found = find(&s, &id).await?;
    let t = match &found {
        Found::Project(p) => project_target(p),
        Found::Domain(d) => json!({"project": {"id": d.id, "domain_id": null}}),
    };
    let proof = authorize(
        &s,
        &auth,
        "identity:update_project",
        target(t, &[("project_id", &id)]),
    )?;
    match found {
        Found::Domain(d) => {
            // A domain edited through the projects API.
            let mut b = body;
            if let Some(p) = b.get_mut("project").and_then(Value::as_object_mut) {
                if p.get("is_domain") == Some(&Value::Bool(true)) {
                    p.remove("is_domain");
                }
                p.remove("domain_id");
                p.remove("parent_id");
            }
            let inner = b.get("project").cloned().unwrap_or(Value::Null);
            let patch = input::domain_update(json!({"domain": inner}))?;
            let d = s
                .limen
                .resource()
                .update_domain(&proof, &d.id, patch)
                .await?;
            Ok(Json(json!({"project": render::domain_as_project(&l, &d)})))
        }
        Found::Project(p) => {
            if let Some(parent) = body.get("project").and_then(|b| b.get("parent_id")) {
                if parent.as_str() != Some(p.parent_id.as_str()) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "Update of `parent_id` is not allowed.",
                    ));
                }
            }
            if let Some(m) = body.get_mut("project").and_then(Value::as_object_mut) {
                m.remove("parent_id");
                if m.get("domain_id").and_then(Value::as_str) == Some(p.domain_id.as_str()) {
                    m.remove("domain_id");
                }
                if m.get("is_domain") == Some(&Value::Bool(false)) {
                    m.remove("is_domain");
                }
            }
            let patch = input::project_update(body)?;
            let updated = s
                .limen
                .resource()
                .update_project(&proof, &id, patch)
                .await?;
            Ok(Json(json!({"project": render::project(&l, &updated)})))
        }
    }
}

pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<StatusCode> {
    let found = find(&s, &id).await?;
    let t = match &found {
        Found::Project(p) => project_target(p),
        Found::Domain(d) => json!({"project": {"id": d.id, "domain_id": null}}),
    };
    let proof = authorize(
        &s,
        &auth,
        "identity:delete_project",
        target(t, &[("project_id", &id)]),
    )?;
    match found {
        Found::Domain(d) => s.limen.resource().delete_domain(&proof, &d.id).await?,
        Found::Project(p) => {
            s.limen
                .resource()
                .delete_project(&proof, &p.id, q.flag("cascade")?)
                .await?
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- tags ----

async fn tagged(
    s: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
) -> ApiResult<(Project, Authorized)> {
    let p = s.limen.resource().get_project(id).await?;
    let t = project_target(&p);
    let proof = authorize(s, auth, action, target(t, &[("project_id", id)]))?;
    Ok((p, proof))
}

fn tags_doc(l: &Links, tags: &[String]) -> Value {
    json!({"tags": tags, "links": {"self": l.base}})
}

pub async fn list_tags(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (p, _) = tagged(&s, &auth, &id, "identity:list_project_tags").await?;
    Ok(Json(tags_doc(&l, &p.tags)))
}

pub async fn replace_tags(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (_, proof) = tagged(&s, &auth, &id, "identity:update_project_tags").await?;
    let Value::Object(mut m) = body else {
        return Err(ApiError::bad_request("'tags' is a required property"));
    };
    let tags = m
        .remove("tags")
        .ok_or_else(|| ApiError::bad_request("'tags' is a required property"))?;
    if let Some(k) = m.keys().next() {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let tags = input::tags(tags)?;
    let p = s
        .limen
        .resource()
        .set_project_tags(&proof, &id, tags)
        .await?;
    Ok(Json(tags_doc(&l, &p.tags)))
}

pub async fn delete_tags(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, proof) = tagged(&s, &auth, &id, "identity:delete_project_tags").await?;
    s.limen
        .resource()
        .set_project_tags(&proof, &id, vec![])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_tag(
    State(s): State<AppState>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, _) = tagged(&s, &auth, &id, "identity:get_project_tag").await?;
    if p.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "Could not find project tag: {tag}."
        )))
    }
}

pub async fn add_tag(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (_, proof) = tagged(&s, &auth, &id, "identity:create_project_tag").await?;
    let tag = input::tag("tag", Value::String(tag))?;
    s.limen
        .resource()
        .add_project_tag(&proof, &id, &tag)
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = l.url(&format!("projects/{id}/tags/{tag}")).parse() {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

pub async fn delete_tag(
    State(s): State<AppState>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, proof) = tagged(&s, &auth, &id, "identity:delete_project_tag").await?;
    s.limen
        .resource()
        .remove_project_tag(&proof, &id, &tag)
        .await
        .map_err(|_| ApiError::not_found(format!("Could not find project tag: {tag}.")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/v3/projects", routing::get(list).post(create))
        .route(
            "/v3/projects/{project_id}",
            routing::get(get).patch(update).delete(delete),
        )
        .route(
            "/v3/projects/{project_id}/tags",
            routing::get(list_tags)
                .put(replace_tags)
                .delete(delete_tags),
        )
        .route(
            "/v3/projects/{project_id}/tags/{tag}",
            routing::get(check_tag).put(add_tag).delete(delete_tag),
        )
}
