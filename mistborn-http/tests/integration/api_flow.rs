//! The done-when flow through HTTP, and the happy paths of every endpoint.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn admin_sets_up_a_user_who_sees_only_their_profiles() {
    let app = TestApp::new().await;
    let admin = app.admin.clone();

    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "bob", "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["role"], "regular");

    let r = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "bob-phone", "user": "bob"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bob = r.json()["secret"].as_str().unwrap().to_string();

    let mut bobs = Vec::new();
    for body in [
        json!({"name": "phone", "user": "bob"}),
        json!({"name": "laptop", "user": "bob", "kind": "mfa", "listen_port": "udp443", "client_to_client": true}),
    ] {
        let r = app.post("/api/v1/profiles", &admin, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["username"], "bob");
        bobs.push(r.json()["id"].as_str().unwrap().to_string());
    }

    // Bob sees exactly his two profiles.
    let r = app.get("/api/v1/profiles", &bob).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    bobs.sort();
    assert_eq!(ids, bobs);
    let laptop = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "laptop")
        .cloned()
        .unwrap();
    assert_eq!(laptop["kind"], "mfa");
    assert_eq!(laptop["listen_port"], "udp443");
    assert_eq!(laptop["client_to_client"], true);

    // Admin's profile does not exist as far as Bob can tell.
    let theirs = app.admin_default_profile().await;
    for suffix in ["", "/config", "/qr.png"] {
        app.get(&format!("/api/v1/profiles/{theirs}{suffix}"), &bob)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    app.call(
        Method::DELETE,
        &format!("/api/v1/profiles/{theirs}"),
        Some(&bob),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.call(
        Method::PATCH,
        &format!("/api/v1/profiles/{theirs}"),
        Some(&bob),
        Some(json!({"name": "mine now"})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/api/v1/profiles?user=admin", &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    // ... and is untouched.
    assert_eq!(
        app.get(&format!("/api/v1/profiles/{theirs}"), &admin)
            .await
            .json()["name"],
        "default"
    );

    // Bob cannot manage users.
    app.get("/api/v1/users", &bob)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.post(
        "/api/v1/users",
        &bob,
        json!({"username": "mallory", "password": "12345678", "role": "superuser"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.call(
        Method::PUT,
        "/api/v1/users/bob/role",
        Some(&bob),
        Some(json!({"role": "superuser"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.call(Method::DELETE, "/api/v1/users/admin", Some(&bob), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Nor create profiles for others.
    app.post(
        "/api/v1/profiles",
        &bob,
        json!({"name": "x", "user": "admin"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // A superuser sees everyone's.
    let all = app.get("/api/v1/profiles", &admin).await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn profiles_crud_config_and_qr() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;

    // Owner defaults to the caller.
    let r = app
        .post("/api/v1/profiles", &bob, json!({"name": "tablet"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p = r.json();
    assert_eq!(p["username"], "bob");
    assert_eq!(
        p["kind"], "mfa",
        "a regular user's profile is MFA unless a superuser decides"
    );
    assert_eq!(p["listen_port"], "default");
    assert_eq!(p["server_generated_key"], true);
    let id = p["id"].as_str().unwrap().to_string();

    let r = app.get(&format!("/api/v1/profiles/{id}"), &bob).await;
    assert_eq!(r.json(), p);

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/profiles/{id}"),
            Some(&bob),
            Some(json!({"name": "old tablet", "client_to_client": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["name"], "old tablet");
    assert_eq!(r.json()["client_to_client"], true);
    assert_eq!(r.json()["kind"], "mfa", "untouched fields stay");
    // The host-wide UDP 53/443 redirects and WireGuard-only profiles are superuser decisions.
    for (field, body) in [
        ("listen_port", json!({"listen_port": "udp53"})),
        ("kind", json!({"kind": "wireguard"})),
    ] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/profiles/{id}"),
                Some(&bob),
                Some(body),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN, "forbidden");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/profiles/{id}"),
            Some(&app.admin),
            Some(json!({"listen_port": "udp53"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let r = app
        .get(&format!("/api/v1/profiles/{id}/config"), &bob)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let conf = r.text();
    assert!(
        conf.contains("[Interface]") && conf.contains("[Peer]"),
        "{conf}"
    );
    assert!(
        conf.contains(&format!(
            "Address = {}/32",
            p["address_v4"].as_str().unwrap()
        )),
        "{conf}"
    );
    assert!(conf.contains("Endpoint = vpn.example.org:53"), "{conf}");
    assert!(
        conf.contains(&format!("PublicKey = {}", app.m.server_public_key())),
        "{conf}"
    );

    let r = app
        .get(&format!("/api/v1/profiles/{id}/qr.png"), &bob)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(&r.body[..8], b"\x89PNG\r\n\x1a\n");
    assert!(r.body.len() > 200);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/profiles/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/profiles/{id}"), &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn device_enrolls_with_its_own_public_key() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let device = mistborn_core::crypto::KeyPair::generate();
    let r = app
        .post(
            "/api/v1/profiles",
            &bob,
            json!({"name": "own-keys", "public_key": device.public.to_base64()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["public_key"], device.public.to_base64());
    assert_eq!(r.json()["server_generated_key"], false);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let conf = app
        .get(&format!("/api/v1/profiles/{id}/config"), &bob)
        .await
        .text();
    assert!(!conf.contains(&device.private.to_base64()));
    assert!(
        conf.contains("PrivateKey = <"),
        "placeholder expected: {conf}"
    );

    // The same key cannot be enrolled twice.
    app.post(
        "/api/v1/profiles",
        &bob,
        json!({"name": "copy", "public_key": device.public.to_base64()}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn users_me_roles_passwords_and_deletion() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;

    let me = app.get("/api/v1/me", &bob).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["username"], "bob");
    let bob_id = me.json()["id"].as_str().unwrap().to_string();

    // By name and by id; a regular user sees only themselves.
    assert_eq!(
        app.get("/api/v1/users/bob", &app.admin).await.json()["id"],
        bob_id.as_str()
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{bob_id}"), &bob)
            .await
            .json()["username"],
        "bob"
    );
    app.get("/api/v1/users/admin", &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    let users = app.get("/api/v1/users", &app.admin).await.json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"bob"),
        "{names:?}"
    );

    // Own password: yes; too short: 400.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/users/bob/password",
            Some(&bob),
            Some(json!({"password": "a new passphrase"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    app.m
        .users()
        .check_password(&mistborn_core::Actor::System, "bob", "a new passphrase")
        .await
        .unwrap();
    app.call(
        Method::PUT,
        "/api/v1/users/bob/password",
        Some(&bob),
        Some(json!({"password": "short"})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");

    // Promote, then bob may list users.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/users/bob/role",
            Some(&app.admin),
            Some(json!({"role": "superuser"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["role"], "superuser");
    let bob2 = app
        .post(
            "/api/v1/tokens",
            &app.admin,
            json!({"name": "t2", "user": "bob"}),
        )
        .await
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/users", &bob2).await.status, StatusCode::OK);

    // Deleting a user removes their profiles and tokens.
    app.post(
        "/api/v1/profiles",
        &app.admin,
        json!({"name": "p", "user": "bob"}),
    )
    .await;
    let r = app
        .call(Method::DELETE, "/api/v1/users/bob", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let left = app.get("/api/v1/profiles", &app.admin).await.json();
    assert!(
        left.as_array()
            .unwrap()
            .iter()
            .all(|p| p["username"] != "bob"),
        "{left}"
    );
    app.get("/api/v1/me", &bob2)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    // The last superuser stays.
    app.call(
        Method::DELETE,
        "/api/v1/users/admin",
        Some(&app.admin),
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn tokens_list_create_revoke() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;

    let r = app
        .post("/api/v1/tokens", &bob, json!({"name": "laptop"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    let second = created["secret"].as_str().unwrap().to_string();
    assert_ne!(second, bob);

    let list = app.get("/api/v1/tokens", &bob).await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(
        list.to_string().find(&second).is_none(),
        "secrets are never listed"
    );

    // Admin can list bob's; bob cannot list admin's.
    assert_eq!(
        app.get("/api/v1/tokens?user=bob", &app.admin)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.get("/api/v1/tokens?user=admin", &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Bob cannot revoke admin's token, can revoke his own.
    let admin_tokens = app.get("/api/v1/tokens", &app.admin).await.json();
    let admin_token_id = admin_tokens[0]["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{admin_token_id}"),
        Some(&bob),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let id = created["token"]["id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/me", &second)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(app.get("/api/v1/me", &bob).await.status, StatusCode::OK);
}

#[tokio::test]
async fn enroll_answers_everything_but_the_private_key() {
    let app = TestApp::new().await;
    let bob = app.regular_user("bob").await;
    let device = mistborn_core::crypto::KeyPair::generate();
    let r = app
        .post(
            "/api/v1/profiles/enroll",
            &bob,
            json!({"name": "phone", "public_key": device.public.to_base64(), "listen_port": "udp53"}),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(r.text().contains("listen_port"), "{}", r.text());
    let r = app
        .post(
            "/api/v1/profiles/enroll",
            &app.admin,
            json!({"name": "phone", "user": "bob", "public_key": device.public.to_base64(), "listen_port": "udp53"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let a = r.json();
    assert_eq!(a["public_key"], device.public.to_base64());
    assert_eq!(
        a["server_public_key"],
        app.m.server_public_key().to_base64()
    );
    assert_eq!(a["endpoint_port"], 53);
    assert_eq!(a["dns"].as_array().unwrap().len(), 2);
    assert!(!r.text().contains(&device.private.to_base64()));
    let id = a["profile_id"].as_str().unwrap();
    let p = app
        .get(&format!("/api/v1/profiles/{id}"), &bob)
        .await
        .json();
    assert_eq!(p["address_v4"], a["address_v4"]);
    assert_eq!(p["server_generated_key"], false);

    app.post(
        "/api/v1/profiles/enroll",
        &bob,
        json!({"name": "tablet", "public_key": "nope"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    app.post("/api/v1/profiles/enroll", &bob, json!({"name": "tablet"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
}
