//! Bodies of `/v3/ec2tokens` and `/v3/s3tokens`: a signed request as an EC2 or S3 front
//! end forwards it. Keystone never had a schema for these; it reads `credentials`, then
//! `credential`, then `ec2Credentials`, and so does Limen.

use base64::Engine;
use limen_core::delegation::aws_signature::Ec2Request;
use limen_core::delegation::ec2::{SignedCredentials, SignedRequest};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignedBodyError {
    /// No body, or an empty one: 400.
    #[error("request must include a request body")]
    NoBody,
    /// No access key, or a request that cannot be what was signed: 401.
    #[error("EC2 signature not supplied")]
    NotSigned,
}

/// A JSON value as text, the way Python's `str()` shows it (what the signers sign).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn texts(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

fn string(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Reads the body of an ec2tokens (`s3 == false`) or s3tokens request.
pub fn signed_credentials(body: &Value, s3: bool) -> Result<SignedCredentials, SignedBodyError> {
    let top = match body {
        Value::Object(m) if !m.is_empty() => m,
        _ => return Err(SignedBodyError::NoBody),
    };
    let creds = ["credentials", "credential", "ec2Credentials"]
        .iter()
        .filter_map(|k| top.get(*k))
        .find_map(|v| v.as_object().filter(|m| !m.is_empty()));
    let creds = creds.ok_or(SignedBodyError::NotSigned)?;
    let access = string(creds, "access").ok_or(SignedBodyError::NotSigned)?;
    let signature = string(creds, "signature");
    let request = if s3 {
        let token = string(creds, "token").ok_or(SignedBodyError::NotSigned)?;
        let string_to_sign = base64::engine::general_purpose::URL_SAFE
            .decode(token.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()))
            .map_err(|_| SignedBodyError::NotSigned)?;
        SignedRequest::S3 { string_to_sign }
    } else {
        SignedRequest::Ec2(Ec2Request {
            host: string(creds, "host").unwrap_or_default(),
            verb: string(creds, "verb").unwrap_or_default(),
            path: string(creds, "path").unwrap_or_default(),
            params: texts(creds.get("params")),
            headers: texts(creds.get("headers")),
            body_hash: string(creds, "body_hash"),
        })
    };
    Ok(SignedCredentials {
        access,
        signature,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_wrapper_keystone_reads() {
        for key in ["credentials", "credential", "ec2Credentials"] {
            let c = signed_credentials(
                &json!({key: {"access": "a", "signature": "s", "host": "h", "verb": "GET",
                              "path": "/", "params": {"SignatureVersion": 2, "Flag": true}}}),
                false,
            )
            .unwrap();
            assert_eq!(c.access, "a");
            let SignedRequest::Ec2(r) = c.request else {
                panic!("not an EC2 request")
            };
            assert_eq!(r.params["SignatureVersion"], "2");
            assert_eq!(r.params["Flag"], "True");
        }
    }

    #[test]
    fn missing_parts() {
        assert_eq!(
            signed_credentials(&json!({}), false).unwrap_err(),
            SignedBodyError::NoBody
        );
        assert_eq!(
            signed_credentials(&Value::Null, false).unwrap_err(),
            SignedBodyError::NoBody
        );
        assert_eq!(
            signed_credentials(&json!({"credentials": {"signature": "x"}}), false).unwrap_err(),
            SignedBodyError::NotSigned
        );
        assert_eq!(
            signed_credentials(
                &json!({"credentials": {"access": "a", "token": "%%"}}),
                true
            )
            .unwrap_err(),
            SignedBodyError::NotSigned
        );
    }

    #[test]
    fn s3_token_is_base64url() {
        let c = signed_credentials(
            &json!({"credentials": {"access": "a", "signature": "s", "token": "R0VUCi9i"}}),
            true,
        )
        .unwrap();
        let SignedRequest::S3 { string_to_sign } = c.request else {
            panic!("not an S3 request")
        };
        assert_eq!(string_to_sign, b"GET\n/b");
    }
}
