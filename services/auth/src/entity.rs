//! The auth tables as SeaORM entities.

/// `user_auth`: one login per user.
pub mod credential {
    use sea_orm::entity::prelude::*;

    /// One row of `user_auth`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_auth")]
    pub struct Model {
        /// The user (owned by the users service).
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// Login name, unique regardless of case.
        pub username: String,
        /// bcrypt hash.
        pub password_hash: String,
        pub created_at: DateTimeUtc,
        /// Last changed.
        pub updated_at: DateTimeUtc,
    }

    /// No relations inside this service.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `refresh_tokens`.
pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    /// One refresh token.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        /// The token itself.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_id: Uuid,
        /// Whose.
        pub user_id: Uuid,
        /// Every token descended from one login shares this.
        pub family_id: Uuid,
        /// After this it is refused (and purged).
        pub expires_at: DateTimeUtc,
        /// Issued.
        pub created_at: DateTimeUtc,
        /// When it was exchanged for a new pair; presenting it again is reuse.
        pub spent_at: Option<DateTimeUtc>,
    }

    /// No relations inside this service.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `signing_keys`.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    /// One signing key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        /// Key id, in every token's header.
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        /// PKCS#8 DER.
        pub private_key: Vec<u8>,
        /// Created; the newest key signs.
        pub created_at: DateTimeUtc,
    }

    /// No relations inside this service.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
