//! `/dns/...`: block lists, the user's allow/deny rules, the query log and statistics. Lists,
//! rules and statistics need a superuser; a regular user reads the log of their own profiles (the
//! core decides). The wire types mirror `mistborn_core::dns` with OpenAPI schemas.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mistborn_core::dns::{
    Bucket, Count, DnsList, DnsRule, DnsStats, LineError, ListRefresh, LogFilter, LoggedQuery,
    RuleKind,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lists, add_list))
        .routes(routes!(get_list, update_list, delete_list))
        .routes(routes!(refresh_list))
        .routes(routes!(put_list_content))
        .routes(routes!(list_errors))
        .routes(routes!(list_rules, add_rule))
        .routes(routes!(delete_rule))
        .routes(routes!(query_log))
        .routes(routes!(stats))
}

/// A block list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DnsListView {
    /// Stable id.
    pub id: String,
    /// Unique name, shown as "blocked by" in the log.
    pub name: String,
    /// Download URL; absent for uploaded lists.
    pub url: Option<String>,
    /// Whether the list is part of the filter.
    pub enabled: bool,
    /// Entries in the last good copy.
    pub entries: i64,
    /// Line errors (invalid lines, unsupported rules) in the last good copy; the first 50 are at
    /// `/dns/lists/{list}/errors`.
    pub invalid_lines: i64,
    /// Lines that are rules but not DNS rules (cosmetic, scriptlet, path or browser-only
    /// rules): skipped.
    pub not_for_dns: i64,
    /// When the last good copy was stored (Unix seconds).
    pub updated_at: Option<i64>,
    /// When a download was last tried (Unix seconds).
    pub checked_at: Option<i64>,
    /// Why the last download was rejected; the last good copy stays in use.
    pub last_error: Option<String>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

impl From<DnsList> for DnsListView {
    fn from(l: DnsList) -> Self {
        Self {
            id: l.id,
            name: l.name,
            url: l.url,
            enabled: l.enabled,
            entries: l.entries,
            invalid_lines: l.invalid_lines,
            not_for_dns: l.not_for_dns,
            updated_at: l.updated_at,
            checked_at: l.checked_at,
            last_error: l.last_error,
            created_at: l.created_at,
        }
    }
}

/// A line of a list that is not an entry: invalid, or a rule this resolver does not support.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvalidLineView {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub reason: String,
    /// The line (cut to 200 characters).
    pub text: String,
}

impl From<LineError> for InvalidLineView {
    fn from(e: LineError) -> Self {
        Self {
            line: e.line,
            reason: e.reason,
            text: e.text,
        }
    }
}

/// The result of adding or refreshing a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListRefreshView {
    /// The list afterwards.
    pub list: DnsListView,
    /// Whether a new copy was stored.
    pub updated: bool,
    /// The first invalid lines of the new copy.
    pub invalid: Vec<InvalidLineView>,
}

impl From<ListRefresh> for ListRefreshView {
    fn from(r: ListRefresh) -> Self {
        Self {
            list: r.list.into(),
            updated: r.updated,
            invalid: r.invalid.into_iter().map(Into::into).collect(),
        }
    }
}

/// A new list: `url` to subscribe, or `content` to upload (exactly one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddList {
    /// Unique name.
    pub name: String,
    /// http(s) URL to download now and on the refresh schedule.
    #[serde(default)]
    pub url: Option<String>,
    /// The list text (hosts, plain domains or adblock syntax).
    #[serde(default)]
    pub content: Option<String>,
}

/// A change to a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateList {
    /// Turn the list on or off.
    pub enabled: bool,
}

/// Kind of a rule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleKindView {
    /// Never block the name or its subdomains.
    Allow,
    /// Block exactly the name.
    Deny,
    /// Block every subdomain of the name (`*.example.com`).
    Wildcard,
}

impl From<RuleKindView> for RuleKind {
    fn from(k: RuleKindView) -> Self {
        match k {
            RuleKindView::Allow => RuleKind::Allow,
            RuleKindView::Deny => RuleKind::Deny,
            RuleKindView::Wildcard => RuleKind::Wildcard,
        }
    }
}

impl From<RuleKind> for RuleKindView {
    fn from(k: RuleKind) -> Self {
        match k {
            RuleKind::Allow => RuleKindView::Allow,
            RuleKind::Deny => RuleKindView::Deny,
            RuleKind::Wildcard => RuleKindView::Wildcard,
        }
    }
}

/// A user rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DnsRuleView {
    /// Stable id.
    pub id: String,
    /// Allow, deny or wildcard deny.
    pub kind: RuleKindView,
    /// The domain (lowercase; punycode for Unicode names).
    pub name: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Why the rule deserves a second look, e.g. a deny rule for a public suffix.
    pub warning: Option<String>,
}

impl From<DnsRule> for DnsRuleView {
    fn from(r: DnsRule) -> Self {
        Self {
            id: r.id,
            kind: r.kind.into(),
            name: r.name,
            created_at: r.created_at,
            warning: r.warning,
        }
    }
}

/// A new rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRule {
    /// Allow, deny or wildcard deny.
    pub kind: RuleKindView,
    /// The domain (`*.` prefix allowed for wildcards).
    pub name: String,
}

/// A logged query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoggedQueryView {
    /// Arrival (Unix milliseconds).
    pub at_ms: i64,
    /// Client address.
    pub client: String,
    /// Profile id behind the address.
    pub peer_id: Option<String>,
    /// Profile name.
    pub peer_name: Option<String>,
    /// Owner's id.
    pub user_id: Option<String>,
    /// Owner's name.
    pub username: Option<String>,
    /// Name asked for.
    pub name: String,
    /// Record type.
    pub qtype: String,
    /// blocked, local, forwarded, failed, refused.
    pub outcome: String,
    /// List or rule that blocked it.
    pub blocked_by: Option<String>,
    /// Response code.
    pub rcode: String,
    /// Short answer text.
    pub answer: Option<String>,
    /// Microseconds to answer.
    pub latency_us: i64,
}

impl From<LoggedQuery> for LoggedQueryView {
    fn from(q: LoggedQuery) -> Self {
        Self {
            at_ms: q.at_ms,
            client: q.client,
            peer_id: q.peer_id,
            peer_name: q.peer_name,
            user_id: q.user_id,
            username: q.username,
            name: q.name,
            qtype: q.qtype,
            outcome: q.outcome,
            blocked_by: q.blocked_by,
            rcode: q.rcode,
            answer: q.answer,
            latency_us: q.latency_us,
        }
    }
}

/// Which log rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only rows at or after this time (Unix milliseconds).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Only this client address.
    #[serde(default)]
    pub client: Option<String>,
    /// Only this user (id or name); regular users always see only their own.
    #[serde(default)]
    pub user: Option<String>,
    /// Only blocked queries.
    #[serde(default)]
    pub blocked_only: bool,
    /// At most this many rows, newest first (default 100, at most 10,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A ranked key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CountView {
    /// Domain, or client ("user/profile" or the address).
    pub key: String,
    /// Queries.
    pub count: i64,
}

impl From<Count> for CountView {
    fn from(c: Count) -> Self {
        Self {
            key: c.key,
            count: c.count,
        }
    }
}

/// Queries in a time bucket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BucketView {
    /// Bucket start (Unix milliseconds).
    pub start_ms: i64,
    /// Queries.
    pub total: i64,
    /// Blocked queries.
    pub blocked: i64,
}

impl From<Bucket> for BucketView {
    fn from(b: Bucket) -> Self {
        Self {
            start_ms: b.start_ms,
            total: b.total,
            blocked: b.blocked,
        }
    }
}

/// Statistics of a time window (whole minutes; rankings over whole hours), from the resolver's
/// running aggregates (never a scan of the log).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DnsStatsView {
    /// Queries.
    pub total: i64,
    /// Blocked queries.
    pub blocked: i64,
    /// blocked / total.
    pub blocked_share: f64,
    /// Answered from the local zone.
    pub local: i64,
    /// Forwarded upstream (or answered from the upstream cache).
    pub forwarded: i64,
    /// Failed upstream lookups and refused queries.
    pub failed: i64,
    /// Query log rows lost because the log writer fell behind (their queries were answered and
    /// are counted above).
    pub log_dropped: i64,
    /// Query log rows stored now.
    pub log_rows: i64,
    /// Most asked names.
    pub top_domains: Vec<CountView>,
    /// Most blocked names.
    pub top_blocked: Vec<CountView>,
    /// Most active clients.
    pub top_clients: Vec<CountView>,
    /// Queries over time.
    pub over_time: Vec<BucketView>,
}

impl From<DnsStats> for DnsStatsView {
    fn from(s: DnsStats) -> Self {
        let v = |c: Vec<Count>| c.into_iter().map(Into::into).collect();
        Self {
            total: s.total,
            blocked: s.blocked,
            blocked_share: s.blocked_share,
            local: s.local,
            forwarded: s.forwarded,
            failed: s.failed,
            log_dropped: s.log_dropped,
            log_rows: s.log_rows,
            top_domains: v(s.top_domains),
            top_blocked: v(s.top_blocked),
            top_clients: v(s.top_clients),
            over_time: s.over_time.into_iter().map(Into::into).collect(),
        }
    }
}

/// Statistics window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// From this time (Unix milliseconds; default: the last 24 hours).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Entries per ranking (default 10).
    #[serde(default)]
    pub top: Option<i64>,
    /// Bucket width in milliseconds (default one hour).
    #[serde(default)]
    pub bucket_ms: Option<i64>,
}

/// Every block list.
#[utoipa::path(get, path = "/dns/lists", tag = "dns",
    responses(
        (status = 200, body = Vec<DnsListView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_lists(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<DnsListView>>, ApiError> {
    let lists = s.mistborn.dns().lists(&actor).await?;
    Ok(Json(lists.into_iter().map(Into::into).collect()))
}

/// Adds a list by URL (downloaded now) or by upload. A failed or garbage download adds nothing.
#[utoipa::path(post, path = "/dns/lists", tag = "dns",
    request_body = AddList,
    responses(
        (status = 201, body = ListRefreshView),
        (status = 400, description = "Bad name or URL, failed download, or not a block list", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 409, description = "A list of that name exists", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn add_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<AddList>,
) -> Result<(StatusCode, Json<ListRefreshView>), ApiError> {
    let dns = s.mistborn.dns();
    let added = match (body.url, body.content) {
        (Some(url), None) => dns.add_list_url(&actor, &body.name, &url).await?,
        (None, Some(text)) => dns.add_list_text(&actor, &body.name, &text).await?,
        _ => {
            return Err(mistborn_core::Error::invalid(
                "list",
                "give exactly one of url and content",
            )
            .into());
        }
    };
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// One list by id or name.
#[utoipa::path(get, path = "/dns/lists/{list}", tag = "dns",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 200, body = DnsListView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn get_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<Json<DnsListView>, ApiError> {
    Ok(Json(s.mistborn.dns().list(&actor, &list).await?.into()))
}

/// Enables or disables a list; the running filter follows.
#[utoipa::path(patch, path = "/dns/lists/{list}", tag = "dns",
    params(("list" = String, Path, description = "List id or name")),
    request_body = UpdateList,
    responses(
        (status = 200, body = DnsListView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn update_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
    Json(body): Json<UpdateList>,
) -> Result<Json<DnsListView>, ApiError> {
    Ok(Json(
        s.mistborn
            .dns()
            .set_enabled(&actor, &list, body.enabled)
            .await?
            .into(),
    ))
}

/// Deletes a list.
#[utoipa::path(delete, path = "/dns/lists/{list}", tag = "dns",
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
    s.mistborn.dns().delete_list(&actor, &list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Downloads a URL list again. A failed or garbage download keeps the last good copy and says
/// why in `list.last_error` (`updated: false`).
#[utoipa::path(post, path = "/dns/lists/{list}/refresh", tag = "dns",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 200, body = ListRefreshView),
        (status = 400, description = "An uploaded list (nothing to download)", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn refresh_list(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<Json<ListRefreshView>, ApiError> {
    Ok(Json(
        s.mistborn.dns().refresh_list(&actor, &list).await?.into(),
    ))
}

/// Uploads a list as the raw request body (not JSON; hosts, plain domains or adblock syntax, up
/// to `download.max_bytes`, default 64 MiB): adds the list, or replaces the copy of an uploaded
/// list of that name. Garbage changes nothing.
#[utoipa::path(put, path = "/dns/lists/{list}/content", tag = "dns",
    params(("list" = String, Path, description = "List name (1-64 letters, digits, space, '-', '_', '.')")),
    request_body(content = String, content_type = "text/plain", description = "The list text"),
    responses(
        (status = 200, description = "The copy of an uploaded list was replaced", body = ListRefreshView),
        (status = 201, description = "The list was added", body = ListRefreshView),
        (status = 400, description = "Bad name, not UTF-8 text, not a block list, or a list downloaded from a URL", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 413, description = "Larger than download.max_bytes", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn put_list_content(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ListRefreshView>), ApiError> {
    let dns = s.mistborn.dns();
    // Rights and name first: nobody makes the server read 64 MB to be told no.
    let limit = dns.upload_allowed(&actor, &list)?;
    let text = super::upload::read_text(&headers, body, limit).await?;
    let (r, created) = dns.put_list_text(&actor, &list, text).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r.into())))
}

/// The line errors of a list's last good copy (the first 50: number, reason, text).
#[utoipa::path(get, path = "/dns/lists/{list}/errors", tag = "dns",
    params(("list" = String, Path, description = "List id or name")),
    responses(
        (status = 200, body = Vec<InvalidLineView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_errors(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(list): Path<String>,
) -> Result<Json<Vec<InvalidLineView>>, ApiError> {
    let errors = s.mistborn.dns().line_errors(&actor, &list).await?;
    Ok(Json(errors.into_iter().map(Into::into).collect()))
}

/// The user's allow and deny rules.
#[utoipa::path(get, path = "/dns/rules", tag = "dns",
    responses(
        (status = 200, body = Vec<DnsRuleView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn list_rules(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<DnsRuleView>>, ApiError> {
    let rules = s.mistborn.dns().rules(&actor).await?;
    Ok(Json(rules.into_iter().map(Into::into).collect()))
}

/// Adds an allow, deny or wildcard-deny rule.
#[utoipa::path(post, path = "/dns/rules", tag = "dns",
    request_body = AddRule,
    responses(
        (status = 201, body = DnsRuleView),
        (status = 400, description = "Not a domain name", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 409, description = "The same rule exists", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn add_rule(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<AddRule>,
) -> Result<(StatusCode, Json<DnsRuleView>), ApiError> {
    let rule = s
        .mistborn
        .dns()
        .add_rule(&actor, body.kind.into(), &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/dns/rules/{id}", tag = "dns",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn delete_rule(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.mistborn.dns().delete_rule(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query log, newest first, attributed to profiles and users. Regular users see their own.
#[utoipa::path(get, path = "/dns/log", tag = "dns",
    params(LogParams),
    responses(
        (status = 200, body = Vec<LoggedQueryView>),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn query_log(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(p): Query<LogParams>,
) -> Result<Json<Vec<LoggedQueryView>>, ApiError> {
    let filter = LogFilter {
        since_ms: p.since_ms,
        client: p.client,
        user: p.user,
        blocked_only: p.blocked_only,
        limit: p.limit,
    };
    let rows = s.mistborn.dns().query_log(&actor, &filter).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Totals, blocked share, top domains, top blocked, top clients and queries over time.
#[utoipa::path(get, path = "/dns/stats", tag = "dns",
    params(StatsParams),
    responses(
        (status = 200, body = DnsStatsView),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Not a superuser", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn stats(
    State(s): State<AppState>,
    Auth(actor): Auth,
    Query(p): Query<StatsParams>,
) -> Result<Json<DnsStatsView>, ApiError> {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let since = p.since_ms.unwrap_or(now_ms - 86_400_000);
    let st = s
        .mistborn
        .dns()
        .stats(
            &actor,
            since,
            p.top.unwrap_or(10),
            p.bucket_ms.unwrap_or(3_600_000),
        )
        .await?;
    Ok(Json(st.into()))
}
