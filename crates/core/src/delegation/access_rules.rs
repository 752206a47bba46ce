//! Application-credential access rules on Limen's own APIs, as Keystone enforces them on
//! its own (keystonemiddleware's rule check with `service_type = identity`).
//!
//! A token issued through a credential that has access rules is usable on Limen only for
//! requests one of its rules allows: the rule names the `identity` service, the request's
//! method exactly, and a path pattern the request's path matches. Anything else (rules of
//! other services, a credential with rules but none for Limen) is refused. The one
//! exception is Keystone's: such a token may always validate tokens
//! (`GET /v3/auth/tokens`). A token *without* rules is not limited here.
//!
//! Path patterns, as Keystone reads them: `*` and `{name}` stand for one path segment
//! (one or more characters other than `/`), `**` for any run of characters (`/`
//! included, possibly none); everything else is literal. A pattern covers the whole path
//! (no query string). Limen compares the path as the request sent it, percent-encoding
//! included, so a rule matches exactly what the router dispatches on.

use crate::model::AccessRule;

/// The service type Limen's own APIs answer to in access rules.
pub const IDENTITY_SERVICE: &str = "identity";

/// The lowest `OpenStack-Identity-Access-Rules` version (a validator's promise that it
/// enforces access rules) that Limen accepts, as Keystone's.
pub const ACCESS_RULES_MIN_VERSION: f64 = 1.0;

/// A request to one of Limen's own APIs, as access rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    /// The path as sent, without the query string.
    pub path: &'a str,
}

/// Where a Kubernetes API server presents a bearer token for review: an application
/// credential (`<id>:<secret>`) with access rules authenticates on clusters only if a
/// rule allows this request.
pub const TOKEN_REVIEW_REQUEST: ApiRequest<'static> = ApiRequest {
    method: "POST",
    path: "/kubernetes/tokenreview",
};

/// Where an application credential logs in as an OAuth client (client_credentials).
pub const OAUTH_TOKEN_REQUEST: ApiRequest<'static> = ApiRequest {
    method: "POST",
    path: "/oauth2/token",
};

/// Whether a validator announcing `header` (the `OpenStack-Identity-Access-Rules` value,
/// a version such as `1.0`) enforces access rules itself and may see tokens that carry
/// them.
pub fn validator_enforces_rules(header: Option<&str>) -> bool {
    header
        .and_then(|v| v.trim().parse::<f64>().ok())
        .is_some_and(|v| v >= ACCESS_RULES_MIN_VERSION)
}

/// Whether `rules` (a credential's, non-empty) let its token make `request` on Limen.
pub fn allows(rules: &[AccessRule], request: ApiRequest<'_>) -> bool {
    // Keystone's exception: a token may always be validated.
    if request.method == "GET" && request.path == "/v3/auth/tokens" {
        return true;
    }
    rules.iter().any(|r| {
        r.service == IDENTITY_SERVICE
            && r.method == request.method
            && path_matches(request.path, &r.path)
    })
}

/// One piece of a path pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Literal(u8),
    /// The first character of a segment wildcard: anything but `/`.
    SegmentStart,
    /// The rest of a segment wildcard: any run of characters other than `/`.
    SegmentRest,
    /// `**`: any run of characters.
    Anything,
}

fn pieces(pattern: &str) -> Vec<Piece> {
    let p = pattern.as_bytes();
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' if p.get(i + 1) == Some(&b'*') => {
                out.push(Piece::Anything);
                i += 2;
            }
            b'*' => {
                out.extend([Piece::SegmentStart, Piece::SegmentRest]);
                i += 1;
            }
            b'{' => match p[i..].iter().position(|&b| b == b'}') {
                Some(end) => {
                    out.extend([Piece::SegmentStart, Piece::SegmentRest]);
                    i += end + 1;
                }
                None => {
                    out.push(Piece::Literal(b'{'));
                    i += 1;
                }
            },
            b => {
                out.push(Piece::Literal(b));
                i += 1;
            }
        }
    }
    out
}

/// Whether `path` matches the access-rule path `pattern` (see the module docs). Linear in
/// the product of the lengths, whatever the wildcards.
pub fn path_matches(path: &str, pattern: &str) -> bool {
    let pieces = pieces(pattern);
    let path = path.as_bytes();
    let n = path.len();
    // `next[j]`: whether pieces[i + 1..] match path[j..]; built from the last piece back.
    let mut next = vec![false; n + 1];
    next[n] = true;
    for piece in pieces.iter().rev() {
        let mut here = vec![false; n + 1];
        for j in (0..=n).rev() {
            let c = path.get(j).copied();
            here[j] = match piece {
                Piece::Literal(b) => c == Some(*b) && next[j + 1],
                Piece::SegmentStart => c.is_some_and(|c| c != b'/') && next[j + 1],
                Piece::SegmentRest => next[j] || (c.is_some_and(|c| c != b'/') && here[j + 1]),
                Piece::Anything => next[j] || (c.is_some() && here[j + 1]),
            };
        }
        next = here;
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(service: &str, method: &str, path: &str) -> AccessRule {
        AccessRule {
            id: "r".into(),
            user_id: "u".into(),
            service: service.into(),
            path: path.into(),
            method: method.into(),
        }
    }

    #[test]
    fn paths_match_as_keystone_matches_them() {
        assert!(path_matches("/v2.1/servers", "/v2.1/servers"));
        assert!(!path_matches("/v2.1/servers/x", "/v2.1/servers"));
        assert!(!path_matches("/v2.1/server", "/v2.1/servers"));
        // `*` and `{tag}`: exactly one non-empty segment.
        assert!(path_matches("/v3/users/abc", "/v3/users/*"));
        assert!(path_matches("/v3/users/abc", "/v3/users/{user_id}"));
        assert!(!path_matches("/v3/users/", "/v3/users/*"));
        assert!(!path_matches("/v3/users/a/b", "/v3/users/*"));
        assert!(path_matches(
            "/v3/users/abc/projects",
            "/v3/users/*/projects"
        ));
        assert!(path_matches("/v3/users/abc.json", "/v3/users/*.json"));
        // `**`: anything, `/` included, possibly nothing.
        assert!(path_matches("/v3/users/a/b/c", "/v3/users/**"));
        assert!(path_matches("/v3/users/", "/v3/users/**"));
        assert!(path_matches("/v3/a/b/c/end", "/v3/**/end"));
        assert!(!path_matches("/v4/users", "/v3/**"));
        // Literal dots stay literal (Keystone's regex would let `.` match anything).
        assert!(!path_matches("/v2x1/servers", "/v2.1/servers"));
        // An unclosed brace is a literal.
        assert!(path_matches("/a{b", "/a{b"));
        // Many wildcards stay cheap.
        let long = "/a".repeat(2000);
        assert!(!path_matches(&long, &"**a".repeat(50).replace("a", "b")));
    }

    #[test]
    fn only_identity_rules_that_match_allow() {
        let rules = [
            rule("compute", "GET", "/v2.1/servers"),
            rule("identity", "GET", "/v3/users/*"),
        ];
        let req = |method, path| ApiRequest { method, path };
        assert!(allows(&rules, req("GET", "/v3/users/abc")));
        assert!(!allows(&rules, req("POST", "/v3/users/abc")));
        assert!(!allows(&rules, req("GET", "/v2.1/servers")));
        assert!(!allows(&rules, req("POST", "/v3/users")));
        // Validating tokens is always allowed; checking with HEAD is not.
        assert!(allows(&rules, req("GET", "/v3/auth/tokens")));
        assert!(!allows(&rules, req("HEAD", "/v3/auth/tokens")));
        assert!(!allows(&rules[..1], TOKEN_REVIEW_REQUEST));
    }

    #[test]
    fn validators_announce_a_version() {
        assert!(validator_enforces_rules(Some("1.0")));
        assert!(validator_enforces_rules(Some("1")));
        assert!(validator_enforces_rules(Some(" 2.5 ")));
        assert!(!validator_enforces_rules(Some("0.9")));
        assert!(!validator_enforces_rules(Some("yes")));
        assert!(!validator_enforces_rules(None));
    }
}
