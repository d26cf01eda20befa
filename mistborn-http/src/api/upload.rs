//! Raw request bodies for list uploads (DNS and Coppercloud): streamed under the configured cap
//! (`download.max_bytes`, default 64 MiB) instead of the 2 MB JSON limit, and refused with 413 as
//! soon as the announced length or the bytes read pass it.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Reads `body` as UTF-8 text of at most `limit` bytes.
pub(crate) async fn read_text(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<String, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    if announced.is_some_and(|n| n > limit) {
        return Err(ApiError::body_too_large(cap));
    }
    let mut out = Vec::with_capacity(
        announced
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(cap),
    );
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            mistborn_core::Error::invalid("content", format!("could not read the body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cap {
                return Err(ApiError::body_too_large(cap));
            }
            out.extend_from_slice(&data);
        }
    }
    String::from_utf8(out)
        .map_err(|_| mistborn_core::Error::invalid("content", "the list is not UTF-8 text").into())
}
