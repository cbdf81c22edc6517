-- Orders, their lines (copies of the catalogue at the time), idempotency keys,
-- and the stock work the products service still has to be told about.

CREATE TABLE orders (
    order_id         uuid PRIMARY KEY,
    user_id          uuid        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('created', 'paid', 'shipped', 'delivered', 'cancelled')),
    total_cents      bigint      NOT NULL CHECK (total_cents >= 0),
    currency         text        NOT NULL,
    shipping_address jsonb,
    reservation_id   uuid        NOT NULL,
    version          integer     NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Every filter and sort of GET /orders, alone and within one user's orders.
CREATE INDEX orders_by_created             ON orders (created_at, order_id);
CREATE INDEX orders_by_total               ON orders (total_cents, order_id);
CREATE INDEX orders_by_status_created      ON orders (status, created_at, order_id);
CREATE INDEX orders_by_status_total        ON orders (status, total_cents, order_id);
CREATE INDEX orders_by_user_created        ON orders (user_id, created_at, order_id);
CREATE INDEX orders_by_user_total          ON orders (user_id, total_cents, order_id);
CREATE INDEX orders_by_user_status_created ON orders (user_id, status, created_at, order_id);

CREATE TABLE order_items (
    order_id         uuid    NOT NULL REFERENCES orders ON DELETE CASCADE,
    line             integer NOT NULL,
    product_id       uuid    NOT NULL,
    name             text    NOT NULL,
    unit_price_cents bigint  NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line)
);

-- `Idempotency-Key` of POST /orders: the first answer, replayed to retries for 24 h.
CREATE TABLE idempotency_keys (
    user_id      uuid        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    status_code  integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Confirmations and releases of stock, written with the change that needs
-- them and retried until the products service has taken them.
CREATE TABLE stock_settlements (
    settlement_id   uuid PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('confirm', 'release')),
    reservation_id  uuid        NOT NULL,
    release_id      uuid,
    items           jsonb,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_settlements_due ON stock_settlements (next_attempt_at);
