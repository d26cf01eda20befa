//! The one error type of the HTTP frontend: core errors and malformed requests, mapped to a status
//! code in one place ([`ApiError::status`]) and rendered as `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mistborn_core::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A core rule said no, or the core failed.
    #[error(transparent)]
    Core(#[from] mistborn_core::Error),
    /// The HTTP request itself is malformed (body, content type, path, query, route).
    #[error("{message}")]
    Request {
        /// The broad class, mapped to the status like core errors.
        kind: ErrorKind,
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Refused by HTTP itself before any rule ran: a method the route does not have (405), a body
    /// over the size limit (413). These have no core counterpart, so they carry their status.
    #[error("{message}")]
    Http {
        /// The 4xx status.
        status: StatusCode,
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A part of the server the request needs is not running (e.g. the firewall without root).
    #[error("{message}")]
    Unavailable {
        /// Stable machine-readable code.
        code: &'static str,
        /// What is off and why.
        message: String,
    },
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error: a stable code for programs and a message for people.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`, `invalid_input`, `pool_exhausted`, `invalid_json`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Put on error responses so [`crate::log_internal_errors`] can log server faults once, outside
/// the response path.
#[derive(Debug, Clone)]
pub struct InternalFault(pub Arc<String>);

impl ApiError {
    fn request(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Request {
            kind,
            code,
            message: message.into(),
        }
    }

    /// No route matches the path.
    pub fn no_route(path: &str) -> Self {
        Self::request(
            ErrorKind::NotFound,
            "not_found",
            format!("no API endpoint at {path}"),
        )
    }

    /// The route exists but not with this method (the router adds the `Allow` header).
    pub fn method_not_allowed() -> Self {
        ApiError::Http {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "this endpoint does not accept that HTTP method; the Allow header lists those it does".into(),
        }
    }

    /// The request body is larger than `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::Http {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: format!("the request body is larger than the limit of {limit} bytes"),
        }
    }

    /// No or a malformed `Authorization` header.
    pub fn missing_token() -> Self {
        Self::request(
            ErrorKind::Unauthenticated,
            "unauthenticated",
            "send an API token as 'Authorization: Bearer <token>'",
        )
    }

    /// A browser page from another site tried to use the caller's ambient identity.
    pub fn foreign_origin() -> Self {
        Self::request(
            ErrorKind::Forbidden,
            "foreign_origin",
            "this request's Origin is not a page Mistborn served",
        )
    }

    /// The WebSocket endpoint got a request that is not a WebSocket upgrade.
    pub fn not_websocket(r: WebSocketUpgradeRejection) -> Self {
        Self::request(
            ErrorKind::InvalidInput,
            "websocket_required",
            format!("open this endpoint as a WebSocket: {}", r.body_text()),
        )
    }

    /// A part of the server is off; `message` says which and why.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unavailable {
            code,
            message: message.into(),
        }
    }

    /// The broad class (a part that is off counts as internal: nothing the caller can fix).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Core(e) => e.kind(),
            ApiError::Request { kind, .. } => *kind,
            ApiError::Http { .. } => ErrorKind::InvalidInput,
            ApiError::Unavailable { .. } => ErrorKind::Internal,
        }
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Core(e) => e.code(),
            ApiError::Request { code, .. }
            | ApiError::Http { code, .. }
            | ApiError::Unavailable { code, .. } => code,
        }
    }

    /// The HTTP status: the one place where error kinds become status codes.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unavailable { .. } => return StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Http { status, .. } => return *status,
            _ => {}
        }
        match self.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body clients see; internal details stay in the log.
    pub fn body(&self) -> ErrorBody {
        let message = if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            "internal server error; the details are in the server log".to_string()
        } else {
            self.to_string()
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::Core(mistborn_core::Error::Throttled { retry_after_secs }) = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            response
                .extensions_mut()
                .insert(InternalFault(Arc::new(self.to_string())));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::body_too_large(crate::server::JSON_BODY_LIMIT);
        }
        let code = match r {
            JsonRejection::MissingJsonContentType(_) => "unsupported_content_type",
            JsonRejection::BytesRejection(_) => "unreadable_body",
            _ => "invalid_json",
        };
        Self::request(ErrorKind::InvalidInput, code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::request(ErrorKind::InvalidInput, "invalid_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::request(ErrorKind::InvalidInput, "invalid_query", r.body_text())
    }
}
