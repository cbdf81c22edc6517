//! Bearer tokens: the claims, the roles, the extractor every handler uses, the
//! verifier behind it, and the signer that mints tokens.

mod signer;
mod verifier;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

pub use signer::Signer;
pub use verifier::{Revocations, Verifier, VerifyError};

/// Who a user is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Shops for itself.
    Customer,
    /// Reads everything, moves orders forward.
    Support,
    /// May do anything.
    Admin,
}

impl Role {
    /// The role's name as it appears in JSON and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Role::Customer),
            "support" => Some(Role::Support),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a shop access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Unique token id, the handle for revoking this one token.
    pub jti: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The login session (refresh-token family) the token was issued in:
    /// reusing a spent refresh token revokes it, and with it every access
    /// token of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// The authenticated caller of a request, extracted from `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The caller's user id.
    pub user_id: Uuid,
    /// The caller's role.
    pub role: Role,
    /// The verified claims.
    pub claims: Arc<Claims>,
}

impl AuthUser {
    /// Succeeds when the caller has one of `roles`, else a 403.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.role
            )))
        }
    }

    /// True for support and admin, who may act on other users' data.
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Support | Role::Admin)
    }

    /// True when the caller is `user_id` or has one of `roles`.
    pub fn is_self_or(&self, user_id: Uuid, roles: &[Role]) -> bool {
        self.user_id == user_id || roles.contains(&self.role)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let verifier = Arc::<Verifier>::from_ref(state);
        let claims = verifier.verify(token).await.map_err(|err| match err {
            VerifyError::KeysUnavailable(why) => {
                ApiError::ServiceUnavailable(format!("cannot verify tokens right now: {why}"))
            }
            other => ApiError::Unauthorized(other.to_string()),
        })?;
        Ok(AuthUser {
            user_id: claims.sub,
            role: claims.role,
            claims,
        })
    }
}

/// An authenticated admin. Anyone else is refused (403) as the request's
/// parts are read, before its path or body is looked at: a caller whose role
/// may never make a call learns nothing about what a valid call looks like.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

/// An authenticated admin or support member, refused like [`Admin`].
#[derive(Debug, Clone)]
pub struct Staff(pub AuthUser);

async fn with_role<S>(parts: &mut Parts, state: &S, roles: &[Role]) -> Result<AuthUser, ApiError>
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    let caller = AuthUser::from_request_parts(parts, state).await?;
    caller.require(roles)?;
    Ok(caller)
}

impl<S> FromRequestParts<S> for Admin
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        with_role(parts, state, &[Role::Admin]).await.map(Admin)
    }
}

impl<S> FromRequestParts<S> for Staff
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        with_role(parts, state, &[Role::Admin, Role::Support])
            .await
            .map(Staff)
    }
}
