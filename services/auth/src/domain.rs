//! Credentials as the rules see them.

use secrecy::SecretString;

/// Usernames: 3 to 50 characters of letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit.
pub fn parse_username(raw: &str) -> Result<String, String> {
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
        Ok(username.to_owned())
    } else {
        Err("may hold only letters, digits, `.`, `_` and `-`, and must start with a letter or digit".into())
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
        assert_eq!(parse_username(" ada.l-1 ").as_deref(), Ok("ada.l-1"));
        for bad in ["ab", ".ada", "ada lovelace", "ada@home", &"a".repeat(51)] {
            assert!(parse_username(bad).is_err(), "{bad}");
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
