//! PostgreSQL: create the service's database if it is missing, connect, migrate.

use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, SqlxPostgresConnector};
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

/// Tables every service has: the outbox (and, later, the inbox).
fn platform_migrations() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// How long a pooled connection may sit unused before it is pinged on its next use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// How long after a connection failure every pooled connection is pinged
/// before use. A server restart breaks every pooled connection at once; the
/// first request to meet one is answered 503, and for this long the pool
/// weeds out the other broken ones itself instead of handing them out.
const PING_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// When a request last met a broken or refused connection, in milliseconds
/// since [`EPOCH`]; 0 for never.
static LAST_FAILURE_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Records that a database connection failed, so that pools check theirs for a while.
pub fn connection_failed() {
    let now = EPOCH.elapsed().as_millis() as u64;
    LAST_FAILURE_MS.store(now.max(1), Ordering::Relaxed);
}

fn failed_recently() -> bool {
    let last = LAST_FAILURE_MS.load(Ordering::Relaxed);
    last != 0
        && (EPOCH.elapsed().as_millis() as u64).saturating_sub(last)
            < PING_AFTER_FAILURE.as_millis() as u64
}

/// Like [`is_unavailable`], for an error SeaORM returned.
pub fn is_unavailable_orm(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(err)) | DbErr::Exec(RuntimeErr::SqlxError(err)) => {
            is_unavailable(err)
        }
        _ => false,
    }
}

/// Whether `err` means the database is away, restarting or out of room,
/// rather than that the statement is wrong: worth a 503 and a retry.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes 08 (connection exception), 53 (insufficient
        // resources: too many connections, out of memory or disk) and 57P
        // (operator intervention: shutdown, crash, cannot connect now).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }),
        _ => false,
    }
}

/// Options for `url`. TLS to a server on this machine protects nothing and
/// costs an encryption of every message at both ends, so a loopback URL that
/// names no `sslmode` (nor `PGSSLMODE`) connects without it.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let host = options.get_host();
    let loopback = host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1");
    let mode_chosen = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    Ok(if loopback && !mode_chosen {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    })
}

/// Connecting to or preparing the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// The URL does not parse.
    #[error("the database URL is invalid: {0}")]
    BadUrl(String),
    /// The server did not answer.
    #[error(
        "cannot reach PostgreSQL for database `{database}` ({cause}); start PostgreSQL or point \
         SHOP_DATABASE_URL (or SHOP_<SERVICE>_DATABASE_URL) at a running server"
    )]
    Unreachable {
        /// The database that was wanted.
        database: String,
        /// The driver's error.
        cause: String,
    },
    /// A migration failed.
    #[error("migrating database `{database}` failed: {cause}")]
    Migration {
        /// The database being migrated.
        database: String,
        /// The migrator's error.
        cause: String,
    },
}

/// Creates the database named in `url` if missing, opens a pool, applies the
/// platform's and then the service's migrations, and wraps the pool for SeaORM.
pub async fn connect_and_migrate(
    url: &SecretString,
    pool_size: u32,
    migrations: Migrator,
) -> Result<DatabaseConnection, DbSetupError> {
    let options = connect_options(url.expose_secret())
        .map_err(|err| DbSetupError::BadUrl(err.to_string()))?;
    let database = options.get_database().unwrap_or("postgres").to_owned();
    create_database_if_missing(&options, &database).await?;
    let pool = PgPoolOptions::new()
        .max_connections(pool_size.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        // A ping before every use would cost a round trip per transaction;
        // only a connection that sat idle (maybe across a server restart) is checked.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_PING || failed_recently() {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options.disable_statement_logging())
        .await
        .map_err(|err| DbSetupError::Unreachable {
            database: database.clone(),
            cause: err.to_string(),
        })?;
    migrate(&pool, migrations)
        .await
        .map_err(|err| DbSetupError::Migration {
            database: database.clone(),
            cause: err.to_string(),
        })?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// Applies the platform's migrations and then the service's `migrations` to `pool`.
pub async fn migrate(
    pool: &PgPool,
    mut migrations: Migrator,
) -> Result<(), sqlx::migrate::MigrateError> {
    // Both sets share `_sqlx_migrations`; each ignores the other's versions.
    let mut platform = platform_migrations();
    platform.set_ignore_missing(true);
    platform.run(pool).await?;
    migrations.set_ignore_missing(true);
    migrations.run(pool).await
}

/// A fingerprint of every migration [`migrate`] applies, naming test templates.
pub fn migrations_fingerprint(migrations: &Migrator) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for migration in platform_migrations().iter().chain(migrations.iter()) {
        hash.update(migration.version.to_le_bytes());
        hash.update(&migration.checksum);
    }
    hash.finalize()
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn create_database_if_missing(
    options: &PgConnectOptions,
    database: &str,
) -> Result<(), DbSetupError> {
    let unreachable = |err: sqlx::Error| DbSetupError::Unreachable {
        database: database.to_owned(),
        cause: err.to_string(),
    };
    let mut admin = options
        .clone()
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await
        .map_err(unreachable)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await
            .map_err(unreachable)?;
    if !exists {
        let create = format!("CREATE DATABASE {}", quote_ident(database));
        match sqlx::query(&create).execute(&mut admin).await {
            Ok(_) => tracing::info!(database, "created database"),
            // Another replica created it first: that is what we wanted.
            Err(sqlx::Error::Database(err))
                if matches!(err.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(err) => return Err(unreachable(err)),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgSslMode;

    use super::connect_options;

    #[test]
    fn a_loopback_url_without_a_tls_mode_connects_without_tls() {
        let local = connect_options("postgres://postgres@127.0.0.1:5432/shop").expect("a URL");
        assert!(matches!(local.get_ssl_mode(), PgSslMode::Disable));
    }

    #[test]
    fn a_tls_mode_in_the_url_is_kept_even_on_loopback() {
        let asked =
            connect_options("postgres://postgres@127.0.0.1/shop?sslmode=require").expect("a URL");
        assert!(matches!(asked.get_ssl_mode(), PgSslMode::Require));
    }

    #[test]
    fn a_remote_server_keeps_the_default_tls_mode() {
        let remote = connect_options("postgres://db.example.com/shop").expect("a URL");
        assert!(!matches!(remote.get_ssl_mode(), PgSslMode::Disable));
    }
}
