-- 011: the operating-system user of the process that wrote each audit row, beside the
-- --by name it claimed. Part of the row's digest when present; rows written before this
-- column have none and their digests are unchanged (docs/engine.md, Audit log).

ALTER TABLE ops.audit_log ADD COLUMN os_user VARCHAR;
