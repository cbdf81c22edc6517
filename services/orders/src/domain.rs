//! Orders as the rules see them: the status machine, who may move an order
//! where, and who may see it.

use platform::auth::{AuthUser, Role};
use platform::quantity::Quantity;
use platform::{ApiError, FieldError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Where an order is in its life: `created` (stock held) -> `paid` ->
/// `shipped` -> `delivered`, or `cancelled` from `created` or `paid`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Status {
    /// Placed; stock reserved.
    #[sea_orm(string_value = "created")]
    Created,
    /// Paid.
    #[sea_orm(string_value = "paid")]
    Paid,
    /// Handed to the carrier.
    #[sea_orm(string_value = "shipped")]
    Shipped,
    /// Arrived.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Cancelled; its stock went back.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl Status {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    /// The statuses an order may move to from this one.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::Created => &[Status::Paid, Status::Cancelled],
            Status::Paid => &[Status::Shipped, Status::Cancelled],
            Status::Shipped => &[Status::Delivered],
            Status::Delivered | Status::Cancelled => &[],
        }
    }
}

/// True when `caller` may see an order of `owner`.
pub fn may_see(caller: &AuthUser, owner: Uuid) -> bool {
    caller.user_id == owner || caller.is_staff()
}

/// Checks one status change by `caller` on an order of `owner` now at `from`.
/// A change the caller's role may never make is a 403, whatever the order's
/// status (authorization before validation); a change the machine does not
/// allow from `from` is a 409 naming the allowed ones.
pub fn check_move(
    caller: &AuthUser,
    owner: Uuid,
    from: Status,
    to: Status,
) -> Result<(), ApiError> {
    let permitted = match to {
        // Customers cancel their own orders; admins any.
        Status::Cancelled => caller.user_id == owner || caller.role == Role::Admin,
        // Support and admin move orders forward.
        _ => caller.is_staff(),
    };
    if !permitted {
        return Err(if to == Status::Cancelled {
            ApiError::Forbidden("only the customer or an admin may cancel an order".into())
        } else {
            ApiError::Forbidden("only support and admins move orders forward".into())
        });
    }
    if !from.next().contains(&to) {
        let allowed: Vec<String> = from.next().iter().map(|s| s.as_str().to_owned()).collect();
        let detail = if allowed.is_empty() {
            format!("an order that is {} cannot change any more", from.as_str())
        } else {
            format!(
                "an order that is {} can become {}, not {}",
                from.as_str(),
                allowed.join(" or "),
                to.as_str()
            )
        };
        return Err(ApiError::Conflict {
            detail,
            errors: Vec::new(),
            allowed: Some(allowed),
        });
    }
    Ok(())
}

/// One line as a client orders it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// A product in the catalogue; its name and price are copied into the order.
    pub product_id: Uuid,
    /// How many units of the product.
    pub quantity: Quantity,
}

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;

/// Checks the lines of one order (each line's quantity was parsed with the body).
pub fn check_lines(lines: &[Line]) -> Option<FieldError> {
    (lines.is_empty() || lines.len() > MAX_LINES)
        .then(|| FieldError::new("items", format!("must hold 1 to {MAX_LINES} lines")))
}

/// Whom an order is for: customers order for themselves; staff for anyone.
pub fn orderer(caller: &AuthUser, requested: Option<Uuid>) -> Result<Uuid, String> {
    match requested {
        None => Ok(caller.user_id),
        Some(id) if id == caller.user_id || caller.is_staff() => Ok(id),
        Some(_) => Err("customers order for themselves only".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform::auth::Claims;

    use super::*;

    fn caller(role: Role) -> AuthUser {
        let id = Uuid::now_v7();
        AuthUser {
            user_id: id,
            role,
            claims: Arc::new(Claims {
                sub: id,
                role,
                jti: Uuid::now_v7(),
                exp: 0,
                iat: 0,
                iss: String::new(),
                aud: String::new(),
                sid: None,
            }),
        }
    }

    #[test]
    fn the_machine_allows_only_its_transitions() {
        let admin = caller(Role::Admin);
        let owner = Uuid::now_v7();
        assert!(check_move(&admin, owner, Status::Created, Status::Paid).is_ok());
        assert!(check_move(&admin, owner, Status::Paid, Status::Shipped).is_ok());
        assert!(check_move(&admin, owner, Status::Shipped, Status::Delivered).is_ok());
        assert!(check_move(&admin, owner, Status::Paid, Status::Cancelled).is_ok());
        let Err(ApiError::Conflict { allowed, .. }) =
            check_move(&admin, owner, Status::Shipped, Status::Cancelled)
        else {
            panic!("shipped orders cannot be cancelled");
        };
        assert_eq!(allowed, Some(vec!["delivered".to_owned()]));
        assert!(matches!(
            check_move(&admin, owner, Status::Created, Status::Delivered),
            Err(ApiError::Conflict { .. })
        ));
    }

    #[test]
    fn roles_decide_who_moves_what() {
        let customer = caller(Role::Customer);
        let support = caller(Role::Support);
        let mine = customer.user_id;
        assert!(check_move(&customer, mine, Status::Created, Status::Cancelled).is_ok());
        assert!(matches!(
            check_move(&customer, mine, Status::Created, Status::Paid),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            check_move(&support, mine, Status::Created, Status::Cancelled),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check_move(&support, mine, Status::Created, Status::Paid).is_ok());
    }

    #[test]
    fn a_move_the_role_may_never_make_is_403_whatever_the_status() {
        let customer = caller(Role::Customer);
        let mine = customer.user_id;
        for (from, to) in [
            (Status::Created, Status::Shipped),
            (Status::Delivered, Status::Paid),
            (Status::Cancelled, Status::Delivered),
        ] {
            assert!(
                matches!(
                    check_move(&customer, mine, from, to),
                    Err(ApiError::Forbidden(_))
                ),
                "{from:?} -> {to:?}"
            );
        }
        assert!(matches!(
            check_move(&customer, mine, Status::Shipped, Status::Cancelled),
            Err(ApiError::Conflict { .. })
        ));
    }

    #[test]
    fn customers_order_for_themselves() {
        let customer = caller(Role::Customer);
        assert_eq!(orderer(&customer, None), Ok(customer.user_id));
        assert!(orderer(&customer, Some(Uuid::now_v7())).is_err());
        let support = caller(Role::Support);
        let someone = Uuid::now_v7();
        assert_eq!(orderer(&support, Some(someone)), Ok(someone));
    }
}
