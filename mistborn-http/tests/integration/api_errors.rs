//! Every kind of bad input gets a 4xx with the JSON error shape and a stable code, never a 500.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn missing_or_bad_tokens_are_401() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/v1/me", None, None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    app.get("/api/v1/profiles", "mb_not-a-real-token")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    for value in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", "garbage"] {
        let req = Request::get("/api/v1/users")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap();
        app.request(req)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_json() {
    let app = TestApp::new().await;
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut req = Request::post("/api/v1/profiles")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.admin));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        app.request(req.body(Body::from(body)).unwrap())
    };
    send(Some("application/json"), "{\"name\": ")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(Some("application/json"), "")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(Some("application/json"), "[1, 2]")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(
        Some("application/json"),
        "{\"name\": \"x\", \"colour\": \"red\"}",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(
        Some("application/json"),
        "{\"name\": \"x\", \"kind\": \"ipsec\"}",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(Some("application/json"), "{\"name\": 42}")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(Some("text/plain"), "{\"name\": \"x\"}")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unsupported_content_type");
    send(None, "{\"name\": \"x\"}")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unsupported_content_type");
    // Nothing was created by any of that.
    let list = app.get("/api/v1/profiles", &app.admin).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404_json() {
    let app = TestApp::new().await;
    let t = app.admin.clone();
    let unknown = "0b0e0a3c-0000-4000-8000-000000000000";
    for uri in [
        format!("/api/v1/profiles/{unknown}"),
        format!("/api/v1/profiles/{unknown}/config"),
        format!("/api/v1/profiles/{unknown}/qr.png"),
        "/api/v1/profiles/not-a-uuid".to_string(),
        "/api/v1/profiles/%FF%FE/config".to_string(),
        "/api/v1/users/nobody".to_string(),
        format!("/api/v1/users/{unknown}"),
        "/api/v1/nothing-here".to_string(),
        "/elsewhere".to_string(),
    ] {
        let r = app.get(&uri, &t).await;
        assert!(r.status.is_client_error(), "{uri}: {}", r.status);
        let v = r.json();
        assert!(v["error"]["code"].is_string(), "{uri}: {v}");
    }
    app.get(&format!("/api/v1/profiles/{unknown}"), &t)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/api/v1/nothing-here", &t)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, "/api/v1/tokens/not-a-uuid", Some(&t), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{unknown}"),
        Some(&t),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, "/api/v1/users/nobody", Some(&t), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/api/v1/profiles?user=nobody", &t)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/api/v1/profiles?colour=red", &t)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn bad_names_keys_passwords_and_duplicates() {
    let app = TestApp::new().await;
    let t = app.admin.clone();
    for bad in ["Bob", "bob smith", "", "-bob", "ünïcode"] {
        app.post(
            "/api/v1/users",
            &t,
            json!({"username": bad, "password": "long enough"}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    app.post(
        "/api/v1/users",
        &t,
        json!({"username": "carol", "password": "short"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.post(
        "/api/v1/users",
        &t,
        json!({"username": "carol", "password": "long enough", "role": "god"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    app.post(
        "/api/v1/users",
        &t,
        json!({"username": "admin", "password": "long enough"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");

    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        app.post("/api/v1/profiles", &t, json!({"name": bad}))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    app.post("/api/v1/profiles", &t, json!({"name": "default"}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    for bad in ["not base64!", "AAAA", "", &"A".repeat(44)] {
        app.post(
            "/api/v1/profiles",
            &t,
            json!({"name": "device", "public_key": bad}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    let id = app.admin_default_profile().await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/profiles/{id}"),
        Some(&t),
        Some(json!({"name": ""})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.post("/api/v1/tokens", &t, json!({"name": "tests"}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    app.post("/api/v1/tokens", &t, json!({"name": ""}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.post("/api/v1/tokens", &t, json!({"name": "x", "user": "nobody"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn full_pool_is_409_and_deleting_frees_an_address() {
    // A /29 holds six host addresses: the server takes one, admin's default profile another.
    let app = TestApp::with(|c| c.wireguard.subnet_v4 = "10.99.0.0/29".parse().unwrap()).await;
    let t = app.admin.clone();
    let mut created = Vec::new();
    loop {
        let r = app
            .post(
                "/api/v1/profiles",
                &t,
                json!({"name": format!("p{}", created.len())}),
            )
            .await;
        if r.status != StatusCode::CREATED {
            r.assert_error(StatusCode::CONFLICT, "pool_exhausted");
            break;
        }
        created.push(r.json()["id"].as_str().unwrap().to_string());
        assert!(created.len() < 10, "the pool never ran out");
    }
    assert!(!created.is_empty());
    let all = app.get("/api/v1/profiles", &t).await.json();
    let mut addrs: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address_v4"].as_str().unwrap())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), created.len() + 1, "addresses are unique");
    assert!(addrs.iter().all(|a| a.starts_with("10.99.0.")), "{addrs:?}");

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/profiles/{}", created[0]),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .post("/api/v1/profiles", &t, json!({"name": "again"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// A method the route does not have is 405 with `Allow` listing the ones it has, and changes nothing.
#[tokio::test]
async fn unsupported_methods_are_405_with_allow() {
    let app = TestApp::new().await;
    let t = app.admin.clone();
    let r = app
        .call(Method::PATCH, "/api/v1/users", Some(&t), Some(json!({})))
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(
        allow(&r.headers),
        ["GET", "HEAD", "POST"],
        "{:?}",
        r.headers
    );
    let id = app.admin_default_profile().await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/profiles/{id}"),
            Some(&t),
            None,
        )
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(allow(&r.headers), ["DELETE", "GET", "HEAD", "PATCH"]);
    // Without a token too: the method is wrong whoever asks.
    let r = app.call(Method::DELETE, "/api/v1/me", None, None).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(allow(&r.headers), ["GET", "HEAD"]);
    assert_eq!(
        app.get("/api/v1/profiles", &t)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn allow(headers: &axum::http::HeaderMap) -> Vec<String> {
    let mut methods: Vec<String> = headers
        .get(header::ALLOW)
        .expect("an Allow header")
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_string())
        .collect();
    methods.sort();
    methods
}

/// A body over the JSON limit is 413 naming the limit, with or without a Content-Length, and
/// creates nothing; a body just under it is read (and refused for what it says, not its size).
#[tokio::test]
async fn bodies_over_the_limit_are_413_naming_it() {
    let app = TestApp::new().await;
    let limit = mistborn_http::JSON_BODY_LIMIT;
    let name = |len: usize| format!("{{\"name\": \"{}\"}}", "x".repeat(len - 12));
    for chunked in [false, true] {
        let body = name(limit + 1);
        assert_eq!(body.len(), limit + 1);
        let body = if chunked {
            // No Content-Length: the limit must hold while the body streams in.
            let chunks = body
                .into_bytes()
                .chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>();
            Body::from_stream(futures_util::stream::iter(chunks))
        } else {
            Body::from(body)
        };
        let req = Request::post("/api/v1/profiles")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.admin))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let r = app.request(req).await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(&limit.to_string()), "{message}");
    }
    let req = Request::post("/api/v1/profiles")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(name(limit)))
        .unwrap();
    app.request(req)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let list = app.get("/api/v1/profiles", &app.admin).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Extreme but well-formed numbers in a query are answered, never a dropped connection (the fuzzer
/// found `since_ms=i64::MIN` overflowing the statistics' rounding to the minute).
#[tokio::test]
async fn extreme_query_numbers_are_answered() {
    let app = TestApp::new().await;
    let min = i64::MIN;
    let max = i64::MAX;
    for q in [
        format!("since_ms={min}&bucket_ms={min}&top={min}"),
        format!("since_ms={max}&bucket_ms={max}&top={max}"),
    ] {
        let r = app.get(&format!("/api/v1/dns/stats?{q}"), &app.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
    }
    for q in [
        format!("since_ms={min}&limit={max}"),
        format!("since_ms={max}&limit=1"),
    ] {
        let r = app.get(&format!("/api/v1/dns/log?{q}"), &app.admin).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{q}: {}",
            r.text()
        );
    }
}
