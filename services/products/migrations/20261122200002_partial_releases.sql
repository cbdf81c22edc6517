-- Part of a reservation can be released (one order of a bulk order cancelled).
-- Each part is released once, whatever the retries: keyed by the caller's id.
CREATE TABLE reservation_releases (
    reservation_id uuid        NOT NULL REFERENCES reservations ON DELETE CASCADE,
    release_id     uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reservation_id, release_id)
);

-- A partly released line passes through zero before its row is removed.
ALTER TABLE reservation_items
    DROP CONSTRAINT reservation_items_quantity_check,
    ADD CONSTRAINT reservation_items_quantity_check CHECK (quantity >= 0);
