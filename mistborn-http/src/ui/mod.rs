//! The web UI at `/`: one embedded page where a device on the tunnel sets up its second factor,
//! signs in and signs out. It uses only the public REST API. Its script and style are served as
//! files under `/ui/` so the page's Content-Security-Policy can forbid inline code.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The page's Content-Security-Policy: only this origin's files, no inline code, never framed.
/// Images may also be `data:` URLs (the TOTP QR code arrives as base64 in the API response).
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `/` and the files it loads.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| file("text/html; charset=utf-8", INDEX)))
        .route(
            "/ui/app.js",
            get(|| file("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/ui/app.css",
            get(|| file("text/css; charset=utf-8", STYLE)),
        )
}

async fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}
