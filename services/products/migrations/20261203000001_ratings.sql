-- Each product's rating, kept from the reviews service's events.
--
-- `product_reviews` is the tally the consumer owns: the newest known state
-- of every review (its version decides, a deletion outranking every earlier
-- event), so a redelivered or late event changes nothing. A product's sum
-- and count are recomputed from it after each event that changed it.
CREATE TABLE product_reviews (
    review_id  uuid PRIMARY KEY,
    product_id uuid     NOT NULL,
    rating     smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    version    integer  NOT NULL,
    deleted    boolean  NOT NULL
);
CREATE INDEX product_reviews_by_product ON product_reviews (product_id) WHERE NOT deleted;

ALTER TABLE products
    ADD COLUMN rating_count integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    ADD COLUMN rating_sum   bigint  NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    -- What `min_rating` and `sort=rating` read; 0 for a product without reviews.
    ADD COLUMN rating_average double precision GENERATED ALWAYS AS (
        CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum::double precision / rating_count END
    ) STORED;

CREATE INDEX products_by_rating          ON products (rating_average, product_id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_category_rating ON products (category, rating_average, product_id) WHERE deleted_at IS NULL;
