//! The API over a real TCP listener, and graceful shutdown.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::TestApp;

async fn http_get(addr: std::net::SocketAddr, path: &str, token: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_on_a_port_and_shuts_down_gracefully() {
    let app = TestApp::new().await;
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

    let ok = http_get(addr, "/api/v1/me", &app.admin).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"username\":\"admin\""), "{ok}");
    let denied = http_get(addr, "/api/v1/me", "wrong").await;
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(denied.contains("\"code\":\"unauthenticated\""), "{denied}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops after the shutdown signal")
        .unwrap()
        .unwrap();
    // A parallel test may bind the freed port at once: what must hold is that our API is gone.
    if TcpStream::connect(addr).await.is_ok() {
        let after = tokio::time::timeout(
            Duration::from_secs(5),
            http_get(addr, "/api/v1/me", &app.admin),
        )
        .await
        .unwrap_or_default();
        assert!(
            !after.contains("\"username\":\"admin\""),
            "the API still answers after shutdown: {after}"
        );
    }
}
