-- The inbox: events a consumer of this service has processed, so that a
-- redelivered event changes nothing (processing effectively once).
CREATE TABLE IF NOT EXISTS inbox (
    event_id     uuid        NOT NULL,
    consumer     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS inbox_by_age ON inbox (processed_at);
