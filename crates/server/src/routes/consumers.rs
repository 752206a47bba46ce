//! OS-OAUTH1 consumers (`/v3/OS-OAUTH1/consumers`); the OAuth1 flow is in `oauth1`.

use crate::authz::authorize_caller as allow;
use crate::error::ApiResult;
use crate::extract::{Auth, Base, JsonBody, Path, Query};
use crate::routes::with_links;
use crate::routes::{created, drop_same_id, paged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use limen_proto::input;
use limen_proto::render::Links;
use serde_json::{json, Value};

fn consumer_doc(
    l: &Links,
    c: &limen_core::delegation::oauth1::Consumer,
    secret: Option<&str>,
) -> Value {
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
    let (c, secret) = s
        .limen
        .delegation()
        .create_consumer(&proof, description, extra)
        .await?;
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
        .delegation()
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
        json!({"consumer": consumer_doc(&l, &s.limen.delegation().get_consumer(&id).await?, None)}),
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
        .delegation()
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
    s.limen.delegation().delete_consumer(&proof, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes this module serves.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/OS-OAUTH1/consumers",
            get(list_consumers).post(create_consumer),
        )
        .route(
            "/v3/OS-OAUTH1/consumers/{consumer_id}",
            get(get_consumer)
                .patch(update_consumer)
                .delete(delete_consumer),
        )
}
