-- The relay claims pending rows oldest first. An index in that order lets it
-- use a plain index scan, which marks the entries of published rows dead as
-- it passes them; the first index (by due time) was read through bitmap
-- scans, which never do, so every pass re-read every row published since the
-- last vacuum.
DROP INDEX IF EXISTS outbox_pending;
CREATE INDEX IF NOT EXISTS outbox_pending_in_order
    ON outbox (created_at, id) WHERE published_at IS NULL;

-- A queue table churns: vacuum it after a fixed number of dead rows, not
-- after a fifth of a table that only grows.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
