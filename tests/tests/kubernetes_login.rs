//! `limen login` as kubectl runs it (the exec credential protocol: `KUBERNETES_EXEC_INFO`
//! in, an ExecCredential of the same apiVersion out), against a real server: the device
//! flow approved by a second actor through the pages, one login for parallel runs, the
//! on-disk cache (0600 files), renewal before expiry and refresh of the login, a second
//! kubectl call from one kubectl process taken as a 401, application credentials for
//! CI, several accounts, `limen logout`; the exchange rules for a cluster's login client
//! and project; and `limen kubeconfig` from the public cluster info.

use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const EXEC_V1: &str = "client.authentication.k8s.io/v1";
const EXEC_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// A provider with a public `kubectl` client, a project `team-a` with member alice, and
/// a cluster owned by that project whose login client is `kubectl`.
struct Setup {
    s: TestServer,
    client: String,
    project: String,
    alice: String,
    cluster: String,
    webhook_token: String,
    cache: tempfile::TempDir,
}

async fn setup(client_extra: Value) -> Setup {
    let s = start_provider("device_poll_interval = 1").await;
    let mut client = json!({"name": "kubectl", "confidential": false,
                            "grant_types": [DEVICE_GRANT, "refresh_token", EXCHANGE_GRANT]});
    for (k, v) in client_extra.as_object().into_iter().flatten() {
        client[k] = v.clone();
    }
    let (client, _) = register_client(&s, client).await;
    let project = s.new_project("team-a").await;
    let (alice, _) = s.new_member("alice", &project).await;
    let (status, v) = s
        .post(
            "/v3/limen/clusters",
            &s.admin_token,
            json!({"cluster": {"name": "prod", "api_server": "https://k8s.example.com:6443",
                   "audience": "prod", "project_id": project, "login_client_id": client}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    Setup {
        cluster: v["cluster"]["id"].as_str().unwrap().to_string(),
        webhook_token: v["cluster"]["webhook_token"].as_str().unwrap().to_string(),
        client,
        project,
        alice,
        cache: tempfile::tempdir().unwrap(),
        s,
    }
}

/// What kubectl puts in `KUBERNETES_EXEC_INFO` with `provideClusterInfo` and the
/// extension `limen kubeconfig` writes.
fn exec_info(version: &str, audience: &str, issuer: &str) -> String {
    json!({"kind": "ExecCredential", "apiVersion": version,
           "spec": {"interactive": false, "cluster": {"server": "https://k8s.example.com:6443",
                    "config": {"issuer": issuer, "audience": audience}}}})
    .to_string()
}

impl Setup {
    /// `limen login` as the kubeconfig has kubectl run it, from a shell of its own (as
    /// kubectl is one process per command).
    fn plugin(&self, version: &str, account: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("\"$0\" \"$@\"; status=$?; exit $status")
            .arg(limen_bin())
            .args([
                "login",
                "--issuer",
                &self.s.base,
                "--client-id",
                &self.client,
            ])
            .args(["--account", account])
            .args(extra)
            .env(
                "KUBERNETES_EXEC_INFO",
                exec_info(version, "prod", &self.s.base),
            )
            .env("LIMEN_CACHE_DIR", self.cache.path())
            .env_remove("LIMEN_APPLICATION_CREDENTIAL_ID")
            .env_remove("LIMEN_APPLICATION_CREDENTIAL_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the plugin where a login is cached (no device flow may start).
    fn cached(&self, version: &str, account: &str) -> Value {
        let out = self
            .plugin(version, account, &["--device-login", "never"])
            .output()
            .unwrap();
        credential(&out, version)
    }

    fn limen(&self, args: &[&str]) -> Output {
        Command::new(limen_bin())
            .args(args)
            .env("LIMEN_CACHE_DIR", self.cache.path())
            .output()
            .unwrap()
    }

    fn login_record(&self, account_dirs: usize) -> Value {
        let dirs = account_dirs_of(self.cache.path());
        assert_eq!(dirs.len(), account_dirs, "{dirs:?}");
        let record = dirs
            .iter()
            .map(|d| d.join("login.json"))
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"kind\": \"device\"")))
            .expect("a device login");
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap()
    }

    /// The cluster's TokenReview of `token`.
    async fn review(&self, token: &str) -> Value {
        let resp = self
            .s
            .http
            .post(self.s.url("/kubernetes/tokenreview"))
            .bearer_auth(&self.webhook_token)
            .json(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "spec": {"token": token}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<Value>().await.unwrap()["status"].clone()
    }
}

fn account_dirs_of(cache: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The ExecCredential a successful run printed, checked against `version`.
fn credential(out: &Output, version: &str) -> Value {
    assert!(
        out.status.success(),
        "limen login failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["apiVersion"], version, "{v}");
    assert_eq!(v["kind"], "ExecCredential");
    assert!(v["status"]["token"].is_string(), "{v}");
    assert!(v["status"]["expirationTimestamp"].is_string(), "{v}");
    v
}

fn token_of(v: &Value) -> String {
    v["status"]["token"].as_str().unwrap().to_string()
}

/// A running plugin whose stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().expect("spawn limen login");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Running { child, lines }
}

impl Running {
    /// The device login link, once printed (within `wait`).
    fn link(&self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.trim_start().starts_with("http") => return Some(l.trim().to_string()),
                _ => {}
            }
        }
        None
    }

    async fn finish(mut self) -> Output {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "limen login did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stderr: Vec<String> = self.lines.try_iter().collect();
        let mut out = self.child.wait_with_output().unwrap();
        out.stderr = stderr.join("\n").into_bytes();
        out
    }
}

/// Logs alice in through the device flow: the first run's credential.
async fn device_login(t: &Setup, version: &str) -> Value {
    let run = start(t.plugin(version, "alice", &["--device-login", "always"]));
    let link = run
        .link(Duration::from_secs(20))
        .expect("the device link on stderr");
    let mut browser = PageClient::new();
    let done = answer_device(&mut browser, &link, "alice", "approve").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    credential(&run.finish().await, version)
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn parallel_kubectl_runs_share_one_device_login_and_its_cached_token() {
    let t = setup(json!({})).await;
    // Three kubectl commands at once, nobody logged in: one shows a link, the others wait.
    let runs: Vec<Running> = (0..3)
        .map(|_| start(t.plugin(EXEC_V1, "alice", &["--device-login", "always"])))
        .collect();
    let mut links: Vec<String> = runs
        .iter()
        .filter_map(|r| r.link(Duration::from_secs(3)))
        .collect();
    assert_eq!(links.len(), 1, "exactly one login starts: {links:?}");
    let mut browser = PageClient::new();
    let done = answer_device(&mut browser, &links.remove(0), "alice", "approve").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let mut tokens = Vec::new();
    for r in runs {
        tokens.push(token_of(&credential(&r.finish().await, EXEC_V1)));
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one exchange for all three"
    );

    // The cluster token is for this cluster, speaks for the project that owns it, and
    // the webhook names alice with her project role.
    let claims = claims_of(&tokens[0]);
    assert_eq!(claims["aud"], "prod");
    assert_eq!(claims["sub"], t.alice);
    assert_eq!(claims["limen"]["project"]["id"], t.project.as_str());
    let reviewed = t.review(&tokens[0]).await;
    assert_eq!(reviewed["authenticated"], true, "{reviewed}");
    assert_eq!(reviewed["user"]["username"], "limen:Default/alice");
    let groups = reviewed["user"]["groups"].to_string();
    assert!(
        groups.contains(&format!("limen:project:{}:member", t.project)),
        "{groups}"
    );

    // The cache: a 0700 directory of 0600 files, no token in the clear elsewhere.
    let dirs = account_dirs_of(t.cache.path());
    assert_eq!(dirs.len(), 1);
    assert_eq!(
        std::fs::metadata(&dirs[0]).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in std::fs::read_dir(&dirs[0]).unwrap().filter_map(Result::ok) {
        let mode = f.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.path().display());
    }

    // Later commands get the cached token, in the version they ask in.
    assert_eq!(token_of(&t.cached(EXEC_V1BETA1, "alice")), tokens[0]);
    let v1 = t.cached(EXEC_V1, "alice");
    assert_eq!(token_of(&v1), tokens[0]);
    let expiry = time::OffsetDateTime::parse(
        v1["status"]["expirationTimestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    let told = expiry.unix_timestamp();
    assert!(
        told < exp && told >= exp - 31,
        "kubectl is told to come back before exp: {told} vs {exp}"
    );

    // One kubectl process asking twice before that expiry got a 401 with the token:
    // the second answer is a new token (from the same login: no device flow may run).
    let twice = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" >/dev/null && \"$0\" \"$@\"")
        .arg(limen_bin())
        .args([
            "login",
            "--issuer",
            &t.s.base,
            "--client-id",
            &t.client,
            "--account",
            "alice",
        ])
        .args(["--device-login", "never"])
        .env(
            "KUBERNETES_EXEC_INFO",
            exec_info(EXEC_V1, "prod", &t.s.base),
        )
        .env("LIMEN_CACHE_DIR", t.cache.path())
        .output()
        .unwrap();
    let renewed = token_of(&credential(&twice, EXEC_V1));
    assert_ne!(
        renewed, tokens[0],
        "a refused token is not handed out again"
    );
    assert!(String::from_utf8_lossy(&twice.stderr).contains("refused the cached token"));
    assert_eq!(token_of(&t.cached(EXEC_V1, "alice")), renewed);
}

#[tokio::test]
async fn tokens_are_renewed_before_expiry_and_the_login_refreshed() {
    // Short lives: access tokens 20 s (renewed with 10 s left), cluster tokens 6 s
    // (renewed 2 s before they end). Times are whole seconds: each sleep leaves one to
    // spare.
    let mut t = setup(json!({"access_token_lifetime": 20, "exchanged_token_lifetime": 6})).await;
    let first = token_of(&device_login(&t, EXEC_V1BETA1).await);
    let login = t.login_record(1);
    assert!(login["refresh_token"].is_string(), "{login}");
    assert_eq!(token_of(&t.cached(EXEC_V1BETA1, "alice")), first);

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let second = token_of(&t.cached(EXEC_V1BETA1, "alice"));
    assert_ne!(second, first, "renewed before it expires");
    assert_eq!(
        t.login_record(1)["refresh_token"],
        login["refresh_token"],
        "the access token still had time: no refresh"
    );

    tokio::time::sleep(Duration::from_millis(6500)).await;
    let third = token_of(&t.cached(EXEC_V1BETA1, "alice"));
    assert_ne!(third, second);
    assert_ne!(
        t.login_record(1)["refresh_token"],
        login["refresh_token"],
        "the login was refreshed (and its refresh token rotated)"
    );
    assert_eq!(t.review(&third).await["authenticated"], true);

    // A cached token that has expired is never handed out: with the issuer gone the
    // plugin fails rather than print it.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    t.s.stop();
    let out = t
        .plugin(EXEC_V1BETA1, "alice", &["--device-login", "never"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the issuer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn ci_logs_in_with_an_application_credential_beside_a_person_and_both_log_out() {
    let t = setup(json!({})).await;
    let team_b = t.s.new_project("team-b").await;
    let (bob, bob_token) = t.s.new_member("bob", &team_b).await;
    let (credential_json, _) =
        t.s.application_credential_token(&bob, &bob_token, "ci")
            .await;

    // Nobody logged in and no one to see a code: a clear failure, no hang.
    let out = t.plugin(EXEC_V1, "ci", &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not logged in") && err.contains("application credential"),
        "{err}"
    );

    // The credential from the environment, and from a file as openstack prints it.
    let from_env = t
        .plugin(EXEC_V1, "ci", &[])
        .env(
            "LIMEN_APPLICATION_CREDENTIAL_ID",
            credential_json["id"].as_str().unwrap(),
        )
        .env(
            "LIMEN_APPLICATION_CREDENTIAL_SECRET",
            credential_json["secret"].as_str().unwrap(),
        )
        .output()
        .unwrap();
    let ci_token = token_of(&credential(&from_env, EXEC_V1));
    let claims = claims_of(&ci_token);
    assert_eq!(claims["sub"], bob);
    assert_eq!(
        claims["limen"]["project"]["id"],
        team_b.as_str(),
        "the credential's project"
    );
    let file = t.cache.path().join("ci-credential.json");
    std::fs::write(&file, credential_json.to_string()).unwrap();
    let from_file = t
        .plugin(
            EXEC_V1,
            "ci",
            &["--application-credential-file", file.to_str().unwrap()],
        )
        .output()
        .unwrap();
    assert_eq!(
        token_of(&credential(&from_file, EXEC_V1)),
        ci_token,
        "cached"
    );
    assert!(!String::from_utf8_lossy(&from_file.stderr)
        .contains(credential_json["secret"].as_str().unwrap()));

    // A second account, alice's, side by side.
    let alice_token = token_of(&device_login(&t, EXEC_V1).await);
    assert_ne!(alice_token, ci_token);
    assert_eq!(
        account_dirs_of(t.cache.path())
            .iter()
            .filter(|d| d.is_dir())
            .count(),
        2
    );
    let refresh = t.login_record(2)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let out = t.limen(&["logout", "--issuer", &t.s.base, "--account", "ci"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("logged out account ci"));
    assert_eq!(
        token_of(&t.cached(EXEC_V1, "alice")),
        alice_token,
        "alice is still logged in"
    );
    let out = t
        .plugin(EXEC_V1, "ci", &["--device-login", "never"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ci is logged out");

    let out = t.limen(&["logout", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the issuer ended the login"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (status, body) = token_request(
        &t.s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &t.client),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let out = t
        .plugin(EXEC_V1, "alice", &["--device-login", "never"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "alice is logged out");
}

#[tokio::test]
async fn bad_calls_get_clear_errors() {
    let t = setup(json!({})).await;
    for (info, why) in [
        ("{not json", "not JSON"),
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
            "v1alpha1",
        ),
    ] {
        let out = t
            .plugin(EXEC_V1, "alice", &[])
            .env("KUBERNETES_EXEC_INFO", info)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(limen_bin())
        .args([
            "login",
            "--issuer",
            "http://id.example.com",
            "--client-id",
            "x",
            "--audience",
            "prod",
        ])
        .env("LIMEN_CACHE_DIR", t.cache.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("https"),
        "plain http off loopback"
    );
    let out = t
        .plugin(EXEC_V1, "x", &[])
        .env("LIMEN_APPLICATION_CREDENTIAL_ID", "only-the-id")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("both"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OAuth error answer `error`.
fn refused(status: StatusCode, v: &Value, error: &str) {
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some(error)),
        "{v}"
    );
}

/// An exchange by `client` of alice's access token for `audience`, with `scope`.
async fn exchange_as(
    s: &TestServer,
    client: &str,
    subject: &str,
    audience: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE_GRANT),
        ("client_id", client),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", audience),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    token_request(s, &form).await
}

#[tokio::test]
async fn a_clusters_login_client_gets_its_tokens_for_the_project_asked() {
    let t = setup(json!({})).await;
    let other = t.s.new_project("other").await;
    let (_, bob_token) = t.s.new_member("bob", &other).await;
    let (other_client, _) = register_client(
        &t.s,
        json!({"name": "other", "confidential": false, "grant_types": [EXCHANGE_GRANT]}),
    )
    .await;
    // Keystone project tokens are subjects too: alice's in team-a.
    let (alice_token, _) =
        t.s.token(password_auth_by_id(&t.alice, USER_PASSWORD, None))
            .await;
    let (status, v) = exchange_as(&t.s, &t.client, &alice_token, "prod", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the login client needs no audience listed: {v}"
    );
    let claims = claims_of(v["access_token"].as_str().unwrap());
    assert_eq!(
        claims["limen"]["project"]["id"],
        t.project.as_str(),
        "the cluster's project"
    );
    let roles = claims["limen"]["roles"].to_string();
    assert!(
        roles.contains("\"member\"") && roles.contains("\"reader\""),
        "implied roles too: {roles}"
    );

    let (status, v) = exchange_as(&t.s, &other_client, &alice_token, "prod", None).await;
    refused(status, &v, "invalid_target");
    // A project where alice holds no role, and a scope that is not a project.
    let (status, v) = exchange_as(
        &t.s,
        &t.client,
        &alice_token,
        "prod",
        Some(&format!("project:{other}")),
    )
    .await;
    refused(status, &v, "invalid_scope");
    let (status, v) = exchange_as(&t.s, &t.client, &alice_token, "prod", Some("admin")).await;
    refused(status, &v, "invalid_scope");
    // The OpenID scopes a client's session sends along change nothing.
    let (status, v) = exchange_as(
        &t.s,
        &t.client,
        &alice_token,
        "prod",
        Some("openid profile"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Bob's token is scoped to his project: asking for another is refused, his own works.
    let (status, v) = exchange_as(
        &t.s,
        &t.client,
        &bob_token,
        "prod",
        Some(&format!("project:{}", t.project)),
    )
    .await;
    refused(status, &v, "invalid_scope");
    let (status, v) = exchange_as(
        &t.s,
        &t.client,
        &bob_token,
        "prod",
        Some(&format!("project:{other}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // A disabled cluster's audience is nobody's to ask for, not even a client's that
    // lists it.
    let (listing, _) = register_client(
        &t.s,
        json!({"name": "listing", "confidential": false, "grant_types": [EXCHANGE_GRANT],
               "audiences": ["prod"]}),
    )
    .await;
    let (status, v) = exchange_as(&t.s, &listing, &alice_token, "prod", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) =
        t.s.patch(
            &format!("/v3/limen/clusters/{}", t.cluster),
            &t.s.admin_token,
            json!({"cluster": {"enabled": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for client in [&t.client, &listing] {
        let (status, v) = exchange_as(&t.s, client, &alice_token, "prod", None).await;
        refused(status, &v, "invalid_target");
    }

    // A login client must be able to exchange tokens.
    let (device_only, _) = register_client(
        &t.s,
        json!({"name": "device-only", "confidential": false, "grant_types": [DEVICE_GRANT]}),
    )
    .await;
    for bad in [device_only.as_str(), "no-such-client"] {
        let (status, v) =
            t.s.patch(
                &format!("/v3/limen/clusters/{}", t.cluster),
                &t.s.admin_token,
                json!({"cluster": {"login_client_id": bad}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    }
}

#[tokio::test]
async fn kubeconfig_is_written_from_the_public_cluster_info() {
    let t = setup(json!({})).await;
    let resp =
        t.s.http
            .get(t.s.url(&format!("/kubernetes/clusters/{}", t.cluster)))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(
        info["cluster"],
        json!({"id": t.cluster, "name": "prod", "domain_id": "default", "project_id": t.project,
               "api_server": "https://k8s.example.com:6443", "ca_pem": null, "audience": "prod",
               "issuer": t.s.base, "login_client_id": t.client})
    );
    let resp =
        t.s.http
            .get(t.s.url("/kubernetes/clusters/nope"))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 404, "Keystone's error body: {body}");

    let kubeconfig = t.cache.path().join("kube").join("config");
    let existing = "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: other\n  cluster: {server: 'https://other:6443'}\n";
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(&kubeconfig, existing).unwrap();
    let out = t.limen(&[
        "kubeconfig",
        "--issuer",
        &t.s.base,
        &t.cluster,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--account",
        "alice",
        "--set-current",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(doc["current-context"], "prod");
    assert_eq!(doc["clusters"][0]["name"], "other", "kept");
    let cluster = &doc["clusters"][1]["cluster"];
    assert_eq!(cluster["server"], "https://k8s.example.com:6443");
    assert_eq!(cluster["extensions"][0]["extension"]["audience"], "prod");
    let exec = &doc["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], limen_bin().display().to_string());
    assert_eq!(exec["provideClusterInfo"], true);
    assert_eq!(
        exec["args"],
        json!([
            "login",
            "--issuer",
            t.s.base,
            "--client-id",
            t.client,
            "--account",
            "alice"
        ])
    );

    // An unknown cluster writes nothing.
    let before = std::fs::read_to_string(&kubeconfig).unwrap();
    let out = t.limen(&[
        "kubeconfig",
        "--issuer",
        &t.s.base,
        "0123abcd",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no cluster"));
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), before);
}
