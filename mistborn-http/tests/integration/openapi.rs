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

/// Every operation declares what the HTTP layer can answer before its handler runs: 401 where it
/// takes a token, 400 where it has parameters or a body, 413 where it reads a body; and the
/// format rules of the bodies are in the schemas, not only in their descriptions.
#[test]
fn every_operation_declares_the_http_layer_responses_and_schemas_carry_the_rules() {
    let spec: serde_json::Value = serde_json::from_str(&mistborn_http::spec_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let has =
                |status: &str| op["responses"][status]["content"]["application/json"].is_object();
            if !op["security"].is_null() {
                assert!(has("401"), "{method} {path}: no 401");
            }
            if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
                assert!(has("400"), "{method} {path}: parameters but no 400");
            }
            if op["requestBody"].is_object() {
                assert!(
                    has("400") && has("413"),
                    "{method} {path}: a body but no 400/413"
                );
            }
        }
    }
    let schemas = &spec["components"]["schemas"];
    let username = &schemas["CreateUser"]["properties"]["username"];
    assert_eq!(username["maxLength"], 32, "{username}");
    assert!(username["pattern"].is_string(), "{username}");
    assert_eq!(
        schemas["CreateUser"]["properties"]["password"]["minLength"],
        8
    );
    for body in ["CreateToken", "CreateProfile", "EnrollDevice"] {
        assert_eq!(
            schemas[body]["properties"]["name"]["maxLength"], 64,
            "{body}"
        );
    }
    assert_eq!(
        schemas["EnrollDevice"]["properties"]["public_key"]["maxLength"],
        44
    );
    let id = &spec["paths"]["/api/v1/tokens/{id}"]["delete"]["parameters"][0]["schema"];
    assert!(id["pattern"].as_str().unwrap().contains("{12}"), "{id}");
}
