-- DNS filtering: subscribed/uploaded block lists with their last good copy, the user's own
-- allow/deny rules, and the query log. Common SQL subset only (TEXT ids, BIGINT times and flags).
CREATE TABLE dns_lists (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    url           TEXT,
    enabled       BIGINT NOT NULL,
    entries       BIGINT NOT NULL,
    invalid_lines BIGINT NOT NULL,
    content       TEXT NOT NULL,
    updated_at    BIGINT,
    checked_at    BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE dns_rules (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE dns_queries (
    at_ms      BIGINT NOT NULL,
    client     TEXT NOT NULL,
    peer_id    TEXT,
    peer_name  TEXT,
    user_id    TEXT,
    username   TEXT,
    name       TEXT NOT NULL,
    qtype      TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    blocked_by TEXT,
    rcode      TEXT NOT NULL,
    answer     TEXT,
    latency_us BIGINT NOT NULL
);

CREATE INDEX dns_queries_at ON dns_queries (at_ms);
CREATE INDEX dns_queries_user ON dns_queries (user_id, at_ms);
