//! The products tables as SeaORM entities.

/// `products` (the generated `search`, `in_stock` and `rating_average`
/// columns are used only in SQL).
pub mod product {
    use sea_orm::entity::prelude::*;

    /// One product.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        /// Primary key (UUID v7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        /// Stock-keeping unit, unique among live products.
        pub sku: String,
        pub name: String,
        pub description: String,
        /// Price in minor units.
        pub price_cents: i64,
        /// ISO 4217 currency.
        pub currency: String,
        /// Units available (held units already taken out).
        pub stock: i32,
        /// Lower-cased category.
        pub category: String,
        /// Lower-cased tags.
        pub tags: Vec<String>,
        /// Free-form attributes (a JSON object).
        pub attributes: Json,
        /// Bumped by every change, stock and rating included.
        pub version: i32,
        /// Reviews counted in the rating (`rating_average`, used only in SQL,
        /// is `rating_sum / rating_count`).
        pub rating_count: i32,
        /// Their stars added up.
        pub rating_sum: i64,
        pub created_at: DateTimeUtc,
        /// Last changed.
        pub updated_at: DateTimeUtc,
        /// Set when deleted; deleted products leave lists, searches and reads.
        pub deleted_at: Option<DateTimeUtc>,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `reservations`.
pub mod reservation {
    use sea_orm::entity::prelude::*;

    /// One hold on stock.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservations")]
    pub struct Model {
        /// Chosen by the caller; the idempotency key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub reservation_id: Uuid,
        /// `held`, `confirmed` or `released`.
        pub status: String,
        pub created_at: DateTimeUtc,
        /// Last changed.
        pub updated_at: DateTimeUtc,
        /// A `held` reservation is released after this.
        pub expires_at: DateTimeUtc,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `reservation_items`.
pub mod reservation_item {
    use sea_orm::entity::prelude::*;

    /// The units of one product a reservation holds.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservation_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub reservation_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        /// Units held.
        pub quantity: i32,
        /// The product's name when reserved.
        pub name: String,
        /// Its unit price when reserved.
        pub unit_price_cents: i64,
        pub currency: String,
    }

    /// No relations needed by the queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
