//! The router with its middleware, and serving it on a listener until shutdown.

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use tokio::net::TcpListener;

use crate::error::InternalFault;
use crate::state::AppState;

/// The largest request body a JSON operation reads, bytes; a larger one gets 413 naming it. A route
/// that takes bigger uploads sets its own `DefaultBodyLimit` (the innermost layer wins).
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The whole HTTP app over `state`. Tests drive it with `tower::ServiceExt::oneshot`, no port needed.
pub fn router(state: AppState) -> Router {
    crate::api::routes()
        .route("/auth/forward", axum::routing::any(crate::forward::forward))
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::map_response(log_internal_errors))
        .with_state(state)
}

/// Headers that keep browsers from misusing responses: no content sniffing, no framing (against
/// clickjacking the sign-in page), and a Content-Security-Policy: the page's own for HTML, nothing
/// at all for everything else (API JSON is never a document that should load anything).
async fn security_headers(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let csp = if html {
        crate::ui::PAGE_CSP
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    response
}

/// Logs server faults once; clients only see that something failed inside.
async fn log_internal_errors(mut response: Response) -> Response {
    if let Some(InternalFault(message)) = response.extensions_mut().remove::<InternalFault>() {
        tracing::error!(status = %response.status(), "request failed: {message}");
    }
    response
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection info lets requests be attributed to tunnel addresses (web identity, forward-auth).
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
