-- One change counter per domain, so any process (the daemon, the CLI, a Python script, a second
-- host on the same PostgreSQL) learns what another one wrote: profiles already had one.
INSERT INTO revisions (name, value) VALUES ('users', 0);
INSERT INTO revisions (name, value) VALUES ('sessions', 0);
INSERT INTO revisions (name, value) VALUES ('dns', 0);
INSERT INTO revisions (name, value) VALUES ('firewall', 0);
