//! The OAuth1 delegation flow on the wire: the `Authorization: OAuth …` header and
//! form-encoded parameters of signed requests, the authorize body, and what Keystone
//! answers (form-encoded token grants, access tokens and their roles).

use crate::render::{self, Links};
use crate::times::iso_z;
use crate::{Invalid, ProtoResult};
use limen_core::delegation::appcred::RoleRef;
use limen_core::delegation::oauth1::{AccessToken, TokenGrant};
use limen_core::model::Role;
use serde_json::{json, Value};

/// Strict percent-decoding (`+` stays `+` unless `plus_is_space`), to UTF-8.
fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn bad_header(detail: &str) -> Invalid {
    Invalid(format!(
        "Expecting to find a valid OAuth Authorization header in request ({detail}). The \
         server could not comply with the request since it is either malformed or otherwise \
         incorrect. The client is assumed to be in error."
    ))
}

/// Splits on commas outside double quotes.
fn split_list(s: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// The protocol parameters of an `Authorization: OAuth …` header (RFC 5849 §3.5.1),
/// decoded, in order; `realm` and parameters not starting with `oauth_` are left out.
/// `Ok(None)` when the header uses another scheme.
pub fn authorization_params(header: &str) -> ProtoResult<Option<Vec<(String, String)>>> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], &header[i..]),
        None => (header, ""),
    };
    if !scheme.eq_ignore_ascii_case("oauth") {
        return Ok(None);
    }
    let mut params = Vec::new();
    for part in split_list(rest).ok_or_else(|| bad_header("unbalanced quotes"))? {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad_header("a parameter without a value"))?;
        let k = decode(k.trim(), false).ok_or_else(|| bad_header("bad percent-encoding"))?;
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(inner) => inner
                .strip_suffix('"')
                .ok_or_else(|| bad_header("unbalanced quotes"))?,
            None => v,
        };
        let v = decode(v, false).ok_or_else(|| bad_header("bad percent-encoding"))?;
        if k.starts_with("oauth_") {
            params.push((k, v));
        }
    }
    Ok(Some(params))
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body), decoded;
/// a name without `=` has the value `""`.
pub fn form_params(s: &str) -> ProtoResult<Vec<(String, String)>> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match (decode(k, true), decode(v, true)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(Invalid(format!(
                    "Invalid request parameters: {p:?} is not form-encoded UTF-8."
                ))),
            }
        })
        .collect()
}

fn invalid_roles(v: &Value, why: &str) -> Invalid {
    Invalid(format!("Invalid input for field 'roles': {v} {why}"))
}

/// The body of `PUT /v3/OS-OAUTH1/authorize/{id}`: `{"roles": [{"id"} | {"name"}, …]}`;
/// no body or no `roles` is no roles.
pub fn authorize_roles(body: Value) -> ProtoResult<Vec<RoleRef>> {
    let roles = match body {
        Value::Null => return Ok(vec![]),
        Value::Object(mut m) => match m.remove("roles") {
            None => return Ok(vec![]),
            Some(r) => r,
        },
        other => return Err(invalid_roles(&other, "is not of type 'object'")),
    };
    let Value::Array(items) = &roles else {
        return Err(invalid_roles(&roles, "is not of type 'array'"));
    };
    items
        .iter()
        .map(|item| {
            let Some(m) = item.as_object().filter(|m| m.len() == 1) else {
                return Err(invalid_roles(
                    item,
                    "is not an object with exactly one of 'id' or 'name'",
                ));
            };
            match (m.get("id"), m.get("name")) {
                (Some(Value::String(id)), None)
                    if !id.is_empty()
                        && id.len() <= 64
                        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
                {
                    Ok(RoleRef::Id(id.clone()))
                }
                (None, Some(Value::String(name)))
                    if !name.is_empty() && name.chars().count() <= 255 =>
                {
                    Ok(RoleRef::Name(name.clone()))
                }
                _ => Err(invalid_roles(item, "is not a valid role reference")),
            }
        })
        .collect()
}

/// The form-encoded body of a request or access token grant (201), as Keystone writes it.
pub fn token_grant(g: &TokenGrant) -> String {
    let mut s = format!("oauth_token={}&oauth_token_secret={}", g.key, g.secret);
    if let Some(e) = g.expires_at {
        s.push_str(&format!("&oauth_expires_at={}", iso_z(e)));
    }
    s
}

/// An access token of `GET /v3/users/{id}/OS-OAUTH1/access_tokens[/{id}]` (no secret).
pub fn access_token(l: &Links, at: &AccessToken) -> Value {
    let path = format!(
        "users/{}/OS-OAUTH1/access_tokens/{}",
        at.authorizing_user_id, at.id
    );
    json!({
        "id": at.id,
        "authorizing_user_id": at.authorizing_user_id,
        "project_id": at.project_id,
        "consumer_id": at.consumer_id,
        "expires_at": at.expires_at().map(iso_z),
        "links": {"roles": l.url(&format!("{path}/roles")), "self": l.url(&path)},
    })
}

/// A delegated role: the role without its description (Keystone's shape).
pub fn access_token_role(l: &Links, r: &Role) -> Value {
    let mut v = render::role(l, r);
    if let Some(m) = v.as_object_mut() {
        m.remove("description");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let h = r#"OAuth realm="x", oauth_nonce="123", oauth_signature="ab%2Bc%3D", oauth_token="t",other="y""#;
        let p = authorization_params(h).unwrap().unwrap();
        assert_eq!(
            p,
            vec![
                ("oauth_nonce".to_string(), "123".to_string()),
                ("oauth_signature".to_string(), "ab+c=".to_string()),
                ("oauth_token".to_string(), "t".to_string()),
            ]
        );
        assert_eq!(authorization_params("Basic YWJj").unwrap(), None);
        assert_eq!(authorization_params("oauth").unwrap(), Some(vec![]));
        assert!(authorization_params(r#"OAuth oauth_nonce="1"#).is_err());
        assert!(authorization_params(r#"OAuth oauth_nonce"#).is_err());
        assert!(authorization_params(r#"OAuth oauth_nonce="%zz""#).is_err());
        assert!(authorization_params(r#"OAuth oauth_nonce="%ff""#).is_err());
    }

    #[test]
    fn forms() {
        assert_eq!(
            form_params("a=b+c&nocatalog&x=%41").unwrap(),
            vec![
                ("a".to_string(), "b c".to_string()),
                ("nocatalog".to_string(), String::new()),
                ("x".to_string(), "A".to_string()),
            ]
        );
        assert!(form_params("a=%4").is_err());
    }

    #[test]
    fn roles() {
        assert_eq!(authorize_roles(Value::Null).unwrap(), vec![]);
        assert_eq!(authorize_roles(json!({})).unwrap(), vec![]);
        assert_eq!(
            authorize_roles(json!({"roles": [{"id": "abc"}, {"name": "member"}]})).unwrap(),
            vec![RoleRef::Id("abc".into()), RoleRef::Name("member".into())]
        );
        for bad in [
            json!({"roles": null}),
            json!({"roles": {"id": "x"}}),
            json!({"roles": [{"id": "x", "name": "y"}]}),
            json!({"roles": [{}]}),
            json!({"roles": [{"id": ""}]}),
            json!({"roles": [{"id": "a b"}]}),
            json!({"roles": [{"id": 3}]}),
            json!({"roles": [{"other": "x"}]}),
            json!({"roles": ["x"]}),
        ] {
            assert!(authorize_roles(bad.clone()).is_err(), "{bad}");
        }
    }
}
