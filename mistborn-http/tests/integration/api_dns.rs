//! `/api/v1/dns/...`: lists (upload), rules, and who may see what.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::support::{Resp, TestApp};

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

/// A raw (not JSON) upload with a bearer token; `chunks` are sent as a stream without a
/// content-length when `stream` is set.
async fn put_raw(app: &TestApp, uri: &str, token: &str, body: String, stream: bool) -> Resp {
    let req = Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "text/plain");
    let body = if stream {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
            .into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        let len = body.len();
        return app
            .request(
                req.header(header::CONTENT_LENGTH, len)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
    };
    app.request(req.body(body).unwrap()).await
}

/// A list far over the 2 MB JSON limit uploads through the streaming path; over the configured
/// cap it is a 413 that names the limit, announced or not; line errors stay with the list.
#[tokio::test]
async fn streaming_upload_takes_big_lists_and_refuses_over_the_cap() {
    let app = TestApp::new().await;
    let admin = app.admin.clone();
    // ~3.4 MB: 100,000 names in three formats, a cosmetic rule and two bad lines.
    let mut text = String::from("\u{feff}! big list\nexample.org##.banner\nbad name\ncom\n");
    for i in 0..100_000 {
        match i % 3 {
            0 => text.push_str(&format!("0.0.0.0 host{i}.big-list.example\n")),
            1 => text.push_str(&format!("||adb{i}.big-list.example^\n")),
            _ => text.push_str(&format!("plain{i}.big-list.example\n")),
        }
    }
    assert!(text.len() > 3_000_000);
    let r = put_raw(
        &app,
        "/api/v1/dns/lists/big/content",
        &admin,
        text.clone(),
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    assert_eq!(v["list"]["entries"], 100_000);
    assert_eq!(v["list"]["invalid_lines"], 2);
    assert_eq!(v["list"]["not_for_dns"], 1);
    let errors = app.get("/api/v1/dns/lists/big/errors", &admin).await;
    assert_eq!(errors.status, StatusCode::OK, "{}", errors.text());
    assert_eq!(errors.json()[0]["line"], 3);
    assert_eq!(errors.json()[1]["text"], "com");

    // The same name again replaces the uploaded copy (200), with its own errors.
    let r = put_raw(
        &app,
        "/api/v1/dns/lists/big/content",
        &admin,
        "one.example.com\nbad one\n".into(),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["list"]["entries"], 1);
    let errors = app.get("/api/v1/dns/lists/big/errors", &admin).await.json();
    assert_eq!(errors.as_array().unwrap().len(), 1);

    // Names are validated like Coppercloud list names; regular users may not upload.
    let r = put_raw(
        &app,
        "/api/v1/dns/lists/..%2F..%2Fetc%2Fpasswd/content",
        &admin,
        "x.example.com\n".into(),
        false,
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let r = app
        .post(
            "/api/v1/dns/lists",
            &admin,
            json!({"name": "../../etc/passwd", "content": "x.example.com\n"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let bob = app.regular_user("bob").await;
    put_raw(
        &app,
        "/api/v1/dns/lists/mine/content",
        &bob,
        "x.example.com\n".into(),
        false,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.get("/api/v1/dns/lists/big/errors", &bob)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.get("/api/v1/dns/lists/none/errors", &admin)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Over a 64 KiB cap: 413 with the limit, whether the length is announced or streamed.
    let small = TestApp::with(|c| c.download.max_bytes = 65_536).await;
    let admin = small.admin.clone();
    let big: String = text.chars().take(200_000).collect();
    for stream in [false, true] {
        let r = put_raw(
            &small,
            "/api/v1/dns/lists/big/content",
            &admin,
            big.clone(),
            stream,
        )
        .await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        assert!(r.text().contains("65536 bytes"), "{}", r.text());
    }
    assert_eq!(
        small.get("/api/v1/dns/lists", &admin).await.json(),
        json!([]),
        "nothing stored"
    );
}

#[tokio::test]
async fn public_suffix_rules_carry_a_warning() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/api/v1/dns/rules",
            &app.admin,
            json!({"kind": "deny", "name": "co.uk"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(
        r.json()["warning"]
            .as_str()
            .unwrap()
            .contains("public suffix"),
        "{}",
        r.text()
    );
    let r = app
        .post(
            "/api/v1/dns/rules",
            &app.admin,
            json!({"kind": "deny", "name": "localhost"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let rules = app.get("/api/v1/dns/rules", &app.admin).await.json();
    assert_eq!(rules.as_array().unwrap().len(), 1);
    assert!(rules[0]["warning"].is_string());
}
