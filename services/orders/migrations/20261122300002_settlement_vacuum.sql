-- Settlements are deleted as soon as the products service has taken them: a
-- queue table. Vacuum it after a fixed number of dead rows, not after a fifth
-- of its (always small) size.
ALTER TABLE stock_settlements SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000
);
