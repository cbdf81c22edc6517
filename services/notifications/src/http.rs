//! `GET /notifications`: the log of messages, with the role rules of the API.

use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::auth::AuthUser;
use platform::extract::{Json, Query};
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::entity::notification;
use crate::store::{self, CreatedAt};

/// A message as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// The message.
    pub notification_id: Uuid,
    /// The event that asked for it.
    pub event_id: Uuid,
    /// Whom it is about.
    pub user_id: Uuid,
    /// `welcome`, `order_confirmation` or `order_shipped`.
    pub kind: String,
    /// Where it went.
    pub recipient: Option<String>,
    /// Subject line.
    pub subject: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts.
    pub attempts: i32,
    /// When the event arrived.
    pub created_at: DateTime<Utc>,
    /// When the mail server took it.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<notification::Model> for Notification {
    fn from(row: notification::Model) -> Self {
        Self {
            notification_id: row.notification_id,
            event_id: row.event_id,
            user_id: row.user_id,
            kind: row.kind,
            recipient: row.recipient,
            subject: row.subject,
            status: row.status,
            attempts: row.attempts,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// The query of `GET /notifications`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only this user's messages (customers always see only their own).
    pub user_id: Option<Uuid>,
    /// `welcome`, `order_confirmation` or `order_shipped`.
    pub kind: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const KINDS: &[&str] = &["welcome", "order_confirmation", "order_shipped"];
const STATUSES: &[&str] = &["pending", "sent", "failed"];

fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> ApiResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(ApiError::BadRequest(format!(
            "`{name}` must be one of {}, not `{v}`",
            allowed.join(", ")
        ))),
    }
}

/// List messages: staff see all, a customer its own.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications",
    params(NotificationQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of messages, newest first", body = Page<Notification>),
        (status = 400, description = "A bad filter, limit or cursor", body = platform::error::Problem),
        (status = 401, description = "No valid token", body = platform::error::Problem),
    )
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(query): Query<NotificationQuery>,
) -> ApiResult<Json<Page<Notification>>> {
    let kind = one_of("kind", query.kind.as_deref(), KINDS)?;
    let status = one_of("status", query.status.as_deref(), STATUSES)?;
    let user_id = if caller.is_staff() {
        query.user_id
    } else {
        match query.user_id {
            Some(other) if other != caller.user_id => {
                return Ok(Json(Page::empty()));
            }
            _ => Some(caller.user_id),
        }
    };
    let page = PageRequest::parse(
        query.limit,
        query.cursor.as_deref(),
        None,
        &[(CreatedAt, Direction::Desc)],
    )?;
    let filter = store::MessageFilter {
        user_id,
        kind: kind.as_deref(),
        status: status.as_deref(),
    };
    let rows = store::list(&state.db, &filter, &page).await?;
    let result = page.finish(rows, |row| {
        vec![
            KeyValue::Time(row.created_at),
            KeyValue::Uuid(row.notification_id),
        ]
    });
    Ok(Json(result.map(Notification::from)))
}
