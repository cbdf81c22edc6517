//! What a container needs from the binary, since its image has no shell or
//! curl: a health probe, and the internal secret written once for a compose
//! deployment to share.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

/// A fresh internal token: 256 random bits as hex (UUID v4 draws from the OS generator).
pub fn new_internal_token() -> SecretString {
    SecretString::from(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// `shop probe URL`: succeeds when a GET of `url` answers 2xx within `timeout`.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let response = client.get(url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}

/// `shop secrets init DIR`: writes `DIR/internal_token` unless it is there
/// already, so every container of a deployment reads the same one.
pub fn init_secrets(dir: &Path) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("internal_token");
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            println!("{}: kept", path.display());
            return Ok(());
        }
        Err(err) => anyhow::bail!("cannot create {}: {err}", path.display()),
    };
    file.write_all(new_internal_token().expose_secret().as_bytes())?;
    file.sync_all()?;
    println!("{}: written", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::init_secrets;

    #[test]
    fn secrets_init_writes_a_token_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("shop-secrets-{}", uuid::Uuid::new_v4()));
        init_secrets(&dir).expect("first init");
        let first = std::fs::read_to_string(dir.join("internal_token")).expect("written");
        assert_eq!(first.len(), 64);
        init_secrets(&dir).expect("second init");
        let second = std::fs::read_to_string(dir.join("internal_token")).expect("kept");
        assert_eq!(first, second);
        std::fs::remove_dir_all(&dir).ok();
    }
}
