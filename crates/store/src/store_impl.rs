//! [`SqlStore`]: the `Store` trait on SQLite or PostgreSQL.

use crate::codec::*;
use crate::conn::{backend_err, Conn, UnitState, Work};
use crate::sql::{bind_all, Arg, Sql};
use crate::OpenError;
use async_trait::async_trait;
use limen_core::delegation::credential::{SealedBlob, StoredCredential};
use limen_core::error::{StoreError, StoreResult};
use limen_core::model::*;
use limen_core::store::*;
use limen_core::token::validation_cache::Dependency;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct SqlStore {
    /// For what only the store itself calls (keys, readiness); every `Store` method runs
    /// its statements on `conn`.
    pub(crate) pool: AnyPool,
    pub(crate) conn: Conn,
    backend: Backend,
}

/// Distinguishes rows written in the same microsecond (password history order).
static SEQ: AtomicU64 = AtomicU64::new(0);

fn document_body(r: &AnyRow) -> StoreResult<serde_json::Value> {
    let body: String = get(r, "body")?;
    serde_json::from_str(&body).map_err(|e| StoreError::backend_cause("corrupt document", e))
}

fn actor_cols(a: &Actor) -> (&'static str, &str) {
    match a {
        Actor::User(id) => ("user", id),
        Actor::Group(id) => ("group", id),
    }
}

fn target_cols(t: &Target) -> (&'static str, &str) {
    match t {
        Target::Project(id) => ("project", id),
        Target::Domain(id) => ("domain", id),
        Target::System => ("system", SYSTEM_ALL),
    }
}

impl SqlStore {
    pub(crate) async fn exec(&self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
        self.conn.exec(sql, args).await
    }

    pub(crate) async fn fetch(&self, sql: &Sql) -> StoreResult<Vec<AnyRow>> {
        self.conn.fetch(sql).await
    }

    pub(crate) async fn fetch_one(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<AnyRow>> {
        self.conn.fetch_one(sql, args).await
    }

    /// A transaction for one method's statements (see [`Conn::begin`]).
    pub(crate) async fn begin(&self) -> StoreResult<Work<'_>> {
        self.conn.begin().await
    }

    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(OpenError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let opts = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30));
        let opts = if backend == Backend::Sqlite {
            opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL for concurrent readers; FULL sync so a commit survives a crash;
                    // foreign keys for the cascades the schema declares.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            })
        } else {
            opts
        };
        let pool = opts
            .connect(&url)
            .await
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| OpenError::Migrate(e.to_string()))?;
        Ok(SqlStore {
            conn: Conn::Pool(pool.clone()),
            pool,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (for readiness probes).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Runs `statements` (each taking the id as `$1`) in one transaction: a delete with
    /// its cascade. Returns whether the last statement removed anything.
    async fn cascade_delete(&self, statements: &[&str], id: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let mut last = 0;
        for sql in statements {
            last = tx_exec(&mut tx, sql, vec![id.into()]).await?;
        }
        tx.commit().await?;
        Ok(last > 0)
    }

    async fn load_tags(&self, projects: &mut [Project]) -> StoreResult<()> {
        if projects.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
        let mut sql = Sql::new("SELECT project_id, name FROM project_tags WHERE ");
        // Large lists are fetched whole rather than with thousands of placeholders.
        if ids.len() > 500 {
            sql.push("1 = 1");
        } else {
            sql.push_in("project_id", &ids);
        }
        sql.push(" ORDER BY project_id, position");
        let rows = self.fetch(&sql).await?;
        let mut by_project: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in rows {
            let pid: String = r.try_get("project_id").map_err(backend_err)?;
            let name: String = r.try_get("name").map_err(backend_err)?;
            by_project.entry(pid).or_default().push(name);
        }
        for p in projects.iter_mut() {
            p.tags = by_project.remove(&p.id).unwrap_or_default();
        }
        Ok(())
    }
}

/// Appends `changed` to the change feed within `tx`; returns the last number used. The
/// counter row stays locked until the transaction ends, so numbers commit in order (and
/// writers of the feed are serialized).
pub(crate) async fn tx_record_changes(
    tx: &mut Work<'_>,
    changed: &[Dependency],
    at: OffsetDateTime,
) -> StoreResult<i64> {
    let n = changed.len() as i64;
    let row =
        sqlx::query("UPDATE token_change_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq")
            .bind(n)
            .fetch_one(tx.conn()?)
            .await
            .map_err(backend_err)?;
    let last: i64 = get(&row, "seq")?;
    for (i, d) in changed.iter().enumerate() {
        tx_exec(
            tx,
            "INSERT INTO token_changes (seq, kind, target, at) VALUES ($1, $2, $3, $4)",
            vec![
                (last - n + 1 + i as i64).into(),
                d.kind().into(),
                d.id().into(),
                to_micros(at).into(),
            ],
        )
        .await?;
    }
    Ok(last)
}

pub(crate) async fn tx_exec(tx: &mut Work<'_>, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
    bind_all(sqlx::query(sql), &args)
        .execute(tx.conn()?)
        .await
        .map(|r| r.rows_affected())
        .map_err(backend_err)
}

async fn write_tags(tx: &mut Work<'_>, p: &Project) -> StoreResult<()> {
    tx_exec(
        tx,
        "DELETE FROM project_tags WHERE project_id = $1",
        vec![(&p.id).into()],
    )
    .await?;
    for (i, t) in p.tags.iter().enumerate() {
        tx_exec(
            tx,
            "INSERT INTO project_tags (project_id, name, position) VALUES ($1, $2, $3)",
            vec![(&p.id).into(), t.into(), (i as i64).into()],
        )
        .await?;
    }
    Ok(())
}

// ---- row decoding ----

fn get<T>(r: &AnyRow, col: &str) -> StoreResult<T>
where
    T: for<'a> sqlx::Decode<'a, Any> + sqlx::Type<Any>,
{
    r.try_get(col).map_err(backend_err)
}

fn domain_row(r: &AnyRow) -> StoreResult<Domain> {
    Ok(Domain {
        id: get(r, "id")?,
        name: get(r, "name")?,
        description: get(r, "description")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        tags: tags_from_json(&get::<String>(r, "tags")?)?,
        options: from_json(&get::<String>(r, "options")?)?,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn project_row(r: &AnyRow) -> StoreResult<Project> {
    Ok(Project {
        id: get(r, "id")?,
        name: get(r, "name")?,
        domain_id: get(r, "domain_id")?,
        parent_id: get(r, "parent_id")?,
        description: get(r, "description")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        tags: vec![],
        options: from_json(&get::<String>(r, "options")?)?,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn user_row(r: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: get(r, "id")?,
        name: get(r, "name")?,
        domain_id: get(r, "domain_id")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        default_project_id: get(r, "default_project_id")?,
        options: from_json(&get::<String>(r, "options")?)?,
        extra: from_json(&get::<String>(r, "extra")?)?,
        created_at: from_micros(get(r, "created_at")?)?,
        last_active_at: opt_from_micros(get(r, "last_active_at")?)?,
        failed_auth_count: get(r, "failed_auth_count")?,
        failed_auth_at: opt_from_micros(get(r, "failed_auth_at")?)?,
    })
}

fn password_row(r: &AnyRow) -> StoreResult<Password> {
    Ok(Password {
        user_id: get(r, "user_id")?,
        hash: get(r, "hash")?,
        created_at: from_micros(get(r, "created_at")?)?,
        expires_at: opt_from_micros(get(r, "expires_at")?)?,
        self_service: get::<i64>(r, "self_service")? != 0,
    })
}

fn group_row(r: &AnyRow) -> StoreResult<Group> {
    Ok(Group {
        id: get(r, "id")?,
        name: get(r, "name")?,
        domain_id: get(r, "domain_id")?,
        description: get(r, "description")?,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn role_row(r: &AnyRow) -> StoreResult<Role> {
    let domain_id: String = get(r, "domain_id")?;
    Ok(Role {
        id: get(r, "id")?,
        name: get(r, "name")?,
        domain_id: (!domain_id.is_empty()).then_some(domain_id),
        description: get(r, "description")?,
        options: from_json(&get::<String>(r, "options")?)?,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn assignment_row(r: &AnyRow) -> StoreResult<Assignment> {
    let actor_type: String = get(r, "actor_type")?;
    let actor_id: String = get(r, "actor_id")?;
    let target_type: String = get(r, "target_type")?;
    let target_id: String = get(r, "target_id")?;
    let actor = match actor_type.as_str() {
        "user" => Actor::User(actor_id),
        "group" => Actor::Group(actor_id),
        other => return Err(StoreError::backend(format!("unknown actor type {other}"))),
    };
    let target = match target_type.as_str() {
        "project" => Target::Project(target_id),
        "domain" => Target::Domain(target_id),
        "system" => Target::System,
        other => return Err(StoreError::backend(format!("unknown target type {other}"))),
    };
    Ok(Assignment {
        actor,
        target,
        role_id: get(r, "role_id")?,
        inherited: get::<i64>(r, "inherited")? != 0,
    })
}

fn region_row(r: &AnyRow) -> StoreResult<Region> {
    Ok(Region {
        id: get(r, "id")?,
        description: get(r, "description")?,
        parent_region_id: get(r, "parent_region_id")?,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn service_row(r: &AnyRow) -> StoreResult<Service> {
    Ok(Service {
        id: get(r, "id")?,
        service_type: get(r, "type")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn endpoint_row(r: &AnyRow) -> StoreResult<Endpoint> {
    let iface: String = get(r, "interface")?;
    Ok(Endpoint {
        id: get(r, "id")?,
        service_id: get(r, "service_id")?,
        region_id: get(r, "region_id")?,
        interface: Interface::parse(&iface)
            .ok_or_else(|| StoreError::backend(format!("unknown interface {iface}")))?,
        url: get(r, "url")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn ids_from_json(s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::backend_cause("corrupt id list", e))
}

fn app_cred_row(r: &AnyRow) -> StoreResult<ApplicationCredential> {
    Ok(ApplicationCredential {
        id: get(r, "id")?,
        name: get(r, "name")?,
        user_id: get(r, "user_id")?,
        project_id: get::<Option<String>>(r, "project_id")?.unwrap_or_default(),
        description: get(r, "description")?,
        secret_hash: get(r, "secret_hash")?,
        expires_at: opt_from_micros(get(r, "expires_at")?)?,
        unrestricted: get::<i64>(r, "unrestricted")? != 0,
        role_ids: ids_from_json(&get::<String>(r, "role_ids")?)?,
        access_rule_ids: ids_from_json(&get::<String>(r, "access_rule_ids")?)?,
        created_at: from_micros(get(r, "created_at")?)?,
    })
}

fn access_rule_row(r: &AnyRow) -> StoreResult<AccessRule> {
    Ok(AccessRule {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        service: get(r, "service")?,
        path: get(r, "path")?,
        method: get(r, "method")?,
    })
}

fn credential_row(r: &AnyRow) -> StoreResult<StoredCredential> {
    Ok(StoredCredential {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        project_id: get(r, "project_id")?,
        cred_type: get(r, "type")?,
        sealed: SealedBlob {
            ciphertext: get(r, "encrypted_blob")?,
            key_hash: get(r, "key_hash")?,
        },
        extra: from_json(&get::<String>(r, "extra")?)?,
    })
}

fn trust_row(r: &AnyRow) -> StoreResult<Trust> {
    Ok(Trust {
        id: get(r, "id")?,
        trustor_user_id: get(r, "trustor_user_id")?,
        trustee_user_id: get(r, "trustee_user_id")?,
        project_id: get(r, "project_id")?,
        impersonation: get::<i64>(r, "impersonation")? != 0,
        expires_at: opt_from_micros(get(r, "expires_at")?)?,
        remaining_uses: get(r, "remaining_uses")?,
        redelegated_trust_id: get(r, "redelegated_trust_id")?,
        redelegation_count: get(r, "redelegation_count")?,
        role_ids: ids_from_json(&get::<String>(r, "role_ids")?)?,
        extra: from_json(&get::<String>(r, "extra")?)?,
        created_at: from_micros(get(r, "created_at")?)?,
    })
}

fn event_row(r: &AnyRow) -> StoreResult<RevocationEvent> {
    Ok(RevocationEvent {
        user_id: get(r, "user_id")?,
        project_id: get(r, "project_id")?,
        domain_id: get(r, "domain_id")?,
        role_id: get(r, "role_id")?,
        trust_id: get(r, "trust_id")?,
        consumer_id: get(r, "consumer_id")?,
        access_token_id: get(r, "access_token_id")?,
        audit_id: get(r, "audit_id")?,
        audit_chain_id: get(r, "audit_chain_id")?,
        expires_at: opt_from_micros(get(r, "expires_at")?)?,
        issued_before: from_micros(get(r, "issued_before")?)?,
        revoked_at: from_micros(get(r, "revoked_at")?)?,
    })
}

/// Ends a listing: everything in name order, or one page in id order (`id > after`,
/// at most `limit`), so a page is read as such however long the table.
fn order_or_page(sql: &mut Sql, page: Option<&Page>) {
    let Some(page) = page else {
        sql.push(" ORDER BY name, id");
        return;
    };
    if let Some(after) = &page.after {
        sql.push(" AND id > ").bind(after);
    }
    sql.push(" ORDER BY id");
    if let Some(n) = page.limit {
        sql.push(" LIMIT ").bind(n as i64);
    }
}

fn rows<T>(rows: Vec<AnyRow>, f: fn(&AnyRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

const USER_COLS: &str = "id, name, domain_id, enabled, default_project_id, options, extra, created_at, last_active_at, failed_auth_count, failed_auth_at";

#[async_trait]
impl UnitOfWork for SqlStore {
    async fn commit(&self) -> StoreResult<()> {
        match &self.conn {
            Conn::Unit(unit) => unit.commit().await,
            Conn::Pool(_) => Err(StoreError::backend("no unit of work to commit")),
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin_unit(&self) -> StoreResult<Arc<dyn UnitOfWork>> {
        let Conn::Pool(pool) = &self.conn else {
            return Err(StoreError::backend("units of work do not nest"));
        };
        // SQLite: take the write lock at once. A deferred transaction that reads and then
        // writes fails outright (SQLITE_BUSY_SNAPSHOT, no waiting) when another connection
        // wrote in between, and a unit usually reads before it writes.
        let tx = match self.backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => pool.begin().await,
        }
        .map_err(backend_err)?;
        Ok(Arc::new(SqlStore {
            pool: self.pool.clone(),
            conn: Conn::Unit(Arc::new(UnitState::new(tx))),
            backend: self.backend,
        }))
    }

    // ---- domains ----

    async fn create_domain(&self, d: &Domain) -> StoreResult<()> {
        self.exec(
            "INSERT INTO domains (id, name, description, enabled, tags, options, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![(&d.id).into(), (&d.name).into(), (&d.description).into(), b(d.enabled).into(), tags_json(&d.tags).into(), to_json(&d.options).into(), to_json(&d.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_domain(&self, id: &str) -> StoreResult<Option<Domain>> {
        self.fetch_one("SELECT * FROM domains WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(domain_row)
            .transpose()
    }

    async fn get_domain_by_name(&self, name: &str) -> StoreResult<Option<Domain>> {
        self.fetch_one("SELECT * FROM domains WHERE name = $1", vec![name.into()])
            .await?
            .as_ref()
            .map(domain_row)
            .transpose()
    }

    async fn list_domains(&self, f: &DomainFilter) -> StoreResult<Vec<Domain>> {
        let mut sql = Sql::new("SELECT * FROM domains WHERE 1 = 1");
        if let Some(n) = &f.name {
            sql.push(" AND name = ").bind(n);
        }
        if let Some(e) = f.enabled {
            sql.push(" AND enabled = ").bind(b(e));
        }
        sql.push(" ORDER BY name");
        rows(self.fetch(&sql).await?, domain_row)
    }

    async fn update_domain(&self, d: &Domain) -> StoreResult<()> {
        self.exec(
            "UPDATE domains SET name = $2, description = $3, enabled = $4, options = $5, extra = $6, tags = $7 WHERE id = $1",
            vec![(&d.id).into(), (&d.name).into(), (&d.description).into(), b(d.enabled).into(), to_json(&d.options).into(), to_json(&d.extra).into(), tags_json(&d.tags).into()],
        )
        .await
        .map(|_| ())
    }

    async fn delete_domain(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM trusts WHERE trustor_user_id IN (SELECT id FROM users WHERE domain_id = $1) OR trustee_user_id IN (SELECT id FROM users WHERE domain_id = $1) OR project_id IN (SELECT id FROM projects WHERE domain_id = $1)",
                "DELETE FROM assignments WHERE target_type = 'domain' AND target_id = $1",
                "DELETE FROM assignments WHERE target_type = 'project' AND target_id IN (SELECT id FROM projects WHERE domain_id = $1)",
                "DELETE FROM assignments WHERE actor_type = 'user' AND actor_id IN (SELECT id FROM users WHERE domain_id = $1)",
                "DELETE FROM assignments WHERE actor_type = 'group' AND actor_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
                "DELETE FROM roles WHERE domain_id = $1",
                "DELETE FROM project_tags WHERE project_id IN (SELECT id FROM projects WHERE domain_id = $1)",
                "DELETE FROM projects WHERE domain_id = $1",
                "DELETE FROM group_membership WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1) OR group_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
                "DELETE FROM passwords WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
                "DELETE FROM application_credentials WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
                "DELETE FROM access_rules WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
                "DELETE FROM credentials WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
                "DELETE FROM users WHERE domain_id = $1",
                "DELETE FROM user_group WHERE domain_id = $1",
                "DELETE FROM domains WHERE id = $1",
            ],
            id,
        )
        .await
    }

    // ---- projects ----

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, options, extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![(&p.id).into(), (&p.name).into(), (&p.domain_id).into(), (&p.parent_id).into(), (&p.description).into(), b(p.enabled).into(), to_json(&p.options).into(), to_json(&p.extra).into()],
        )
        .await?;
        write_tags(&mut tx, p).await?;
        tx.commit().await
    }

    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>> {
        let Some(row) = self
            .fetch_one("SELECT * FROM projects WHERE id = $1", vec![id.into()])
            .await?
        else {
            return Ok(None);
        };
        let mut p = [project_row(&row)?];
        self.load_tags(&mut p).await?;
        let [p] = p;
        Ok(Some(p))
    }

    async fn get_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> StoreResult<Option<Project>> {
        let Some(row) = self
            .fetch_one(
                "SELECT * FROM projects WHERE domain_id = $1 AND name = $2",
                vec![domain_id.into(), name.into()],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut p = [project_row(&row)?];
        self.load_tags(&mut p).await?;
        let [p] = p;
        Ok(Some(p))
    }

    async fn list_projects(&self, f: &ProjectFilter) -> StoreResult<Vec<Project>> {
        let mut sql = Sql::new("SELECT * FROM projects WHERE 1 = 1");
        if let Some(n) = &f.name {
            sql.push(" AND name = ").bind(n);
        }
        if let Some(d) = &f.domain_id {
            sql.push(" AND domain_id = ").bind(d);
        }
        if let Some(p) = &f.parent_id {
            sql.push(" AND parent_id = ").bind(p);
        }
        if let Some(e) = f.enabled {
            sql.push(" AND enabled = ").bind(b(e));
        }
        if let Some(ids) = &f.ids {
            sql.push(" AND ");
            sql.push_in("id", ids);
        }
        order_or_page(&mut sql, f.page.as_ref());
        let mut out = rows(self.fetch(&sql).await?, project_row)?;
        self.load_tags(&mut out).await?;
        Ok(out)
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            "UPDATE projects SET name = $2, description = $3, enabled = $4, options = $5, extra = $6 WHERE id = $1",
            vec![(&p.id).into(), (&p.name).into(), (&p.description).into(), b(p.enabled).into(), to_json(&p.options).into(), to_json(&p.extra).into()],
        )
        .await?;
        write_tags(&mut tx, p).await?;
        tx.commit().await
    }

    async fn delete_project(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM assignments WHERE target_type = 'project' AND target_id = $1",
                "DELETE FROM application_credentials WHERE project_id = $1",
                "DELETE FROM credentials WHERE project_id = $1",
                "DELETE FROM trusts WHERE project_id = $1",
                "UPDATE users SET default_project_id = NULL WHERE default_project_id = $1",
                "DELETE FROM project_tags WHERE project_id = $1",
                "DELETE FROM projects WHERE id = $1",
            ],
            id,
        )
        .await
    }

    // ---- users ----

    async fn create_user(&self, u: &User, password: Option<&Password>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            "INSERT INTO users (id, name, domain_id, enabled, default_project_id, options, extra, created_at, last_active_at, failed_auth_count, failed_auth_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            vec![
                (&u.id).into(), (&u.name).into(), (&u.domain_id).into(), b(u.enabled).into(),
                u.default_project_id.clone().into(), to_json(&u.options).into(), to_json(&u.extra).into(),
                to_micros(u.created_at).into(), u.last_active_at.map(to_micros).into(),
                u.failed_auth_count.into(), u.failed_auth_at.map(to_micros).into(),
            ],
        )
        .await?;
        if let Some(p) = password {
            insert_password(&mut tx, p).await?;
        }
        tx.commit().await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        self.fetch_one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            vec![id.into()],
        )
        .await?
        .as_ref()
        .map(user_row)
        .transpose()
    }

    async fn get_user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>> {
        self.fetch_one(
            &format!("SELECT {USER_COLS} FROM users WHERE domain_id = $1 AND name = $2"),
            vec![domain_id.into(), name.into()],
        )
        .await?
        .as_ref()
        .map(user_row)
        .transpose()
    }

    async fn list_users(&self, f: &UserFilter) -> StoreResult<Vec<User>> {
        let mut sql = Sql::new(&format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
        if let Some(n) = &f.name {
            sql.push(" AND name = ").bind(n);
        }
        if let Some(d) = &f.domain_id {
            sql.push(" AND domain_id = ").bind(d);
        }
        if let Some(e) = f.enabled {
            sql.push(" AND enabled = ").bind(b(e));
        }
        if let Some(ids) = &f.ids {
            sql.push(" AND ");
            sql.push_in("id", ids);
        }
        order_or_page(&mut sql, f.page.as_ref());
        rows(self.fetch(&sql).await?, user_row)
    }

    async fn update_user(&self, u: &User) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET name = $2, enabled = $3, default_project_id = $4, options = $5, extra = $6, failed_auth_count = $7, failed_auth_at = $8 WHERE id = $1",
            vec![
                (&u.id).into(), (&u.name).into(), b(u.enabled).into(), u.default_project_id.clone().into(),
                to_json(&u.options).into(), to_json(&u.extra).into(), u.failed_auth_count.into(),
                u.failed_auth_at.map(to_micros).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM assignments WHERE actor_type = 'user' AND actor_id = $1",
                "DELETE FROM application_credentials WHERE user_id = $1",
                "DELETE FROM access_rules WHERE user_id = $1",
                "DELETE FROM credentials WHERE user_id = $1",
                "DELETE FROM trusts WHERE trustor_user_id = $1 OR trustee_user_id = $1",
                "DELETE FROM group_membership WHERE user_id = $1",
                "DELETE FROM passwords WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ],
            id,
        )
        .await
    }

    async fn set_password(&self, p: &Password, keep_history: usize) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_password(&mut tx, p).await?;
        // Keep the newest `keep_history` rows (the new one included).
        let rows = sqlx::query("SELECT id FROM passwords WHERE user_id = $1 ORDER BY seq DESC")
            .bind(p.user_id.as_str())
            .fetch_all(tx.conn()?)
            .await
            .map_err(backend_err)?;
        for r in rows.iter().skip(keep_history.max(1)) {
            let id: String = get(r, "id")?;
            tx_exec(
                &mut tx,
                "DELETE FROM passwords WHERE id = $1",
                vec![id.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn list_passwords(&self, user_id: &str) -> StoreResult<Vec<Password>> {
        let mut sql = Sql::new("SELECT * FROM passwords WHERE user_id = ");
        sql.bind(user_id).push(" ORDER BY seq DESC");
        rows(self.fetch(&sql).await?, password_row)
    }

    async fn current_password_expiries(
        &self,
        user_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Option<OffsetDateTime>>> {
        let mut out = std::collections::HashMap::new();
        if user_ids.is_empty() {
            return Ok(out);
        }
        // Large lists read the whole table once rather than thousands of placeholders.
        let mut sql = Sql::new("SELECT user_id, expires_at, seq FROM passwords");
        if user_ids.len() <= 500 {
            sql.push(" WHERE ");
            sql.push_in("user_id", user_ids);
        }
        let mut newest: std::collections::HashMap<String, (i64, Option<i64>)> = Default::default();
        for r in self.fetch(&sql).await? {
            let uid: String = get(&r, "user_id")?;
            let seq: i64 = get(&r, "seq")?;
            let exp: Option<i64> = get(&r, "expires_at")?;
            let slot = newest.entry(uid).or_insert((i64::MIN, None));
            if seq > slot.0 {
                *slot = (seq, exp);
            }
        }
        for (uid, (_, exp)) in newest {
            out.insert(uid, opt_from_micros(exp)?);
        }
        Ok(out)
    }

    async fn record_auth_failure(
        &self,
        user_id: &str,
        count: i64,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET failed_auth_count = $2, failed_auth_at = $3 WHERE id = $1",
            vec![user_id.into(), count.into(), at.map(to_micros).into()],
        )
        .await
        .map(|_| ())
    }

    async fn record_auth_success(&self, user_id: &str, at: OffsetDateTime) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL, last_active_at = $2 WHERE id = $1",
            vec![user_id.into(), to_micros(at).into()],
        )
        .await
        .map(|_| ())
    }

    // ---- groups ----

    async fn create_group(&self, g: &Group) -> StoreResult<()> {
        self.exec(
            "INSERT INTO user_group (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
            vec![(&g.id).into(), (&g.name).into(), (&g.domain_id).into(), (&g.description).into(), to_json(&g.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        self.fetch_one("SELECT * FROM user_group WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(group_row)
            .transpose()
    }

    async fn list_groups(&self, f: &GroupFilter) -> StoreResult<Vec<Group>> {
        let mut sql = Sql::new("SELECT * FROM user_group WHERE 1 = 1");
        if let Some(n) = &f.name {
            sql.push(" AND name = ").bind(n);
        }
        if let Some(d) = &f.domain_id {
            sql.push(" AND domain_id = ").bind(d);
        }
        if let Some(ids) = &f.ids {
            sql.push(" AND ");
            sql.push_in("id", ids);
        }
        sql.push(" ORDER BY name, id");
        rows(self.fetch(&sql).await?, group_row)
    }

    async fn update_group(&self, g: &Group) -> StoreResult<()> {
        self.exec(
            "UPDATE user_group SET name = $2, description = $3, extra = $4 WHERE id = $1",
            vec![
                (&g.id).into(),
                (&g.name).into(),
                (&g.description).into(),
                to_json(&g.extra).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM assignments WHERE actor_type = 'group' AND actor_id = $1",
                "DELETE FROM group_membership WHERE group_id = $1",
                "DELETE FROM user_group WHERE id = $1",
            ],
            id,
        )
        .await
    }

    async fn add_user_to_group(&self, group_id: &str, user_id: &str) -> StoreResult<()> {
        self.exec(
            "INSERT INTO group_membership (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![group_id.into(), user_id.into()],
        )
        .await
        .map(|_| ())
    }

    async fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM group_membership WHERE group_id = $1 AND user_id = $2",
            vec![group_id.into(), user_id.into()],
        )
        .await
        .map(|n| n > 0)
    }

    async fn is_user_in_group(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
        Ok(self
            .fetch_one(
                "SELECT 1 AS present FROM group_membership WHERE group_id = $1 AND user_id = $2",
                vec![group_id.into(), user_id.into()],
            )
            .await?
            .is_some())
    }

    async fn list_group_ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let mut sql = Sql::new("SELECT group_id FROM group_membership WHERE user_id = ");
        sql.bind(user_id);
        self.fetch(&sql)
            .await?
            .iter()
            .map(|r| get(r, "group_id"))
            .collect()
    }

    async fn list_user_ids_in_group(&self, group_id: &str) -> StoreResult<Vec<String>> {
        let mut sql = Sql::new("SELECT user_id FROM group_membership WHERE group_id = ");
        sql.bind(group_id);
        self.fetch(&sql)
            .await?
            .iter()
            .map(|r| get(r, "user_id"))
            .collect()
    }

    // ---- roles ----

    async fn create_role(&self, r: &Role) -> StoreResult<()> {
        self.exec(
            "INSERT INTO roles (id, name, domain_id, description, options, extra) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![(&r.id).into(), (&r.name).into(), r.domain_id.clone().unwrap_or_default().into(), r.description.clone().into(), to_json(&r.options).into(), to_json(&r.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_role(&self, id: &str) -> StoreResult<Option<Role>> {
        self.fetch_one("SELECT * FROM roles WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(role_row)
            .transpose()
    }

    async fn list_roles(&self, f: &RoleFilter) -> StoreResult<Vec<Role>> {
        let mut sql = Sql::new("SELECT * FROM roles WHERE 1 = 1");
        if let Some(n) = &f.name {
            sql.push(" AND name = ").bind(n);
        }
        if let Some(d) = &f.domain_id {
            sql.push(" AND domain_id = ")
                .bind(d.clone().unwrap_or_default());
        }
        sql.push(" ORDER BY name, id");
        rows(self.fetch(&sql).await?, role_row)
    }

    async fn update_role(&self, r: &Role) -> StoreResult<()> {
        self.exec(
            "UPDATE roles SET name = $2, description = $3, options = $4, extra = $5 WHERE id = $1",
            vec![
                (&r.id).into(),
                (&r.name).into(),
                r.description.clone().into(),
                to_json(&r.options).into(),
                to_json(&r.extra).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM assignments WHERE role_id = $1",
                "DELETE FROM implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1",
                "DELETE FROM roles WHERE id = $1",
            ],
            id,
        )
        .await
    }

    async fn create_implied_role(&self, i: &ImpliedRole) -> StoreResult<()> {
        self.exec(
            "INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![(&i.prior_role_id).into(), (&i.implied_role_id).into()],
        )
        .await
        .map(|_| ())
    }

    async fn delete_implied_role(&self, i: &ImpliedRole) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2",
            vec![(&i.prior_role_id).into(), (&i.implied_role_id).into()],
        )
        .await
        .map(|n| n > 0)
    }

    async fn list_implied_roles(&self) -> StoreResult<Vec<ImpliedRole>> {
        let sql = Sql::new("SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id");
        self.fetch(&sql)
            .await?
            .iter()
            .map(|r| {
                Ok(ImpliedRole {
                    prior_role_id: get(r, "prior_role_id")?,
                    implied_role_id: get(r, "implied_role_id")?,
                })
            })
            .collect()
    }

    // ---- assignments ----

    async fn create_assignment(&self, a: &Assignment) -> StoreResult<()> {
        let (at, aid) = actor_cols(&a.actor);
        let (tt, tid) = target_cols(&a.target);
        self.exec(
            "INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            vec![at.into(), aid.into(), tt.into(), tid.into(), (&a.role_id).into(), b(a.inherited).into()],
        )
        .await
        .map(|_| ())
    }

    async fn delete_assignment(&self, a: &Assignment) -> StoreResult<bool> {
        let (at, aid) = actor_cols(&a.actor);
        let (tt, tid) = target_cols(&a.target);
        self.exec(
            "DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 AND target_id = $4 AND role_id = $5 AND inherited = $6",
            vec![at.into(), aid.into(), tt.into(), tid.into(), (&a.role_id).into(), b(a.inherited).into()],
        )
        .await
        .map(|n| n > 0)
    }

    async fn list_assignments(&self, f: &AssignmentFilter) -> StoreResult<Vec<Assignment>> {
        let mut sql = Sql::new("SELECT * FROM assignments WHERE 1 = 1");
        if let Some(actors) = &f.actors {
            if actors.is_empty() {
                return Ok(vec![]);
            }
            sql.push(" AND (");
            for (i, a) in actors.iter().enumerate() {
                let (t, id) = actor_cols(a);
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(actor_type = ")
                    .bind(t)
                    .push(" AND actor_id = ")
                    .bind(id)
                    .push(")");
            }
            sql.push(")");
        }
        if let Some(targets) = &f.targets {
            if targets.is_empty() {
                return Ok(vec![]);
            }
            sql.push(" AND (");
            for (i, t) in targets.iter().enumerate() {
                let (tt, id) = target_cols(t);
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(target_type = ")
                    .bind(tt)
                    .push(" AND target_id = ")
                    .bind(id)
                    .push(")");
            }
            sql.push(")");
        }
        if let Some(r) = &f.role_id {
            sql.push(" AND role_id = ").bind(r);
        }
        if let Some(i) = f.inherited {
            sql.push(" AND inherited = ").bind(b(i));
        }
        sql.push(" ORDER BY actor_type, actor_id, target_type, target_id, role_id");
        rows(self.fetch(&sql).await?, assignment_row)
    }

    // ---- catalog ----

    async fn create_region(&self, r: &Region) -> StoreResult<()> {
        self.exec(
            "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
            vec![(&r.id).into(), (&r.description).into(), r.parent_region_id.clone().into(), to_json(&r.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_region(&self, id: &str) -> StoreResult<Option<Region>> {
        self.fetch_one("SELECT * FROM regions WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(region_row)
            .transpose()
    }

    async fn list_regions(&self, parent: Option<&str>) -> StoreResult<Vec<Region>> {
        let mut sql = Sql::new("SELECT * FROM regions WHERE 1 = 1");
        if let Some(p) = parent {
            sql.push(" AND parent_region_id = ").bind(p);
        }
        sql.push(" ORDER BY id");
        rows(self.fetch(&sql).await?, region_row)
    }

    async fn update_region(&self, r: &Region) -> StoreResult<()> {
        self.exec(
            "UPDATE regions SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1",
            vec![
                (&r.id).into(),
                (&r.description).into(),
                r.parent_region_id.clone().into(),
                to_json(&r.extra).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_region(&self, id: &str) -> StoreResult<bool> {
        self.exec("DELETE FROM regions WHERE id = $1", vec![id.into()])
            .await
            .map(|n| n > 0)
    }

    async fn create_service(&self, s: &Service) -> StoreResult<()> {
        self.exec(
            "INSERT INTO services (id, type, enabled, extra) VALUES ($1, $2, $3, $4)",
            vec![
                (&s.id).into(),
                (&s.service_type).into(),
                b(s.enabled).into(),
                to_json(&s.extra).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn get_service(&self, id: &str) -> StoreResult<Option<Service>> {
        self.fetch_one("SELECT * FROM services WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(service_row)
            .transpose()
    }

    async fn list_services(&self) -> StoreResult<Vec<Service>> {
        rows(
            self.fetch(&Sql::new("SELECT * FROM services ORDER BY type, id"))
                .await?,
            service_row,
        )
    }

    async fn update_service(&self, s: &Service) -> StoreResult<()> {
        self.exec(
            "UPDATE services SET type = $2, enabled = $3, extra = $4 WHERE id = $1",
            vec![
                (&s.id).into(),
                (&s.service_type).into(),
                b(s.enabled).into(),
                to_json(&s.extra).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_service(&self, id: &str) -> StoreResult<bool> {
        self.cascade_delete(
            &[
                "DELETE FROM endpoints WHERE service_id = $1",
                "DELETE FROM services WHERE id = $1",
            ],
            id,
        )
        .await
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        self.exec(
            "INSERT INTO endpoints (id, service_id, region_id, interface, url, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![(&e.id).into(), (&e.service_id).into(), e.region_id.clone().into(), e.interface.as_str().into(), (&e.url).into(), b(e.enabled).into(), to_json(&e.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        self.fetch_one("SELECT * FROM endpoints WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(endpoint_row)
            .transpose()
    }

    async fn list_endpoints(&self, f: &EndpointFilter) -> StoreResult<Vec<Endpoint>> {
        let mut sql = Sql::new("SELECT * FROM endpoints WHERE 1 = 1");
        if let Some(s) = &f.service_id {
            sql.push(" AND service_id = ").bind(s);
        }
        if let Some(r) = &f.region_id {
            sql.push(" AND region_id = ").bind(r);
        }
        if let Some(i) = f.interface {
            sql.push(" AND interface = ").bind(i.as_str());
        }
        sql.push(" ORDER BY id");
        rows(self.fetch(&sql).await?, endpoint_row)
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        self.exec(
            "UPDATE endpoints SET service_id = $2, region_id = $3, interface = $4, url = $5, enabled = $6, extra = $7 WHERE id = $1",
            vec![(&e.id).into(), (&e.service_id).into(), e.region_id.clone().into(), e.interface.as_str().into(), (&e.url).into(), b(e.enabled).into(), to_json(&e.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn delete_endpoint(&self, id: &str) -> StoreResult<bool> {
        self.exec("DELETE FROM endpoints WHERE id = $1", vec![id.into()])
            .await
            .map(|n| n > 0)
    }

    // ---- application credentials ----

    async fn create_application_credential(
        &self,
        c: &ApplicationCredential,
        new_rules: &[AccessRule],
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for r in new_rules {
            tx_exec(
                &mut tx,
                "INSERT INTO access_rules (id, user_id, service, path, method) VALUES ($1, $2, $3, $4, $5)",
                vec![(&r.id).into(), (&r.user_id).into(), (&r.service).into(), (&r.path).into(), (&r.method).into()],
            )
            .await?;
        }
        tx_exec(
            &mut tx,
            "INSERT INTO application_credentials (id, name, user_id, project_id, description, secret_hash, expires_at, unrestricted, role_ids, access_rule_ids, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            vec![
                (&c.id).into(),
                (&c.name).into(),
                (&c.user_id).into(),
                (&c.project_id).into(),
                c.description.clone().into(),
                (&c.secret_hash).into(),
                c.expires_at.map(to_micros).into(),
                b(c.unrestricted).into(),
                tags_json(&c.role_ids).into(),
                tags_json(&c.access_rule_ids).into(),
                to_micros(c.created_at).into(),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn get_application_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<ApplicationCredential>> {
        self.fetch_one(
            "SELECT * FROM application_credentials WHERE id = $1",
            vec![id.into()],
        )
        .await?
        .as_ref()
        .map(app_cred_row)
        .transpose()
    }

    async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> StoreResult<Vec<ApplicationCredential>> {
        let mut sql = Sql::new("SELECT * FROM application_credentials WHERE user_id = ");
        sql.bind(user_id);
        if let Some(n) = name {
            sql.push(" AND name = ").bind(n);
        }
        sql.push(" ORDER BY name, id");
        rows(self.fetch(&sql).await?, app_cred_row)
    }

    async fn delete_application_credential(&self, id: &str) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM application_credentials WHERE id = $1",
            vec![id.into()],
        )
        .await
        .map(|n| n > 0)
    }

    async fn list_access_rules(&self, user_id: &str) -> StoreResult<Vec<AccessRule>> {
        let mut sql = Sql::new("SELECT * FROM access_rules WHERE user_id = ");
        sql.bind(user_id).push(" ORDER BY id");
        rows(self.fetch(&sql).await?, access_rule_row)
    }

    async fn delete_access_rule(&self, id: &str) -> StoreResult<bool> {
        self.exec("DELETE FROM access_rules WHERE id = $1", vec![id.into()])
            .await
            .map(|n| n > 0)
    }

    // ---- credentials ----

    async fn create_credential(&self, c: &StoredCredential) -> StoreResult<()> {
        self.exec(
            "INSERT INTO credentials (id, user_id, project_id, type, encrypted_blob, key_hash, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![(&c.id).into(), (&c.user_id).into(), c.project_id.clone().into(), (&c.cred_type).into(), (&c.sealed.ciphertext).into(), (&c.sealed.key_hash).into(), to_json(&c.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn get_credential(&self, id: &str) -> StoreResult<Option<StoredCredential>> {
        self.fetch_one("SELECT * FROM credentials WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(credential_row)
            .transpose()
    }

    async fn list_credentials(
        &self,
        user_id: Option<&str>,
        cred_type: Option<&str>,
    ) -> StoreResult<Vec<StoredCredential>> {
        let mut sql = Sql::new("SELECT * FROM credentials WHERE 1 = 1");
        if let Some(u) = user_id {
            sql.push(" AND user_id = ").bind(u);
        }
        if let Some(t) = cred_type {
            sql.push(" AND type = ").bind(t);
        }
        sql.push(" ORDER BY id");
        rows(self.fetch(&sql).await?, credential_row)
    }

    async fn update_credential(&self, c: &StoredCredential) -> StoreResult<()> {
        self.exec(
            "UPDATE credentials SET user_id = $2, project_id = $3, type = $4, encrypted_blob = $5, key_hash = $6, extra = $7 WHERE id = $1",
            vec![(&c.id).into(), (&c.user_id).into(), c.project_id.clone().into(), (&c.cred_type).into(), (&c.sealed.ciphertext).into(), (&c.sealed.key_hash).into(), to_json(&c.extra).into()],
        )
        .await
        .map(|_| ())
    }

    async fn delete_credential(&self, id: &str) -> StoreResult<bool> {
        self.exec("DELETE FROM credentials WHERE id = $1", vec![id.into()])
            .await
            .map(|n| n > 0)
    }

    // ---- trusts ----

    async fn create_trust(&self, t: &Trust) -> StoreResult<()> {
        self.exec(
            "INSERT INTO trusts (id, trustor_user_id, trustee_user_id, project_id, impersonation, expires_at, remaining_uses, redelegated_trust_id, redelegation_count, role_ids, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            vec![
                (&t.id).into(), (&t.trustor_user_id).into(), (&t.trustee_user_id).into(), t.project_id.clone().into(),
                b(t.impersonation).into(), t.expires_at.map(to_micros).into(), t.remaining_uses.into(),
                t.redelegated_trust_id.clone().into(), t.redelegation_count.into(), tags_json(&t.role_ids).into(),
                to_json(&t.extra).into(), to_micros(t.created_at).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn get_trust(&self, id: &str) -> StoreResult<Option<Trust>> {
        self.fetch_one("SELECT * FROM trusts WHERE id = $1", vec![id.into()])
            .await?
            .as_ref()
            .map(trust_row)
            .transpose()
    }

    async fn list_trusts(
        &self,
        trustor: Option<&str>,
        trustee: Option<&str>,
    ) -> StoreResult<Vec<Trust>> {
        let mut sql = Sql::new("SELECT * FROM trusts WHERE 1 = 1");
        if let Some(t) = trustor {
            sql.push(" AND trustor_user_id = ").bind(t);
        }
        if let Some(t) = trustee {
            sql.push(" AND trustee_user_id = ").bind(t);
        }
        sql.push(" ORDER BY created_at, id");
        rows(self.fetch(&sql).await?, trust_row)
    }

    async fn delete_trust(&self, id: &str) -> StoreResult<bool> {
        self.exec("DELETE FROM trusts WHERE id = $1", vec![id.into()])
            .await
            .map(|n| n > 0)
    }

    async fn consume_trust_use(&self, id: &str) -> StoreResult<bool> {
        let n = self
            .exec(
                "UPDATE trusts SET remaining_uses = remaining_uses - 1 WHERE id = $1 AND (remaining_uses IS NULL OR remaining_uses > 0)",
                vec![id.into()],
            )
            .await?;
        Ok(n > 0)
    }

    // ---- documents ----

    async fn put_document(&self, doc: &DocumentWrite<'_>) -> StoreResult<()> {
        let sql = if doc.create_only {
            "INSERT INTO documents (kind, id, owner, body) VALUES ($1, $2, $3, $4)"
        } else {
            "INSERT INTO documents (kind, id, owner, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, id) DO UPDATE SET owner = excluded.owner, body = excluded.body"
        };
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            sql,
            vec![
                doc.kind.into(),
                doc.id.into(),
                doc.owner.into(),
                doc.body.to_string().into(),
            ],
        )
        .await?;
        tx_exec(
            &mut tx,
            "DELETE FROM document_claims WHERE kind = $1 AND id = $2",
            vec![doc.kind.into(), doc.id.into()],
        )
        .await?;
        for claim in doc.claims {
            tx_exec(
                &mut tx,
                "INSERT INTO document_claims (kind, claim, id) VALUES ($1, $2, $3)",
                vec![doc.kind.into(), claim.into(), doc.id.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn get_document(&self, kind: &str, id: &str) -> StoreResult<Option<serde_json::Value>> {
        let row = self
            .fetch_one(
                "SELECT body FROM documents WHERE kind = $1 AND id = $2",
                vec![kind.into(), id.into()],
            )
            .await?;
        row.map(|r| document_body(&r)).transpose()
    }

    async fn list_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>> {
        let mut sql = Sql::new("SELECT body FROM documents WHERE kind = ");
        sql.bind(kind).push(" ORDER BY id");
        rows(self.fetch(&sql).await?, document_body)
    }

    async fn list_documents_of(
        &self,
        kind: &str,
        owner: &str,
    ) -> StoreResult<Vec<serde_json::Value>> {
        let mut sql = Sql::new("SELECT body FROM documents WHERE kind = ");
        sql.bind(kind)
            .push(" AND owner = ")
            .bind(owner)
            .push(" ORDER BY id");
        rows(self.fetch(&sql).await?, document_body)
    }

    async fn list_unindexed_documents(&self, kind: &str) -> StoreResult<Vec<serde_json::Value>> {
        self.list_documents_of(kind, "").await
    }

    async fn delete_document(&self, kind: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            "DELETE FROM document_claims WHERE kind = $1 AND id = $2",
            vec![kind.into(), id.into()],
        )
        .await?;
        let gone = tx_exec(
            &mut tx,
            "DELETE FROM documents WHERE kind = $1 AND id = $2",
            vec![kind.into(), id.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(gone > 0)
    }

    async fn delete_documents_of(&self, kind: &str, owner: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.begin().await?;
        tx_exec(
            &mut tx,
            "DELETE FROM document_claims WHERE kind = $1 AND id IN \
             (SELECT id FROM documents WHERE kind = $1 AND owner = $2)",
            vec![kind.into(), owner.into()],
        )
        .await?;
        let gone = bind_all(
            sqlx::query("DELETE FROM documents WHERE kind = $1 AND owner = $2 RETURNING id"),
            &[kind.into(), owner.into()],
        )
        .fetch_all(tx.conn()?)
        .await
        .map_err(backend_err)?;
        tx.commit().await?;
        rows(gone, |r| get::<String>(r, "id"))
    }

    // ---- OAuth records ----

    async fn put_oauth_record(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        expires_at: i64,
        create_only: bool,
    ) -> StoreResult<()> {
        let sql = if create_only {
            "INSERT INTO oauth_records (kind, id, body, expires_at) VALUES ($1, $2, $3, $4)"
        } else {
            "INSERT INTO oauth_records (kind, id, body, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at"
        };
        let args = vec![
            kind.into(),
            id.into(),
            body.to_string().into(),
            expires_at.into(),
        ];
        self.exec(sql, args).await.map(|_| ())
    }

    async fn get_oauth_record(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<serde_json::Value>> {
        let row = self
            .fetch_one(
                "SELECT body FROM oauth_records WHERE kind = $1 AND id = $2 AND expires_at > $3",
                vec![kind.into(), id.into(), now.into()],
            )
            .await?;
        row.map(|r| {
            let body: String = get(&r, "body")?;
            serde_json::from_str(&body)
                .map_err(|e| StoreError::backend_cause("corrupt OAuth record", e))
        })
        .transpose()
    }

    async fn delete_oauth_record(&self, kind: &str, id: &str) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM oauth_records WHERE kind = $1 AND id = $2",
            vec![kind.into(), id.into()],
        )
        .await
        .map(|n| n > 0)
    }

    async fn prune_oauth_records(&self, now: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM oauth_records WHERE expires_at <= $1",
            vec![now.into()],
        )
        .await
    }

    // ---- revocation ----

    async fn add_revocation_event(&self, e: &RevocationEvent) -> StoreResult<()> {
        let id = format!(
            "{}-{}",
            to_micros(e.revoked_at),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ) + &format!("-{}", std::process::id());
        self.exec(
            "INSERT INTO revocation_events (id, user_id, project_id, domain_id, role_id, trust_id, consumer_id, access_token_id, audit_id, audit_chain_id, expires_at, issued_before, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                id.into(), e.user_id.clone().into(), e.project_id.clone().into(), e.domain_id.clone().into(),
                e.role_id.clone().into(), e.trust_id.clone().into(), e.consumer_id.clone().into(),
                e.access_token_id.clone().into(), e.audit_id.clone().into(), e.audit_chain_id.clone().into(),
                e.expires_at.map(to_micros).into(), to_micros(e.issued_before).into(), to_micros(e.revoked_at).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn list_revocation_events(
        &self,
        since: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<RevocationEvent>> {
        let mut sql = Sql::new("SELECT * FROM revocation_events");
        if let Some(s) = since {
            sql.push(" WHERE issued_before > ").bind(to_micros(s));
        }
        sql.push(" ORDER BY revoked_at");
        rows(self.fetch(&sql).await?, event_row)
    }

    async fn prune_revocation_events(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM revocation_events WHERE revoked_at < $1",
            vec![to_micros(before).into()],
        )
        .await
    }

    async fn record_token_changes(
        &self,
        changed: &[Dependency],
        at: OffsetDateTime,
    ) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let last = tx_record_changes(&mut tx, changed, at).await?;
        tx.commit().await?;
        Ok(last)
    }

    async fn token_changes_since(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, Dependency)>> {
        let mut sql = Sql::new("SELECT seq, kind, target FROM token_changes WHERE seq > ");
        sql.bind(after).push(" ORDER BY seq LIMIT ").bind(limit);
        rows(self.fetch(&sql).await?, |r| {
            let kind: String = get(r, "kind")?;
            let target: String = get(r, "target")?;
            Ok((get(r, "seq")?, Dependency::from_parts(&kind, &target)))
        })
    }

    async fn latest_token_change(&self) -> StoreResult<i64> {
        let row = self
            .fetch_one("SELECT seq FROM token_change_counter WHERE id = 1", vec![])
            .await?
            .ok_or_else(|| StoreError::backend("the change counter row is missing"))?;
        get(&row, "seq")
    }

    async fn prune_token_changes(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM token_changes WHERE at < $1",
            vec![to_micros(before).into()],
        )
        .await
    }
}

async fn insert_password(tx: &mut Work<'_>, p: &Password) -> StoreResult<()> {
    // seq orders a user's passwords: micro-time plus a counter, unique within a process.
    let seq = to_micros(p.created_at).saturating_mul(16)
        + (SEQ.fetch_add(1, Ordering::Relaxed) % 16) as i64;
    let id = format!("{}-{}-{}", p.user_id, seq, std::process::id());
    tx_exec(
        tx,
        "INSERT INTO passwords (id, user_id, hash, created_at, expires_at, self_service, seq) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![id.into(), (&p.user_id).into(), (&p.hash).into(), to_micros(p.created_at).into(), p.expires_at.map(to_micros).into(), b(p.self_service).into(), seq.into()],
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use limen_core::model::Domain;
    use limen_core::store::Store;

    fn domain(id: &str, name: &str) -> Domain {
        Domain {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            enabled: true,
            tags: Vec::new(),
            options: Default::default(),
            extra: Default::default(),
        }
    }

    /// A taken id and a taken name are told apart, so the API can say which collided.
    #[tokio::test]
    async fn duplicates_name_their_constraint() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = SqlStore::open(&url).await.unwrap();
        s.create_domain(&domain("d1", "one")).await.unwrap();
        match s.create_domain(&domain("d1", "two")).await {
            Err(StoreError::Duplicate {
                primary_key: true,
                constraint,
            }) => assert!(constraint.contains("id"), "{constraint}"),
            other => panic!("{other:?}"),
        }
        match s.create_domain(&domain("d2", "one")).await {
            Err(StoreError::Duplicate {
                primary_key: false,
                constraint,
            }) => assert!(constraint.contains("name"), "{constraint}"),
            other => panic!("{other:?}"),
        }
    }
}
