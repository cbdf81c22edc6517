//! Every service's OpenAPI document, pinned: a change to the API shows in
//! review as a changed snapshot (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test -p shop --test cli openapi` to accept it).

#[test]
fn the_auth_document_is_as_reviewed() {
    insta::assert_json_snapshot!("auth", auth::openapi());
}

#[test]
fn the_users_document_is_as_reviewed() {
    insta::assert_json_snapshot!("users", users::openapi());
}

#[test]
fn the_products_document_is_as_reviewed() {
    insta::assert_json_snapshot!("products", products::openapi());
}

#[test]
fn the_orders_document_is_as_reviewed() {
    insta::assert_json_snapshot!("orders", orders::openapi());
}

#[test]
fn the_notifications_document_is_as_reviewed() {
    insta::assert_json_snapshot!("notifications", notifications::openapi());
}

#[test]
fn the_reviews_document_is_as_reviewed() {
    insta::assert_json_snapshot!("reviews", reviews::openapi());
}
