//! The REST API under `/api/v1`: routes and their OpenAPI description, built together from the
//! handlers' `#[utoipa::path]` annotations so the spec cannot drift from the router.

mod auth;
mod common_responses;
mod dns;
mod firewall;
mod profiles;
mod status;
mod tokens;
mod upload;
mod users;

use axum::Router;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi as Spec;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mistborn",
        description = "REST API of Mistborn, the self-hosted private-cloud gateway: users, API tokens and WireGuard profiles. Authenticate with `Authorization: Bearer <API token>`. Every error is JSON `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later"),
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "users", description = "User accounts"),
        (name = "tokens", description = "API tokens"),
        (name = "profiles", description = "WireGuard profiles (one per device)"),
        (name = "dns", description = "DNS filtering: block lists, rules, query log, statistics"),
        (name = "firewall", description = "nftables firewall: the policy in force, probe metrics, Coppercloud IP lists"),
        (name = "status", description = "Live data plane and tunnel status"),
        (name = "auth", description = "Second factor, sign-in from the tunnel, sessions, the local CA"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the handlers refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Spec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("Mistborn API token")
                    .description(Some(
                        "An API token from `POST /api/v1/tokens` or `mistborn token add`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI description of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], spec_json()).into_response()
}

fn parts() -> (Router<AppState>, Spec) {
    let v1 = OpenApiRouter::new()
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(profiles::routes())
        .merge(dns::routes())
        .merge(firewall::routes())
        .merge(status::routes())
        .merge(auth::routes())
        .routes(utoipa_axum::routes!(openapi_json));
    let (router, mut spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(API_PREFIX, v1)
        .split_for_parts();
    common_responses::declare(&mut spec);
    (router, spec)
}

/// The OpenAPI document.
pub fn spec() -> Spec {
    parts().1
}

/// The OpenAPI document as pretty JSON with a final newline, exactly as `openapi/openapi.json`
/// is committed.
pub fn spec_json() -> String {
    // Serializing a value built from plain maps and strings cannot fail.
    let mut s = serde_json::to_string_pretty(&spec()).unwrap_or_default();
    s.push('\n');
    s
}

/// The API routes without state, for [`crate::router`].
pub(crate) fn routes() -> Router<AppState> {
    parts()
        .0
        .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
}
