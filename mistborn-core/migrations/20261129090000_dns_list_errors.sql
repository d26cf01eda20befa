-- DNS lists keep their line errors (the first 50: number, reason, text; JSON) and the count of
-- lines that are rules but not DNS rules (cosmetic, scriptlet, path rules). NULL line_errors: a
-- list stored before this migration; its errors are worked out from its content when first asked.
ALTER TABLE dns_lists ADD COLUMN not_for_dns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dns_lists ADD COLUMN line_errors TEXT;
