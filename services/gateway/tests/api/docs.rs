use serde_json::Value;

use crate::helpers::TestGateway;

/// Every `src` and `href` in `html`.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            if let Some(end) = rest.find('"') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[tokio::test]
async fn swagger_ui_is_served_entirely_from_the_gateway() {
    let gw = TestGateway::spawn().await;
    let page = gw.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger"), "{html}");

    let assets = references(&html);
    assert!(!assets.is_empty(), "the page loads its assets");
    for asset in assets {
        assert!(
            !asset.starts_with("http://")
                && !asset.starts_with("https://")
                && !asset.starts_with("//"),
            "{asset} would leave the machine"
        );
        let url = if asset.starts_with('/') {
            asset.clone()
        } else {
            format!("/docs/{}", asset.trim_start_matches("./"))
        };
        let response = gw.get(&url).await;
        assert_eq!(response.status(), 200, "{url}");
        let body = response.text().await.expect("asset");
        if url.ends_with(".js") && url.contains("initializer") {
            assert!(
                !body.contains("https://"),
                "the initializer fetches nothing remote: {body}"
            );
            for (service, _) in gateway::DOCUMENTED {
                assert!(
                    body.contains(&format!("/docs/openapi/{service}.json")),
                    "{service} listed"
                );
            }
        }
    }
}

#[tokio::test]
async fn each_service_document_is_served_through_the_gateway() {
    let gw = TestGateway::spawn().await;
    let response = gw.get("/docs/openapi/users.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.expect("json");
    assert!(document["paths"]["/users/{id}"].is_object());
    assert_eq!(gw.get("/docs/openapi/nothing.json").await.status(), 404);
    assert_eq!(gw.get("/docs/openapi/products.json").await.status(), 503);
}
