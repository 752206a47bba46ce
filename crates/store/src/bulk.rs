//! [`BulkLoader`]: writes many users, projects and role assignments quickly, for large
//! test datasets (the scale benchmark) and imports.
//!
//! [`SqlStore`](crate::SqlStore) writes one row per statement and one transaction per
//! call, which is right for an API request and far too slow for a million rows: every
//! commit waits for the disk. Here each statement inserts many rows (as many as the
//! drivers' placeholder limits allow) and each call is one transaction, so a load of a
//! million rows needs a handful of commits. The rows are written exactly as the store
//! writes them (same columns, same encodings), so the service reads them like its own.

use crate::codec::{b, to_json, to_micros};
use crate::sql::{Arg, Sql};
use crate::store_impl::Backend;
use crate::{OpenError, SqlStore};
use limen_core::error::{StoreError, StoreResult};
use limen_core::model::{Actor, Assignment, Password, Project, Target, User, SYSTEM_ALL};
use sqlx::{AnyConnection, Connection, Executor};

/// Placeholders per statement. Both databases allow far more (SQLite 32,766, PostgreSQL
/// 65,535), but binding through sqlx costs time that grows with the square of a
/// statement's placeholders: 30,000 made a 10,000-row load take 6 s instead of 0.6 s.
/// A few hundred rows per statement is already past the point where bigger helps.
const MAX_PARAMS: usize = 3_000;

/// One connection that inserts rows in bulk. Open it on a database that no server is
/// writing to at the same time (a bulk transaction holds SQLite's write lock throughout).
pub struct BulkLoader {
    conn: AnyConnection,
    backend: Backend,
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::backend_cause("database", e)
}

impl BulkLoader {
    /// Opens the database at `url`, creating it and bringing its schema up to date first
    /// (through [`SqlStore::open`], so the schema is the service's own).
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        let store = SqlStore::open(url).await?;
        let backend = store.backend();
        drop(store);
        let mut conn = AnyConnection::connect(url)
            .await
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        if backend == Backend::Sqlite {
            // Foreign keys on, as the service has them, so a load cannot leave rows that
            // point nowhere. NORMAL sync: in WAL mode a commit is still atomic and the
            // database consistent after a crash; only the last commit may be lost, which
            // a load simply repeats.
            for pragma in [
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA busy_timeout = 10000",
            ] {
                conn.execute(pragma)
                    .await
                    .map_err(|e| OpenError::Connect(e.to_string()))?;
            }
        }
        Ok(BulkLoader { conn, backend })
    }

    /// Runs the multi-row `INSERT INTO <head> VALUES (…), (…) <tail>` statements for
    /// `rows` (each `cols` values) in one transaction. Returns the rows inserted.
    async fn insert(
        &mut self,
        head: &str,
        tail: &str,
        cols: usize,
        rows: Vec<Vec<Arg>>,
    ) -> StoreResult<u64> {
        let per_statement = (MAX_PARAMS / cols).max(1);
        let mut tx = self.conn.begin().await.map_err(err)?;
        let mut inserted = 0;
        for chunk in rows.chunks(per_statement) {
            let mut sql = Sql::new(&format!("INSERT INTO {head} VALUES "));
            for (i, row) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" });
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        sql.push(", ");
                    }
                    sql.bind(v.clone());
                }
                sql.push(")");
            }
            sql.push(tail);
            inserted += sql
                .query()
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
        }
        tx.commit().await.map_err(err)?;
        Ok(inserted)
    }

    /// Inserts projects (and their tags) in one transaction.
    pub async fn projects(&mut self, projects: &[Project]) -> StoreResult<u64> {
        let rows = projects
            .iter()
            .map(|p| {
                vec![
                    Arg::from(&p.id),
                    (&p.name).into(),
                    (&p.domain_id).into(),
                    (&p.parent_id).into(),
                    (&p.description).into(),
                    b(p.enabled).into(),
                    to_json(&p.options).into(),
                    to_json(&p.extra).into(),
                ]
            })
            .collect();
        let n = self
            .insert(
                "projects (id, name, domain_id, parent_id, description, enabled, options, extra)",
                "",
                8,
                rows,
            )
            .await?;
        let tags: Vec<Vec<Arg>> = projects
            .iter()
            .flat_map(|p| {
                p.tags
                    .iter()
                    .enumerate()
                    .map(|(i, t)| vec![Arg::from(&p.id), t.into(), (i as i64).into()])
            })
            .collect();
        if !tags.is_empty() {
            self.insert("project_tags (project_id, name, position)", "", 3, tags)
                .await?;
        }
        Ok(n)
    }

    /// Inserts users and their current passwords in one transaction each. A password's
    /// `seq` is its creation time in microseconds times 16, as the store numbers them
    /// (the store adds a per-process counter to tell apart passwords set in the same
    /// microsecond; a bulk load sets at most one per user, so it needs none).
    pub async fn users(&mut self, users: &[User], passwords: &[Password]) -> StoreResult<u64> {
        let rows = users
            .iter()
            .map(|u| {
                vec![
                    Arg::from(&u.id),
                    (&u.name).into(),
                    (&u.domain_id).into(),
                    b(u.enabled).into(),
                    u.default_project_id.clone().into(),
                    to_json(&u.options).into(),
                    to_json(&u.extra).into(),
                    to_micros(u.created_at).into(),
                    u.last_active_at.map(to_micros).into(),
                    u.failed_auth_count.into(),
                    u.failed_auth_at.map(to_micros).into(),
                ]
            })
            .collect();
        let n = self
            .insert(
                "users (id, name, domain_id, enabled, default_project_id, options, extra, created_at, last_active_at, failed_auth_count, failed_auth_at)",
                "",
                11,
                rows,
            )
            .await?;
        let rows: Vec<Vec<Arg>> = passwords
            .iter()
            .map(|p| {
                let seq = to_micros(p.created_at).saturating_mul(16);
                vec![
                    Arg::from(format!("{}-{seq}-bulk", p.user_id)),
                    (&p.user_id).into(),
                    (&p.hash).into(),
                    to_micros(p.created_at).into(),
                    p.expires_at.map(to_micros).into(),
                    b(p.self_service).into(),
                    seq.into(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            self.insert(
                "passwords (id, user_id, hash, created_at, expires_at, self_service, seq)",
                "",
                7,
                rows,
            )
            .await?;
        }
        Ok(n)
    }

    /// Inserts role assignments in one transaction; ones that exist already are skipped,
    /// as the store's own `create_assignment` does.
    pub async fn assignments(&mut self, assignments: &[Assignment]) -> StoreResult<u64> {
        let rows = assignments
            .iter()
            .map(|a| {
                let (at, aid) = match &a.actor {
                    Actor::User(id) => ("user", id.as_str()),
                    Actor::Group(id) => ("group", id.as_str()),
                };
                let (tt, tid) = match &a.target {
                    Target::Project(id) => ("project", id.as_str()),
                    Target::Domain(id) => ("domain", id.as_str()),
                    Target::System => ("system", SYSTEM_ALL),
                };
                vec![
                    Arg::from(at),
                    aid.into(),
                    tt.into(),
                    tid.into(),
                    (&a.role_id).into(),
                    b(a.inherited).into(),
                ]
            })
            .collect();
        self.insert(
            "assignments (actor_type, actor_id, target_type, target_id, role_id, inherited)",
            " ON CONFLICT DO NOTHING",
            6,
            rows,
        )
        .await
    }

    /// Refreshes PostgreSQL's planner statistics, which a load of this size makes stale
    /// (autovacuum would get there, later). SQLite is left as the service leaves it: it
    /// never analyzes, so a loaded database plans queries as a grown one does.
    pub async fn analyze(&mut self) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            self.conn.execute("ANALYZE").await.map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::model::{Extra, DEFAULT_DOMAIN_ID};
    use limen_core::store::{AssignmentFilter, Store, UserFilter};
    use time::OffsetDateTime;

    fn domain() -> limen_core::model::Domain {
        limen_core::model::Domain {
            id: DEFAULT_DOMAIN_ID.into(),
            name: "Default".into(),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Extra::new(),
            extra: Extra::new(),
        }
    }

    // What the loader writes, the store reads back unchanged, across several statements
    // (more rows than fit one) in one transaction.
    #[tokio::test]
    async fn bulk_rows_read_back_through_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqlStore::open(&url).await.expect("open");
        store.create_domain(&domain()).await.expect("domain");
        let role = limen_core::model::Role {
            id: "r1".into(),
            name: "member".into(),
            domain_id: None,
            description: None,
            options: Extra::new(),
            extra: Extra::new(),
        };
        store.create_role(&role).await.expect("role");

        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let n = MAX_PARAMS / 11 * 2 + 7;
        let users: Vec<User> = (0..n)
            .map(|i| User {
                id: format!("u{i:05}"),
                name: format!("user-{i:05}"),
                domain_id: DEFAULT_DOMAIN_ID.into(),
                enabled: i % 2 == 0,
                default_project_id: None,
                options: Extra::new(),
                extra: Extra::new(),
                created_at: now,
                last_active_at: None,
                failed_auth_count: 0,
                failed_auth_at: None,
            })
            .collect();
        let passwords: Vec<Password> = users
            .iter()
            .map(|u| Password {
                user_id: u.id.clone(),
                hash: "$2b$04$hash".into(),
                created_at: now,
                expires_at: None,
                self_service: false,
            })
            .collect();
        let project = Project {
            id: "p1".into(),
            name: "p".into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            parent_id: DEFAULT_DOMAIN_ID.into(),
            description: "d".into(),
            enabled: true,
            tags: vec!["a".into(), "b".into()],
            options: Extra::new(),
            extra: Extra::new(),
        };
        let assignments: Vec<Assignment> = users
            .iter()
            .map(|u| Assignment {
                actor: Actor::User(u.id.clone()),
                target: Target::Project("p1".into()),
                role_id: "r1".into(),
                inherited: false,
            })
            .collect();

        let mut bulk = BulkLoader::open(&url).await.expect("bulk");
        assert_eq!(
            bulk.projects(std::slice::from_ref(&project))
                .await
                .expect("projects"),
            1
        );
        assert_eq!(
            bulk.users(&users, &passwords).await.expect("users"),
            n as u64
        );
        assert_eq!(
            bulk.assignments(&assignments).await.expect("assignments"),
            n as u64
        );
        // Existing assignments are skipped, not an error.
        assert_eq!(bulk.assignments(&assignments[..3]).await.expect("again"), 0);
        bulk.analyze().await.expect("analyze");

        let listed = store
            .list_users(&UserFilter::default())
            .await
            .expect("list");
        assert_eq!(listed.len(), n);
        assert_eq!(listed[3], users[3]);
        assert_eq!(store.get_project("p1").await.expect("get"), Some(project));
        let pw = store.list_passwords("u00042").await.expect("passwords");
        assert_eq!(pw, vec![passwords[42].clone()]);
        let got = store
            .list_assignments(&AssignmentFilter {
                actors: Some(vec![Actor::User("u00007".into())]),
                ..Default::default()
            })
            .await
            .expect("assignments");
        assert_eq!(got, vec![assignments[7].clone()]);
    }
}
