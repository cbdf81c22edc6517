-- Reviews, and the projections of other services' data they are built from.

CREATE TABLE reviews (
    review_id         uuid PRIMARY KEY,
    product_id        uuid        NOT NULL,
    user_id           uuid        NOT NULL,
    author_name       text        NOT NULL,
    rating            smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             text        NOT NULL,
    body              text        NOT NULL,
    verified_purchase boolean     NOT NULL DEFAULT false,
    version           integer     NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_one_per_user_and_product UNIQUE (product_id, user_id)
);

-- A product's reviews in each order the API sorts them, alone and behind
-- each filter; every index ends in the keyset tiebreaker.
CREATE INDEX reviews_by_product_created_at ON reviews (product_id, created_at, review_id);
CREATE INDEX reviews_by_product_rating     ON reviews (product_id, rating, review_id);
CREATE INDEX reviews_by_product_rating_created_at ON reviews (product_id, rating, created_at, review_id);
CREATE INDEX reviews_by_product_verified_created_at ON reviews (product_id, verified_purchase, created_at, review_id);
CREATE INDEX reviews_by_product_verified_rating     ON reviews (product_id, verified_purchase, rating, review_id);
-- A user's reviews, newest first; also what `user.deleted` and a delivered order look up.
CREATE INDEX reviews_by_user_created_at ON reviews (user_id, created_at, review_id);

-- Authors' names, from `user.*` events. `as_of` is the time of the event
-- that set the name, so a late older event never overwrites a newer name;
-- a deleted user keeps a tombstone so that no late event brings it back.
CREATE TABLE authors (
    user_id uuid PRIMARY KEY,
    name    text        NOT NULL,
    as_of   timestamptz NOT NULL,
    deleted boolean     NOT NULL DEFAULT false
);

-- The lines of every order, from `order.created`, and the orders delivered,
-- from `order.status_changed`: a purchase is verified when both are here,
-- whichever event came first.
CREATE TABLE order_lines (
    order_id   uuid NOT NULL,
    product_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_lines_by_buyer ON order_lines (user_id, product_id);

CREATE TABLE delivered_orders (
    order_id uuid PRIMARY KEY,
    user_id  uuid NOT NULL
);

-- The products reviews may be written for, from `product.updated`; a product
-- not here yet (its event still on the way) is asked of the products service.
CREATE TABLE products (
    product_id uuid PRIMARY KEY,
    version    integer NOT NULL,
    deleted    boolean NOT NULL
);
