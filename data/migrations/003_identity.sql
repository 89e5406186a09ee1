-- 003: identity resolution outputs of the hygiene agent. foundation.entity_map (001)
-- maps each record to its entity; golden records hold one surviving value per field.

CREATE TABLE foundation.golden_records (
    object_type VARCHAR NOT NULL,          -- accounts | contacts
    entity_id   VARCHAR NOT NULL,
    field       VARCHAR NOT NULL,
    value       JSON,
    source_record_id VARCHAR NOT NULL,     -- which record the value survived from
    rule        VARCHAR NOT NULL,          -- most_trusted | most_recent | most_complete
    run_id      VARCHAR NOT NULL,
    PRIMARY KEY (object_type, entity_id, field)
);
