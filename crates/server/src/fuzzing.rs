//! The fuzz target for the server's form and query parsing (`fuzz/`, run with
//! `scripts/fuzz.sh`), kept here so that the fuzz target is one line and the normal tests
//! replay the committed corpus through the same code.

use crate::extract::{form_urlencoded_pairs, percent_decode, Query};
use crate::routes::oauth;
use axum::http::{header, HeaderMap, HeaderValue};

/// First byte even: the rest is an OAuth token request's body (`application/x-www-form-
/// urlencoded`), read as the token endpoint reads it, with the client's credentials from
/// the form. Odd: the rest up to the first newline is an HTTP Basic `Authorization`
/// value, after it the form. Either way the text is also read as a query string.
pub fn form_body(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let body = if !mode.is_multiple_of(2) {
        let (basic, body) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let mut value = b"Basic ".to_vec();
        value.extend_from_slice(basic);
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.insert(header::AUTHORIZATION, v);
        }
        body
    } else {
        rest
    };
    if let Ok(params) = oauth::form(&headers, body) {
        let _ = oauth::client_credentials(&headers, &params);
    }
    let text = String::from_utf8_lossy(body);
    let query = Query {
        pairs: form_urlencoded_pairs(&text),
        raw: text.to_string(),
    };
    for (k, _) in &query.pairs {
        let _ = query.bool(k);
    }
    let _ = percent_decode(&text);
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_body_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/form_body");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            super::form_body(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "{dir:?} is empty");
    }
}
