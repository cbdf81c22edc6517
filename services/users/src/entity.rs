//! The `users` table as a SeaORM entity.

use sea_orm::entity::prelude::*;

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Primary key (UUID v7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// Lower-cased, unique.
    pub email: String,
    /// Phone number, as given (validated).
    pub phone: Option<String>,
    /// Address, first line.
    pub address_line1: Option<String>,
    /// Address, second line.
    pub address_line2: Option<String>,
    pub address_city: Option<String>,
    pub address_postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub address_country: Option<String>,
    /// `customer`, `support` or `admin`.
    pub role: String,
    /// When the profile was created.
    pub created_at: DateTimeUtc,
    /// When it last changed.
    pub updated_at: DateTimeUtc,
}

/// `users` relates to nothing inside this service.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
