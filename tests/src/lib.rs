//! A harness that runs the real `limen` binary: bootstrap, then `serve` on an ephemeral
//! loopback port, with a fresh data directory (and, when `LIMEN_TEST_DATABASE_URL` names a
//! PostgreSQL server, a fresh database on it) for every test.

pub mod attack;
pub mod domain_owned;
pub mod oauth;

use rand::Rng;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "admin-secret-1";
/// The password [`TestServer::new_member`] gives its users.
pub const USER_PASSWORD: &str = "pw-123456";

/// The `limen` binary next to the test executable (`target/<profile>/limen`), or `LIMEN_BIN`.
pub fn limen_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIMEN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = profile_dir.join("limen");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` before the integration tests",
        bin.display()
    );
    bin
}

/// Security-compliance settings tempest also assumes; cheap bcrypt for speed.
pub const DEFAULT_CONFIG: &str = r#"
[identity]
password_hash_rounds = 4

[security_compliance]
lockout_failure_attempts = 2
lockout_duration = 5
unique_last_password_count = 2
minimum_password_age = 0
"#;

pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub database_url: String,
    pub http: Client,
    pub admin_token: String,
    stderr_log: PathBuf,
}

/// A fresh database for this test: SQLite in the data dir, or a new PostgreSQL database
/// when `LIMEN_TEST_DATABASE_URL` points at a server.
pub async fn fresh_database(dir: &Path) -> String {
    match std::env::var("LIMEN_TEST_DATABASE_URL") {
        Ok(server) if server.starts_with("postgres") => {
            let name = format!("limen_t_{:016x}", rand::thread_rng().gen::<u64>());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
                .await
                .expect("connect to LIMEN_TEST_DATABASE_URL");
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", dir.join("limen.db").display()),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(DEFAULT_CONFIG).await
    }

    /// Starts a server with this TOML configuration (`@PORT@` in it becomes the port the
    /// server listens on, e.g. for an issuer URL).
    pub async fn start_with(config: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("limen.toml");
        let port = free_port();
        let config = config.replace("@PORT@", &port.to_string());
        std::fs::write(&config_path, config).expect("write config");
        let database_url = fresh_database(dir.path()).await;
        let out = Command::new(limen_bin())
            .args(["--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--database-url", &database_url])
            .args(["bootstrap", "--admin-password", ADMIN_PASSWORD])
            .args(["--public-url", &format!("http://127.0.0.1:{port}/v3")])
            .output()
            .expect("run limen bootstrap");
        assert!(
            out.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = TestServer {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            stderr_log: dir.path().join("serve.log"),
            dir,
            config_path,
            database_url,
            http: http_client(),
            admin_token: String::new(),
        };
        server.spawn(port);
        server.admin_token = server.admin_project_token().await;
        server
    }

    /// Starts another node on this server's database, with its own data directory (so no
    /// key files are shared) and configuration: a second `limen serve` of the same cloud.
    /// It reuses this node's admin token, which is only valid there if the nodes agree on
    /// key material.
    pub async fn join(&self, config: &str) -> TestServer {
        self.join_prepared(config, |_| {}).await
    }

    /// Like [`TestServer::join`], after `prepare` has filled the new node's data directory
    /// (for example with copies of this node's key files).
    pub async fn join_prepared(&self, config: &str, prepare: impl FnOnce(&Path)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("limen.toml");
        std::fs::write(&config_path, config).expect("write config");
        prepare(dir.path());
        let mut node = TestServer {
            child: None,
            base: String::new(),
            stderr_log: dir.path().join("serve.log"),
            dir,
            config_path,
            database_url: self.database_url.clone(),
            http: http_client(),
            admin_token: self.admin_token.clone(),
        };
        let port = free_port();
        node.base = format!("http://127.0.0.1:{port}");
        node.spawn(port);
        node
    }

    fn spawn(&mut self, port: u16) {
        let log = std::fs::File::create(&self.stderr_log).expect("log file");
        let mut child = Command::new(limen_bin())
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--database-url", &self.database_url])
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn limen serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listen line");
        assert!(
            line.contains("listening on"),
            "limen serve did not start: {line}\n{}",
            self.log_tail()
        );
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL); its port is then closed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server without a chance to clean up (SIGKILL) and starts it again on the
    /// same data.
    pub fn kill_and_restart(&mut self) {
        self.stop();
        let port: u16 = self
            .base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.spawn(port);
        // Pooled connections went with the old process.
        self.http = http_client();
    }

    /// Replaces the configuration file and restarts the server on it (same data, port).
    pub fn restart_with_config(&mut self, config: &str) {
        std::fs::write(&self.config_path, config).expect("write config");
        self.kill_and_restart();
    }

    /// Runs a `limen` command against this server's configuration and data.
    pub fn limen(&self, args: &[&str]) -> std::process::Output {
        let out = self.limen_unchecked(args);
        assert!(
            out.status.success(),
            "limen {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a `limen` command that may fail.
    pub fn limen_unchecked(&self, args: &[&str]) -> std::process::Output {
        Command::new(limen_bin())
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--database-url", &self.database_url])
            .args(args)
            .output()
            .expect("run limen")
    }

    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_log) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional token and JSON body; returns status and JSON (or
    /// `Value::Null` for an empty body). Server errors (5xx) fail the test on the spot.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let resp = self.send(method, path, token, body).await;
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(
            !status.is_server_error(),
            "{path} answered {status}: {text}\n{}",
            self.log_tail()
        );
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `POST /v3/auth/tokens`; returns status, token id (if issued) and body.
    pub async fn authenticate(&self, body: Value) -> (StatusCode, Option<String>, Value) {
        let resp = self
            .send(Method::POST, "/v3/auth/tokens", None, Some(body))
            .await;
        let status = resp.status();
        let id = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.expect("body");
        assert!(!status.is_server_error(), "auth answered {status}: {text}");
        (
            status,
            id,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// Issues a token or fails the test.
    pub async fn token(&self, body: Value) -> (String, Value) {
        let (status, id, body) = self.authenticate(body).await;
        assert_eq!(status, StatusCode::CREATED, "token request failed: {body}");
        (id.expect("X-Subject-Token"), body)
    }

    pub async fn admin_project_token(&self) -> String {
        self.token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}})),
        ))
        .await
        .0
    }

    /// Validates `subject` with the admin token; returns the status.
    pub async fn validate(&self, subject: &str) -> StatusCode {
        self.http
            .get(self.url("/v3/auth/tokens"))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", subject)
            .send()
            .await
            .expect("validate")
            .status()
    }

    /// Revokes `subject` with the admin token; returns the status.
    pub async fn revoke(&self, subject: &str) -> StatusCode {
        self.http
            .delete(self.url("/v3/auth/tokens"))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", subject)
            .send()
            .await
            .expect("revoke")
            .status()
    }

    /// Creates an entity and returns its JSON (asserting 201).
    pub async fn create(&self, collection: &str, key: &str, body: Value) -> Value {
        let (s, v) = self
            .post(
                &format!("/v3/{collection}"),
                &self.admin_token,
                json!({ key: body }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create {collection}: {v}");
        v[key].clone()
    }

    /// A new project `name` in the default domain: its id.
    pub async fn new_project(&self, name: &str) -> String {
        let p = self
            .create(
                "projects",
                "project",
                json!({"name": name, "domain_id": "default"}),
            )
            .await;
        p["id"].as_str().expect("project id").to_string()
    }

    /// A new user (password [`USER_PASSWORD`]) with `member` on `project_id`: its id and a
    /// token scoped to that project.
    pub async fn new_member(&self, name: &str, project_id: &str) -> (String, String) {
        let u = self
            .create(
                "users",
                "user",
                json!({"name": name, "password": USER_PASSWORD}),
            )
            .await;
        let user_id = u["id"].as_str().expect("user id").to_string();
        let member = self.role_id("member").await;
        let (st, v) = self
            .put(
                &format!("/v3/projects/{project_id}/users/{user_id}/roles/{member}"),
                &self.admin_token,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "grant member: {v}");
        let (token, _) = self
            .token(password_auth_by_id(
                &user_id,
                USER_PASSWORD,
                Some(project_scope(project_id)),
            ))
            .await;
        (user_id, token)
    }

    /// Makes an application credential for `user_id` with the user's project token and
    /// logs in with it: the credential (with its secret) and the new token.
    pub async fn application_credential_token(
        &self,
        user_id: &str,
        user_token: &str,
        name: &str,
    ) -> (Value, String) {
        let (st, v) = self
            .post(
                &format!("/v3/users/{user_id}/application_credentials"),
                user_token,
                json!({"application_credential": {"name": name}}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::CREATED,
            "create application credential: {v}"
        );
        let ac = v["application_credential"].clone();
        let (token, _) = self
            .token(
                json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}}),
            )
            .await;
        (ac, token)
    }

    /// The first column of `sql`'s rows, read straight from the database (what is
    /// stored, not what the API shows).
    pub async fn stored_strings(&self, sql: &str) -> Vec<String> {
        sqlx::any::install_default_drivers();
        let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url)
            .await
            .expect("connect to the database");
        sqlx::query_scalar(sql)
            .fetch_all(&mut db)
            .await
            .expect("read the database")
    }

    /// A new domain `name` with a user holding `manager` on it: the domain's id and that
    /// manager's domain-scoped token (the SCS domain-manager persona).
    pub async fn domain_manager(&self, name: &str) -> (String, String) {
        let d = self
            .create("domains", "domain", json!({"name": name}))
            .await;
        let domain = d["id"].as_str().expect("id").to_string();
        let m = self
            .create(
                "users",
                "user",
                json!({"name": format!("{name}-m"), "domain_id": domain, "password": "pw-123456"}),
            )
            .await;
        let user = m["id"].as_str().expect("id").to_string();
        let manager = self.role_id("manager").await;
        self.put(
            &format!("/v3/domains/{domain}/users/{user}/roles/{manager}"),
            &self.admin_token,
        )
        .await;
        let (token, _) = self
            .token(password_auth_by_id(
                &user,
                "pw-123456",
                Some(json!({"domain": {"id": domain}})),
            ))
            .await;
        (domain, token)
    }

    /// What the cluster with `webhook_token` learns of `token`: TokenReview v1's
    /// `status` (the webhook always answers 200).
    pub async fn token_review(&self, webhook_token: &str, token: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/kubernetes/tokenreview"))
            .bearer_auth(webhook_token)
            .json(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "spec": {"token": token}}),
            )
            .send()
            .await
            .expect("token review");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<Value>().await.expect("json")["status"].clone()
    }

    pub async fn role_id(&self, name: &str) -> String {
        let (_, v) = self
            .get(&format!("/v3/roles?name={name}"), &self.admin_token)
            .await;
        v["roles"][0]["id"].as_str().expect("role").to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn password_auth_by_id(user_id: &str, password: &str, scope: Option<Value>) -> Value {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": password}}}});
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    json!({ "auth": auth })
}

pub fn password_auth_by_name(
    user: &str,
    domain_name: &str,
    password: &str,
    scope: Option<Value>,
) -> Value {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": domain_name}, "password": password}}}});
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    json!({ "auth": auth })
}

pub fn token_auth(token: &str, scope: Option<Value>) -> Value {
    let mut auth = json!({"identity": {"methods": ["token"], "token": {"id": token}}});
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    json!({ "auth": auth })
}

pub fn project_scope(id: &str) -> Value {
    json!({"project": {"id": id}})
}

/// Copies directory `from` (files and subdirectories) to `to`, keeping file permissions.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A KEK file made by `limen keys kek generate`, in `dir`.
pub fn new_kek(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(limen_bin())
        .args(["keys", "kek", "generate", "--output"])
        .arg(&path)
        .output()
        .expect("run limen keys kek generate");
    assert!(
        out.status.success(),
        "kek generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("KEK file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the KEK file is its owner's only");
    }
    path
}

/// `limen token-format set` accepting both formats and issuing Fernet, or JWS: the two
/// steps of a switch without downtime.
pub const ACCEPT_BOTH_ISSUE_FERNET: &[&str] = &[
    "token-format",
    "set",
    "--issue",
    "fernet",
    "--accept",
    "fernet,jws",
];
pub const ACCEPT_BOTH_ISSUE_JWS: &[&str] = &[
    "token-format",
    "set",
    "--issue",
    "jws",
    "--accept",
    "fernet,jws",
];

/// [`DEFAULT_CONFIG`] plus `extra`, with key material in the database sealed by `kek`.
pub fn database_keys_config(kek: &Path, extra: &str) -> String {
    format!(
        "{DEFAULT_CONFIG}\n{extra}\n[keys]\nsource = \"database\"\nkek_file = {:?}\n",
        kek.display().to_string()
    )
}

/// `limen ARGS` with `node`'s configuration, not yet run (to run it on another thread
/// while requests go on).
pub fn limen_command(node: &TestServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(limen_bin());
    cmd.arg("--config")
        .arg(&node.config_path)
        .arg("--data-dir")
        .arg(node.dir.path())
        .args(["--database-url", &node.database_url])
        .args(args);
    cmd
}
