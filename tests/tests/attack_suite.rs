//! The tenant-isolation attack suite: for every resource type that belongs to a domain,
//! B's manager and B's member try to read, change, reference and mint tokens through A's
//! (the harness and the world are in `limen_tests::attack`). One row per resource type.

use limen_tests::attack::{attempt, b_cannot_reach_a, Actor::*, Call::*, Row};
use reqwest::Method;

const GET: Method = Method::GET;
const PATCH: Method = Method::PATCH;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;

#[tokio::test]
async fn domains() {
    b_cannot_reach_a(Row {
        kind: "domain",
        attempts: vec![
            attempt("read", BManager, Api(GET, "/v3/domains/{a.domain}", None)),
            attempt("read", BMember, Api(GET, "/v3/domains/{a.domain}", None)),
            attempt("list", BManager, List("/v3/domains", "{a.domain}")),
            attempt(
                "disable",
                BManager,
                Api(
                    PATCH,
                    "/v3/domains/{a.domain}",
                    Some(r#"{"domain": {"enabled": false}}"#),
                ),
            ),
            attempt(
                "read config",
                BManager,
                Api(GET, "/v3/domains/{a.domain}/config", None),
            ),
            attempt(
                "grant self on it",
                BManager,
                Api(
                    PUT,
                    "/v3/domains/{a.domain}/users/{b.member}/roles/{a.role.member}",
                    None,
                ),
            ),
            attempt(
                "token for it",
                BMember,
                Login(
                    r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "{token}"}},
                        "scope": {"domain": {"id": "{a.domain}"}}}}"#,
                ),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn users() {
    b_cannot_reach_a(Row {
        kind: "user",
        attempts: vec![
            attempt("read", BManager, Api(GET, "/v3/users/{a.member}", None)),
            attempt("read", BMember, Api(GET, "/v3/users/{a.member}", None)),
            attempt("list", BManager, List("/v3/users", "{a.member}")),
            attempt(
                "list by domain",
                BManager,
                List("/v3/users?domain_id={a.domain}", "{a.member}"),
            ),
            attempt(
                "rename",
                BManager,
                Api(
                    PATCH,
                    "/v3/users/{a.member}",
                    Some(r#"{"user": {"name": "pwned"}}"#),
                ),
            ),
            attempt(
                "reset the password",
                BManager,
                Api(
                    PATCH,
                    "/v3/users/{a.member}",
                    Some(r#"{"user": {"password": "taken-over-1"}}"#),
                ),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/users/{a.member}", None),
            ),
            attempt(
                "move to B",
                BManager,
                Api(
                    PATCH,
                    "/v3/users/{a.member}",
                    Some(r#"{"user": {"domain_id": "{b.domain}"}}"#),
                ),
            ),
            attempt(
                "add to B's group",
                BManager,
                Api(PUT, "/v3/groups/{b.group}/users/{a.member}", None),
            ),
            attempt(
                "grant on B's project",
                BManager,
                Api(
                    PUT,
                    "/v3/projects/{b.project}/users/{a.member}/roles/{b.role.member}",
                    None,
                ),
            ),
            attempt(
                "make an application credential for",
                BManager,
                Api(
                    POST,
                    "/v3/users/{a.member}/application_credentials",
                    Some(r#"{"application_credential": {"name": "stolen"}}"#),
                ),
            ),
            attempt(
                "read its groups",
                BManager,
                Api(GET, "/v3/users/{a.member}/groups", None),
            ),
            attempt(
                "read its projects",
                BManager,
                Api(GET, "/v3/users/{a.member}/projects", None),
            ),
            attempt(
                "revoke its tokens",
                BManager,
                Api(DELETE, "/v3/users/{a.member}/tokens", None),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn groups() {
    b_cannot_reach_a(Row {
        kind: "group",
        attempts: vec![
            attempt("read", BManager, Api(GET, "/v3/groups/{a.group}", None)),
            attempt("read", BMember, Api(GET, "/v3/groups/{a.group}", None)),
            attempt("list", BManager, List("/v3/groups", "{a.group}")),
            attempt(
                "read members",
                BManager,
                Api(GET, "/v3/groups/{a.group}/users", None),
            ),
            attempt(
                "rename",
                BManager,
                Api(
                    PATCH,
                    "/v3/groups/{a.group}",
                    Some(r#"{"group": {"name": "pwned"}}"#),
                ),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/groups/{a.group}", None),
            ),
            attempt(
                "join it",
                BManager,
                Api(PUT, "/v3/groups/{a.group}/users/{b.member}", None),
            ),
            attempt(
                "grant it on B's project",
                BManager,
                Api(
                    PUT,
                    "/v3/projects/{b.project}/groups/{a.group}/roles/{b.role.member}",
                    None,
                ),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn projects() {
    b_cannot_reach_a(Row {
        kind: "project",
        attempts: vec![
            attempt("read", BManager, Api(GET, "/v3/projects/{a.project}", None)),
            attempt("read", BMember, Api(GET, "/v3/projects/{a.project}", None)),
            attempt("list", BManager, List("/v3/projects", "{a.project}")),
            attempt(
                "rename",
                BManager,
                Api(
                    PATCH,
                    "/v3/projects/{a.project}",
                    Some(r#"{"project": {"name": "pwned"}}"#),
                ),
            ),
            attempt(
                "tag",
                BManager,
                Api(PUT, "/v3/projects/{a.project}/tags/pwned", None),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/projects/{a.project}", None),
            ),
            attempt(
                "hang a project of B under it",
                BManager,
                Api(
                    POST,
                    "/v3/projects",
                    Some(
                        r#"{"project": {"name": "child", "domain_id": "{b.domain}",
                            "parent_id": "{a.project}"}}"#,
                    ),
                ),
            ),
            attempt(
                "grant self on it",
                BManager,
                Api(
                    PUT,
                    "/v3/projects/{a.project}/users/{b.member}/roles/{a.role.member}",
                    None,
                ),
            ),
            attempt(
                "token for it",
                BMember,
                Login(
                    r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "{token}"}},
                        "scope": {"project": {"id": "{a.project}"}}}}"#,
                ),
            ),
            attempt(
                "name it in B's cluster",
                BManager,
                Api(
                    PATCH,
                    "/v3/limen/clusters/{b.cluster}",
                    Some(r#"{"cluster": {"project_id": "{a.project}"}}"#),
                ),
            ),
            attempt(
                "a cluster token for it",
                BManager,
                Exchange {
                    client: "{b.client}",
                    subject: "",
                    audience: "{b.audience}",
                    scope: "project:{a.project}",
                },
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn grants() {
    b_cannot_reach_a(Row {
        kind: "grant",
        attempts: vec![
            attempt(
                "read",
                BManager,
                Api(GET, "/v3/projects/{a.project}/users/{a.member}/roles", None),
            ),
            attempt(
                "check",
                BManager,
                Api(
                    GET,
                    "/v3/projects/{a.project}/users/{a.member}/roles/{a.role.member}",
                    None,
                ),
            ),
            attempt(
                "list assignments",
                BManager,
                List(
                    "/v3/role_assignments?scope.project.id={a.project}",
                    "{a.member}",
                ),
            ),
            attempt(
                "list assignments",
                BMember,
                List("/v3/role_assignments?user.id={a.member}", "{a.project}"),
            ),
            attempt(
                "revoke",
                BManager,
                Api(
                    DELETE,
                    "/v3/projects/{a.project}/users/{a.member}/roles/{a.role.member}",
                    None,
                ),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn application_credentials() {
    b_cannot_reach_a(Row {
        kind: "application credential",
        attempts: vec![
            attempt(
                "read",
                BManager,
                Api(
                    GET,
                    "/v3/users/{a.member}/application_credentials/{a.appcred}",
                    None,
                ),
            ),
            attempt(
                "list",
                BManager,
                Api(GET, "/v3/users/{a.member}/application_credentials", None),
            ),
            attempt(
                "delete",
                BManager,
                Api(
                    DELETE,
                    "/v3/users/{a.member}/application_credentials/{a.appcred}",
                    None,
                ),
            ),
            attempt(
                "used on B's cluster",
                BManager,
                Review {
                    webhook: "{b.webhook}",
                    token: "{a.appcred_bearer}",
                },
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn credentials_and_trusts() {
    b_cannot_reach_a(Row {
        kind: "credential and trust",
        attempts: vec![
            attempt(
                "read a credential",
                BManager,
                Api(GET, "/v3/credentials/{a.credential}", None),
            ),
            attempt(
                "list credentials",
                BManager,
                List("/v3/credentials?user_id={a.member}", "{a.credential}"),
            ),
            attempt(
                "change a credential",
                BManager,
                Api(
                    PATCH,
                    "/v3/credentials/{a.credential}",
                    Some(r#"{"credential": {"blob": "{}"}}"#),
                ),
            ),
            attempt(
                "delete a credential",
                BManager,
                Api(DELETE, "/v3/credentials/{a.credential}", None),
            ),
            attempt(
                "read a trust",
                BManager,
                Api(GET, "/v3/OS-TRUST/trusts/{a.trust}", None),
            ),
            attempt(
                "list trusts",
                BManager,
                List(
                    "/v3/OS-TRUST/trusts?trustor_user_id={a.member}",
                    "{a.trust}",
                ),
            ),
            attempt(
                "delete a trust",
                BManager,
                Api(DELETE, "/v3/OS-TRUST/trusts/{a.trust}", None),
            ),
            attempt(
                "a token through a trust",
                BMember,
                Login(
                    r#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "{token}"}},
                        "scope": {"OS-TRUST:trust": {"id": "{a.trust}"}}}}"#,
                ),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn oauth_clients() {
    b_cannot_reach_a(Row {
        kind: "OAuth client",
        attempts: vec![
            attempt(
                "read",
                BManager,
                Api(GET, "/v3/limen/oauth_clients/{a.client}", None),
            ),
            attempt(
                "list",
                BManager,
                List("/v3/limen/oauth_clients", "{a.client}"),
            ),
            attempt(
                "add an audience",
                BManager,
                Api(
                    PATCH,
                    "/v3/limen/oauth_clients/{a.client}",
                    Some(r#"{"oauth_client": {"audiences": ["cluster-a", "cluster-b"]}}"#),
                ),
            ),
            attempt(
                "replace its secret",
                BManager,
                Api(POST, "/v3/limen/oauth_clients/{a.client}/secret", None),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/limen/oauth_clients/{a.client}", None),
            ),
            attempt(
                "name its id as B's audience",
                BManager,
                Api(
                    PATCH,
                    "/v3/limen/oauth_clients/{b.client}",
                    Some(r#"{"oauth_client": {"audiences": ["{a.client}"]}}"#),
                ),
            ),
            attempt(
                "use it (public) for A's cluster",
                BMember,
                Exchange {
                    client: "{a.client}",
                    subject: "",
                    audience: "{a.audience}",
                    scope: "",
                },
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn clusters() {
    b_cannot_reach_a(Row {
        kind: "cluster",
        attempts: vec![
            attempt(
                "read",
                BManager,
                Api(GET, "/v3/limen/clusters/{a.cluster}", None),
            ),
            attempt(
                "read",
                BMember,
                Api(GET, "/v3/limen/clusters/{a.cluster}", None),
            ),
            attempt("list", BManager, List("/v3/limen/clusters", "{a.cluster}")),
            attempt(
                "trust B",
                BManager,
                Api(
                    PATCH,
                    "/v3/limen/clusters/{a.cluster}",
                    Some(r#"{"cluster": {"trusted_domains": ["{b.domain}"]}}"#),
                ),
            ),
            attempt(
                "rotate its webhook token",
                BManager,
                Api(POST, "/v3/limen/clusters/{a.cluster}/webhook_token", None),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/limen/clusters/{a.cluster}", None),
            ),
            attempt(
                "list its audience on B's client",
                BManager,
                Api(
                    PATCH,
                    "/v3/limen/oauth_clients/{b.client}",
                    Some(r#"{"oauth_client": {"audiences": ["{a.audience}"]}}"#),
                ),
            ),
            attempt(
                "a token for it through B's client",
                BMember,
                Exchange {
                    client: "{b.client}",
                    subject: "",
                    audience: "{a.audience}",
                    scope: "",
                },
            ),
            attempt(
                "B's Keystone token on it",
                BMember,
                Review {
                    webhook: "{a.webhook}",
                    token: "",
                },
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn cluster_rules() {
    b_cannot_reach_a(Row {
        kind: "cluster rule",
        attempts: vec![
            attempt(
                "list",
                BManager,
                Api(GET, "/v3/limen/clusters/{a.cluster}/rules", None),
            ),
            attempt(
                "read",
                BManager,
                Api(GET, "/v3/limen/clusters/{a.cluster}/rules/{a.rule}", None),
            ),
            attempt(
                "add",
                BManager,
                Api(
                    POST,
                    "/v3/limen/clusters/{a.cluster}/rules",
                    Some(
                        r#"{"rule": {"subjects": [{"group": "limen:group:dom-b/b-devs"}],
                            "verbs": ["*"], "namespaces": ["*"], "api_groups": ["*"], "resources": ["*"]}}"#,
                    ),
                ),
            ),
            attempt(
                "delete",
                BManager,
                Api(
                    DELETE,
                    "/v3/limen/clusters/{a.cluster}/rules/{a.rule}",
                    None,
                ),
            ),
            attempt(
                "name A's project in B's rule",
                BManager,
                Api(
                    POST,
                    "/v3/limen/clusters/{b.cluster}/rules",
                    Some(
                        r#"{"rule": {"subjects": [{"project_id": "{a.project}", "role": "member"}],
                            "verbs": ["get"], "namespaces": ["*"], "api_groups": [""], "resources": ["pods"]}}"#,
                    ),
                ),
            ),
        ],
    })
    .await;
}

#[tokio::test]
async fn identity_providers() {
    b_cannot_reach_a(Row {
        kind: "identity provider",
        attempts: vec![
            attempt(
                "read",
                BManager,
                Api(GET, "/v3/OS-FEDERATION/identity_providers/{a.idp}", None),
            ),
            attempt(
                "disable",
                BManager,
                Api(
                    PATCH,
                    "/v3/OS-FEDERATION/identity_providers/{a.idp}",
                    Some(r#"{"identity_provider": {"enabled": false}}"#),
                ),
            ),
            attempt(
                "add a protocol",
                BManager,
                Api(
                    PUT,
                    "/v3/OS-FEDERATION/identity_providers/{a.idp}/protocols/openid",
                    Some(r#"{"protocol": {"mapping_id": "m"}}"#),
                ),
            ),
            attempt(
                "delete",
                BManager,
                Api(DELETE, "/v3/OS-FEDERATION/identity_providers/{a.idp}", None),
            ),
            attempt(
                "register one in A's domain",
                BManager,
                Api(
                    PUT,
                    "/v3/OS-FEDERATION/identity_providers/b-into-a",
                    Some(r#"{"identity_provider": {"domain_id": "{a.domain}"}}"#),
                ),
            ),
        ],
    })
    .await;
}
