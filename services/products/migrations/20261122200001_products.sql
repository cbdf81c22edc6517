-- The catalogue, its stock, and stock reservations.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The searchable text of a product: name, then tags, then description,
-- weighted in that order. Immutable, so it can feed a generated column.
CREATE FUNCTION product_search_vector(name text, tags text[], description text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(array_to_string(tags, ' '), '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
$$;

CREATE TABLE products (
    product_id  uuid PRIMARY KEY,
    sku         text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    price_cents bigint      NOT NULL CHECK (price_cents >= 0),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stock       integer     NOT NULL CONSTRAINT products_stock_not_negative CHECK (stock >= 0),
    category    text        NOT NULL,
    tags        text[]      NOT NULL DEFAULT '{}',
    attributes  jsonb       NOT NULL DEFAULT '{}',
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    search      tsvector GENERATED ALWAYS AS (product_search_vector(name, tags, description)) STORED
);

-- A SKU names one live product; a deleted product's SKU may be reused.
CREATE UNIQUE INDEX products_sku_key ON products (sku) WHERE deleted_at IS NULL;

-- Search: full text, and trigrams on the name for typos.
CREATE INDEX products_search   ON products USING gin (search) WHERE deleted_at IS NULL;
CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX products_tags     ON products USING gin (tags) WHERE deleted_at IS NULL;

-- Sorts, alone and behind the category filter; each ends in the keyset tiebreaker.
CREATE INDEX products_by_price      ON products (price_cents, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_created_at ON products (created_at, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_name       ON products (name, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_category_price      ON products (category, price_cents, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_category_created_at ON products (category, created_at, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_category_name       ON products (category, name, product_id) WHERE deleted_at IS NULL;
-- In-stock lists, the storefront's default.
CREATE INDEX products_in_stock_by_created_at ON products (created_at, product_id) WHERE deleted_at IS NULL AND stock > 0;
CREATE INDEX products_in_stock_by_price      ON products (price_cents, product_id) WHERE deleted_at IS NULL AND stock > 0;

-- Stock held for orders. `held` until the order is written (then `confirmed`),
-- `released` when the order is cancelled, fails, or the hold expires.
CREATE TABLE reservations (
    reservation_id uuid PRIMARY KEY,
    status         text        NOT NULL CHECK (status IN ('held', 'confirmed', 'released')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE reservation_items (
    reservation_id   uuid    NOT NULL REFERENCES reservations ON DELETE CASCADE,
    product_id       uuid    NOT NULL REFERENCES products,
    quantity         integer NOT NULL CHECK (quantity > 0),
    name             text    NOT NULL,
    unit_price_cents bigint  NOT NULL,
    currency         text    NOT NULL,
    PRIMARY KEY (reservation_id, product_id)
);
