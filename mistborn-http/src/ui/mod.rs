//! The web UI at `/`: one embedded page where a device on the tunnel sets up its second factor,
//! signs in and signs out. It uses only the public REST API.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("index.html");

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX,
    )
}
