//! Browser-facing protections: the page cannot be framed and runs no inline code, every response
//! forbids content sniffing.

use axum::http::{Method, StatusCode, header};

use crate::support::TestApp;

#[tokio::test]
async fn the_page_cannot_be_framed_and_loads_only_its_own_files() {
    let app = TestApp::new().await;
    let page = app.call(Method::GET, "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'self'"), "{csp}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // With no 'unsafe-inline', inline code would not run: the page must not have any.
    let html = page.text();
    assert!(!html.contains("<style"), "inline style in the page");
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        assert!(tag.contains("src=\"/"), "inline script: {tag}");
        assert!(html[i..].starts_with(&format!("{tag}></script>")), "{tag}");
    }
    assert!(!html.contains(" onclick=") && !html.contains(" onsubmit="));
    // The files it loads are served from this origin with their types.
    for (path, ty) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        assert!(html.contains(&format!("\"{path}\"")), "{path} not loaded");
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ty)
        );
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!r.body.is_empty());
    }
}

#[tokio::test]
async fn api_responses_forbid_sniffing_and_framing() {
    let app = TestApp::new().await;
    let ok = app.get("/api/v1/me", &app.admin).await;
    let unauthenticated = app.call(Method::GET, "/api/v1/me", None, None).await;
    let missing = app.get("/api/v1/nothing-here", &app.admin).await;
    let spec = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    for r in [ok, unauthenticated, missing, spec] {
        assert_eq!(
            r.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{}",
            r.status
        );
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY", "{}", r.status);
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}
