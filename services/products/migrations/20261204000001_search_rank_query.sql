-- What a search ranks by: its words without the excluded ones. `ts_rank`
-- counts an excluded word as a word the product lacks, so `wireless -cable`
-- ranked every product 1e-20 and its order fell to the product id.
-- `querytree` keeps the words an index can look up, which leaves out every
-- negated one; a search of nothing but exclusions ('T') ranks as it is.
CREATE FUNCTION product_rank_query(query tsquery)
RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(querytree(query), 'T')::tsquery, query)
$$;
