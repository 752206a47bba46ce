//! TOTP (RFC 6238) as Keystone checks it: the user's `totp` credentials hold base32
//! secrets; a passcode is 6 digits of HMAC-SHA1 over 30-second steps.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;

/// Decodes RFC 4648 base32 (padding and case optional, as Keystone accepts).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim().trim_end_matches('=').chars() {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        bits = (bits << 5) | v;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

/// The passcode for a secret at a time.
pub fn passcode(secret: &[u8], at: OffsetDateTime) -> String {
    let counter = at.unix_timestamp().div_euclid(STEP_SECONDS) as u64;
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let code = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!(
        "{:0width$}",
        code % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `given` is the current passcode of the base32 `secret`.
pub fn verify(secret_b32: &str, given: &str, at: OffsetDateTime) -> bool {
    let Some(secret) = base32_decode(secret_b32) else {
        return false;
    };
    let want = passcode(&secret, at);
    want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_and_keystone_agree() {
        // RFC 6238 appendix B (SHA-1 key "12345678901234567890"), truncated to 6 digits.
        let secret = base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(secret, b"12345678901234567890");
        let t = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(passcode(&secret, t), "287082");
        let t = OffsetDateTime::from_unix_timestamp(1_111_111_109).unwrap();
        assert_eq!(passcode(&secret, t), "081804");
        assert!(verify(
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "287082",
            OffsetDateTime::from_unix_timestamp(59).unwrap()
        ));
        assert!(!verify(
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "287083",
            OffsetDateTime::from_unix_timestamp(59).unwrap()
        ));
        assert!(!verify(
            "not base32!",
            "287082",
            OffsetDateTime::from_unix_timestamp(59).unwrap()
        ));
    }
}
