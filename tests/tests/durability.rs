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
