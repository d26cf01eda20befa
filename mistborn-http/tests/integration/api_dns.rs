//! `/api/v1/dns/...`: lists (upload), rules, and who may see what.

use std::time::{Duration, Instant};

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

/// A wire-format A query for `name`.
fn a_query(id: u16, name: &str) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

/// Issue 14's "done when": a big mixed-format list (hosts, plain, adblock, comments, cosmetic
/// rules) uploads through the streaming path and the running resolver blocks its last name
/// within a second of the upload's answer in an optimised build (a debug build, as `cargo test`
/// runs it, gets 30 s: it parses about ten times slower). 100,000 names by default; set
/// `MISTBORN_BIG_LIST_NAMES=1000000` for the figure.
#[tokio::test]
async fn a_big_mixed_list_uploads_and_blocks_its_last_name_within_a_second() {
    let n: usize = std::env::var("MISTBORN_BIG_LIST_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let deadline = if cfg!(debug_assertions) {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(1)
    };
    let app = TestApp::with(|c| {
        c.dns.listen = vec!["127.0.0.1:0".parse().unwrap()];
        c.dns.upstreams = Vec::new();
    })
    .await;
    let dns = mistborn_core::dns::Resolver::start(&app.m).await.unwrap();
    let addr = dns.local_addrs()[0];
    let mut text = String::with_capacity(n * 40);
    text.push_str("\u{feff}# mixed\n127.0.0.1 localhost\n! adblock part\n");
    for i in 0..n {
        match i % 4 {
            0 => text.push_str(&format!("0.0.0.0 h{i}.big.example\n")),
            1 => text.push_str(&format!("||a{i}.big.example^\n")),
            2 => text.push_str(&format!("p{i}.big.example\n")),
            _ => text.push_str(&format!("x{i}.big.example##.ad\nq{i}.big.example\n")),
        }
    }
    let last = format!("{}{}.big.example", ["h", "a", "p", "q"][(n - 1) % 4], n - 1);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let blocked =
        |resp: &[u8]| resp.len() > 12 && resp[7] == 1 && resp.ends_with(&[0, 4, 0, 0, 0, 0]);
    let mut buf = [0u8; 512];
    sock.send_to(&a_query(1, &last), addr).await.unwrap();
    let len = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(!blocked(&buf[..len]), "not blocked before the upload");

    let size = text.len();
    let started = Instant::now();
    let r = put_raw(
        &app,
        "/api/v1/dns/lists/big/content",
        &app.admin,
        text,
        true,
    )
    .await;
    let uploaded = started.elapsed();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["list"]["entries"], n);
    assert_eq!(r.json()["list"]["not_for_dns"], n / 4);
    let answered = Instant::now();
    let mut id = 2u16;
    loop {
        id += 1;
        sock.send_to(&a_query(id, &last), addr).await.unwrap();
        if let Ok(Ok(len)) =
            tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await
            && blocked(&buf[..len])
        {
            break;
        }
        assert!(
            answered.elapsed() < deadline,
            "{last} not blocked within {deadline:?} of the upload's answer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "{n} names ({size} bytes): upload answered in {uploaded:?}, last name blocked {:?} later",
        answered.elapsed()
    );
    dns.shutdown().await;
}
