//! A harness that runs the real `limen` binary: bootstrap, then `serve` on an ephemeral
//! loopback port, with a fresh data directory (and, when `LIMEN_TEST_DATABASE_URL` names a
//! PostgreSQL server, a fresh database on it) for every test.

pub mod api;
pub mod attack;
pub mod domain_owned;
pub mod in_process;
pub mod oauth;

pub use api::Api;
use rand::Rng;
use reqwest::header::HeaderMap;
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

    /// Sends a request with an optional token and JSON body.
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
}

impl Api for TestServer {
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.expect("body"))
    }

    fn browser(&self) -> oauth::PageClient {
        oauth::PageClient::new()
    }

    fn admin(&self) -> &str {
        &self.admin_token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn diagnostics(&self) -> String {
        self.log_tail()
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
