//! Who may open the status WebSocket (`Origin`), and that an open one follows its caller's
//! rights: a revoked token, a deleted user, a signed-out or expired device lose it within a
//! second, a demoted superuser's view narrows. Real sockets against a served router.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode};
use futures_util::{SinkExt, StreamExt};
use mistborn_core::Actor;
use mistborn_core::auth::TotpSecret;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::api_status::start_memory_dataplane;
use crate::support::TestApp;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves the app on a local port as if every connection came from `peer` (a tunnel address
/// when the test needs the device's ambient identity). Stops when the returned sender drops.
async fn serve(app: &TestApp, peer: IpAddr) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mistborn_http::router(mistborn_http::AppState::new(app.m.clone()))
        .layer(Extension(ConnectInfo(SocketAddr::new(peer, 40000))));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    (addr, stop)
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn connect(addr: SocketAddr, headers: &[(&'static str, String)]) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}/api/v1/status/ws")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("no answer to the upgrade within 10 s")
    .map(|(ws, _)| ws)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn origin(o: &str) -> (&'static str, String) {
    ("origin", o.to_string())
}

/// The HTTP status a refused upgrade got.
fn refused(r: Result<Ws, WsError>) -> StatusCode {
    match r {
        Err(WsError::Http(resp)) => StatusCode::from_u16(resp.status().as_u16()).unwrap(),
        Err(e) => panic!("refused without an HTTP answer: {e}"),
        Ok(_) => panic!("the socket was opened"),
    }
}

async fn first_view(ws: &mut Ws) -> Value {
    next_view(ws, Duration::from_secs(5))
        .await
        .expect("a first view")
}

/// The next view within `within`; `None` if the socket closed or nothing came.
async fn next_view(ws: &mut Ws, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Reads until the server closes the socket (views sent before are skipped) and returns when that
/// was; panics unless it was a policy close within `within`.
async fn closed_within(ws: &mut Ws, within: Duration) -> Instant {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("still open after {within:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let frame = frame.expect("a close frame says why");
                assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
                return Instant::now();
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("ended without a close frame: {other:?}"),
        }
    }
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

/// A profile of `owner` (`kind` wireguard or mfa), made by the admin (a WireGuard-only profile
/// is a superuser's decision); returns its tunnel IPv4 address.
async fn profile(app: &TestApp, owner: &str, name: &str, kind: &str) -> IpAddr {
    let r = app
        .post(
            "/api/v1/profiles",
            &app.admin,
            json!({"name": name, "user": owner, "kind": kind}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["address_v4"].as_str().unwrap().parse().unwrap()
}

const HOME: &str = "https://home.mistborn";

#[tokio::test]
async fn only_pages_mistborn_served_and_token_holders_may_open_it() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let laptop = profile(&app, "bob", "laptop", "wireguard").await;

    // A program with a token (no Origin), or the sign-in page with one.
    let (addr, _stop) = serve(&app, LOOPBACK).await;
    let mut ws = connect(addr, &[bearer(&bob)]).await.unwrap();
    first_view(&mut ws).await;
    let mut ws = connect(addr, &[bearer(&bob), origin(HOME)]).await.unwrap();
    first_view(&mut ws).await;
    // Another site's page, even holding a token, and an opaque origin.
    for o in [
        "https://evil.example",
        "null",
        "https://home.mistborn.evil.example",
    ] {
        let r = connect(addr, &[bearer(&bob), origin(o)]).await;
        assert_eq!(refused(r), StatusCode::FORBIDDEN, "{o}");
    }

    // The device's own tunnel identity (WireGuard-only profile: no sign-in needed).
    let (addr, _stop) = serve(&app, laptop).await;
    let mut ws = connect(addr, &[origin(HOME)]).await.unwrap();
    assert_eq!(first_view(&mut ws).await["peers"], json!([]));
    // The page at the listener's own address (Origin = Host, an IP address).
    let mut ws = connect(addr, &[origin(&format!("http://{addr}"))])
        .await
        .unwrap();
    first_view(&mut ws).await;
    // Any other page the device's browser opens cannot use that identity...
    let r = connect(addr, &[origin("https://evil.example")]).await;
    assert_eq!(refused(r), StatusCode::FORBIDDEN);
    // ...nor a name rebound to this address.
    let r = connect(
        addr,
        &[
            origin("http://rebound.example"),
            ("host", "rebound.example".into()),
        ],
    )
    .await;
    assert_eq!(refused(r), StatusCode::FORBIDDEN);
    // And a program without Origin must show a token: the tunnel does not say which program asks.
    let r = connect(addr, &[]).await;
    assert_eq!(refused(r), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_revoked_token_closes_its_socket_within_a_second() {
    let app = TestApp::new().await;
    app.regular_user("bob").await;
    let r = app
        .post(
            "/api/v1/tokens",
            &app.admin,
            json!({"name": "watch", "user": "bob"}),
        )
        .await;
    let (id, token) = (
        r.json()["token"]["id"].as_str().unwrap().to_string(),
        r.json()["secret"].as_str().unwrap().to_string(),
    );
    let (addr, _stop) = serve(&app, LOOPBACK).await;
    let mut ws = connect(addr, &[bearer(&token)]).await.unwrap();
    let mut other = connect(addr, &[bearer(&app.admin)]).await.unwrap();
    first_view(&mut ws).await;
    first_view(&mut other).await;

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    let closed = closed_within(&mut ws, Duration::from_secs(3)).await;
    assert!(
        closed - revoked < Duration::from_secs(1),
        "{:?}",
        closed - revoked
    );
    // Other callers' sockets stay open.
    assert!(
        next_view(&mut other, Duration::from_millis(300))
            .await
            .is_none()
    );
    other.send(Message::Ping(vec![1].into())).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(3), other.next()).await,
        Ok(Some(Ok(Message::Pong(_))))
    ));
}

#[tokio::test]
async fn a_deleted_user_loses_their_socket_within_a_second() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let (addr, _stop) = serve(&app, LOOPBACK).await;
    let mut ws = connect(addr, &[bearer(&bob)]).await.unwrap();
    first_view(&mut ws).await;
    let r = app
        .call(Method::DELETE, "/api/v1/users/bob", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let deleted = Instant::now();
    let closed = closed_within(&mut ws, Duration::from_secs(3)).await;
    assert!(
        closed - deleted < Duration::from_secs(1),
        "{:?}",
        closed - deleted
    );
}

#[tokio::test]
async fn a_demoted_superusers_view_narrows_within_a_second() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    profile(&app, "bob", "phone", "wireguard").await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/users/bob/role",
            Some(&app.admin),
            Some(json!({"role": "superuser"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (dp, _mem) = start_memory_dataplane(&app);
    assert!(dp.settled().await.on);
    let (addr, _stop) = serve(&app, LOOPBACK).await;
    let mut ws = connect(addr, &[bearer(&bob)]).await.unwrap();
    assert_eq!(
        names(&first_view(&mut ws).await),
        ["admin/default", "bob/phone"]
    );

    let r = app
        .call(
            Method::PUT,
            "/api/v1/users/bob/role",
            Some(&app.admin),
            Some(json!({"role": "regular"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let demoted = Instant::now();
    let view = next_view(&mut ws, Duration::from_secs(3))
        .await
        .expect("the narrowed view");
    assert!(
        demoted.elapsed() < Duration::from_secs(1),
        "{:?}",
        demoted.elapsed()
    );
    assert_eq!(names(&view), ["bob/phone"]);
    // Later pushes keep to the narrow view: admin's new profile is not sent.
    profile(&app, "admin", "laptop", "wireguard").await;
    assert!(
        next_view(&mut ws, Duration::from_millis(500))
            .await
            .is_none()
    );
    dp.stop().await;
}

/// A device with a second factor, signed in: returns its tunnel address.
async fn signed_in_device(app: &TestApp, token: &str) -> IpAddr {
    let phone = profile(app, "bob", "phone", "mfa").await;
    let me = app.get("/api/v1/me", token).await.json();
    let actor = Actor::User {
        id: me["id"].as_str().unwrap().parse().unwrap(),
        role: mistborn_core::users::Role::Regular,
    };
    let now = mistborn_http::state::now();
    let auth = app.m.auth();
    let e = auth.enroll(&actor, "bob", now).await.unwrap();
    let secret = TotpSecret::from_base32(&e.secret_base32).unwrap();
    let code = secret.code_at(u64::try_from(now).unwrap()).unwrap();
    let recovery = auth.confirm(&actor, "bob", &code, now).await.unwrap();
    auth.login(phone, &recovery[0], now).await.unwrap();
    phone
}

#[tokio::test]
async fn signing_out_closes_the_devices_socket_within_a_second() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let phone = signed_in_device(&app, &bob).await;
    let (addr, _stop) = serve(&app, phone).await;
    let mut ws = connect(addr, &[origin(HOME)]).await.unwrap();
    first_view(&mut ws).await;
    // Something else changes first: the socket stays.
    profile(&app, "bob", "tablet", "wireguard").await;
    assert!(
        next_view(&mut ws, Duration::from_millis(300))
            .await
            .is_none()
    );

    app.m
        .auth()
        .sign_out(phone, mistborn_http::state::now())
        .await
        .unwrap();
    let signed_out = Instant::now();
    let closed = closed_within(&mut ws, Duration::from_secs(3)).await;
    assert!(
        closed - signed_out < Duration::from_secs(1),
        "{:?}",
        closed - signed_out
    );
    // And it cannot be opened again without signing in.
    let r = connect(addr, &[origin(HOME)]).await;
    assert_eq!(refused(r), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn session_expiry_closes_the_devices_socket_within_a_second() {
    let app = TestApp::with(|c| c.auth.session_ttl_secs = 2).await;
    let bob = app.regular_user("bob").await;
    let phone = signed_in_device(&app, &bob).await;
    let expires_at = app.m.auth().sessions(&Actor::System).await.unwrap()[0].expires_at;
    let (addr, _stop) = serve(&app, phone).await;
    let mut ws = connect(addr, &[origin(HOME)]).await.unwrap();
    first_view(&mut ws).await;
    closed_within(&mut ws, Duration::from_secs(5)).await;
    let closed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let late = closed_at - expires_at as f64;
    assert!(
        (0.0..1.0).contains(&late),
        "closed {late:.3} s after expiry"
    );
}
