//! `/api/v1/dns/...`: lists (upload), rules, and who may see what.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn dns_lists_rules_log_and_stats_over_http() {
    let app = TestApp::new().await;
    let admin = app.admin.clone();

    let r = app
        .post(
            "/api/v1/dns/lists",
            &admin,
            json!({"name": "ads", "content": "0.0.0.0 ads.test\n||tracker.test^\nnot a domain line\n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["list"]["entries"], 2);
    assert_eq!(r.json()["invalid"][0]["line"], 3);

    let r = app
        .post(
            "/api/v1/dns/lists",
            &admin,
            json!({"name": "junk", "content": "<html></html>"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let r = app
        .post(
            "/api/v1/dns/lists",
            &admin,
            json!({"name": "ads", "content": "x.test"}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");

    let r = app
        .call(
            Method::PATCH,
            "/api/v1/dns/lists/ads",
            Some(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    let r = app.get("/api/v1/dns/lists", &admin).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);

    let r = app
        .post(
            "/api/v1/dns/rules",
            &admin,
            json!({"kind": "wildcard", "name": "*.ads.example"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["name"], "ads.example");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/dns/rules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let r = app.get("/api/v1/dns/stats", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["total"], 0);
    assert_eq!(r.json()["log_dropped"], 0, "lost log rows are shown");
    let r = app.get("/api/v1/dns/log?blocked_only=true", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Regular users read their own log but manage nothing.
    let bob = app.regular_user("bob").await;
    let r = app.get("/api/v1/dns/log", &bob).await;
    assert_eq!(r.status, StatusCode::OK);
    app.get("/api/v1/dns/lists", &bob)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.get("/api/v1/dns/stats", &bob)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}
