//! Responses that come from the HTTP layer rather than from an operation's own rules, declared on
//! every operation they can reach, in one place next to where they arise: the token check (401 on
//! every operation that takes a bearer token), the path and query extractors (400 for a malformed
//! parameter or an unknown query parameter) and the body extractor (400 for a malformed body, 413
//! over [`crate::JSON_BODY_LIMIT`]). The operations' own annotations declare the rest.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi as Spec, Ref, RefOr, ResponseBuilder};

/// Adds the HTTP-layer responses to every operation of `spec` that can get them (an operation's
/// own description of a status, when it has one, is kept).
pub(super) fn declare(spec: &mut Spec) {
    for item in spec.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            declare_on(op);
        }
    }
}

fn declare_on(op: &mut Operation) {
    let bearer = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if bearer {
        add(op, "401", "No or bad token (`unauthenticated`)");
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        add(
            op,
            "400",
            "A malformed path or query parameter, or an unknown query parameter (`invalid_path`, `invalid_query`, `invalid_input`)",
        );
    }
    if op.request_body.is_some() {
        add(
            op,
            "400",
            "A malformed body, wrong content type or a value the rules refuse (`invalid_json`, `unsupported_content_type`, `invalid_input`)",
        );
        add(
            op,
            "413",
            "The body is larger than the limit the message names (`body_too_large`)",
        );
    }
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        });
}
