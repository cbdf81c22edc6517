//! A TCP forwarder a test can cut, restore or freeze, to take a dependency
//! away from one service without stopping it for all.

/// A TCP forwarder on a loopback port that a test can cut and restore, to take
/// a dependency (Redis, RabbitMQ) away from one service without stopping it for all.
#[derive(Debug)]
pub struct TcpProxy {
    /// The address to point the service at.
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
    freezes: std::sync::Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
}

impl TcpProxy {
    /// Forwards a fresh loopback port to `upstream`.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let freezes = std::sync::Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let upstream = upstream.to_owned();
        let (accepting, current) = (up.clone(), connections.clone());
        let current_freeze = freezes.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    // Down: the connection is refused as soon as it is made.
                    continue;
                }
                let stop = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let freeze = current_freeze
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Both sockets stay open, relaying nothing, until cut.
                        _ = freeze.cancelled() => stop.cancelled().await,
                    }
                });
            }
        });
        Ok(Self {
            addr,
            up,
            connections,
            freezes,
        })
    }

    /// Drops every connection and refuses new ones, as if the dependency died.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut current = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        current.cancel();
        *current = tokio_util::sync::CancellationToken::new();
    }

    /// Stops relaying on every open connection without closing it, like a
    /// network partition that no reset ever reports; connections made
    /// afterwards relay normally.
    pub fn freeze_open_connections(&self) {
        let mut current = self.freezes.lock().unwrap_or_else(|p| p.into_inner());
        current.cancel();
        *current = tokio_util::sync::CancellationToken::new();
    }

    /// Accepts connections again, as if the dependency came back.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
