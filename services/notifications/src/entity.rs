//! The notifications tables as SeaORM entities.

/// `notifications`.
pub mod notification {
    use sea_orm::entity::prelude::*;

    /// One message.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        /// Primary key (UUID v7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub notification_id: Uuid,
        /// The event that asked for it (one message per event).
        pub event_id: Uuid,
        /// Whom it is about.
        pub user_id: Uuid,
        /// `welcome`, `order_confirmation` or `order_shipped`.
        pub kind: String,
        /// The address it goes to, when known.
        pub recipient: Option<String>,
        /// Subject line.
        pub subject: String,
        /// Plain-text part.
        pub body_text: String,
        /// HTML part.
        pub body_html: String,
        /// `pending`, `sent` or `failed`.
        pub status: String,
        /// Delivery attempts so far.
        pub attempts: i32,
        /// Why the last attempt failed.
        pub last_error: Option<String>,
        /// When the event arrived.
        pub created_at: DateTimeUtc,
        /// When the mail server took it.
        pub sent_at: Option<DateTimeUtc>,
        /// When a failed attempt is tried again.
        pub next_attempt_at: DateTimeUtc,
        /// When a sender claimed it; `None` while it waits.
        pub sending_since: Option<DateTimeUtc>,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `user_contacts`.
pub mod contact {
    use sea_orm::entity::prelude::*;

    /// What notifications knows of one user.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_contacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// E-mail address.
        pub email: String,
        pub name: String,
        /// True once the user was deleted.
        pub deleted: bool,
        /// Last changed.
        pub updated_at: DateTimeUtc,
        /// When the last message to this user was claimed for sending: the
        /// user mailed longest ago goes next.
        pub last_mailed_at: Option<DateTimeUtc>,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
