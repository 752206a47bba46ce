//! Keystone's timestamp formats.

use time::OffsetDateTime;

fn fmt(t: OffsetDateTime, z: bool) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
        if z { "Z" } else { "" }
    )
}

/// Token times: `2026-11-23T01:44:19.000000Z`.
pub fn iso_z(t: OffsetDateTime) -> String {
    fmt(t, true)
}

/// Entity times such as `password_expires_at`: `2026-11-23T01:44:19.000000`.
pub fn iso(t: OffsetDateTime) -> String {
    fmt(t, false)
}

/// Parses the ISO 8601 forms clients send (`Z`, an offset, or none meaning UTC; with or
/// without fractional seconds).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let with_z = format!("{s}Z");
    OffsetDateTime::parse(&with_z, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats() {
        let t = datetime!(2026-11-23 01:44:19.5 UTC);
        assert_eq!(iso_z(t), "2026-11-23T01:44:19.500000Z");
        assert_eq!(iso(t), "2026-11-23T01:44:19.500000");
        assert_eq!(parse("2026-11-23T01:44:19.500000Z"), Some(t));
        assert_eq!(parse("2026-11-23T01:44:19.500000"), Some(t));
        assert_eq!(parse("nonsense"), None);
    }
}
