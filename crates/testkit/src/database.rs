//! A fresh, migrated database per test, cloned from a template that is built
//! once per set of migrations, and dropped with everything the test's
//! services declared on the broker under its name.

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};

use platform::db::{migrate, migrations_fingerprint, quote_ident};

/// The server tests use; `SHOP_TEST_DATABASE_URL` overrides it.
pub fn server_url() -> String {
    std::env::var("SHOP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    /// A URL that connects to it.
    pub url: SecretString,
}

impl TestDatabase {
    /// Clones a fresh database for `service` from its template, building the
    /// template first if these migrations have not been seen before.
    pub async fn create(service: &str, migrations: Migrator) -> anyhow::Result<Self> {
        let server = server_url();
        let template = format!("tpl_{service}_{}", migrations_fingerprint(&migrations));
        let mut admin = admin_connection(&server).await?;
        // One builder at a time across test processes; the others wait here.
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        let built = build_template(&mut admin, &server, &template, migrations).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        built?;
        let name = format!("test_{service}_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await.ok();
        Ok(Self {
            url: SecretString::from(format!("{}/{name}", server.trim_end_matches('/'))),
            name,
        })
    }
}

impl TestDatabase {
    async fn connect(&self) -> PgConnection {
        PgConnection::connect(self.url.expose_secret())
            .await
            .expect("connect to the test database")
    }

    /// Runs `sql`, as another process might; returns the rows it touched.
    pub async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sql)
            .execute(&mut self.connect().await)
            .await
            .expect("run the statement")
            .rows_affected()
    }

    /// The one integer `sql` selects.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.connect().await)
            .await
            .expect("select one integer")
    }

    /// The one text `sql` selects.
    pub async fn text(&self, sql: &str) -> String {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.connect().await)
            .await
            .expect("select one text")
    }

    /// `SELECT count(*) FROM <from>` (a table, maybe with joins and `WHERE`).
    pub async fn count(&self, from: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {from}")).await
    }

    /// Waits up to 10 s (a loaded machine is slow) until [`Self::count`] of
    /// `from` is `expected`; panics otherwise.
    pub async fn eventually(&self, from: &str, expected: i64) {
        for _ in 0..200 {
            if self.count(from).await == expected {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(self.count(from).await, expected, "{from}");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server = server_url();
        // Drop runs outside async context; a short-lived runtime on its own
        // thread does the DROP so the test's runtime is not blocked or needed.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = admin_connection(&server).await?;
                sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ))
                .execute(&mut admin)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
        crate::remove_declared(&format!("{}.", self.name));
    }
}

async fn admin_connection(server: &str) -> anyhow::Result<PgConnection> {
    Ok(platform::db::connect_options(server)?
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await?)
}

async fn build_template(
    admin: &mut PgConnection,
    server: &str,
    template: &str,
    migrations: Migrator,
) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await?;
    if exists {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a crash midway
    // never leaves a half-migrated template behind.
    let building = format!("{template}_wip");
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(&building)
    ))
    .execute(&mut *admin)
    .await?;
    sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&building)))
        .execute(&mut *admin)
        .await?;
    {
        let url = format!("{}/{building}", server.trim_end_matches('/'));
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(SecretString::from(url).expose_secret())
            .await?;
        migrate(&pool, migrations).await?;
        pool.close().await;
    }
    sqlx::query(&format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(&building),
        quote_ident(template)
    ))
    .execute(&mut *admin)
    .await?;
    Ok(())
}
