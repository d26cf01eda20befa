//! `/firewall/...`: the policy in force, probe metrics (live and over time) and the Coppercloud
//! IP lists. Everything needs a superuser (the core decides). The live parts come from the
//! firewall the server runs; when it is off they answer 503 `firewall_off` with the reason.
//! Client-to-client is a profile setting: `PATCH /profiles/{id}` with `client_to_client`
//! reaches the firewall through the core's change events.

use axum::extract::State;
use axum::http::StatusCode;
use mistborn_core::firewall::FirewallHandle;
use mistborn_core::{Actor, Error};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use crate::model::{
    CopperListView, CopperRefreshView, CreateCopperList, FirewallMetricsView, FirewallPolicy,
    FirewallStatusView, MetricsHistoryView, UpdateCopperList,
};
use crate::state::{AppState, now};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(policy))
        .routes(routes!(metrics))
        .routes(routes!(metrics_history))
        .routes(routes!(list_lists, add_list))
        .routes(routes!(get_list, update_list, delete_list))
        .routes(routes!(refresh_list))
        .routes(routes!(put_list_content))
}

const NOT_RUN: &str =
    "the firewall is not run by this server (it is off when wireguard.backend is 'none')";

/// How many entries per ranking.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Entries per ranking, 1-1000 (default 10).
    #[serde(default)]
    pub top: Option<usize>,
}

/// Which window of the history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// From this time (Unix seconds; default: the last 24 hours).
    #[serde(default)]
    pub since: Option<i64>,
    /// Bucket width in seconds (default 3600).
    #[serde(default)]
    pub bucket: Option<i64>,
    /// Entries per ranking, 1-1000 (default 10).
    #[serde(default)]
    pub top: Option<usize>,
}

fn top(n: Option<usize>) -> Result<usize, ApiError> {
    match n.unwrap_or(10) {
        n @ 1..=1000 => Ok(n),
        n => Err(Error::invalid("top", format!("{n} is not 1 to 1000")).into()),
    }
}

fn require_admin(actor: &Actor) -> Result<(), ApiError> {
    Ok(actor.require_superuser("viewing the firewall")?)
}

/// The running firewall when its table is in force, else 503 with the reason.
fn running(s: &AppState) -> Result<&FirewallHandle, ApiError> {
    let h = s
        .firewall
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("firewall_off", NOT_RUN))?;
    let st = h.status();
    if !st.on {
        return Err(ApiError::unavailable(
            "firewall_off",
            format!(
                "the firewall is off: {}",
                st.reason.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    Ok(h)
}

/// Whether the firewall is in force (and why not), and the policy applied.
#[utoipa::path(get, path = "/firewall/policy", tag = "firewall",
    responses(
        (status = 200, body = FirewallPolicy),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn policy(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<FirewallPolicy>, ApiError> {
    require_admin(&actor)?;
    Ok(Json(match &s.firewall {
        Some(h) => FirewallPolicy {
            status: h.status().into(),
            policy: h.view().await.map(Into::into),
        },
        None => FirewallPolicy {
            status: FirewallStatusView {
                on: false,
                reason: Some(NOT_RUN.into()),
                external_interface: None,
                full_applies: 0,
                element_updates: 0,
                last_full_apply_ms: None,
                forwarding: None,
            },
            policy: None,
        },
    }))
}

/// Unsolicited packets dropped since the table was last applied: top probed ports, top
/// sources, the busiest (source, port) pairs, and Coppercloud hits per list.
#[utoipa::path(get, path = "/firewall/metrics", tag = "firewall",
    params(MetricsParams),
    responses(
        (status = 200, body = FirewallMetricsView),
        (status = 400, description = "Bad `top`", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 503, description = "The firewall is off (`firewall_off`, with the reason)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn metrics(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(p): Query<MetricsParams>,
) -> Result<Json<FirewallMetricsView>, ApiError> {
    require_admin(&actor)?;
    let n = top(p.top)?;
    let m = running(&s)?.metrics(n).await?;
    Ok(Json(FirewallMetricsView::of(m, n)))
}

/// Probes and Coppercloud hits over time, sampled from the firewall's counters every minute:
/// packets per bucket and the top ports and sources over the window. Works while the firewall is
/// off (it reads the stored samples).
#[utoipa::path(get, path = "/firewall/metrics/history", tag = "firewall",
    params(HistoryParams),
    responses(
        (status = 200, body = MetricsHistoryView),
        (status = 400, description = "Bad `bucket` or `top`", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn metrics_history(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(p): Query<HistoryParams>,
) -> Result<Json<MetricsHistoryView>, ApiError> {
    let n = top(p.top)?;
    let h = s
        .mistborn
        .firewall()
        .metrics_history(
            &actor,
            p.since.unwrap_or(now() - 86_400),
            p.bucket.unwrap_or(3600),
            n,
        )
        .await?;
    Ok(Json(h.into()))
}

/// Every Coppercloud list.
#[utoipa::path(get, path = "/firewall/lists", tag = "firewall",
    responses(
        (status = 200, body = Vec<CopperListView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_lists(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<CopperListView>>, ApiError> {
    let lists = s.mistborn.firewall().lists(&actor).await?;
    Ok(Json(lists.into_iter().map(Into::into).collect()))
}

/// Adds a list from `content` (an upload) or `url` (downloaded now). A malformed line (its
/// number is in the message), a failed download or an empty list adds nothing.
#[utoipa::path(post, path = "/firewall/lists", tag = "firewall",
    request_body = CreateCopperList,
    responses(
        (status = 201, body = CopperListView),
        (status = 400, description = "Bad name, URL or line, or a failed download", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 409, description = "A list of that name exists", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn add_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<CreateCopperList>,
) -> Result<(StatusCode, Json<CopperListView>), ApiError> {
    let list = s
        .mistborn
        .firewall()
        .add_list(&actor, body.into(), now())
        .await?;
    Ok((StatusCode::CREATED, Json(list.into())))
}

/// Uploads a list as the raw request body (not JSON; one address, CIDR or range a line, up to
/// `download.max_bytes`, default 64 MiB): adds a block list of that name, or replaces the content
/// of the list of that name. A malformed line changes nothing.
#[utoipa::path(put, path = "/firewall/lists/{list}/content", tag = "firewall",
    params(("list" = String, Path, description = "List name (1-64 letters, digits, space, '-', '_', '.')")),
    request_body(content = String, content_type = "text/plain", description = "The list text"),
    responses(
        (status = 200, description = "The content of the list was replaced", body = CopperListView),
        (status = 201, description = "The list was added (block mode)", body = CopperListView),
        (status = 400, description = "Bad name, not UTF-8 text, or a malformed line", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 413, description = "Larger than download.max_bytes", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn put_list_content(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<CopperListView>), ApiError> {
    let fw = s.mistborn.firewall();
    // Rights first (listing needs the same right): nobody makes the server read 64 MB to be
    // told no.
    fw.lists(&actor).await?;
    let limit = s.mistborn.config().download.max_bytes;
    let content = super::upload::read_text(&headers, body, limit).await?;
    match fw.list(&actor, &list).await {
        Ok(existing) => {
            let update = mistborn_core::firewall::ListUpdate {
                content: Some(content),
                ..Default::default()
            };
            let l = fw.update_list(&actor, &existing.id, update, now()).await?;
            Ok((StatusCode::OK, Json(l.into())))
        }
        Err(e) if e.kind() == mistborn_core::ErrorKind::NotFound => {
            let new = mistborn_core::firewall::NewList {
                name: list,
                content: Some(content),
                ..Default::default()
            };
            let l = fw.add_list(&actor, new, now()).await?;
            Ok((StatusCode::CREATED, Json(l.into())))
        }
        Err(e) => Err(e.into()),
    }
}

/// One list by id or name.
#[utoipa::path(get, path = "/firewall/lists/{list}", tag = "firewall",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 200, body = CopperListView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<Json<CopperListView>, ApiError> {
    Ok(Json(
        s.mistborn.firewall().list(&actor, &list).await?.into(),
    ))
}

/// Changes name, mode, enabled, URL (downloaded now) or content; the firewall follows. Bad input
/// changes nothing.
#[utoipa::path(patch, path = "/firewall/lists/{list}", tag = "firewall",
    params(("list" = String, Path, description = "List id or name")),
    request_body = UpdateCopperList,
    responses(
        (status = 200, body = CopperListView),
        (status = 400, description = "Bad name, URL or line, or a failed download", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 409, description = "Another list has that name", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn update_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
    Json(body): Json<UpdateCopperList>,
) -> Result<Json<CopperListView>, ApiError> {
    let l = s
        .mistborn
        .firewall()
        .update_list(&actor, &list, body.into(), now())
        .await?;
    Ok(Json(l.into()))
}

/// Deletes a list; the firewall stops using it.
#[utoipa::path(delete, path = "/firewall/lists/{list}", tag = "firewall",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn delete_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.firewall().delete_list(&actor, &list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Downloads a URL list again. A failed or garbage download keeps the last good copy in force,
/// records why in `last_error`, and answers 400 with the reason (line numbers included).
#[utoipa::path(post, path = "/firewall/lists/{list}/refresh", tag = "firewall",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 200, body = CopperRefreshView),
        (status = 400, description = "An uploaded list, or the download failed or was refused", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn refresh_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<Json<CopperRefreshView>, ApiError> {
    let r = s
        .mistborn
        .firewall()
        .refresh_list(&actor, &list, now())
        .await?;
    Ok(Json(r.into()))
}
