//! Three `limen serve` processes on one database under a steady mix of requests spread
//! across them (password logins, validations of tokens from other nodes, rescoping, API
//! calls), while operators rotate keys, switch the token format and revoke tokens: no
//! request may fail, every token stays valid on every node until it is revoked, and a
//! second after that no node accepts it. Once with Keystone's key files copied between
//! nodes, once with the keys in the database.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 6;
const USERS: usize = 4;
/// The bound on how long a revoked token may still validate somewhere.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Up to six rotations in a run: a key must stay active through all of them, or tokens
/// encrypted with it stop validating (Keystone's rule: max_active_keys ≥ rotations within
/// a token's lifetime + 2).
const KEYS_EXTRA: &str = "[fernet_tokens]\nmax_active_keys = 8\n";

#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// Tokens issued by password logins, with the node that issued them.
    issued: Mutex<Vec<(usize, String)>>,
    /// Revoked tokens, from the moment the revocation was sent.
    revoked: Mutex<Vec<(String, Instant)>>,
    done: AtomicBool,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().expect("lock").push(what);
    }

    fn revoked_at(&self, token: &str) -> Option<Instant> {
        let revoked = self.revoked.lock().expect("lock");
        revoked.iter().find(|(t, _)| t == token).map(|(_, at)| *at)
    }

    fn pick(&self, n: usize) -> Option<(usize, String)> {
        let issued = self.issued.lock().expect("lock");
        (!issued.is_empty()).then(|| issued[n % issued.len()].clone())
    }

    /// A request with `token` answered `ok` or not: wrong unless the token was revoked
    /// meanwhile (then either answer is right for [`PROPAGATION`]).
    fn check(&self, ok: bool, token: &str, what: impl FnOnce() -> String) {
        let excused = self
            .revoked_at(token)
            .is_some_and(|at| at.elapsed() < PROPAGATION);
        if !ok && !excused {
            self.fail(what());
        }
    }
}

struct Cluster {
    nodes: Vec<TestServer>,
    project: String,
    users: Vec<String>,
}

/// `nodes[0]` was bootstrapped; the others joined it.
async fn cluster(nodes: Vec<TestServer>) -> Cluster {
    let p = nodes[0]
        .create(
            "projects",
            "project",
            json!({"name": "load", "domain_id": "default"}),
        )
        .await;
    let project = p["id"].as_str().expect("id").to_string();
    let mut users = vec![];
    for i in 0..USERS {
        let (id, _) = nodes[0].new_member(&format!("user{i}"), &project).await;
        users.push(id);
    }
    Cluster {
        nodes,
        project,
        users,
    }
}

/// Request `i` of the mix, on node `i mod 3`; every answer is checked. False when there
/// was nothing to do yet (no token issued).
async fn one_request(c: &Cluster, t: &Tally, i: usize) -> bool {
    let n = i % c.nodes.len();
    let node = &c.nodes[n];
    match (i / c.nodes.len()) % 4 {
        0 => {
            let user = &c.users[i % c.users.len()];
            let body = password_auth_by_id(user, USER_PASSWORD, Some(project_scope(&c.project)));
            let (s, id, v) = node.authenticate(body).await;
            match (s, id) {
                (StatusCode::CREATED, Some(id)) => t.issued.lock().expect("lock").push((n, id)),
                _ => t.fail(format!("login on node {n}: {s} {v}")),
            }
        }
        1 | 2 => {
            let Some((from, token)) = t.pick(i / 4) else {
                return false;
            };
            let s = node.validate(&token).await;
            match t.revoked_at(&token) {
                Some(at) if at.elapsed() >= PROPAGATION => {
                    if s != StatusCode::NOT_FOUND {
                        t.fail(format!(
                            "node {n} still validates a token from node {from} {:?} after its revocation: {s}",
                            at.elapsed()
                        ));
                    }
                }
                _ => t.check(s == StatusCode::OK, &token, || {
                    format!("validate on node {n} a token from node {from}: {s}")
                }),
            }
        }
        _ => {
            let Some((from, token)) = t.pick(i / 4 + 1) else {
                return false;
            };
            if t.revoked_at(&token).is_some() {
                return false;
            }
            let path = format!("/v3/projects/{}", c.project);
            let (s, v) = node.call(Method::GET, &path, Some(&token), None).await;
            t.check(s == StatusCode::OK, &token, || {
                format!("GET project on node {n} with a token from node {from}: {s} {v}")
            });
            let rescope = token_auth(&token, Some(project_scope(&c.project)));
            let (s, _, v) = node.authenticate(rescope).await;
            t.check(s == StatusCode::CREATED, &token, || {
                format!("rescope on node {n} of a token from node {from}: {s} {v}")
            });
        }
    }
    t.requests.fetch_add(1, Ordering::Relaxed);
    true
}

/// What the operators do, one step every 700 ms while the load runs.
enum Step {
    /// `limen ARGS` with node N's configuration.
    Cli(usize, &'static [&'static str]),
    /// Copies node 0's Fernet repository to the other nodes, each file atomically (as
    /// `rsync --delay-updates` would), as Keystone's documentation distributes keys.
    DistributeFernetKeys,
    /// Revokes a token issued during the run, on node N.
    Revoke(usize),
}

async fn operate(c: &Cluster, t: &Tally, steps: &[Step]) {
    for (k, step) in steps.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(700)).await;
        match step {
            Step::Cli(n, args) => {
                let mut cmd = limen_command(&c.nodes[*n], args);
                let out = tokio::task::spawn_blocking(move || cmd.output())
                    .await
                    .expect("join")
                    .expect("run limen");
                assert!(
                    out.status.success(),
                    "limen {args:?} on node {n}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Step::DistributeFernetKeys => {
                let from = c.nodes[0].dir.path().join("fernet-keys");
                // The new staged key 0 goes last: a node reloading between the renames
                // must never hold the new 0 without the primary its old 0 became (the
                // order a directory lists in is arbitrary).
                let mut names: Vec<_> = std::fs::read_dir(&from)
                    .expect("read keys")
                    .map(|e| e.expect("entry").file_name())
                    .collect();
                names.sort_by_key(|n| n == "0");
                for node in &c.nodes[1..] {
                    let to = node.dir.path().join("fernet-keys");
                    for name in &names {
                        let source = from.join(name);
                        let tmp = to.join(format!(".{}.tmp", name.to_string_lossy()));
                        std::fs::copy(&source, &tmp).expect("copy key");
                        std::fs::rename(&tmp, to.join(name)).expect("move key");
                    }
                }
            }
            Step::Revoke(n) => {
                let victim = (0..100)
                    .filter_map(|j| t.pick(k * 7 + j))
                    .find(|(_, token)| t.revoked_at(token).is_none());
                let (_, token) = victim.expect("a token to revoke");
                // Recorded first: from now on a worker may see either answer for a second.
                t.revoked
                    .lock()
                    .expect("lock")
                    .push((token.clone(), Instant::now()));
                assert_eq!(c.nodes[*n].revoke(&token).await, StatusCode::NO_CONTENT);
            }
        }
    }
    // Let the last step's effects meet the load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// Runs the load while `steps` are carried out, then checks every token on every node.
async fn run(c: Cluster, steps: Vec<Step>) -> Vec<String> {
    let c = Arc::new(c);
    let tally = Arc::new(Tally::default());
    let mut workers = vec![];
    for w in 0..WORKERS {
        let (c, t) = (c.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while !t.done.load(Ordering::Relaxed) {
                if !one_request(&c, &t, i).await {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                i += WORKERS;
            }
        }));
    }
    // Tokens first, so there is something to revoke.
    tokio::time::sleep(Duration::from_millis(800)).await;
    operate(&c, &tally, &steps).await;
    tally.done.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }

    let failures = tally.failures.lock().expect("lock").clone();
    let requests = tally.requests.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(requests > 100, "only {requests} requests were made");
    let revoked = tally.revoked.lock().expect("lock").len();
    let planned = steps
        .iter()
        .filter(|s| matches!(s, Step::Revoke(_)))
        .count();
    assert_eq!(revoked, planned);

    // Afterwards every token is valid on every node, except the revoked ones, which none
    // accepts.
    tokio::time::sleep(PROPAGATION).await;
    let issued = tally.issued.lock().expect("lock").clone();
    for (from, token) in &issued {
        let want = match tally.revoked_at(token) {
            Some(_) => StatusCode::NOT_FOUND,
            None => StatusCode::OK,
        };
        for (n, node) in c.nodes.iter().enumerate() {
            assert_eq!(
                node.validate(token).await,
                want,
                "token from node {from} on node {n}"
            );
        }
    }
    issued.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_with_copied_key_files_rotate_and_revoke_under_load() {
    let config = format!("{DEFAULT_CONFIG}\n{KEYS_EXTRA}");
    let first = TestServer::start_with(&config).await;
    let from = first.dir.path().to_path_buf();
    let mut nodes = vec![];
    for _ in 0..2 {
        nodes.push(
            first
                .join_prepared(&config, |dir| {
                    for keys in ["fernet-keys", "credential-keys"] {
                        copy_dir(&from.join(keys), &dir.join(keys));
                    }
                })
                .await,
        );
    }
    nodes.insert(0, first);
    let c = cluster(nodes).await;
    let rotate: &[&str] = &["keys", "fernet", "rotate"];
    let steps = vec![
        Step::Cli(0, rotate),
        Step::DistributeFernetKeys,
        Step::Revoke(1),
        Step::Cli(0, rotate),
        Step::DistributeFernetKeys,
        Step::Revoke(2),
        Step::Cli(0, rotate),
        Step::DistributeFernetKeys,
        Step::Revoke(0),
    ];
    run(c, steps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_sharing_keys_in_the_database_rotate_switch_formats_and_revoke_under_load() {
    let kek_dir = tempfile::tempdir().expect("temp dir");
    let config = database_keys_config(&new_kek(kek_dir.path(), "kek"), KEYS_EXTRA);
    let first = TestServer::start_with(&config).await;
    let (second, third) = (first.join(&config).await, first.join(&config).await);
    let c = cluster(vec![first, second, third]).await;
    let steps = vec![
        Step::Cli(0, &["keys", "fernet", "rotate"]),
        Step::Revoke(1),
        Step::Cli(1, ACCEPT_BOTH_ISSUE_FERNET),
        Step::Cli(2, ACCEPT_BOTH_ISSUE_JWS),
        Step::Revoke(2),
        Step::Cli(1, &["keys", "jws", "rotate"]),
        Step::Cli(2, &["keys", "fernet", "rotate"]),
        Step::Revoke(0),
        Step::Cli(0, ACCEPT_BOTH_ISSUE_FERNET),
        Step::Revoke(1),
    ];
    let issued = run(c, steps).await;
    let jws = issued.iter().filter(|t| t.split('.').count() == 3).count();
    assert!(
        jws > 0 && jws < issued.len(),
        "both formats were issued during the run ({jws} of {} JWS)",
        issued.len()
    );
}
