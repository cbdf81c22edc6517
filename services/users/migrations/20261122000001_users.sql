-- User profiles. Every filter and sort of GET /users has an index below.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    user_id             uuid PRIMARY KEY,
    name                text        NOT NULL,
    email               text        NOT NULL,
    phone               text,
    address_line1       text,
    address_line2       text,
    address_city        text,
    address_postal_code text,
    address_country     text,
    role                text        NOT NULL CHECK (role IN ('customer', 'support', 'admin')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

-- Sorts (each ends in the primary key, the keyset tiebreaker).
CREATE INDEX users_by_name       ON users (name, user_id);
CREATE INDEX users_by_email      ON users (email, user_id);
CREATE INDEX users_by_created_at ON users (created_at, user_id);

-- Filters: case-insensitive substring on name, exact role and country with
-- the default sort behind them; created_at ranges use users_by_created_at.
CREATE INDEX users_name_trgm          ON users USING gin (name gin_trgm_ops);
CREATE INDEX users_by_role_created    ON users (role, created_at, user_id);
CREATE INDEX users_by_country_created ON users (address_country, created_at, user_id);
