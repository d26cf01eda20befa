-- One schema for SQLite and PostgreSQL: only the common subset (TEXT ids, BIGINT times and flags).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (user_id, name)
);

CREATE TABLE peers (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    client_to_client BIGINT NOT NULL,
    listen_port      TEXT NOT NULL,
    addr_index       BIGINT NOT NULL UNIQUE,
    public_key       TEXT NOT NULL UNIQUE,
    private_key      TEXT,
    preshared_key    TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE INDEX peers_user ON peers (user_id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
