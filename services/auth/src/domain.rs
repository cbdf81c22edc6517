//! Credentials as the rules see them.

use secrecy::SecretString;

/// A login name: 3 to 50 characters of letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit, trimmed. Only [`Username::parse`] makes
/// one, so a value is always valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// The username in `raw`, or why it is not one (a message for the client).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let username = raw.trim();
        let len = username.chars().count();
        if !(3..=50).contains(&len) {
            return Err("must be 3 to 50 characters".into());
        }
        let mut chars = username.chars();
        let starts_well = chars.next().is_some_and(|c| c.is_alphanumeric());
        let rest_ok = username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if starts_well && rest_ok {
            Ok(Self(username.to_owned()))
        } else {
            Err("may hold only letters, digits, `.`, `_` and `-`, and must start with a letter or digit".into())
        }
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The username as an owned string, for a column or an answer.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest password accepted, in characters: any passphrase, but a bound on
/// what one request makes the server hash.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Passwords: 8 to 1024 characters of any script (every one of them counts:
/// see [`crate::password`]).
pub fn parse_password(raw: &str) -> Result<SecretString, String> {
    let chars = raw.chars().count();
    if chars < 8 {
        return Err("must be at least 8 characters".into());
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    if raw.trim().is_empty() {
        return Err("must not be only spaces".into());
    }
    Ok(SecretString::from(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert_eq!(
            Username::parse(" ada.l-1 ").map(Username::into_string),
            Ok("ada.l-1".to_owned())
        );
        for bad in ["ab", ".ada", "ada lovelace", "ada@home", &"a".repeat(51)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_eight_characters_of_any_script() {
        assert!(parse_password("12345678").is_ok());
        assert!(parse_password("1234567").is_err());
        assert!(parse_password(&"ж".repeat(64)).is_ok());
        assert!(parse_password(&"x".repeat(1024)).is_ok());
        assert!(parse_password(&"x".repeat(1025)).is_err());
        assert!(parse_password("        ").is_err());
    }
}
