//! RFC 5849 request signatures: the signature base string, HMAC signing, and the protocol
//! checks a signed request passes before its signature is looked at (oauthlib's checks,
//! as Keystone configures them).

use base64::Engine;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How far a request's `oauth_timestamp` may be from the server's clock, in seconds
/// (oauthlib's `timestamp_lifetime`).
pub const TIMESTAMP_LIFETIME: i64 = 600;

/// A request signed by an OAuth1 client, as the HTTP layer received it.
#[derive(Debug, Clone, Default)]
pub struct SignedRequest {
    /// The HTTP method.
    pub method: String,
    /// The URIs the client may have signed (scheme, host, port and path): the signature
    /// must match one of them.
    pub uris: Vec<String>,
    /// The protocol parameters of the `Authorization: OAuth …` header, decoded, in order;
    /// `realm` is left out.
    pub oauth: Vec<(String, String)>,
    /// The other request parameters: the query string and a form-encoded body, decoded.
    pub params: Vec<(String, String)>,
}

impl SignedRequest {
    /// A protocol parameter of the Authorization header (the first, if repeated).
    pub fn oauth_param(&self, name: &str) -> Option<&str> {
        self.oauth
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A signature method Limen verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

/// Why a signed request was refused before its signature was checked: an OAuth error
/// code (`invalid_request`, `invalid_signature_method`) and its description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Validation failed with errors: {error}, detail message is: {description}.")]
pub struct ProtocolError {
    pub error: &'static str,
    pub description: String,
}

fn invalid(description: impl Into<String>) -> ProtocolError {
    ProtocolError {
        error: "invalid_request",
        description: description.into(),
    }
}

/// RFC 5849 §3.6 percent-encoding.
pub use crate::percent::encode;

/// The base string URI of RFC 5849 §3.4.1.2: scheme and host in lower case, the port only
/// when it is not the scheme's default, the path (`/` when empty), no query or fragment.
/// `None` for something that is not an absolute http(s) URI.
pub fn normalize_uri(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // No user information in a base string URI.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match port {
        Some(p) if !p.is_empty() && p != default_port => format!("{scheme}://{host}:{p}{path}"),
        _ => format!("{scheme}://{host}{path}"),
    })
}

/// The signature base string (RFC 5849 §3.4.1): method, base string URI and the
/// normalized parameters (all but `oauth_signature`, encoded, sorted by name then value).
pub fn base_string(method: &str, normalized_uri: &str, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| *k != "oauth_signature")
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    let normalized = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(normalized_uri),
        encode(&normalized)
    )
}

/// The base64 HMAC signature of `base` under `consumer_secret&token_secret`.
pub fn sign(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base: &str,
) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let digest = match method {
        SignatureMethod::HmacSha1 => {
            let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()) else {
                return String::new();
            };
            mac.update(base.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
                return String::new();
            };
            mac.update(base.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Whether the request carries the signature the secrets give for one of its URIs. The
/// comparison takes the same time wherever the strings differ.
pub fn verify(req: &SignedRequest, consumer_secret: &str, token_secret: &str) -> bool {
    let (Some(given), Some(method)) = (
        req.oauth_param("oauth_signature"),
        req.oauth_param("oauth_signature_method")
            .and_then(SignatureMethod::parse),
    ) else {
        return false;
    };
    let params: Vec<(&str, &str)> = req
        .oauth
        .iter()
        .chain(req.params.iter())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut ok = false;
    for uri in &req.uris {
        let Some(uri) = normalize_uri(uri) else {
            continue;
        };
        let expected = sign(
            method,
            consumer_secret,
            token_secret,
            &base_string(&req.method, &uri, &params),
        );
        ok |= bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
    }
    ok
}

/// Keystone's ids (and so consumer keys and token keys): 32 lower-case hex characters.
pub fn is_key(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The checks every signed request passes (oauthlib's `_check_mandatory_parameters`):
/// the mandatory parameters are there once each and only in the header, the signature
/// method is supported, the version is 1.0, the timestamp is within
/// [`TIMESTAMP_LIFETIME`] of `now`, and the key and nonce are well-formed.
pub fn check_protocol(req: &SignedRequest, now: OffsetDateTime) -> Result<(), ProtocolError> {
    let mut seen: Vec<&str> = Vec::new();
    for (k, _) in &req.oauth {
        if seen.contains(&k.as_str()) {
            return Err(invalid("Duplicate OAuth1 entries."));
        }
        seen.push(k);
    }
    if req.params.iter().any(|(k, _)| k.starts_with("oauth_")) {
        return Err(invalid(
            "oauth_ params must come from only 1 signature type but were found in header, query",
        ));
    }
    let mandatory = [
        "oauth_signature",
        "oauth_consumer_key",
        "oauth_nonce",
        "oauth_timestamp",
        "oauth_signature_method",
    ];
    if mandatory
        .iter()
        .any(|m| req.oauth_param(m).is_none_or(str::is_empty))
    {
        return Err(invalid("Missing mandatory OAuth parameters."));
    }
    let method = req.oauth_param("oauth_signature_method").unwrap_or("");
    if SignatureMethod::parse(method).is_none() {
        return Err(ProtocolError {
            error: "invalid_signature_method",
            description: format!(
                "Invalid signature, {method} not in ['HMAC-SHA1', 'HMAC-SHA256']."
            ),
        });
    }
    if req.oauth_param("oauth_version").is_some_and(|v| v != "1.0") {
        return Err(invalid("Invalid OAuth version."));
    }
    let ts = req.oauth_param("oauth_timestamp").unwrap_or("");
    if ts.len() != 10 {
        return Err(invalid("Invalid timestamp size"));
    }
    let ts: i64 = ts
        .parse()
        .map_err(|_| invalid("Timestamp must be an integer."))?;
    if (now.unix_timestamp() - ts).abs() > TIMESTAMP_LIFETIME {
        return Err(invalid(format!(
            "Timestamp given is invalid, differ from allowed by over {TIMESTAMP_LIFETIME} seconds."
        )));
    }
    if !is_key(req.oauth_param("oauth_consumer_key").unwrap_or("")) {
        return Err(invalid("Invalid client key format."));
    }
    let nonce = req.oauth_param("oauth_nonce").unwrap_or("");
    if nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("Invalid nonce format."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let n = |s| normalize_uri(s);
        assert_eq!(
            n("HTTP://Example.COM:80/r%20v/X?id=123").as_deref(),
            Some("http://example.com/r%20v/X")
        );
        assert_eq!(
            n("https://www.example.net:8080/?q=1").as_deref(),
            Some("https://www.example.net:8080/")
        );
        assert_eq!(n("https://h:443").as_deref(), Some("https://h/"));
        assert_eq!(
            n("http://[::1]:5000/v3").as_deref(),
            Some("http://[::1]:5000/v3")
        );
        assert_eq!(n("ftp://h/x"), None);
        assert_eq!(n("http://h:x/"), None);
        assert_eq!(n("http:///x"), None);
    }

    /// The worked example of RFC 5849 §1.2 (temporary credentials request).
    #[test]
    fn rfc_example() {
        let params = [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131200"),
            ("oauth_nonce", "wIjqoS"),
            ("oauth_callback", "http://printer.example.com/ready"),
        ];
        let base = base_string(
            "post",
            &normalize_uri("https://photos.example.net/initiate").unwrap(),
            &params,
        );
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fphotos.example.net%2Finitiate&oauth_callback%3Dhttp%253A%252F%252Fprinter.example.com%252Fready%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DwIjqoS%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131200"
        );
        assert_eq!(
            sign(SignatureMethod::HmacSha1, "kd94hf93k423kf44", "", &base),
            "74KNZJeDHnMBp0EMJ9ZHt/XKycU="
        );
    }

    fn request(ts: i64) -> SignedRequest {
        let oauth: Vec<(String, String)> = [
            ("oauth_nonce", "1234"),
            ("oauth_timestamp", &ts.to_string()),
            ("oauth_version", "1.0"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_consumer_key", "0123456789abcdef0123456789abcdef"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut r = SignedRequest {
            method: "POST".into(),
            uris: vec!["http://127.0.0.1:5000/v3/OS-OAUTH1/request_token".into()],
            oauth,
            params: vec![("x".into(), "a b".into())],
        };
        let params: Vec<(&str, &str)> = r
            .oauth
            .iter()
            .chain(r.params.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let base = base_string("POST", &normalize_uri(&r.uris[0]).unwrap(), &params);
        let sig = sign(SignatureMethod::HmacSha1, "cs", "ts", &base);
        r.oauth.push(("oauth_signature".into(), sig));
        r
    }

    #[test]
    fn verification() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let r = request(1_800_000_000);
        assert!(verify(&r, "cs", "ts"));
        assert!(!verify(&r, "cs", "other"));
        assert!(!verify(&r, "other", "ts"));
        let mut moved = r.clone();
        moved.uris = vec!["http://127.0.0.1:5001/v3/OS-OAUTH1/request_token".into()];
        assert!(!verify(&moved, "cs", "ts"));
        moved.uris.push(r.uris[0].clone());
        assert!(verify(&moved, "cs", "ts"));
        let mut tampered = r.clone();
        tampered.params[0].1 = "a c".into();
        assert!(!verify(&tampered, "cs", "ts"));
        assert_eq!(check_protocol(&r, now), Ok(()));
    }

    #[test]
    fn protocol_checks() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let desc = |r: &SignedRequest| check_protocol(r, now).err().map(|e| e.description);
        let old = request(1_800_000_000 - 601);
        assert_eq!(
            desc(&old).as_deref(),
            Some("Timestamp given is invalid, differ from allowed by over 600 seconds.")
        );
        let mut r = request(1_800_000_000);
        r.oauth.retain(|(k, _)| k != "oauth_nonce");
        assert_eq!(
            desc(&r).as_deref(),
            Some("Missing mandatory OAuth parameters.")
        );
        let mut r = request(1_800_000_000);
        r.oauth.push(("oauth_nonce".into(), "9".into()));
        assert_eq!(desc(&r).as_deref(), Some("Duplicate OAuth1 entries."));
        let mut r = request(1_800_000_000);
        r.params.push(("oauth_token".into(), "x".into()));
        assert!(desc(&r).is_some());
        let mut r = request(1_800_000_000);
        for p in r.oauth.iter_mut() {
            if p.0 == "oauth_signature_method" {
                p.1 = "PLAINTEXT".into();
            }
        }
        let e = check_protocol(&r, now).unwrap_err();
        assert_eq!(e.error, "invalid_signature_method");
        let mut r = request(1_800_000_000);
        for p in r.oauth.iter_mut() {
            if p.0 == "oauth_version" {
                p.1 = "2.0".into();
            }
        }
        assert_eq!(desc(&r).as_deref(), Some("Invalid OAuth version."));
        let mut r = request(1_800_000_000);
        for p in r.oauth.iter_mut() {
            if p.0 == "oauth_consumer_key" {
                p.1 = "nosuch".into();
            }
        }
        assert_eq!(desc(&r).as_deref(), Some("Invalid client key format."));
        assert_eq!(
            check_protocol(&r, now).unwrap_err().to_string(),
            "Validation failed with errors: invalid_request, detail message is: Invalid client key format.."
        );
    }
}
