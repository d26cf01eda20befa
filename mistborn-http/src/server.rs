//! The router with its middleware, and serving it on a listener until shutdown.

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
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
        .route("/", axum::routing::get(crate::ui::index))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::map_response(log_internal_errors))
        .with_state(state)
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
