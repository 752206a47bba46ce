//! Several nodes on one database agreeing on key material (`[keys] source = "database"`):
//! Fernet and credential keys in the store sealed with a key-encryption key, JWS public
//! keys published there, rotations and a cloud-wide token-format switch reaching every node
//! while requests keep succeeding. Runs on SQLite (nodes share the file in WAL mode) and on
//! PostgreSQL (`LIMEN_TEST_DATABASE_URL`).

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn is_jws(token: &str) -> bool {
    token.split('.').count() == 3
}

async fn password_token(s: &TestServer) -> Result<String, String> {
    let (status, id, body) = s
        .authenticate(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            None,
        ))
        .await;
    match (status, id) {
        (StatusCode::CREATED, Some(id)) => Ok(id),
        _ => Err(format!("{} issued {status}: {body}", s.base)),
    }
}

/// Runs `limen ARGS` with `node`'s configuration on a thread, so requests can go on
/// meanwhile.
fn cli_thread(node: &TestServer, args: &[&str]) -> std::thread::JoinHandle<Output> {
    let mut cmd = limen_command(node, args);
    std::thread::spawn(move || cmd.output().expect("run limen"))
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issues tokens on every node in turn and validates each on every node, plus `old`
/// tokens, until `stop` returns true; returns the failures and how many checks ran.
async fn traffic(
    nodes: &[&TestServer],
    old: &[String],
    mut stop: impl FnMut() -> bool,
) -> (Vec<String>, usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checks = 0;
    let mut issued = Vec::new();
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop() && Instant::now() < deadline {
        let issuer = nodes[i % nodes.len()];
        i += 1;
        checks += 1;
        let token = match password_token(issuer).await {
            Ok(t) => t,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        for n in nodes {
            for t in std::iter::once(&token).chain(old) {
                checks += 1;
                let st = n.validate(t).await;
                if st != StatusCode::OK {
                    failures.push(format!(
                        "{} answered {st} for a token of {} ({})",
                        n.base,
                        issuer.base,
                        if is_jws(t) { "jws" } else { "fernet" }
                    ));
                }
            }
        }
        issued.push(token);
    }
    eprintln!(
        "traffic: {checks} checks, {} tokens issued, {} failures",
        issued.len(),
        failures.len()
    );
    (failures, checks, issued)
}

/// Every node validates every token.
async fn valid_everywhere(nodes: &[&TestServer], tokens: &[String]) {
    for n in nodes {
        for t in tokens {
            assert_eq!(
                n.validate(t).await,
                StatusCode::OK,
                "{} rejects {t}",
                n.base
            );
        }
    }
}

/// `limen serve` with this configuration, expected to fail at start: its stderr.
fn failing_start(config: &str, database_url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("limen.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(limen_bin())
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", database_url])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn limen serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "limen serve should not start");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("limen serve started (or hung) where it must fail");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every stored sealed key, as text.
async fn key_table(database_url: &str) -> Vec<(String, i64, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let rows = sqlx::query("SELECT kind, number, sealed FROM key_material ORDER BY kind, number")
        .fetch_all(&pool)
        .await
        .unwrap();
    let out = rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<i64, _>(1),
                r.get::<String, _>(2),
            )
        })
        .collect();
    pool.close().await;
    out
}

fn key_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .trim()
                .to_string()
        })
        .filter(|k| !k.is_empty())
        .collect()
}

#[tokio::test]
async fn nodes_without_key_files_share_tokens_and_credentials() {
    let kek_dir = tempfile::tempdir().unwrap();
    let config = database_keys_config(&new_kek(kek_dir.path(), "kek"), "");
    let n1 = TestServer::start_with(&config).await;
    assert!(
        !n1.dir.path().join("fernet-keys").exists(),
        "database mode writes no Fernet key files"
    );
    let n2 = n1.join(&config).await;
    assert!(!n2.dir.path().join("fernet-keys").exists());
    assert!(!n2.dir.path().join("credential-keys").exists());
    // n2 holds no key file, yet validates n1's token (its admin token is n1's) …
    assert_eq!(n2.validate(&n1.admin_token).await, StatusCode::OK);
    // … and n1 validates n2's.
    let t2 = n2.admin_project_token().await;
    assert!(!is_jws(&t2));
    assert_eq!(n1.validate(&t2).await, StatusCode::OK);
    let (st, _) = n2.get("/v3/users", &n1.admin_token).await;
    assert_eq!(st, StatusCode::OK);

    // A credential encrypted on one node reads on the other.
    let (_, v) = n1.get("/v3/users?name=admin", &n1.admin_token).await;
    let admin_id = v["users"][0]["id"].as_str().unwrap().to_string();
    let blob = r#"{"access": "a-cluster", "secret": "s-cluster"}"#;
    let (st, v) = n1
        .post(
            "/v3/credentials",
            &n1.admin_token,
            json!({"credential": {"user_id": admin_id, "type": "cert", "blob": blob}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cid = v["credential"]["id"].as_str().unwrap().to_string();
    let (st, v) = n2
        .get(&format!("/v3/credentials/{cid}"), &n1.admin_token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["credential"]["blob"], json!(blob));

    // Everything stored is sealed with the KEK.
    let table = key_table(&n1.database_url).await;
    assert_eq!(
        table.iter().filter(|r| r.0 == "fernet").count(),
        2,
        "{table:?}"
    );
    assert_eq!(table.iter().filter(|r| r.0 == "credential").count(), 2);
    for (_, _, sealed) in &table {
        assert!(sealed.starts_with("kek1."), "not sealed: {sealed}");
    }

    // Credential rotation in the database re-encrypts, and both nodes still read it.
    let out = n2.limen(&["keys", "credential", "rotate"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in [&n1, &n2] {
        let (st, v) = n
            .get(&format!("/v3/credentials/{cid}"), &n1.admin_token)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["credential"]["blob"], json!(blob));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fernet_rotation_on_one_node_fails_no_request_anywhere() {
    let kek_dir = tempfile::tempdir().unwrap();
    let config = database_keys_config(
        &new_kek(kek_dir.path(), "kek"),
        "[fernet_tokens]\nmax_active_keys = 5\n",
    );
    let n1 = TestServer::start_with(&config).await;
    let n2 = n1.join(&config).await;
    let old = vec![
        password_token(&n1).await.unwrap(),
        password_token(&n2).await.unwrap(),
    ];
    let before: Vec<_> = key_table(&n1.database_url).await;
    // Two rotations on node 1 while both nodes issue and validate.
    let rotations = {
        let n1_config = (n1.config_path.clone(), n1.dir.path().to_path_buf());
        let url = n1.database_url.clone();
        std::thread::spawn(move || {
            let mut outs = Vec::new();
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(1200));
                outs.push(
                    Command::new(limen_bin())
                        .arg("--config")
                        .arg(&n1_config.0)
                        .arg("--data-dir")
                        .arg(&n1_config.1)
                        .args(["--database-url", &url])
                        .args(["keys", "fernet", "rotate"])
                        .output()
                        .expect("rotate"),
                );
            }
            std::thread::sleep(Duration::from_millis(1500));
            outs
        })
    };
    let (failures, checks, issued) = traffic(&[&n1, &n2], &old, || rotations.is_finished()).await;
    let outs = rotations.join().unwrap();
    for o in &outs {
        assert_ok(o, "limen keys fernet rotate");
    }
    assert!(String::from_utf8_lossy(&outs[1].stdout).contains("primary key is now 3"));
    assert!(
        failures.is_empty(),
        "{} of {checks} failed: {failures:?}",
        failures.len()
    );
    assert!(checks > 20, "only {checks} checks ran");
    // Pre-rotation and mid-rotation tokens stay valid everywhere.
    valid_everywhere(&[&n1, &n2], &old).await;
    valid_everywhere(&[&n1, &n2], &issued).await;
    // The old staged key became the primary: the same ciphertext, renumbered.
    let after = key_table(&n1.database_url).await;
    let staged_before = &before
        .iter()
        .find(|r| r.0 == "fernet" && r.1 == 0)
        .unwrap()
        .2;
    assert!(after
        .iter()
        .any(|r| r.0 == "fernet" && r.1 == 2 && &r.2 == staged_before));
    assert_eq!(
        after
            .iter()
            .filter(|r| r.0 == "fernet")
            .map(|r| r.1)
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jws_public_keys_are_published_and_rotation_fails_nothing() {
    let kek_dir = tempfile::tempdir().unwrap();
    let config = database_keys_config(
        &new_kek(kek_dir.path(), "kek"),
        "[token]\nprovider = \"jws\"\n",
    );
    let n1 = TestServer::start_with(&config).await;
    assert!(is_jws(&n1.admin_token));
    // Node 2 makes its own key pair at start and publishes it; no file is copied.
    let mut n2 = n1.join(&config).await;
    assert!(n2.dir.path().join("jws-keys/private/private.pem").exists());
    let own_public: Vec<_> = std::fs::read_dir(n2.dir.path().join("jws-keys/public"))
        .unwrap()
        .collect();
    assert_eq!(own_public.len(), 1, "node 2 holds only its own public key");
    let t2 = n2.admin_project_token().await;
    assert!(is_jws(&t2));
    let old = vec![n1.admin_token.clone(), t2.clone()];
    // Node 2 validates with its own admin token from here on (node 1's gets retired below).
    n2.admin_token = t2;
    valid_everywhere(&[&n1, &n2], &old).await;
    let listed = assert_ok(&n1.limen(&["keys", "jws", "list"]), "jws list");
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let n1_old = listed
        .lines()
        .find(|l| l.contains("this node's signing key"))
        .and_then(|l| l.split_whitespace().next())
        .expect("node 1's key is listed")
        .to_string();

    // Node 1 rotates while both nodes issue and validate.
    let rotation = cli_thread(&n1, &["keys", "jws", "rotate"]);
    let (failures, checks, issued) = traffic(&[&n1, &n2], &old, || rotation.is_finished()).await;
    let out = rotation.join().unwrap();
    assert!(assert_ok(&out, "jws rotate").contains("waiting"));
    // A little more traffic with the new key in use.
    let until = Instant::now() + Duration::from_secs(2);
    let (more, more_checks, more_issued) =
        traffic(&[&n1, &n2], &old, || Instant::now() > until).await;
    assert!(
        failures.is_empty(),
        "{} of {checks} failed: {failures:?}",
        failures.len()
    );
    assert!(
        more.is_empty(),
        "{} of {more_checks} failed: {more:?}",
        more.len()
    );
    valid_everywhere(&[&n1, &n2], &issued).await;
    valid_everywhere(&[&n1, &n2], &more_issued).await;
    let listed = assert_ok(&n1.limen(&["keys", "jws", "list"]), "jws list");
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(!listed
        .lines()
        .any(|l| l.starts_with(&n1_old) && l.contains("this node's signing key")));

    // Retiring node 1's old key: node 2 stops trusting it (node 1 keeps its own file).
    let out = n1.limen_unchecked(&["keys", "jws", "retire", "0000000000000000"]);
    assert!(!out.status.success());
    assert_ok(&n1.limen(&["keys", "jws", "retire", &n1_old]), "jws retire");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(n2.validate(&old[0]).await, StatusCode::NOT_FOUND);
    assert_eq!(n2.validate(&old[1]).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_format_switches_for_the_whole_cloud_without_failures() {
    let kek_dir = tempfile::tempdir().unwrap();
    let config = database_keys_config(&new_kek(kek_dir.path(), "kek"), "");
    let n1 = TestServer::start_with(&config).await;
    let n2 = n1.join(&config).await;
    let mut old = vec![
        password_token(&n1).await.unwrap(),
        password_token(&n2).await.unwrap(),
    ];
    assert!(!is_jws(&old[0]) && !is_jws(&old[1]));
    let shown = assert_ok(&n1.limen(&["token-format", "show"]), "show");
    assert!(shown.contains("issue fernet, accept fernet"), "{shown}");

    // Issuing a format not yet accepted everywhere is refused.
    let out = n1.limen_unchecked(&[
        "token-format",
        "set",
        "--issue",
        "jws",
        "--accept",
        "fernet",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("accept"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");

    // Fernet → JWS in two steps, while both nodes issue and validate.
    let steps = {
        let (cfg, dir, url) = (
            n1.config_path.clone(),
            n1.dir.path().to_path_buf(),
            n1.database_url.clone(),
        );
        std::thread::spawn(move || {
            let run = |args: &[&str]| {
                Command::new(limen_bin())
                    .arg("--config")
                    .arg(&cfg)
                    .arg("--data-dir")
                    .arg(&dir)
                    .args(["--database-url", &url])
                    .args(args)
                    .output()
                    .expect("limen token-format")
            };
            let a = run(ACCEPT_BOTH_ISSUE_FERNET);
            // Without waiting: the command itself waits until JWS is accepted everywhere.
            let b = run(ACCEPT_BOTH_ISSUE_JWS);
            std::thread::sleep(Duration::from_millis(1500));
            vec![a, b]
        })
    };
    let (failures, checks, issued) = traffic(&[&n1, &n2], &old, || steps.is_finished()).await;
    let outs = steps.join().unwrap();
    for o in &outs {
        assert_ok(o, "token-format set");
    }
    assert!(
        String::from_utf8_lossy(&outs[1].stdout).contains("waiting"),
        "JWS became the issued format only after every node had time to accept it"
    );
    assert!(
        failures.is_empty(),
        "{} of {checks} failed: {failures:?}",
        failures.len()
    );
    valid_everywhere(&[&n1, &n2], &issued).await;
    let j1 = password_token(&n1).await.unwrap();
    let j2 = password_token(&n2).await.unwrap();
    assert!(is_jws(&j1) && is_jws(&j2), "both nodes issue JWS now");
    valid_everywhere(&[&n1, &n2], &old).await;
    old.extend([j1, j2]);

    // And back to Fernet; JWS tokens stay valid everywhere.
    let back = cli_thread(&n2, ACCEPT_BOTH_ISSUE_FERNET);
    let (failures, checks, issued) = traffic(&[&n1, &n2], &old, || back.is_finished()).await;
    assert_ok(&back.join().unwrap(), "token-format set back");
    assert!(
        failures.is_empty(),
        "{} of {checks} failed: {failures:?}",
        failures.len()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let f1 = password_token(&n1).await.unwrap();
    let f2 = password_token(&n2).await.unwrap();
    assert!(!is_jws(&f1) && !is_jws(&f2));
    valid_everywhere(&[&n1, &n2], &old).await;
    valid_everywhere(&[&n1, &n2], &issued).await;
    let shown = assert_ok(&n2.limen(&["token-format", "show"]), "show");
    assert!(
        shown.contains("stored for the whole cloud: issue fernet, accept fernet,jws"),
        "{shown}"
    );

    // Clearing returns every node to its configuration (Fernet only): JWS is refused again.
    assert_ok(&n1.limen(&["token-format", "clear"]), "clear");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in [&n1, &n2] {
        assert_eq!(n.validate(&old[2]).await, StatusCode::NOT_FOUND);
        assert_eq!(n.validate(&old[0]).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_missing_or_wrong_kek_stops_the_node_with_a_clear_error() {
    let kek_dir = tempfile::tempdir().unwrap();
    let kek = new_kek(kek_dir.path(), "kek");
    let n1 = TestServer::start_with(&database_keys_config(&kek, "")).await;

    let no_kek = format!("{DEFAULT_CONFIG}\n[keys]\nsource = \"database\"\n");
    let err = failing_start(&no_kek, &n1.database_url);
    assert!(err.contains("no key-encryption key"), "{err}");
    assert!(err.contains("kek_file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let wrong = new_kek(kek_dir.path(), "other");
    let err = failing_start(&database_keys_config(&wrong, ""), &n1.database_url);
    assert!(err.contains("cannot open the fernet keys"), "{err}");
    assert!(err.contains("key-encryption key"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    std::fs::write(kek_dir.path().join("bad"), "not a key\n").unwrap();
    let err = failing_start(
        &database_keys_config(&kek_dir.path().join("bad"), ""),
        &n1.database_url,
    );
    assert!(err.contains("32 bytes"), "{err}");

    // The KEK may come from LIMEN_KEK instead of a file.
    let no_kek_path = kek_dir.path().join("no-kek.toml");
    std::fs::write(&no_kek_path, &no_kek).unwrap();
    let with_env = |value: &str| {
        Command::new(limen_bin())
            .arg("--config")
            .arg(&no_kek_path)
            .arg("--data-dir")
            .arg(n1.dir.path())
            .args(["--database-url", &n1.database_url])
            .args(["keys", "fernet", "setup"])
            .env("LIMEN_KEK", value)
            .output()
            .unwrap()
    };
    let out = with_env(std::fs::read_to_string(&kek).unwrap().trim());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("already holds fernet keys"));
    let out = with_env(std::fs::read_to_string(&wrong).unwrap().trim());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the fernet keys"));

    // Rotating with the wrong KEK changes nothing.
    let before = key_table(&n1.database_url).await;
    std::fs::write(&n1.config_path, database_keys_config(&wrong, "")).unwrap();
    let out = n1.limen_unchecked(&["keys", "fernet", "rotate"]);
    assert!(!out.status.success());
    assert_eq!(key_table(&n1.database_url).await, before);
    assert_eq!(n1.validate(&n1.admin_token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_keystone_key_repository_moves_into_the_database_sealed() {
    // A cloud running on key files (as Keystone does)…
    let n1 = TestServer::start().await;
    let fernet_dir = n1.dir.path().join("fernet-keys");
    let credential_dir = n1.dir.path().join("credential-keys");
    let plain: Vec<String> = key_files(&fernet_dir)
        .into_iter()
        .chain(key_files(&credential_dir))
        .collect();
    assert_eq!(plain.len(), 4);
    let token = n1.admin_token.clone();

    // … moves its keys into the database and switches to it.
    let kek_dir = tempfile::tempdir().unwrap();
    let config = database_keys_config(&new_kek(kek_dir.path(), "kek"), "");
    std::fs::write(&n1.config_path, &config).unwrap();
    let out = n1.limen(&["keys", "fernet", "import", fernet_dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[0, 1]"));
    n1.limen(&[
        "keys",
        "credential",
        "import",
        credential_dir.to_str().unwrap(),
    ]);
    let again = n1.limen_unchecked(&["keys", "fernet", "import", fernet_dir.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--replace"));

    // No key appears in plain text in the database.
    let table = key_table(&n1.database_url).await;
    assert_eq!(table.len(), 4);
    for (kind, number, sealed) in &table {
        for key in &plain {
            assert!(
                !sealed.contains(key.as_str()),
                "{kind} {number} holds a plain key"
            );
        }
    }

    // Moved away, the files are no longer needed: the token issued before still validates,
    // on this node and on a new one.
    std::fs::rename(&fernet_dir, n1.dir.path().join("old-fernet-keys")).unwrap();
    let mut n1 = n1;
    n1.restart_with_config(&config);
    assert_eq!(n1.validate(&token).await, StatusCode::OK);
    let n2 = n1.join(&config).await;
    assert_eq!(n2.validate(&token).await, StatusCode::OK);
}

#[tokio::test]
async fn the_kek_is_replaced_with_a_rolling_restart_and_a_reseal() {
    let kek_dir = tempfile::tempdir().unwrap();
    let old_kek = new_kek(kek_dir.path(), "old");
    let config = database_keys_config(&old_kek, "");
    let mut n1 = TestServer::start_with(&config).await;
    let mut n2 = n1.join(&config).await;
    let token = n1.admin_token.clone();
    let new_kek_path = new_kek(kek_dir.path(), "new");
    // Everything is sealed with the old KEK so far: its id is in every row.
    let old_id = {
        let table = key_table(&n1.database_url).await;
        let ids: std::collections::BTreeSet<String> = table
            .iter()
            .map(|r| r.2.split('.').nth(1).unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1, "one KEK seals everything: {ids:?}");
        ids.into_iter().next().unwrap()
    };
    let transition = format!(
        "{}previous_kek_files = [{:?}]\n",
        database_keys_config(&new_kek_path, ""),
        old_kek.display().to_string()
    );
    // Rolling restart onto the new KEK, the old one still opening the stored keys.
    n1.restart_with_config(&transition);
    assert_eq!(n2.validate(&token).await, StatusCode::OK);
    n2.restart_with_config(&transition);
    for n in [&n1, &n2] {
        assert_eq!(n.validate(&token).await, StatusCode::OK);
    }
    let out = n1.limen(&["keys", "kek", "reseal"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-sealed 4 keys"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let table = key_table(&n1.database_url).await;
    assert!(
        table
            .iter()
            .all(|r| !r.2.starts_with(&format!("kek1.{old_id}."))),
        "nothing is sealed with the old KEK any more"
    );
    // A rotation now seals with the new KEK and reaches both nodes.
    n2.limen(&["keys", "fernet", "rotate"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = password_token(&n1).await.unwrap();
    for n in [&n1, &n2] {
        assert_eq!(n.validate(&token).await, StatusCode::OK);
        assert_eq!(n.validate(&fresh).await, StatusCode::OK);
    }
    // The old KEK is no longer needed, and no longer enough.
    let final_config = database_keys_config(&new_kek_path, "");
    n1.restart_with_config(&final_config);
    assert_eq!(n1.validate(&fresh).await, StatusCode::OK);
    let err = failing_start(&config, &n1.database_url);
    assert!(err.contains("cannot open the fernet keys"), "{err}");
}
