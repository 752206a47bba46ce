//! `limen-datagen`: fills a bootstrapped Limen database with many users, projects and role
//! assignments for the scale benchmark, in bulk (see `limen_store::BulkLoader`).
//!
//! The shape does not depend on the size, so a small and a large dataset differ only in
//! how much there is: every user holds `assignments / users` project roles (the first
//! `member`, the others `reader`), spread so that every project has the same number of
//! members. Ids are derived from the counters (stable across runs, scattered like
//! Keystone's random UUIDs so that id order is not name order). All users share one
//! password, hashed once: hashing 100k bcrypt passwords would take hours and make no
//! difference to what is measured.
//!
//! At the end it prints, as shell assignments, what the benchmark needs: a user who can
//! log in, one of its projects, and a user id deep in the id order (a pagination marker).

use clap::Parser;
use limen_core::model::{
    Actor, Assignment, Extra, Password, Project, Target, User, DEFAULT_DOMAIN_ID,
};
use limen_core::store::{RoleFilter, Store};
use limen_store::{BulkLoader, SqlStore};
use std::error::Error;
use std::time::Instant;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(
    about = "Adds users, projects and role assignments in bulk to a bootstrapped Limen database",
    after_help = "Example:\n  limen-datagen --database-url sqlite://limen-data/limen.db --users 100000 --projects 10000 --assignments 1000000"
)]
struct Args {
    /// sqlite://PATH or postgres://USER:PASS@HOST/DB of a database `limen bootstrap` set up.
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 1000)]
    users: u64,
    #[arg(long, default_value_t = 100)]
    projects: u64,
    /// Project role assignments in total; a multiple of --users.
    #[arg(long, default_value_t = 10_000)]
    assignments: u64,
    /// The password every generated user gets.
    #[arg(long, default_value = "scale-pass-1234")]
    password: String,
    /// bcrypt cost of that password's hash.
    #[arg(long, default_value_t = 12)]
    rounds: u32,
    /// Rows per transaction: bounds memory, and keeps each commit large.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
}

/// A stable, well-scattered 32-hex-digit id for counter `i` of a kind (splitmix64 on
/// both halves).
fn id(kind: u64, i: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let a = mix(kind.wrapping_mul(0x1_0000_0001) ^ i);
    format!("{a:016x}{:016x}", mix(a ^ kind))
}

const USER: u64 = 1;
const PROJECT: u64 = 2;

fn user_id(i: u64) -> String {
    id(USER, i)
}
fn project_id(i: u64) -> String {
    id(PROJECT, i)
}

/// The projects of user `i`: `per_user` of them, `step` apart, so each project gets the
/// same number of members.
fn projects_of(i: u64, per_user: u64, projects: u64) -> impl Iterator<Item = u64> {
    let step = (projects / per_user).max(1);
    (0..per_user).map(move |k| (i + k * step) % projects)
}

async fn role_id(store: &SqlStore, name: &str) -> Result<String, Box<dyn Error>> {
    let roles = store
        .list_roles(&RoleFilter {
            name: Some(name.to_string()),
            domain_id: Some(None),
        })
        .await?;
    match roles.into_iter().next() {
        Some(r) => Ok(r.id),
        None => Err(format!("no global role {name}: run limen bootstrap first").into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let a = Args::parse();
    if a.users == 0 || a.projects == 0 || a.assignments % a.users != 0 {
        return Err(
            "--users and --projects must be > 0, --assignments a multiple of --users".into(),
        );
    }
    let per_user = a.assignments / a.users;
    if per_user > a.projects {
        return Err("more assignments per user than projects".into());
    }
    let started = Instant::now();

    let store = SqlStore::open(&a.database_url).await?;
    let member = role_id(&store, "member").await?;
    let reader = role_id(&store, "reader").await?;
    drop(store);

    let mut bulk = BulkLoader::open(&a.database_url).await?;
    let now = OffsetDateTime::now_utc();
    let hash = bcrypt::hash(&a.password, a.rounds)?;

    let projects: Vec<Project> = (0..a.projects)
        .map(|i| Project {
            id: project_id(i),
            name: format!("scale-project-{i:07}"),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            parent_id: DEFAULT_DOMAIN_ID.into(),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Extra::new(),
            extra: Extra::new(),
        })
        .collect();
    for chunk in projects.chunks(a.batch as usize) {
        bulk.projects(chunk).await?;
    }
    eprintln!(
        "datagen: {} projects ({:.1} s)",
        a.projects,
        started.elapsed().as_secs_f64()
    );

    let mut start = 0;
    while start < a.users {
        let end = (start + a.batch).min(a.users);
        let users: Vec<User> = (start..end)
            .map(|i| User {
                id: user_id(i),
                name: format!("scale-user-{i:07}"),
                domain_id: DEFAULT_DOMAIN_ID.into(),
                enabled: true,
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
                hash: hash.clone(),
                created_at: now,
                expires_at: None,
                self_service: false,
            })
            .collect();
        bulk.users(&users, &passwords).await?;
        start = end;
    }
    eprintln!(
        "datagen: {} users ({:.1} s)",
        a.users,
        started.elapsed().as_secs_f64()
    );

    // Users in batches whose assignments fill about one --batch.
    let users_per_batch = (a.batch / per_user).max(1);
    let mut start = 0;
    while start < a.users {
        let end = (start + users_per_batch).min(a.users);
        let rows: Vec<Assignment> = (start..end)
            .flat_map(|i| {
                let (member, reader) = (&member, &reader);
                projects_of(i, per_user, a.projects)
                    .enumerate()
                    .map(move |(k, p)| Assignment {
                        actor: Actor::User(user_id(i)),
                        target: Target::Project(project_id(p)),
                        role_id: if k == 0 {
                            member.clone()
                        } else {
                            reader.clone()
                        },
                        inherited: false,
                    })
            })
            .collect();
        bulk.assignments(&rows).await?;
        start = end;
    }
    bulk.analyze().await?;
    eprintln!(
        "datagen: {} role assignments ({:.1} s)",
        a.assignments,
        started.elapsed().as_secs_f64()
    );

    // The probe user sits in the middle; its first project (member) is where it logs in.
    let probe = a.users / 2;
    let probe_project = projects_of(probe, per_user, a.projects)
        .next()
        .unwrap_or_default();
    let mut ids: Vec<String> = (0..a.users).map(user_id).collect();
    ids.sort();
    let deep_marker = &ids[ids.len() * 9 / 10];
    println!("SCALE_USER=scale-user-{probe:07}");
    println!("SCALE_USER_ID={}", user_id(probe));
    println!("SCALE_PASSWORD={}", a.password);
    println!("SCALE_PROJECT_ID={}", project_id(probe_project));
    println!("SCALE_DEEP_MARKER={deep_marker}");
    println!("SCALE_USERS={}", a.users);
    println!("SCALE_PROJECTS={}", a.projects);
    println!("SCALE_ASSIGNMENTS={}", a.assignments);
    Ok(())
}
