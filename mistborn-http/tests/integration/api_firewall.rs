//! `/api/v1/firewall/...`: Coppercloud list CRUD and refresh from a real local HTTP server, bad
//! input (line numbers, fields) that changes nothing, who may do what, the metrics endpoints
//! with the firewall off (503 with the reason) and, as root, with a real firewall running in a
//! network namespace of its own (policy, live metrics, a profile's client-to-client flag reaching
//! the table).

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use mistborn_core::firewall::{FirewallOptions, FirewallPlane};
use serde_json::{Value, json};

use crate::support::{TestApp, serve_lists};

async fn patch(app: &TestApp, uri: &str, token: &str, body: Value) -> crate::support::Resp {
    app.call(Method::PATCH, uri, Some(token), Some(body)).await
}

#[tokio::test]
async fn coppercloud_lists_crud_bad_input_changes_nothing_and_authz() {
    let app = TestApp::new().await;
    let admin = app.admin.clone();

    let r = app
        .post(
            "/api/v1/firewall/lists",
            &admin,
            json!({"name": "scanners", "content": "# known scanners\n192.0.2.0/24\n198.51.100.7 ; one host\n2001:db8::/32\n203.0.113.1-203.0.113.9\n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let list = r.json();
    assert_eq!(list["entries"], 4);
    assert_eq!(list["mode"], "block");
    assert_eq!(list["enabled"], true);
    let id = list["id"].as_str().unwrap().to_string();

    // Bad input: 4xx naming the line or the field; nothing stored.
    let r = app
        .post(
            "/api/v1/firewall/lists",
            &admin,
            json!({"name": "junk", "content": "192.0.2.1\n10.0.0.0/33\n<html>\n"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("line 2: '10.0.0.0/33'"), "{msg}");
    assert!(msg.contains("line 3: '<html>'"), "{msg}");
    for (body, field) in [
        (json!({"name": "u", "url": "ftp://example.org/x"}), "url"),
        (json!({"name": "u", "url": "not a url"}), "url"),
        (json!({"name": "bad/name", "content": "192.0.2.1"}), "name"),
        (
            json!({"name": "empty", "content": "# nothing\n"}),
            "content",
        ),
        (json!({"name": "none"}), "content"),
    ] {
        let r = app
            .post("/api/v1/firewall/lists", &admin, body.clone())
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    for (body, status, code) in [
        (
            json!({"name": "x", "content": "192.0.2.1", "mode": "maybe"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"name": "x", "content": "192.0.2.1", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"name": "scanners", "content": "192.0.2.1"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ] {
        let r = app.post("/api/v1/firewall/lists", &admin, body).await;
        r.assert_error(status, code);
    }
    let all = app.get("/api/v1/firewall/lists", &admin).await.json();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");

    // Read by id and by name.
    let by_name = app.get("/api/v1/firewall/lists/scanners", &admin).await;
    assert_eq!(by_name.status, StatusCode::OK);
    assert_eq!(
        by_name.json(),
        app.get(&format!("/api/v1/firewall/lists/{id}"), &admin)
            .await
            .json()
    );
    app.get("/api/v1/firewall/lists/nosuch", &admin)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // PATCH: a bad line, a bad URL or a bad name changes nothing (not even the valid fields).
    let before = app
        .get("/api/v1/firewall/lists/scanners", &admin)
        .await
        .json();
    for body in [
        json!({"mode": "allow", "content": "192.0.2.1\nnope\n"}),
        json!({"mode": "allow", "url": "gopher://x"}),
        json!({"mode": "allow", "name": ""}),
    ] {
        let r = patch(&app, "/api/v1/firewall/lists/scanners", &admin, body).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    let r = patch(
        &app,
        "/api/v1/firewall/lists/scanners",
        &admin,
        json!({"mode": "allow", "size": 1}),
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    patch(
        &app,
        "/api/v1/firewall/lists/nosuch",
        &admin,
        json!({"enabled": false}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let after = app
        .get("/api/v1/firewall/lists/scanners", &admin)
        .await
        .json();
    assert_eq!(before, after);

    // Good PATCH: mode, enabled, name, new content.
    let r = patch(
        &app,
        "/api/v1/firewall/lists/scanners",
        &admin,
        json!({"mode": "allow", "enabled": false, "name": "friends", "content": "192.0.2.1\n192.0.2.2\n"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let l = r.json();
    assert_eq!(
        (
            l["mode"].as_str(),
            l["enabled"].as_bool(),
            l["name"].as_str(),
            l["entries"].as_u64()
        ),
        (Some("allow"), Some(false), Some("friends"), Some(2))
    );
    assert_eq!(l["id"], id.as_str());
    assert_eq!(
        app.get("/api/v1/firewall/lists/friends", &admin)
            .await
            .json(),
        l
    );

    // An uploaded list has nothing to refresh from.
    let r = app
        .post(
            &format!("/api/v1/firewall/lists/{id}/refresh"),
            &admin,
            json!({}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");

    // Regular users: 403 for everything, reads included; nothing changes.
    let bob = app.regular_user("bob").await;
    for (method, uri, body) in [
        (Method::GET, "/api/v1/firewall/lists".to_string(), None),
        (Method::GET, format!("/api/v1/firewall/lists/{id}"), None),
        (
            Method::POST,
            "/api/v1/firewall/lists".to_string(),
            Some(json!({"name": "mine", "content": "192.0.2.9"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/firewall/lists/{id}"),
            Some(json!({"enabled": true})),
        ),
        (Method::DELETE, format!("/api/v1/firewall/lists/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/firewall/lists/{id}/refresh"),
            None,
        ),
        (Method::GET, "/api/v1/firewall/policy".to_string(), None),
        (Method::GET, "/api/v1/firewall/metrics".to_string(), None),
        (
            Method::GET,
            "/api/v1/firewall/metrics/history".to_string(),
            None,
        ),
    ] {
        let r = app.call(method.clone(), &uri, Some(&bob), body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            r.text()
        );
        r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let r = app
        .call(Method::GET, "/api/v1/firewall/lists", None, None)
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        app.get("/api/v1/firewall/lists/friends", &admin)
            .await
            .json(),
        l
    );

    // DELETE.
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/firewall/lists/friends",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    app.get("/api/v1/firewall/lists/friends", &admin)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(
        Method::DELETE,
        "/api/v1/firewall/lists/friends",
        Some(&admin),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn refresh_from_a_url_keeps_the_last_good_copy_on_garbage_and_failures() {
    // The list server is on loopback: refused by default (the shared download helper)...
    let strict = TestApp::new().await;
    let r = strict
        .post(
            "/api/v1/firewall/lists",
            &strict.admin,
            json!({"name": "feed", "url": serve_lists(vec![]), "mode": "block"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert!(r.text().contains("local address"), "{}", r.text());
    // ... and allowed when configured.
    let app = TestApp::with(|c| c.download.allow_local = true).await;
    let admin = app.admin.clone();
    let url = serve_lists(vec![
        (200, "192.0.2.0/24\n198.51.100.0/24\n".into()),
        (
            200,
            "192.0.2.0/24\n198.51.100.0/24\n203.0.113.0/24\n".into(),
        ),
        (
            200,
            "192.0.2.0/24\n<!doctype html>\n<p>rate limited</p>\n".into(),
        ),
        (503, "busy".into()),
    ]);
    let r = app
        .post(
            "/api/v1/firewall/lists",
            &admin,
            json!({"name": "feed", "url": url, "mode": "block"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["entries"], 2);
    assert_eq!(r.json()["url"], url.as_str());

    let r = app
        .post("/api/v1/firewall/lists/feed/refresh", &admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["updated"], true);
    assert_eq!(r.json()["list"]["entries"], 3);
    let good = app.get("/api/v1/firewall/lists/feed", &admin).await.json();

    // Garbage: refused with its line numbers; the good copy (3 entries) stays.
    let r = app
        .post("/api/v1/firewall/lists/feed/refresh", &admin, json!({}))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("last good copy stays") && msg.contains("line 2"),
        "{msg}"
    );
    let now = app.get("/api/v1/firewall/lists/feed", &admin).await.json();
    assert_eq!(now["entries"], 3);
    assert_eq!(now["refreshed_at"], good["refreshed_at"]);
    assert!(
        now["last_error"].as_str().unwrap().contains("line 2"),
        "{now}"
    );

    // A failed download: same, with the HTTP status.
    let r = app
        .post("/api/v1/firewall/lists/feed/refresh", &admin, json!({}))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let now = app.get("/api/v1/firewall/lists/feed", &admin).await.json();
    assert_eq!(now["entries"], 3);
    assert!(now["last_error"].as_str().unwrap().contains("503"), "{now}");

    // PATCH to a URL that does not answer: nothing changes.
    let before = app.get("/api/v1/firewall/lists/feed", &admin).await.json();
    let r = patch(
        &app,
        "/api/v1/firewall/lists/feed",
        &admin,
        json!({"url": "http://127.0.0.1:9/none.txt", "mode": "allow"}),
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        app.get("/api/v1/firewall/lists/feed", &admin).await.json(),
        before
    );
}

#[tokio::test]
async fn live_endpoints_say_clearly_when_the_firewall_is_off() {
    // No firewall attached (tests, or a build that does not run one).
    let app = TestApp::new().await;
    let r = app.get("/api/v1/firewall/policy", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"]["on"], false);
    assert!(r.json()["policy"].is_null());
    assert!(
        r.json()["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("not run")
    );
    let r = app.get("/api/v1/firewall/metrics", &app.admin).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "firewall_off");
    app.get("/api/v1/firewall/metrics?top=0", &app.admin)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.get("/api/v1/firewall/metrics?top=many", &app.admin)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");

    // History reads the store: fine while the firewall is off.
    let r = app
        .get(
            "/api/v1/firewall/metrics/history?since=0&bucket=60",
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["total_probes"], 0);
    assert_eq!(r.json()["buckets"], json!([]));
    app.get("/api/v1/firewall/metrics/history?bucket=0", &app.admin)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");

    // A firewall switched off by configuration: the reason is passed on.
    let app = TestApp::with(|c| c.firewall.enabled = false).await;
    let plane = FirewallPlane::start(&app.m);
    let router = mistborn_http::router(
        mistborn_http::AppState::new(app.m.clone()).with_firewall(plane.handle()),
    );
    let app = TestApp { router, ..app };
    let r = app.get("/api/v1/firewall/metrics", &app.admin).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "firewall_off");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("firewall.enabled is false")
    );
    let r = app.get("/api/v1/firewall/policy", &app.admin).await;
    assert_eq!(r.json()["status"]["on"], false);
    assert!(
        r.json()["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("firewall.enabled is false")
    );
    plane.stop().await;
}

fn is_root_with_nft() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nft = Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && nft) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this as root with nft and ip"
        );
        eprintln!("skipping: needs root, nft and ip");
    }
    root && nft
}

/// A network namespace removed on drop (the firewall table goes with it).
struct Ns(String);

impl Ns {
    fn new() -> Self {
        let name = format!("mbfwapi{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Self(name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test]
async fn a_running_firewall_answers_policy_and_metrics_and_follows_client_to_client() {
    if !is_root_with_nft() {
        return;
    }
    let ns = Ns::new();
    let app = TestApp::with(|c| {
        // No default route in the bare namespace: name the external interface.
        c.firewall.external_interface = Some("lo".into());
        c.wireguard.interface = "mbfwapi0".into();
    })
    .await;
    let plane = FirewallPlane::start_with(
        &app.m,
        FirewallOptions {
            netns: Some(format!("/run/netns/{}", ns.0).into()),
            check_interval: Duration::from_secs(30),
        },
    );
    let st = plane.settled().await;
    assert!(st.on, "{st:?}");
    let router = mistborn_http::router(
        mistborn_http::AppState::new(app.m.clone()).with_firewall(plane.handle()),
    );
    let app = TestApp { router, ..app };
    let admin = app.admin.clone();

    let r = app.get("/api/v1/firewall/policy", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = r.json();
    assert_eq!(p["status"]["on"], true);
    assert_eq!(p["policy"]["table"], "inet mistborn");
    assert_eq!(p["policy"]["tunnel_interface"], "mbfwapi0");
    assert_eq!(p["policy"]["client_to_client"], json!([]));

    let r = app.get("/api/v1/firewall/metrics?top=5", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["top_ports"].is_array());

    // A profile's client-to-client flag, changed through the profiles API, reaches the table.
    let profile = app.admin_default_profile().await;
    let r = patch(
        &app,
        &format!("/api/v1/profiles/{profile}"),
        &admin,
        json!({"client_to_client": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v4 = r.json()["address_v4"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = app.get("/api/v1/firewall/policy", &admin).await.json();
        let c2c = p["policy"]["client_to_client"].as_array().unwrap().clone();
        if c2c.iter().any(|a| a.as_str() == Some(v4.as_str())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client-to-client never reached the policy: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = Command::new("ip")
        .args([
            "netns", "exec", &ns.0, "nft", "list", "table", "inet", "mistborn",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&v4), "{v4} not in the live table:\n{table}");
    plane.stop().await;
}

/// A Coppercloud list far over the 2 MB JSON limit uploads as a raw body; over the configured cap
/// it is a 413.
#[tokio::test]
async fn coppercloud_streaming_upload() {
    let app = TestApp::new().await;
    let text: String = (0..200_000u32)
        .map(|i| format!("10.{}.{}.0/24\n", (i >> 8) & 0xff, i & 0xff))
        .collect::<String>();
    assert!(text.len() > 2 * 1024 * 1024);
    let put = |body: String, token: String| {
        let req = axum::http::Request::builder()
            .method(axum::http::Method::PUT)
            .uri("/api/v1/firewall/lists/big/content")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "text/plain")
            .body(axum::body::Body::from(body))
            .unwrap();
        app.request(req)
    };
    let r = put(text.clone(), app.admin.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["entries"], 200_000);
    let r = put("192.0.2.0/24\n".into(), app.admin.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["entries"], 1);
    let r = put("not an address\n".into(), app.admin.clone()).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    let bob = app.regular_user("bob").await;
    put("192.0.2.0/24\n".into(), bob)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let small = TestApp::with(|c| c.download.max_bytes = 1000).await;
    let req = axum::http::Request::builder()
        .method(axum::http::Method::PUT)
        .uri("/api/v1/firewall/lists/big/content")
        .header("authorization", format!("Bearer {}", small.admin))
        .body(axum::body::Body::from(text))
        .unwrap();
    small
        .request(req)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}
