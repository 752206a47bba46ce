//! The Identity API v3 routes, one module per resource.

pub mod appcreds;
pub mod assignments;
pub mod auth;
pub mod authorize;
pub mod catalog;
pub mod clusters;
pub mod consumers;
pub mod credentials;
pub mod device;
pub mod discovery;
pub mod domain_configs;
pub mod domains;
pub mod endpoint_filter;
pub mod federation;
pub mod grants;
pub mod groups;
pub mod kubernetes;
pub mod limits;
pub mod login;
pub mod oauth;
pub mod oauth1;
pub mod oauth_clients;
pub mod policies;
pub mod projects;
pub mod revoke;
pub mod roles;
pub mod signed;
pub mod trusts;
pub mod users;

use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::extract::{Auth, Base, Query};
use crate::state::AppState;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use grants::{ActorKind, GrantRoute, TargetKind};
use serde_json::Value;

/// Drops `id` from an update body when it restates the entity's own id (clients such as
/// tempest send whole documents back); a different id is left for the parser to reject.
pub fn drop_same_id(body: &mut Value, wrapper: &str, id: &str) {
    if let Some(m) = body.get_mut(wrapper).and_then(Value::as_object_mut) {
        if m.get("id").and_then(Value::as_str) == Some(id) {
            m.remove("id");
        }
    }
}

/// Keystone's pagination of a request: `?limit` (capped by a configured `list_limit`)
/// and `?marker`; `None` when the whole collection is asked for.
#[derive(Debug, Clone)]
pub struct Paging {
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

pub fn paging(s: &AppState, q: &Query) -> ApiResult<Option<Paging>> {
    let asked = match q.get("limit") {
        None | Some("") => None,
        Some(v) => match v.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(ApiError::bad_request(format!("Invalid limit: {v}"))),
        },
    };
    let limit = match (asked, s.config.identity.list_limit) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    };
    let marker = q
        .get("marker")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    Ok((limit.is_some() || marker.is_some()).then_some(Paging { limit, marker }))
}

/// What to read from the store for a page: entries after the marker, one more than the
/// limit (that one only tells whether the list goes on).
pub fn store_page(p: &Paging) -> limen_core::store::Page {
    limen_core::store::Page {
        after: p.marker.clone(),
        limit: p.limit.map(|n| n + 1),
    }
}

/// Cuts what [`store_page`] read to the page: its entries, and whether more remain.
pub fn cut_page<T>(mut items: Vec<T>, p: &Paging) -> (Vec<T>, bool) {
    let truncated = p.limit.is_some_and(|n| items.len() > n);
    if let Some(n) = p.limit {
        items.truncate(n);
    }
    (items, truncated)
}

pub fn marker_not_found(m: &str) -> ApiError {
    ApiError::not_found(format!("Marker {m} could not be found."))
}

/// A collection response with Keystone's pagination: with `?limit` or `?marker` (or a
/// configured `list_limit`) entries are ordered by id, start after the marker, stop at the
/// limit, and a `next` link plus `"truncated": true` say that more remain.
pub fn paged(
    s: &AppState,
    l: &limen_proto::render::Links,
    key: &str,
    path: &str,
    q: &Query,
    mut items: Vec<Value>,
) -> ApiResult<Json<Value>> {
    let Some(p) = paging(s, q)? else {
        return Ok(Json(l.collection(key, &format!("{path}{}", qs(q)), items)));
    };
    items.sort_by_key(|v| id_of(v).to_string());
    if let Some(m) = &p.marker {
        let Some(pos) = items.iter().position(|v| id_of(v) == m) else {
            return Err(marker_not_found(m));
        };
        items.drain(..=pos);
    }
    let truncated = p.limit.is_some_and(|n| items.len() > n);
    if let Some(n) = p.limit {
        items.truncate(n);
    }
    Ok(Json(page_document(
        l, key, path, q, items, p.limit, truncated,
    )))
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().unwrap_or("")
}

/// One page, already cut, as Keystone renders it: a `next` link and `"truncated": true`
/// when more entries remain.
pub fn page_document(
    l: &limen_proto::render::Links,
    key: &str,
    path: &str,
    q: &Query,
    items: Vec<Value>,
    limit: Option<usize>,
    truncated: bool,
) -> Value {
    let mut doc = l.collection(key, &format!("{path}{}", qs(q)), items);
    if truncated {
        let last = doc[key]
            .as_array()
            .and_then(|a| a.last())
            .map(|v| id_of(v).to_string())
            .unwrap_or_default();
        let mut params: Vec<String> = q
            .pairs
            .iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        params.push(format!("limit={}", limit.unwrap_or_default()));
        params.push(format!("marker={last}"));
        doc["links"]["next"] = Value::String(l.url(&format!("{path}?{}", params.join("&"))));
        doc["truncated"] = Value::Bool(true);
    }
    doc
}

/// The domain a list is narrowed to. A domain-scoped token sees its own domain only, and
/// a `domain_id` query naming another domain matches nothing (Keystone applies both
/// filters). `None`: the answer is empty.
pub fn listed_domain(token_domain: Option<&str>, q: &Query) -> Option<Option<String>> {
    match (token_domain, q.get("domain_id")) {
        (Some(t), Some(d)) if t != d => None,
        (Some(t), _) => Some(Some(t.to_string())),
        (None, d) => Some(d.map(str::to_string)),
    }
}

/// The query string with its `?`, for self links.
pub fn qs(q: &Query) -> String {
    if q.raw.is_empty() {
        String::new()
    } else {
        format!("?{}", q.raw)
    }
}

/// A 201 with a JSON body.
pub fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The domain a list of Limen's per-domain resources (OAuth clients, clusters) means: the
/// one asked for, else a domain-scoped caller's own, else all.
pub fn domain_to_list(auth: &crate::extract::Auth, q: &Query) -> Option<String> {
    q.get("domain_id")
        .map(str::to_string)
        .or_else(|| match &auth.caller.token.scope {
            limen_core::token::auth::ResolvedScope::Domain(d) => Some(d.id.clone()),
            _ => None,
        })
}

/// The domain a new per-domain resource goes in: the one named, else a domain-scoped
/// caller's own, else `default`.
pub fn owning_domain(auth: &crate::extract::Auth, named: Option<String>) -> String {
    named.unwrap_or_else(|| match &auth.caller.token.scope {
        limen_core::token::auth::ResolvedScope::Domain(d) => d.id.clone(),
        _ => limen_core::model::DEFAULT_DOMAIN_ID.to_string(),
    })
}

/// Keystone's name filters beyond exact match: `name__contains`, `__icontains`,
/// `__startswith`, `__istartswith`, `__endswith`, `__iendswith`.
pub fn filter_name<T>(items: Vec<T>, q: &Query, name: impl Fn(&T) -> &str) -> ApiResult<Vec<T>> {
    let mut items = items;
    for (k, v) in &q.pairs {
        let Some(op) = k.strip_prefix("name__") else {
            continue;
        };
        let (ci, op) = match op.strip_prefix('i') {
            Some(rest) if ["contains", "startswith", "endswith"].contains(&rest) => (true, rest),
            _ => (false, op),
        };
        let want = if ci { v.to_lowercase() } else { v.clone() };
        let test = |n: &str| -> bool {
            let n = if ci { n.to_lowercase() } else { n.to_string() };
            match op {
                "contains" => n.contains(&want),
                "startswith" => n.starts_with(&want),
                "endswith" => n.ends_with(&want),
                _ => true,
            }
        };
        if !["contains", "startswith", "endswith"].contains(&op) {
            continue;
        }
        items.retain(|i| test(name(i)));
    }
    Ok(items)
}

/// Routes of Keystone's smaller APIs.
fn extension_routes() -> Router<AppState> {
    policies::routes()
        .merge(consumers::routes())
        .merge(oauth1::routes())
        .merge(endpoint_filter::routes())
        .merge(domain_configs::routes())
        .merge(limits::routes())
}

/// `links` with a `self` link to `path`.
pub(crate) fn with_links(
    l: &limen_proto::render::Links,
    path: &str,
    mut v: serde_json::Map<String, Value>,
) -> Value {
    v.insert("links".into(), l.self_link(path));
    Value::Object(v)
}

fn grant_routes(
    router: Router<AppState>,
    base: &str,
    g: GrantRoute,
    with_list: bool,
) -> Router<AppState> {
    let suffix = if g.inherited {
        "/inherited_to_projects"
    } else {
        ""
    };
    let one = format!("{base}/roles/{{role_id}}{suffix}");
    let router = router.route(
        &one,
        put(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| grants::create(g, s, a, p))
            .get(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| grants::check(g, s, a, p))
            .delete(move |s: State<AppState>, a: Auth, p: Path<Vec<String>>| {
                grants::revoke(g, s, a, p)
            }),
    );
    if !with_list {
        return router;
    }
    let list_path = if g.inherited {
        format!("{base}/roles/inherited_to_projects")
    } else {
        format!("{base}/roles")
    };
    router.route(
        &list_path,
        get(
            move |s: State<AppState>, a: Auth, b: Base, u: OriginalUri, p: Path<Vec<String>>| {
                grants::list(g, s, a, b, u, p)
            },
        ),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new()
        .route(crate::pages::STYLESHEET_PATH, get(crate::pages::stylesheet))
        .merge(extension_routes())
        .merge(discovery::routes())
        .merge(oauth::routes())
        .merge(authorize::routes())
        .merge(login::routes())
        .merge(device::routes())
        .merge(oauth_clients::routes())
        .merge(clusters::routes())
        .merge(kubernetes::routes())
        .merge(auth::routes())
        .merge(signed::routes())
        .merge(federation::routes())
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(appcreds::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(revoke::routes())
        .merge(credentials::routes())
        .merge(trusts::routes());

    use ActorKind::{Group, User};
    use TargetKind::{Domain, Project, System};
    let grant = |actor, target, inherited| GrantRoute {
        actor,
        target,
        inherited,
    };
    r = grant_routes(
        r,
        "/v3/projects/{project_id}/users/{user_id}",
        grant(User, Project, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/projects/{project_id}/groups/{group_id}",
        grant(Group, Project, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/domains/{domain_id}/users/{user_id}",
        grant(User, Domain, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/domains/{domain_id}/groups/{group_id}",
        grant(Group, Domain, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/system/users/{user_id}",
        grant(User, System, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/system/groups/{group_id}",
        grant(Group, System, false),
        true,
    );
    r = grant_routes(
        r,
        "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}",
        grant(User, Domain, true),
        true,
    );
    r = grant_routes(
        r,
        "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}",
        grant(Group, Domain, true),
        true,
    );
    r = grant_routes(
        r,
        "/v3/OS-INHERIT/projects/{project_id}/users/{user_id}",
        grant(User, Project, true),
        false,
    );
    r = grant_routes(
        r,
        "/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}",
        grant(Group, Project, true),
        false,
    );

    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
