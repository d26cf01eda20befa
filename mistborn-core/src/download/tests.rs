//! Each refusal of the download helper, against a real HTTP server on loopback (the tests that
//! reach it set `allow_local`, as the list tests elsewhere do).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// What the test server does with each connection.
#[derive(Clone)]
enum Reply {
    /// Sends these bytes and closes.
    Raw(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
}

/// Serves every connection with `reply`; the URL and the connection counter.
async fn server(reply: Reply) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match reply {
                    Reply::Raw(bytes) => {
                        let _ = s.write_all(&bytes).await;
                    }
                    Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (format!("http://{addr}/list.txt"), hits)
}

fn ok_body(body: &[u8]) -> Reply {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    Reply::Raw(v)
}

fn local_ok() -> DownloadConfig {
    DownloadConfig {
        allow_local: true,
        ..DownloadConfig::default()
    }
}

#[tokio::test]
async fn a_loopback_server_is_refused_unless_configured() {
    let (url, hits) = server(ok_body(b"ads.example\n")).await;
    let err = download_text(&url, &DownloadConfig::default())
        .await
        .expect_err("loopback");
    assert!(
        matches!(err, DownloadError::LocalTarget { addr, .. } if addr.is_loopback()),
        "{err}"
    );
    assert!(err.to_string().contains("download.allow_local"), "{err}");
    // By name: `localhost` resolves to loopback, refused after resolution.
    let by_name = url.replace("127.0.0.1", "localhost");
    let err = download_text(&by_name, &DownloadConfig::default())
        .await
        .expect_err("localhost");
    assert!(
        matches!(&err, DownloadError::LocalTarget { host, .. } if host == "localhost"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "never connected");
    assert_eq!(
        download_text(&url, &local_ok()).await.expect("allowed"),
        "ads.example\n"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn link_local_unspecified_and_mapped_literals_are_refused() {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://0.0.0.0:8080/x",
        "http://[::]/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://127.1.2.3/x",
    ] {
        let err = download_text(url, &DownloadConfig::default())
            .await
            .expect_err(url);
        assert!(
            matches!(err, DownloadError::LocalTarget { .. }),
            "{url}: {err}"
        );
    }
    assert!(!is_local_target("192.0.2.1".parse().expect("ip")));
    assert!(!is_local_target("10.15.91.1".parse().expect("ip")));
    assert!(!is_local_target("2001:db8::1".parse().expect("ip")));
}

#[test]
fn a_redirect_to_a_local_address_is_refused() {
    let to = |u: &str| reqwest::Url::parse(u).expect("url");
    let err = check_redirect(&to("http://169.254.169.254/x"), 1, false).expect_err("refused");
    assert!(matches!(err, DownloadError::LocalTarget { .. }), "{err}");
    let err = check_redirect(&to("file:///etc/passwd"), 1, false).expect_err("scheme");
    assert!(matches!(err, DownloadError::BadUrl { .. }), "{err}");
    check_redirect(&to("http://169.254.169.254/x"), 1, true).expect("allowed when configured");
    check_redirect(&to("https://lists.example/x"), 1, false)
        .expect("a name: checked when resolved");
    assert!(check_redirect(&to("https://lists.example/x"), 10, false).is_err());
}

#[tokio::test]
async fn a_redirect_is_followed_through_the_same_checks() {
    let (target, _) = server(ok_body(b"redirected.example\n")).await;
    let (url, _) = server(Reply::Raw(
        format!("HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n")
            .into_bytes(),
    ))
    .await;
    assert_eq!(
        download_text(&url, &local_ok()).await.expect("followed"),
        "redirected.example\n"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_while_streaming() {
    let cap = DownloadConfig {
        max_bytes: 1000,
        ..local_ok()
    };
    // Announced by content-length: refused before reading.
    let (url, _) = server(ok_body(&[b'a'; 5000])).await;
    let err = download_text(&url, &cap).await.expect_err("too large");
    assert_eq!(err, DownloadError::TooLarge { limit: 1000 });
    // Not announced (read until close): refused once the cap is passed.
    let mut raw = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(&[b'a'; 5000]);
    let (url, _) = server(Reply::Raw(raw)).await;
    let err = download_text(&url, &cap).await.expect_err("too large");
    assert_eq!(err, DownloadError::TooLarge { limit: 1000 });
    assert!(err.to_string().contains("1000 bytes"), "{err}");
    // Exactly the cap is fine.
    let (url, _) = server(ok_body(&[b'a'; 1000])).await;
    assert_eq!(
        download_text(&url, &cap).await.expect("at the cap").len(),
        1000
    );
}

#[tokio::test]
async fn timeouts_statuses_and_binary_bodies_are_clear_errors() {
    let quick = DownloadConfig {
        timeout_secs: 1,
        ..local_ok()
    };
    let (url, _) = server(Reply::Hang).await;
    let started = std::time::Instant::now();
    let err = download_text(&url, &quick).await.expect_err("hangs");
    assert_eq!(err, DownloadError::Timeout(1));
    assert!(started.elapsed() < Duration::from_secs(5));

    let (url, _) = server(Reply::Raw(
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
    ))
    .await;
    assert_eq!(
        download_text(&url, &quick).await.expect_err("404"),
        DownloadError::Status(404)
    );
    let (url, _) = server(ok_body(&[0xff, 0xfe, 0x00, 0x80])).await;
    assert_eq!(
        download_text(&url, &quick).await.expect_err("binary"),
        DownloadError::NotText
    );
    let err = download_text("ftp://lists.example/x", &quick)
        .await
        .expect_err("scheme");
    assert!(matches!(err, DownloadError::BadUrl { .. }), "{err}");
    // Nothing listens on port 9 of loopback: a connection error that says so.
    let err = download_text("http://127.0.0.1:9/x", &quick)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, DownloadError::Failed(m) if m.contains("onnect")),
        "{err}"
    );
}
