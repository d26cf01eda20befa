//! The committed OpenAPI document is current, is what the server serves, and describes the router.

use axum::http::{Method, StatusCode};

use crate::support::TestApp;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");

#[test]
fn committed_openapi_json_is_current() {
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    let current = mistborn_http::spec_json();
    assert!(
        committed == current,
        "openapi/openapi.json is stale (or missing); regenerate it from the repository root with:\n\n    cargo run -p mistborn-http -- openapi > openapi/openapi.json\n"
    );
}

#[tokio::test]
async fn served_spec_matches_and_declares_bearer_auth() {
    let app = TestApp::new().await;
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), mistborn_http::spec_json());
    let spec = r.json();
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    assert!(spec["paths"]["/api/v1/profiles/{id}/qr.png"]["get"].is_object());
}

/// Every documented operation is routed (an undocumented path would hit the JSON 404 fallback) and,
/// except the public ones (the spec, sign-in from the tunnel, the CA), asks for a token.
#[tokio::test]
async fn every_documented_operation_is_routed_and_protected() {
    let app = TestApp::new().await;
    let spec: serde_json::Value = serde_json::from_str(&mistborn_http::spec_json()).unwrap();
    let mut count = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let uri = path
                .replace("{id}", "0b0e0a3c-0000-4000-8000-000000000000")
                .replace("{user}", "admin");
            let method: Method = method.to_uppercase().parse().unwrap();
            let r = app.call(method.clone(), &uri, None, None).await;
            count += 1;
            if op["security"].is_null() {
                // Public operations (the spec, sign-in from the tunnel, the CA) answer on their own
                // terms, but never with the unknown-route fallback or a demand for a token.
                let text = String::from_utf8_lossy(&r.body);
                assert!(
                    !text.contains("no API endpoint"),
                    "{method} {uri} is not routed"
                );
                assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
                assert!(
                    r.status.is_success() || r.status.is_client_error(),
                    "{method} {uri}: {}",
                    r.status
                );
            } else {
                r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
                assert_eq!(
                    op["security"][0]["bearer"],
                    serde_json::json!([]),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(count >= 16, "only {count} operations documented");
}
