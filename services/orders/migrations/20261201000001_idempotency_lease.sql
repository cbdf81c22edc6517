-- A claimed key whose request died before answering (its client gave up,
-- its replica was killed) is taken over by a retry once its lease lapses.
-- Each claim has its own id, so the request that lost its claim cannot
-- also write: its completion calls idempotency_claim_lost(), which fails the
-- one statement that carries its orders.
ALTER TABLE idempotency_keys
    ADD COLUMN claim_id   uuid,
    ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION idempotency_claim_lost() RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'this Idempotency-Key was taken over by a retry'
        USING ERRCODE = 'SHIK1';
END
$$;
