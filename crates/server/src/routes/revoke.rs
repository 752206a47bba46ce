//! `GET /v3/OS-REVOKE/events`

use crate::authz::{enforce, target};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Base, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use limen_proto::{render, times};
use serde_json::{json, Value};

pub async fn events(
    State(s): State<AppState>,
    auth: Auth,
    Base(l): Base,
    q: Query,
) -> ApiResult<Json<Value>> {
    enforce(
        &s,
        &auth.caller.token,
        "identity:list_revoke_events",
        target(json!({}), &[]),
    )?;
    let since =
        match q.get("since") {
            None => None,
            Some(v) => Some(times::parse(v).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid time format for since: {v}"))
            })?),
        };
    let events = s.limen.token().list_revocation_events(since).await?;
    Ok(Json(json!({
        "events": events.iter().map(render::revocation_event).collect::<Vec<_>>(),
        "links": {"self": l.url("OS-REVOKE/events"), "previous": null, "next": null},
    })))
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new().route("/v3/OS-REVOKE/events", routing::get(events))
}
