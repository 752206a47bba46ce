//! The AWS request signatures Keystone checks for EC2 and S3 credentials: EC2 signature
//! versions 0, 1, 2 and 4 (as `keystoneclient.contrib.ec2.utils.Ec2Signer` computes them)
//! and the S3 string-to-sign signatures (v1 HMAC-SHA1, v4). Pure functions: a secret and
//! a request in, the expected signature out.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum SignatureError {
    #[error("Unknown signature version: {0}")]
    UnknownVersion(String),
    #[error("Unexpected signature format")]
    UnexpectedFormat,
    #[error("the signed request lacks {0}")]
    Missing(&'static str),
    #[error("Request date mismatch error")]
    DateMismatch,
    #[error("Invalid EC2 signature.")]
    Invalid,
}

/// An EC2 API request as an EC2 front end forwards it to `/v3/ec2tokens`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ec2Request {
    pub host: String,
    pub verb: String,
    pub path: String,
    /// Query or form parameters, values as text.
    pub params: BTreeMap<String, String>,
    /// Request headers with their names as sent (v4 only).
    pub headers: BTreeMap<String, String>,
    /// Hex SHA-256 of the request body (v4 only).
    pub body_hash: Option<String>,
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

use crate::percent::encode as quote;

/// The sorted, encoded query string signature versions 2 and 4 sign.
fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn param<'a>(
    params: &'a BTreeMap<String, String>,
    k: &'static str,
) -> Result<&'a str, SignatureError> {
    params
        .get(k)
        .map(String::as_str)
        .ok_or(SignatureError::Missing(k))
}

/// The signature the request should carry, signed with `secret`.
pub fn ec2_signature(secret: &str, req: &Ec2Request) -> Result<String, SignatureError> {
    let key = secret.as_bytes();
    match req.params.get("SignatureVersion").map(String::as_str) {
        Some("0") => {
            let s = format!(
                "{}{}",
                param(&req.params, "Action")?,
                param(&req.params, "Timestamp")?
            );
            Ok(b64(&hmac_sha1(key, s.as_bytes())))
        }
        Some("1") => {
            let mut keys: Vec<&String> = req.params.keys().collect();
            keys.sort_by_key(|k| k.to_lowercase());
            let mut msg = Vec::new();
            for k in keys {
                msg.extend_from_slice(k.as_bytes());
                msg.extend_from_slice(req.params[k].as_bytes());
            }
            Ok(b64(&hmac_sha1(key, &msg)))
        }
        Some("2") => {
            // The signer always signs as HmacSHA256, whatever the request said.
            let mut params = req.params.clone();
            params.insert("SignatureMethod".into(), "HmacSHA256".into());
            let s = format!(
                "{}\n{}\n{}\n{}",
                req.verb,
                req.host,
                req.path,
                canonical_query(&params)
            );
            Ok(b64(&hmac_sha256(key, s.as_bytes())))
        }
        version => {
            if is_v4(req) {
                v4_signature(secret, req)
            } else {
                Err(match version {
                    Some(v) => SignatureError::UnknownVersion(v.to_string()),
                    None => SignatureError::UnexpectedFormat,
                })
            }
        }
    }
}

fn is_v4(req: &Ec2Request) -> bool {
    match req.headers.get("Authorization") {
        Some(a) => a.starts_with("AWS4-HMAC-SHA256"),
        None => req.params.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256"),
    }
}

/// Derives the v4 signing key for a date, region and service.
fn v4_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

fn v4_signature(secret: &str, req: &Ec2Request) -> Result<String, SignatureError> {
    // Auth values come from the Authorization header when there is one, else from the
    // X-Amz-* query parameters.
    let auth_param = |name: &str| -> Option<String> {
        match req.headers.get("Authorization") {
            Some(a) => Some(
                a.split_once(&format!("{name}="))
                    .map(|(_, rest)| rest.split(',').next().unwrap_or("").to_string())
                    .unwrap_or_default(),
            ),
            None => req.params.get(&format!("X-Amz-{name}")).cloned(),
        }
    };
    let signed_headers =
        auth_param("SignedHeaders").ok_or(SignatureError::Missing("SignedHeaders"))?;
    let lower: BTreeMap<String, String> = req
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    // Boto before 2.9.3 signed the host without its port.
    let old_boto = lower.get("user-agent").is_some_and(|ua| {
        let b = ua.as_bytes();
        ua.starts_with("Boto/2.")
            && b.len() >= 10
            && b[7].is_ascii_digit()
            && b[8] == b'.'
            && matches!(b[9], b'0'..=b'2')
    });
    let mut header_lines = String::new();
    for h in signed_headers.split(';') {
        let Some(v) = lower.get(h) else { continue };
        let v = if h == "host" && old_boto {
            v.split(':').next().unwrap_or("")
        } else {
            v.as_str()
        };
        if !header_lines.is_empty() {
            header_lines.push('\n');
        }
        header_lines.push_str(&format!("{h}:{v}"));
    }
    header_lines.push('\n');
    let query = if req.verb.eq_ignore_ascii_case("POST") {
        String::new()
    } else {
        canonical_query(&req.params)
    };
    let body_hash = req
        .body_hash
        .as_deref()
        .ok_or(SignatureError::Missing("body_hash"))?;
    let canonical = [
        req.verb.to_uppercase().as_str(),
        &req.path,
        &query,
        &header_lines,
        &signed_headers,
        body_hash,
    ]
    .join("\n");
    let credential = auth_param("Credential").ok_or(SignatureError::Missing("Credential"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() < 4 {
        return Err(SignatureError::Missing("Credential"));
    }
    let date = v4_request_date(req).ok_or(SignatureError::Missing("X-Amz-Date"))?;
    if !date.starts_with(parts[1]) {
        return Err(SignatureError::DateMismatch);
    }
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        parts[1..].join("/"),
        sha256_hex(canonical.as_bytes())
    );
    let key = v4_key(secret, parts[1], parts[2], parts[3]);
    Ok(hex::encode(hmac_sha256(&key, to_sign.as_bytes())))
}

/// The request date a v4 signature signs (its string to sign carries it): the
/// `X-Amz-Date` header, or for a query-signed request the `X-Amz-Date` parameter.
fn v4_request_date(req: &Ec2Request) -> Option<&str> {
    req.headers
        .get("X-Amz-Date")
        .or_else(|| req.params.get("X-Amz-Date"))
        .map(String::as_str)
}

/// A time a signature covers, as the request wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignedTime<'a> {
    /// When the request was signed, ISO 8601: `Timestamp`, `X-Amz-Date`, the date of an
    /// S3 v4 string to sign.
    Signed(&'a str),
    /// When the request was signed, as an HTTP date: the `Date` or `x-amz-date` of an
    /// S3 v1 string to sign.
    SignedHttpDate(&'a str),
    /// The deadline the signer set, ISO 8601: the EC2 `Expires` parameter.
    Expires(&'a str),
    /// The deadline the signer set, in seconds since the epoch: the `Expires` of a
    /// query-signed S3 v1 request, which stands where the date is.
    ExpiresEpoch(&'a str),
}

/// The times the signature of an EC2 request covers, from the same parts
/// [`ec2_signature`] signs for the request's version: never an unsigned parameter.
/// Version 0 signs only `Action` and `Timestamp`; versions 1 and 2 sign every parameter,
/// and need `Timestamp` or `Expires`; version 4 signs its `X-Amz-Date` (whose day the
/// credential scope must name) but, for a POST, none of the parameters.
pub fn ec2_signed_times(req: &Ec2Request) -> Result<Vec<SignedTime<'_>>, SignatureError> {
    match req.params.get("SignatureVersion").map(String::as_str) {
        Some("0") => Ok(vec![SignedTime::Signed(param(&req.params, "Timestamp")?)]),
        Some("1" | "2") => {
            let times: Vec<SignedTime<'_>> = [
                req.params
                    .get("Timestamp")
                    .map(|t| SignedTime::Signed(t.as_str())),
                req.params
                    .get("Expires")
                    .map(|t| SignedTime::Expires(t.as_str())),
            ]
            .into_iter()
            .flatten()
            .collect();
            if times.is_empty() {
                return Err(SignatureError::Missing("Timestamp"));
            }
            Ok(times)
        }
        version => {
            if is_v4(req) {
                let date = v4_request_date(req).ok_or(SignatureError::Missing("X-Amz-Date"))?;
                Ok(vec![SignedTime::Signed(date)])
            } else {
                Err(match version {
                    Some(v) => SignatureError::UnknownVersion(v.to_string()),
                    None => SignatureError::UnexpectedFormat,
                })
            }
        }
    }
}

/// The time an S3 string to sign carries. Version 4: its second line, whose day the
/// credential scope on the third line must name. Version 1: the `x-amz-date` among its
/// canonical headers when there is one (S3 then ignores `Date`), else its `Date` line,
/// which for a query-signed request holds the `Expires` epoch seconds.
pub fn s3_signed_time(string_to_sign: &[u8]) -> Result<SignedTime<'_>, SignatureError> {
    let text = std::str::from_utf8(string_to_sign).map_err(|_| SignatureError::Invalid)?;
    let lines: Vec<&str> = text.split('\n').collect();
    if text.starts_with("AWS4") {
        let (Some(date), Some(scope)) = (lines.get(1), lines.get(2)) else {
            return Err(SignatureError::Invalid);
        };
        let scope_day = scope.split('/').next().unwrap_or("");
        if scope_day.len() != 8 || !date.starts_with(scope_day) {
            return Err(SignatureError::DateMismatch);
        }
        return Ok(SignedTime::Signed(date));
    }
    // VERB, Content-MD5, Content-Type, Date, canonical x-amz headers..., resource.
    if lines.len() < 5 {
        return Err(SignatureError::Missing("Date"));
    }
    let amz_date = lines[4..lines.len() - 1]
        .iter()
        .find_map(|l| l.strip_prefix("x-amz-date:"));
    if let Some(d) = amz_date {
        return Ok(SignedTime::SignedHttpDate(d.trim()));
    }
    let date = lines[3].trim();
    if date.is_empty() {
        Err(SignatureError::Missing("Date"))
    } else if date.bytes().all(|b| b.is_ascii_digit()) {
        Ok(SignedTime::ExpiresEpoch(date))
    } else {
        Ok(SignedTime::SignedHttpDate(date))
    }
}

/// The signature of an S3 request whose string to sign the S3 front end sends (decoded
/// from its base64url `token`).
pub fn s3_signature(secret: &str, string_to_sign: &[u8]) -> Result<String, SignatureError> {
    if !string_to_sign.starts_with(b"AWS4") {
        return Ok(b64(&hmac_sha1(secret.as_bytes(), string_to_sign)));
    }
    let parts: Vec<&[u8]> = string_to_sign.split(|b| *b == b'\n').collect();
    if parts.len() != 4 || parts[0] != b"AWS4-HMAC-SHA256" {
        return Err(SignatureError::Invalid);
    }
    let scope: Vec<&[u8]> = parts[2].split(|b| *b == b'/').collect();
    if scope.len() != 4 || scope[3] != b"aws4_request" {
        return Err(SignatureError::Invalid);
    }
    if ![&b"s3"[..], b"iam", b"sts"].contains(&scope[2]) {
        return Err(SignatureError::Invalid);
    }
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope[0]);
    let k = hmac_sha256(&k, scope[1]);
    let k = hmac_sha256(&k, scope[2]);
    let k = hmac_sha256(&k, b"aws4_request");
    Ok(hex::encode(hmac_sha256(&k, string_to_sign)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The expected values below were computed with keystoneclient's Ec2Signer.
    #[test]
    fn v2_matches_keystoneclient() {
        let req = Ec2Request {
            host: "localhost:8773".into(),
            verb: "GET".into(),
            path: "/".into(),
            params: params(&[
                ("Action", "DescribeInstances"),
                ("AWSAccessKeyId", "AKIDEXAMPLE"),
                ("SignatureVersion", "2"),
                ("SignatureMethod", "HmacSHA256"),
                ("Timestamp", "2025-01-01T00:00:00Z"),
            ]),
            ..Default::default()
        };
        assert_eq!(
            ec2_signature("secretkey", &req).unwrap(),
            "eUCAPv57DwdI7xbk4AAIoBQstB4VPAvS8cAXWSXSxH8="
        );
    }

    #[test]
    fn v1_matches_keystoneclient() {
        let req = Ec2Request {
            params: params(&[
                ("SignatureVersion", "1"),
                ("Action", "DescribeInstances"),
                ("AWSAccessKeyId", "AKIDEXAMPLE"),
            ]),
            ..Default::default()
        };
        assert_eq!(
            ec2_signature("secretkey", &req).unwrap(),
            "6VPr2fO3BR5v+acwaIFDg0Nfd1c="
        );
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn v4_header_matches_keystoneclient() {
        let req = Ec2Request {
            host: "localhost:8773".into(),
            verb: "GET".into(),
            path: "/".into(),
            params: params(&[("Action", "DescribeInstances"), ("Version", "2016-11-15")]),
            headers: params(&[
                ("Host", "localhost:8773"),
                ("X-Amz-Date", "20250101T000000Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/RegionOne/ec2/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=x",
                ),
            ]),
            body_hash: Some(EMPTY_SHA256.into()),
        };
        assert_eq!(
            ec2_signature("secretkey", &req).unwrap(),
            "87d632db78acae40494f51fe17a98cf3ff4a3ce013a22e4443fdf00b30c13836"
        );
    }

    #[test]
    fn v4_query_matches_keystoneclient() {
        let mut req = Ec2Request {
            host: "localhost:8773".into(),
            verb: "GET".into(),
            path: "/".into(),
            params: params(&[
                ("Action", "DescribeInstances"),
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                (
                    "X-Amz-Credential",
                    "AKIDEXAMPLE/20250101/RegionOne/ec2/aws4_request",
                ),
                ("X-Amz-SignedHeaders", "host"),
                ("X-Amz-Date", "20250101T000000Z"),
            ]),
            headers: params(&[("Host", "localhost:8773")]),
            body_hash: Some(EMPTY_SHA256.into()),
        };
        assert_eq!(
            ec2_signature("secretkey", &req).unwrap(),
            "544b6d6ea4ce7fc286c31343b1da8dee6593832ef07893cd08ed4f30ae8c87a3"
        );
        req.params
            .insert("X-Amz-Date".into(), "20250102T000000Z".into());
        assert_eq!(
            ec2_signature("secretkey", &req),
            Err(SignatureError::DateMismatch)
        );
    }

    // Computed with Keystone's own s3tokens functions.
    #[test]
    fn s3_matches_keystone() {
        assert_eq!(
            s3_signature(
                "secretkey",
                b"GET\n\n\nTue, 01 Jan 2025 00:00:00 GMT\n/bucket/key"
            )
            .unwrap(),
            "FsaLPkXSYqPyX5/KlxmmmK7aRVM="
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/us-east-1/s3/aws4_request\n{}",
            sha256_hex(b"x")
        );
        assert_eq!(
            s3_signature("secretkey", sts.as_bytes()).unwrap(),
            "3e2fa7f2639f5c0849a79d76ddd4712121bb52f638fc8d15d231fcc4cb4e4065"
        );
    }

    #[test]
    fn unknown_formats_are_errors() {
        let mut req = Ec2Request::default();
        assert_eq!(
            ec2_signature("s", &req),
            Err(SignatureError::UnexpectedFormat)
        );
        req.params = params(&[("SignatureVersion", "3")]);
        assert_eq!(
            ec2_signature("s", &req),
            Err(SignatureError::UnknownVersion("3".into()))
        );
        req.params = params(&[("SignatureVersion", "0")]);
        assert_eq!(
            ec2_signature("s", &req),
            Err(SignatureError::Missing("Action"))
        );
    }

    #[test]
    fn ec2_times_come_from_what_is_signed() {
        let mut req = Ec2Request {
            verb: "POST".into(),
            params: params(&[
                ("Timestamp", "2030-01-01T00:00:00Z"),
                ("Expires", "2031-01-01T00:00:00Z"),
                ("X-Amz-Date", "20300101T000000Z"),
            ]),
            headers: params(&[
                ("X-Amz-Date", "20250101T000000Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=a/20250101/r/ec2/aws4_request",
                ),
            ]),
            ..Default::default()
        };
        // v4: the signed header, whatever the (unsigned) parameters say.
        assert_eq!(
            ec2_signed_times(&req).unwrap(),
            vec![SignedTime::Signed("20250101T000000Z")]
        );
        req.params.insert("SignatureVersion".into(), "2".into());
        assert_eq!(
            ec2_signed_times(&req).unwrap(),
            vec![
                SignedTime::Signed("2030-01-01T00:00:00Z"),
                SignedTime::Expires("2031-01-01T00:00:00Z")
            ]
        );
        req.params.insert("SignatureVersion".into(), "0".into());
        assert_eq!(
            ec2_signed_times(&req).unwrap(),
            vec![SignedTime::Signed("2030-01-01T00:00:00Z")]
        );
        req.params = params(&[("SignatureVersion", "1")]);
        assert_eq!(
            ec2_signed_times(&req),
            Err(SignatureError::Missing("Timestamp"))
        );
    }

    #[test]
    fn s3_times_come_from_the_string_to_sign() {
        assert_eq!(
            s3_signed_time(b"AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/r/s3/aws4_request\nx"),
            Ok(SignedTime::Signed("20250101T000000Z"))
        );
        assert_eq!(
            s3_signed_time(b"AWS4-HMAC-SHA256\n20250101T000000Z\n20240101/r/s3/aws4_request\nx"),
            Err(SignatureError::DateMismatch)
        );
        assert_eq!(
            s3_signed_time(b"GET\n\n\nTue, 01 Jan 2025 00:00:00 GMT\n/b/k"),
            Ok(SignedTime::SignedHttpDate("Tue, 01 Jan 2025 00:00:00 GMT"))
        );
        assert_eq!(
            s3_signed_time(
                b"GET\n\n\n\nx-amz-date:Tue, 01 Jan 2025 00:00:00 GMT\nx-amz-meta:a\n/b/k"
            ),
            Ok(SignedTime::SignedHttpDate("Tue, 01 Jan 2025 00:00:00 GMT"))
        );
        assert_eq!(
            s3_signed_time(b"GET\n\n\n1735689600\n/b/k"),
            Ok(SignedTime::ExpiresEpoch("1735689600"))
        );
        assert_eq!(
            s3_signed_time(b"GET\n\n\n\n/b/k"),
            Err(SignatureError::Missing("Date"))
        );
    }

    #[test]
    fn s3_v4_rejects_bad_scopes() {
        let sts = b"AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/us-east-1/ec2/aws4_request\nabc";
        assert_eq!(s3_signature("s", sts), Err(SignatureError::Invalid));
        let sts = b"AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/us-east-1/s3/aws4_request\nabc";
        assert_eq!(s3_signature("s", sts).unwrap().len(), 64);
    }
}
