//! Units of work on the store itself (SQLite, and PostgreSQL when
//! `LIMEN_TEST_DATABASE_URL` names a server): writes through a unit become visible
//! together at its commit or never, a store method's own transaction becomes part of
//! the unit, the first failed step fails the whole unit, and the change feed entry
//! commits with the write it describes.

use limen_core::error::StoreError;
use limen_core::model::{Domain, Project};
use limen_core::store::Store;
use limen_core::token::validation_cache::Dependency;
use limen_store::SqlStore;
use limen_tests::fresh_database;

/// A fresh store, and the directory that must outlive it (SQLite's file).
async fn store() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    (SqlStore::open(&url).await.unwrap(), dir)
}

fn domain(id: &str) -> Domain {
    Domain {
        id: id.into(),
        name: format!("name-{id}"),
        description: String::new(),
        enabled: true,
        tags: Vec::new(),
        options: Default::default(),
        extra: Default::default(),
    }
}

fn project(id: &str, domain_id: &str) -> Project {
    Project {
        id: id.into(),
        name: format!("name-{id}"),
        domain_id: domain_id.into(),
        parent_id: domain_id.into(),
        description: String::new(),
        enabled: true,
        tags: vec!["a".into(), "b".into()],
        options: Default::default(),
        extra: Default::default(),
    }
}

async fn exists(s: &SqlStore, domain_id: &str) -> bool {
    s.get_domain(domain_id).await.unwrap().is_some()
}

#[tokio::test]
async fn a_units_writes_appear_together_at_commit() {
    let (s, _dir) = store().await;
    let unit = s.begin_unit().await.unwrap();
    unit.create_domain(&domain("d1")).await.unwrap();
    // A store method with its own transaction (a project and its tags) joins the unit.
    unit.create_project(&project("p1", "d1")).await.unwrap();
    // The unit reads its own writes; nobody else sees them yet.
    assert!(unit.get_domain("d1").await.unwrap().is_some());
    assert_eq!(
        unit.get_project("p1").await.unwrap().unwrap().tags,
        ["a", "b"]
    );
    assert!(!exists(&s, "d1").await);
    unit.commit().await.unwrap();
    assert!(exists(&s, "d1").await);
    assert_eq!(s.get_project("p1").await.unwrap().unwrap().tags, ["a", "b"]);
    // A committed unit takes no more writes.
    assert!(unit.create_domain(&domain("d2")).await.is_err());
    assert!(!exists(&s, "d2").await);
}

#[tokio::test]
async fn a_unit_dropped_without_commit_writes_nothing() {
    let (s, _dir) = store().await;
    {
        let unit = s.begin_unit().await.unwrap();
        unit.create_domain(&domain("d1")).await.unwrap();
        unit.create_project(&project("p1", "d1")).await.unwrap();
    }
    assert!(!exists(&s, "d1").await);
    assert!(s.get_project("p1").await.unwrap().is_none());
    // The connection went back clean: the store writes as before.
    s.create_domain(&domain("d1")).await.unwrap();
    assert!(exists(&s, "d1").await);
}

#[tokio::test]
async fn a_failed_step_fails_the_whole_unit() {
    let (s, _dir) = store().await;
    s.create_domain(&domain("taken")).await.unwrap();
    let unit = s.begin_unit().await.unwrap();
    unit.create_domain(&domain("d1")).await.unwrap();
    // A plain statement that fails...
    match unit.create_domain(&domain("taken")).await {
        Err(StoreError::Duplicate { .. }) => {}
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // ...fails the unit even if the caller ignored it: the commit refuses.
    assert!(unit.commit().await.is_err());
    assert!(!exists(&s, "d1").await);

    // The same for a step with its own transaction (a project in a missing domain).
    let unit = s.begin_unit().await.unwrap();
    unit.create_domain(&domain("d2")).await.unwrap();
    assert!(unit
        .create_project(&project("p1", "no-such-domain"))
        .await
        .is_err());
    assert!(unit.commit().await.is_err());
    assert!(!exists(&s, "d2").await);
}

#[tokio::test]
async fn the_change_feed_entry_commits_with_its_unit() {
    let (s, _dir) = store().await;
    let before = s.latest_token_change().await.unwrap();
    let changed = [Dependency::Domain("d1".into())];
    {
        let unit = s.begin_unit().await.unwrap();
        unit.create_domain(&domain("d1")).await.unwrap();
        unit.record_token_changes(&changed, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    assert_eq!(s.latest_token_change().await.unwrap(), before);
    let unit = s.begin_unit().await.unwrap();
    unit.create_domain(&domain("d1")).await.unwrap();
    let numbered = unit
        .record_token_changes(&changed, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    // Numbers stay gap-free: the rolled-back entry's number is used again.
    assert_eq!(numbered, before + 1);
    assert_eq!(s.latest_token_change().await.unwrap(), before);
    unit.commit().await.unwrap();
    assert_eq!(s.latest_token_change().await.unwrap(), before + 1);
    let feed = s.token_changes_since(before, 10).await.unwrap();
    assert_eq!(feed, vec![(before + 1, changed[0].clone())]);
}

#[tokio::test]
async fn units_do_not_nest() {
    let (s, _dir) = store().await;
    let unit = s.begin_unit().await.unwrap();
    assert!(unit.begin_unit().await.is_err());
}
