//! Three `limen serve` processes on one database under a steady mix of requests spread
//! across them (password logins, validations of tokens from other nodes, rescoping, API
//! calls), while an operator rotates keys and revokes tokens: no request may fail, every
//! token stays valid on every node until it is revoked, and then no node accepts it.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 6;
const LOAD: Duration = Duration::from_secs(9);
const USERS: usize = 4;

#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// Tokens issued during the run, with the node that issued them.
    issued: Mutex<Vec<(usize, String)>>,
    /// Revoked tokens and when the revocation was answered.
    revoked: Mutex<Vec<(String, Instant)>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().expect("lock").push(what);
    }
    fn revoked_at(&self, token: &str) -> Option<Instant> {
        self.revoked
            .lock()
            .expect("lock")
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, at)| *at)
    }
    fn pick(&self, n: usize) -> Option<(usize, String)> {
        let issued = self.issued.lock().expect("lock");
        (!issued.is_empty()).then(|| issued[n % issued.len()].clone())
    }
}

/// Replaces `to`'s key files with `from`'s, each file atomically (as an operator's
/// `rsync --delay-updates` would), the way Keystone's documentation distributes keys.
fn distribute_keys(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read keys") {
        let entry = entry.expect("entry");
        let tmp = to.join(format!(".{}.tmp", entry.file_name().to_string_lossy()));
        std::fs::copy(entry.path(), &tmp).expect("copy key");
        std::fs::rename(&tmp, to.join(entry.file_name())).expect("move key");
    }
}

struct Cluster {
    nodes: Vec<TestServer>,
    project: String,
    users: Vec<String>,
}

/// Three rotations in a run: a key must stay active through all of them, or tokens
/// encrypted with it stop validating (Keystone's rule: max_active_keys ≥ rotations within a
/// token's lifetime + 2).
fn config() -> String {
    format!("{DEFAULT_CONFIG}\n[fernet_tokens]\nmax_active_keys = 6\n")
}

async fn cluster() -> Cluster {
    let a = TestServer::start_with(&config()).await;
    let from = a.dir.path().to_path_buf();
    let mut nodes = vec![];
    for _ in 0..2 {
        let n = a
            .join_prepared(&config(), |dir| {
                for keys in ["fernet-keys", "credential-keys"] {
                    copy_dir(&from.join(keys), &dir.join(keys));
                }
            })
            .await;
        nodes.push(n);
    }
    nodes.insert(0, a);
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
            let revoked = t.revoked_at(&token);
            let s = node.validate(&token).await;
            let ok = match revoked {
                None => s == StatusCode::OK,
                // Within the propagation bound either answer is right; after it, only 404.
                Some(at) if at.elapsed() < Duration::from_secs(1) => {
                    s == StatusCode::OK || s == StatusCode::NOT_FOUND
                }
                Some(_) => s == StatusCode::NOT_FOUND,
            };
            if !ok {
                t.fail(format!(
                    "validate on node {n} a token from node {from} (revoked: {}): {s}",
                    revoked.is_some()
                ));
            }
        }
        _ => {
            let Some((from, token)) = t.pick(i / 4 + 1) else {
                return false;
            };
            if t.revoked_at(&token).is_some() {
                return false;
            }
            let (s, v) = node
                .call(
                    Method::GET,
                    &format!("/v3/projects/{}", c.project),
                    Some(&token),
                    None,
                )
                .await;
            if s != StatusCode::OK {
                t.fail(format!(
                    "GET project on node {n} with a token from node {from}: {s} {v}"
                ));
            }
            let (s, _, v) = node
                .authenticate(token_auth(&token, Some(project_scope(&c.project))))
                .await;
            if s != StatusCode::CREATED {
                t.fail(format!(
                    "rescope on node {n} of a token from node {from}: {s} {v}"
                ));
            }
        }
    }
    t.requests.fetch_add(1, Ordering::Relaxed);
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_rotate_keys_and_revoke_under_load_without_a_failed_request() {
    let c = Arc::new(cluster().await);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut workers = vec![];
    for w in 0..WORKERS {
        let (c, t) = (c.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while started.elapsed() < LOAD {
                if !one_request(&c, &t, i).await {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                i += WORKERS;
            }
        }));
    }

    // The operator: Fernet rotations on node 0, distributed to the others, and revocations.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.nodes[0].limen(&["keys", "fernet", "rotate"]);
        let repo = c.nodes[0].dir.path().join("fernet-keys");
        for node in &c.nodes[1..] {
            distribute_keys(&repo, &node.dir.path().join("fernet-keys"));
        }
        let victim = (0..100)
            .filter_map(|k| tally.pick(round * 7 + k))
            .find(|(_, t)| tally.revoked_at(t).is_none());
        if let Some((_, token)) = victim {
            // Recorded first: from now on a worker may see either answer for a second.
            tally
                .revoked
                .lock()
                .expect("lock")
                .push((token.clone(), Instant::now()));
            let node = &c.nodes[(round + 1) % c.nodes.len()];
            assert_eq!(node.revoke(&token).await, StatusCode::NO_CONTENT);
        }
    }
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

    // Afterwards every token is valid on every node, except the revoked ones, which none
    // accepts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let issued = tally.issued.lock().expect("lock").clone();
    for (from, token) in &issued {
        let want = if tally.revoked_at(token).is_some() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        for (n, node) in c.nodes.iter().enumerate() {
            assert_eq!(
                node.validate(token).await,
                want,
                "token from node {from} on node {n}"
            );
        }
    }
    let revoked = tally.revoked.lock().expect("lock").len();
    assert_eq!(revoked, 3, "the operator revoked fewer tokens than planned");
}
