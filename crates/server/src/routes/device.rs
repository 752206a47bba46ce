//! The device page (`/device`, RFC 8628 §3.3): a signed-in person enters the code their
//! device shows (or arrives with it in the link), sees which client asks for what, and
//! approves or denies. Wrong codes cost the address a token of its own limiter (§5.1),
//! and nothing is approved without an explicit click, even from a complete link (§5.4).

use crate::extract::{ClientAddr, Query};
use crate::pages::{
    alert, error_page, esc, exchange_list, hidden, issuer, page, respond, scope_list, see_other,
    tokens_match, unavailable, with_retry_after,
};
use crate::routes::login::{current_session, page_form, provider_not_ready};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use limen_core::model::User;
use limen_core::oauth::device::PendingDevice;
use limen_core::oauth::exchange::ExchangeTarget;
use limen_core::oauth::session::LoginSession;
use limen_core::percent::encode;

fn enter_page(
    state: &AppState,
    status: StatusCode,
    session: &LoginSession,
    typed: &str,
    error: Option<&str>,
) -> Response {
    let body = format!(
        r#"{alert}<p>Enter the code your device shows.</p>
<form method="post" action="{issuer}/device">{csrf}
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" value="{typed}" class="code" autocapitalize="characters" autocomplete="one-time-code" spellcheck="false" placeholder="XXXX-XXXX" required>
<div class="actions"><button type="submit">Continue</button></div>
</form>"#,
        alert = alert(error),
        issuer = esc(&issuer(state)),
        csrf = hidden("csrf", &session.csrf),
        typed = esc(typed),
    );
    respond(status, page(state, "Connect a device", &body))
}

fn confirm_page(
    state: &AppState,
    session: &LoginSession,
    user: &User,
    pending: &PendingDevice,
    targets: &[ExchangeTarget],
) -> Response {
    let body = format!(
        r#"<p><strong>{client}</strong> asks to sign in as <strong>{user}</strong> on a device showing the code</p>
<p class="code">{code}</p>
<p>Approve only if your device shows this code and you started this sign-in yourself. It will be able to see:</p>
<ul class="scopes">{scopes}</ul>
{exchange}
<form method="post" action="{issuer}/device">{csrf}{code_field}
<div class="actions">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>"#,
        client = esc(&pending.client.name),
        user = esc(&user.name),
        code = esc(&pending.user_code),
        scopes = scope_list(&pending.scopes),
        exchange = exchange_list(targets),
        issuer = esc(&issuer(state)),
        csrf = hidden("csrf", &session.csrf),
        code_field = hidden("user_code", &pending.user_code),
    );
    respond(StatusCode::OK, page(state, "Approve this device?", &body))
}

/// Looks a typed code up under the address's limit of wrong codes: the confirmation
/// page, or the entry page again with why not.
async fn look_up(
    state: &AppState,
    addr: &ClientAddr,
    session: &LoginSession,
    user: &User,
    typed: &str,
) -> Response {
    let now = std::time::Instant::now();
    let limit = state.user_code_limiter.as_ref().zip(addr.0);
    let reserved = match limit.map(|(limiter, ip)| limiter.reserve(ip, now)) {
        Some(Err(wait)) => {
            let resp = enter_page(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                session,
                typed,
                Some("Too many wrong codes from this address; wait a minute and try again."),
            );
            return with_retry_after(resp, wait);
        }
        Some(Ok(r)) => Some(r),
        None => None,
    };
    match state.limen.oauth().pending_device(typed).await {
        Ok(Some(pending)) => match state.limen.oauth().exchange_targets(&pending.client).await {
            Ok(targets) => confirm_page(state, session, user, &pending, &targets),
            Err(e) => {
                tracing::error!(error = %e, "cannot list a client's exchange targets");
                unavailable(state)
            }
        },
        Ok(None) => {
            if let Some(r) = reserved {
                r.failed();
            }
            enter_page(
                state,
                StatusCode::BAD_REQUEST,
                session,
                typed,
                Some("That code is not right, has expired or was used already. Check your device."),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a user code");
            unavailable(state)
        }
    }
}

/// `GET /device[?user_code=…]`.
pub async fn show(
    State(state): State<AppState>,
    addr: ClientAddr,
    q: Query,
    req: Request,
) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let typed = q.get("user_code").unwrap_or("").to_string();
    let (session, user) = match current_session(&state, req.headers()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let next = if typed.is_empty() {
                "/device".to_string()
            } else {
                format!("/device?user_code={}", encode(&typed))
            };
            return see_other(&format!("{}/login?next={}", issuer(&state), encode(&next)));
        }
        Err(r) => return r,
    };
    if typed.is_empty() {
        return enter_page(&state, StatusCode::OK, &session, "", None);
    }
    look_up(&state, &addr, &session, &user, &typed).await
}

/// `POST /device`: a typed code (then the confirmation), or the decision on one.
pub async fn submit(State(state): State<AppState>, addr: ClientAddr, req: Request) -> Response {
    if let Some(r) = provider_not_ready(&state) {
        return r;
    }
    let (headers, f) = match page_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (session, user) = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other(&format!("{}/login?next=%2Fdevice", issuer(&state))),
        Err(r) => return r,
    };
    let field = |k: &str| f.get(k).map_or("", String::as_str);
    if !tokens_match(&session.csrf, field("csrf")) {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The form was not sent by this site.",
        );
    }
    let typed = field("user_code");
    let approve = match field("decision") {
        "" => return look_up(&state, &addr, &session, &user, typed).await,
        "approve" => true,
        "deny" => false,
        _ => return error_page(&state, StatusCode::BAD_REQUEST, "Choose Approve or Deny."),
    };
    match state
        .limen
        .oauth()
        .decide_device(typed, &session, approve)
        .await
    {
        Ok(true) if approve => respond(
            StatusCode::OK,
            page(
                &state,
                "Device approved",
                "<p>You can close this page and return to your device.</p>",
            ),
        ),
        Ok(true) => respond(
            StatusCode::OK,
            page(
                &state,
                "Request denied",
                "<p>The device was not signed in. You can close this page.</p>",
            ),
        ),
        Ok(false) => enter_page(
            &state,
            StatusCode::BAD_REQUEST,
            &session,
            typed,
            Some("That code has expired or was used already. Start again on your device."),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot record a device decision");
            unavailable(&state)
        }
    }
}

/// The routes this module serves.
pub(crate) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing;
    axum::Router::new().route("/device", routing::get(show).post(submit))
}
