//! The provider's login and logout pages (`/login`, `/logout`). A login is a Keystone
//! password login (lockout, password expiry, TOTP where the user's rules ask for it) under
//! the failed-login limit, and starts a session with a fresh id (never one the browser
//! brought: no session fixation). The login form is protected by a double-submit cookie,
//! the logout form by the session's own anti-forgery token.

use crate::extract::{form_urlencoded_pairs, read_body, ClientAddr, Query};
use crate::pages::{
    alert, cookie, error_page, esc, hidden, issuer, login_csrf_cookie, page, respond, same_origin,
    see_other, session_cookie, set_cookie, tokens_match, unavailable, with_retry_after,
};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use limen_core::error::CoreError;
use limen_core::model::User;
use limen_core::oauth::session::{LoginSession, PageLogin};
use std::collections::HashMap;

/// Where a login may send the browser on: the provider's own pages that need one.
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        (n.starts_with("/oauth2/authorize?") || *n == "/device" || n.starts_with("/device?"))
            && !n.contains(['\\', '\r', '\n'])
    })
}

/// The session the request's cookie names, if it is live.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(LoginSession, User)>, Response> {
    let Some(raw) = cookie(headers, session_cookie(state)) else {
        return Ok(None);
    };
    state.limen.oauth().page_session(&raw).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read a login session");
        unavailable(state)
    })
}

/// The pages answer only once the provider is set up: else this error page.
pub fn provider_not_ready(state: &AppState) -> Option<Response> {
    state.config.oidc.issuer.is_none().then(|| {
        error_page(
            state,
            StatusCode::NOT_FOUND,
            "The OpenID Provider is not set up on this server.",
        )
    })
}

struct LoginForm<'a> {
    next: Option<&'a str>,
    user_name: &'a str,
    domain: &'a str,
    ask_passcode: bool,
    error: Option<&'a str>,
}

fn login_page(state: &AppState, csrf: &str, f: &LoginForm) -> String {
    let passcode = if f.ask_passcode {
        r#"<label for="passcode">One-time passcode</label>
<input type="text" id="passcode" name="passcode" inputmode="numeric" autocomplete="one-time-code" required>"#
    } else {
        ""
    };
    let body = format!(
        r#"{alert}<form method="post" action="{issuer}/login">
{csrf}{next}
<label for="username">User name</label>
<input type="text" id="username" name="username" value="{user}" autocomplete="username" autocapitalize="none" spellcheck="false" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<label for="domain">Domain</label>
<input type="text" id="domain" name="domain" value="{domain}" autocapitalize="none" spellcheck="false" required>
{passcode}
<div class="actions"><button type="submit">Sign in</button></div>
</form>"#,
        alert = alert(f.error),
        issuer = esc(&issuer(state)),
        csrf = hidden("csrf", csrf),
        next = f.next.map(|n| hidden("next", n)).unwrap_or_default(),
        user = esc(f.user_name),
        domain = esc(f.domain),
    );
    page(state, "Sign in", &body)
}

/// The login form, with a fresh double-submit token in a cookie and in the form.
fn login_response(state: &AppState, status: StatusCode, f: &LoginForm) -> Response {
    let csrf = state.limen.oauth().new_page_token();
    let mut resp = respond(status, login_page(state, &csrf, f));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, login_csrf_cookie(state), Some(&csrf)),
    );
    resp
}

fn signed_in_page(state: &AppState, session: &LoginSession, user: &User) -> Response {
    let body = format!(
        r#"<p>You are signed in as <strong>{name}</strong>.</p>
<form method="post" action="{issuer}/logout">{csrf}
<div class="actions"><button type="submit" class="secondary">Sign out</button></div>
</form>"#,
        name = esc(&user.name),
        issuer = esc(&issuer(state)),
        csrf = hidden("csrf", &session.csrf),
    );
    respond(StatusCode::OK, page(state, "Signed in", &body))
}

/// `GET /login[?next=…]`: the form (or, signed in with nowhere to go, who you are).
pub async fn show(State(state): State<AppState>, q: Query, headers: HeaderMap) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let next = safe_next(q.get("next"));
    if next.is_none() {
        match current_session(&state, &headers).await {
            Ok(Some((session, user))) => return signed_in_page(&state, &session, &user),
            Ok(None) => {}
            Err(r) => return r,
        }
    }
    let form = LoginForm {
        next,
        user_name: q.get("login_hint").unwrap_or(""),
        domain: "Default",
        ask_passcode: false,
        error: None,
    };
    login_response(&state, StatusCode::OK, &form)
}

/// A page form's fields (the first of each name).
pub async fn page_form(
    state: &AppState,
    req: Request,
) -> Result<(HeaderMap, HashMap<String, String>), Response> {
    let headers = req.headers().clone();
    let body = read_body(req, state.config.max_request_body_size)
        .await
        .map_err(|_| {
            error_page(
                state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
            )
        })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| error_page(state, StatusCode::BAD_REQUEST, "The form is not UTF-8."))?;
    let mut fields = HashMap::new();
    for (k, v) in form_urlencoded_pairs(text) {
        fields.entry(k).or_insert(v);
    }
    if !same_origin(state, &headers) {
        return Err(error_page(
            state,
            StatusCode::FORBIDDEN,
            "The form was sent from another site.",
        ));
    }
    Ok((headers, fields))
}

/// `POST /login`.
pub async fn submit(State(state): State<AppState>, addr: ClientAddr, req: Request) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let (headers, f) = match page_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let sent_csrf = cookie(&headers, login_csrf_cookie(&state)).unwrap_or_default();
    if !tokens_match(&sent_csrf, field("csrf")) {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The sign-in form expired or was not sent by this site; open it again.",
        );
    }
    let next = safe_next(f.get("next").map(String::as_str));
    let mut form = LoginForm {
        next,
        user_name: field("username"),
        domain: if field("domain").is_empty() {
            "Default"
        } else {
            field("domain")
        },
        ask_passcode: !field("passcode").is_empty(),
        error: None,
    };
    let now = std::time::Instant::now();
    let limit = state.login_limiter.as_ref().zip(addr.0);
    let reserved = match limit.map(|(limiter, ip)| limiter.reserve(ip, now)) {
        Some(Err(wait)) => {
            form.error =
                Some("Too many failed sign-ins from this address; wait a minute and try again.");
            let resp = login_response(&state, StatusCode::TOO_MANY_REQUESTS, &form);
            return with_retry_after(resp, wait);
        }
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let login = PageLogin {
        user_name: form.user_name.to_string(),
        domain_name: form.domain.to_string(),
        password: field("password").to_string(),
        passcode: Some(field("passcode").to_string()).filter(|p| !p.is_empty()),
    };
    match state.limen.oauth().start_page_session(login).await {
        Ok((raw, session)) => {
            if let Some(old) = cookie(&headers, session_cookie(&state)) {
                if let Err(e) = state.limen.oauth().end_page_session(&old).await {
                    tracing::warn!(error = %e, "cannot end the session a login replaces");
                }
            }
            let to = format!("{}{}", issuer(&state), next.unwrap_or("/login"));
            let mut resp = see_other(&to);
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, session_cookie(&state), Some(&raw)),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, login_csrf_cookie(&state), None),
            );
            tracing::info!(user = %session.user_id, "signed in on the provider's pages");
            resp
        }
        Err(CoreError::AdditionalAuthRequired(_)) => {
            form.ask_passcode = true;
            form.error = Some(
                "Enter your password again with the one-time passcode from your authenticator.",
            );
            login_response(&state, StatusCode::UNAUTHORIZED, &form)
        }
        Err(CoreError::Internal(m)) => {
            tracing::error!(error = %m, "page login failed on the store");
            unavailable(&state)
        }
        Err(e) => {
            if let Some(r) = reserved {
                r.failed();
            }
            tracing::info!(reason = %e, "page login refused");
            form.error = Some(login_refusal(&e));
            login_response(&state, StatusCode::UNAUTHORIZED, &form)
        }
    }
}

/// What a person is told when a login fails: nothing that tells which part was wrong,
/// except what they can act on.
fn login_refusal(e: &CoreError) -> &'static str {
    match e {
        CoreError::Unauthorized(m) if m.contains("expired") => {
            "Your password has expired; change it, then sign in again."
        }
        CoreError::Unauthorized(m) if m.contains("locked") => {
            "This account is locked after too many failed sign-ins; try again later."
        }
        _ => "The user name, password or domain is not right.",
    }
}

/// `GET /logout`: asks to confirm (a link must not be able to sign anyone out).
pub async fn confirm_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    match current_session(&state, &headers).await {
        Ok(Some((session, user))) => signed_in_page(&state, &session, &user),
        Ok(None) => signed_out_page(&state),
        Err(r) => r,
    }
}

fn signed_out_page(state: &AppState) -> Response {
    let mut resp = respond(
        StatusCode::OK,
        page(state, "Signed out", "<p>You are signed out.</p>"),
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, session_cookie(state), None),
    );
    resp
}

/// `POST /logout`: ends the session (its anti-forgery token required).
pub async fn logout(State(state): State<AppState>, req: Request) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let (headers, f) = match page_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let session = match current_session(&state, &headers).await {
        Ok(Some((s, _))) => s,
        Ok(None) => return signed_out_page(&state),
        Err(r) => return r,
    };
    if !tokens_match(&session.csrf, f.get("csrf").map_or("", String::as_str)) {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The sign-out form was not sent by this site.",
        );
    }
    if let Some(raw) = cookie(&headers, session_cookie(&state)) {
        if let Err(e) = state.limen.oauth().end_page_session(&raw).await {
            tracing::error!(error = %e, "cannot end a login session");
            return unavailable(&state);
        }
    }
    signed_out_page(&state)
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/login", routing::get(show).post(submit))
        .route("/logout", routing::get(confirm_logout).post(logout))
}
