//! Graceful shutdown: one token, cancelled on SIGTERM or Ctrl-C.
//!
//! SIGTERM is how an orchestrator stops a replica, and the replica's load
//! balancer only learns of it from `/readyz`. So on SIGTERM the process first
//! reports itself draining (every `/readyz` in it answers 503), keeps serving
//! for the drain period while the balancer takes it out of rotation, and only
//! then cancels the token: listeners close, requests in flight finish, the
//! message in hand is finished. Ctrl-C at a terminal has no balancer to wait
//! for and stops at once. A second signal during the drain stops at once too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Process-wide, because the signal is: in `shop serve` every service in the
/// process is leaving together.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Whether the process is draining before a stop: its replicas must leave rotation.
pub fn is_draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

/// Returns a token that is cancelled on Ctrl-C at once, and on SIGTERM after
/// `drain` during which [`is_draining`] is true.
pub fn on_signal(drain: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = async {
            tokio::signal::ctrl_c().await.ok();
        };
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let terminated = async {
            match term.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        let drain_first = tokio::select! {
            _ = ctrl_c => false,
            _ = terminated => true,
        };
        if drain_first && !drain.is_zero() {
            DRAINING.store(true, Ordering::Relaxed);
            tracing::info!(
                drain_secs = drain.as_secs_f64(),
                "SIGTERM: readiness now fails; serving on while the load balancer drains"
            );
            let again = async {
                #[cfg(unix)]
                if let Some(signal) = term.as_mut() {
                    signal.recv().await;
                    return;
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = tokio::time::sleep(drain) => {},
                _ = again => tracing::info!("second SIGTERM: stopping without the rest of the drain"),
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        DRAINING.store(true, Ordering::Relaxed);
        tracing::info!("shutdown requested; finishing requests in flight");
        cancel.cancel();
    });
    token
}
