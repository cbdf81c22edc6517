//! A minimal SMTP server that keeps what it receives, for tests.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub message_id: String,
    pub subject: String,
    pub at: Instant,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    reject: Arc<AtomicBool>,
}

fn header(data: &str, name: &str) -> String {
    data.lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sink = Self {
            addr: listener.local_addr().expect("addr"),
            received: Arc::default(),
            reject: Arc::default(),
        };
        let handle = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = handle.clone();
                tokio::spawn(async move { sink.session(stream).await });
            }
        });
        sink
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut rcpt = String::new();
        while let Some(line) = lines.next_line().await? {
            let upper = line.to_ascii_uppercase();
            let reply: &str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 sink\r\n"
            } else if upper.starts_with("MAIL FROM") {
                "250 OK\r\n"
            } else if upper.starts_with("RCPT TO") {
                rcpt = line[8..]
                    .trim()
                    .trim_matches(|c| c == '<' || c == '>' || c == ':')
                    .to_owned();
                "250 OK\r\n"
            } else if upper.starts_with("DATA") {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    data.push_str(&line);
                    data.push('\n');
                }
                if self.reject.load(Ordering::SeqCst) {
                    "550 rejected by the test\r\n"
                } else {
                    self.received.lock().expect("lock").push(Received {
                        to: rcpt.clone(),
                        message_id: header(&data, "Message-ID:"),
                        subject: header(&data, "Subject:"),
                        at: Instant::now(),
                    });
                    "250 queued\r\n"
                }
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                "250 OK\r\n"
            };
            write.write_all(reply.as_bytes()).await?;
        }
        Ok(())
    }

    /// Refuses (or accepts again) every message.
    pub fn reject(&self, reject: bool) {
        self.reject.store(reject, Ordering::SeqCst);
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The messages received for these addresses.
    pub fn to(&self, addresses: &[String]) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| addresses.contains(&m.to))
            .collect()
    }

    /// Waits (up to `seconds`) until `count` messages for `addresses` arrived.
    pub async fn wait_for(
        &self,
        addresses: &[String],
        count: usize,
        seconds: u64,
    ) -> Vec<Received> {
        let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let got = self.to(addresses);
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
