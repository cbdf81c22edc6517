//! Which service answers which public path.

/// The service that owns `path`, or `None` for paths the gateway does not
/// expose (unknown ones and everything under `/internal`).
pub fn service_for(path: &str) -> Option<&'static str> {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or("");
    match first {
        "auth" => Some("auth"),
        // The purchase history lives with the orders, not the profiles.
        "users" => match (segments.next(), segments.next(), segments.next()) {
            (Some(id), Some("orders"), None | Some("")) if !id.is_empty() => Some("orders"),
            _ => Some("users"),
        },
        "products" => Some("products"),
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
    fn internal_and_unknown_paths_reach_nothing() {
        assert_eq!(service_for("/internal/users"), None);
        assert_eq!(service_for("/internal"), None);
        assert_eq!(service_for("/usersX"), None);
        assert_eq!(service_for("/"), None);
        assert_eq!(service_for("/metrics"), None);
    }
}
