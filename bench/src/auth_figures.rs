//! Auth figures: login throughput against the bcrypt ceiling measured in the
//! same run, the cost of verifying a token, and how fast a revocation lands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::auth::{Role, Signer, Verifier};
use platform::settings::AuthSettings;
use serde_json::json;
use uuid::Uuid;

use crate::load::{Target, run_load_with_warmup};
use crate::orders_figures::{PASSWORD, register};

/// Hashes per second with every core hashing at `cost`.
pub fn bcrypt_ceiling(cost: u32, per_core: usize) -> f64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(move || {
                for _ in 0..per_core {
                    bcrypt::hash("bench-password-1", cost).ok();
                }
            });
        }
    });
    (cores * per_core) as f64 / started.elapsed().as_secs_f64()
}

/// Accounts the login scenario spreads its logins over: auth refuses more
/// than a few attempts on one username in flight at once (each counts
/// before its password is checked), as it would a password-guessing burst.
const LOGIN_ACCOUNTS: usize = 32;

/// Logins per second through the gateway, and p99 latency.
pub async fn login_throughput(gateway: &str, duration: Duration) -> anyhow::Result<(f64, f64)> {
    let mut bodies = Vec::with_capacity(LOGIN_ACCOUNTS);
    for _ in 0..LOGIN_ACCOUNTS {
        let (username, _) = register(gateway, "bench").await?;
        bodies.push(json!({"username": username, "password": PASSWORD}));
    }
    let target = Target::posts(gateway, "/auth/login", &bodies, None);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let report = run_load_with_warmup(target, cores * 4, duration, Duration::ZERO).await?;
    anyhow::ensure!(report.errors == 0, "{} logins failed", report.errors);
    Ok((report.rate, report.p99_ms))
}

/// Microseconds per verification: a token seen before, and one never seen.
pub async fn verification_cost() -> anyhow::Result<(f64, f64)> {
    let signer = Signer::generate()?;
    let settings = AuthSettings::default();
    let verifier = Arc::new(Verifier::new(settings.clone()));
    verifier.set_keys(&jsonwebtoken::jwk::JwkSet {
        keys: vec![signer.jwk()],
    });
    // A realistic revocation set: thousands of revoked tokens and users.
    for _ in 0..10_000 {
        verifier
            .revocations()
            .revoke_token(Uuid::now_v7(), chrono::Utc::now().timestamp() + 900);
        verifier
            .revocations()
            .revoke_user(Uuid::now_v7(), chrono::Utc::now().timestamp_millis());
    }
    let mint = || {
        signer
            .mint(
                Uuid::now_v7(),
                Role::Customer,
                &settings.issuer,
                &settings.audience,
                900,
            )
            .map(|(token, _)| token)
    };
    let token = mint()?;
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        verifier.verify(&token).await?;
    }
    let warm = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let fresh: Vec<String> = (0..5_000).map(|_| mint()).collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    for token in &fresh {
        verifier.verify(token).await?;
    }
    let cold = started.elapsed().as_secs_f64() * 1e6 / fresh.len() as f64;
    Ok((warm, cold))
}

/// Milliseconds from a logout's answer until the users service refuses the token.
pub async fn revocation_latency(gateway: &str, users: &str) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let (_, registered) = register(gateway, "rev").await?;
    let token = registered["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = registered["user"]["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let logout = http
        .post(format!("{gateway}/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(
        logout.status() == 204,
        "logout answered {}",
        logout.status()
    );
    let started = Instant::now();
    loop {
        let status = http
            .get(format!("{users}/users/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .status();
        if status == 401 {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(5), "never revoked");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
