//! The webhooks a Kubernetes API server calls (docs/kubernetes.md). The caller proves
//! which registered cluster it is with that cluster's webhook token (`Authorization:
//! Bearer`); anyone else gets a 401 `Status`. A review is always answered with 200 in the
//! version it was asked in: a token that authenticates no one is `authenticated: false`
//! with the reason in `error`; an access review is allowed, denied, or Limen has no
//! opinion under the cluster's rules.

use crate::error::{ApiError, ApiResult};
use crate::extract::read_body;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use limen_core::kubernetes::cluster::Cluster;
use limen_core::kubernetes::{PresentedToken, TokenRejected};
use limen_core::oauth::exchange::EXCHANGED_TOKEN_TYP;
use limen_crypto::oidc_keys::JwtRejection;
use limen_proto::kubernetes::{
    access_review_answer, access_review_error, access_review_request, failure_status,
    token_review_accepted, token_review_rejected, token_review_request, TokenReviewRequest,
};
use serde_json::Value;

fn answer(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The registered cluster calling, by its webhook token; else the answer to give.
async fn calling_cluster(state: &AppState, headers: &HeaderMap) -> Result<Cluster, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
        .map(|v| v[7..].trim());
    let unknown = || {
        answer(
            StatusCode::UNAUTHORIZED,
            failure_status(
                401,
                "Unauthorized",
                "Limen knows no cluster by this webhook token; use the one `limen cluster \
                 create` printed (or rotate it).",
            ),
        )
    };
    let Some(token) = bearer else {
        return Err(unknown());
    };
    match state
        .limen
        .kubernetes()
        .cluster_of_webhook_token(token)
        .await
    {
        Ok(Some(c)) => Ok(c),
        Ok(None) => {
            tracing::warn!("webhook call with an unknown cluster token");
            Err(unknown())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot look up the calling cluster");
            Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                failure_status(503, "ServiceUnavailable", "Try again shortly."),
            ))
        }
    }
}

/// The calling cluster and the review it sent (read by `parse`); else the answer to give:
/// 401 for an unknown caller, 400 for a body that is not a review.
async fn review_of<T>(
    state: &AppState,
    req: Request,
    parse: fn(&[u8]) -> limen_proto::ProtoResult<T>,
) -> Result<(Cluster, T), Response> {
    let cluster = calling_cluster(state, req.headers()).await?;
    let body = read_body(req, state.config.max_request_body_size)
        .await
        .map_err(IntoResponse::into_response)?;
    let review = parse(&body).map_err(|e| {
        answer(
            StatusCode::BAD_REQUEST,
            failure_status(400, "BadRequest", &e.to_string()),
        )
    })?;
    Ok((cluster, review))
}

/// `POST /kubernetes/tokenreview`: who a bearer token presented to the calling cluster
/// is (authentication.k8s.io v1 or v1beta1).
pub async fn token_review(State(state): State<AppState>, req: Request) -> Response {
    let (cluster, review) = match review_of(&state, req, token_review_request).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let presented = match presented_token(&state, &cluster, &review.token) {
        Ok(p) => p,
        Err(why) => return reject(&cluster, &review, &why),
    };
    match state
        .limen
        .kubernetes()
        .review_token(&cluster, presented, &review.audiences)
        .await
    {
        Ok((user, audiences)) => {
            tracing::info!(cluster = %cluster.id, uid = %user.uid, "token review: authenticated");
            answer(
                StatusCode::OK,
                token_review_accepted(&review, &user, &audiences),
            )
        }
        Err(TokenRejected::Invalid(why)) => reject(&cluster, &review, &why),
        Err(e @ TokenRejected::Unavailable) => reject(&cluster, &review, &e.to_string()),
    }
}

/// `POST /kubernetes/subjectaccessreview`: whether the calling cluster's rules let a
/// person do something there (authorization.k8s.io v1 or v1beta1).
pub async fn subject_access_review(State(state): State<AppState>, req: Request) -> Response {
    let (cluster, review) = match review_of(&state, req, access_review_request).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match state
        .limen
        .kubernetes()
        .review_access(&cluster.id, &review.access)
        .await
    {
        Ok(decision) => {
            tracing::info!(cluster = %cluster.id, user = %review.access.user,
                verb = %review.access.verb, decision = ?decision, "access review");
            answer(StatusCode::OK, access_review_answer(&review, &decision))
        }
        Err(e) => {
            tracing::error!(cluster = %cluster.id, error = %e, "access review failed");
            answer(
                StatusCode::OK,
                access_review_error(&review, "the identity service cannot decide right now"),
            )
        }
    }
}

/// `GET /kubernetes/clusters/{id}`: what a person's kubeconfig needs to reach an
/// enabled cluster and log in to it (`limen kubeconfig`). Anyone may read it: it holds no
/// secret (the API server's URL and CA, the audience, the issuer and the login client),
/// and the cluster's id, a random UUID, is needed to ask.
pub async fn connection_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let Some(issuer) = state.config.oidc.issuer.as_deref() else {
        return Err(ApiError::not_found(
            "The OpenID Provider is not set up ([oidc] issuer): nobody can log in to clusters.",
        ));
    };
    let usable = match state.limen.kubernetes().get_cluster(&id).await {
        Ok(c) if c.enabled && state.limen.resource().domain_enabled(&c.domain_id).await? => Some(c),
        Ok(_) | Err(limen_core::CoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let c = usable.ok_or_else(|| ApiError::not_found(format!("Could not find cluster: {id}.")))?;
    Ok(Json(limen_proto::cluster::cluster_connection(&c, issuer)))
}

fn reject(cluster: &Cluster, review: &TokenReviewRequest, why: &str) -> Response {
    tracing::info!(cluster = %cluster.id, reason = %why, "token review: not authenticated");
    answer(StatusCode::OK, token_review_rejected(review, why))
}

/// A token signed by the provider's keys must be a live cluster token for this cluster;
/// anything else may be a Keystone token.
fn presented_token(
    state: &AppState,
    cluster: &Cluster,
    token: &str,
) -> Result<PresentedToken, String> {
    let issuer = state.config.oidc.issuer.as_deref().unwrap_or_default();
    let Some(keys) = state.oidc_keys.current().filter(|_| !issuer.is_empty()) else {
        return Ok(PresentedToken::Other(token.to_string()));
    };
    let now = state.limen.clock.now().unix_timestamp();
    match keys.verify_jwt_for(token, EXCHANGED_TOKEN_TYP, issuer, &cluster.audience, now) {
        Ok(claims) => Ok(PresentedToken::ClusterToken(claims)),
        Err(JwtRejection::NotOurs) => Ok(PresentedToken::Other(token.to_string())),
        Err(JwtRejection::Expired) => Err("the cluster token has expired".into()),
        Err(JwtRejection::OtherAudience) => Err(format!(
            "the token is not for this cluster (its audience is not {:?})",
            cluster.audience
        )),
        Err(JwtRejection::Invalid) => Err("the token is not a valid cluster token".into()),
    }
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/kubernetes/tokenreview", routing::post(token_review))
        .route("/kubernetes/clusters/{id}", routing::get(connection_info))
        .route(
            "/kubernetes/subjectaccessreview",
            routing::post(subject_access_review),
        )
}
