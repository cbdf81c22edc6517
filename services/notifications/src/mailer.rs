//! Delivering mail: SMTP (host, port, TLS, credentials from a URL) or, by
//! default, `.eml` files in a directory, so `shop serve` needs no mail server.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::templates::Mail;

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A directory of `.eml` files.
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mailer::Smtp(_) => "Mailer::Smtp",
            Mailer::Files(_) => "Mailer::Files",
        })
    }
}

impl Mailer {
    /// SMTP at `url` (`smtp://user:pass@host:port`, `smtps://` for TLS,
    /// `?tls=starttls` to upgrade) or, without one, files in `dir`.
    pub fn new(url: Option<&str>, dir: &str) -> anyhow::Result<Self> {
        match url.filter(|u| !u.is_empty()) {
            Some(url) => {
                let parsed = url::Url::parse(url)
                    .map_err(|err| anyhow::anyhow!("SHOP_SMTP_URL is not a URL: {err}"))?;
                let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
                let starttls = parsed
                    .query_pairs()
                    .any(|(k, v)| k == "tls" && v == "starttls");
                let mut builder = match (parsed.scheme(), starttls) {
                    ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?,
                    (_, true) => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?,
                    _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
                };
                if let Some(port) = parsed.port() {
                    builder = builder.port(port);
                }
                if !parsed.username().is_empty() {
                    builder = builder.credentials(Credentials::new(
                        parsed.username().to_owned(),
                        parsed.password().unwrap_or_default().to_owned(),
                    ));
                }
                Ok(Mailer::Smtp(builder.build()))
            }
            None => {
                std::fs::create_dir_all(dir).map_err(|err| {
                    anyhow::anyhow!("cannot create the mail directory {dir}: {err}")
                })?;
                Ok(Mailer::Files(AsyncFileTransport::new(dir)))
            }
        }
    }

    /// Sends `mail` from `from` to `to`, with `message_id` as its Message-ID.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        message_id: &str,
        mail: &Mail,
    ) -> anyhow::Result<()> {
        let from: Mailbox = from.parse()?;
        let to: Mailbox = to.parse()?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{message_id}@shop>")))
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))?;
        match self {
            Mailer::Smtp(transport) => {
                transport.send(message).await?;
            }
            Mailer::Files(transport) => {
                transport.send(message).await?;
            }
        }
        Ok(())
    }
}
