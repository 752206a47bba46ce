//! Fuzz targets for token decoding (`fuzz/`, run with `scripts/fuzz.sh`), kept here so
//! that the fuzz targets are one line each and the normal tests replay the committed
//! corpus through the same code. The keys below are fixed test keys, used nowhere else:
//! inputs are sealed or signed with them so that the decoders behind the MAC and the
//! signature see the input, not only its rejection.
// Test code in all but name: a fixed key that does not load is a broken build of the
// fuzzer, for which a panic is the right report.
#![allow(clippy::expect_used)]

use crate::fernet::payload::{self, MethodMap};
use crate::{FernetCodec, JwsCodec, JwsKeyRepository, SharedFernetKeys};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use limen_core::clock::ManualClock;
use limen_core::config::default_auth_methods;
use limen_core::token::TokenCodec;
use p256::ecdsa::signature::Signer;
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;

/// `limen-fuzz-fernet-key-0123456789`, base64url.
const FERNET_KEY: &str = "bGltZW4tZnV6ei1mZXJuZXQta2V5LTAxMjM0NTY3ODk=";
/// The fixed time of the fuzzing clock and of every sealed input (2030-01-01).
const NOW: i64 = 1_893_456_000;

const JWS_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyWo1/54NUUyrXJv5
pY/Dk7BM3QouKmCqEL0FAs2alquhRANCAAQctrKVVDREfRanAPXftzaRJ3NbqdHC
PWMfDsn4V7w0EaKYWa6/uOqVaK3vJJmgCEiSfg81LKhh9ZzyJhpI6NA4
-----END PRIVATE KEY-----
";
const JWS_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHLaylVQ0RH0WpwD137c2kSdzW6nR
wj1jHw7J+Fe8NBGimFmuv7jqlWit7ySZoAhIkn4PNSyoYfWc8iYaSOjQOA==
-----END PUBLIC KEY-----
";

struct Fernet {
    codec: FernetCodec,
    sealer: fernet::Fernet,
    methods: MethodMap,
}

fn fernet_fixture() -> &'static Fernet {
    static FIXTURE: OnceLock<Fernet> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = SharedFernetKeys::new("fernet", vec![FERNET_KEY.to_string()])
            .expect("the fixed Fernet key is valid");
        let now = OffsetDateTime::from_unix_timestamp(NOW).expect("a valid time");
        Fernet {
            codec: FernetCodec::shared(
                Arc::new(keys),
                default_auth_methods(),
                Arc::new(ManualClock::at(now)),
            ),
            sealer: fernet::Fernet::new(FERNET_KEY).expect("the fixed Fernet key is valid"),
            methods: MethodMap::new(default_auth_methods()),
        }
    })
}

/// First byte even: the rest is a token as a client sends it. Odd: the rest is a payload,
/// sealed with the codec's key (stamped at any time the next 8 bytes say) and decoded as
/// a token and as an auth receipt, and then given to the payload decoders directly.
pub fn fernet_token(data: &[u8]) {
    let fixture = fernet_fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode.is_multiple_of(2) {
        let token = String::from_utf8_lossy(rest);
        let _ = fixture.codec.decode(&token);
        let _ = fixture.codec.decode_receipt(&token);
        return;
    }
    let (stamp, plain) = match rest.split_first_chunk::<8>() {
        Some((stamp, plain)) if mode & 2 != 0 => (u64::from_be_bytes(*stamp), plain),
        _ => (NOW as u64, rest),
    };
    let token = fixture.sealer.encrypt_at_time(plain, stamp);
    let token = token.trim_end_matches('=');
    let _ = fixture.codec.decode(token);
    let _ = fixture.codec.decode_receipt(token);
    let _ = payload::decode(plain, &fixture.methods);
    let _ = payload::decode_receipt(plain, &fixture.methods);
}

struct Jws {
    codec: JwsCodec,
    signer: p256::ecdsa::SigningKey,
}

/// The codec reads its keys from files: a directory holding the fixed keys, written once
/// per machine (renamed into place, so concurrent runs never read half a file).
fn jws_fixture() -> &'static Jws {
    static FIXTURE: OnceLock<Jws> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join("limen-fuzz-jws-keys-1");
        if !dir.join("public").join("fuzz.pem").exists() {
            let staging =
                std::env::temp_dir().join(format!("limen-fuzz-jws-keys-{}", std::process::id()));
            let write = |sub: &str, name: &str, pem: &str| {
                let d = staging.join(sub);
                std::fs::create_dir_all(&d).expect("a temporary directory");
                std::fs::write(d.join(name), pem).expect("a temporary file");
            };
            write("private", crate::jws::PRIVATE_KEY_FILE, JWS_PRIVATE_PEM);
            write("public", "fuzz.pem", JWS_PUBLIC_PEM);
            // Loses to a concurrent run's rename: then that copy, the same keys, is used.
            let _ = std::fs::rename(&staging, &dir);
            let _ = std::fs::remove_dir_all(&staging);
        }
        let repo = JwsKeyRepository::new(dir.join("private"), dir.join("public"));
        let secret =
            <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(JWS_PRIVATE_PEM)
                .expect("the fixed JWS key is valid");
        Jws {
            codec: JwsCodec::new(repo).expect("the fixed JWS keys load"),
            signer: p256::ecdsa::SigningKey::from(secret),
        }
    })
}

/// First byte even: the rest is a token as a client sends it. Odd: the rest is a JWS
/// header and claims (split where the second byte says), each base64url-encoded as they
/// are and signed with the codec's key (ES256), so the claims decoder sees them.
pub fn jws_token(data: &[u8]) {
    let fixture = jws_fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode.is_multiple_of(2) {
        let _ = fixture.codec.decode(&String::from_utf8_lossy(rest));
        return;
    }
    let Some((&split, rest)) = rest.split_first() else {
        return;
    };
    let (header, claims) = rest.split_at((split as usize).min(rest.len()));
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature: p256::ecdsa::Signature = fixture.signer.sign(signed.as_bytes());
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    let _ = fixture.codec.decode(&token);
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::token::{TokenPayload, TokenScope};

    /// Every file of a committed corpus (`fuzz/corpus/<target>`) through its target.
    pub(crate) fn replay(target: &str, run: fn(&[u8])) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            n += 1;
        }
        assert!(n > 0, "{dir:?} is empty");
    }

    #[test]
    fn fernet_corpus_replays() {
        replay("fernet_token", fernet_token);
    }

    #[test]
    fn jws_corpus_replays() {
        replay("jws_token", jws_token);
    }

    /// The sealed and signed modes reach the payload: a real token's payload, sealed or
    /// signed by the fuzz target, decodes.
    #[test]
    fn sealed_and_signed_inputs_reach_the_decoders() {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let p = TokenPayload {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: vec!["password".into()],
            scope: TokenScope::Project {
                project_id: "fedcba9876543210fedcba9876543210".into(),
            },
            expires_at: now + time::Duration::hours(1),
            audit_ids: vec!["AAAAAAAAAAAAAAAAAAAAAA".into()],
            issued_at: now,
        };
        let fernet = fernet_fixture();
        let plain = payload::encode(&p, &fernet.methods).unwrap();
        let token = fernet.sealer.encrypt_at_time(&plain, NOW as u64);
        assert_eq!(fernet.codec.decode(&token).unwrap(), p);

        let jws = jws_fixture();
        let token = jws.codec.encode(&p).unwrap();
        let mut parts = token.split('.');
        let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        assert_eq!(jws.codec.decode(&token).unwrap(), p);
        // What jws_token signs from the same header and claims decodes the same.
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        let signature: p256::ecdsa::Signature = jws.signer.sign(signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        assert_eq!(jws.codec.decode(&token).unwrap(), p);
    }
}
