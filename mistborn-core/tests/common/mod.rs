//! Shared set-up for the core's store-backed tests: a fresh data dir and database per test, on
//! SQLite and (when `MISTBORN_TEST_POSTGRES_URL` is set; required under CI) on PostgreSQL.
#![allow(dead_code, clippy::unwrap_used)]

use mistborn_core::peers::NewPeer;
use mistborn_core::users::{NewUser, Role};
use mistborn_core::{Actor, Config, Mistborn};

/// A fresh data dir and database for one test on one engine.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pub engine: &'static str,
}

impl Env {
    pub fn config(&self) -> Config {
        Config {
            data_dir: self.dir.path().join("data"),
            database_url: self.database_url.clone(),
            endpoint: "vpn.example.org".into(),
            ..Config::default()
        }
    }
}

async fn postgres_database() -> Option<String> {
    let Ok(admin_url) = std::env::var("MISTBORN_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set MISTBORN_TEST_POSTGRES_URL (scripts/test.sh starts PostgreSQL)"
        );
        eprintln!("skipping PostgreSQL: MISTBORN_TEST_POSTGRES_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("mbtest_{}", uuid_simple());
    let pool = sqlx::AnyPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin_url.rsplit_once('/').unwrap().0;
    Some(format!("{base}/{name}"))
}

fn uuid_simple() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One environment per engine available.
pub async fn engines() -> Vec<Env> {
    let mut envs = vec![Env {
        dir: tempfile::tempdir().unwrap(),
        database_url: None,
        engine: "sqlite",
    }];
    if let Some(url) = postgres_database().await {
        envs.push(Env {
            dir: tempfile::tempdir().unwrap(),
            database_url: Some(url),
            engine: "postgres",
        });
    }
    envs
}

pub async fn regular(m: &Mistborn, name: &str) -> Actor {
    let user = m
        .users()
        .create(
            &Actor::System,
            NewUser {
                username: name.into(),
                password: "a long password".into(),
                role: Role::Regular,
            },
        )
        .await
        .unwrap();
    Actor::User {
        id: user.id,
        role: Role::Regular,
    }
}

pub fn profile(name: &str) -> NewPeer {
    NewPeer {
        name: name.into(),
        ..NewPeer::default()
    }
}
