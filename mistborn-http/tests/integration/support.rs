//! A fresh Mistborn in a temp data dir per test, and a small client that drives the router with
//! `oneshot` (no port).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use mistborn_core::{Actor, Config, Mistborn};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

pub struct TestApp {
    /// Keeps the data dir alive for the test.
    pub _dir: TempDir,
    pub m: Mistborn,
    pub router: Router,
    /// A bearer token of the `admin` superuser.
    pub admin: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// Asserts an error response: the status, the JSON shape and the stable code.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "body: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "empty message: {v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "extra fields: {v}");
    }
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        endpoint: "vpn.example.org".into(),
        ..Config::default()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        edit(&mut config);
        let m = Mistborn::open(config).await.unwrap();
        let admin = m
            .users()
            .create_token(&Actor::System, "admin", "tests")
            .await
            .unwrap()
            .secret;
        let router = mistborn_http::router(mistborn_http::AppState::new(m.clone()));
        Self {
            _dir: dir,
            m,
            router,
            admin,
        }
    }

    pub async fn request(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A request with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        };
        self.request(req.unwrap()).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    /// Creates a regular user and a token for them through the API; returns the token.
    pub async fn regular_user(&self, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/users",
                &self.admin,
                serde_json::json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = self
            .post(
                "/api/v1/tokens",
                &self.admin,
                serde_json::json!({"name": "t", "user": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["secret"].as_str().unwrap().to_string()
    }

    /// The id of admin's `default` profile.
    pub async fn admin_default_profile(&self) -> String {
        let r = self.get("/api/v1/profiles?user=admin", &self.admin).await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.json();
        let p = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "default")
            .expect("admin has a default profile");
        p["id"].as_str().unwrap().to_string()
    }
}

/// Serves each `(status, body)` once, in order, on 127.0.0.1 from a thread (a real download, no
/// internet; usable from sync and async tests); returns the URL.
pub fn serve_lists(bodies: Vec<(u16, String)>) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for (status, body) in bodies {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).unwrap();
        }
    });
    format!("http://{addr}/list.txt")
}

/// Sends SIGTERM to a `mistborn serve` child and waits (at most 15 s) for it to exit.
#[track_caller]
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
