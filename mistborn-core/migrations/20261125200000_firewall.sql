-- Coppercloud IP lists for the firewall: the last good copy of each list, its source and state.
CREATE TABLE coppercloud_lists (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    mode         TEXT NOT NULL,
    url          TEXT,
    enabled      BIGINT NOT NULL,
    content      TEXT NOT NULL,
    entries      BIGINT NOT NULL,
    refreshed_at BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
