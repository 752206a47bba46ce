//! The authorization endpoint (`/oauth2/authorize`, RFC 6749 §4.1 with PKCE and OpenID
//! Connect): a browser arrives from a client; an untrustworthy client or redirect URI
//! gets an error page, anything else an answer at the redirect URI, after a login (if
//! there is no fresh session) and consent (if not given before).

use crate::extract::form_urlencoded_pairs;
use crate::pages::{
    error_page, esc, exchange_list, hidden, issuer, page, respond, scope_list, see_other,
    tokens_match, unavailable,
};
use crate::routes::login::{current_session, page_form, provider_not_ready};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use limen_core::model::User;
use limen_core::oauth::authorize::{AuthorizeParams, AuthorizeRejection, AuthorizeRequest};
use limen_core::oauth::exchange::ExchangeTarget;
use limen_core::oauth::session::LoginSession;
use limen_core::percent::encode;

/// The parameters the endpoint reads, in the order a consent form carries them on.
const PARAMS: [&str; 10] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
];

/// The request's parameters (empty values count as absent, RFC 6749 §3.1).
fn params(pairs: &[(String, String)]) -> AuthorizeParams {
    let mut p = AuthorizeParams::default();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        let Some(name) = PARAMS.iter().find(|n| **n == k) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        if seen.contains(name) {
            if !p.repeated.iter().any(|r| r == name) {
                p.repeated.push(name.to_string());
            }
            continue;
        }
        seen.push(name);
        let slot = match *name {
            "client_id" => &mut p.client_id,
            "redirect_uri" => &mut p.redirect_uri,
            "response_type" => &mut p.response_type,
            "scope" => &mut p.scope,
            "state" => &mut p.state,
            "nonce" => &mut p.nonce,
            "code_challenge" => &mut p.code_challenge,
            "code_challenge_method" => &mut p.code_challenge_method,
            "prompt" => &mut p.prompt,
            _ => &mut p.max_age,
        };
        *slot = Some(v.clone());
    }
    p
}

/// A 302 to the client's redirect URI with `pairs` (and `iss`, RFC 9207) in its query.
fn to_client(state: &AppState, redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    let iss = issuer(state);
    for (k, v) in pairs.iter().chain([("iss", iss.as_str())].iter()) {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&encode(v));
        sep = '&';
    }
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn rejected(state: &AppState, r: AuthorizeRejection) -> Response {
    match r {
        AuthorizeRejection::Page(m) => error_page(state, StatusCode::BAD_REQUEST, &m),
        AuthorizeRejection::Unavailable => unavailable(state),
        AuthorizeRejection::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = &client_state {
                pairs.push(("state", s));
            }
            to_client(state, &redirect_uri, &pairs)
        }
    }
}

/// Ends the request with a code at the redirect URI.
async fn grant_code(state: &AppState, req: &AuthorizeRequest, session: &LoginSession) -> Response {
    match state
        .limen
        .oauth()
        .issue_authorization_code(req, session)
        .await
    {
        Ok(code) => {
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = &req.state {
                pairs.push(("state", s));
            }
            to_client(state, &req.redirect_uri, &pairs)
        }
        Err(e) => rejected(state, e.into()),
    }
}

/// A `prompt` value without `login`.
fn without_login(prompt: &str) -> String {
    prompt
        .split_whitespace()
        .filter(|p| *p != "login")
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /oauth2/authorize`.
pub async fn start(State(state): State<AppState>, req: Request) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let pairs = form_urlencoded_pairs(&query);
    let areq = match state.limen.oauth().check_authorize(params(&pairs)).await {
        Ok(r) => r,
        Err(r) => return rejected(&state, r),
    };
    let session = match current_session(&state, req.headers()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = state.limen.clock.now().unix_timestamp();
    let fresh = session.filter(|(s, _)| !areq.force_login && areq.session_fresh_enough(s, now));
    let Some((session, user)) = fresh else {
        if areq.no_prompt {
            return rejected(
                &state,
                areq.reject("login_required", "The user is not signed in."),
            );
        }
        // Back here after the login, without `prompt=login` (that login is then done).
        let again: Vec<String> = pairs
            .iter()
            .map(|(k, v)| match k.as_str() {
                "prompt" => (k, without_login(v)),
                _ => (k, v.clone()),
            })
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{}={}", encode(k), encode(&v)))
            .collect();
        let next = format!("/oauth2/authorize?{}", again.join("&"));
        let mut login = format!("{}/login?next={}", issuer(&state), encode(&next));
        if let Some(hint) = pairs.iter().find(|(k, _)| k == "login_hint") {
            login.push_str(&format!("&login_hint={}", encode(&hint.1)));
        }
        return see_other(&login);
    };
    let consented = match state.limen.oauth().consented(&session.user_id, &areq).await {
        Ok(c) => c && !areq.force_consent,
        Err(e) => return rejected(&state, e.into()),
    };
    if consented {
        return grant_code(&state, &areq, &session).await;
    }
    if areq.no_prompt {
        return rejected(
            &state,
            areq.reject(
                "consent_required",
                "The user has not consented to this client.",
            ),
        );
    }
    let targets = match state.limen.oauth().exchange_targets(&areq.client).await {
        Ok(t) => t,
        Err(e) => return rejected(&state, e.into()),
    };
    consent_page(&state, &areq, &pairs, &session, &user, &targets)
}

fn consent_page(
    state: &AppState,
    areq: &AuthorizeRequest,
    pairs: &[(String, String)],
    session: &LoginSession,
    user: &User,
    targets: &[ExchangeTarget],
) -> Response {
    let mut carried = String::new();
    for (k, v) in pairs {
        if PARAMS.contains(&k.as_str()) && k != "prompt" {
            carried.push_str(&hidden(k, v));
        }
    }
    let scopes = scope_list(&areq.scopes);
    let client = &areq.client;
    let description = client
        .description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(r#"<p class="muted">{}</p>"#, esc(d)))
        .unwrap_or_default();
    let body = format!(
        r#"<p><strong>{name}</strong> asks to sign you in as <strong>{user}</strong>.</p>{description}
<p>It will be able to see:</p>
<ul class="scopes">{scopes}</ul>
{exchange}
<p class="muted">You will be sent back to {redirect}.</p>
<form method="post" action="{issuer}/oauth2/authorize">{csrf}{carried}
<div class="actions">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>"#,
        name = esc(&client.name),
        user = esc(&user.name),
        redirect = esc(&areq.redirect_uri),
        exchange = exchange_list(targets),
        issuer = esc(&issuer(state)),
        csrf = hidden("csrf", &session.csrf),
    );
    respond(StatusCode::OK, page(state, "Allow access?", &body))
}

/// `POST /oauth2/authorize`: the consent form's answer.
pub async fn decide(State(state): State<AppState>, req: Request) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let (headers, fields) = match page_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    decide_with(&state, &headers, fields).await
}

async fn decide_with(
    state: &AppState,
    headers: &HeaderMap,
    fields: std::collections::HashMap<String, String>,
) -> Response {
    let pairs: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let areq = match state.limen.oauth().check_authorize(params(&pairs)).await {
        Ok(r) => r,
        Err(r) => return rejected(state, r),
    };
    let session = match current_session(state, headers).await {
        Ok(Some((s, _))) => s,
        Ok(None) => {
            return error_page(
                state,
                StatusCode::BAD_REQUEST,
                "Your sign-in expired before you answered.",
            )
        }
        Err(r) => return r,
    };
    let field = |k: &str| fields.get(k).map_or("", String::as_str);
    if !tokens_match(&session.csrf, field("csrf")) {
        return error_page(
            state,
            StatusCode::FORBIDDEN,
            "The consent form was not sent by this site.",
        );
    }
    match field("decision") {
        "allow" => {
            if let Err(e) = state
                .limen
                .oauth()
                .remember_consent(&session.user_id, &areq)
                .await
            {
                return rejected(state, e.into());
            }
            grant_code(state, &areq, &session).await
        }
        "deny" => rejected(
            state,
            areq.reject("access_denied", "The user denied the request."),
        ),
        _ => error_page(state, StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    }
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new().route("/oauth2/authorize", routing::get(start).post(decide))
}
