-- TOTP second factor, recovery codes and login sessions bound to a tunnel address.
CREATE TABLE totp (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    confirmed  BIGINT NOT NULL,
    last_step  BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    id        TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id    TEXT NOT NULL UNIQUE REFERENCES peers (id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
CREATE INDEX sessions_address ON sessions (address);
