//! The `reviews` table as a SeaORM entity; the projections are written with
//! plain SQL in [`crate::store`].

use sea_orm::entity::prelude::*;

/// One row of `reviews`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub review_id: Uuid,
    pub product_id: Uuid,
    pub user_id: Uuid,
    /// The author's name when the review was written, renamed with them.
    pub author_name: String,
    pub rating: i16,
    pub title: String,
    pub body: String,
    pub verified_purchase: bool,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// `reviews` relates to nothing inside this service.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
