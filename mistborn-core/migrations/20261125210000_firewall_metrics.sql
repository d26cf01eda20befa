-- Firewall probe and Coppercloud hit counts over time: one row per interval (`at`, Unix seconds
-- at the end of the interval), kind (total, port, source, list) and key, holding the packets
-- counted in that interval only (deltas, so a counter reset never double counts). Per interval
-- the busiest ports and sources are kept and the rest is summed under key '*'.
CREATE TABLE firewall_samples (
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    packets BIGINT NOT NULL,
    PRIMARY KEY (at, kind, key)
);
CREATE INDEX firewall_samples_kind_at ON firewall_samples (kind, at);
