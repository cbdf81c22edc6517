-- The transactional outbox: events written in the same transaction as the
-- change they announce, published to RabbitMQ by the relay.
CREATE TABLE IF NOT EXISTS outbox (
    id              uuid PRIMARY KEY,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    published_at    timestamptz
);

-- The relay's claim query: pending rows due now, oldest first.
CREATE INDEX IF NOT EXISTS outbox_pending
    ON outbox (next_attempt_at, created_at) WHERE published_at IS NULL;

-- Pruning published rows after the retention period.
CREATE INDEX IF NOT EXISTS outbox_published
    ON outbox (published_at) WHERE published_at IS NOT NULL;
