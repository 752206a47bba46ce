//! Percent-encoding as request signatures need it (OAuth1, RFC 5849 §3.6; AWS signature
//! versions 2 and 4, which sign what Python's `quote(v, safe='-_~')` gives): every byte of
//! the UTF-8 text but RFC 3986's unreserved `ALPHA DIGIT - . _ ~` becomes `%XX`, upper case.

pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(encode("abcXYZ019-._~"), "abcXYZ019-._~");
        assert_eq!(encode("a b+c/=&:"), "a%20b%2Bc%2F%3D%26%3A");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
