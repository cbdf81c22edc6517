//! The orders tables as SeaORM entities.

/// `orders`.
pub mod order {
    use sea_orm::entity::prelude::*;

    /// One order.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        /// Primary key (UUID v7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        /// Whose order it is.
        pub user_id: Uuid,
        /// Where it is in its life.
        pub status: crate::domain::Status,
        /// Sum of the lines.
        pub total_cents: i64,
        /// ISO 4217 currency of every line.
        pub currency: String,
        /// Where it ships.
        pub shipping_address: Option<Json>,
        /// The stock reservation holding its units.
        pub reservation_id: Uuid,
        /// Bumped by every change.
        pub version: i32,
        /// Placed.
        pub created_at: DateTimeUtc,
        /// Last changed.
        pub updated_at: DateTimeUtc,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `order_items`.
pub mod order_item {
    use sea_orm::entity::prelude::*;

    /// One line of an order.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        /// Position in the order.
        #[sea_orm(primary_key, auto_increment = false)]
        pub line: i32,
        pub product_id: Uuid,
        /// Its name when ordered.
        pub name: String,
        /// Its unit price when ordered.
        pub unit_price_cents: i64,
        /// Units.
        pub quantity: i32,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `stock_settlements`.
pub mod settlement {
    use sea_orm::entity::prelude::*;

    /// Stock work to hand to the products service.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_settlements")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub settlement_id: Uuid,
        /// `confirm` or `release`.
        pub kind: String,
        pub reservation_id: Uuid,
        /// For a partial release: its id (the order's).
        pub release_id: Option<Uuid>,
        /// For a partial release: the lines to give back.
        pub items: Option<Json>,
        /// Tries so far.
        pub attempts: i32,
        /// Why the last try failed.
        pub last_error: Option<String>,
        /// When to try next.
        pub next_attempt_at: DateTimeUtc,
        /// Written.
        pub created_at: DateTimeUtc,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
