-- Whether a stock reservation is used by orders, decided once per
-- reservation: `ordered` is written in the statement that writes the orders,
-- `ordered = false` when the products service's expiry sweep asks about a
-- hold that lapsed first. The primary key makes the two exclusive, so a hold
-- that an order uses is never released and an order whose hold was released
-- is never written. Rows of ordered reservations go once products has
-- confirmed them; the others after a day.
CREATE TABLE reservation_outcomes (
    reservation_id uuid        PRIMARY KEY,
    ordered        boolean     NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now()
);
