//! Killing the server mid-write loses nothing it acknowledged and leaves the store
//! consistent.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn sigkill_during_writes_keeps_every_acknowledged_write() {
    let mut s = TestServer::start().await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let http = s.http.clone();
        let url = s.url("/v3/projects");
        let tok = s.admin_token.clone();
        let acked = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..1000 {
                let name = format!("w{w}-{i}");
                let body = json!({"project": {"name": name, "domain_id": "default", "tags": ["a", "b", "c"]}});
                match http.post(&url).header("X-Auth-Token", &tok).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => acked.lock().unwrap().push(name),
                    _ => break,
                }
            }
        }));
    }
    // Killed mid-stream, once some writes are acknowledged (however busy the machine is).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.kill_and_restart();
    for w in writers {
        let _ = w.await;
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() > 5,
        "the writers made progress before the kill ({})",
        acked.len()
    );
    let token = s.admin_project_token().await;
    let (st, v) = s.get("/v3/projects?domain_id=default", &token).await;
    assert_eq!(st, StatusCode::OK);
    let stored: Vec<(String, usize)> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["tags"].as_array().unwrap().len(),
            )
        })
        .collect();
    for name in &acked {
        let found = stored.iter().find(|(n, _)| n == name);
        assert!(found.is_some(), "acknowledged project {name} lost");
        assert_eq!(
            found.unwrap().1,
            3,
            "project {name} stored without all its tags"
        );
    }
    // Every stored project is whole, acknowledged or not.
    assert!(stored.iter().all(|(n, tags)| n == "admin" || *tags == 3));
    if s.database_url.starts_with("sqlite") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&s.database_url)
            .await
            .unwrap();
        let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
}

/// What a domain owns besides its projects, as ids: (cluster, OAuth client, identity
/// provider). Each comes with three cluster rules, a domain configuration and a protocol.
struct Owned {
    domain: String,
    cluster: String,
    client: String,
    idp: String,
}

async fn domain_with_everything(s: &TestServer, n: usize) -> Owned {
    let t = &s.admin_token;
    let domain = s
        .create("domains", "domain", json!({"name": format!("tenant-{n}")}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let project = s
        .create(
            "projects",
            "project",
            json!({"name": "p", "domain_id": domain}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .post(
            "/v3/limen/clusters",
            t,
            json!({"cluster": {"name": format!("c{n}"), "domain_id": domain,
                               "api_server": format!("https://c{n}.example.com")}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let cluster = v["cluster"]["id"].as_str().unwrap().to_string();
    for ns in ["dev", "test", "prod"] {
        let rule = json!({"rule": {"subjects": [{"project_id": project, "role": "member"}],
                                   "verbs": ["get"], "namespaces": [ns],
                                   "api_groups": [""], "resources": ["pods"]}});
        let (st, v) = s
            .post(&format!("/v3/limen/clusters/{cluster}/rules"), t, rule)
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (st, v) = s
        .post(
            "/v3/limen/oauth_clients",
            t,
            json!({"oauth_client": {"name": format!("kubectl-{n}"), "domain_id": domain,
                   "confidential": false,
                   "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let client = v["oauth_client"]["id"].as_str().unwrap().to_string();
    let config = json!({"config": {"identity": {"driver": "sql"}}});
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &format!("/v3/domains/{domain}/config"),
            Some(t),
            Some(config),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let idp = format!("idp-{n}");
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &format!("/v3/OS-FEDERATION/identity_providers/{idp}"),
            Some(t),
            Some(json!({"identity_provider": {"domain_id": domain}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .patch(
            &format!("/v3/domains/{domain}"),
            t,
            json!({"domain": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    Owned {
        domain,
        cluster,
        client,
        idp,
    }
}

/// How many of a domain's parts are stored: the domain, its cluster, the cluster's
/// rules, its OAuth client, its configuration and its identity provider (8 when whole).
async fn parts_stored(s: &TestServer, o: &Owned) -> usize {
    let count = |sql: String| async move { s.stored_strings(&sql).await.len() };
    count(format!("SELECT id FROM domains WHERE id = '{}'", o.domain)).await
        + count(format!(
            "SELECT id FROM documents WHERE kind = 'k8s_cluster' AND id = '{}'",
            o.cluster
        ))
        .await
        + count(format!(
            "SELECT id FROM documents WHERE kind = 'k8s_rule' AND body LIKE '%{}%'",
            o.cluster
        ))
        .await
        + count(format!(
            "SELECT id FROM documents WHERE kind = 'oauth_client' AND id = '{}'",
            o.client
        ))
        .await
        + count(format!(
            "SELECT id FROM documents WHERE kind = 'domain_config' AND id = '{}'",
            o.domain
        ))
        .await
        + count(format!(
            "SELECT id FROM documents WHERE kind = 'identity_provider' AND id = '{}'",
            o.idp
        ))
        .await
}

/// A domain delete removes the domain with its clusters and their rules, OAuth clients,
/// configuration and identity providers in one unit of work: killed while deleting
/// many, every domain is afterwards either whole or entirely gone, and every delete the
/// client saw acknowledged is complete.
#[tokio::test]
async fn sigkill_during_domain_deletes_leaves_no_half_deleted_domain() {
    let mut s = TestServer::start().await;
    let mut owned = Vec::new();
    for n in 0..16 {
        owned.push(domain_with_everything(&s, n).await);
    }
    for o in &owned {
        assert_eq!(parts_stored(&s, o).await, 8, "set up whole");
    }
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut deleters = Vec::new();
    for chunk in owned.chunks(4) {
        let ids: Vec<String> = chunk.iter().map(|o| o.domain.clone()).collect();
        let (http, base, tok) = (s.http.clone(), s.url("/v3/domains"), s.admin_token.clone());
        let acked = acknowledged.clone();
        deleters.push(tokio::spawn(async move {
            for id in ids {
                let r = http
                    .delete(format!("{base}/{id}"))
                    .header("X-Auth-Token", &tok)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::NO_CONTENT => acked.lock().unwrap().push(id),
                    _ => break,
                }
            }
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    s.kill_and_restart();
    for d in deleters {
        let _ = d.await;
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 3, "deletes made progress before the kill");
    for o in &owned {
        let parts = parts_stored(&s, o).await;
        if acked.contains(&o.domain) {
            assert_eq!(parts, 0, "acknowledged delete of {} incomplete", o.domain);
        } else {
            assert!(
                parts == 0 || parts == 8,
                "domain {} half deleted: {parts} of 8 parts left",
                o.domain
            );
        }
    }
}
