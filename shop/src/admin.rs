//! Operational commands that act on the services' databases directly, each
//! through the owning service's own store code.

use std::io::Read;

use platform::auth::Role;
use platform::outbox::Outbox;
use platform::settings::CommonArgs;
use secrecy::{ExposeSecret, SecretString};

use crate::serve::offline;

async fn database(
    common: &CommonArgs,
    service: &'static str,
    migrations: sqlx::migrate::Migrator,
) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let settings = offline(common).service(service)?;
    Ok(platform::db::connect_and_migrate(&settings.database_url, 2, migrations).await?)
}

/// `shop admin create`: an admin profile and its login, once.
pub async fn create_admin(
    common: &CommonArgs,
    username: String,
    email: String,
    password: Option<String>,
    name: Option<String>,
    bcrypt_cost: u32,
) -> anyhow::Result<()> {
    let password = match password {
        Some(password) => SecretString::from(password),
        None => {
            let mut read = String::new();
            std::io::stdin().read_to_string(&mut read)?;
            SecretString::from(read.trim_end_matches(['\r', '\n']).to_owned())
        }
    };
    let username =
        auth::domain::Username::parse(&username).map_err(|m| anyhow::anyhow!("username {m}"))?;
    let password = auth::domain::parse_password(password.expose_secret())
        .map_err(|m| anyhow::anyhow!("password {m}"))?;
    let auth_db = database(common, auth::NAME, auth::migrations()).await?;
    if let Some(existing) = auth::store::credential_by_username(&auth_db, username.as_str()).await?
    {
        println!(
            "admin {username} already exists (user {}); nothing changed",
            existing.user_id
        );
        return Ok(());
    }
    let users_db = database(common, users::NAME, users::migrations()).await?;
    let profile = users::domain::NewProfile::parse(users::domain::RawProfile {
        name: name.as_deref().unwrap_or(username.as_str()),
        email: &email,
        phone: None,
        address: None,
        role: Some(Role::Admin),
    })
    .map_err(|errors| {
        let reasons: Vec<String> = errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect();
        anyhow::anyhow!("invalid admin: {}", reasons.join("; "))
    })?;
    let user_id = uuid::Uuid::now_v7();
    let outbox = Outbox::default();
    users::store::create(&users_db, &outbox, vec![(user_id, profile)])
        .await
        .map_err(|err| anyhow::anyhow!("cannot create the admin profile: {err}"))?
        .map_err(|_| anyhow::anyhow!("the e-mail address {email} is already registered"))?;
    let hash = auth::password::Hasher::new(bcrypt_cost)
        .hash(password)
        .await?;
    let stored = auth::store::insert_credentials(
        &auth_db,
        vec![auth::store::new_credential(
            user_id,
            username.as_str().to_owned(),
            hash,
        )],
    )
    .await;
    if let Err(err) = stored {
        users::store::delete_unchecked(&users_db, &outbox, user_id)
            .await
            .map_err(|undo| anyhow::anyhow!("{err}; and removing the profile failed: {undo}"))?;
        return Err(anyhow::anyhow!("cannot store the admin login: {err}"));
    }
    println!("created admin {username} (user {user_id})");
    Ok(())
}

/// `shop auth purge-expired`.
pub async fn purge_expired(common: &CommonArgs) -> anyhow::Result<()> {
    let db = database(common, auth::NAME, auth::migrations()).await?;
    match auth::purge::purge_expired(&db).await? {
        Some(deleted) => println!("purged {deleted} expired refresh tokens"),
        None => println!("another replica is purging right now; nothing done"),
    }
    Ok(())
}

/// `shop auth rotate-key`.
pub async fn rotate_key(common: &CommonArgs) -> anyhow::Result<()> {
    let db = database(common, auth::NAME, auth::migrations()).await?;
    let kid = auth::keys::rotate(&db).await?;
    println!("new signing key {kid}; auth replicas pick it up within a minute");
    Ok(())
}

/// `shop seed --products N`.
pub async fn seed(common: &CommonArgs, count: usize) -> anyhow::Result<()> {
    let db = database(common, products::NAME, products::migrations()).await?;
    let bar = indicatif::ProgressBar::new(count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} products ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    products::seed::seed(&db, count, |done| bar.set_position(done as u64)).await?;
    bar.finish_and_clear();
    // Searches read the GIN pending lists through; merge them into the indexes now.
    // Fresh rows have no planner statistics until autovacuum gets to them.
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "SELECT gin_clean_pending_list(index) FROM unnest(ARRAY[
             'products_search', 'products_name_trgm', 'products_tags']::regclass[]) AS index;
         ANALYZE products",
    )
    .await?;
    println!(
        "added {count} products in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `shop mail retry-failed`.
pub async fn retry_failed_mail(common: &CommonArgs) -> anyhow::Result<()> {
    let db = database(common, notifications::NAME, notifications::migrations()).await?;
    let queued = notifications::store::retry_failed(&db).await?;
    println!("queued {queued} failed mails for another round of attempts");
    Ok(())
}

/// `shop events replay-dlq`.
pub async fn replay_dead_letters(common: &CommonArgs) -> anyhow::Result<()> {
    let broker = platform::broker::Broker::new(common.amqp_url.clone(), &common.broker_namespace);
    let replayed = platform::consumer::replay_dead_letters(&broker).await?;
    println!("replayed {replayed} dead-lettered events");
    Ok(())
}
