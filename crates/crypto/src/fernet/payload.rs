//! Keystone's Fernet payloads: msgpack of `(version, *fields)`.
//!
//! Encoding writes exactly what Python Keystone writes (msgpack with the bin type); decoding
//! accepts every payload version Keystone defines, including older tokens that carry ids
//! packed as str.

use limen_core::token::{FederatedScope, ReceiptPayload, TokenPayload, TokenScope};
use rmpv::Value;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    #[error("unknown payload version {0}")]
    UnknownVersion(u64),
    #[error("cannot encode: {0}")]
    Unencodable(String),
}

type R<T> = Result<T, PayloadError>;

/// How deep msgpack may nest in a payload, in rmpv's units (about two a level): Keystone's
/// nest three levels (the payload, a list of group ids, an id pair). rmpv's default (1024)
/// recursed deep enough to overflow a 2 MiB thread stack in a debug build (found by the
/// fernet_token fuzz corpus).
const MAX_NESTING: usize = 32;

/// Maps method names to Keystone's bitmask by their position in `[auth] methods`.
#[derive(Debug, Clone)]
pub struct MethodMap {
    methods: Vec<String>,
}

impl MethodMap {
    pub fn new(methods: Vec<String>) -> Self {
        MethodMap { methods }
    }

    pub fn to_int(&self, names: &[String]) -> u64 {
        names.iter().fold(0u64, |acc, n| {
            match self.methods.iter().position(|m| m == n) {
                Some(i) if i < 64 => acc | (1u64 << i),
                _ => acc,
            }
        })
    }

    /// Walks from the highest bit down, as Keystone does.
    pub fn to_names(&self, mut value: u64) -> Vec<String> {
        let mut out = Vec::new();
        for i in (0..self.methods.len().min(64)).rev() {
            let bit = 1u64 << i;
            if value & bit != 0 {
                out.push(self.methods[i].clone());
                value &= !bit;
            }
        }
        out
    }
}

/// Parses an id the way Python's `uuid.UUID(str)` does; `Some(bytes)` if it is a UUID.
pub fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let mut s = id.trim();
    s = s.strip_prefix("urn:").unwrap_or(s);
    s = s.strip_prefix("uuid:").unwrap_or(s);
    let s = s
        .trim_start_matches('{')
        .trim_end_matches('}')
        .replace('-', "");
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- encoding ----

struct Writer(Vec<u8>);

impl Writer {
    fn array(&mut self, n: u32) {
        let _ = rmp::encode::write_array_len(&mut self.0, n);
    }
    fn uint(&mut self, v: u64) {
        let _ = rmp::encode::write_uint(&mut self.0, v);
    }
    fn bin(&mut self, b: &[u8]) {
        let _ = rmp::encode::write_bin(&mut self.0, b);
    }
    fn str(&mut self, s: &str) {
        let _ = rmp::encode::write_str(&mut self.0, s);
    }
    fn f64(&mut self, v: f64) {
        let _ = rmp::encode::write_f64(&mut self.0, v);
    }
    fn bool(&mut self, v: bool) {
        let _ = rmp::encode::write_bool(&mut self.0, v);
    }
    /// Keystone's `attempt_convert_uuid_hex_to_bytes`: `[true, bin16]` or `[false, str]`.
    fn id(&mut self, id: &str) {
        self.array(2);
        match uuid_bytes(id) {
            Some(b) => {
                self.bool(true);
                self.bin(&b);
            }
            None => {
                self.bool(false);
                self.str(id);
            }
        }
    }
    fn expires(&mut self, t: OffsetDateTime) {
        let secs = t.unix_timestamp() as f64 + t.microsecond() as f64 / 1e6;
        self.f64(secs);
    }
    fn audits(&mut self, ids: &[String]) -> R<()> {
        self.array(ids.len() as u32);
        for a in ids {
            self.bin(&audit_bytes(a)?);
        }
        Ok(())
    }
}

fn audit_bytes(a: &str) -> R<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(a.trim_end_matches('='))
        .map_err(|_| PayloadError::Unencodable(format!("audit id {a:?} is not base64url")))
}

fn audit_string(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Serializes a payload exactly as Keystone's `TokenFormatter.create_token` does.
pub fn encode(p: &TokenPayload, methods: &MethodMap) -> R<Vec<u8>> {
    let mut w = Writer(Vec::with_capacity(96));
    let m = methods.to_int(&p.methods);
    match &p.scope {
        TokenScope::Unscoped => {
            w.array(5);
            w.uint(0);
            w.id(&p.user_id);
            w.uint(m);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::Domain { domain_id } => {
            w.array(6);
            w.uint(1);
            w.id(&p.user_id);
            w.uint(m);
            match uuid_bytes(domain_id) {
                Some(b) => w.bin(&b),
                None => w.str(domain_id),
            }
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::Project { project_id } => {
            w.array(6);
            w.uint(2);
            w.id(&p.user_id);
            w.uint(m);
            w.id(project_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::Trust {
            project_id,
            trust_id,
        } => {
            let t = uuid_bytes(trust_id)
                .ok_or_else(|| PayloadError::Unencodable("trust id is not a UUID".into()))?;
            w.array(7);
            w.uint(3);
            w.id(&p.user_id);
            w.uint(m);
            w.id(project_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
            w.bin(&t);
        }
        TokenScope::Federated {
            group_ids,
            idp_id,
            protocol_id,
            scope,
        } => {
            let (version, scope_id) = match scope {
                None => (4, None),
                Some(FederatedScope::Project(id)) => (5, Some(id)),
                Some(FederatedScope::Domain(id)) => (6, Some(id)),
            };
            w.array(if scope_id.is_some() { 9 } else { 8 });
            w.uint(version);
            w.id(&p.user_id);
            w.uint(m);
            if let Some(s) = scope_id {
                w.id(s);
            }
            w.array(group_ids.len() as u32);
            for g in group_ids {
                w.id(g);
            }
            w.id(idp_id);
            w.str(protocol_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::OAuth1 {
            project_id,
            access_token_id,
        } => {
            w.array(7);
            w.uint(7);
            w.id(&p.user_id);
            w.uint(m);
            w.id(project_id);
            w.id(access_token_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::System => {
            w.array(6);
            w.uint(8);
            w.id(&p.user_id);
            w.uint(m);
            w.str(limen_core::model::SYSTEM_ALL);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
        }
        TokenScope::ApplicationCredential {
            project_id,
            app_cred_id,
        } => {
            w.array(7);
            w.uint(9);
            w.id(&p.user_id);
            w.uint(m);
            w.id(project_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
            w.id(app_cred_id);
        }
        TokenScope::OAuth2Mtls {
            project_id,
            domain_id,
            thumbprint,
        } => {
            w.array(8);
            w.uint(10);
            w.id(&p.user_id);
            w.uint(m);
            w.id(project_id);
            w.id(domain_id);
            w.expires(p.expires_at);
            w.audits(&p.audit_ids)?;
            w.array(2);
            w.bool(false);
            w.str(thumbprint);
        }
    }
    Ok(w.0)
}

/// Serializes an MFA receipt as Keystone's `ReceiptFormatter` does:
/// `(user id pair, methods, expires_at)` without a version.
pub fn encode_receipt(r: &ReceiptPayload, methods: &MethodMap) -> R<Vec<u8>> {
    let mut w = Writer(Vec::with_capacity(48));
    w.array(3);
    w.id(&r.user_id);
    w.uint(methods.to_int(&r.methods));
    w.expires(r.expires_at);
    Ok(w.0)
}

// ---- decoding ----

fn text(v: &Value) -> R<String> {
    match v {
        Value::String(s) => s
            .as_str()
            .map(str::to_string)
            .ok_or(PayloadError::Malformed("invalid utf-8 string")),
        Value::Binary(b) => {
            String::from_utf8(b.clone()).map_err(|_| PayloadError::Malformed("invalid utf-8"))
        }
        _ => Err(PayloadError::Malformed("expected a string")),
    }
}

/// `[is_uuid, value]` back to an id string.
fn id(v: &Value) -> R<String> {
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or(PayloadError::Malformed("expected an id pair"))?;
    match (&pair[0], &pair[1]) {
        (Value::Boolean(true), Value::Binary(b)) if b.len() == 16 => Ok(hex(b)),
        (Value::Boolean(true), Value::String(s)) if s.as_bytes().len() == 16 => {
            Ok(hex(s.as_bytes()))
        }
        (Value::Boolean(false), other) => text(other),
        _ => Err(PayloadError::Malformed("bad id pair")),
    }
}

fn raw16_hex(v: &Value) -> R<String> {
    match v {
        Value::Binary(b) if b.len() == 16 => Ok(hex(b)),
        Value::String(s) if s.as_bytes().len() == 16 => Ok(hex(s.as_bytes())),
        _ => Err(PayloadError::Malformed("expected 16 raw bytes")),
    }
}

fn uint(v: &Value) -> R<u64> {
    v.as_u64()
        .ok_or(PayloadError::Malformed("expected an integer"))
}

fn expires(v: &Value) -> R<OffsetDateTime> {
    let secs = match v {
        Value::F64(f) => *f,
        Value::F32(f) => *f as f64,
        other => other
            .as_i64()
            .map(|i| i as f64)
            .ok_or(PayloadError::Malformed("expected a timestamp"))?,
    };
    if !secs.is_finite() {
        return Err(PayloadError::Malformed("timestamp not finite"));
    }
    // A huge float saturates to i128::MAX micros: times 1000 must not overflow.
    let out_of_range = || PayloadError::Malformed("timestamp out of range");
    let nanos = ((secs * 1e6).round() as i128)
        .checked_mul(1000)
        .ok_or_else(out_of_range)?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| out_of_range())
}

fn audits(v: &Value) -> R<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or(PayloadError::Malformed("expected audit ids"))?;
    arr.iter()
        .map(|a| match a {
            Value::Binary(b) => Ok(audit_string(b)),
            Value::String(s) => Ok(audit_string(s.as_bytes())),
            _ => Err(PayloadError::Malformed("bad audit id")),
        })
        .collect()
}

fn groups(v: &Value) -> R<Vec<String>> {
    v.as_array()
        .ok_or(PayloadError::Malformed("expected group ids"))?
        .iter()
        .map(id)
        .collect()
}

/// Parses a payload of any version; `issued_at` is left at the epoch for the caller to set
/// from the Fernet envelope.
pub fn decode(bytes: &[u8], methods: &MethodMap) -> R<TokenPayload> {
    let mut cursor = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_NESTING)
        .map_err(|_| PayloadError::Malformed("not msgpack"))?;
    let a = value
        .as_array()
        .ok_or(PayloadError::Malformed("payload is not an array"))?;
    let version = a
        .first()
        .map(uint)
        .transpose()?
        .ok_or(PayloadError::Malformed("empty"))?;
    let need = |n: usize| {
        if a.len() == n {
            Ok(())
        } else {
            Err(PayloadError::Malformed("wrong number of fields"))
        }
    };
    let user_id = a.get(1).map(id).transpose()?.unwrap_or_default();
    let m = a.get(2).map(uint).transpose()?.unwrap_or(0);
    let (scope, exp_i, audit_i) = match version {
        0 => {
            need(5)?;
            (TokenScope::Unscoped, 3, 4)
        }
        1 => {
            need(6)?;
            let domain_id = match &a[3] {
                Value::Binary(b) if b.len() == 16 => hex(b),
                other => text(other)?,
            };
            (TokenScope::Domain { domain_id }, 4, 5)
        }
        2 => {
            need(6)?;
            (
                TokenScope::Project {
                    project_id: id(&a[3])?,
                },
                4,
                5,
            )
        }
        3 => {
            need(7)?;
            (
                TokenScope::Trust {
                    project_id: id(&a[3])?,
                    trust_id: raw16_hex(&a[6])?,
                },
                4,
                5,
            )
        }
        4 => {
            need(8)?;
            (
                TokenScope::Federated {
                    group_ids: groups(&a[3])?,
                    idp_id: id(&a[4])?,
                    protocol_id: text(&a[5])?,
                    scope: None,
                },
                6,
                7,
            )
        }
        5 | 6 => {
            need(9)?;
            let scope_id = id(&a[3])?;
            (
                TokenScope::Federated {
                    group_ids: groups(&a[4])?,
                    idp_id: id(&a[5])?,
                    protocol_id: text(&a[6])?,
                    scope: Some(if version == 5 {
                        FederatedScope::Project(scope_id)
                    } else {
                        FederatedScope::Domain(scope_id)
                    }),
                },
                7,
                8,
            )
        }
        7 => {
            need(7)?;
            (
                TokenScope::OAuth1 {
                    project_id: id(&a[3])?,
                    access_token_id: id(&a[4])?,
                },
                5,
                6,
            )
        }
        8 => {
            need(6)?;
            let system = text(&a[3])?;
            if system != limen_core::model::SYSTEM_ALL {
                return Err(PayloadError::Malformed("unknown system scope"));
            }
            (TokenScope::System, 4, 5)
        }
        9 => {
            need(7)?;
            (
                TokenScope::ApplicationCredential {
                    project_id: id(&a[3])?,
                    app_cred_id: id(&a[6])?,
                },
                4,
                5,
            )
        }
        10 => {
            need(8)?;
            (
                TokenScope::OAuth2Mtls {
                    project_id: id(&a[3])?,
                    domain_id: id(&a[4])?,
                    thumbprint: id(&a[7])?,
                },
                5,
                6,
            )
        }
        v => return Err(PayloadError::UnknownVersion(v)),
    };
    Ok(TokenPayload {
        user_id,
        methods: methods.to_names(m),
        scope,
        expires_at: expires(&a[exp_i])?,
        audit_ids: audits(&a[audit_i])?,
        issued_at: OffsetDateTime::UNIX_EPOCH,
    })
}

/// Parses a receipt payload; `issued_at` is left for the caller to set.
pub fn decode_receipt(bytes: &[u8], methods: &MethodMap) -> R<ReceiptPayload> {
    let mut cursor = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_NESTING)
        .map_err(|_| PayloadError::Malformed("not msgpack"))?;
    let a = value
        .as_array()
        .filter(|a| a.len() == 3)
        .ok_or(PayloadError::Malformed("a receipt is a 3-array"))?;
    Ok(ReceiptPayload {
        user_id: id(&a[0])?,
        methods: methods.to_names(uint(&a[1])?),
        expires_at: expires(&a[2])?,
        issued_at: OffsetDateTime::UNIX_EPOCH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::config::default_auth_methods;
    use time::macros::datetime;

    fn map() -> MethodMap {
        MethodMap::new(default_auth_methods())
    }

    #[test]
    fn methods_walk_from_highest_bit() {
        let m = map();
        assert_eq!(m.to_int(&["password".into()]), 2);
        assert_eq!(m.to_int(&["password".into(), "token".into()]), 6);
        assert_eq!(m.to_names(6), vec!["token", "password"]);
        assert_eq!(m.to_int(&["nonsense".into()]), 0);
    }

    #[test]
    fn python_uuid_parsing() {
        assert!(uuid_bytes("0123456789abcdef0123456789abcdef").is_some());
        assert!(uuid_bytes("01234567-89ab-cdef-0123-456789ABCDEF").is_some());
        assert!(uuid_bytes("{01234567-89ab-cdef-0123-456789abcdef}").is_some());
        assert!(uuid_bytes("default").is_none());
        assert!(uuid_bytes("0123456789abcdef0123456789abcdeg").is_none());
    }

    #[test]
    fn project_payload_bytes_match_keystone() {
        // msgpack.packb((2, (True, b'\x01'*16), 2, (True, b'\x02'*16), 1700000000.0, [b'\x03'*16]))
        let p = TokenPayload {
            user_id: "01010101010101010101010101010101".into(),
            methods: vec!["password".into()],
            scope: TokenScope::Project {
                project_id: "02020202020202020202020202020202".into(),
            },
            expires_at: datetime!(2023-11-14 22:13:20 UTC),
            audit_ids: vec![audit_string(&[3u8; 16])],
            issued_at: OffsetDateTime::UNIX_EPOCH,
        };
        let bytes = encode(&p, &map()).unwrap();
        let mut expect = vec![0x96, 0x02, 0x92, 0xc3, 0xc4, 0x10];
        expect.extend([1u8; 16]);
        expect.push(0x02);
        expect.extend([0x92, 0xc3, 0xc4, 0x10]);
        expect.extend([2u8; 16]);
        expect.push(0xcb);
        expect.extend(1_700_000_000f64.to_be_bytes());
        expect.extend([0x91, 0xc4, 0x10]);
        expect.extend([3u8; 16]);
        assert_eq!(bytes, expect);
        let back = decode(&bytes, &map()).unwrap();
        assert_eq!(back.scope, p.scope);
        assert_eq!(back.user_id, p.user_id);
        assert_eq!(back.expires_at, p.expires_at);
        assert_eq!(back.audit_ids, p.audit_ids);
        assert_eq!(back.methods, p.methods);
    }

    #[test]
    fn every_version_round_trips() {
        let base = TokenPayload {
            user_id: "admin-not-a-uuid".into(),
            methods: vec!["token".into(), "password".into()],
            scope: TokenScope::Unscoped,
            expires_at: datetime!(2030-01-01 00:00:00.5 UTC),
            audit_ids: vec![
                "AAAAAAAAAAAAAAAAAAAAAA".into(),
                "BBBBBBBBBBBBBBBBBBBBBA".into(),
            ],
            issued_at: OffsetDateTime::UNIX_EPOCH,
        };
        let u = "0123456789abcdef0123456789abcdef".to_string();
        let scopes = vec![
            TokenScope::Unscoped,
            TokenScope::Domain {
                domain_id: "default".into(),
            },
            TokenScope::Domain {
                domain_id: u.clone(),
            },
            TokenScope::Project {
                project_id: u.clone(),
            },
            TokenScope::Trust {
                project_id: u.clone(),
                trust_id: u.clone(),
            },
            TokenScope::Federated {
                group_ids: vec![u.clone(), "g2".into()],
                idp_id: "idp".into(),
                protocol_id: "openid".into(),
                scope: None,
            },
            TokenScope::Federated {
                group_ids: vec![],
                idp_id: u.clone(),
                protocol_id: "saml2".into(),
                scope: Some(FederatedScope::Project(u.clone())),
            },
            TokenScope::Federated {
                group_ids: vec![],
                idp_id: u.clone(),
                protocol_id: "saml2".into(),
                scope: Some(FederatedScope::Domain("default".into())),
            },
            TokenScope::OAuth1 {
                project_id: u.clone(),
                access_token_id: u.clone(),
            },
            TokenScope::System,
            TokenScope::ApplicationCredential {
                project_id: u.clone(),
                app_cred_id: u.clone(),
            },
            TokenScope::OAuth2Mtls {
                project_id: u.clone(),
                domain_id: "default".into(),
                thumbprint: "thumb".into(),
            },
        ];
        for scope in scopes {
            let p = TokenPayload {
                scope: scope.clone(),
                ..base.clone()
            };
            let back = decode(&encode(&p, &map()).unwrap(), &map()).unwrap();
            assert_eq!(back.scope, scope);
            assert_eq!(back.user_id, p.user_id);
            assert_eq!(back.expires_at, p.expires_at);
            assert_eq!(back.audit_ids, p.audit_ids);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x90",
            b"\x91\x63",
            b"\x95\x00\xc0\xc0\xc0\xc0",
            b"\xff\xff",
        ] {
            assert!(decode(bytes, &map()).is_err());
        }
    }

    /// Found by fuzzing (fuzz/corpus/fernet_token): an expiry of 1e300 seconds overflowed
    /// the conversion to nanoseconds (a panic with overflow checks, garbage without).
    #[test]
    fn a_huge_expiry_is_an_error_not_an_overflow() {
        // msgpack of (0, (False, "u"), 2, <expiry>, [])
        for expiry in [1e300_f64, -1e300, f64::MAX, 1e30] {
            let mut bytes = b"\x95\x00\x92\xc2\xa1u\x02\xcb".to_vec();
            bytes.extend_from_slice(&expiry.to_be_bytes());
            bytes.push(0x90);
            assert_eq!(
                decode(&bytes, &map()),
                Err(PayloadError::Malformed("timestamp out of range")),
                "{expiry}"
            );
        }
    }

    /// Found by fuzzing: 4,000 nested arrays overflowed the stack of a test thread.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = vec![0x91_u8; 4000];
        assert!(decode(&nested, &map()).is_err());
        assert!(decode_receipt(&nested, &map()).is_err());
    }

    #[test]
    fn old_str_packed_ids_decode() {
        // Pre-1.0 msgpack wrote bytes as str: the uuid arrives as a 16-byte str.
        let mut b = vec![0x95, 0x00, 0x92, 0xc3, 0xb0];
        b.extend([0x41u8; 16]);
        b.extend([0x02, 0xcb]);
        b.extend(1_700_000_000f64.to_be_bytes());
        b.extend([0x91, 0xb0]);
        b.extend([0x42u8; 16]);
        let p = decode(&b, &map()).unwrap();
        assert_eq!(p.user_id, "41".repeat(16));
        assert_eq!(p.audit_ids.len(), 1);
    }
}
