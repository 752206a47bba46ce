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
use axum::routing::{get, head, post, put};
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
        .route("/", get(discovery::versions))
        .route("/v3", get(discovery::v3))
        .route("/oauth2/jwks", get(oauth::jwks))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/openid-configuration", get(oauth::metadata))
        .route(
            "/oauth2/authorize",
            get(authorize::start).post(authorize::decide),
        )
        .route(
            "/oauth2/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route(crate::pages::STYLESHEET_PATH, get(crate::pages::stylesheet))
        .route("/login", get(login::show).post(login::submit))
        .route("/device", get(device::show).post(device::submit))
        .route(
            "/oauth2/device_authorization",
            post(oauth::device_authorization),
        )
        .route("/logout", get(login::confirm_logout).post(login::logout))
        .route(
            "/v3/limen/oauth_clients",
            get(oauth_clients::list).post(oauth_clients::create),
        )
        .route(
            "/v3/limen/oauth_clients/{id}",
            get(oauth_clients::get)
                .patch(oauth_clients::update)
                .delete(oauth_clients::delete),
        )
        .route(
            "/v3/limen/oauth_clients/{id}/secret",
            post(oauth_clients::rotate_secret),
        )
        .route(
            "/v3/limen/clusters",
            get(clusters::list).post(clusters::create),
        )
        .route(
            "/v3/limen/clusters/{id}",
            get(clusters::get)
                .patch(clusters::update)
                .delete(clusters::delete),
        )
        .route(
            "/v3/limen/clusters/{id}/webhook_token",
            post(clusters::rotate_webhook_token),
        )
        .route(
            "/v3/limen/clusters/{id}/rules",
            get(clusters::list_rules).post(clusters::create_rule),
        )
        .route(
            "/v3/limen/clusters/{id}/rules/{rule_id}",
            get(clusters::get_rule).delete(clusters::delete_rule),
        )
        .route("/kubernetes/tokenreview", post(kubernetes::token_review))
        .route(
            "/kubernetes/clusters/{id}",
            get(kubernetes::connection_info),
        )
        .route(
            "/kubernetes/subjectaccessreview",
            post(kubernetes::subject_access_review),
        )
        .route("/v3/", get(discovery::v3))
        .route(
            "/v3/auth/tokens",
            post(auth::issue)
                .get(auth::validate)
                .head(auth::check)
                .delete(auth::revoke),
        )
        .route("/v3/ec2tokens", post(signed::ec2tokens))
        .route("/v3/s3tokens", post(signed::s3tokens))
        .route(
            "/v3/OS-FEDERATION/identity_providers",
            get(federation::list_idps),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}",
            get(federation::get_idp)
                .put(federation::create_idp)
                .patch(federation::update_idp)
                .delete(federation::delete_idp),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}/protocols",
            get(federation::list_protocols),
        )
        .route(
            "/v3/OS-FEDERATION/identity_providers/{idp_id}/protocols/{protocol_id}",
            get(federation::get_protocol)
                .put(federation::create_protocol)
                .patch(federation::update_protocol)
                .delete(federation::delete_protocol),
        )
        .route("/v3/OS-FEDERATION/mappings", get(federation::list_mappings))
        .route(
            "/v3/OS-FEDERATION/mappings/{mapping_id}",
            get(federation::get_mapping)
                .put(federation::create_mapping)
                .patch(federation::update_mapping)
                .delete(federation::delete_mapping),
        )
        .route(
            "/v3/OS-FEDERATION/service_providers",
            get(federation::list_sps),
        )
        .route(
            "/v3/OS-FEDERATION/service_providers/{sp_id}",
            get(federation::get_sp)
                .put(federation::create_sp)
                .patch(federation::update_sp)
                .delete(federation::delete_sp),
        )
        .route("/v3/auth/catalog", get(auth::catalog))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route("/v3/domains", get(domains::list).post(domains::create))
        .route(
            "/v3/domains/{domain_id}",
            get(domains::get)
                .patch(domains::update)
                .delete(domains::delete),
        )
        .route("/v3/projects", get(projects::list).post(projects::create))
        .route(
            "/v3/projects/{project_id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/v3/projects/{project_id}/tags",
            get(projects::list_tags)
                .put(projects::replace_tags)
                .delete(projects::delete_tags),
        )
        .route(
            "/v3/projects/{project_id}/tags/{tag}",
            get(projects::check_tag)
                .put(projects::add_tag)
                .delete(projects::delete_tag),
        )
        .route("/v3/users", get(users::list).post(users::create))
        .route(
            "/v3/users/{user_id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/v3/users/{user_id}/password", post(users::change_password))
        .route(
            "/v3/users/{user_id}/tokens",
            axum::routing::delete(users::revoke_tokens),
        )
        .route("/v3/users/{user_id}/groups", get(users::groups))
        .route("/v3/users/{user_id}/projects", get(users::projects))
        .route(
            "/v3/users/{user_id}/application_credentials",
            get(appcreds::list).post(appcreds::create),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{application_credential_id}",
            get(appcreds::get).delete(appcreds::delete),
        )
        .route(
            "/v3/users/{user_id}/access_rules",
            get(appcreds::list_access_rules),
        )
        .route(
            "/v3/users/{user_id}/access_rules/{access_rule_id}",
            get(appcreds::get_access_rule).delete(appcreds::delete_access_rule),
        )
        .route("/v3/groups", get(groups::list).post(groups::create))
        .route(
            "/v3/groups/{group_id}",
            get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route("/v3/groups/{group_id}/users", get(groups::users))
        .route(
            "/v3/groups/{group_id}/users/{user_id}",
            put(groups::add_member)
                .get(groups::check_member)
                .delete(groups::remove_member),
        )
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route(
            "/v3/roles/{role_id}",
            get(roles::get).patch(roles::update).delete(roles::delete),
        )
        .route(
            "/v3/roles/{prior_role_id}/implies",
            get(roles::list_implied),
        )
        .route(
            "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
            put(roles::create_implied)
                .get(roles::get_implied)
                .delete(roles::delete_implied)
                .merge(head(roles::check_implied)),
        )
        .route("/v3/role_inferences", get(roles::inferences))
        .route("/v3/role_assignments", get(assignments::list))
        .route(
            "/v3/regions",
            get(catalog::list_regions).post(catalog::create_region),
        )
        .route(
            "/v3/regions/{region_id}",
            get(catalog::get_region)
                .put(catalog::put_region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route(
            "/v3/services",
            get(catalog::list_services).post(catalog::create_service),
        )
        .route(
            "/v3/services/{service_id}",
            get(catalog::get_service)
                .patch(catalog::update_service)
                .delete(catalog::delete_service),
        )
        .route(
            "/v3/endpoints",
            get(catalog::list_endpoints).post(catalog::create_endpoint),
        )
        .route(
            "/v3/endpoints/{endpoint_id}",
            get(catalog::get_endpoint)
                .patch(catalog::update_endpoint)
                .delete(catalog::delete_endpoint),
        )
        .route("/v3/OS-REVOKE/events", get(revoke::events))
        .route(
            "/v3/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/v3/credentials/{credential_id}",
            get(credentials::get)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .merge(extension_routes())
        .route(
            "/v3/OS-TRUST/trusts",
            get(trusts::list).post(trusts::create),
        )
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}",
            get(trusts::get).delete(trusts::delete),
        )
        .route("/v3/OS-TRUST/trusts/{trust_id}/roles", get(trusts::roles))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
            get(trusts::role),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            get(credentials::ec2_list).post(credentials::ec2_create),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}",
            get(credentials::ec2_get).delete(credentials::ec2_delete),
        );

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
