//! Version discovery: `GET /` (300 Multiple Choices) and `GET /v3`.

use crate::extract::root_url;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub const API_VERSION: &str = "v3.14";

fn version_doc(root: &str) -> Value {
    json!({
        "id": API_VERSION,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{root}/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

pub async fn versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let root = root_url(&state, &headers);
    let mut resp = (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [version_doc(&root)]}})),
    )
        .into_response();
    if let Ok(v) = format!("{root}/v3/").parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub async fn v3(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let root = root_url(&state, &headers);
    Json(json!({"version": version_doc(&root)}))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/", routing::get(versions))
        .route("/v3", routing::get(v3))
        .route("/v3/", routing::get(v3))
}
