//! The OpenID Provider on three nodes sharing one database (keys in the database) while
//! operators rotate its signing keys. Every step of a flow lands on another node, as
//! behind a load balancer: machines get client-credentials tokens (RS256 and ES256) and
//! have them introspected elsewhere; people log in, consent, redeem, refresh, read
//! userinfo and exchange ID tokens for cluster tokens; a device is approved on one node
//! and polls the others. Every token must verify against the key set any node serves,
//! and after each rotation a token signed by the new primary must verify against the set
//! a relying party cached before it (the staged key's overlap). No request may fail.

use jsonwebtoken::jwk::JwkSet;
use limen_tests::oauth::*;
use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CALLBACK: &str = "http://127.0.0.1:9/cb";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ROTATIONS: usize = 4;
/// Longer than a node takes to follow a change (a second), as an operator would space
/// rotations.
const BETWEEN_ROTATIONS: Duration = Duration::from_millis(2500);

struct Provider {
    nodes: Vec<TestServer>,
    issuer: String,
    /// A confidential client-credentials client per algorithm: (id, secret, alg).
    machines: Vec<(String, String, &'static str)>,
    /// A public client for people: code, refresh, device, exchange to `cluster-a`.
    people_client: String,
    /// Holds the KEK file while the nodes run.
    _kek_dir: tempfile::TempDir,
}

impl Provider {
    fn node(&self, k: usize) -> &TestServer {
        &self.nodes[k % self.nodes.len()]
    }
}

#[derive(Default)]
struct Tally {
    failures: Mutex<Vec<String>>,
    machine_rounds: AtomicUsize,
    person_rounds: AtomicUsize,
    device_rounds: AtomicUsize,
    overlap_checks: AtomicUsize,
    done: AtomicBool,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().expect("lock").push(what);
    }

    /// Counts a round that went through; keeps why one did not.
    fn record(&self, outcome: Result<(), String>, rounds: &AtomicUsize) {
        match outcome {
            Ok(()) => {
                rounds.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.fail(e),
        }
    }
}

/// `url` (absolute or a path) on `node`: where a load balancer would have sent it.
fn on(node: &TestServer, url: &str) -> String {
    let path = match url.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => url,
    };
    node.url(path)
}

fn expect(
    status: StatusCode,
    want: StatusCode,
    what: &str,
    body: &impl std::fmt::Display,
) -> Result<(), String> {
    if status == want {
        Ok(())
    } else {
        Err(format!("{what}: {status} {body}"))
    }
}

async fn start() -> Provider {
    let kek_dir = tempfile::tempdir().expect("temp dir");
    let kek = new_kek(kek_dir.path(), "kek");
    let oidc = |issuer: &str| format!("[oidc]\nissuer = \"{issuer}\"\ndevice_poll_interval = 1\n");
    let first = TestServer::start_with(&database_keys_config(
        &kek,
        &oidc("http://127.0.0.1:@PORT@"),
    ))
    .await;
    // One issuer for the whole cloud: the first node's URL stands for the balancer's.
    let issuer = first.base.clone();
    let config = database_keys_config(&kek, &oidc(&issuer));
    let second = first.join(&config).await;
    let third = first.join(&config).await;
    first.limen(&["keys", "oidc", "setup"]);
    let nodes = vec![first, second, third];
    for n in &nodes {
        wait_for_oidc_keys(n).await;
    }
    let mut machines = Vec::new();
    for alg in ["RS256", "ES256"] {
        let (id, secret) = register_client(
            &nodes[0],
            json!({"name": format!("machine-{alg}"), "grant_types": ["client_credentials"],
                   "token_signing_alg": alg}),
        )
        .await;
        machines.push((id, secret.expect("a secret"), alg));
    }
    let (people_client, _) = register_client(
        &nodes[1],
        json!({"name": "kubectl", "confidential": false, "redirect_uris": [CALLBACK],
               "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT,
                               EXCHANGE_GRANT],
               "audiences": ["cluster-a"]}),
    )
    .await;
    for name in ["person-0", "person-1", "device-owner"] {
        nodes[2]
            .create(
                "users",
                "user",
                json!({"name": name, "password": USER_PASSWORD}),
            )
            .await;
    }
    Provider {
        nodes,
        issuer,
        machines,
        people_client,
        _kek_dir: kek_dir,
    }
}

/// A client-credentials token from one node, checked against another's key set and
/// introspected on a third.
async fn machine_round(p: &Provider, i: usize) -> Result<(), String> {
    let (id, secret, alg) = &p.machines[i % p.machines.len()];
    let node = p.node(i);
    let (status, body) = token_request(
        node,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await;
    expect(
        status,
        StatusCode::OK,
        &format!("client_credentials on {}", node.base),
        &body,
    )?;
    let token = body["access_token"].as_str().unwrap_or_default();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if format!("{:?}", header.alg) != *alg {
        return Err(format!("{alg} client got a {:?} token", header.alg));
    }
    let verifier = p.node(i + 1);
    verify_jwt(
        &fetch_jwk_set(verifier).await,
        token,
        &p.issuer,
        &p.issuer,
        "at+jwt",
    )
    .map_err(|e| format!("{}'s key set: {e}", verifier.base))?;
    let introspector = p.node(i + 2);
    let resp = introspector
        .http
        .post(introspector.url("/oauth2/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let answer: Value = resp.json().await.map_err(|e| e.to_string())?;
    if answer["active"] != true {
        return Err(format!(
            "{} introspects a live token as {answer}",
            introspector.base
        ));
    }
    Ok(())
}

/// One login of `user` through the code flow with every step on the next node, then
/// userinfo, a refresh and an exchange, each elsewhere again.
async fn person_round(
    p: &Provider,
    browser: &mut PageClient,
    user: &str,
    i: usize,
) -> Result<(), String> {
    let (verifier, challenge) = pkce(&format!("{user}-round-{i}"));
    let client = &p.people_client;
    let mut step = i;
    let mut next = || {
        step += 1;
        p.node(step)
    };
    let mut page = browser
        .get(&next().url(&format!(
            "/oauth2/authorize?response_type=code&client_id={client}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid%20profile&state=s{i}\
             &nonce=n{i}&code_challenge={challenge}&code_challenge_method=S256"
        )))
        .await;
    if page.status == StatusCode::SEE_OTHER {
        let login = browser
            .log_in(&on(next(), page.location()), user, USER_PASSWORD)
            .await;
        expect(login.status, StatusCode::SEE_OTHER, "login", &login.body)?;
        page = browser.get(&on(next(), login.location())).await;
    }
    if page.status == StatusCode::OK {
        let form = consent_answer(&page, "allow");
        let fields: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        page = browser
            .post(&next().url("/oauth2/authorize"), &fields)
            .await;
    }
    expect(page.status, StatusCode::FOUND, "authorize", &page.body)?;
    let code = query_param(page.location(), "code")
        .ok_or_else(|| format!("no code in {}", page.location()))?;
    let redeemer = next();
    let (status, tokens) = token_request(
        redeemer,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    expect(
        status,
        StatusCode::OK,
        &format!("redeem on {}", redeemer.base),
        &tokens,
    )?;
    let id_token = tokens["id_token"].as_str().unwrap_or_default();
    verify_jwt(
        &fetch_jwk_set(next()).await,
        id_token,
        &p.issuer,
        client,
        "JWT",
    )?;
    userinfo_ok(next(), tokens["access_token"].as_str().unwrap_or_default()).await?;
    let (status, refreshed) = token_request(
        next(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().unwrap_or_default(),
            ),
        ],
    )
    .await;
    expect(status, StatusCode::OK, "refresh", &refreshed)?;
    userinfo_ok(
        next(),
        refreshed["access_token"].as_str().unwrap_or_default(),
    )
    .await?;
    let (status, cluster) = token_request(
        next(),
        &[
            ("grant_type", EXCHANGE_GRANT),
            ("client_id", client),
            ("subject_token", id_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("audience", "cluster-a"),
        ],
    )
    .await;
    expect(status, StatusCode::OK, "exchange", &cluster)?;
    let cluster_token = cluster["access_token"].as_str().unwrap_or_default();
    verify_jwt(
        &fetch_jwk_set(next()).await,
        cluster_token,
        &p.issuer,
        "cluster-a",
        EXCHANGED_TYP,
    )?;
    Ok(())
}

async fn userinfo_ok(node: &TestServer, access_token: &str) -> Result<(), String> {
    let resp = node
        .http
        .get(node.url("/oauth2/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    expect(
        status,
        StatusCode::OK,
        &format!("userinfo on {}", node.base),
        &body,
    )
}

/// A device login: asked on one node, approved through the page on others, polled on
/// each node in turn.
async fn device_round(p: &Provider, browser: &mut PageClient, i: usize) -> Result<(), String> {
    let client = &p.people_client;
    let asked = p.node(i);
    let resp = asked
        .http
        .post(asked.url("/oauth2/device_authorization"))
        .form(&[("client_id", client.as_str()), ("scope", "openid")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let d: Value = resp.json().await.map_err(|e| e.to_string())?;
    let device_code = d["device_code"].as_str().unwrap_or_default();
    let link = d["verification_uri_complete"].as_str().unwrap_or_default();
    let mut page = browser.get(&on(p.node(i + 1), link)).await;
    if page.status == StatusCode::SEE_OTHER {
        let login = browser
            .log_in(
                &on(p.node(i + 2), page.location()),
                "device-owner",
                USER_PASSWORD,
            )
            .await;
        expect(
            login.status,
            StatusCode::SEE_OTHER,
            "device login",
            &login.body,
        )?;
        page = browser.get(&on(p.node(i + 1), login.location())).await;
    }
    expect(page.status, StatusCode::OK, "device page", &page.body)?;
    let (code, csrf) = (page.field("user_code"), page.field("csrf"));
    let done = browser
        .post(
            &p.node(i + 2).url("/device"),
            &[
                ("csrf", &csrf),
                ("user_code", &code),
                ("decision", "approve"),
            ],
        )
        .await;
    expect(done.status, StatusCode::OK, "approve", &done.body)?;
    for poll in 0..10 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let poller = p.node(i + poll);
        let (status, body) = token_request(
            poller,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", client),
                ("device_code", device_code),
            ],
        )
        .await;
        if status == StatusCode::OK {
            let id_token = body["id_token"].as_str().unwrap_or_default();
            let set = fetch_jwk_set(p.node(i + poll + 1)).await;
            verify_jwt(&set, id_token, &p.issuer, client, "JWT")?;
            return Ok(());
        }
        if body["error"] != "authorization_pending" {
            return Err(format!("device poll on {}: {status} {body}", poller.base));
        }
    }
    Err("an approved device never got its tokens".into())
}

/// Rotates on each node in turn. Before each rotation a relying party caches the key
/// set; once every node follows the rotation, a token signed by the new primary must
/// verify against that cached set.
async fn operate(p: &Provider, t: &Tally) {
    for k in 0..ROTATIONS {
        tokio::time::sleep(BETWEEN_ROTATIONS).await;
        let cached: JwkSet = fetch_jwk_set(p.node(k)).await;
        let published = cached.keys.len();
        let mut rotate = limen_command(p.node(k + 1), &["keys", "oidc", "rotate"]);
        let out = tokio::task::spawn_blocking(move || rotate.output())
            .await
            .expect("join")
            .expect("run limen");
        if !out.status.success() {
            t.fail(format!(
                "rotation {k} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        // The rotation adds a staged slot (two keys); retired ones stay a day.
        let deadline = Instant::now() + Duration::from_secs(5);
        for n in &p.nodes {
            while fetch_jwk_set(n).await.keys.len() != published + 2 {
                if Instant::now() > deadline {
                    t.fail(format!("{} never followed rotation {k}", n.base));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for (j, (id, secret, _)) in p.machines.iter().enumerate() {
            let (status, body) = token_request(
                p.node(k + 2 + j),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ],
            )
            .await;
            let token = body["access_token"].as_str().unwrap_or_default();
            match (
                status,
                verify_jwt(&cached, token, &p.issuer, &p.issuer, "at+jwt"),
            ) {
                (StatusCode::OK, Ok(_)) => {
                    t.overlap_checks.fetch_add(1, Ordering::Relaxed);
                }
                (status, verified) => t.fail(format!(
                    "after rotation {k}, a new token against the key set cached before it: \
                     {status} {verified:?}"
                )),
            }
        }
    }
    t.done.store(true, Ordering::Relaxed);
}

#[tokio::test]
async fn oidc_flows_on_three_nodes_survive_key_rotations() {
    let p = start().await;
    let t = Tally::default();
    let machines = |offset: usize| {
        let (p, t) = (&p, &t);
        async move {
            let mut i = offset;
            while !t.done.load(Ordering::Relaxed) {
                t.record(machine_round(p, i).await, &t.machine_rounds);
                i += 2;
            }
        }
    };
    let person = |user: &'static str, offset: usize| {
        let (p, t) = (&p, &t);
        async move {
            let mut browser = PageClient::new();
            let mut i = offset;
            while !t.done.load(Ordering::Relaxed) {
                t.record(
                    person_round(p, &mut browser, user, i).await,
                    &t.person_rounds,
                );
                i += 1;
            }
        }
    };
    let device = async {
        let mut browser = PageClient::new();
        let mut i = 0;
        while !t.done.load(Ordering::Relaxed) {
            t.record(device_round(&p, &mut browser, i).await, &t.device_rounds);
            i += 1;
        }
    };
    tokio::join!(
        operate(&p, &t),
        machines(0),
        machines(1),
        person("person-0", 0),
        person("person-1", 1),
        device,
    );
    let failures = t.failures.lock().expect("lock");
    let rounds = (
        t.machine_rounds.load(Ordering::Relaxed),
        t.person_rounds.load(Ordering::Relaxed),
        t.device_rounds.load(Ordering::Relaxed),
        t.overlap_checks.load(Ordering::Relaxed),
    );
    eprintln!("rounds (machine, person, device, overlap checks): {rounds:?}");
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert_eq!(
        rounds.3,
        ROTATIONS * p.machines.len(),
        "every overlap check ran"
    );
    assert!(
        rounds.0 >= 10 && rounds.1 >= 4 && rounds.2 >= 2,
        "too little load to mean anything: {rounds:?}"
    );
}
