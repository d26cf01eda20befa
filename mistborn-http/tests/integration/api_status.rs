//! `GET /api/v1/status` and the `/api/v1/status/ws` WebSocket: per-viewer filtering and pushes,
//! with the data plane on the in-memory backend (the real one is tested in `tests/`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use mistborn_core::wireguard::{DataPlane, DataPlaneOptions, MemoryBackend, WireGuardBackend};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::TestApp;

pub(crate) fn start_memory_dataplane(app: &TestApp) -> (DataPlane, MemoryBackend) {
    let mem = MemoryBackend::default();
    let m2 = mem.clone();
    let dp = DataPlane::start_with(
        &app.m,
        DataPlaneOptions {
            status_interval: Duration::from_millis(50),
            netns: None,
            backend: Some(Arc::new(move || {
                Ok(Box::new(m2.clone()) as Box<dyn WireGuardBackend>)
            })),
            gate: None,
        },
    );
    (dp, mem)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Value {
    let msg = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("no push within 3 s")
        .unwrap()
        .unwrap();
    serde_json::from_str::<Value>(msg.to_text().unwrap()).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["username"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            )
        })
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn status_says_why_the_data_plane_is_off() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/status", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["dataplane"]["on"], false);
    assert!(
        v["dataplane"]["reason"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{v}"
    );
    app.call(axum::http::Method::GET, "/api/v1/status", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn status_shows_each_viewer_only_what_they_may_see() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let r = app
        .post("/api/v1/profiles", &bob, json!({"name": "phone"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let (dp, _mem) = start_memory_dataplane(&app);
    assert!(dp.settled().await.on);

    let admin_view = app.get("/api/v1/status", &app.admin).await.json();
    assert_eq!(admin_view["dataplane"]["on"], true);
    assert_eq!(admin_view["dataplane"]["backend"], "memory");
    assert_eq!(names(&admin_view), vec!["admin/default", "bob/phone"]);
    let bob_view = app.get("/api/v1/status", &bob).await.json();
    assert_eq!(names(&bob_view), vec!["bob/phone"]);
    assert_eq!(bob_view["peers"][0]["latest_handshake"], Value::Null);
    dp.stop().await;
}

#[tokio::test]
async fn websocket_pushes_changes_of_the_viewers_own_profiles_only() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let (dp, _mem) = start_memory_dataplane(&app);
    assert!(dp.settled().await.on);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mistborn_http::serve(
        listener,
        mistborn_http::AppState::new(app.m.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let connect = |token: String| async move {
        let mut req = format!("ws://{addr}/api/v1/status/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };
    let mut bob_ws = connect(bob.clone()).await;
    let mut admin_ws = connect(app.admin.clone()).await;
    assert_eq!(names(&next(&mut bob_ws).await), Vec::<String>::new());
    assert_eq!(names(&next(&mut admin_ws).await), vec!["admin/default"]);

    // Admin adds a profile of their own: admin's socket gets it, bob's gets nothing.
    let r = app
        .post("/api/v1/profiles", &app.admin, json!({"name": "laptop"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        names(&next(&mut admin_ws).await),
        vec!["admin/default", "admin/laptop"]
    );
    let quiet = tokio::time::timeout(Duration::from_millis(300), bob_ws.next()).await;
    assert!(quiet.is_err(), "bob was sent admin's change: {quiet:?}");

    // Bob adds one: bob sees exactly his own profile.
    let r = app
        .post("/api/v1/profiles", &bob, json!({"name": "phone"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(names(&next(&mut bob_ws).await), vec!["bob/phone"]);

    // Without a token there is no socket.
    let plain = format!("ws://{addr}/api/v1/status/ws")
        .into_client_request()
        .unwrap();
    assert!(tokio_tungstenite::connect_async(plain).await.is_err());

    let _ = stop.send(());
    drop(bob_ws);
    drop(admin_ws);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    dp.stop().await;
}
