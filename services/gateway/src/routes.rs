//! Which service answers which public path.

/// The service that owns `path`, or `None` for paths the gateway does not
/// expose (unknown ones and everything under `/internal`).
pub fn service_for(path: &str) -> Option<&'static str> {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or("");
    match first {
        "auth" => Some("auth"),
        // A user's purchase history lives with the orders, their reviews
        // with the reviews, not with the profiles.
        "users" => match (segments.next(), segments.next(), segments.next()) {
            (Some(id), Some("orders"), None | Some("")) if !id.is_empty() => Some("orders"),
            (Some(id), Some("reviews"), None | Some("")) if !id.is_empty() => Some("reviews"),
            _ => Some("users"),
        },
        // A product's reviews (and their summary) live with the reviews.
        "products" => match (segments.next(), segments.next()) {
            (Some(id), Some("reviews")) if !id.is_empty() => Some("reviews"),
            _ => Some("products"),
        },
        "reviews" => Some("reviews"),
        "orders" => Some("orders"),
        "notifications" => Some("notifications"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::service_for;

    #[test]
    fn public_paths_reach_their_service() {
        assert_eq!(service_for("/auth/login"), Some("auth"));
        assert_eq!(service_for("/users"), Some("users"));
        assert_eq!(service_for("/users/42"), Some("users"));
        assert_eq!(service_for("/users/42/orders"), Some("orders"));
        assert_eq!(service_for("/products/7"), Some("products"));
        assert_eq!(service_for("/orders"), Some("orders"));
        assert_eq!(service_for("/notifications"), Some("notifications"));
    }

    #[test]
    fn reviews_are_routed_wherever_their_paths_nest() {
        assert_eq!(service_for("/reviews"), Some("reviews"));
        assert_eq!(service_for("/reviews/9"), Some("reviews"));
        assert_eq!(service_for("/products/7/reviews"), Some("reviews"));
        assert_eq!(service_for("/products/7/reviews/summary"), Some("reviews"));
        assert_eq!(service_for("/users/42/reviews"), Some("reviews"));
        assert_eq!(service_for("/products/7/reviewsX"), Some("products"));
        assert_eq!(service_for("/products//reviews"), Some("products"));
        assert_eq!(service_for("/users/42/reviews/x"), Some("users"));
    }

    #[test]
    fn internal_and_unknown_paths_reach_nothing() {
        assert_eq!(service_for("/internal/users"), None);
        assert_eq!(service_for("/internal"), None);
        assert_eq!(service_for("/usersX"), None);
        assert_eq!(service_for("/"), None);
        assert_eq!(service_for("/metrics"), None);
    }
}
