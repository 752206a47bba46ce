//! The OpenID Provider's pages as a person sees them: server-rendered HTML that needs no
//! JavaScript, one stylesheet, and the headers, cookies and anti-forgery checks every page
//! shares (see `docs/design/oidc-provider.md` §5). Every value shown goes through [`esc`].

use crate::state::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const STYLESHEET: &str = include_str!("limen.css");

/// Where the stylesheet is served (relative to the issuer).
pub const STYLESHEET_PATH: &str = "/oauth2/assets/limen.css";

/// HTML-escapes text for an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        esc(name),
        esc(value)
    )
}

/// An error message in an alert region (read out by screen readers), or nothing.
pub fn alert(message: Option<&str>) -> String {
    message
        .map(|m| format!(r#"<p role="alert">{}</p>"#, esc(m)))
        .unwrap_or_default()
}

/// What the scopes let a client see, in words, as list items.
pub fn scope_list(scopes: &[String]) -> String {
    if scopes.is_empty() {
        return "<li>nothing about you: it only gets access on your behalf</li>".into();
    }
    scopes
        .iter()
        .map(|s| match s.as_str() {
            "openid" => "who you are (your user id)",
            "profile" => "your user name and name",
            "email" => "your email address",
            "groups" => "the groups you belong to",
            "offline_access" => "access while you are away",
            _ => "",
        })
        .map(|words| format!("<li>{}</li>", esc(words)))
        .collect()
}

/// What a client may turn the person's sign-in into (token exchange), as a paragraph
/// for a consent page; empty when it may turn it into nothing.
pub fn exchange_list(targets: &[limen_core::oauth::exchange::ExchangeTarget]) -> String {
    if targets.is_empty() {
        return String::new();
    }
    let items: String = targets
        .iter()
        .map(|t| match &t.cluster {
            Some((cluster, domain)) => format!(
                "<li>the Kubernetes cluster <strong>{}</strong> of {} ({})</li>",
                esc(cluster),
                esc(domain),
                esc(&t.audience)
            ),
            None => format!("<li>{}</li>", esc(&t.audience)),
        })
        .collect();
    format!(
        r#"<p>It can also turn your sign-in into tokens that act as you on:</p>
<ul class="scopes exchange">{items}</ul>"#
    )
}

/// A whole page around `body` (already HTML).
pub fn page(state: &AppState, title: &str, body: &str) -> String {
    let issuer = issuer(state);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} · Limen</title>
<link rel="stylesheet" href="{issuer}{STYLESHEET_PATH}">
</head>
<body>
<main>
<p class="brand">Limen</p>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = esc(title),
        issuer = esc(&issuer),
    )
}

/// A page response with the headers every page carries: no caching, no framing, no
/// referrer to other sites (codes and states must not leak), no scripts at all.
pub fn respond(status: StatusCode, html: String) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    resp
}

/// `form-action` is left out on purpose: browsers apply it to the redirect that follows a
/// form post, which would block the way back to the client after consent. The referrer
/// policy is `same-origin`, not `no-referrer`: under the latter browsers send
/// `Origin: null` with the pages' own form posts, and the origin check refuses them.
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error page: what went wrong, and no way onward that could mislead.
pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "{}<p class=\"muted\">Go back to the application and start again.</p>",
        alert(Some(message))
    );
    respond(status, page(state, "Something went wrong", &body))
}

/// A 429 page with how long to wait before trying again.
pub fn with_retry_after(mut resp: Response, wait: std::time::Duration) -> Response {
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The page for a store failure: never a 500.
pub fn unavailable(state: &AppState) -> Response {
    error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "The sign-in service cannot answer right now; try again shortly.",
    )
}

/// A redirect (303 after a form post, so the browser follows with GET).
pub fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    security_headers(resp.headers_mut());
    resp
}

/// `GET /oauth2/assets/limen.css`.
pub async fn stylesheet() -> Response {
    let mut resp = STYLESHEET.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The issuer the pages live under ("" when unset: the handlers refuse first).
pub fn issuer(state: &AppState) -> String {
    state.config.oidc.issuer.clone().unwrap_or_default()
}

/// Whether cookies must be `Secure` (and may then carry the `__Host-` prefix): always,
/// except for an `http` issuer on loopback (tests).
fn secure(state: &AppState) -> bool {
    !issuer(state).starts_with("http://")
}

/// The login session cookie's name.
pub fn session_cookie(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-limen_session"
    } else {
        "limen_session"
    }
}

/// The login form's double-submit anti-forgery cookie (there is no session yet).
pub fn login_csrf_cookie(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-limen_csrf"
    } else {
        "limen_csrf"
    }
}

/// A `Set-Cookie` value: host-only, whole site, never readable by scripts, not sent on
/// cross-site posts; `None` as the value deletes the cookie.
pub fn set_cookie(state: &AppState, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A form post may come only from the provider's own pages: an `Origin` header, when the
/// browser sends one, must be the issuer's origin.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let issuer = issuer(state);
    let scheme_end = issuer.find("://").map_or(0, |i| i + 3);
    let host_end = issuer[scheme_end..]
        .find('/')
        .map_or(issuer.len(), |i| scheme_end + i);
    origin == &issuer[..host_end]
}

/// Compares two anti-forgery tokens in constant time.
pub fn tokens_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
