//! Profiles as the rules see them: parsed values that are valid by
//! construction, and the role rules of each operation.

use platform::auth::{AuthUser, Role};
use platform::error::FieldErrors;
use platform::{ApiError, FieldError};
use uuid::Uuid;

pub use platform::address::Address;
pub use platform::email::Email;

/// A profile to create, every field already valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    /// Trimmed display name.
    pub name: String,
    /// E-mail address.
    pub email: Email,
    /// Phone number.
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub role: Role,
}

/// Changes to a profile, every present field already valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New name.
    pub name: Option<String>,
    /// New e-mail address.
    pub email: Option<Email>,
    /// New phone.
    pub phone: Option<String>,
    /// New address (replaces the old one whole).
    pub address: Option<Address>,
    /// New role.
    pub role: Option<Role>,
}

/// A display name: 1 to 200 characters after trimming, no control characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// A phone number: digits with optional `+`, spaces, dashes, dots and parentheses; 6 to 15 digits.
pub fn parse_phone(raw: &str) -> Result<String, String> {
    let phone = raw.trim();
    let allowed = phone
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -.()".contains(c) || (c == '+' && i == 0));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if allowed && (6..=15).contains(&digits) {
        Ok(phone.to_owned())
    } else {
        Err("must be a phone number such as +49 30 1234567 (6 to 15 digits)".into())
    }
}

/// Checks every part of an address, naming failing parts as `address.<part>`.
fn parse_address(raw: &Address, errors: &mut FieldErrors) -> Option<Address> {
    raw.parse("address")
        .map_err(|failures| errors.0.extend(failures))
        .ok()
}

/// The fields of a profile as a client sends them.
#[derive(Debug, Clone)]
pub struct RawProfile<'a> {
    pub name: &'a str,
    /// E-mail.
    pub email: &'a str,
    /// Phone, if given.
    pub phone: Option<&'a str>,
    /// Address, if given.
    pub address: Option<&'a Address>,
    /// Role, if given.
    pub role: Option<Role>,
}

impl NewProfile {
    /// Validates every field, reporting all failures at once.
    pub fn parse(raw: RawProfile<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", parse_name(raw.name));
        let email = errors.check("email", Email::parse(raw.email));
        let phone = match raw.phone {
            None => Some(None),
            Some(phone) => errors.check("phone", parse_phone(phone)).map(Some),
        };
        let address = match raw.address {
            None => Some(None),
            Some(address) => parse_address(address, &mut errors).map(Some),
        };
        match (name, email, phone, address) {
            (Some(name), Some(email), Some(phone), Some(address)) if errors.0.is_empty() => {
                Ok(Self {
                    name,
                    email,
                    phone,
                    address,
                    role: raw.role.unwrap_or(Role::Customer),
                })
            }
            _ => Err(errors.0),
        }
    }
}

impl ProfileChanges {
    /// Validates the fields present; at least one must be.
    pub fn parse(
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        address: Option<&Address>,
        role: Option<Role>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let changes = Self {
            name: name.and_then(|n| errors.check("name", parse_name(n))),
            email: email.and_then(|e| errors.check("email", Email::parse(e))),
            phone: phone.and_then(|p| errors.check("phone", parse_phone(p))),
            address: address.and_then(|a| parse_address(a, &mut errors)),
            role,
        };
        if !errors.0.is_empty() {
            return Err(errors.0);
        }
        if changes == Self::default() {
            return Err(vec![FieldError::new(
                "body",
                "name at least one of name, email, phone, address, role",
            )]);
        }
        Ok(changes)
    }
}

/// Who may read a profile: the user, support and admin.
pub fn may_read(caller: &AuthUser, user_id: Uuid) -> Result<(), ApiError> {
    if caller.is_self_or(user_id, &[Role::Support, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "customers may read only their own profile".into(),
        ))
    }
}

/// Who may change a profile: the user (but not its role) and admin.
pub fn may_update(
    caller: &AuthUser,
    user_id: Uuid,
    changes: &ProfileChanges,
) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    if caller.user_id != user_id {
        return Err(ApiError::Forbidden(
            "only admins may change another user's profile".into(),
        ));
    }
    if changes.role.is_some() {
        return Err(ApiError::Forbidden("only admins may change a role".into()));
    }
    Ok(())
}

/// Deletion is all or nothing: every id must exist and none may be an admin.
pub fn check_deletable(requested: &[Uuid], found: &[(Uuid, Role)]) -> Result<(), DeleteRefused> {
    let unknown: Vec<Uuid> = requested
        .iter()
        .filter(|id| !found.iter().any(|(found, _)| found == *id))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(DeleteRefused::Unknown(unknown));
    }
    let admins: Vec<(usize, Uuid)> = requested
        .iter()
        .enumerate()
        .filter(|(_, id)| found.contains(&(**id, Role::Admin)))
        .map(|(index, id)| (index, *id))
        .collect();
    if !admins.is_empty() {
        return Err(DeleteRefused::Admins(admins));
    }
    Ok(())
}

/// Why a deletion deleted nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteRefused {
    /// These ids name no user.
    Unknown(Vec<Uuid>),
    /// These (index in the request, id) are admins.
    Admins(Vec<(usize, Uuid)>),
}

impl From<DeleteRefused> for ApiError {
    fn from(refused: DeleteRefused) -> Self {
        match refused {
            DeleteRefused::Unknown(ids) => {
                let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                ApiError::NotFound(format!(
                    "no user with id {}; nothing was deleted",
                    ids.join(", ")
                ))
            }
            DeleteRefused::Admins(admins) => ApiError::Conflict {
                detail: "admins cannot be deleted; nothing was deleted".into(),
                errors: admins
                    .into_iter()
                    .map(|(index, id)| FieldError::new("id", format!("{id} is an admin")).at(index))
                    .collect(),
                allowed: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(name: &'a str, email: &'a str) -> RawProfile<'a> {
        RawProfile {
            name,
            email,
            phone: None,
            address: None,
            role: None,
        }
    }

    #[test]
    fn phones_need_six_to_fifteen_digits() {
        assert!(parse_phone("+49 (30) 123-4567").is_ok());
        assert!(parse_phone("12345").is_err());
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("49+301234567").is_err());
    }

    #[test]
    fn a_new_profile_reports_every_bad_field() {
        let errors = NewProfile::parse(raw("", "nope")).expect_err("two bad fields");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "email"]);
    }

    #[test]
    fn a_new_profile_defaults_to_customer() {
        let profile = NewProfile::parse(raw("Ada", "ada@example.com")).expect("valid");
        assert_eq!(profile.role, Role::Customer);
    }

    #[test]
    fn address_parts_are_named_in_errors() {
        let address = Address {
            line1: "".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "Germany".into(),
        };
        let mut profile = raw("Ada", "ada@example.com");
        profile.address = Some(&address);
        let errors = NewProfile::parse(profile).expect_err("bad address");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["address.line1", "address.country"]);
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert!(ProfileChanges::parse(None, None, None, None, None).is_err());
    }

    #[test]
    fn deleting_refuses_unknown_ids_and_admins() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            check_deletable(&[a, b], &[(a, Role::Customer)]),
            Err(DeleteRefused::Unknown(vec![b]))
        );
        assert_eq!(
            check_deletable(&[a, b], &[(a, Role::Customer), (b, Role::Admin)]),
            Err(DeleteRefused::Admins(vec![(1, b)]))
        );
        assert!(check_deletable(&[a], &[(a, Role::Support)]).is_ok());
    }
}
