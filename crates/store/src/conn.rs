//! Where a `SqlStore`'s statements run: the pool, or the one transaction of a unit of
//! work ([`Store::begin_unit`](limen_core::store::Store::begin_unit)).
//!
//! Every statement goes through [`Conn::exec`], [`Conn::fetch`], [`Conn::fetch_one`] or a
//! [`Work`] from [`Conn::begin`], so a store method written once runs the same alone or
//! inside a unit. Inside a unit, a method's own transaction becomes a savepoint of the
//! unit's, and the first failed statement fails the whole unit: PostgreSQL refuses every
//! later statement of such a transaction anyway, and a commit must not report success
//! for writes that were silently dropped. Errors are mapped here too: a uniqueness
//! violation becomes `StoreError::Duplicate` naming its constraint.

use crate::sql::{bind_all, Arg, Sql};
use limen_core::error::{StoreError, StoreResult};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The savepoint a store method's own transaction becomes inside a unit. Methods do not
/// nest their transactions, so one name serves.
const STEP: &str = "limen_step";

#[derive(Clone)]
pub(crate) enum Conn {
    Pool(AnyPool),
    Unit(Arc<UnitState>),
}

/// A unit of work's transaction; `None` once committed or rolled back.
pub(crate) struct UnitState {
    tx: Mutex<Option<Transaction<'static, Any>>>,
    /// A statement failed or a step was abandoned: the unit can only roll back.
    failed: AtomicBool,
}

impl UnitState {
    pub(crate) fn new(tx: Transaction<'static, Any>) -> Self {
        UnitState {
            tx: Mutex::new(Some(tx)),
            failed: AtomicBool::new(false),
        }
    }

    fn fail(&self, e: sqlx::Error) -> StoreError {
        self.failed.store(true, Ordering::SeqCst);
        backend_err(e)
    }

    /// Commits, unless a step failed: then rolls back and says so.
    pub(crate) async fn commit(&self) -> StoreResult<()> {
        let tx = self.tx.lock().await.take();
        let Some(tx) = tx else {
            return Err(ended());
        };
        if self.failed.load(Ordering::SeqCst) {
            tx.rollback().await.map_err(backend_err)?;
            return Err(StoreError::backend(
                "a step of the unit of work failed; nothing of it was written",
            ));
        }
        tx.commit().await.map_err(backend_err)
    }
}

/// The connection of a held transaction guard.
fn conn_of<'g>(
    guard: &'g mut MutexGuard<'_, Option<Transaction<'static, Any>>>,
) -> StoreResult<&'g mut AnyConnection> {
    match guard.as_mut() {
        Some(tx) => Ok(&mut **tx),
        None => Err(ended()),
    }
}

impl Conn {
    pub(crate) async fn exec(&self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
        let query = bind_all(sqlx::query(sql), &args);
        match self {
            Conn::Pool(pool) => query.execute(pool).await.map_err(backend_err),
            Conn::Unit(unit) => {
                let mut guard = unit.tx.lock().await;
                query
                    .execute(conn_of(&mut guard)?)
                    .await
                    .map_err(|e| unit.fail(e))
            }
        }
        .map(|r| r.rows_affected())
    }

    pub(crate) async fn fetch(&self, sql: &Sql) -> StoreResult<Vec<AnyRow>> {
        match self {
            Conn::Pool(pool) => sql.query().fetch_all(pool).await.map_err(backend_err),
            Conn::Unit(unit) => {
                let mut guard = unit.tx.lock().await;
                sql.query()
                    .fetch_all(conn_of(&mut guard)?)
                    .await
                    .map_err(|e| unit.fail(e))
            }
        }
    }

    pub(crate) async fn fetch_one(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<AnyRow>> {
        let query = bind_all(sqlx::query(sql), &args);
        match self {
            Conn::Pool(pool) => query.fetch_optional(pool).await.map_err(backend_err),
            Conn::Unit(unit) => {
                let mut guard = unit.tx.lock().await;
                query
                    .fetch_optional(conn_of(&mut guard)?)
                    .await
                    .map_err(|e| unit.fail(e))
            }
        }
    }

    /// A transaction for one method's statements: its own, or a savepoint of the unit's.
    pub(crate) async fn begin(&self) -> StoreResult<Work<'_>> {
        match self {
            Conn::Pool(pool) => Ok(Work::Own(pool.begin().await.map_err(backend_err)?)),
            Conn::Unit(unit) => {
                let mut guard = unit.tx.lock().await;
                conn_of(&mut guard)?
                    .execute(format!("SAVEPOINT {STEP}").as_str())
                    .await
                    .map_err(|e| unit.fail(e))?;
                Ok(Work::Step(guard, StepEnd { unit, ended: false }))
            }
        }
    }
}

pub(crate) fn backend_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let (constraint, primary_key) = unique_constraint(db.constraint(), db.message());
            return StoreError::Duplicate {
                constraint,
                primary_key,
            };
        }
    }
    StoreError::backend_cause("database", e)
}

/// The violated uniqueness constraint and whether it is a table's primary key. PostgreSQL
/// names the constraint (`users_pkey`, `users_domain_id_name_key`); SQLite names only
/// the columns, in its message (`UNIQUE constraint failed: users.domain_id, users.name`).
/// Every table keyed by an id has it as the key's last column (`id`, or `kind, id`).
fn unique_constraint(name: Option<&str>, message: &str) -> (String, bool) {
    if let Some(name) = name {
        return (name.to_string(), name.ends_with("_pkey"));
    }
    let columns = message
        .split_once("constraint failed: ")
        .map_or(message, |(_, cols)| cols)
        .trim();
    let primary_key = columns
        .rsplit(", ")
        .next()
        .is_some_and(|last| last.ends_with(".id"));
    (columns.to_string(), primary_key)
}

fn ended() -> StoreError {
    StoreError::backend("the unit of work has already ended")
}

/// One method's transaction.
pub(crate) enum Work<'a> {
    Own(Transaction<'static, Any>),
    Step(UnitGuard<'a>, StepEnd<'a>),
}

type UnitGuard<'a> = MutexGuard<'a, Option<Transaction<'static, Any>>>;

/// Whether a step of a unit was ended: one left without commit or rollback (an error
/// returned early) cannot be undone when dropped (undoing is a statement), so the whole
/// unit rolls back at its commit instead.
pub(crate) struct StepEnd<'a> {
    unit: &'a UnitState,
    ended: bool,
}

impl Drop for StepEnd<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.unit.failed.store(true, Ordering::SeqCst);
        }
    }
}

impl Work<'_> {
    /// The connection its statements run on.
    pub(crate) fn conn(&mut self) -> StoreResult<&mut AnyConnection> {
        match self {
            Work::Own(tx) => Ok(tx),
            Work::Step(guard, _) => conn_of(guard),
        }
    }

    pub(crate) async fn commit(self) -> StoreResult<()> {
        match self {
            Work::Own(tx) => tx.commit().await.map_err(backend_err),
            Work::Step(tx, end) => end.finish(tx, &["RELEASE SAVEPOINT"]).await,
        }
    }

    pub(crate) async fn rollback(self) -> StoreResult<()> {
        match self {
            Work::Own(tx) => tx.rollback().await.map_err(backend_err),
            // Rolled back to, a savepoint still exists until released.
            Work::Step(tx, end) => {
                end.finish(tx, &["ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT"])
                    .await
            }
        }
    }
}

impl StepEnd<'_> {
    async fn finish(mut self, mut guard: UnitGuard<'_>, statements: &[&str]) -> StoreResult<()> {
        self.ended = true;
        for s in statements {
            conn_of(&mut guard)?
                .execute(format!("{s} {STEP}").as_str())
                .await
                .map_err(|e| self.unit.fail(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::unique_constraint;

    #[test]
    fn postgresql_constraints_are_read_by_name() {
        let pk = unique_constraint(Some("domain_pkey"), "duplicate key value");
        assert_eq!(pk, ("domain_pkey".to_string(), true));
        let name = unique_constraint(Some("domain_name_key"), "duplicate key value");
        assert!(!name.1);
        let doc = unique_constraint(
            None,
            "UNIQUE constraint failed: documents.kind, documents.id",
        );
        assert!(doc.1);
    }
}
