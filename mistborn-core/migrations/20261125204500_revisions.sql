-- Named change counters, bumped in the same transaction as the writes they track, so a process
-- (the daemon) notices what another process (the CLI) wrote with one cheap read per tick.
CREATE TABLE revisions (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO revisions (name, value) VALUES ('peers', 0);
