//! Sign-in from the tunnel, web identity and forward-auth through the router, with the client
//! address given as connection info (a TCP peer), or as the reverse proxy forwards it over its
//! socket (the listener's [`ProxyHop`] proof, inserted here as that listener does).

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use mistborn_core::auth::TotpSecret;
use mistborn_core::proxy::ServiceRoute;
use mistborn_http::extract::ProxyHop;
use serde_json::{Value, json};

use crate::support::{Resp, TestApp};

/// How a request reaches the server.
#[derive(Clone, Copy)]
enum Via {
    /// Straight over TCP from this peer address.
    Tcp(IpAddr),
    /// Through the reverse proxy's socket, forwarded for this client.
    Proxy(IpAddr),
}
use Via::{Proxy, Tcp};

fn method_changes_state(m: &Method) -> bool {
    ![Method::GET, Method::HEAD, Method::OPTIONS].contains(m)
}

/// A request as it reaches the server.
async fn from(
    app: &TestApp,
    via: Via,
    method: Method,
    uri: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Resp {
    let mut req = Request::builder().method(method.clone()).uri(uri);
    if let Proxy(client) = via {
        req = req.header("x-forwarded-for", client.to_string());
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    // State-changing requests on tunnel identity come from the sign-in page (see
    // `ambient_requests_need_a_page_mistborn_served` for the others).
    if method_changes_state(&method) && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin"))
    {
        req = req.header(header::ORIGIN, "https://home.mistborn");
    }
    let mut req = match body {
        Some(v) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    match via {
        Tcp(peer) => {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer, 40000)));
        }
        Proxy(_) => {
            req.extensions_mut().insert(ProxyHop);
        }
    }
    app.request(req).await
}

async fn forward(app: &TestApp, client: IpAddr, host: &str, accept: &str) -> Resp {
    from(
        app,
        Proxy(client),
        Method::GET,
        "/auth/forward",
        None,
        &[("x-forwarded-host", host), ("accept", accept)],
    )
    .await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn mfa_sign_in_from_the_tunnel_gates_forward_auth() {
    let app = TestApp::with(|c| {
        c.proxy.services = vec![ServiceRoute {
            name: "nextcloud".into(),
            upstream: "127.0.0.1:8081".parse().unwrap(),
        }]
    })
    .await;
    let bob = app.regular_user("bob").await;
    let r = app
        .post(
            "/api/v1/profiles",
            &bob,
            json!({"name": "phone", "kind": "mfa"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let phone: IpAddr = r.json()["address_v4"].as_str().unwrap().parse().unwrap();
    // A WireGuard-only profile is a superuser's decision.
    let r = app
        .post(
            "/api/v1/profiles",
            &app.admin,
            json!({"name": "laptop", "user": "bob", "kind": "wireguard"}),
        )
        .await;
    let laptop: IpAddr = r.json()["address_v6"].as_str().unwrap().parse().unwrap();
    let svc = "nextcloud.mistborn";

    // Before sign-in: the phone is known but not verified; services refuse it.
    let who = from(
        &app,
        Tcp(phone),
        Method::GET,
        "/api/v1/auth/whoami",
        None,
        &[],
    )
    .await;
    assert_eq!(who.json()["username"], "bob");
    assert_eq!(who.json()["verified"], false);
    let me = from(&app, Tcp(phone), Method::GET, "/api/v1/me", None, &[]).await;
    me.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let denied = forward(&app, phone, svc, "*/*").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.text(), "Mistborn: Not authorized");
    let browser = forward(&app, phone, svc, "text/html,application/xhtml+xml").await;
    assert_eq!(browser.status, StatusCode::FOUND);
    assert_eq!(browser.headers[header::LOCATION], "https://home.mistborn/");

    // Enrollment from the tunnel itself (the tunnel is the first factor), then sign-in.
    let e = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/totp/enroll",
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text());
    let secret = TotpSecret::from_base32(e.json()["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(now()).unwrap();
    let c = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/totp/confirm",
        Some(json!({"code": code})),
        &[],
    )
    .await;
    assert_eq!(
        c.json()["recovery_codes"].as_array().unwrap().len(),
        10,
        "{}",
        c.text()
    );
    let again = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/totp/enroll",
        Some(json!({})),
        &[],
    )
    .await;
    again.assert_error(StatusCode::CONFLICT, "conflict");

    let wrong = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({"code": "000000"})),
        &[],
    )
    .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    // The confirmation used this step's code; the next step's is accepted (one step of skew).
    let next = secret.code_at(now() + 30).unwrap();
    let ok = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({"code": next})),
        &[],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json()["address"], phone.to_string());

    // Signed in: the tunnel address is bob on the web, and forward-auth lets it through.
    let me = from(&app, Tcp(phone), Method::GET, "/api/v1/me", None, &[]).await;
    assert_eq!(me.json()["username"], "bob");
    let allowed = forward(&app, phone, svc, "*/*").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert!(
        allowed.body.is_empty(),
        "an allow has no body (Caddy keeps the connection)"
    );
    assert_eq!(allowed.headers["remote-user"], "bob");
    assert_eq!(allowed.headers["remote-email"], "bob@mistborn");

    // WireGuard-only profiles need nothing more; strangers, spoofers and unknown hosts get nothing.
    assert_eq!(
        forward(&app, laptop, svc, "*/*").await.status,
        StatusCode::OK
    );
    assert_eq!(
        forward(&app, laptop, "evil.example", "*/*").await.status,
        StatusCode::FORBIDDEN
    );
    let outsider: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(
        forward(&app, outsider, svc, "*/*").await.status,
        StatusCode::FORBIDDEN
    );
    // A header is no proof: over TCP (even from loopback, where the proxy used to be trusted) a
    // forwarded address is ignored, and so it is after a proxy that appends (the rightmost entry
    // is the one the proxy added).
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    for peer in [outsider, loopback] {
        let spoof = from(
            &app,
            Tcp(peer),
            Method::GET,
            "/auth/forward",
            None,
            &[
                ("x-forwarded-host", svc),
                ("x-forwarded-for", &laptop.to_string()),
            ],
        )
        .await;
        assert_eq!(
            spoof.status,
            StatusCode::FORBIDDEN,
            "X-Forwarded-For over TCP from {peer}"
        );
    }
    let appended = format!("{laptop}, {outsider}");
    let spoof = from(
        &app,
        Proxy(outsider),
        Method::GET,
        "/auth/forward",
        None,
        &[("x-forwarded-host", svc), ("x-forwarded-for", &appended)],
    )
    .await;
    assert_eq!(spoof.status, StatusCode::FORBIDDEN, "{appended}");
    let no_info = app.call(Method::GET, "/auth/forward", None, None).await;
    assert_eq!(no_info.status, StatusCode::FORBIDDEN);

    let sessions = app.get("/api/v1/auth/sessions", &app.admin).await;
    assert_eq!(sessions.json().as_array().unwrap().len(), 1);
    let reset = app
        .post("/api/v1/auth/totp/reset", &bob, json!({"user": "bob"}))
        .await;
    reset.assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Sign-out closes it again.
    let out = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/logout",
        None,
        &[],
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        forward(&app, phone, svc, "*/*").await.status,
        StatusCode::FORBIDDEN
    );
    let out = from(
        &app,
        Tcp(phone),
        Method::POST,
        "/api/v1/auth/logout",
        None,
        &[],
    )
    .await;
    out.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn lockout_is_429_and_the_ca_and_page_are_public() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let r = app
        .post(
            "/api/v1/profiles",
            &bob,
            json!({"name": "phone", "kind": "mfa"}),
        )
        .await;
    let phone: IpAddr = r.json()["address_v4"].as_str().unwrap().parse().unwrap();
    let e = app.post("/api/v1/auth/totp/enroll", &bob, json!({})).await;
    let secret = TotpSecret::from_base32(e.json()["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(now()).unwrap();
    app.post("/api/v1/auth/totp/confirm", &bob, json!({"code": code}))
        .await;
    let mut last = None;
    for _ in 0..5 {
        last = Some(
            from(
                &app,
                Tcp(phone),
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"code": "999999"})),
                &[],
            )
            .await,
        );
    }
    let last = last.unwrap();
    last.assert_error(StatusCode::TOO_MANY_REQUESTS, "throttled");
    assert!(last.headers.contains_key(header::RETRY_AFTER));

    let ca = app
        .call(Method::GET, "/api/v1/tls/ca.pem", None, None)
        .await;
    assert_eq!(ca.status, StatusCode::OK);
    assert!(ca.text().starts_with("-----BEGIN CERTIFICATE-----"));
    let page = app.call(Method::GET, "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("<title>Mistborn</title>"));
}

/// Hundreds of concurrent wrong codes through the API: at most the limit (5) are answered 401, every
/// other one 429 with Retry-After (the throttle reserves an attempt before the code is checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_get_at_most_the_limit_of_401s() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let bob = app.regular_user("bob").await;
    let r = app
        .post(
            "/api/v1/profiles",
            &bob,
            json!({"name": "phone", "kind": "mfa"}),
        )
        .await;
    let phone: IpAddr = r.json()["address_v4"].as_str().unwrap().parse().unwrap();
    let e = app.post("/api/v1/auth/totp/enroll", &bob, json!({})).await;
    let secret = TotpSecret::from_base32(e.json()["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(now()).unwrap();
    let c = app
        .post("/api/v1/auth/totp/confirm", &bob, json!({"code": code}))
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = from(
                    &app,
                    Tcp(phone),
                    Method::POST,
                    "/api/v1/auth/login",
                    Some(json!({"code": "999999"})),
                    &[],
                )
                .await;
                (r.status, r.headers.contains_key(header::RETRY_AFTER))
            })
        })
        .collect();
    let (mut unauthorized, mut throttled) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => unauthorized += 1,
            (StatusCode::TOO_MANY_REQUESTS, true) => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        (1..=5).contains(&unauthorized),
        "{unauthorized} wrong codes were judged (limit 5)"
    );
    assert_eq!(unauthorized + throttled, 200);
}

/// The hole of issue 11: a local process naming the admin's default profile in `X-Forwarded-For`.
#[tokio::test]
async fn a_forwarded_address_over_tcp_is_nobody() {
    let app = TestApp::new().await;
    let admin_profile: IpAddr = "10.15.91.2".parse().unwrap();
    let header = [("x-forwarded-for", "10.15.91.2")];
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let me = from(
        &app,
        Tcp(loopback),
        Method::GET,
        "/api/v1/me",
        None,
        &header,
    )
    .await;
    me.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let mint = from(
        &app,
        Tcp(loopback),
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"label": "stolen"})),
        &header,
    )
    .await;
    mint.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let who = from(
        &app,
        Tcp(loopback),
        Method::GET,
        "/api/v1/auth/whoami",
        None,
        &header,
    )
    .await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.json()["username"], json!(null), "{}", who.text());
    assert_eq!(who.json()["address"], json!(null), "{}", who.text());

    // The same address proven (over the proxy's socket, or as the TCP peer on the tunnel side) is
    // the admin's device.
    for via in [Proxy(admin_profile), Tcp(admin_profile)] {
        let me = from(&app, via, Method::GET, "/api/v1/me", None, &[]).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        assert_eq!(me.json()["role"], "superuser");
        let who = from(&app, via, Method::GET, "/api/v1/auth/whoami", None, &[]).await;
        assert_eq!(who.json()["username"], "admin", "{}", who.text());
    }
}

/// Before the second factor a device acts only for its own user: a superuser's MFA phone without a
/// session (stolen, say) cannot read or enroll another user's second factor, only its owner's.
#[tokio::test]
async fn a_first_factor_only_device_acts_only_for_its_own_user() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let r = app
        .post(
            "/api/v1/profiles",
            &app.admin,
            json!({"name": "admin-phone", "kind": "mfa"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let phone = Tcp(r.json()["address_v4"].as_str().unwrap().parse().unwrap());

    let enroll_bob = from(
        &app,
        phone,
        Method::POST,
        "/api/v1/auth/totp/enroll",
        Some(json!({"user": "bob"})),
        &[],
    )
    .await;
    assert!(
        matches!(
            enroll_bob.status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "enrolled bob from admin's unverified phone: {} {}",
        enroll_bob.status,
        enroll_bob.text()
    );
    let status_bob = from(
        &app,
        phone,
        Method::GET,
        "/api/v1/auth/totp?user=bob",
        None,
        &[],
    )
    .await;
    assert!(
        matches!(
            status_bob.status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{} {}",
        status_bob.status,
        status_bob.text()
    );
    let bob_status = app.get("/api/v1/auth/totp", &bob).await;
    assert_eq!(
        bob_status.json()["enrolled"],
        false,
        "{}",
        bob_status.text()
    );

    // Its own user: allowed (the tunnel is the first factor).
    let own = from(
        &app,
        phone,
        Method::POST,
        "/api/v1/auth/totp/enroll",
        Some(json!({"user": "admin"})),
        &[],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
}

/// Ambient identity (the tunnel address, no token) changes nothing for a page of another site:
/// POST/PUT/PATCH/DELETE need the Origin of a page Mistborn served; a token is not ambient.
#[tokio::test]
async fn ambient_requests_need_a_page_mistborn_served() {
    let app = TestApp::new().await;
    let admin_phone = Tcp("10.15.91.2".parse().unwrap());
    let profiles = app.get("/api/v1/profiles", &app.admin).await;
    let id = profiles.json()[0]["id"].as_str().unwrap().to_string();
    let rename = json!({"name": "renamed"});
    let uri = format!("/api/v1/profiles/{id}");
    for origin in [
        "https://evil.example",
        "null",
        "https://home.mistborn.evil.example",
    ] {
        let r = from(
            &app,
            admin_phone,
            Method::PATCH,
            &uri,
            Some(rename.clone()),
            &[("origin", origin)],
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN, "foreign_origin");
        let r = from(
            &app,
            admin_phone,
            Method::POST,
            "/api/v1/auth/logout",
            None,
            &[("origin", origin)],
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN, "foreign_origin");
    }
    // No Origin at all: a program, which must use a token for changes.
    let mut req = Request::builder()
        .method(Method::DELETE)
        .uri(&uri)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "10.15.91.2".parse().unwrap(),
        40000,
    )));
    app.request(req)
        .await
        .assert_error(StatusCode::FORBIDDEN, "foreign_origin");
    assert_eq!(
        app.get(&uri, &app.admin).await.json()["name"],
        "default",
        "nothing changed"
    );
    // Reads stay open to the device; the sign-in page and the API's own origin may change things.
    let me = from(
        &app,
        admin_phone,
        Method::GET,
        "/api/v1/me",
        None,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let r = from(
        &app,
        admin_phone,
        Method::PATCH,
        &uri,
        Some(rename.clone()),
        &[("origin", "https://home.mistborn")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = from(
        &app,
        admin_phone,
        Method::PATCH,
        &uri,
        Some(json!({"name": "again"})),
        &[
            ("origin", "http://10.15.91.1:5000"),
            ("host", "10.15.91.1:5000"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A bearer token is not ambient: no Origin rule.
    let mut req = Request::builder()
        .method(Method::PATCH)
        .uri(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", app.admin))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "by-token"}).to_string()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "10.15.91.2".parse().unwrap(),
        40000,
    )));
    let r = app.request(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
