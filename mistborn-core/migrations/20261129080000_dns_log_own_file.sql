-- The DNS query log moved to its own SQLite file in the data dir (dns-log.db, see
-- mistborn-core/src/dns/logstore.rs): it no longer competes with the API for the main store.
-- Its old rows are disposable (a log, never in backups) and are not copied.
DROP TABLE dns_queries;
